// Issue #20, the options that need no new kernel code: softmax row weights and avgFactor, sigmoid
// per-class weights (kornia's weight and pos_weight) and ignored rows, and logits laid out with
// the class axis before the last (PyTorch's [B, C, d1, …]). Against float64 references
// (test/helpers/reference.ts), kornia's two-term formula written out, central finite
// differences, on both builds and across the scratch chunk boundary (the pool: test/anchors.test.ts).

import { beforeAll, describe, expect, it } from 'vitest';
import { refSigmoidFocal, refSoftmaxFocal, sigmoid } from './helpers/reference';
import { BUILDS, loadLib, type Lib } from './support/lib';
import { expectClose, expectRel } from './helpers/close';
import { rng } from './helpers/random';

const CHUNK = 1 << 15;

/** `[outer, c, inner]` → `[outer·inner, c]` (a full transposed copy: what the library avoids). */
function toClassLast(x: Float32Array, outer: number, c: number, inner: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) for (let j = 0; j < c; j++) for (let i = 0; i < inner; i++) out[(o * inner + i) * c + j] = x[(o * c + j) * inner + i]!;
  return out;
}

function fromClassLast(x: Float32Array, outer: number, c: number, inner: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) for (let j = 0; j < c; j++) for (let i = 0; i < inner; i++) out[(o * c + j) * inner + i] = x[(o * inner + i) * c + j]!;
  return out;
}

/** kornia's binary_focal_loss_with_logits element, as written there (float64): v·(q·pos + neg). */
function korniaElement(x: number, t: number, alpha: number, gamma: number, v: number, q: number): number {
  const logPos = -Math.log1p(Math.exp(-x)); // logsigmoid(x), for the moderate x used here
  const logNeg = -Math.log1p(Math.exp(x));
  const pos = -alpha * Math.pow(Math.exp(logNeg), gamma) * t * logPos;
  const neg = -(1 - alpha) * Math.pow(Math.exp(logPos), gamma) * (1 - t) * logNeg;
  return v * (q * pos + neg);
}

/** The softmax focal loss of one row in float64 (SPEC §2), for finite differences. */
function softmaxRowLoss(row: number[], y: number, a: number, gamma: number): number {
  const m = Math.max(...row);
  const s = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
  const logp = row[y]! - m - Math.log(s);
  return -a * Math.pow(1 - Math.exp(logp), gamma) * logp;
}

