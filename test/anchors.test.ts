// The options of issue #20 (what the anchors' focal and GHM losses accept), against float64:
// golden values computed apart from this code (Python, float64, from the formulas of
// docs/SPEC.md §1), a float64 reference written here from the same formulas, and gradients by
// central finite differences of that reference. On both builds, across the scratch chunk
// boundary, and through the pool.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILDS, loadLib, type Lib } from './support/lib';
import { expectClose, expectRel } from './helpers/close';
import { bceWithLogits, findBin, ghmcEdges, ghmcGradNorm, ghmrEdges, ghmrGradNorm, sigmoid } from './helpers/reference';

const CHUNK = 1 << 15;

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// --- float64 references (SPEC §1, the options of issue #20) ------------------------------------

/** PyTorch's `binary_cross_entropy` (each log clamped at −100) focal term, and d/dp. */
function probElement(p: number, t: number, alpha: number | null, gamma: number): [number, number] {
  const bce = (t - 1) * Math.max(Math.log1p(-p), -100) - t * Math.max(Math.log(p), -100);
  const pt = (1 - p) * t + p * (1 - t);
  const aw = alpha === null ? 1 : alpha * t + (1 - alpha) * (1 - t);
  const pw = Math.pow(pt, gamma);
  const dpw = pt === 0 ? (gamma === 1 ? 1 : 0) : gamma * Math.pow(pt, gamma - 1);
  const dbce = (p - t) / Math.max(p * (1 - p), 1e-12);
  return [aw * pw * bce, aw * (dpw * (1 - 2 * t) * bce + pw * dbce)];
}

/** The logit focal term (SPEC §1) of one element. */
function logitLoss(x: number, t: number, alpha: number | null, gamma: number): number {
  const p = sigmoid(x);
  const bce = Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
  const pt = (1 - p) * t + p * (1 - t);
  const aw = alpha === null ? 1 : alpha * t + (1 - alpha) * (1 - t);
  return aw * Math.pow(pt, gamma) * bce;
}

const smooth = (t: number, eps: number) => Math.fround(t * (1 - eps) + eps / 2);

