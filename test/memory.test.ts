// Wasm memory stays bounded: inputs are streamed through a fixed scratch region, so the linear
// memory does not grow with the batch size, many calls do not grow it either, and calls that
// throw release what they took.
//
// Besides `memory.buffer.byteLength` (grows only in 64 KiB pages, so it only catches large
// leaks), the tests read the allocator's live byte count through the library's internal
// workspace module (ts/workspace.ts, imported from the same module instance that loadLib()
// initialised), which catches a leak of even one small block per call.

import { beforeAll, describe, expect, it } from 'vitest';
import { binaryTargets, logits, regression, rng, sigmoidLabels, softmaxLabels, softTargets, weights } from './helpers/random';
import { BUILDS, loadLib, type Lib } from './support/lib';

const MB = 1 << 20;

/** Inputs for the large calls, built once at the largest size; smaller calls use prefixes. */
const BIG = 4_000_000;
const C = 80;
let big: ReturnType<typeof bigInputs> | undefined;
function bigInputs() {
  const rows = BIG / C;
  const { pred, target } = regression(BIG, 9);
  return {
    x: logits(BIG, 1, 'moderate'),
    soft: softTargets(BIG, 2),
    bin: binaryTargets(BIG, 3),
    w: weights(BIG, 4),
    labels: sigmoidLabels(rows, C, 5),
    smLabels: softmaxLabels(rows, C, 6, -100, 0.1),
    rowW: weights(rows, 7),
    pred,
    target,
  };
}

describe.each(BUILDS)('%s build: wasm memory', (build) => {
  let lib: Lib;
  let memory: WebAssembly.Memory;
  let allocated: () => number;

  beforeAll(async () => {
    lib = await loadLib(build);
    // The runtime of the same module registry as the `lib` just loaded (init's result is public fields only).
    memory = (await import('../ts/loader')).getRuntime('memory.test').kernels.memory;
    // Same module registry as the `lib` just loaded: its workspace, not a new one.
    const ws = await import('../ts/workspace');
    allocated = () => ws.workspace('memory.test').heap.allocated;
    big ??= bigInputs();
  });

  const bytes = () => memory.buffer.byteLength;

  /**
   * Calls over the first n elements with every input and output array in play: all kinds on the
   * SIMD build; on the (slower) scalar build the sigmoid loss only, as the chunking is the same
   * TypeScript code.
   */
  function everything(n: number): void {
    const b = big!;
    const x = b.x.subarray(0, n);
    const soft = b.soft.subarray(0, n);
    const w = b.w.subarray(0, n);
    lib.sigmoidFocalLoss(x, soft, { weight: w, reduction: 'none', grad: true, alpha: 'auto' });
    const rows = n / C;
    lib.sigmoidFocalLoss(x, { labels: b.labels.subarray(0, rows), numClasses: C }, { weight: b.rowW.subarray(0, rows), grad: true, reduction: 'none' });
    if (build === 'scalar') return;
    lib.sigmoidFocalLoss(x, b.bin.subarray(0, n), { reduction: 'mean', grad: true });
    lib.softmaxFocalLoss(x, b.smLabels.subarray(0, rows), { numClasses: C, grad: true, reduction: 'none', alpha: w.subarray(0, C).map((v) => v / 3) });
    const ghmc = new lib.GHMC({ bins: 1024, momentum: 0.5 });
    ghmc.forward(x, soft, w, { grad: true });
    ghmc.forward(x, { labels: b.labels.subarray(0, rows), numClasses: C }, b.rowW.subarray(0, rows), { grad: true });
    new lib.GHMR({ bins: 1024, momentum: 0.5 }).forward(b.pred.subarray(0, n), b.target.subarray(0, n), w, { grad: true });
  }

  it('large calls: a few MB of scratch at most, and 4·10^6 elements need no more than 2·10^6', () => {
    const before = bytes();
    everything(BIG / 2);
    const after2M = bytes();
    // The scratch holds one chunk (32768 elements) of each stream: well under 4 MB in all.
    expect(after2M - before).toBeLessThanOrEqual(4 * MB);
    const live = allocated();
    everything(BIG);
    expect(bytes()).toBe(after2M);
    expect(allocated()).toBe(live);
  }, 60_000);

  it('results do not live in wasm memory: outputs of a large call are ordinary arrays', () => {
    const r = lib.sigmoidFocalLoss(logits(100_000, 1), binaryTargets(100_000, 2), { reduction: 'none', grad: true });
    expect((r.loss as Float32Array).buffer).not.toBe(memory.buffer);
    expect(r.grad!.buffer).not.toBe(memory.buffer);
  });
});

