// Shared by the focal family's tests (test/family.test.ts, test/softmax-soft.test.ts): input
// generators and the comparisons of the library's results with the float64 oracle
// (test/helpers/reference.ts) at docs/SPEC.md §5's bounds.
//
// Decisions (the tests' own, stated once here):
// - A reduced loss may be off by 1e-5 relative to Σ|unit losses| × the reduction's scale, not to
//   |Σ|: with Poly-1 ε < 0 the units have both signs and the sum can cancel, and no float32
//   computation of each unit can then hold the sum to 1e-5 of itself. Where every unit has one
//   sign (every other case here) the two bounds are the same. Plus an underflow floor of 1e-36
//   per element (times the largest weight and the scale): an element whose float64 loss lies
//   below float32's normal range comes out 0 or subnormal (as in test/focal.property.test.ts).
// - 'none' losses and gradients are held to SPEC's elementwise bound on the values with the
//   reduction's scale (lossWeight / the mean's divisor) undone, |error| ≤ 1e-5·max(|scale|, |ref|),
//   and, where |scale| ≤ 1, to SPEC's bound on the values as returned too. For a mean over 10^5
//   units every gradient is below 1e-5, and SPEC's absolute bound alone would pass an all-zero
//   gradient; for a scale above 1 (avgFactor 0.01, say) it would ask more than float32 has: an
//   element of 0.4 formed as σ(x) − q (absolute error ~6e-8, inherent) and scaled by 250 is off by
//   1.5e-5 while its unscaled value is off by 6e-8.

import { expect } from 'vitest';
import { expectElementsClose, expectReducedClose } from './golden';
import { logits as mixedLogits, rng, type LogitMix } from './random';
import type { RefFamilyResult, Reduction } from './reference';

export const REL = 1e-5;
const UNDERFLOW_PER_ELEMENT = 1e-36;

/** The largest float32 below `v` (v > 0 a float32). */
export function f32Below(v: number): number {
  const f = Float32Array.of(v);
  const u = new Uint32Array(f.buffer);
  u[0]!--;
  return f[0]!;
}

/**
 * Logits from test/helpers/random.ts' mixtures (normal-ish, ±88, ±1e4, subnormals, ±0), with
 * ±20 mixed in too (σ(20) rounds to 1 in float32, not in float64) except for 'moderate'.
 */
export function familyLogits(n: number, seed: number, mix: LogitMix): Float32Array {
  const x = mixedLogits(n, seed, mix);
  if (mix === 'moderate') return x;
  const r = rng(seed ^ 0x2020);
  for (let i = 0; i < n; i++) if (r() < 0.03) x[i] = r() < 0.5 ? 20 : -20;
  return x;
}

/** Scores / soft targets in [0, 1]: exact 0 and 1, 0.5, values just below 1 and just above 0, uniform. */
export function unitScores(n: number, seed: number, pZero = 0.15): Float32Array {
  const r = rng(seed);
  const near = [f32Below(1), 1 - 2 ** -12, 0.99999, 1e-7, 2 ** -20, 1e-30];
  return Float32Array.from({ length: n }, () => {
    const u = r();
    if (u < pZero) return 0;
    if (u < pZero + 0.12) return 1;
    if (u < pZero + 0.17) return 0.5;
    if (u < pZero + 0.25) return near[Math.floor(r() * near.length)]!;
    return r();
  });
}

/** Weights in [0.1, 3] with exact zeros (a share pZero). */
export function rowWeights(n: number, seed: number, pZero = 0.15): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < pZero ? 0 : 0.1 + 2.9 * r()));
}

export interface Scaling {
  reduction: Reduction;
  avgFactor?: number | undefined;
  lossWeight?: number | undefined;
  /** 'mean''s divisor without avgFactor. */
  count: number;
}

/** The factor the reduction and lossWeight put on the summed loss (and on the gradient). */
export function gradScale(s: Scaling): number {
  const lw = s.lossWeight ?? 1;
  return s.reduction === 'mean' ? lw / (s.avgFactor ?? s.count) : lw;
}

