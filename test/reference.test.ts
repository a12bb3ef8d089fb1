/**
 * Validates the float64 oracle (test/helpers/reference.ts) against every golden case, with the
 * SPEC §5 bounds. If these pass, property tests may trust the oracle on inputs the golden files
 * do not cover.
 *
 * Semantics the golden files pin down (or SPEC leaves open and the oracle chooses):
 * - GHM bins: g is compared in float64 against the float32 edges; rounding g to float32 first
 *   picks the same bins on every golden input (checked below), as SPEC §5 promises.
 * - GHM EMA: acc = m·acc + (1-m)·num evaluated in float64 matches the golden accSum bit for bit.
 * - 'auto' alpha: F/(P+F) as a float64 division matches alphaUsed exactly; with no element of
 *   positive weight the oracle chooses α = 0.5.
 * - avgFactor: mean → Σ/avgFactor exactly (no mmdetection eps); with 'sum' the oracle throws,
 *   with 'none' it is ignored; lossWeight scales the elementwise 'none' losses and all gradients.
 * - Sigmoid 'mean' over zero elements (no avgFactor) is NaN (0/0, as torch.mean of an empty
 *   tensor) — the library's decision. Softmax 'mean' divides by max(non-ignored rows, 1) (SPEC).
 * - Softmax focal: default alpha 0.25 (SPEC §2 names no default), gamma 2, reduction 'mean',
 *   ignoreIndex -100; 'none' gives one loss per row (0 for ignored rows). Every golden case sets
 *   alpha.
 * - GHM: a valid element whose g is NaN (NaN logit or pred) counts towards tot, falls in no bin
 *   and makes the loss NaN (0·NaN, as in PyTorch); the other elements update the state as usual.
 *   A batch with no valid element: loss 0, gradient zeros, state unchanged.
 */
import { describe, expect, it } from 'vitest';
import { rng } from './helpers/random';
import {
  expectElementsClose,
  expectExactlyEqual,
  expectReducedClose,
  loadFamilyCases,
  loadGhmcCases,
  loadGhmrCases,
  loadSigmoidCases,
  loadSoftmaxCases,
  type Expected,
  type FamilyCase,
} from './helpers/golden.js';
import {
  findBin,
  ghmcEdges,
  ghmcGradNorm,
  ghmrEdges,
  ghmrGradNorm,
  RefGHMC,
  RefGHMR,
  refDistributionFocal,
  refQualityFocal,
  refSigmoidFocal,
  refSoftmaxFocal,
  refSoftmaxSoft,
  refVarifocal,
  type RefFamilyResult,
} from './helpers/reference.js';

/** Loss (scalar or elementwise) and gradient against the golden values, SPEC §5 bounds. */
function checkAgainst(
  actual: { loss: number | Float64Array; grad: Float64Array },
  expected: Expected,
  label: string,
): void {
  if (typeof expected.loss === 'number') {
    expect(typeof actual.loss, `${label}: loss kind`).toBe('number');
    expectReducedClose(actual.loss as number, expected.loss, 1e-5, `${label} loss`);
  } else {
    expect(actual.loss, `${label}: loss kind`).toBeInstanceOf(Float64Array);
    expectElementsClose(actual.loss as Float64Array, expected.loss, 1e-5, `${label} loss`);
  }
  expectElementsClose(actual.grad, expected.grad, 1e-5, `${label} grad`);
}

describe('golden: sigmoid focal loss', () => {
  for (const c of loadSigmoidCases()) {
    it(c.name, () => {
      const { alpha, gamma, reduction, avgFactor, lossWeight } = c.options;
      const common = { alpha, gamma, reduction, avgFactor, lossWeight };
      if (c.kind === 'sigmoid_focal') {
        const out = refSigmoidFocal(c.logits, c.targets, { ...common, weight: c.weight });
        checkAgainst(out, c.expected, c.name);
        expect(out.alphaUsed).toBe(c.alphaUsed);
      } else {
        const targets = { labels: c.labels, numClasses: c.options.numClasses };
        const out = refSigmoidFocal(c.logits, targets, { ...common, weight: c.rowWeight });
        checkAgainst(out, c.expected, c.name);
      }
    });
  }
});