describe('many calls (simd build)', () => {
  let lib: Lib;
  let memory: WebAssembly.Memory;
  let allocated: () => number;

  beforeAll(async () => {
    lib = await loadLib('simd');
    memory = (await import('../ts/loader')).getRuntime('memory.test').kernels.memory;
    const ws = await import('../ts/workspace');
    allocated = () => ws.workspace('memory.test').heap.allocated;
  });

  const bytes = () => memory.buffer.byteLength;

  // Inputs built once: the loops measure the library, not the generators.
  const N = 64;
  const x = logits(N, 11, 'mixed');
  const bin = binaryTargets(N, 12);
  const soft = softTargets(N, 13);
  const w = weights(N, 14);
  const labels = sigmoidLabels(N / 4, 4, 15);
  const rowW = weights(N / 4, 16);
  const smLabels = softmaxLabels(N / 4, 4, 17, -100, 0.2);

  function sigmoidCall(i: number, n: number): void {
    const k = i % 8;
    const xs = x.subarray(0, n);
    if (k === 0) lib.sigmoidFocalLoss(xs, bin.subarray(0, n));
    else if (k === 1) lib.sigmoidFocalLoss(xs, soft.subarray(0, n), { grad: true, reduction: 'none' });
    else if (k === 2) lib.sigmoidFocalLoss(xs, bin.subarray(0, n), { weight: w.subarray(0, n), alpha: 'auto', grad: true });
    else if (k === 3) lib.sigmoidFocalLoss(xs, soft.subarray(0, n), { reduction: 'sum', gamma: 1.5, alpha: null });
    else if (k === 4) lib.sigmoidFocalLoss(xs, bin.subarray(0, n), { reduction: 'mean', avgFactor: 3, lossWeight: 2, grad: true });
    else if (k === 5) {
      const r = Math.floor(n / 4);
      lib.sigmoidFocalLoss(x.subarray(0, r * 4), { labels: labels.subarray(0, r), numClasses: 4 }, { weight: rowW.subarray(0, r), grad: true, reduction: 'none' });
    } else if (k === 6) {
      const r = Math.floor(n / 4);
      lib.softmaxFocalLoss(x.subarray(0, r * 4), smLabels.subarray(0, r), { numClasses: 4, grad: true, alpha: Float32Array.of(0.1, 0.2, 0.3, 0.4) });
    } else lib.sigmoidFocalLoss(xs, soft.subarray(0, n), { gamma: 0.5, reduction: 'none' });
  }

  it('10^5 small sigmoid/softmax focal calls with mixed options: memory and heap flat after warm-up', () => {
    for (let i = 0; i < 64; i++) sigmoidCall(i, N);
    const b0 = bytes();
    const a0 = allocated();
    const r = rng(1);
    for (let i = 0; i < 100_000; i++) sigmoidCall(i, Math.floor(r() * (N + 1)));
    expect(bytes()).toBe(b0);
    expect(allocated()).toBe(a0);
  }, 30_000);

  it('10^4 GHMC.forward calls (and GHM-R, collect, gradient): memory and heap flat after warm-up', () => {
    const objs = [1, 10, 30, 256, 1024].map((bins) => new lib.GHMC({ bins, momentum: 0.75 }));
    const ghmr = new lib.GHMR({ bins: 1024, momentum: 0.5 });
    const one = (i: number, n: number) => {
      const g = objs[i % objs.length]!;
      if (i % 3 === 0) g.forward(x.subarray(0, n), bin.subarray(0, n), undefined, { grad: true });
      else if (i % 3 === 1) g.forward(x.subarray(0, n), soft.subarray(0, n), w.subarray(0, n));
      else {
        const s = g.step(g.collect(x.subarray(0, n), bin.subarray(0, n)));
        g.gradient(s, x.subarray(0, n), bin.subarray(0, n));
      }
      if (i % 10 === 0) ghmr.forward(x.subarray(0, n), soft.subarray(0, n), w.subarray(0, n), { grad: true });
    };
    for (let i = 0; i < 30; i++) one(i, N);
    const b0 = bytes();
    const a0 = allocated();
    const r = rng(2);
    for (let i = 0; i < 10_000; i++) one(i, Math.floor(r() * (N + 1)));
    expect(bytes()).toBe(b0);
    expect(allocated()).toBe(a0);
  }, 30_000);

  it('throwing calls in a loop do not leak', () => {
    const big = 100_000;
    const bx = logits(big, 21, 'moderate');
    const badSoft = softTargets(big, 22);
    badSoft[big - 1] = NaN; // found after the kernel pass over every chunk
    const badBin = binaryTargets(big, 23);
    badBin[big - 3] = 7;
    const ghmc = new lib.GHMC({ bins: 30, momentum: 0.5 });
    const throwing: Array<() => unknown> = [
      () => lib.sigmoidFocalLoss(bx, badSoft, { grad: true, reduction: 'none' }),
      () => lib.sigmoidFocalLoss(bx, badBin, { alpha: 'auto', weight: weights(big, 1) }),
      () => lib.sigmoidFocalLoss(x, soft, { gamma: -1 }),
      () => lib.sigmoidFocalLoss(x, bin, { reduction: 'sum', avgFactor: 2 }),
      () => lib.sigmoidFocalLoss(x, { labels: Int32Array.of(0, 9, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3), numClasses: 4 }),
      () => lib.softmaxFocalLoss(x, Int32Array.from({ length: 16 }, (_, i) => (i === 15 ? 4 : 0)), { numClasses: 4, grad: true }),
      () => ghmc.forward(bx, badSoft, undefined, { grad: true }),
      () => ghmc.forward(x, bin, new Float32Array(3)),
      () => ghmc.loadState({ kind: 'ghmc', bins: 30, momentum: 0.5, accSum: [] }),
    ];
    // Warm-up: every call once (the large ones reserve their scratch), then the baseline.
    for (const t of throwing) expect(t).toThrow();
    const b0 = bytes();
    const a0 = allocated();
    for (let i = 0; i < 450; i++) {
      const t = throwing[i % throwing.length]!;
      expect(t).toThrow();
    }
    expect(bytes()).toBe(b0);
    expect(allocated()).toBe(a0);
    // And the library still works afterwards.
    expect(lib.sigmoidFocalLoss(x, bin).loss).toBeGreaterThan(0);
  }, 30_000);
});
