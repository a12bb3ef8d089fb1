// The softmax focal loss with soft targets (docs/SPEC.md §2, soft targets), through the public
// API: class-probability rows (a Float32Array [N, C] as the targets) and label smoothing of class
// labels (`labelSmoothing`). On the SIMD and the scalar build: fast-check properties against the
// float64 oracle (refSoftmaxSoft in test/helpers/reference.ts) within SPEC §5, extreme logits, and
// the kernels' gradients against finite differences of the oracle. On one build: ε = 0 is the
// plain call, one-hot rows are the label call, bad rows and option conflicts, zero-copy batches,
// and that both need the extras (init({ extras })). Comparison decisions: test/helpers/family.ts.
//
//   loss_i = −Σ_j α_j t_ij (1 − p_ij)^γ log p_ij (times the row weight);
//   label smoothing: t = (1 − ε)·onehot + ε/C; rows labelled ignoreIndex give 0 and are not counted;
//   probability rows are all counted.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectSameBits } from './helpers/close';
import { expectGradMatchesFd, expectMatchesRef, familyLogits, gradScale, REL, rowWeights } from './helpers/family';
import { expectElementsClose, expectReducedClose } from './helpers/golden';
import { LOGIT_MIXES, rng, runs, softmaxLabels, uniformLogits, type LogitMix } from './helpers/random';
import { refSoftmaxFocal, refSoftmaxSoft, type Reduction } from './helpers/reference';
import { bad, expectThrow } from './helpers/throws';
import { BUILDS, loadLib, type Lib } from './support/lib';

function sane(min: number, max: number, tiny = 1e-6): fc.Arbitrary<number> {
  return fc.double({ min, max, noNaN: true }).filter((v) => v === 0 || Math.abs(v) >= tiny);
}

/**
 * Probability rows [rows, C]: random positive rows normalized in float32, one-hot rows, rows with
 * exact zeros, uniform rows. Each sums to 1 within float32 rounding.
 */
function probabilityRows(rows: number, c: number, seed: number): Float32Array {
  const r = rng(seed);
  const t = new Float32Array(rows * c);
  for (let i = 0; i < rows; i++) {
    const o = i * c;
    const u = r();
    if (u < 0.2) {
      t[o + Math.floor(r() * c)] = 1;
      continue;
    }
    if (u < 0.3) {
      t.fill(1 / c, o, o + c);
      continue;
    }
    let s = 0;
    for (let j = 0; j < c; j++) {
      const v = u < 0.55 && r() < 0.5 ? 0 : r() ** 3;
      t[o + j] = v;
      s += v;
    }
    if (s === 0) t[o] = s = 1;
    for (let j = 0; j < c; j++) t[o + j] = t[o + j]! / s;
  }
  return t;
}

interface SoftSpec {
  rows: number;
  numClasses: number;
  kind: 'probabilities' | 'smoothed';
  smoothing: number;
  ignoreIndex: number | undefined;
  pIgnore: number;
  alphaKind: 'number' | 'array' | 'null' | 'default';
  alpha: number;
  gamma: number | undefined;
  weighted: boolean;
  reduction: Reduction;
  avgFactor: number | undefined;
  lossWeight: number | undefined;
  mix: LogitMix;
  seed: number;
  grad: boolean;
}

const softArb: fc.Arbitrary<SoftSpec> = fc.record({
  // 410·80 > 32768: some matrices span several chunks.
  rows: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0, 1, 2, 3, 409, 410, 1000)),
  numClasses: fc.oneof(fc.constantFrom(1, 2, 3, 7, 80), fc.integer({ min: 1, max: 100 })),
  kind: fc.constantFrom<SoftSpec['kind']>('probabilities', 'smoothed'),
  smoothing: fc.oneof(fc.constantFrom(0.1, 0.5, 1), sane(1e-3, 1)),
  ignoreIndex: fc.option(fc.constantFrom(-100, -1, 255), { nil: undefined }),
  pIgnore: fc.constantFrom(0, 0.2, 1),
  alphaKind: fc.constantFrom<SoftSpec['alphaKind']>('number', 'array', 'null', 'default'),
  alpha: sane(0, 1),
  gamma: fc.option(fc.constantFrom(0, 0.25, 0.5, 1, 1.5, 2, 3), { nil: undefined, freq: 6 }),
  weighted: fc.boolean(),
  reduction: fc.constantFrom<Reduction>('mean', 'sum', 'none'),
  avgFactor: fc.option(sane(0.01, 1e5), { nil: undefined, freq: 3 }),
  lossWeight: fc.option(fc.oneof(fc.constantFrom(0, 1, 2.5), sane(-2, 5, 1e-3)), { nil: undefined }),
  mix: fc.constantFrom<LogitMix>(...LOGIT_MIXES),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  grad: fc.boolean(),
});