describe('golden: softmax focal loss', () => {
  for (const c of loadSoftmaxCases()) {
    it(c.name, () => {
      const out = refSoftmaxFocal(c.logits, c.labels, c.options);
      checkAgainst(out, c.expected, c.name);
    });
  }
});

/** The oracle's result for a focal_family.json case (SPEC §6–9). */
function refFamilyCase(c: FamilyCase): { loss: number | Float64Array; grad: Float64Array } {
  switch (c.kind) {
    case 'poly1_sigmoid':
      return refSigmoidFocal(c.logits, c.targets, { ...c.options, weight: c.weight });
    case 'poly1_softmax':
      return refSoftmaxFocal(c.logits, c.labels, c.options);
    case 'quality_focal': {
      const { numClasses, ...o } = c.options;
      return refQualityFocal(c.logits, { labels: c.labels, scores: c.scores, numClasses }, { ...o, weight: c.weight });
    }
    case 'varifocal':
      return refVarifocal(c.logits, c.targets, { ...c.options, weight: c.weight });
    case 'distribution_focal':
      return refDistributionFocal(c.logits, c.targets, { ...c.options, weight: c.weight });
  }
}

describe('golden: the focal family (Poly-1, QFL, VFL, DFL)', () => {
  for (const c of loadFamilyCases()) {
    it(`${c.kind}: ${c.name}`, () => {
      checkAgainst(refFamilyCase(c), c.expected, c.name);
    });
  }
});

describe('golden: GHM-C', () => {
  for (const c of loadGhmcCases()) {
    it(c.name, () => {
      const ghm = new RefGHMC(c.options);
      if (c.kind === 'ghmc_labels') {
        const targets = { labels: c.labels, numClasses: c.options.numClasses };
        checkAgainst(ghm.forward(c.logits, targets, c.rowLabelWeight), c.expected, c.name);
        return;
      }
      c.batches.forEach((b, i) => {
        const label = `${c.name} batch ${i}`;
        checkAgainst(ghm.forward(b.logits, b.targets, b.labelWeight), b.expected, label);
        if (b.expected.accSum !== null) {
          expectExactlyEqual(ghm.accSum, b.expected.accSum, `${label} accSum`);
        }
      });
    });
  }
});

describe('golden: GHM-R', () => {
  for (const c of loadGhmrCases()) {
    it(c.name, () => {
      const ghm = new RefGHMR(c.options);
      c.batches.forEach((b, i) => {
        const label = `${c.name} batch ${i}`;
        checkAgainst(ghm.forward(b.pred, b.target, b.labelWeight), b.expected, label);
        if (b.expected.accSum !== null) {
          expectExactlyEqual(ghm.accSum, b.expected.accSum, `${label} accSum`);
        }
      });
    });
  }
});

describe('golden: GHM g values sit clear of the float32 edges', () => {
  // Bins must not depend on whether g is rounded to float32 (as a float32 kernel computes it).
  it('GHM-C', () => {
    const moved: string[] = [];
    for (const c of loadGhmcCases()) {
      const edges = ghmcEdges(c.options.bins);
      const oneHot = (labels: Int32Array, classes: number) => (k: number) =>
        labels[Math.floor(k / classes)] === k % classes ? 1 : 0;
      const inputs =
        c.kind === 'ghmc'
          ? c.batches.map((b) => ({ x: b.logits, t: (k: number) => b.targets[k]! }))
          : [{ x: c.logits, t: oneHot(c.labels, c.options.numClasses) }];
      for (const { x, t } of inputs) {
        for (let k = 0; k < x.length; k++) {
          const g = ghmcGradNorm(x[k]!, t(k));
          if (findBin(Math.fround(g), edges) !== findBin(g, edges)) {
            moved.push(`${c.name}[${k}] g=${g}`);
          }
        }
      }
    }
    expect(moved).toEqual([]);
  });

  it('GHM-R', () => {
    const moved: string[] = [];
    for (const c of loadGhmrCases()) {
      const edges = ghmrEdges(c.options.bins);
      for (const b of c.batches) {
        for (let k = 0; k < b.pred.length; k++) {
          const g = ghmrGradNorm(b.pred[k]! - b.target[k]!, c.options.mu);
          if (findBin(Math.fround(g), edges) !== findBin(g, edges)) {
            moved.push(`${c.name}[${k}] g=${g}`);
          }
        }
      }
    }
    expect(moved).toEqual([]);
  });
});

