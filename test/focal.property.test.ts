// Property tests of the focal losses: the library (SIMD and scalar builds) against the float64
// oracle of test/helpers/reference.ts on random inputs, within docs/SPEC.md §5; the two builds
// against each other; the library's gradient against finite differences of its own loss; and
// one long sum (2·10^7 elements) that must not drift.
//
// Decisions made here (see also the header of test/reference.test.ts):
// - Reduced losses are compared with SPEC §5's relative 1e-5 plus an underflow floor of 1e-36
//   per element (times the largest weight, |lossWeight| and the mean's divisor). The kernels
//   compute each element in float32, so an element whose float64 loss lies below float32's
//   normal range (~1.2e-38; e.g. x = 88, t = 1 at γ = 2, or x = 20, t = 1 at γ = 5) comes out
//   0 or subnormal. Without the floor a batch of only such elements (size 1 is in the size list)
//   would have relative error 1 although every element is within SPEC's elementwise bound.
// - Weights are ≥ 0 in the random cases (with exact zeros): with negative weights a reduced
//   sum can cancel, and no relative bound on it is meaningful.
// - Besides SPEC's elementwise bound, gradients (and 'none' losses) are also compared after
//   undoing the reduction's and lossWeight's scale: for a mean over 10^5 elements every gradient
//   is < 1e-5 and SPEC's absolute bound alone would pass an all-zero gradient.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectElementsClose, expectReducedClose } from './helpers/golden';
import {
  binaryTargets,
  LOGIT_MIXES,
  logits,
  rng,
  runs,
  sigmoidLabels,
  softmaxLabels,
  softTargets,
  uniformLogits,
  weights,
  type LogitMix,
} from './helpers/random';
import { refSigmoidFocal, refSoftmaxFocal, type Reduction } from './helpers/reference';
import { BUILDS, loadLib, type Lib } from './support/lib';

const REL = 1e-5;

const UNDERFLOW_PER_ELEMENT = 1e-36;

/** SPEC §5 reduced bound, plus the float32 underflow floor described in the header. */
function expectReducedWithin(actual: number, expected: number, floor: number, label: string): void {
  if (Number.isFinite(actual) && Number.isFinite(expected) && Math.abs(actual - expected) <= REL * Math.abs(expected) + floor) return;
  expectReducedClose(actual, expected, REL, `${label} (floor ${floor})`);
}