function softInputs(s: SoftSpec) {
  const c = s.numClasses;
  const x = familyLogits(s.rows * c, s.seed, s.mix);
  const alpha = s.alphaKind === 'number' ? s.alpha : s.alphaKind === 'null' ? null : s.alphaKind === 'array' ? rowWeights(c, s.seed + 3, 0.1).map((v) => v / 3) : undefined;
  const weight = s.weighted ? rowWeights(s.rows, s.seed + 4) : undefined;
  const common = {
    numClasses: c,
    ...(alpha !== undefined ? { alpha } : {}),
    ...(s.gamma !== undefined ? { gamma: s.gamma } : {}),
    ...(weight ? { weight } : {}),
  };
  if (s.kind === 'probabilities') {
    const t = probabilityRows(s.rows, c, s.seed + 1);
    return { x, libTargets: t as Float32Array | Int32Array, refTargets: t as Float32Array | { labels: Int32Array; smoothing: number; ignoreIndex?: number }, libOptions: common, weight, count: Math.max(1, s.rows) };
  }
  const ignoreIndex = s.ignoreIndex ?? -100;
  const labels = softmaxLabels(s.rows, c, s.seed + 1, ignoreIndex, s.pIgnore);
  return {
    x,
    libTargets: labels,
    refTargets: { labels, smoothing: s.smoothing, ignoreIndex },
    libOptions: { ...common, labelSmoothing: s.smoothing, ...(s.ignoreIndex !== undefined ? { ignoreIndex } : {}) },
    weight,
    count: Math.max(1, labels.filter((l) => l !== ignoreIndex).length),
  };
}

function checkSoft(lib: Lib, s: SoftSpec, label = ''): void {
  const { x, libTargets, refTargets, libOptions, weight, count } = softInputs(s);
  const opts = {
    ...libOptions,
    reduction: s.reduction,
    grad: s.grad,
    ...(s.avgFactor !== undefined ? { avgFactor: s.avgFactor } : {}),
    ...(s.lossWeight !== undefined ? { lossWeight: s.lossWeight } : {}),
  };
  if (s.reduction === 'sum' && s.avgFactor !== undefined) {
    expectThrow(() => lib.softmaxFocalLoss(x, libTargets, opts), RangeError, /avgFactor/);
    return;
  }
  const r = lib.softmaxFocalLoss(x, libTargets, opts);
  const { labelSmoothing: _, ...refOptions } = libOptions as typeof libOptions & { labelSmoothing?: number };
  const f = refSoftmaxSoft(x, refTargets, { ...refOptions, reduction: s.reduction, avgFactor: s.avgFactor, lossWeight: s.lossWeight });
  if (s.reduction === 'none') expect((r.loss as Float32Array).length, 'one loss per row').toBe(s.rows);
  const maxWeight = weight ? weight.reduce((a, b) => Math.max(a, b), 0) : 1;
  expectMatchesRef(r, f, { ...s, count, elements: x.length, maxWeight }, label);
}