describe('comparison helpers are not vacuous', () => {
  it('expectReducedClose', () => {
    expectReducedClose(1 + 0.9e-5, 1);
    expect(() => expectReducedClose(1 + 1.1e-5, 1)).toThrow(/relative error/);
    expect(() => expectReducedClose(1e-300, 0)).toThrow();
    expect(() => expectReducedClose(NaN, 1)).toThrow();
  });

  it('expectElementsClose', () => {
    expectElementsClose([0.5 + 0.9e-5, 100 + 0.9e-3], [0.5, 100]);
    expect(() => expectElementsClose([0, 100 + 1.1e-3], [0, 100])).toThrow(/\[1\]/);
    expect(() => expectElementsClose([1, 2], [1])).toThrow(/length/);
    expect(() => expectElementsClose([NaN], [0])).toThrow();
  });

  it('expectExactlyEqual', () => {
    expectExactlyEqual([1.5, 2], Float64Array.of(1.5, 2));
    expect(() => expectExactlyEqual([1.5 + 2 ** -52], [1.5])).toThrow(/exactly/);
  });
});

// The golden generator and the oracle both follow SPEC's gradient formulas, so agreeing with the
// golden files cannot catch a wrong formula. Central differences can: they only use the loss.
describe('oracle gradients match finite differences of the oracle loss', () => {

  const H = 2 ** -10;
  // Central differences with h ≈ 1e-3 are accurate to O(h²·f''') ≈ 1e-7 here; 1e-5 leaves margin.
  const FD_TOL = 1e-5;

  /** Logits shifted by ±H, rounded to float32; also the step actually taken per element. */
  function shifted(x: Float32Array, mask?: (k: number) => boolean) {
    const plus = new Float32Array(x);
    const minus = new Float32Array(x);
    const step = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) {
      if (mask && !mask(k)) continue;
      plus[k] = x[k]! + H;
      minus[k] = x[k]! - H;
      step[k] = plus[k]! - minus[k]!;
    }
    return { plus, minus, step };
  }

  for (const gamma of [0, 0.5, 1, 2, 2.5]) {
    for (const soft of [false, true]) {
      it(`sigmoid focal, γ=${gamma}, ${soft ? 'soft' : 'binary'} targets`, () => {
        const rand = rng(1000 + 10 * gamma + (soft ? 1 : 0));
        const n = 500;
        const x = Float32Array.from({ length: n }, () => (rand() - 0.5) * 8);
        const t = soft
          ? Float32Array.from({ length: n }, () => rand())
          : Uint8Array.from({ length: n }, () => (rand() < 0.4 ? 1 : 0));
        const weight = Float32Array.from({ length: n }, () => rand() * 2);
        const opts = { alpha: 0.3, gamma, weight, reduction: 'none' as const, lossWeight: 1.5 };
        const { grad } = refSigmoidFocal(x, t, opts);
        // reduction 'none': element k's loss depends on x[k] only, so shift all at once.
        const { plus, minus, step } = shifted(x);
        const lp = refSigmoidFocal(plus, t, opts).loss as Float64Array;
        const lm = refSigmoidFocal(minus, t, opts).loss as Float64Array;
        const fd = lp.map((v, k) => (v - lm[k]!) / step[k]!);
        expectElementsClose(grad, fd, FD_TOL, 'grad vs finite differences');
      });
    }
  }

  for (const gamma of [0, 0.5, 2]) {
    it(`softmax focal, γ=${gamma}, per-class alpha`, () => {
      const rand = rng(2000 + 10 * gamma);
      const rows = 60;
      const numClasses = 5;
      const x = Float32Array.from({ length: rows * numClasses }, () => (rand() - 0.5) * 8);
      const labels = Int32Array.from({ length: rows }, (_, i) =>
        i % 7 === 0 ? -100 : Math.floor(rand() * numClasses),
      );
      const alpha = Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5);
      const opts = { numClasses, alpha, gamma, reduction: 'none' as const };
      const { grad } = refSoftmaxFocal(x, labels, opts);
      const fd = new Float64Array(x.length);
      // Rows are independent: shift column j of every row at once, read each row's loss.
      for (let j = 0; j < numClasses; j++) {
        const { plus, minus, step } = shifted(x, (k) => k % numClasses === j);
        const lp = refSoftmaxFocal(plus, labels, opts).loss as Float64Array;
        const lm = refSoftmaxFocal(minus, labels, opts).loss as Float64Array;
        for (let i = 0; i < rows; i++) {
          const k = i * numClasses + j;
          fd[k] = (lp[i]! - lm[i]!) / step[k]!;
        }
      }
      expectElementsClose(grad, fd, FD_TOL, 'grad vs finite differences');
    });
  }
});