describe.each(BUILDS)('issue #20 class options, %s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  describe('softmax focal: weight, avgFactor', () => {
    const r = rng(5);
    const c = 5;
    const rows = Math.ceil((2 * CHUNK + 11) / c);
    const x = new Float32Array(rows * c).map(() => (r() - 0.5) * 10);
    const y = Int32Array.from({ length: rows }, (_, i) => (i % 17 === 3 ? -100 : Math.floor(r() * c)));
    const w = Float32Array.from({ length: rows }, () => r() * 3);

    it.each([
      ['mean', undefined],
      ['mean', 123.5],
      ['sum', undefined],
      ['none', undefined],
      ['none', 7],
    ] as const)('reduction %s, avgFactor %s: float64 reference across the chunk boundary', (reduction, avgFactor) => {
      for (const gamma of [2, 0.5]) {
        const opts = { numClasses: c, gamma, reduction, avgFactor, lossWeight: 0.7, alpha: 0.3 };
        const got = lib.softmaxFocalLoss(x, y, { ...opts, weight: w, grad: true });
        const want = refSoftmaxFocal(x, y, { ...opts, weight: w });
        if (reduction === 'none') expectClose(got.loss as Float32Array, want.loss as Float64Array, 'loss');
        else expectRel(got.loss as number, want.loss as number, 'loss');
        expectClose(got.grad, want.grad, 'grad');
        // The weighted loss's gradient by central differences, in float64.
        const denom = reduction === 'mean' ? (avgFactor ?? y.filter((l) => l !== -100).length) : 1;
        for (const i of [7, CHUNK + 2, x.length - 3]) {
          const row = Math.floor(i / c);
          if (y[row] === -100) continue;
          const vals = Array.from(x.subarray(row * c, row * c + c), Number);
          const h = 1e-5;
          const f = (d: number) => softmaxRowLoss(vals.map((v, j) => (j === i % c ? v + d : v)), y[row]!, 0.3, gamma);
          const fd = (((f(h) - f(-h)) / (2 * h)) * w[row]! * 0.7) / denom;
          expect(Math.abs(got.grad[i]! - fd)).toBeLessThanOrEqual(1e-5 * Math.max(1e-3, Math.abs(fd)));
        }
      }
    });

    it('weights of 1 are the unweighted call; ignored rows stay 0 whatever their weight', () => {
      const ones = new Float32Array(rows).fill(1);
      const a = lib.softmaxFocalLoss(x, y, { numClasses: c, grad: true, reduction: 'none' });
      const b = lib.softmaxFocalLoss(x, y, { numClasses: c, grad: true, reduction: 'none', weight: ones });
      expect(b.loss).toEqual(a.loss);
      expectClose(b.grad, a.grad, 'grad', 1e-7);
      const nanW = w.slice();
      nanW[3] = NaN; // row 3 is ignored
      const m = lib.softmaxFocalLoss(x, y, { numClasses: c, weight: nanW, grad: true, reduction: 'none' });
      expect(m.loss[3]).toBe(0);
      expect(Array.from(m.grad.subarray(3 * c, 4 * c))).toEqual(new Array(c).fill(0));
      expect(Number.isFinite(lib.softmaxFocalLoss(x, y, { numClasses: c, weight: nanW }).loss)).toBe(true);
    });

    it('errors name the argument', () => {
      const xs = new Float32Array(6);
      const ys = new Int32Array(2);
      expect(() => lib.softmaxFocalLoss(xs, ys, { numClasses: 3, weight: [1, 1] as never })).toThrow(new TypeError('softmaxFocalLoss: options.weight must be a Float32Array, got Array'));
      expect(() => lib.softmaxFocalLoss(xs, ys, { numClasses: 3, weight: new Float32Array(3) })).toThrow(new RangeError('softmaxFocalLoss: options.weight has length 3, expected 2 (one per row)'));
      expect(() => lib.softmaxFocalLoss(xs, ys, { numClasses: 3, avgFactor: 2, reduction: 'sum' })).toThrow(/softmaxFocalLoss: options.avgFactor cannot be used with reduction 'sum'/);
      expect(() => lib.softmaxFocalLoss(xs, ys, { numClasses: 3, avgFactor: 0 })).toThrow(/softmaxFocalLoss: options.avgFactor must be a finite number > 0/);
    });
  });

  describe('sigmoid focal: classWeight, posWeight (kornia), ignoreIndex', () => {
    const r = rng(9);
    const c = 6;
    const rows = Math.ceil((2 * CHUNK + 5) / c);
    const n = rows * c;
    const x = new Float32Array(n).map(() => (r() - 0.5) * 12);
    const v = Float32Array.from({ length: c }, () => 0.2 + r() * 2);
    const q = Float32Array.from({ length: c }, () => 0.5 + r() * 4);
    const labels = Int32Array.from({ length: rows }, (_, i) => (i % 13 === 5 ? 255 : Math.floor(r() * (c + 1))));
    const rowW = Float32Array.from({ length: rows }, () => r() * 2);
    const onehot = new Uint8Array(n);
    labels.forEach((l, i) => l < c && (onehot[i * c + l] = 1));
    const soft = new Float32Array(n).map(() => r());

    it('kornia: v·(q·pos_term + neg_term) with 0/1 targets, element by element', () => {
      const got = lib.sigmoidFocalLoss(x, onehot, { classWeight: v, posWeight: q, reduction: 'none', alpha: 0.25, gamma: 2 });
      const want = Array.from(x, (xi, i) => korniaElement(xi, onehot[i]!, 0.25, 2, v[i % c]!, q[i % c]!));
      expectClose(got.loss, want, 'loss');
    });

    it.each(['mean', 'sum', 'none'] as const)('every target layout, reduction %s: float64 reference, FD gradients', (reduction) => {
      const cases: Array<[string, Parameters<Lib['sigmoidFocalLoss']>[1], Parameters<typeof refSigmoidFocal>[1], Float32Array | undefined, Float32Array | undefined]> = [
        ['bytes, both', onehot, onehot, v, q],
        ['labels, row weights, both, ignored rows', { labels, numClasses: c, ignoreIndex: 255 }, { labels, numClasses: c, ignoreIndex: 255 }, v, q],
        ['labels, posWeight only', { labels: labels.map((l) => (l === 255 ? c : l)), numClasses: c }, { labels: labels.map((l) => (l === 255 ? c : l)), numClasses: c }, undefined, q],
        ['soft, classWeight', soft, soft, v, undefined],
      ];
      for (const [what, targets, refTargets, classWeight, posWeight] of cases) {
        const weight = what.includes('row weights') ? rowW : undefined;
        const opts = { reduction, lossWeight: 1.5, gamma: 1.5, alpha: 0.3 };
        const got = lib.sigmoidFocalLoss(x, targets, { ...opts, weight, classWeight, posWeight, grad: true });
        const want = refSigmoidFocal(x, refTargets, { ...opts, weight, classWeight, posWeight });
        if (reduction === 'none') expectClose(got.loss as Float32Array, want.loss as Float64Array, `${what} loss`);
        else expectRel(got.loss as number, want.loss as number, `${what} loss`);
        expectClose(got.grad, want.grad, `${what} grad`);
        // d/dx of the weighted float64 element loss, central differences.
        for (const i of [1, CHUNK + 3, n - 2]) {
          const h = 1e-6;
          const t = refTargets instanceof Uint8Array || refTargets instanceof Float32Array ? refTargets[i]! : refTargets.labels[Math.floor(i / c)] === i % c ? 1 : 0;
          const ignored = !(refTargets instanceof Uint8Array || refTargets instanceof Float32Array) && refTargets.labels[Math.floor(i / c)] === 255;
          const wi = (weight ? weight[Math.floor(i / c)]! : 1) * (classWeight ? classWeight[i % c]! : 1) * (posWeight && t === 1 ? posWeight[i % c]! : 1);
          const el = (xi: number) => {
            const p = sigmoid(xi);
            const bce = Math.max(xi, 0) - xi * t + Math.log1p(Math.exp(-Math.abs(xi)));
            const pt = (1 - p) * t + p * (1 - t);
            return (0.3 * t + 0.7 * (1 - t)) * Math.pow(pt, 1.5) * bce;
          };
          const count = reduction === 'mean' ? (what.includes('ignored') ? n - c * labels.filter((l) => l === 255).length : n) : 1;
          const fd = ignored ? 0 : (((el(x[i]! + h) - el(x[i]! - h)) / (2 * h)) * wi * 1.5) / count;
          expect(Math.abs(got.grad[i]! - fd), `${what} fd ${i}`).toBeLessThanOrEqual(1e-5 * Math.abs(fd) + 1e-12);
        }
      }
    });

    it('ignored rows add nothing, at infinite and NaN logits too, and are not counted by the mean', () => {
      const xs = Float32Array.from([0.5, -1, 2, Infinity, NaN, -Infinity, 0.3, 0.1, -0.2]);
      const ls = Int32Array.from([1, -1, 3]);
      const got = lib.sigmoidFocalLoss(xs, { labels: ls, numClasses: 3, ignoreIndex: -1 }, { grad: true, reduction: 'none' });
      expect(Array.from(got.loss.subarray(3, 6)).every((l) => l === 0)).toBe(true);
      expect(Array.from(got.grad.subarray(3, 6)).every((g) => g === 0)).toBe(true);
      const mean = lib.sigmoidFocalLoss(xs, { labels: ls, numClasses: 3, ignoreIndex: -1 });
      const kept = Float32Array.from([0.5, -1, 2, 0.3, 0.1, -0.2]);
      const plain = lib.sigmoidFocalLoss(kept, { labels: Int32Array.from([1, 3]), numClasses: 3 }, { reduction: 'sum' });
      expectRel(mean.loss, plain.loss / 6, 'mean over kept elements');
      expect(xs[3]).toBe(Infinity); // the caller's logits are not written
      // α 'auto' counts kept elements only: 1 positive, 5 negatives.
      expect(lib.sigmoidFocalLoss(xs, { labels: ls, numClasses: 3, ignoreIndex: -1 }, { alpha: 'auto' }).alpha).toBe(5 / 6);
    });

    it('with probabilities as input', () => {
      const p = new Float32Array(n).map(() => r());
      const got = lib.sigmoidFocalLoss(p, onehot, { input: 'probabilities', classWeight: v, posWeight: q, reduction: 'sum' });
      let want = 0;
      for (let i = 0; i < n; i++) {
        const t = onehot[i]!;
        const pi = p[i]!;
        const bce = -(t * Math.max(Math.log(pi), -100) + (1 - t) * Math.max(Math.log1p(-pi), -100));
        const pt = (1 - pi) * t + pi * (1 - t);
        want += (0.25 * t + 0.75 * (1 - t)) * pt * pt * bce * v[i % c]! * (t === 1 ? q[i % c]! : 1);
      }
      expectRel(got.loss, want, 'sum');
    });

    it('errors name the argument, and change nothing', () => {
      const xs = new Float32Array(6);
      const t = new Uint8Array(6);
      const f = new Float32Array(6);
      expect(() => lib.sigmoidFocalLoss(xs, f, { posWeight: new Float32Array(3) })).toThrow(/sigmoidFocalLoss: options.posWeight needs 0\/1 targets/);
      expect(() => lib.sigmoidFocalLoss(xs, t, { posWeight: new Float32Array(3), labelSmoothing: 0.1 })).toThrow(RangeError);
      expect(() => lib.sigmoidFocalLoss(xs, t, { classWeight: new Float32Array(4) })).toThrow(new RangeError('sigmoidFocalLoss: options.classWeight has length 4, which does not divide the logits length 6 (targets [N, C], class last)'));
      expect(() => lib.sigmoidFocalLoss(xs, t, { classWeight: new Float32Array(3), posWeight: new Float32Array(2) })).toThrow(/options.posWeight has length 2, expected 3/);
      expect(() => lib.sigmoidFocalLoss(xs, { labels: new Int32Array(2), numClasses: 3 }, { classWeight: new Float32Array(2) })).toThrow(/options.classWeight has length 2, expected targets.numClasses = 3/);
      expect(() => lib.sigmoidFocalLoss(xs, t, { classWeight: [1, 2, 3] as never })).toThrow(new TypeError('sigmoidFocalLoss: options.classWeight must be a Float32Array, got Array'));
      expect(() => lib.sigmoidFocalLoss(xs, { labels: new Int32Array(2), numClasses: 3, ignoreIndex: 3 })).toThrow(/targets.ignoreIndex is 3, a class or the background label/);
      expect(() => lib.sigmoidFocalLoss(xs, { labels: Int32Array.from([0, -7]), numClasses: 3, ignoreIndex: -1 })).toThrow(/targets.labels\[1\] is -7, expected an integer in \[0, 3\] or -1/);
      // GHM and streams do not take ignoreIndex: an unknown key, not silently dropped.
      expect(() => new lib.GHMC().forward(xs, { labels: new Int32Array(2), numClasses: 3, ignoreIndex: -1 })).toThrow(/unknown key in targets: 'ignoreIndex'/);
      const grad = new Float32Array(6).fill(7);
      expect(() => lib.sigmoidFocalLoss(xs, f, { posWeight: new Float32Array(3), out: { grad } })).toThrow(RangeError);
      expect(grad.every((g) => g === 7)).toBe(true);
    });
  });

  describe('classAxis with shape', () => {
    const r = rng(13);
    const [b, c, hh, ww] = [2, 5, 81, 83]; // 2·81·83 rows · 5 > 2·32768 elements
    const inner = hh * ww;
    const n = b * c * inner;
    const x = new Float32Array(n).map(() => (r() - 0.5) * 8);
    const labels = Int32Array.from({ length: b * inner }, (_, i) => (i % 29 === 0 ? -100 : Math.floor(r() * c)));
    const xl = toClassLast(x, b, c, inner);
    const shape = [b, c, hh, ww];

    it('softmax: the class-last call on a transposed copy, bit for bit (weights, every reduction)', () => {
      const w = Float32Array.from({ length: b * inner }, () => r());
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        for (const weight of [undefined, w]) {
          const got = lib.softmaxFocalLoss(x, labels, { numClasses: c, shape, classAxis: 1, reduction, weight, grad: true });
          const want = lib.softmaxFocalLoss(xl, labels, { numClasses: c, reduction, weight, grad: true });
          expect(got.loss).toEqual(want.loss);
          expect(got.grad).toEqual(fromClassLast(want.grad, b, c, inner));
        }
      }
      const ref = refSoftmaxFocal(xl, labels, { numClasses: c });
      expectRel(lib.softmaxFocalLoss(x, labels, { numClasses: c, shape, classAxis: 1 }).loss, ref.loss as number, 'vs float64');
      // Class axis 0 and the last (a no-op).
      const x0 = x.subarray(0, c * inner);
      const l0 = labels.subarray(0, inner).map((l) => (l < 0 ? 0 : l));
      const got0 = lib.softmaxFocalLoss(x0, l0, { numClasses: c, shape: [c, hh, ww], classAxis: 0, grad: true });
      const want0 = lib.softmaxFocalLoss(toClassLast(x0, 1, c, inner), l0, { numClasses: c, grad: true });
      expect(got0.loss).toBe(want0.loss);
      expect(got0.grad).toEqual(fromClassLast(want0.grad, 1, c, inner));
      expect(lib.softmaxFocalLoss(xl, labels, { numClasses: c, shape: [b, hh, ww, c], classAxis: 3 }).loss).toBe(lib.softmaxFocalLoss(xl, labels, { numClasses: c }).loss);
    });

    it('sigmoid, class indices: the class-last call, bit for bit (weights, ignored rows, out buffers)', () => {
      const sl = labels.map((l) => (l < 0 ? 255 : l === 0 ? c : l)); // some background rows too
      const rowW = Float32Array.from({ length: b * inner }, () => r());
      const elemW = new Float32Array(n).map(() => r());
      const cw = Float32Array.from({ length: c }, () => r() + 0.5);
      for (const reduction of ['mean', 'none'] as const) {
        for (const [weight, weightLast] of [[undefined, undefined], [rowW, rowW], [elemW, toClassLast(elemW, b, c, inner)]] as const) {
          const tg = { labels: sl, numClasses: c, ignoreIndex: 255 };
          const opts = { reduction, grad: true, classWeight: cw, posWeight: cw } as const;
          const got = lib.sigmoidFocalLoss(x, tg, { ...opts, weight, shape, classAxis: 1 });
          const want = lib.sigmoidFocalLoss(xl, tg, { ...opts, weight: weightLast });
          if (reduction === 'none') expect(got.loss).toEqual(fromClassLast(want.loss as Float32Array, b, c, inner));
          else expect(got.loss).toBe(want.loss);
          expect(got.grad).toEqual(fromClassLast(want.grad, b, c, inner));
        }
      }
      const grad = new Float32Array(n);
      const res = lib.sigmoidFocalLoss(x, { labels: sl.map((l) => (l === 255 ? 0 : l)), numClasses: c }, { shape, classAxis: 1, out: { grad } });
      expect(res.grad).toBe(grad);
      const ref = refSigmoidFocal(xl, { labels: sl.map((l) => (l === 255 ? 0 : l)), numClasses: c }, {});
      expectRel(res.loss, ref.loss as number, 'vs float64');
      expectClose(toClassLast(grad, b, c, inner), ref.grad, 'grad vs float64');
    });

    it('sigmoid, 0/1 targets laid out as the logits: the axis gives each element its class', () => {
      const t = new Uint8Array(n).map(() => (r() < 0.3 ? 1 : 0));
      const v = Float32Array.from({ length: c }, () => r() + 0.1);
      const q = Float32Array.from({ length: c }, () => r() * 3);
      const got = lib.sigmoidFocalLoss(x, t, { shape, classAxis: 1, classWeight: v, posWeight: q, reduction: 'none' });
      const want = refSigmoidFocal(x, t, { classWeight: v, posWeight: q, reduction: 'none', classOf: (i) => Math.floor(i / inner) % c });
      expectClose(got.loss, want.loss as Float64Array, 'loss');
    });

    it('errors name the argument', () => {
      const xs = new Float32Array(24);
      const ls = new Int32Array(8);
      expect(() => lib.softmaxFocalLoss(xs, ls, { numClasses: 3, classAxis: 1 })).toThrow(new RangeError('softmaxFocalLoss: options.classAxis needs options.shape (the logits\' dimensions)'));
      expect(() => lib.softmaxFocalLoss(xs, ls, { numClasses: 3, shape: [2, 3, 5], classAxis: 1 })).toThrow(/options.shape \[2, 3, 5\] has 30 elements, but logits has length 24/);
      expect(() => lib.softmaxFocalLoss(xs, ls, { numClasses: 3, shape: [2, 4, 3], classAxis: 1 })).toThrow(/options.shape has 4 classes on options.classAxis, but options.numClasses is 3/);
      expect(() => lib.softmaxFocalLoss(xs, ls, { numClasses: 3, shape: [2, 3, 4], classAxis: 3 })).toThrow(/options.classAxis must be an integer in \[0, 2\]/);
      expect(() => lib.softmaxFocalLoss(xs, ls, { numClasses: 3, shape: 24 as never })).toThrow(TypeError);
      expect(() => lib.sigmoidFocalLoss(xs, { labels: ls, numClasses: 3 }, { shape: [2, 3, 4], classAxis: 1, input: 'probabilities' })).toThrow(/does not combine with options.input 'probabilities'/);
      expect(() => lib.sigmoidFocalLoss(xs, { labels: ls, numClasses: 3 }, { shape: [2, 4, 3], classAxis: 1 })).toThrow(/but targets.numClasses is 3/);
    });
  });
});
