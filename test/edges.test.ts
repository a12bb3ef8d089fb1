// Kernel edges of issue #17 (shared/repro 18, 08, 10), on both builds: infinite logits give
// PyTorch's losses and gradients; GHM-C's soft-target g on a float32 edge lands in
// mmdetection's bin; GHM-R gives SPEC's float64 answer where d² or μ² leave float32's range.
// docs/SPEC.md §10 states each rule.

import { beforeAll, describe, expect, it } from 'vitest';
import { expectElementsClose, expectExactlyEqual, expectReducedClose } from './helpers/golden';
import { findBin, ghmrEdges, ghmrGradNorm, RefGHMR } from './helpers/reference';
import { BUILDS, loadLib, type Lib } from './support/lib';

/**
 * torchvision's `sigmoid_focal_loss` (mmdetection's `py_sigmoid_focal_loss` is the same graph)
 * and its autograd gradient, op by op in float64 with IEEE semantics: forward
 * `p = sigmoid(x)`, `ce = (1-t)·x - logsigmoid(x)` (ATen's binary_cross_entropy_with_logits),
 * `p_t = p·t + (1-p)·(1-t)`, `loss = α_t · ce · (1-p_t)^γ`; backward as ATen's derivatives:
 * ce' = (σ(x) - t)·grad, pow's is zeros for exponent 0 and `grad·γ·b^(γ-1)` otherwise, sigmoid's
 * `grad·(1-p)·p`. `alpha` null: no α_t (torchvision's alpha < 0).
 */
function torchFocal(x: number, t: number, alpha: number | null, gamma: number): { loss: number; grad: number } {
  const p = 1 / (1 + Math.exp(-x));
  const logSigmoid = Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
  const ce = (1 - t) * x - logSigmoid;
  const pT = p * t + (1 - p) * (1 - t);
  const m = (1 - pT) ** gamma;
  const at = alpha === null ? 1 : alpha * t + (1 - alpha) * (1 - t);
  const loss = at * (ce * m);
  const gM = at * ce;
  const gBase = gamma === 0 ? 0 : gM * gamma * (1 - pT) ** (gamma - 1); // d/d(1 - p_t)
  const gPt = -gBase;
  const gP = gPt * t - gPt * (1 - t); // p·t, and (1 - p)·(1 - t)
  const grad = at * m * (p - t) + gP * (1 - p) * p;
  return { loss, grad };
}

/** mmdetection's GHM-C bin of logit x = 0 and target t: g = |σ(0) - t| in float32. */
function mmdetBinAtZero(t: number, bins: number): number {
  const f = Math.fround;
  const g = f(Math.abs(f(0.5 - f(t))));
  const edges = Array.from({ length: bins + 1 }, (_, i) => f(i / bins));
  edges[bins] = f(edges[bins]! + f(1e-6));
  return edges.findIndex((e, i) => i < bins && e <= g && g < edges[i + 1]!);
}