// ---------------------------------------------------------------------------------------------
// Against the reference, per build
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build vs the float64 reference', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  it('probability rows and smoothed labels: C, ε, ignored rows, per-class α, γ, row weights, reductions', () => {
    fc.assert(fc.property(softArb, (s) => checkSoft(lib, s)), runs(80, 0x50f701));
  });

  it('over ≥ 70000 logits (several 32768-element chunks)', () => {
    const base: SoftSpec = {
      rows: 8_000, numClasses: 9, kind: 'probabilities', smoothing: 0.1, ignoreIndex: undefined, pIgnore: 0.2, alphaKind: 'array', alpha: 0.25,
      gamma: 2, weighted: true, reduction: 'mean', avgFactor: undefined, lossWeight: 1.5, mix: 'mixed', seed: 4242, grad: true,
    };
    checkSoft(lib, base, 'probabilities: ');
    checkSoft(lib, { ...base, kind: 'smoothed', reduction: 'none', gamma: 0.5 }, 'smoothed: ');
    checkSoft(lib, { ...base, rows: 900, numClasses: 80, kind: 'smoothed', smoothing: 0.3, reduction: 'sum', alphaKind: 'number' }, 'smoothed C=80: ');
  });

  it('extreme logits (±20, ±88, ±1e4, ±0, subnormal) in every position, every γ', () => {
    const ex = [0, -0, 1e-40, 20, -20, 88, -88, 1e4, -1e4, 3.5, -2.25];
    const c = 3;
    const rows = ex.length * 2;
    const x = new Float32Array(rows * c);
    for (let i = 0; i < rows; i++) x.set([ex[i % ex.length]!, ex[(i + 3 + (i >= ex.length ? 1 : 0)) % ex.length]!, ex[(i + 7) % ex.length]!], i * c);
    const probs = probabilityRows(rows, c, 5);
    const labels = Int32Array.from({ length: rows }, (_, i) => i % c);
    for (const gamma of [0, 0.25, 0.5, 1, 1.5, 2, 3]) {
      const o = { numClasses: c, alpha: Float32Array.of(0.25, 0.5, 1), gamma, reduction: 'none' as const };
      const rp = lib.softmaxFocalLoss(x, probs, { ...o, grad: true });
      const fp = refSoftmaxSoft(x, probs, o);
      expectElementsClose(rp.loss as Float32Array, fp.loss as Float64Array, REL, `probabilities γ=${gamma} loss`);
      expectElementsClose(rp.grad!, fp.grad, REL, `probabilities γ=${gamma} grad`);
      for (const eps of [0.1, 1]) {
        const rs = lib.softmaxFocalLoss(x, labels, { ...o, labelSmoothing: eps, grad: true });
        const fs = refSoftmaxSoft(x, { labels, smoothing: eps }, o);
        expectElementsClose(rs.loss as Float32Array, fs.loss as Float64Array, REL, `smoothing ${eps} γ=${gamma} loss`);
        expectElementsClose(rs.grad!, fs.grad, REL, `smoothing ${eps} γ=${gamma} grad`);
      }
    }
  });

  it('±Infinity and NaN logits: no throw; other rows as the reference; an ignored row stays 0', () => {
    const c = 3;
    const x = uniformLogits(6 * c, 7, -3, 3);
    x[1] = Infinity;
    x[6] = -Infinity;
    x[13] = NaN;
    const probs = probabilityRows(6, c, 8);
    const labels = Int32Array.of(0, 1, 2, 0, -100, 1);
    x[12] = Infinity; // row 4: ignored
    const clean = [1, 3, 5];
    const o = { numClasses: c, gamma: 2, reduction: 'none' as const };
    for (const [what, r, f] of [
      ['probabilities', lib.softmaxFocalLoss(x, probs, { ...o, grad: true }), refSoftmaxSoft(x, probs, o)],
      ['smoothed', lib.softmaxFocalLoss(x, labels, { ...o, labelSmoothing: 0.2, grad: true }), refSoftmaxSoft(x, { labels, smoothing: 0.2 }, o)],
    ] as const) {
      for (const i of clean) {
        expectElementsClose([(r.loss as Float32Array)[i]!], [(f.loss as Float64Array)[i]!], REL, `${what} row ${i} loss`);
        expectElementsClose(r.grad!.subarray(i * c, i * c + c), f.grad.subarray(i * c, i * c + c), REL, `${what} row ${i} grad`);
      }
      if (what === 'smoothed') {
        expect((r.loss as Float32Array)[4]).toBe(0);
        expect(Array.from(r.grad!.subarray(12, 15))).toEqual([0, 0, 0]);
      }
    }
    expect(() => lib.softmaxFocalLoss(x, probs, { numClasses: c })).not.toThrow();
    expect(() => lib.softmaxFocalLoss(x, labels, { numClasses: c, labelSmoothing: 0.2, reduction: 'sum' })).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Gradients against central differences of the reference loss
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build: gradient vs central differences of the reference loss', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  for (const red of [{ reduction: 'sum' as const }, { reduction: 'mean' as const, lossWeight: 2.5 }, { reduction: 'mean' as const, avgFactor: 3.5, lossWeight: -0.7 }]) {
    it(`probability rows and smoothed labels (${JSON.stringify(red)}), every γ`, () => {
      const c = 4;
      const x = uniformLogits(6 * c, 9, -3, 3);
      const probs = Float32Array.of(0.1, 0.2, 0.3, 0.4, 1, 0, 0, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0.9, 0.1, 0.7, 0.1, 0.1, 0.1);
      const labels = Int32Array.of(0, 3, -100, 1, 2, 2);
      const alpha = Float32Array.of(0.1, 0.5, 0.25, 1);
      const weight = Float32Array.of(1, 2, 0.5, 1.5, 1, 0);
      const r = rng(10);
      const ks = Array.from({ length: 12 }, () => Math.floor(r() * x.length));
      for (const gamma of [0, 0.25, 0.5, 1, 1.5, 2, 3]) {
        const o = { numClasses: c, alpha, gamma, weight, ...red };
        const gp = lib.softmaxFocalLoss(x, probs, { ...o, grad: true }).grad!;
        expectGradMatchesFd(gp, x, ks, (z) => refSoftmaxSoft(z, probs, o).loss as number, gradScale({ ...red, count: 6 }), `probabilities γ=${gamma}`);
        const gs = lib.softmaxFocalLoss(x, labels, { ...o, labelSmoothing: 0.15, grad: true }).grad!;
        expectGradMatchesFd(gs, x, ks, (z) => refSoftmaxSoft(z, { labels, smoothing: 0.15 }, o).loss as number, gradScale({ ...red, count: 5 }), `smoothed γ=${gamma}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Against the label call; option conflicts; bad rows; extras; batches
// ---------------------------------------------------------------------------------------------

describe('soft targets beside the label call', () => {
  let lib: Lib;
  let core: Lib;
  beforeAll(async () => {
    core = await loadLib('simd', { extras: false });
    lib = await loadLib('simd');
  });

  const C = 6;
  const ROWS = 500;
  const x = familyLogits(ROWS * C, 21, 'mixed');
  const labels = softmaxLabels(ROWS, C, 22, -100, 0);
  const ignoring = softmaxLabels(ROWS, C, 23, -1, 0.2);
  const weight = rowWeights(ROWS, 24);
  const alpha = Float32Array.of(0.1, 0.9, 0.25, 0.5, 1, 0);

  it('labelSmoothing 0 is the plain call bit for bit (and needs no extras)', () => {
    for (const o of [
      { numClasses: C },
      { numClasses: C, alpha, gamma: 0.5, weight, reduction: 'none' as const },
      { numClasses: C, alpha: null, gamma: 3, ignoreIndex: -1, reduction: 'sum' as const, lossWeight: 2 },
      { numClasses: C, shape: [ROWS / 5, C, 5], classAxis: 1, avgFactor: 9 },
    ]) {
      const y = 'ignoreIndex' in o ? ignoring : labels;
      const want = lib.softmaxFocalLoss(x, y, { ...o, grad: true });
      for (const l of [lib, core]) {
        const got = l.softmaxFocalLoss(x, y, { ...o, labelSmoothing: 0, grad: true });
        expectSameBits(got.loss, want.loss, `${JSON.stringify(o)}: loss`);
        expectSameBits(got.grad, want.grad, `${JSON.stringify(o)}: grad`);
      }
    }
  });

  it('one-hot probability rows give the label call within 1e-6 (loss per reduction, gradient)', () => {
    const oneHot = new Float32Array(ROWS * C);
    labels.forEach((l, i) => (oneHot[i * C + l] = 1));
    for (const o of [
      { numClasses: C, alpha, gamma: 2 },
      { numClasses: C, alpha: 0.25, gamma: 0.5, weight, reduction: 'sum' as const },
      { numClasses: C, alpha: null, gamma: 0, weight, reduction: 'none' as const, lossWeight: -1.5 },
      { numClasses: C, gamma: 3, avgFactor: 40 },
    ]) {
      const a = lib.softmaxFocalLoss(x, oneHot, { ...o, grad: true });
      const b = lib.softmaxFocalLoss(x, labels, { ...o, grad: true });
      if (typeof b.loss === 'number') expectReducedClose(a.loss as number, b.loss, 1e-6, 'loss');
      else expectElementsClose(a.loss as Float32Array, Float64Array.from(b.loss), 1e-6, 'loss');
      expectElementsClose(a.grad!, Float64Array.from(b.grad!), 1e-6, 'grad');
    }
    // As labels smoothed by ε are the probability rows (1 − ε)·onehot + ε/C.
    const eps = 0.2;
    const smooth = Float32Array.from(oneHot, (v) => v * (1 - eps) + eps / C);
    const a = lib.softmaxFocalLoss(x, smooth, { numClasses: C, alpha, weight, grad: true });
    const b = lib.softmaxFocalLoss(x, labels, { numClasses: C, alpha, weight, labelSmoothing: eps, grad: true });
    expectReducedClose(a.loss as number, b.loss as number, 1e-6, 'smoothed: loss');
    expectElementsClose(a.grad!, Float64Array.from(b.grad!), 1e-6, 'smoothed: grad');
  });

  it('probability rows outside [0, 1], NaN or not summing to 1: a RangeError naming the row', () => {
    const t = probabilityRows(ROWS, C, 25);
    const at = (k: number, v: number) => {
      const u = t.slice();
      u[k] = v;
      return u;
    };
    const call = (u: Float32Array) => () => lib.softmaxFocalLoss(x, u, { numClasses: C });
    const before = lib.softmaxFocalLoss(x, t, { numClasses: C, grad: true });
    const cases: Array<[() => unknown, RegExp]> = [
      [call(at(3 * C + 2, 1.5)), /targets\[20\] is 1\.5, expected a probability in \[0, 1\] \(row 3\)/],
      [call(at(0, -0.25)), /targets\[0\] is -0\.25.*\(row 0\)/],
      [call(at(ROWS * C - 1, NaN)), new RegExp(`targets\\[${ROWS * C - 1}\\] is NaN.*\\(row ${ROWS - 1}\\)`)],
      [call(at(7 * C, Infinity)), /targets\[42\].*\(row 7\)/],
      [call(Float32Array.from(t, (v, k) => (Math.floor(k / C) === 11 ? v * 0.5 : v))), /targets row 11 sums to 0\.[45]\d*, expected 1/],
      [call(Float32Array.from(t, (v, k) => (Math.floor(k / C) === 0 ? 1 / C + 0.01 : v))), /targets row 0 sums to 1\.0[56]\d*, expected 1/],
      [call(new Float32Array(ROWS * C)), /targets row 0 sums to 0/],
    ];
    for (const [f, re] of cases) {
      expectThrow(f, RangeError, re);
      const after = lib.softmaxFocalLoss(x, t, { numClasses: C, grad: true });
      expectSameBits(after.loss, before.loss, 'the next good call');
      expectSameBits(after.grad, before.grad, 'the next good call');
    }
  });

  it('conflicting options and bad arguments', () => {
    const t = probabilityRows(ROWS, C, 26);
    const s = (y: unknown, o: unknown) => () => lib.softmaxFocalLoss(x, bad(y), bad<never>(o));
    const cases: Array<[string, () => unknown, typeof TypeError | typeof RangeError, RegExp]> = [
      ['labelSmoothing with probability rows', s(t, { numClasses: C, labelSmoothing: 0.1 }), RangeError, /options\.labelSmoothing/],
      ['poly1 with probability rows', s(t, { numClasses: C, poly1: 1 }), RangeError, /options\.poly1/],
      ['poly1 with labelSmoothing', s(labels, { numClasses: C, poly1: 1, labelSmoothing: 0.1 }), RangeError, /options\.poly1 does not combine with options\.labelSmoothing/],
      ['labelSmoothing with a class axis before the last', s(labels, { numClasses: C, labelSmoothing: 0.1, shape: [ROWS / 5, C, 5], classAxis: 1 }), RangeError, /options\.labelSmoothing/],
      ['probability rows with a class axis before the last', s(t, { numClasses: C, shape: [ROWS / 5, C, 5], classAxis: 1 }), RangeError, /classAxis/],
      ['labelSmoothing 1.5', s(labels, { numClasses: C, labelSmoothing: 1.5 }), RangeError, /options\.labelSmoothing/],
      ['labelSmoothing -0.1', s(labels, { numClasses: C, labelSmoothing: -0.1 }), RangeError, /options\.labelSmoothing/],
      ['labelSmoothing NaN', s(labels, { numClasses: C, labelSmoothing: NaN }), RangeError, /options\.labelSmoothing/],
      ['labelSmoothing "0.1"', s(labels, { numClasses: C, labelSmoothing: '0.1' }), TypeError, /options\.labelSmoothing/],
      ['probability rows of the wrong length', s(t.subarray(1), { numClasses: C }), RangeError, /class-probability rows \[N, C\], as the logits \(length 3000\), but it has length 2999/],
      ['numClasses not dividing the logits', s(t, { numClasses: 7 }), RangeError, /options\.numClasses/],
      ['options missing', s(t, undefined), TypeError, /numClasses/],
      ['probability rows as Float64Array', s(Float64Array.from(t), { numClasses: C }), TypeError, /labels must be an? Int32Array/],
      ['weight of the wrong length', s(t, { numClasses: C, weight: weight.subarray(1) }), RangeError, /options\.weight has length 499, expected 500/],
      ['per-class alpha of the wrong length', s(t, { numClasses: C, alpha: Float32Array.of(1, 2) }), RangeError, /options\.alpha/],
      ['unknown option', s(t, { numClasses: C, smoothing: 0.1 }), TypeError, /unknown option 'smoothing'/],
      ['label out of range with smoothing', s(Int32Array.from(labels, (l, i) => (i === 9 ? C : l)), { numClasses: C, labelSmoothing: 0.1 }), RangeError, /labels\[9\] is 6/],
      ['avgFactor with sum', s(t, { numClasses: C, reduction: 'sum', avgFactor: 3 }), RangeError, /avgFactor/],
    ];
    for (const [what, f, cls, re] of cases) {
      try {
        expectThrow(f, cls, re);
      } catch (e) {
        throw new Error(`${what}: ${(e as Error).message}`);
      }
    }
    // Allowed: labelSmoothing 0 and poly1 0 with probability rows; a class axis that is the last.
    const plain = lib.softmaxFocalLoss(x, t, { numClasses: C, grad: true });
    for (const o of [{ labelSmoothing: 0 }, { poly1: 0 }, { shape: [ROWS, C], classAxis: 1 }, { shape: [ROWS / 5, 5, C] }, { ignoreIndex: 3 }]) {
      const r = lib.softmaxFocalLoss(x, t, { numClasses: C, grad: true, ...o });
      expectSameBits(r.loss, plain.loss, JSON.stringify(o));
      expectSameBits(r.grad, plain.grad, JSON.stringify(o));
    }
  });

  it('both need the extras: an Error that says to call init({ extras })', () => {
    const t = probabilityRows(ROWS, C, 27);
    expectThrow(() => core.softmaxFocalLoss(x, t, { numClasses: C }), Error, /init\(\{ extras \}\)/);
    expectThrow(() => core.softmaxFocalLoss(x, labels, { numClasses: C, labelSmoothing: 0.1 }), Error, /init\(\{ extras \}\)/);
    expectThrow(() => core.softmaxFocalLoss(new Float32Array(0), new Float32Array(0), { numClasses: C }), Error, /init\(\{ extras \}\)/);
  });

  it('batch inputs (wasm memory) give the plain arrays’ results', () => {
    const rows = 12_000; // 72000 logits: three chunks
    const xx = familyLogits(rows * C, 28, 'mixed');
    const t = probabilityRows(rows, C, 29);
    const y = softmaxLabels(rows, C, 30, -100, 0.1);
    const w = rowWeights(rows, 31);
    const p = lib.createBatch({ length: rows * C, targets: 'f32' });
    const l = lib.createBatch({ length: rows * C, targets: { numClasses: C }, weight: 'rows' });
    try {
      p.logits.set(xx);
      (p.targets as Float32Array).set(t);
      l.logits.set(xx);
      l.labels.set(y);
      l.weight.set(w);
      const o = { numClasses: C, alpha, gamma: 1.5, grad: true, reduction: 'none' as const };
      let want = lib.softmaxFocalLoss(xx, t, { ...o, weight: w });
      let got = lib.softmaxFocalLoss(p.logits, p.targets as Float32Array, { ...o, weight: w });
      expectSameBits(got.loss, want.loss, 'probabilities: loss');
      expectSameBits(got.grad, want.grad, 'probabilities: grad');
      want = lib.softmaxFocalLoss(xx, y, { ...o, weight: w, labelSmoothing: 0.1 });
      got = lib.softmaxFocalLoss(l.logits, l.labels, { ...o, weight: l.weight, labelSmoothing: 0.1 });
      expectSameBits(got.loss, want.loss, 'smoothed: loss');
      expectSameBits(got.grad, want.grad, 'smoothed: grad');
    } finally {
      p.free();
      l.free();
    }
  });
});
