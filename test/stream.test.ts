// Streams: any split of a batch into pieces (empty and size-1 pieces included) gives the loss of
// one call over the whole batch; GHM streams make one EMA step; memory does not grow with N.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectReducedClose } from './helpers/golden';
import { loadLib, type Lib } from './support/lib';

let lib: Lib;
beforeAll(async () => {
  lib = await loadLib('simd');
});

function data(n: number, seed: number) {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const logits = Float32Array.from({ length: n }, () => rand() * 12 - 8);
  const targets = Uint8Array.from({ length: n }, () => (rand() < 0.05 ? 1 : 0));
  const weight = Float32Array.from({ length: n }, () => (rand() < 0.1 ? 0 : rand() * 2));
  return { logits, targets, weight };
}

/** Cut points splitting [0, n) in `units` of `unit` elements: empty and single pieces included. */
const cuts = (n: number, unit = 1) =>
  fc.array(fc.integer({ min: 0, max: n / unit }), { maxLength: 12 }).map((a) => [0, ...a.sort((x, y) => x - y).map((v) => v * unit), n]);

describe('sigmoidFocalLoss.stream', () => {
  it('equals one call for any split, alpha number/null/auto, mean/sum/avgFactor', () => {
    const n = 5003;
    const { logits, targets, weight } = data(n, 3);
    fc.assert(
      fc.property(cuts(n), fc.constantFrom<number | null | 'auto'>(0.25, null, 'auto'), fc.constantFrom('mean', 'sum', 'avg'), (cs, alpha, red) => {
        const opts = red === 'avg' ? { alpha, gamma: 1.5, avgFactor: 17 } : { alpha, gamma: 1.5, reduction: red as 'mean' | 'sum' };
        const s = lib.sigmoidFocalLoss.stream(opts);
        for (let i = 0; i + 1 < cs.length; i++) s.push(logits.subarray(cs[i], cs[i + 1]), targets.subarray(cs[i], cs[i + 1]), weight.subarray(cs[i], cs[i + 1]));
        const got = s.finish();
        const want = lib.sigmoidFocalLoss(logits, targets, { ...opts, weight });
        expectReducedClose(got.loss, want.loss as number, 1e-6);
        if (alpha === 'auto') expect(got.alpha).toBe(want.alpha);
        expect(got.length).toBe(n);
      }),
      { numRuns: 40, seed: 1 },
    );
  });

  it('class-index pieces split on rows', () => {
    const c = 7;
    const rows = 300;
    const { logits } = data(rows * c, 9);
    const labels = Int32Array.from({ length: rows }, (_, i) => i % (c + 1));
    const s = lib.sigmoidFocalLoss.stream({ reduction: 'sum' });
    for (const [a, b] of [[0, 0], [0, 1], [1, 150], [150, 300]] as const) {
      s.push(logits.subarray(a * c, b * c), { labels: labels.subarray(a, b), numClasses: c });
    }
    expectReducedClose(s.finish().loss, lib.sigmoidFocalLoss(logits, { labels, numClasses: c }, { reduction: 'sum' }).loss as number, 1e-6);
  });

  it('probabilities and label smoothing, any split, α number and auto: as one call', () => {
    const n = 4001;
    const { logits, targets, weight } = data(n, 5);
    const probs = logits.map((x) => 1 / (1 + Math.exp(-x)));
    const soft = Float32Array.from(targets, (t, i) => (i % 3 === 0 ? 0.3 : t));
    fc.assert(
      fc.property(cuts(n), fc.constantFrom<number | 'auto'>(0.25, 'auto'), fc.constantFrom(0, 0.1), fc.boolean(), (cs, alpha, labelSmoothing, p) => {
        const x = p ? probs : logits;
        const opts = { alpha, gamma: 2, labelSmoothing, ...(p ? { input: 'probabilities' as const } : {}) };
        const s = lib.sigmoidFocalLoss.stream(opts);
        for (let i = 0; i + 1 < cs.length; i++) s.push(x.subarray(cs[i], cs[i + 1]), soft.subarray(cs[i], cs[i + 1]), weight.subarray(cs[i], cs[i + 1]));
        const got = s.finish();
        const want = lib.sigmoidFocalLoss(x, soft, { ...opts, weight });
        expectReducedClose(got.loss, want.loss as number, 1e-6);
        if (alpha === 'auto') expect(got.alpha).toBe(want.alpha);
      }),
      { numRuns: 30, seed: 2 },
    );
    // Out-of-range probabilities are refused by the push, which keeps the sums so far.
    const s = lib.sigmoidFocalLoss.stream({ input: 'probabilities' });
    s.push(probs.subarray(0, 10), targets.subarray(0, 10));
    expect(() => s.push(Float32Array.of(0.5, 1.5), Uint8Array.of(0, 1))).toThrow(/probabilities/);
    expectReducedClose(s.finish().loss, lib.sigmoidFocalLoss(probs.subarray(0, 10), targets.subarray(0, 10), { input: 'probabilities' }).loss as number, 1e-6);
    expect(() => lib.sigmoidFocalLoss.stream({ classWeight: new Float32Array(1) } as never)).toThrow(/unknown option 'classWeight'/);
  });

  it('a throwing push keeps the sums so far; finish twice throws', () => {
    const { logits, targets } = data(100, 5);
    const s = lib.sigmoidFocalLoss.stream({ reduction: 'sum' });
    s.push(logits, targets);
    expect(() => s.push(logits, new Uint8Array(99))).toThrow(RangeError);
    expect(() => s.push(logits, new Uint8Array(100).fill(2))).toThrow(/binary/);
    expect(s.finish().loss).toBe(lib.sigmoidFocalLoss(logits, targets, { reduction: 'sum' }).loss);
    expect(() => s.finish()).toThrow(/finished/);
    expect(() => lib.sigmoidFocalLoss.stream({ reduction: 'none' as never })).toThrow(RangeError);
  });

  it('memory stays flat while 10^7 elements stream through', () => {
    const piece = data(100_000, 11);
    const s = lib.sigmoidFocalLoss.stream({ reduction: 'sum' });
    s.push(piece.logits, piece.targets);
    return import('../ts/loader').then((loader) => {
      const { kernels } = loader.getRuntime('stream.test');
      const before = kernels.memory.buffer.byteLength;
      for (let i = 1; i < 100; i++) s.push(piece.logits, piece.targets);
      expect(kernels.memory.buffer.byteLength).toBe(before);
      const one = lib.sigmoidFocalLoss(piece.logits, piece.targets, { reduction: 'sum' }).loss as number;
      expectReducedClose(s.finish().loss, 100 * one, 1e-6);
    });
  });
});