describe.each(BUILDS)('%s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  describe('infinite logits: PyTorch autograd values (repro 18)', () => {
    // Finite neighbours on both sides, in and across a block of four.
    const finite = [0.7, -1.5, 2.25, 0, -3, 1.125, -0.5];
    const cases = [0, 1, 0.3, 0.5, 0.9].flatMap((t) => [Infinity, -Infinity].map((inf) => ({ t, inf })));

    for (const gamma of [0, 0.5, 1, 1.5, 2]) {
      for (const alpha of [0.25, null]) {
        it(`γ = ${gamma}, α = ${alpha}: x = ±∞ with t = 0, 1 (bytes and floats) and soft t`, () => {
          const x = new Float32Array(cases.length * 2 + finite.length);
          const t = new Float32Array(x.length);
          cases.forEach((c, k) => {
            x[2 * k] = c.inf;
            t[2 * k] = c.t;
            x[2 * k + 1] = finite[k % finite.length]!;
            t[2 * k + 1] = k % 2;
          });
          x.set(finite, cases.length * 2);
          const want = Array.from(x, (xi, i) => torchFocal(xi, t[i]!, alpha, gamma));
          const opts = { alpha, gamma, reduction: 'none', grad: true } as const;
          const soft = lib.sigmoidFocalLoss(x, t, opts);
          expectElementsClose(soft.loss, want.map((w) => w.loss), 1e-5, 'soft loss');
          expectElementsClose(soft.grad, want.map((w) => w.grad), 1e-5, 'soft grad');
          // The 0/1 targets as bytes, and as class indices (one logit per row, label 1 = background).
          const binary = [...t.keys()].filter((i) => t[i] === 0 || t[i] === 1);
          const xb = Float32Array.from(binary, (i) => x[i]!);
          const tb = Uint8Array.from(binary, (i) => t[i]!);
          const wb = binary.map((i) => want[i]!);
          const bytes = lib.sigmoidFocalLoss(xb, tb, opts);
          expectElementsClose(bytes.loss, wb.map((w) => w.loss), 1e-5, 'byte loss');
          expectElementsClose(bytes.grad, wb.map((w) => w.grad), 1e-5, 'byte grad');
          const labels = lib.sigmoidFocalLoss(xb, { labels: Int32Array.from(tb, (b) => 1 - b), numClasses: 1 }, opts);
          expectElementsClose(labels.loss, wb.map((w) => w.loss), 1e-5, 'label loss');
          expectElementsClose(labels.grad, wb.map((w) => w.grad), 1e-5, 'label grad');
        });
      }
    }

    it('the table: loss +∞ only at x = +∞ with t < 1, else NaN; gradient NaN for γ > 0, α_t·(σ − t) for γ = 0', () => {
      const x = new Float32Array([Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity]);
      const t = new Float32Array([0, 0.3, 1, 0, 0.3, 1]);
      const g2 = lib.sigmoidFocalLoss(x, t, { alpha: null, reduction: 'none', grad: true });
      expect(Array.from(g2.loss)).toEqual([Infinity, Infinity, NaN, NaN, NaN, NaN]);
      expect(Array.from(g2.grad).every(Number.isNaN)).toBe(true);
      const g0 = lib.sigmoidFocalLoss(x, t, { alpha: null, gamma: 0, reduction: 'none', grad: true });
      expect(Array.from(g0.loss)).toEqual([Infinity, Infinity, NaN, NaN, NaN, NaN]);
      expect(Array.from(g0.grad, (v) => v + 0)).toEqual([1, Math.fround(0.7), 0, 0, -Math.fround(0.3), -1]);
      expect(lib.sigmoidFocalLoss(x.subarray(0, 2), t.subarray(0, 2)).loss).toBe(Infinity);
      expect(lib.sigmoidFocalLoss(x, t).loss).toBeNaN();
    });

    it('GHM-C: g is |σ(x) − t| (1 − t at +∞, t at −∞) and binned so; gradient finite, loss NaN at x = −∞ or (+∞, t = 1)', () => {
      const bins = 10;
      const x = new Float32Array([Infinity, -Infinity, Infinity, -Infinity, 0.5, -2]);
      const big = new Float32Array([100, -100, 100, -100, 0.5, -2]); // σ is 0 or 1 in float32 there too
      const t = new Uint8Array([0, 1, 1, 0, 1, 0]);
      const lw = new Float32Array([1, 1, 1, 1, 1, 1]);
      const run = (logits: Float32Array, targets: Uint8Array | Float32Array, w = lw) => new lib.GHMC({ bins }).forward(logits, targets, w, { grad: true });
      for (const targets of [t, Float32Array.from(t)]) {
        const stats = new lib.GHMC({ bins }).collect(x, targets, lw);
        expect(Array.from(stats.counts)).toEqual(Array.from(new lib.GHMC({ bins }).collect(big, targets, lw).counts));
        expect(stats.counts[0]).toBe(2); // x = +∞, t = 1 and x = −∞, t = 0: g = 0
        expect(stats.counts[bins - 1]).toBe(2); // x = +∞, t = 0 and x = −∞, t = 1: g = 1
        const inf = run(x, targets);
        expect(inf.loss).toBeNaN();
        expectElementsClose(inf.grad, run(big, targets).grad, 1e-6, 'grad as at ±100');
        // Only x = +∞ with t = 0 (and finite ones): +∞; only x = −∞ with t = 1: NaN.
        expect(run(x, targets, new Float32Array([1, 0, 0, 0, 1, 1])).loss).toBe(Infinity);
        expect(run(x, targets, new Float32Array([0, 1, 0, 0, 1, 1])).loss).toBeNaN();
        // Invalid elements (label weight 0) are left out, infinite or not.
        const valid = new Float32Array([0, 0, 0, 0, 1, 1]);
        expectReducedClose(run(x, targets, valid).loss, run(big, targets, valid).loss, 1e-6, 'invalid ±∞ left out');
      }
    });
  });

  describe('GHM-C soft targets: g on a float32 edge in mmdetection\'s bin (repro 08)', () => {
    const ts = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1 / 3, 2 / 3, 0.125, 0.375];
    for (const bins of [2, 3, 4, 5, 8, 10, 16, 20, 30, 40, 100]) {
      it(`x = ±0, bins = ${bins}: each t's bin is mmdetection's float32 one`, () => {
        for (const x0 of [0, -0]) {
          for (const t of ts) {
            const counts = new lib.GHMC({ bins }).collect(new Float32Array([x0]), new Float32Array([t])).counts;
            const want = new Float64Array(bins);
            want[mmdetBinAtZero(t, bins)] = 1;
            expectExactlyEqual(counts, want, `x = ${Object.is(x0, -0) ? '-0' : '0'}, t = ${t}`);
          }
        }
        // The EMA state of a whole batch, as repro 08 looks at it.
        const g = new lib.GHMC({ bins, momentum: 0.75 });
        g.forward(new Float32Array(ts.length), Float32Array.from(ts));
        const num = new Float64Array(bins);
        for (const t of ts) num[mmdetBinAtZero(t, bins)]!++;
        expectExactlyEqual(g.accSum, num.map((k) => 0.25 * k), 'accSum');
      });
    }
  });

  describe('GHM-R: float64 answers where d² or μ² leave float32 (repro 10)', () => {
    const check = (pred: Float32Array, target: Float32Array, mu: number, bins = 10) => {
      const ours = new lib.GHMR({ mu, bins }).forward(pred, target, undefined, { grad: true });
      const ref = new RefGHMR({ mu, bins }).forward(pred, target);
      expectReducedClose(ours.loss, ref.loss, 1e-5, `μ = ${mu} loss`);
      expectElementsClose(ours.grad, ref.grad, 1e-5, `μ = ${mu} grad`);
      const counts = new lib.GHMR({ mu, bins }).collect(pred, target).counts;
      const want = new Float64Array(bins);
      for (let i = 0; i < pred.length; i++) want[findBin(ghmrGradNorm(pred[i]! - target[i]!, mu), ghmrEdges(bins))]!++;
      expectExactlyEqual(counts, want, `μ = ${mu} bins`);
    };

    it('huge |d| (d² past float32, and d itself past it): loss, gradients and bins (g → 1: the last bin)', () => {
      const pred = new Float32Array([0.5, 0.1, 1e20, 0.3, -2e19, 3e38, -3.4e38, 1e30]);
      const target = new Float32Array([0, 0, 0, 0, 0, -3e38, 3.4e38, -1e30]);
      for (const bins of [1, 2, 10, 30]) check(pred, target, 0.02, bins);
      check(pred, target, 1e10);
      check(pred, target, 1e37);
      const r = new lib.GHMR().forward(new Float32Array([0.5, 0.1, 1e20, 0.3]), new Float32Array(4), undefined, { grad: true });
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(Array.from(r.grad).every((v) => v > 0.24 && v < 0.26)).toBe(true);
    });

    it('tiny μ: d = 0 gives 0 (not 0/0), and d near μ its float64 bin', () => {
      for (const mu of [1e-37, 1e-30, 1e-25, 1e-20, 1e-12]) {
        const m = Math.fround(mu);
        const pred = new Float32Array([0, m, -m, 3 * m, 0.25 * m, 1, 1e20, -1e-3]);
        check(pred, new Float32Array(pred.length), mu);
        expect(new lib.GHMR({ mu }).forward(new Float32Array([0, 1]), new Float32Array([0, 0])).loss).toBeCloseTo(0.5, 6);
      }
    });

    it('options.mu must lie in [1e-37, 1e37] (float32 kernels): a RangeError naming it', () => {
      for (const mu of [1e-38, 1e-45, 5e-324, 1.0000001e37, 1e38, 1e300]) expect(() => new lib.GHMR({ mu })).toThrow(/options\.mu/);
      for (const mu of [1e-38, 1e300]) expect(() => new lib.GHMR({ mu })).toThrow(RangeError);
      for (const mu of [1e-37, 1e37, 0.02]) expect(new lib.GHMR({ mu }).mu).toBe(mu);
    });
  });
});