// The family's gradients (SPEC §6–9, soft-target softmax) against central differences of the
// oracle's own loss, in float64 throughout (the oracle takes any ArrayLike logits), on reduction
// 'sum' so that every logit's derivative is one difference of the reduced loss.
describe('oracle gradients of the focal family match finite differences of the oracle loss', () => {
  const H = 1e-5;
  const TOL = 1e-6;

  function fdCheck(x: Float64Array, f: (x: Float64Array) => RefFamilyResult, label: string): void {
    const { grad } = f(x);
    const fd = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const plus = x.slice();
      const minus = x.slice();
      plus[k] = x[k]! + H;
      minus[k] = x[k]! - H;
      fd[k] = ((f(plus).loss as number) - (f(minus).loss as number)) / (plus[k]! - minus[k]!);
    }
    expectElementsClose(grad, fd, TOL, `${label}: grad vs finite differences`);
  }

  const logits64 = (n: number, seed: number, scale = 8) => {
    const r = rng(seed);
    return Float64Array.from({ length: n }, () => (r() - 0.5) * scale);
  };

  for (const gamma of [0, 0.5, 1, 2]) {
    for (const eps of [-1, 0.5, 2]) {
      it(`Poly-1 sigmoid, γ=${gamma}, ε=${eps}: soft, binary and class-index targets`, () => {
        const r = rng(3000 + gamma * 10 + eps);
        const x = logits64(24, 3100 + gamma * 10 + eps);
        const soft = Float32Array.from({ length: 24 }, () => r());
        const bin = Uint8Array.from({ length: 24 }, () => (r() < 0.4 ? 1 : 0));
        const labels = { labels: Int32Array.of(0, 3, 2, 4, 1, 4), numClasses: 4, ignoreIndex: -1 };
        labels.labels[5] = -1;
        const w = Float32Array.from({ length: 24 }, () => r() * 2);
        for (const [name, t] of [['soft', soft], ['binary', bin], ['labels', labels]] as const) {
          fdCheck(x, (z) => refSigmoidFocal(z, t, { alpha: 0.3, gamma, poly1: eps, weight: w, reduction: 'sum' }) as RefFamilyResult, name);
        }
      });
    }
  }

  for (const gamma of [0, 0.5, 2]) {
    it(`Poly-1 softmax, γ=${gamma}, ε=-1 and 2, per-class alpha, row weights`, () => {
      const x = logits64(6 * 5, 3200 + gamma);
      const labels = Int32Array.of(0, 4, -100, 2, 2, 1);
      for (const eps of [-1, 2]) {
        fdCheck(x, (z) => refSoftmaxFocal(z, labels, { numClasses: 5, alpha: [0.1, 0.2, 0.3, 0.4, 0.5], gamma, poly1: eps, weight: [1, 2, 3, 0.5, 0, 1.5], reduction: 'sum' }) as RefFamilyResult, `ε=${eps}`);
      }
    });
  }

  for (const beta of [0, 0.5, 1, 2, 3]) {
    it(`QFL, β=${beta}`, () => {
      const x = logits64(7 * 4, 3300 + beta);
      const t = { labels: Int32Array.of(0, 3, 4, 1, 2, 4, 0), scores: Float32Array.of(0.9, 0.3, 0, 1, 0.5, 0.2, 0), numClasses: 4 };
      fdCheck(x, (z) => refQualityFocal(z, t, { beta, weight: [1, 2, 0.5, 1, 3, 1, 1], reduction: 'sum' }), 'QFL');
    });
  }

  for (const gamma of [0, 0.5, 1, 2]) {
    for (const iouWeighted of [true, false]) {
      it(`VFL, γ=${gamma}, iouWeighted ${iouWeighted}`, () => {
        const x = logits64(12, 3400 + gamma);
        const q = Float32Array.of(0, 0.7, 0, 0, 1, 0.2, 0, 0.05, 0, 0, 0.5, 0);
        const w = Float32Array.of(1, 2, 0.5, 1, 1, 3, 1, 1, 0, 1, 2, 1);
        fdCheck(x, (z) => refVarifocal(z, q, { alpha: 0.6, gamma, iouWeighted, weight: w, reduction: 'sum' }), 'VFL');
      });
    }
  }

  it('DFL, integer and fractional targets, bins 1 and 6', () => {
    for (const [bins, y] of [[1, Float32Array.of(0, 0.25, 0.999)], [6, Float32Array.of(0, 5, 2.5, 0.1, 5.75, 3)]] as const) {
      const x = logits64(y.length * (bins + 1), 3500 + bins);
      fdCheck(x, (z) => refDistributionFocal(z, y, { bins, weight: Float32Array.from(y, (_, i) => 1 + i / 2), reduction: 'sum' }), `bins ${bins}`);
    }
  });

  for (const gamma of [0, 0.5, 1, 2]) {
    it(`softmax with soft targets, γ=${gamma}: probability rows and smoothed labels`, () => {
      const c = 4;
      const x = logits64(5 * c, 3600 + gamma);
      const probs = Float32Array.of(0.1, 0.2, 0.3, 0.4, 1, 0, 0, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0.9, 0.1);
      const alpha = [0.1, 0.5, 0.25, 1];
      const weight = [1, 2, 0.5, 1.5, 1];
      fdCheck(x, (z) => refSoftmaxSoft(z, probs, { numClasses: c, alpha, gamma, weight, reduction: 'sum' }), 'probabilities');
      const smoothed = { labels: Int32Array.of(0, 3, -100, 1, 2), smoothing: 0.2 };
      fdCheck(x, (z) => refSoftmaxSoft(z, smoothed, { numClasses: c, alpha, gamma, weight, reduction: 'sum' }), 'smoothed labels');
    });
  }
});