/** SPEC §5 elementwise on the values with `scale` undone, and as returned where |scale| ≤ 1 (see the header). */
export function expectScaledElementsClose(actual: Float32Array, expected: Float64Array, scale: number, label: string): void {
  if (!(Math.abs(scale) > 1) || !Number.isFinite(scale)) expectElementsClose(actual, expected, REL, label);
  if (scale === 0 || scale === 1 || !Number.isFinite(scale)) return;
  const k = 1 / Math.abs(scale);
  expectElementsClose(
    actual.map((v) => v * k),
    expected.map((v) => v * k),
    REL,
    `${label} (unscaled by ${scale})`,
  );
}

/** A reduced loss within 1e-5 of Σ|units| × scale, plus the underflow floor (see the header). */
export function expectReducedWithin(actual: number, ref: RefFamilyResult, scale: number, elements: number, maxWeight: number, label: string): void {
  const expected = ref.loss as number;
  expect(typeof actual, `${label}: a number`).toBe('number');
  let abs = 0;
  for (let i = 0; i < ref.units.length; i++) abs += Math.abs(ref.units[i]!);
  const bound = Math.abs(scale) * (REL * abs + UNDERFLOW_PER_ELEMENT * elements * Math.max(1, maxWeight));
  if (Number.isFinite(actual) && Number.isFinite(expected) && Math.abs(actual - expected) <= bound) return;
  expectReducedClose(actual, expected, REL, `${label} (bound ${bound.toExponential(3)})`);
}

/** A library result against the oracle's: loss per reduction, gradient when asked for. */
export function expectMatchesRef(
  r: { loss: number | Float32Array; grad?: Float32Array | undefined },
  f: RefFamilyResult,
  s: Scaling & { grad: boolean; elements: number; maxWeight: number; skipGrad?: boolean },
  label = '',
): void {
  const scale = gradScale(s);
  if (s.reduction === 'none') {
    expect(r.loss, `${label}loss kind`).toBeInstanceOf(Float32Array);
    expectScaledElementsClose(r.loss as Float32Array, f.loss as Float64Array, s.lossWeight ?? 1, `${label}loss`);
  } else {
    expectReducedWithin(r.loss as number, f, scale, s.elements, s.maxWeight, `${label}loss`);
  }
  if (s.skipGrad) expect(r.grad, `${label}grad`).toBeInstanceOf(Float32Array);
  else if (s.grad) expectScaledElementsClose(r.grad!, f.grad, scale, `${label}grad`);
  else expect(r.grad, `${label}grad`).toBeUndefined();
}

/** Cut points [0, …, n] with multiples of `unit` between (repeats give empty pieces). */
export function cutsOf(points: number[], n: number, unit = 1): number[] {
  return [0, ...points.map((p) => Math.min(n, p * unit)).sort((a, b) => a - b), n];
}

/** The kernels' gradient against central differences of the oracle loss, for elements `ks`. */
export function expectGradMatchesFd(
  grad: Float32Array,
  x: Float32Array,
  ks: number[],
  refLoss: (x: Float64Array) => number,
  scale: number,
  label: string,
): void {
  const h = 1e-4;
  const x64 = Float64Array.from(x);
  for (const k of ks) {
    const plus = x64.slice();
    const minus = x64.slice();
    plus[k] = x64[k]! + h;
    minus[k] = x64[k]! - h;
    const fd = (refLoss(plus) - refLoss(minus)) / (2 * h);
    // The kernels hold SPEC §5 against the analytic gradient; the difference is within ~1e-9 of it.
    const tol = 1.5 * REL * Math.max(Math.abs(scale), Math.abs(fd));
    if (!(Math.abs(grad[k]! - fd) <= tol)) throw new Error(`${label}: element ${k} (x = ${x[k]}): grad ${grad[k]}, finite difference of the reference ${fd} (tol ${tol})`);
  }
}