describe.each(BUILDS)('issue #20 options, %s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  describe("sigmoid focal, input: 'probabilities'", () => {
    // Golden: Python float64 of (t−1)·max(log1p(−p), −100) − t·max(log p, −100) times
    // α_t·pt^γ, and PyTorch's backward (p − t)/max(p(1 − p), 1e−12) through the product rule.
    const p = Float32Array.from([0, 1e-30, 0.3, 0.5, 0.9, 1, 0.999, 0.02]);
    const t = Float32Array.from([0, 1, 1, 0.2, 0, 0, 1, 0.7]);
    const golden: Array<[number, number, number[], number[]]> = [
      [0.25, 2, [0, 17.26938819666257, 0.1474866586388488, 0.11263641658277367, 1.3988202250424482, 75.0, 2.5011542112519934e-10, 0.5256924623621813],
        [0, -250000000034.5388, -0.8297237636299659, 0.4653273947290096, 9.183487701072544, 750000000150.0, -7.504810859282887e-7, -7.253196432247101]],
      [0.5, 0.5, [0, 34.53877639332514, 0.5036579382952587, 0.2450645358671368, 1.0922118824730545, 50.0, 1.581899366767464e-5, 1.1415176355621888],
        [0, -500000000017.2694, -1.7541889866109635, 0.5713027845568273, 5.350199691731415, 500000000025.0, -0.023736712094280403, -14.76023603994851]],
      [0.75, 1, [0, 51.80816458998771, 0.6320856906451358, 0.12130075711442531, 0.5180815785550112, 25.0, 7.503559239104308e-7, 1.1395067728274024],
        [0, -750000000051.8081, -2.65297947410106, 0.3555609058991998, 2.8256456175975684, 250000000025.0, -0.0015011066600271513, -15.063572060549646]],
      [0.25, 0, [0, 17.26938819666257, 0.3009931911473767, 0.45054566633109466, 1.7269386409316214, 75.0, 0.00025012186152321357, 1.0977907704024437],
        [0, -250000000000.0, -0.8333333002196431, 0.7799999904632569, 7.499998211861083, 750000000000.0, -0.25025024702515253, -13.877551296895769]],
    ];
    it.each(golden)('golden: α %s, γ %s', (alpha, gamma, loss, grad) => {
      const none = lib.sigmoidFocalLoss(p, t, { input: 'probabilities', alpha, gamma, reduction: 'none' });
      expectClose(none.loss, loss, 'loss');
      const sum = lib.sigmoidFocalLoss(p, t, { input: 'probabilities', alpha, gamma, reduction: 'sum', grad: true });
      expectRel(sum.loss, loss.reduce((a, b) => a + b), 'sum');
      expectClose(sum.grad, grad, 'grad');
    });

    it('every target layout, weights, reductions, across the chunk boundary; FD gradients', () => {
      const r = rng(7);
      const c = 5;
      const rows = Math.ceil((2 * CHUNK + 9) / c);
      const n = rows * c;
      const x = new Float32Array(n).map(() => (r() < 0.05 ? [0, 1][Math.floor(r() * 2)]! : r()));
      const labels = Int32Array.from({ length: rows }, () => Math.floor(r() * (c + 1)));
      const rowW = Float32Array.from({ length: rows }, () => r() * 2);
      const onehot = new Float32Array(n);
      labels.forEach((l, i) => l < c && (onehot[i * c + l] = 1));
      const bytes = Uint8Array.from(onehot);
      const soft = new Float32Array(n).map(() => r());
      const elemW = new Float32Array(n).map((_, i) => rowW[Math.floor(i / c)]!);
      const cases: Array<[string, Parameters<Lib['sigmoidFocalLoss']>[1], Float32Array, Float32Array | undefined, Float32Array | undefined]> = [
        ['soft', soft, soft, undefined, undefined],
        ['bytes, element weights', bytes, onehot, elemW, elemW],
        ['labels, row weights', { labels, numClasses: c }, onehot, rowW, elemW],
      ];
      for (const [what, targets, tRef, weight, wRef] of cases) {
        for (const gamma of [2, 1.5]) {
          const res = lib.sigmoidFocalLoss(x, targets, { input: 'probabilities', gamma, weight, grad: true, lossWeight: 0.5 });
          let sum = 0;
          const grad = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            const [l, g] = probElement(x[i]!, tRef[i]!, 0.25, gamma);
            const w = wRef ? wRef[i]! : 1;
            sum += l * w;
            grad[i] = (0.5 * g * w) / n;
          }
          expectRel(res.loss, (0.5 * sum) / n, `${what} γ ${gamma} loss`);
          expectClose(res.grad, grad, `${what} γ ${gamma} grad`);
          // The gradient by central differences of the float64 loss, away from p = 0 and 1.
          for (const i of [3, CHUNK + 1, n - 2]) {
            const pi = x[i]!;
            if (pi < 1e-3 || pi > 1 - 1e-3) continue;
            const h = 1e-6;
            const w = wRef ? wRef[i]! : 1;
            const fd = ((probElement(pi + h, tRef[i]!, 0.25, gamma)[0] - probElement(pi - h, tRef[i]!, 0.25, gamma)[0]) / (2 * h)) * w * 0.5 / n;
            expect(Math.abs(res.grad[i]! - fd)).toBeLessThanOrEqual(1e-6 * Math.max(1e-9, Math.abs(fd)) + 1e-12);
          }
        }
      }
    });

    it("α 'auto', reductions and out buffers as with logits", () => {
      const p = Float32Array.from([0.1, 0.8, 0.4, 0.95]);
      const t = Uint8Array.from([0, 1, 0, 0]);
      const r = lib.sigmoidFocalLoss(p, t, { input: 'probabilities', alpha: 'auto' });
      expect(r.alpha).toBe(0.75);
      const want = [0, 1, 2, 3].reduce((s, i) => s + probElement(p[i]!, t[i]!, 0.75, 2)[0], 0) / 4;
      expectRel(r.loss, want, 'auto mean');
      const grad = new Float32Array(4);
      const r2 = lib.sigmoidFocalLoss(p, t, { input: 'probabilities', out: { grad }, avgFactor: 2 });
      expect(r2.grad).toBe(grad);
      expectClose(grad, [0, 1, 2, 3].map((i) => probElement(p[i]!, t[i]!, 0.25, 2)[1] / 2), 'grad');
    });

    it('rejects probabilities outside [0, 1] and NaN, naming the argument', () => {
      const t = new Float32Array(3);
      for (const bad of [[0.5, 1.5, 0], [-0.1, 0.2, 0.3], [0.5, NaN, 0]]) {
        expect(() => lib.sigmoidFocalLoss(Float32Array.from(bad), t, { input: 'probabilities' })).toThrow(RangeError);
        expect(() => lib.sigmoidFocalLoss(Float32Array.from(bad), t, { input: 'probabilities' })).toThrow(/logits/);
      }
      expect(() => lib.sigmoidFocalLoss(t, t, { input: 'probs' as never })).toThrow(/options\.input must be one of 'logits', 'probabilities'/);
    });
  });

  describe('sigmoid focal, labelSmoothing', () => {
    it('golden (Keras: t·(1−ε) + ε/2 before everything else)', () => {
      const x = Float32Array.from([-3, -0.5, 0, 0.7, 2.5, 9]);
      const t = Uint8Array.from([0, 1, 1, 0, 1, 0]);
      const r = lib.sigmoidFocalLoss(x, t, { labelSmoothing: 0.1, reduction: 'none', grad: true });
      expectClose(r.loss, [0.0012367799782175884, 0.09718463677042213, 0.04765386969636602, 0.3285784419381796, 0.0007843226217502681, 5.593144694598085], 'loss');
      const m = lib.sigmoidFocalLoss(x, t, { labelSmoothing: 0.1, grad: true });
      expectRel(m.loss, 1.0114304576005035, 'mean');
      expectClose(m.grad, [0.0010690883041814848, -0.12598878860693594, -0.07382598144156101, 0.3914717730546093, -0.0009362774907360684, 0.6226785025999638].map((g) => g / 6), 'grad');
    });

    it('equals the plain call on smoothed soft targets, for every layout, across chunks', () => {
      const r = rng(11);
      const c = 3;
      const rows = Math.ceil((CHUNK + 7) / c);
      const n = rows * c;
      const x = new Float32Array(n).map(() => (r() - 0.5) * 12);
      const labels = Int32Array.from({ length: rows }, () => Math.floor(r() * (c + 1)));
      const onehot = new Float32Array(n);
      labels.forEach((l, i) => l < c && (onehot[i * c + l] = 1));
      const soft = new Float32Array(n).map(() => r());
      const rowW = Float32Array.from({ length: rows }, () => r());
      for (const eps of [0.1, 1, 0.37]) {
        for (const [targets, plain, weight] of [
          [soft, soft, undefined],
          [Uint8Array.from(onehot), onehot, undefined],
          [{ labels, numClasses: c }, onehot, rowW],
        ] as const) {
          const smoothed = plain.map((v) => smooth(v, eps));
          const w = weight ? new Float32Array(n).map((_, i) => weight[Math.floor(i / c)]!) : undefined;
          const got = lib.sigmoidFocalLoss(x, targets, { labelSmoothing: eps, weight, alpha: 0.4, grad: true });
          const want = lib.sigmoidFocalLoss(x, smoothed, { weight: w, alpha: 0.4, grad: true });
          expectRel(got.loss, want.loss, `ε ${eps} loss`, 1e-6);
          expectClose(got.grad, want.grad, `ε ${eps} grad`, 1e-7);
          let ref = 0;
          for (let i = 0; i < n; i++) ref += logitLoss(x[i]!, smoothed[i]!, 0.4, 2) * (w ? w[i]! : 1);
          expectRel(got.loss, ref / n, `ε ${eps} vs float64`);
        }
      }
      // With probabilities too: smoothing comes first.
      const p = new Float32Array(8).map(() => r());
      const t = Uint8Array.from([0, 1, 0, 1, 1, 0, 0, 1]);
      const got = lib.sigmoidFocalLoss(p, t, { input: 'probabilities', labelSmoothing: 0.2, reduction: 'sum' });
      expectRel(got.loss, [...p].reduce((s, pi, i) => s + probElement(pi, smooth(t[i]!, 0.2), 0.25, 2)[0], 0), 'probabilities + smoothing');
    });

    it('ε = 0 is the plain call bit for bit; bad ε and out-of-range targets throw', () => {
      const x = Float32Array.from([1, -2, 0.5]);
      const t = Float32Array.from([0, 1, 0.3]);
      const a = lib.sigmoidFocalLoss(x, t, { labelSmoothing: 0, grad: true });
      const b = lib.sigmoidFocalLoss(x, t, { grad: true });
      expect(a.loss).toBe(b.loss);
      expect(a.grad).toEqual(b.grad);
      expect(() => lib.sigmoidFocalLoss(x, t, { labelSmoothing: 1.5 })).toThrow('sigmoidFocalLoss: options.labelSmoothing must be in [0, 1], got 1.5');
      expect(() => lib.sigmoidFocalLoss(x, t, { labelSmoothing: '0.1' as never })).toThrow(TypeError);
      // 1.25 would smooth to 0.875, inside [0, 1]: still rejected, as given.
      expect(() => lib.sigmoidFocalLoss(x, Float32Array.from([0, 1.25, 0]), { labelSmoothing: 0.5 })).toThrow('targets has values in [0, 1.25]');
      expect(() => lib.sigmoidFocalLoss(x, Uint8Array.from([0, 2, 0]), { labelSmoothing: 0.1 })).toThrow(/binary targets must be 0 or 1/);
      expect(() => lib.sigmoidFocalLoss(x, Uint8Array.from([0, 2, 0]), { input: 'probabilities' })).toThrow(/binary targets must be 0 or 1/);
    });
  });
});