describe('GHM streams', () => {
  it('GHM-C: one EMA step equal to one forward; gradients of the pieces equal the forward gradient', () => {
    const n = 20_000;
    const { logits, targets, weight } = data(n, 21);
    fc.assert(
      fc.property(cuts(n), (cs) => {
        const a = new lib.GHMC({ bins: 30, momentum: 0.75 });
        const b = new lib.GHMC({ bins: 30, momentum: 0.75 });
        for (let k = 0; k < 2; k++) {
          const s = a.stream();
          for (let i = 0; i + 1 < cs.length; i++) s.push(logits.subarray(cs[i], cs[i + 1]), targets.subarray(cs[i], cs[i + 1]), weight.subarray(cs[i], cs[i + 1]));
          const r = s.finish();
          const want = b.forward(logits, targets, weight, { grad: true });
          expectReducedClose(r.loss, want.loss as number, 1e-12);
          expect(a.accSum).toEqual(b.accSum);
          const grad = new Float32Array(n);
          for (let i = 0; i + 1 < cs.length; i++) grad.set(r.gradient(logits.subarray(cs[i], cs[i + 1]), targets.subarray(cs[i], cs[i + 1]), weight.subarray(cs[i], cs[i + 1])), cs[i]);
          expect(grad).toEqual(want.grad);
        }
      }),
      { numRuns: 20, seed: 2 },
    );
  });

  it('GHM-R stream equals forward', () => {
    const n = 3000;
    const { logits: pred } = data(n, 31);
    const { logits: target } = data(n, 32);
    const a = new lib.GHMR({ momentum: 0.7 });
    const b = new lib.GHMR({ momentum: 0.7 });
    const s = a.stream();
    s.push(pred.subarray(0, 1), target.subarray(0, 1));
    s.push(pred.subarray(1, 1), target.subarray(1, 1));
    s.push(pred.subarray(1), target.subarray(1));
    expectReducedClose(s.finish().loss, b.forward(pred, target).loss as number, 1e-12);
    expect(a.accSum).toEqual(b.accSum);
  });
});

describe('scoreStream', () => {
  const { logits, targets } = data(10_000, 41);
  const pieces = () => [0, 1, 2500, 2500, 10_000].slice(1).map((end, i, a) => {
    const start = i === 0 ? 0 : a[i - 1]!;
    return { logits: logits.subarray(start, end), targets: targets.subarray(start, end) };
  });

  it('async iterables, with progress', async () => {
    async function* gen() {
      for (const p of pieces()) yield p;
    }
    const seen: number[] = [];
    const r = await lib.scoreStream(gen(), { loss: 'sigmoidFocal', options: { gamma: 2 }, onProgress: (p) => seen.push(p.elements) });
    expectReducedClose(r.loss, lib.sigmoidFocalLoss(logits, targets).loss as number, 1e-6);
    expect(seen).toEqual([1, 2500, 2500, 10_000]);
    expect(r).toMatchObject({ elements: 10_000, chunks: 4 });
  });

  it('WHATWG ReadableStreams and GHM objects', async () => {
    const ps = pieces();
    const rs = new ReadableStream({
      pull(ctrl) {
        const p = ps.shift();
        if (p) ctrl.enqueue(p);
        else ctrl.close();
      },
    });
    const g = new lib.GHMC({ bins: 10 });
    const r = await lib.scoreStream(rs, { loss: g });
    expectReducedClose(r.loss, new lib.GHMC({ bins: 10 }).forward(logits, targets).loss as number, 1e-12);
    await expect(lib.scoreStream([], { loss: 'focal' as never })).rejects.toThrow(TypeError);
  });
});