/** SPEC §5 elementwise, and the same bound on the values with `scale` undone. */
function expectScaledElementsClose(actual: Float32Array, expected: Float64Array, scale: number, label: string): void {
  expectElementsClose(actual, expected, REL, label);
  if (scale === 0 || scale === 1 || !Number.isFinite(scale)) return;
  const k = 1 / Math.abs(scale);
  expectElementsClose(
    actual.map((v) => v * k),
    expected.map((v) => v * k),
    REL,
    `${label} (unscaled by ${scale})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Sigmoid focal: case specs
// ---------------------------------------------------------------------------------------------

const SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 32767, 32768, 32769, 65537];
const GAMMAS = [0, 0.5, 1, 1.5, 2, 2.5, 5];

type TargetKind = 'binary' | 'soft' | 'labels';
type WeightKind = 'none' | 'element' | 'row';

interface SigmoidSpec {
  size: number;
  targetKind: TargetKind;
  numClasses: number;
  weightKind: WeightKind;
  alpha: number | null | 'auto';
  gamma: number;
  reduction: Reduction;
  avgFactor: number | undefined;
  lossWeight: number | undefined;
  mix: LogitMix;
  seed: number;
  grad: boolean;
}

/**
 * Doubles in [min, max] that are 0 or at least `tiny` in magnitude. fast-check likes to draw
 * values such as 5e-324 for a lossWeight or 6e-37 for an α, whose products with float32 losses
 * are f32 (or f64) subnormal noise; those say nothing about the library.
 */
function sane(min: number, max: number, tiny = 1e-6): fc.Arbitrary<number> {
  return fc.double({ min, max, noNaN: true }).filter((v) => v === 0 || Math.abs(v) >= tiny);
}

/**
 * α for the sigmoid loss: any double in [0, 1] not below 1e-6 (plus 0, 1, 0.25, null and 'auto'
 * below). α near 0 and near 1 used to lose the positives' / negatives' weight to float32
 * cancellation (found by this file, fixed in the kernels); 'α close to 1 or 0' below pins it.
 */
const sigmoidAlphaArb = sane(0, 1);

const sizeArb = fc.oneof(fc.constantFrom(...SIZES), fc.integer({ min: 0, max: 5000 }));
const gammaArb = fc.oneof(fc.constantFrom(...GAMMAS), sane(0, 6));
const reductionArb = fc.constantFrom<Reduction>('mean', 'sum', 'none');
const lossWeightArb = fc.option(fc.oneof(fc.constantFrom(0, 1, 2.5), sane(-2, 5, 1e-3)), { nil: undefined });

const sigmoidSpecArb: fc.Arbitrary<SigmoidSpec> = fc.record({
  size: sizeArb,
  targetKind: fc.constantFrom<TargetKind>('binary', 'soft', 'labels'),
  numClasses: fc.oneof(fc.constantFrom(1, 2, 3, 7, 80), fc.integer({ min: 1, max: 100 })),
  weightKind: fc.constantFrom<WeightKind>('none', 'element', 'row'),
  alpha: fc.oneof(fc.constantFrom<number | null | 'auto'>(null, 'auto', 0, 1, 0.25), sigmoidAlphaArb),
  gamma: gammaArb,
  reduction: reductionArb,
  avgFactor: fc.option(sane(0.01, 1e5), { nil: undefined, freq: 3 }),
  lossWeight: lossWeightArb,
  mix: fc.constantFrom(...LOGIT_MIXES),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  grad: fc.boolean(),
});

type SigmoidTargets = Uint8Array | Float32Array | { labels: Int32Array; numClasses: number };

interface SigmoidInputs {
  x: Float32Array;
  targets: SigmoidTargets;
  weight: Float32Array | undefined;
}

function sigmoidInputs(s: SigmoidSpec): SigmoidInputs {
  let n = s.size;
  let targets: SigmoidTargets;
  let rows = n;
  if (s.targetKind === 'labels') {
    rows = Math.ceil(s.size / s.numClasses);
    n = rows * s.numClasses;
    targets = { labels: sigmoidLabels(rows, s.numClasses, s.seed + 1), numClasses: s.numClasses };
  } else {
    targets = s.targetKind === 'binary' ? binaryTargets(n, s.seed + 1, 0.05 + (s.seed % 90) / 100) : softTargets(n, s.seed + 1);
  }
  const wk = s.weightKind === 'row' && s.targetKind !== 'labels' ? 'element' : s.weightKind;
  const weight = wk === 'none' ? undefined : weights(wk === 'row' ? rows : n, s.seed + 2);
  return { x: logits(n, s.seed, s.mix), targets, weight };
}

function libSigmoidOptions(s: SigmoidSpec, weight: Float32Array | undefined) {
  return {
    alpha: s.alpha,
    gamma: s.gamma,
    reduction: s.reduction,
    grad: s.grad,
    ...(s.avgFactor !== undefined ? { avgFactor: s.avgFactor } : {}),
    ...(s.lossWeight !== undefined ? { lossWeight: s.lossWeight } : {}),
    ...(weight ? { weight } : {}),
  };
}

/** The mean's divisor and the reduced-loss underflow floor for a spec. */
function sigmoidScales(s: SigmoidSpec, n: number) {
  const lw = s.lossWeight ?? 1;
  const denom = s.reduction === 'mean' ? (s.avgFactor ?? n) : 1;
  const gradScale = lw / denom;
  const floor = (UNDERFLOW_PER_ELEMENT * Math.max(n, 1) * 3 * Math.abs(lw)) / (denom || 1);
  return { lw, denom, gradScale, floor };
}

function checkSigmoid(lib: Lib, s: SigmoidSpec, label = ''): void {
  const { x, targets, weight } = sigmoidInputs(s);
  const opts = libSigmoidOptions(s, weight);
  if (s.reduction === 'sum' && s.avgFactor !== undefined) {
    expect(() => lib.sigmoidFocalLoss(x, targets, opts)).toThrow(RangeError);
    return;
  }
  const r = lib.sigmoidFocalLoss(x, targets, opts);
  const f = refSigmoidFocal(x, targets, { alpha: s.alpha, gamma: s.gamma, reduction: s.reduction, avgFactor: s.avgFactor, lossWeight: s.lossWeight, weight });
  const { lw, gradScale, floor } = sigmoidScales(s, x.length);
  if (s.reduction === 'none') {
    expect(r.loss).toBeInstanceOf(Float32Array);
    expectScaledElementsClose(r.loss as Float32Array, f.loss as Float64Array, lw, `${label}loss`);
  } else {
    expect(typeof r.loss).toBe('number');
    expectReducedWithin(r.loss as number, f.loss as number, floor, `${label}loss`);
  }
  if (s.grad) expectScaledElementsClose(r.grad!, f.grad, gradScale, `${label}grad`);
  else expect(r.grad).toBeUndefined();
  if (s.alpha === 'auto') expect(r.alpha).toBeCloseTo(f.alphaUsed!, 12);
  else expect(r.alpha).toBe(s.alpha);
}

// ---------------------------------------------------------------------------------------------
// Softmax focal: case specs
// ---------------------------------------------------------------------------------------------

interface SoftmaxSpec {
  rows: number;
  numClasses: number;
  alphaKind: 'number' | 'array' | 'null' | 'default';
  alpha: number;
  gamma: number | undefined;
  reduction: Reduction | undefined;
  ignoreIndex: number | undefined;
  pIgnore: number;
  lossWeight: number | undefined;
  mix: LogitMix;
  seed: number;
  grad: boolean;
}

const softmaxSpecArb: fc.Arbitrary<SoftmaxSpec> = fc.record({
  // 410·80 > 32768: some matrices span several chunks.
  rows: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0, 1, 2, 3, 409, 410, 1000, 2000)),
  numClasses: fc.oneof(fc.constantFrom(1, 2, 3, 4, 5, 8, 9, 80), fc.integer({ min: 1, max: 100 })),
  alphaKind: fc.constantFrom('number', 'array', 'null', 'default'),
  alpha: sane(0, 1),
  gamma: fc.option(gammaArb, { nil: undefined, freq: 5 }),
  reduction: fc.option(reductionArb, { nil: undefined, freq: 5 }),
  // 0 is a class index: such rows must be skipped too ('ignoreIndex that is a class index').
  ignoreIndex: fc.option(fc.constantFrom(-100, -1, 255, 0), { nil: undefined }),
  pIgnore: fc.constantFrom(0, 0.2, 1),
  lossWeight: lossWeightArb,
  mix: fc.constantFrom(...LOGIT_MIXES),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  grad: fc.boolean(),
});

function softmaxInputs(s: SoftmaxSpec) {
  const x = logits(s.rows * s.numClasses, s.seed, s.mix);
  const labels = softmaxLabels(s.rows, s.numClasses, s.seed + 1, s.ignoreIndex ?? -100, s.pIgnore);
  let alpha: number | Float32Array | null | undefined;
  if (s.alphaKind === 'number') alpha = s.alpha;
  else if (s.alphaKind === 'null') alpha = null;
  else if (s.alphaKind === 'array') alpha = weights(s.numClasses, s.seed + 3, 0.1).map((v) => v / 3);
  const options = {
    numClasses: s.numClasses,
    ...(alpha !== undefined ? { alpha } : {}),
    ...(s.gamma !== undefined ? { gamma: s.gamma } : {}),
    ...(s.reduction !== undefined ? { reduction: s.reduction } : {}),
    ...(s.ignoreIndex !== undefined ? { ignoreIndex: s.ignoreIndex } : {}),
    ...(s.lossWeight !== undefined ? { lossWeight: s.lossWeight } : {}),
  };
  return { x, labels, options };
}

function checkSoftmax(lib: Lib, s: SoftmaxSpec, label = ''): void {
  const { x, labels, options } = softmaxInputs(s);
  const r = lib.softmaxFocalLoss(x, labels, { ...options, grad: s.grad });
  const f = refSoftmaxFocal(x, labels, options);
  const reduction = s.reduction ?? 'mean';
  const lw = s.lossWeight ?? 1;
  const ignore = s.ignoreIndex ?? -100;
  const counted = Math.max(1, labels.filter((y) => y !== ignore).length);
  if (reduction === 'none') {
    expect(r.loss).toBeInstanceOf(Float32Array);
    expect((r.loss as Float32Array).length).toBe(s.rows);
    expectScaledElementsClose(r.loss as Float32Array, f.loss as Float64Array, lw, `${label}loss`);
  } else {
    const floor = (UNDERFLOW_PER_ELEMENT * Math.max(s.rows, 1) * Math.abs(lw)) / (reduction === 'mean' ? counted : 1);
    expectReducedWithin(r.loss as number, f.loss as number, floor, `${label}loss`);
  }
  if (s.grad) expectScaledElementsClose(r.grad!, f.grad, reduction === 'mean' ? lw / counted : lw, `${label}grad`);
  else expect(r.grad).toBeUndefined();
}

// ---------------------------------------------------------------------------------------------
// Against the reference, per build
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build vs the float64 reference', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  it('sigmoid focal: random sizes, targets, weights, alpha, gamma, reductions, logit mixtures', () => {
    fc.assert(
      fc.property(sigmoidSpecArb, (s) => checkSigmoid(lib, s)),
      runs(250, 0x5eed01),
    );
  });

  it('sigmoid focal: every listed size with every target kind', () => {
    for (const size of SIZES) {
      for (const targetKind of ['binary', 'soft', 'labels'] as const) {
        for (const numClasses of targetKind === 'labels' ? [1, 3, 7, 80] : [1]) {
          const s: SigmoidSpec = {
            size, targetKind, numClasses, weightKind: targetKind === 'labels' ? 'row' : 'element',
            alpha: 'auto', gamma: 1.5, reduction: size % 2 ? 'mean' : 'none', avgFactor: undefined,
            lossWeight: 1.25, mix: 'mixed', seed: size * 7 + numClasses, grad: true,
          };
          checkSigmoid(lib, s, `size ${size} ${targetKind} C=${numClasses}: `);
        }
      }
    }
  });

  describe('sigmoid focal at 10^6 elements (chunked)', () => {
    const big: Array<[string, Partial<SigmoidSpec>]> = [
      ['binary', { targetKind: 'binary', weightKind: 'element', reduction: 'mean', alpha: 'auto', gamma: 2 }],
      ['soft', { targetKind: 'soft', weightKind: 'none', reduction: 'none', alpha: 0.25, gamma: 2.5 }],
      ['labels C=80', { targetKind: 'labels', numClasses: 80, weightKind: 'row', reduction: 'sum', alpha: 0.25, gamma: 2 }],
      ['labels C=3', { targetKind: 'labels', numClasses: 3, weightKind: 'element', reduction: 'mean', avgFactor: 1234.5, alpha: null, gamma: 0.5 }],
      ['labels C=1', { targetKind: 'labels', numClasses: 1, weightKind: 'row', reduction: 'none', alpha: 'auto', gamma: 1 }],
      ['labels C=7', { targetKind: 'labels', numClasses: 7, weightKind: 'row', reduction: 'mean', alpha: 0.4, gamma: 5, lossWeight: 2 }],
    ];
    for (const [name, partial] of big) {
      it(name, () => {
        const s: SigmoidSpec = {
          size: 1_000_000, targetKind: 'binary', numClasses: 1, weightKind: 'none', alpha: 0.25, gamma: 2,
          reduction: 'mean', avgFactor: undefined, lossWeight: undefined, mix: 'mixed', seed: 4242, grad: true, ...partial,
        };
        checkSigmoid(lib, s);
      });
    }
  });

  it('softmax focal: random C, rows, ignored rows, alpha, gamma, reductions, logit mixtures', () => {
    fc.assert(
      fc.property(softmaxSpecArb, (s) => checkSoftmax(lib, s)),
      runs(250, 0x5eed02),
    );
  });

  it('softmax focal at 10^6 elements (C = 80 and C = 7, chunked)', () => {
    for (const [rows, numClasses] of [[12_500, 80], [142_858, 7]] as const) {
      const s: SoftmaxSpec = {
        rows, numClasses, alphaKind: 'array', alpha: 0.25, gamma: 2, reduction: 'mean', ignoreIndex: undefined,
        pIgnore: 0.2, lossWeight: 1.5, mix: 'mixed', seed: 99, grad: true,
      };
      checkSoftmax(lib, s, `C=${numClasses}: `);
      checkSoftmax(lib, { ...s, reduction: 'none', grad: false, gamma: 0.5 }, `C=${numClasses} none: `);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// NaN logits, and inputs that are views into larger buffers
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build: NaN logits and array views', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  it('sigmoid focal: a NaN logit gives NaN there (loss and grad), NaN reduced losses, the rest unchanged', () => {
    fc.assert(
      fc.property(sigmoidSpecArb, fc.integer({ min: 1, max: 50 }), (s0, every) => {
        const s = { ...s0, size: Math.max(s0.size, 1), grad: true, avgFactor: undefined };
        const { x, targets, weight } = sigmoidInputs(s);
        for (let k = 0; k < x.length; k += every) x[k] = NaN;
        const opts = libSigmoidOptions(s, weight);
        const r = lib.sigmoidFocalLoss(x, targets, { ...opts, reduction: 'none' });
        const f = refSigmoidFocal(x, targets, { alpha: s.alpha, gamma: s.gamma, reduction: 'none', lossWeight: s.lossWeight, weight });
        // expectElementsClose requires NaN exactly where the reference has NaN.
        expectElementsClose(r.loss as Float32Array, f.loss as Float64Array, REL, 'loss');
        expectElementsClose(r.grad!, f.grad, REL, 'grad');
        for (const reduction of ['mean', 'sum'] as const) {
          expect(lib.sigmoidFocalLoss(x, targets, { ...opts, reduction }).loss).toBeNaN();
        }
      }),
      runs(40, 0x5eed06),
    );
  });

  it('softmax focal: a NaN logit makes its row NaN (loss and grad), other rows unchanged', () => {
    fc.assert(
      fc.property(softmaxSpecArb, fc.integer({ min: 1, max: 200 }), (s0, every) => {
        // C ≥ 2: with one class the oracle's gradient is exactly 0 whatever the logit (it never
        // reads the other classes), where the library, like PyTorch, propagates the NaN.
        const s = { ...s0, rows: Math.max(s0.rows, 1), numClasses: Math.max(s0.numClasses, 2), grad: true, reduction: 'none' as const, pIgnore: 0.2 };
        const { x, labels, options } = softmaxInputs(s);
        for (let k = 0; k < x.length; k += every) x[k] = NaN;
        const r = lib.softmaxFocalLoss(x, labels, { ...options, grad: true });
        const f = refSoftmaxFocal(x, labels, options);
        expectElementsClose(r.loss as Float32Array, f.loss as Float64Array, REL, 'loss');
        expectElementsClose(r.grad!, f.grad, REL, 'grad');
      }),
      runs(40, 0x5eed07),
    );
  });

  it('inputs that are subarray views at odd offsets give the same numbers as copies', () => {
    fc.assert(
      fc.property(sigmoidSpecArb, fc.integer({ min: 1, max: 7 }), (s0, off) => {
        const s = { ...s0, avgFactor: undefined };
        const { x, targets, weight } = sigmoidInputs(s);
        const view = <A extends Float32Array | Uint8Array | Int32Array>(a: A): A => {
          const big = new (a.constructor as new (n: number) => A)(a.length + off + 3);
          big.fill(7 as never);
          big.set(a as never, off);
          return big.subarray(off, off + a.length) as A;
        };
        const vt: SigmoidTargets = ArrayBuffer.isView(targets) ? view(targets) : { labels: view(targets.labels), numClasses: targets.numClasses };
        const opts = libSigmoidOptions(s, weight);
        const a = lib.sigmoidFocalLoss(x, targets, opts);
        const b = lib.sigmoidFocalLoss(view(x), vt, { ...opts, ...(weight ? { weight: view(weight) } : {}) });
        expect(Object.is(a.loss, b.loss) || (a.loss instanceof Float32Array && b.loss instanceof Float32Array)).toBe(true);
        if (a.loss instanceof Float32Array) expect(Array.from(b.loss as Float32Array)).toEqual(Array.from(a.loss));
        if (a.grad) expect(Array.from(b.grad!)).toEqual(Array.from(a.grad));
        expect(b.alpha).toBe(a.alpha);
      }),
      runs(40, 0x5eed08),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// SIMD vs scalar
// ---------------------------------------------------------------------------------------------

describe('SIMD and scalar builds agree', () => {
  let simd: Lib;
  let scalar: Lib;
  beforeAll(async () => {
    simd = await loadLib('simd');
    scalar = await loadLib('scalar');
  });

  function same(a: number | Float32Array, b: number | Float32Array, floor: number, label: string): void {
    if (typeof b === 'number') expectReducedWithin(a as number, b, floor, label);
    else expectElementsClose(a as Float32Array, Float64Array.from(b), REL, label);
  }

  it('the builds are distinct instances', async () => {
    expect((await simd.init()).simd).toBe(true);
    expect((await scalar.init()).simd).toBe(false);
  });

  it('sigmoid focal', () => {
    fc.assert(
      fc.property(sigmoidSpecArb, (s) => {
        if (s.reduction === 'sum' && s.avgFactor !== undefined) return;
        const { x, targets, weight } = sigmoidInputs(s);
        const opts = libSigmoidOptions(s, weight);
        const a = simd.sigmoidFocalLoss(x, targets, opts);
        const b = scalar.sigmoidFocalLoss(x, targets, opts);
        same(a.loss, b.loss, sigmoidScales(s, x.length).floor, 'loss');
        if (s.grad) same(a.grad!, b.grad!, 0, 'grad');
        expect(a.alpha).toBe(b.alpha);
      }),
      runs(150, 0x5eed03),
    );
  });

  it('softmax focal', () => {
    fc.assert(
      fc.property(softmaxSpecArb, (s) => {
        const { x, labels, options } = softmaxInputs(s);
        const a = simd.softmaxFocalLoss(x, labels, { ...options, grad: s.grad });
        const b = scalar.softmaxFocalLoss(x, labels, { ...options, grad: s.grad });
        same(a.loss, b.loss, UNDERFLOW_PER_ELEMENT * Math.max(s.rows, 1) * Math.abs(s.lossWeight ?? 1), 'loss');
        if (s.grad) same(a.grad!, b.grad!, 0, 'grad');
      }),
      runs(150, 0x5eed04),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The library's gradient against finite differences of the library's own loss
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build: gradient vs float32 finite differences of the library loss', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  const H = 1e-2;
  const FD_REL = 2e-2;

  /** |fd - g| ≤ 2e-2·|g| + 1e-4·|scale|: truncation O(h²) and float32 rounding / 2h. */
  function expectFd(fd: number, g: number, scale: number, label: string): void {
    const tol = FD_REL * Math.abs(g) + 1e-4 * Math.abs(scale);
    if (!(Math.abs(fd - g) <= tol)) throw new Error(`${label}: grad ${g}, finite difference ${fd} (tol ${tol})`);
  }

  type Case = { name: string; reduction: Reduction; avgFactor?: number; lossWeight?: number };
  const CASES: Case[] = [
    { name: 'sum', reduction: 'sum' },
    { name: 'sum, lossWeight 2.5', reduction: 'sum', lossWeight: 2.5 },
    { name: 'mean', reduction: 'mean' },
    { name: 'mean, lossWeight -0.7', reduction: 'mean', lossWeight: -0.7 },
    { name: 'mean, avgFactor 7.5', reduction: 'mean', avgFactor: 7.5 },
    { name: 'mean, avgFactor 7.5, lossWeight 3', reduction: 'mean', avgFactor: 7.5, lossWeight: 3 },
    { name: 'none, lossWeight 1.5', reduction: 'none', lossWeight: 1.5 },
  ];

  for (const c of CASES) {
    for (const kind of ['binary', 'soft', 'labels'] as const) {
      it(`sigmoid focal, ${c.name}, ${kind} targets`, () => {
        const seed = 7000 + CASES.indexOf(c) * 10 + ['binary', 'soft', 'labels'].indexOf(kind);
        const n = 60;
        const x = uniformLogits(n, seed, -3, 3);
        const targets: SigmoidTargets =
          kind === 'binary' ? binaryTargets(n, seed + 1, 0.4) : kind === 'soft' ? softTargets(n, seed + 1) : { labels: sigmoidLabels(n / 4, 4, seed + 1), numClasses: 4 };
        const weight = kind === 'labels' ? weights(n / 4, seed + 2, 0) : weights(n, seed + 2, 0.1);
        const gamma = [0, 0.5, 1, 2, 2.5][seed % 5]!;
        const opts = { alpha: 0.3, gamma, weight, reduction: c.reduction, avgFactor: c.avgFactor, lossWeight: c.lossWeight };
        if (opts.avgFactor === undefined) delete opts.avgFactor;
        if (opts.lossWeight === undefined) delete opts.lossWeight;
        const { grad } = lib.sigmoidFocalLoss(x, targets, { ...opts, grad: true });
        // The scale the reduction puts on the gradient, for the absolute part of the tolerance.
        const scale = (c.lossWeight ?? 1) / (c.reduction === 'mean' ? (c.avgFactor ?? n) : 1);
        const r = rng(seed);
        for (let j = 0; j < 25; j++) {
          const k = Math.floor(r() * n);
          const plus = new Float32Array(x);
          const minus = new Float32Array(x);
          plus[k] = x[k]! + H;
          minus[k] = x[k]! - H;
          const step = plus[k]! - minus[k]!;
          const lp = lib.sigmoidFocalLoss(plus, targets, opts).loss;
          const lm = lib.sigmoidFocalLoss(minus, targets, opts).loss;
          const fd =
            c.reduction === 'none'
              ? ((lp as Float32Array)[k]! - (lm as Float32Array)[k]!) / step
              : ((lp as number) - (lm as number)) / step;
          expectFd(fd, grad![k]!, scale, `element ${k} (x=${x[k]})`);
        }
      });
    }
  }

  for (const reduction of ['sum', 'mean', 'none'] as const) {
    it(`softmax focal, ${reduction}, lossWeight 1.5, per-class alpha, ignored rows`, () => {
      const seed = 8000 + reduction.length;
      const numClasses = 5;
      const rows = 12;
      const x = uniformLogits(rows * numClasses, seed, -3, 3);
      const labels = softmaxLabels(rows, numClasses, seed + 1, -100, 0.2);
      labels[0] = -100;
      labels[1] = 2;
      const opts = { numClasses, alpha: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5), gamma: 2, reduction, lossWeight: 1.5 };
      const { grad } = lib.softmaxFocalLoss(x, labels, { ...opts, grad: true });
      const counted = labels.filter((y) => y !== -100).length;
      const scale = 1.5 / (reduction === 'mean' ? counted : 1);
      for (let k = 0; k < x.length; k++) {
        const plus = new Float32Array(x);
        const minus = new Float32Array(x);
        plus[k] = x[k]! + H;
        minus[k] = x[k]! - H;
        const step = plus[k]! - minus[k]!;
        const lp = lib.softmaxFocalLoss(plus, labels, opts).loss;
        const lm = lib.softmaxFocalLoss(minus, labels, opts).loss;
        const row = Math.floor(k / numClasses);
        const fd =
          reduction === 'none'
            ? ((lp as Float32Array)[row]! - (lm as Float32Array)[row]!) / step
            : ((lp as number) - (lm as number)) / step;
        expectFd(fd, grad![k]!, scale, `element ${k}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A long sum must not drift (SPEC §5: any N up to 10^8)
// ---------------------------------------------------------------------------------------------

describe('a sum over 2·10^7 elements (binary targets, γ = 2) within 1e-5 of float64', () => {
  // The logits repeat one period of 10^5 random values (not a multiple of the 32768-element
  // chunk), so the float64 reference is exactly 200 × the reference sum of one period: cheap,
  // and no weaker — a float32 accumulator drifts on repeated values just as on fresh ones.
  const PERIOD = 100_000;
  const REPS = 200;
  const N = PERIOD * REPS;
  const px = logits(PERIOD, 31337, 'mixed');
  const pt = binaryTargets(PERIOD, 31338, 0.3);
  let x: Float32Array;
  let t: Uint8Array;
  let refSum: number;

  beforeAll(() => {
    x = new Float32Array(N);
    t = new Uint8Array(N);
    for (let i = 0; i < REPS; i++) {
      x.set(px, i * PERIOD);
      t.set(pt, i * PERIOD);
    }
    refSum = REPS * (refSigmoidFocal(px, pt, { gamma: 2, reduction: 'sum' }).loss as number);
  });

  it.each(BUILDS)('%s build: sum and mean', async (build) => {
    const lib = await loadLib(build);
    const sum = lib.sigmoidFocalLoss(x, t, { gamma: 2, reduction: 'sum' }).loss as number;
    expectReducedClose(sum, refSum, REL, 'sum');
    const mean = lib.sigmoidFocalLoss(x, t, { gamma: 2 }).loss as number;
    expectReducedClose(mean, refSum / N, REL, 'mean');
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// α close to 0 or 1
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build: α close to 1 or 0 (SPEC §1: aw = α·t + (1-α)·(1-t) for any α in [0, 1])', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  const x = Float32Array.of(-1, 0.5, 2, -3, 4);

  // Regression test for a bug this file found (fixed in ef48c6c): the kernel got α as float32,
  // set neg = 1 - α from the rounded value, and formed the weight as aw = neg + (pos - neg)·t,
  // so both weights kept only absolute precision ~6e-8:
  // - negatives' weight 1 - α for α near 1: α = 0.999 gave relative error 1.3e-5 > 1e-5;
  //   α = 1 - 1e-7 gave 1.19e-7 instead of 1e-7; α = 1 - 2^-30 gave 0;
  // - positives' weight for α near 0: (pos - neg) + neg cancelled; α = 0.001 gave relative
  //   error 1.3e-5, α = 1e-7 gave 1.19e-7, α = 3e-9 gave 0.
  it.each([0.999, 1 - 1e-7, 1 - 2 ** -30])('negatives only, α = %s: reduced loss within 1e-5', (alpha) => {
    const t = new Uint8Array(x.length);
    const r = lib.sigmoidFocalLoss(x, t, { alpha, reduction: 'sum', grad: true });
    const f = refSigmoidFocal(x, t, { alpha, reduction: 'sum' });
    expectReducedClose(r.loss as number, f.loss as number, REL, 'loss');
    expectScaledElementsClose(r.grad!, f.grad, 1 - alpha, 'grad');
  });

  it.each([0.001, 1e-7, 3e-9])('positives only, α = %s: reduced loss within 1e-5', (alpha) => {
    const t = new Uint8Array(x.length).fill(1);
    const r = lib.sigmoidFocalLoss(x, t, { alpha, reduction: 'sum' });
    const f = refSigmoidFocal(x, t, { alpha, reduction: 'sum' });
    expectReducedClose(r.loss as number, f.loss as number, REL, 'loss');
  });
});

// ---------------------------------------------------------------------------------------------
// ignoreIndex inside [0, C)
// ---------------------------------------------------------------------------------------------

describe.each(BUILDS)('%s build: softmax ignoreIndex that is a class index', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  // Regression test for a bug this file found (fixed in ef48c6c): the softmax kernel skipped
  // rows with y < 0 or y ≥ C and never looked at ignore_index, while ts/focal.ts excluded rows
  // equal to ignoreIndex from the mean's divisor. With ignoreIndex = 0 the rows labelled 0 still
  // got a loss and a gradient: x = [2, 0.5, -1, 0, 0, 0], labels [0, 1], C = 3, ignoreIndex 0,
  // 'none' → expected [0, 0.1220680], was [0.0027732, 0.1220680]; 'mean' → expected 0.1220680,
  // was 0.1248412.
  it.each(['none', 'mean', 'sum'] as const)('reduction %s: rows labelled ignoreIndex = 0 are skipped', (reduction) => {
    const x = Float32Array.of(2, 0.5, -1, 0, 0, 0);
    const labels = Int32Array.of(0, 1);
    const r = lib.softmaxFocalLoss(x, labels, { numClasses: 3, ignoreIndex: 0, reduction, grad: true });
    const f = refSoftmaxFocal(x, labels, { numClasses: 3, ignoreIndex: 0, reduction });
    if (reduction === 'none') expectElementsClose(r.loss as Float32Array, f.loss as Float64Array, REL, 'loss');
    else expectReducedClose(r.loss as number, f.loss as number, REL, 'loss');
    expectElementsClose(r.grad!, f.grad, REL, 'grad');
  });

  it('random rows with ignoreIndex in [0, C)', () => {
    fc.assert(
      fc.property(softmaxSpecArb, fc.nat(), (s, k) => {
        const ignoreIndex = k % s.numClasses;
        checkSoftmax(lib, { ...s, ignoreIndex, pIgnore: 0.3 });
      }),
      runs(30, 0x5eed05),
    );
  });
});