/**
 * GHM terms in float64 (SPEC §3–4, momentum 0): lossWeight · (tot / num_bin / n) · term / tot for
 * valid elements, 0 for the others; `g` and `term` per element, `tot` as the loss defines it.
 */
function ghmTerms(g: number[], term: number[], valid: boolean[], edges: Float64Array, tot: number, lossWeight: number): number[] {
  const bins = edges.length - 1;
  const bin = g.map((v, i) => (valid[i] ? findBin(v, edges) : -1));
  const num = new Array<number>(bins).fill(0);
  bin.forEach((b) => b >= 0 && num[b]!++);
  const nonEmpty = num.filter((v) => v > 0).length;
  return term.map((v, i) => (bin[i]! >= 0 ? (lossWeight * (tot / num[bin[i]!]! / nonEmpty) * v) / tot : 0));
}

describe.each(BUILDS)("GHM reduction 'none' and GHMR avgFactor, %s build", (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  it("GHM-C 'none': the float64 terms, summing to the loss; every target layout, across chunks", () => {
    const r = rng(5);
    const c = 3;
    const rows = Math.ceil((CHUNK + 11) / c);
    const n = rows * c;
    const x = new Float32Array(n).map(() => (r() - 0.5) * 10);
    const labels = Int32Array.from({ length: rows }, () => Math.floor(r() * (c + 1)));
    const onehot = new Float32Array(n);
    labels.forEach((l, i) => l < c && (onehot[i * c + l] = 1));
    const rowW = Float32Array.from({ length: rows }, () => (r() < 0.2 ? 0 : 1));
    const elemW = new Float32Array(n).map((_, i) => rowW[Math.floor(i / c)]!);
    const soft = new Float32Array(n).map(() => r());
    for (const [targets, t, w, wRef] of [
      [Uint8Array.from(onehot), onehot, elemW, elemW],
      [{ labels, numClasses: c }, onehot, rowW, elemW],
      [soft, soft, undefined, undefined],
    ] as const) {
      const ghmc = new lib.GHMC({ bins: 30, lossWeight: 2 });
      const res = ghmc.forward(x, targets, w, { reduction: 'none', grad: true });
      const valid = Array.from({ length: n }, (_, i) => (wRef ? wRef[i]! > 0 : true));
      const tot = valid.filter(Boolean).length;
      const g = Array.from(x, (xi, i) => ghmcGradNorm(xi, t[i]!));
      const want = ghmTerms(g, Array.from(x, (xi, i) => bceWithLogits(xi, t[i]!)), valid, ghmcEdges(30), tot, 2);
      expectClose(res.loss, want, 'terms');
      const mean = new lib.GHMC({ bins: 30, lossWeight: 2 }).forward(x, targets, w, { grad: true });
      expectRel(res.loss.reduce((a, b) => a + b, 0), mean.loss, 'Σ terms = loss');
      expect(res.grad).toEqual(mean.grad);
    }
  });

  it("GHM-C 'none' with momentum steps the state as 'mean' does; NaN and invalid elements", () => {
    const x = Float32Array.from([0.3, -2, 5, NaN, 1, Infinity]);
    const t = Uint8Array.from([1, 0, 1, 0, 0, 0]);
    const w = Float32Array.from([1, 1, 1, 1, 0, 0]);
    const a = new lib.GHMC({ bins: 5, momentum: 0.5 });
    const b = new lib.GHMC({ bins: 5, momentum: 0.5 });
    for (let k = 0; k < 3; k++) {
      const none = a.forward(x.subarray(0, 3), t.subarray(0, 3), undefined, { reduction: 'none' });
      const mean = b.forward(x.subarray(0, 3), t.subarray(0, 3));
      expectRel(none.loss.reduce((s, v) => s + v, 0), mean.loss, 'Σ terms');
      expect(a.accSum).toEqual(b.accSum);
    }
    const r = a.forward(x, t, w, { reduction: 'none' }).loss;
    expect(Number.isNaN(r[3])).toBe(true); // a valid NaN logit: its term is NaN, as the loss
    expect([r[4], r[5]]).toEqual([0, 0]); // weight 0, infinite logit included: nothing
    expect(() => a.forward(x, t, w, { reduction: 'sum' as never })).toThrow("GHMC.forward: options.reduction must be one of 'mean', 'none', got 'sum'");
    expect(() => a.forward(x, t, w, { avgFactor: 2 } as never)).toThrow(/avgFactor/);
  });

  it("GHM-R 'none': the float64 terms; avgFactor accepted with mmdetection's effect (none)", () => {
    const r = rng(9);
    const n = CHUNK + 13;
    const pred = new Float32Array(n).map(() => (r() - 0.5) * 0.2);
    const target = new Float32Array(n).map(() => (r() - 0.5) * 0.2);
    const lw = new Float32Array(n).map(() => (r() < 0.1 ? 0 : 0.5 + r()));
    const mu = 0.02;
    const ghmr = new lib.GHMR({ mu, bins: 10 });
    const res = ghmr.forward(pred, target, lw, { reduction: 'none', grad: true, avgFactor: 7 });
    const d = Array.from(pred, (p, i) => p - target[i]!);
    const tot = Math.max(lw.reduce((a, b) => a + b, 0), 1);
    const want = ghmTerms(d.map((v) => ghmrGradNorm(v, mu)), d.map((v) => Math.sqrt(v * v + mu * mu) - mu), Array.from(lw, (v) => v > 0), ghmrEdges(10), tot, 1);
    expectClose(res.loss, want, 'terms');
    const plain = new lib.GHMR({ mu, bins: 10 }).forward(pred, target, lw, { grad: true });
    const withAvg = new lib.GHMR({ mu, bins: 10 }).forward(pred, target, lw, { avgFactor: 3 });
    expect(withAvg.loss).toBe(plain.loss);
    expectRel(res.loss.reduce((a, b) => a + b, 0), plain.loss, 'Σ terms');
    expect(res.grad).toEqual(plain.grad);
    expect(() => ghmr.forward(pred, target, lw, { avgFactor: 0 })).toThrow('GHMR.forward: options.avgFactor');
    const before = ghmr.accSum;
    expect(() => ghmr.forward(pred, target, lw, { reduction: 'nope' as never })).toThrow(RangeError);
    expect(ghmr.accSum).toEqual(before);
  });
});