describe('library semantics decisions the oracle follows', () => {
  it("sigmoid 'mean' over zero elements is NaN; with avgFactor it is 0", () => {
    const empty = new Float32Array(0);
    expect(refSigmoidFocal(empty, new Uint8Array(0)).loss).toBeNaN();
    expect(refSigmoidFocal(empty, { labels: new Int32Array(0), numClasses: 3 }).loss).toBeNaN();
    expect(refSigmoidFocal(empty, new Uint8Array(0), { avgFactor: 2 }).loss).toBe(0);
    expect(refSigmoidFocal(empty, new Uint8Array(0), { reduction: 'sum' }).loss).toBe(0);
  });

  it("'auto' alpha with no element of positive weight is 0.5", () => {
    const x = Float32Array.of(1, -2, 3);
    const t = Uint8Array.of(1, 0, 0);
    expect(refSigmoidFocal(x, t, { alpha: 'auto', weight: [0, 0, -1] }).alphaUsed).toBe(0.5);
    expect(refSigmoidFocal(x, t, { alpha: 'auto' }).alphaUsed).toBe(2 / 3);
  });

  it("avgFactor: error with 'sum', ignored with 'none'; lossWeight scales 'none' and grad", () => {
    const x = Float32Array.of(0.5, -1.5, 2);
    const t = Uint8Array.of(1, 0, 1);
    expect(() => refSigmoidFocal(x, t, { reduction: 'sum', avgFactor: 2 })).toThrow(RangeError);
    const plain = refSigmoidFocal(x, t, { reduction: 'none' });
    const scaled = refSigmoidFocal(x, t, { reduction: 'none', avgFactor: 7, lossWeight: 3 });
    for (let i = 0; i < 3; i++) {
      expect((scaled.loss as Float64Array)[i]).toBeCloseTo(3 * (plain.loss as Float64Array)[i]!, 14);
      expect(scaled.grad[i]).toBeCloseTo(3 * plain.grad[i]!, 14);
    }
  });

  it('softmax defaults and per-row none losses', () => {
    const x = Float32Array.of(1, 2, 3, 0, 0, 0);
    const labels = Int32Array.of(2, -100);
    const d = refSoftmaxFocal(x, labels, { numClasses: 3 });
    const e = refSoftmaxFocal(x, labels, { numClasses: 3, alpha: 0.25, gamma: 2, reduction: 'mean', ignoreIndex: -100 });
    expect(d.loss).toBe(e.loss);
    const none = refSoftmaxFocal(x, labels, { numClasses: 3, reduction: 'none' }).loss as Float64Array;
    expect(none.length).toBe(2);
    expect(none[1]).toBe(0);
    expect(refSoftmaxFocal(x, Int32Array.of(-100, -100), { numClasses: 3 }).loss).toBe(0);
  });

  it('soft-target softmax: one-hot rows and ε = 0 are the label loss; ignored rows are 0 and not counted', () => {
    const x = Float32Array.of(1, -2, 0.5, 3, 0, 0, 2, 2, -1);
    const labels = Int32Array.of(2, -100, 0);
    const oneHot = Float32Array.of(0, 0, 1, 0, 0, 0, 1, 0, 0);
    const opts = { numClasses: 3, alpha: [0.2, 0.3, 0.9], gamma: 1.5, weight: [2, 1, 0.5] };
    const plain = refSoftmaxFocal(x, labels, { ...opts, reduction: 'none' });
    const smoothed = refSoftmaxSoft(x, { labels, smoothing: 0 }, { ...opts, reduction: 'none' });
    expectElementsClose(smoothed.loss as Float64Array, plain.loss as Float64Array, 1e-14);
    expectElementsClose(smoothed.grad, plain.grad, 1e-14);
    // The probability rows count every row (3), the labels only the 2 kept.
    const probs = refSoftmaxSoft(x, oneHot, { ...opts, reduction: 'mean' });
    const mean2 = refSoftmaxFocal(x, labels, { ...opts, reduction: 'mean' }).loss as number;
    expect(probs.loss as number).toBeCloseTo((mean2 * 2) / 3, 14);
    expect(refSoftmaxSoft(x, { labels: Int32Array.of(-100, -100, -100), smoothing: 0.1 }, opts).loss).toBe(0);
  });

  it('family: mean over zero units is NaN (0/0), sum 0; Poly-1 ε = 0 adds exactly nothing', () => {
    const e = new Float32Array(0);
    expect(refVarifocal(e, e).loss).toBeNaN();
    expect(refQualityFocal(e, { labels: new Int32Array(0), scores: e, numClasses: 3 }, { reduction: 'sum' }).loss).toBe(0);
    expect(refDistributionFocal(e, e, { bins: 4 }).loss).toBeNaN();
    const x = Float32Array.of(0.3, -4, 9);
    const t = Uint8Array.of(1, 0, 1);
    expect(refSigmoidFocal(x, t, { poly1: 0 })).toEqual(refSigmoidFocal(x, t));
  });

  it('GHM: a valid NaN element makes the loss NaN and the state still updates', () => {
    const a = new RefGHMC({ bins: 10, momentum: 0.5 });
    const b = new RefGHMC({ bins: 10, momentum: 0.5 });
    const x = Float32Array.of(0.3, -2, 4, 1);
    const t = Uint8Array.of(1, 0, 0, 1);
    expect(a.forward(Float32Array.of(0.3, -2, 4, NaN), t).loss).toBeNaN();
    // tot counts the NaN element, so compare the state with the same valid elements only.
    b.forward(x.subarray(0, 3), t.subarray(0, 3));
    expectExactlyEqual(a.accSum, b.accSum);
    const r = new RefGHMR({ bins: 5, momentum: 0.5 });
    expect(r.forward(Float32Array.of(NaN, 1), Float32Array.of(0, 0)).loss).toBeNaN();
    expect(Array.from(r.accSum).some((v) => v > 0)).toBe(true);
    // Invalid NaN elements (weight 0) do not count.
    expect(new RefGHMC().forward(Float32Array.of(NaN, 1), Uint8Array.of(0, 1), [0, 1]).loss).not.toBeNaN();
  });

  it('GHM: a batch with no valid element has loss 0, zero gradient and leaves the state', () => {
    const g = new RefGHMC({ bins: 4, momentum: 0.9 });
    g.forward(Float32Array.of(1, 2), Uint8Array.of(1, 0));
    const before = g.accSum.slice();
    const r = g.forward(Float32Array.of(1, 2), Uint8Array.of(1, 0), [0, -1]);
    expect(r.loss).toBe(0);
    expect(Array.from(r.grad)).toEqual([0, 0]);
    expectExactlyEqual(g.accSum, before);
  });
});