describe('issue #20 options through the pool', () => {
  let lib: Lib;
  let pool: Awaited<ReturnType<Lib['createPool']>>;
  beforeAll(async () => {
    lib = await loadLib('simd');
    pool = await lib.createPool({ threads: 2, chunkElements: 4096 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('probabilities and label smoothing: the single-thread result, bit for bit', async () => {
    const r = rng(3);
    const c = 4;
    const n = c * 5000;
    const p = new Float32Array(n).map(() => r());
    const labels = Int32Array.from({ length: n / c }, () => Math.floor(r() * (c + 1)));
    for (const options of [
      { input: 'probabilities' as const, grad: true, alpha: 'auto' as const },
      { labelSmoothing: 0.1, grad: true, reduction: 'none' as const },
      { input: 'probabilities' as const, labelSmoothing: 0.3, grad: true, gamma: 1.5 },
    ]) {
      const one = lib.sigmoidFocalLoss(p, { labels, numClasses: c }, options);
      const many = await pool.sigmoidFocalLoss(p, { labels, numClasses: c }, options);
      expect(many.loss).toEqual(one.loss);
      expect(many.grad).toEqual(one.grad);
      expect(many.alpha).toBe(one.alpha);
    }
    const bad = p.slice();
    bad[n - 1] = 2;
    await expect(pool.sigmoidFocalLoss(bad, { labels, numClasses: c }, { input: 'probabilities' })).rejects.toThrow(/logits has values in/);
  });

  it("GHM: avgFactor as on one thread; reduction 'none' rejected before any work", async () => {
    const pred = Float32Array.from([0.1, -0.2, 0.3, 0]);
    const target = new Float32Array(4);
    const one = new lib.GHMR({ momentum: 0.5 }).forward(pred, target, undefined, { avgFactor: 2 });
    const ghmr = new lib.GHMR({ momentum: 0.5 });
    expect((await pool.ghmr(ghmr, pred, target, undefined, { avgFactor: 2 } as never)).loss).toBe(one.loss);
    const ghmc = new lib.GHMC({ momentum: 0.5 });
    await expect(pool.ghmc(ghmc, pred, Uint8Array.from([0, 1, 0, 1]), undefined, { reduction: 'none' } as never)).rejects.toThrow("pool.ghmc: options.reduction 'none' runs on the calling thread only");
    expect(ghmc.accSum).toEqual(new Float64Array(10));
  });

  it('classWeight, posWeight, ignoreIndex: the single-thread result, bit for bit; a class axis refused', async () => {
    const r = rng(21);
    const c = 4;
    const n = c * 5000;
    const x = new Float32Array(n).map(() => (r() - 0.5) * 6);
    const labels = Int32Array.from({ length: n / c }, (_, i) => (i % 7 === 0 ? -1 : Math.floor(r() * (c + 1))));
    const v = Float32Array.from({ length: c }, () => r());
    for (const options of [
      { classWeight: v, posWeight: v, grad: true, alpha: 'auto' as const },
      { classWeight: v, grad: true, reduction: 'none' as const },
      { posWeight: v, input: 'probabilities' as const },
    ]) {
      const xs = options.input ? x.map((v) => sigmoid(v)) : x;
      const one = lib.sigmoidFocalLoss(xs, { labels, numClasses: c, ignoreIndex: -1 }, options);
      const many = await pool.sigmoidFocalLoss(xs, { labels, numClasses: c, ignoreIndex: -1 }, options);
      expect(many.loss).toEqual(one.loss);
      expect(many.grad).toEqual(one.grad);
      expect(many.alpha).toBe(one.alpha);
    }
    await expect(pool.sigmoidFocalLoss(x, { labels, numClasses: c, ignoreIndex: -1 }, { shape: [2, c, 2500], classAxis: 1 })).rejects.toThrow(
      'pool.sigmoidFocalLoss: options.shape with class-index targets and a class axis before the last runs on the calling thread only',
    );
  });
});
