// The focal family of the extras module (docs/SPEC.md §7–9): Quality Focal, Varifocal and
// Distribution Focal losses. Each call is parsed into a `FamilyCall` (every check first, as the
// core losses do), which the one-shot function and the stream run through `familyPass`, and the
// thread pool (ts/pool.ts) on its workers.

import { expectArray, expectDisjoint, expectBoolean, expectFinite, expectInteger, expectOptions } from './errors';
import { reductionOptions, resolveGamma, resolveOut, rowWeights, SoftRows, unitsPerChunk, type LossFor, type LossResult, type OutputBuffers, type Reduction } from './focal';
import { checkLabels } from './inputs';
import { getExtras, type ExtrasKernels } from './loader';
import { runChunked, type ChunkInput } from './memory';
import { streamReduction } from './stream';
import { liveView } from './views';
import { workspace, type Workspace } from './workspace';

/** Options every loss of the family takes (mmdetection's `weight_reduce_loss` and `loss_weight`). */
export interface FamilyOptions<R extends Reduction = Reduction, G extends boolean = boolean> {
  /** Default `'mean'`; `'none'` makes `loss` a `Float32Array` (one per row, or per element for Varifocal). */
  reduction?: R;
  /** With `'mean'`: divide the sum by this instead of the count (must be > 0; not with `'sum'`). */
  avgFactor?: number;
  /** Multiplies the loss (and gradient). Default 1. */
  lossWeight?: number;
  /** Also return d loss / d logits (`grad` in the result). Default false. */
  grad?: G;
  /**
   * Write results into these arrays instead of new ones (zero-copy when they live in wasm
   * memory, see `createBatch`): `loss` with reduction `'none'` (one per unit), `grad` with
   * `grad: true` (the logits' length).
   */
  out?: OutputBuffers;
}

/**
 * The family's kernel calls, by name: what a {@link FamilyCall} runs, on this thread
 * ({@link familyKernel}) or on a pool's workers (ts/pool-worker.ts, which mirrors familyKernel:
 * a worker cannot import it). Arguments `a` of each, then the streams besides the logits:
 * - `qualityFocal` `[C, β]`; labels, scores, row weights (fg_quality_focal; info [Σ, min score, max score]).
 * - `varifocal` `[α, γ, iouWeighted 0/1]`; targets q, weights (fg_varifocal; info [Σ, min q, max q]).
 * - `softmaxSoft` `[C, tkind, ε, ignoreIndex, γ]` with α null; targets, row weights
 *   (fg_softmax_focal_soft; info [Σ, counted rows], for two-hot rows [Σ, min y, max y]).
 */
export type FamilyOp = 'qualityFocal' | 'varifocal' | 'softmaxSoft';

/** A family call after every check (shared by the single-thread API and the thread pool). */
export interface FamilyCall {
  /** Units (rows, or elements for Varifocal): `'none'`'s length and `'mean'`'s count. */
  units: number;
  /** Logits per unit. */
  perUnit: number;
  /** Inputs besides the logits, per unit, in the order {@link FamilyOp} lists. */
  inputs: ChunkInput[];
  /** The kernel; `info[0]` gets Σ loss, `info[1..2]` a target range (see {@link FamilyOp}). */
  op: FamilyOp;
  /** Its arguments besides pointers and scales (see {@link FamilyOp}). */
  a: number[];
  /** The range check after the pass: throws naming the first bad unit (the kernels report only min and max). */
  checkRange?: (min: number, max: number) => void;
}

/** One chunk of `op`: `u` units at `xp`, the other inputs at `ins`. */
function familyKernel(
  k: ExtrasKernels, op: FamilyOp, a: number[], u: number, xp: number, ins: number[],
  lp: number, ls: number, gp: number, gs: number, info: number,
): void {
  switch (op) {
    case 'qualityFocal':
      return k.fg_quality_focal(xp, u, a[0]!, ins[0]!, ins[1]!, ins[2]!, a[1]!, lp, ls, gp, gs, info);
    case 'varifocal':
      return k.fg_varifocal(xp, u, ins[0]!, ins[1]!, a[0]!, a[1]!, a[2]!, lp, ls, gp, gs, info);
    case 'softmaxSoft':
      return k.fg_softmax_focal_soft(xp, u, a[0]!, a[1]!, ins[0]!, a[2]!, a[3]!, 0, a[4]!, ins[1]!, lp, ls, gp, gs, info);
  }
}

/**
 * Σ loss and the target range of a call, from each chunk's info words in chunk order: familyPass
 * and the thread pool (its blocks are these chunks) add them the same way, so their sums agree
 * bit for bit.
 */
export class FamilySums {
  sum = 0;
  min = Infinity;
  max = -Infinity;

  /** Adds the info words `[Σ, min, max]` at `f64[at…]`. */
  add(f64: Float64Array, at: number): void {
    this.sum += f64[at]!;
    // NaN compares false both ways: NaN in a range makes it fail the check below.
    const lo = f64[at + 1]!;
    const hi = f64[at + 2]!;
    this.min = lo < this.min || lo !== lo ? lo : this.min;
    this.max = hi > this.max || hi !== hi ? hi : this.max;
  }

  /** The call's range check (after the pass; the kernels report only min and max). */
  check(call: FamilyCall): void {
    if (call.units > 0) call.checkRange?.(this.min, this.max);
  }
}

/** Runs `call` over `x` in chunks; returns the unscaled Σ loss. */
function familyPass(
  ws: Workspace, k: ExtrasKernels, call: FamilyCall, x: Float32Array,
  lossArr: Float32Array | undefined, lossScale: number, gradArr: Float32Array | undefined, gradScale: number,
): number {
  const info = ws.params.reserve(32);
  const sums = new FamilySums();
  runChunked(
    ws.heap, ws.scratch, call.units, unitsPerChunk(call.perUnit),
    [{ array: x, perUnit: call.perUnit }, ...call.inputs],
    [{ array: lossArr, perUnit: 1 }, { array: gradArr, perUnit: call.perUnit }],
    (u, [xp, ...ins], [lp, gp]) => {
      familyKernel(k, call.op, call.a, u, xp!, ins, lp!, lossScale, gp!, gradScale, info);
      sums.add(ws.heap.views().f64, info / 8);
    },
  );
  sums.check(call);
  return sums.sum;
}

/**
 * A loss of the family: its option keys besides the common ones, `resolve` (its own options,
 * checked once per call or stream) and `call` (the inputs of one call or one push, checked).
 */
export interface FamilyLoss<Opts = unknown> {
  keys: readonly string[];
  resolve(fn: string, o: Record<string, unknown>): Opts;
  call(fn: string, x: Float32Array, targets: unknown, opts: Opts, weight: unknown): FamilyCall;
}

/**
 * Every check of one call of a family loss, before any work (shared with the thread pool, so
 * both throw the same errors): the logits, the parsed call and the common options.
 */
export function parseFamilyCall<Opts>(fn: string, loss: FamilyLoss<Opts>, logits: unknown, targets: unknown, options: unknown) {
  const x = expectArray(fn, 'logits', logits, Float32Array);
  const o = expectOptions(fn, options, [...loss.keys, 'weight', 'out', ...COMMON_OPTIONS]) as Record<string, unknown>;
  const call = loss.call(fn, x, targets, loss.resolve(fn, o), o.weight);
  const common = reductionOptions(fn, o, call.units);
  const out = resolveOut(fn, o.out, x.length, common.reduction, call.units);
  if (out.grad && !common.wantGrad) throw new RangeError(`${fn}: options.out.grad is written with grad: true; pass grad: true`);
  if (out.loss || out.grad) {
    expectDisjoint(fn, [['options.out.loss', out.loss], ['options.out.grad', out.grad]], [['logits', x], ...call.inputs.map((s, i): [string, ArrayBufferView | undefined] => [`input ${i + 1}`, s.array])]);
  }
  return { x, call, out, ...common };
}

/** Parses, runs and reduces one call of a family loss. */
function runFamily<Opts>(fn: string, loss: FamilyLoss<Opts>, logits: unknown, targets: unknown, options: unknown): LossResult {
  const ws = workspace(fn);
  const k = getExtras(fn);
  const { x, call, out, reduction, lossWeight, wantGrad, denom, gradScale } = parseFamilyCall(fn, loss, logits, targets, options);
  const lossArr = reduction === 'none' ? (out.loss ?? new Float32Array(call.units)) : undefined;
  const gradArr = wantGrad ? (out.grad ?? new Float32Array(x.length)) : undefined;
  const sum = familyPass(ws, k, call, x, lossArr, lossWeight, gradArr, gradScale);
  const loss_ = lossArr ? liveView(lossArr, ws.heap.buffer) : (lossWeight * sum) / denom;
  return gradArr ? { loss: loss_, grad: liveView(gradArr, ws.heap.buffer) } : { loss: loss_ };
}

const COMMON_OPTIONS = ['reduction', 'avgFactor', 'lossWeight', 'grad'] as const;

/** Throws naming the first element of `a` outside [lo, hi) (or [lo, hi] when `closed`), NaN included. */
function expectValuesIn(fn: string, name: string, a: Float32Array, lo: number, hi: number, closed: boolean, what = 'row'): void {
  const i = closed ? firstOutsideClosed(a, lo, hi) : firstOutsideOpen(a, lo, hi);
  if (i >= 0) throw new RangeError(`${fn}: ${name}[${i}] is ${a[i]}, expected a number in [${lo}, ${hi}${closed ? ']' : ')'} (${what} ${i})`);
}

/**
 * After a pass whose kernel saw a value of `a` outside the interval: names the first one, or, if
 * none is there now, says that `a` changed while the call ran (a pool's call reads its inputs
 * while it awaits its workers, and the caller may write them meanwhile): never a result
 * computed from clamped values. Exported for its test.
 */
export function rejectOutside(fn: string, name: string, a: Float32Array, lo: number, hi: number, closed: boolean, what = 'row'): never {
  expectValuesIn(fn, name, a, lo, hi, closed, what);
  throw new RangeError(`${fn}: ${name} held a value outside [${lo}, ${hi}${closed ? ']' : ')'} during the call, and was changed before it ended`);
}

// One loop per interval kind: a loop testing `closed` per element took twice the time (V8), a
// tenth of a DFL call's at 17 bins.
function firstOutsideOpen(a: Float32Array, lo: number, hi: number): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!(v >= lo && v < hi)) return i;
  }
  return -1;
}

function firstOutsideClosed(a: Float32Array, lo: number, hi: number): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!(v >= lo && v <= hi)) return i;
  }
  return -1;
}

/** The logits' rows of `perRow`, or a RangeError. */
function rowsOf(fn: string, x: Float32Array, perRow: number, what: string): number {
  if (x.length % perRow !== 0) throw new RangeError(`${fn}: logits has length ${x.length}, not a multiple of ${what} (${perRow})`);
  return x.length / perRow;
}

// ---------------------------------------------------------------------------------------------
// Quality Focal Loss (§7)

/** Targets of {@link qualityFocalLoss}: one label and one quality score per row. */
export interface QualityTargets {
  /** Class per row in [0, numClasses]; `numClasses` is the background. */
  labels: Int32Array;
  /** Quality (e.g. IoU) of each row's labelled class, in [0, 1]; not used on background rows. */
  scores: Float32Array;
  /** Classes C: logits are `[N, C]`. */
  numClasses: number;
}

/** Options of {@link qualityFocalLoss}. */
export interface QualityFocalOptions<R extends Reduction = Reduction, G extends boolean = boolean> extends FamilyOptions<R, G> {
  /** β ≥ 0 of the modulating factor `|y − σ|^β`. Default 2. */
  beta?: number;
  /** Per-row weights (length N). */
  weight?: Float32Array;
}

const QFL_OPTIONS = ['beta'] as const;

export const quality: FamilyLoss<{ beta: number }> = {
  keys: QFL_OPTIONS,
  resolve: (fn, o) => ({ beta: resolveGamma(fn, o.beta, 'options.beta') }),
  call(fn, x, targets, { beta }, weight) {
    if (typeof targets !== 'object' || targets === null) throw new TypeError(`${fn}: targets must be { labels: Int32Array, scores: Float32Array, numClasses }`);
    const t = expectOptions(fn, targets, ['labels', 'scores', 'numClasses'] as const, 'targets');
    const c = expectInteger(fn, 'targets.numClasses', t.numClasses, 1, 1 << 24);
    const rows = rowsOf(fn, x, c, 'targets.numClasses');
    const labels = expectArray(fn, 'targets.labels', t.labels, Int32Array);
    const scores = expectArray(fn, 'targets.scores', t.scores, Float32Array);
    if (labels.length !== rows) throw new RangeError(`${fn}: targets.labels has length ${labels.length}, expected ${rows} (one per row of ${c} logits)`);
    if (scores.length !== rows) throw new RangeError(`${fn}: targets.scores has length ${scores.length}, expected ${rows} (one per row)`);
    checkLabels(fn, 'targets.labels', labels, 0, c, null);
    expectValuesIn(fn, 'targets.scores', scores, 0, 1, true);
    const w = rowWeights(fn, weight, rows);
    return {
      units: rows,
      perUnit: c,
      inputs: [{ array: labels, perUnit: 1 }, { array: scores, perUnit: 1 }, { array: w, perUnit: 1 }],
      op: 'qualityFocal',
      a: [c, beta],
    };
  },
};

/**
 * Quality Focal Loss (Li et al. 2020, "Generalized Focal Loss"; mmdetection `QualityFocalLoss`,
 * docs/SPEC.md §7): the classification–quality loss of GFL, RTMDet and YOLOv8-style heads. Per
 * element of row i, with y the row's score at its label column and 0 elsewhere:
 * `bce(x, y) · |y − σ(x)|^β`, summed over the row; reduced over rows.
 * Needs the extras kernels: `init({ extras })` with `extras` from `focal-ghm/extras`.
 *
 * @example
 * ```ts
 * import { init, qualityFocalLoss } from 'focal-ghm';
 * import { extras } from 'focal-ghm/extras';
 * await init({ extras });
 * // 2 anchors × 3 classes: the first is class 1 with IoU 0.8, the second background (label 3).
 * const logits = new Float32Array([-2, 1.5, -3, -1, -2, -4]);
 * const { loss, grad } = qualityFocalLoss(logits, { labels: Int32Array.of(1, 3), scores: Float32Array.of(0.8, 0), numClasses: 3 }, { grad: true });
 * ```
 * @throws TypeError for arrays of the wrong type; RangeError for wrong lengths or values out of range (naming the row).
 */
export function qualityFocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
  logits: Float32Array,
  targets: QualityTargets,
  options?: QualityFocalOptions<R, G>,
): LossResult<LossFor<R>, G>;
export function qualityFocalLoss(logits: Float32Array, targets: QualityTargets, options?: QualityFocalOptions): LossResult {
  const fn = 'qualityFocalLoss';
  return runFamily(fn, quality, logits, targets, options);
}

// ---------------------------------------------------------------------------------------------
// Varifocal Loss (§8)

/** Options of {@link varifocalLoss}. */
export interface VarifocalOptions<R extends Reduction = Reduction, G extends boolean = boolean> extends FamilyOptions<R, G> {
  /** Weight α of the negatives' focal term. Default 0.75. */
  alpha?: number;
  /** γ ≥ 0 of the negatives' `|σ − q|^γ`. Default 2. */
  gamma?: number;
  /** Weight positives by their target q (default true) or by 1. */
  iouWeighted?: boolean;
  /** Per-element weights (length of the logits). */
  weight?: Float32Array;
}

const VFL_OPTIONS = ['alpha', 'gamma', 'iouWeighted'] as const;

export const varifocal: FamilyLoss<{ alpha: number; gamma: number; iou: number }> = {
  keys: VFL_OPTIONS,
  resolve: (fn, o) => ({
    alpha: expectFinite(fn, 'options.alpha', o.alpha ?? 0.75),
    gamma: resolveGamma(fn, o.gamma),
    iou: expectBoolean(fn, 'options.iouWeighted', o.iouWeighted ?? true) ? 1 : 0,
  }),
  call(fn, x, targets, { alpha, gamma, iou }, weight) {
    const q = expectArray(fn, 'targets', targets, Float32Array);
    if (q.length !== x.length) throw new RangeError(`${fn}: targets has length ${q.length}, expected ${x.length} (one per logit)`);
    let w: Float32Array | undefined;
    if (weight !== undefined) {
      w = expectArray(fn, 'options.weight', weight, Float32Array);
      if (w.length !== x.length) throw new RangeError(`${fn}: options.weight has length ${w.length}, expected ${x.length} (one per logit)`);
    }
    return {
      units: x.length,
      perUnit: 1,
      inputs: [{ array: q, perUnit: 1 }, { array: w, perUnit: 1 }],
      op: 'varifocal',
      a: [alpha, gamma, iou],
      checkRange: (min, max) => {
        // The call may have grown the memory since: a batch view of the targets is read afresh.
        if (!(min >= 0 && max <= 1)) rejectOutside(fn, 'targets', liveView(q, workspace(fn).heap.buffer), 0, 1, true, 'element');
      },
    };
  },
};

/**
 * Varifocal Loss (Zhang et al. 2021, "VarifocalNet"; mmdetection `varifocal_loss`, docs/SPEC.md
 * §8): targets are IoU-aware scores q (0 for negatives); positives weigh `q` (or 1 without
 * `iouWeighted`), negatives `α·|σ(x) − q|^γ`, times the BCE. Reduced over elements.
 * Needs the extras kernels: `init({ extras })` with `extras` from `focal-ghm/extras`.
 *
 * @example
 * ```ts
 * import { init, varifocalLoss } from 'focal-ghm';
 * import { extras } from 'focal-ghm/extras';
 * await init({ extras });
 * const { loss } = varifocalLoss(Float32Array.of(1.2, -0.5, -3), Float32Array.of(0.9, 0, 0));
 * ```
 * @throws TypeError for arrays of the wrong type; RangeError for wrong lengths or targets outside [0, 1] (naming the element).
 */
export function varifocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
  logits: Float32Array,
  targets: Float32Array,
  options?: VarifocalOptions<R, G>,
): LossResult<LossFor<R>, G>;
export function varifocalLoss(logits: Float32Array, targets: Float32Array, options?: VarifocalOptions): LossResult {
  const fn = 'varifocalLoss';
  return runFamily(fn, varifocal, logits, targets, options);
}

// ---------------------------------------------------------------------------------------------
// Distribution Focal Loss (§9)

/** Options of {@link distributionFocalLoss}. */
export interface DistributionFocalOptions<R extends Reduction = Reduction, G extends boolean = boolean> extends FamilyOptions<R, G> {
  /** n: each row is a distribution over 0…n (n + 1 logits). Default: from the lengths. */
  bins?: number;
  /** Per-row weights (length N). */
  weight?: Float32Array;
}

const DFL_OPTIONS = ['bins'] as const;


export const distribution: FamilyLoss<{ bins: number | undefined }> = {
  keys: DFL_OPTIONS,
  resolve: (fn, o) => ({ bins: o.bins === undefined ? undefined : expectInteger(fn, 'options.bins', o.bins, 1, 1 << 24) }),
  call(fn, x, targets, r, weight) {
    const y = expectArray(fn, 'targets', targets, Float32Array);
    let bins: number;
    if (r.bins !== undefined) bins = r.bins;
    else if (x.length === 0 && y.length === 0) {
      // Nothing to score (e.g. an empty piece of a stream): no row tells the bins, none needs them.
      bins = 1;
    } else {
      if (y.length === 0 || x.length % y.length !== 0 || x.length / y.length < 2) {
        throw new RangeError(`${fn}: cannot tell options.bins from logits of length ${x.length} and ${y.length} targets; pass options.bins`);
      }
      bins = x.length / y.length - 1;
    }
    const rows = rowsOf(fn, x, bins + 1, 'options.bins + 1');
    if (y.length !== rows) throw new RangeError(`${fn}: targets has length ${y.length}, expected ${rows} (one per row of ${bins + 1} logits)`);
    const w = rowWeights(fn, weight, rows);
    const c = bins + 1;
    return {
      units: rows,
      perUnit: c,
      inputs: [{ array: y, perUnit: 1 }, { array: w, perUnit: 1 }],
      // DFL is the soft softmax kernel on two-hot rows: ε 0 (no Poly-1), ignoreIndex 0 (unused: no labels), α null, γ 0.
      op: 'softmaxSoft',
      a: [c, SoftRows.TwoHot, 0, 0, 0],
      // From the kernel's range of y (it clamps the rest), as Varifocal's: a scan before the pass cost a tenth of the call.
      checkRange: (min, max) => {
        if (!(min >= 0 && max < bins)) rejectOutside(fn, 'targets', liveView(y, workspace(fn).heap.buffer), 0, bins, false);
      },
    };
  },
};

/**
 * Distribution Focal Loss (Li et al. 2020, "Generalized Focal Loss"; mmdetection
 * `DistributionFocalLoss`, docs/SPEC.md §9): each row's logits are a distribution over the
 * integers 0…n, and a target y in [0, n) is matched by its two neighbours:
 * `(⌈y⌉ − y)·CE(x, ⌊y⌋) + (y − ⌊y⌋)·CE(x, ⌊y⌋ + 1)`. Reduced over rows.
 * Needs the extras kernels: `init({ extras })` with `extras` from `focal-ghm/extras`.
 *
 * @example
 * ```ts
 * import { init, distributionFocalLoss } from 'focal-ghm';
 * import { extras } from 'focal-ghm/extras';
 * await init({ extras });
 * // 2 box sides, distributions over 0…16 (17 logits each); targets in [0, 16).
 * const { loss, grad } = distributionFocalLoss(new Float32Array(2 * 17), Float32Array.of(3.4, 11), { grad: true });
 * ```
 * @throws TypeError for arrays of the wrong type; RangeError for wrong lengths or targets outside [0, bins) (naming the row).
 */
export function distributionFocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
  logits: Float32Array,
  targets: Float32Array,
  options?: DistributionFocalOptions<R, G>,
): LossResult<LossFor<R>, G>;
export function distributionFocalLoss(logits: Float32Array, targets: Float32Array, options?: DistributionFocalOptions): LossResult {
  const fn = 'distributionFocalLoss';
  return runFamily(fn, distribution, logits, targets, options);
}

// ---------------------------------------------------------------------------------------------
// Streams

/** What a family stream's `finish()` gives. */
export interface FamilyStreamResult {
  /** The loss of the whole stream (reduced: streams have no `'none'`). */
  loss: number;
  /** Units pushed (rows; elements for Varifocal). */
  length: number;
}

/** A batch that arrives in pieces, scored as one call over all of it. */
export interface FamilyStream<T> {
  /** Adds a piece (any length, including 0). Throws on bad input, keeping the sums so far. */
  push(logits: Float32Array, targets: T, weight?: Float32Array): void;
  /** Units pushed so far. */
  readonly length: number;
  /** The loss of everything pushed. */
  finish(): FamilyStreamResult;
}

/** Stream options: the call's, without `grad` and `'none'`. */
export type FamilyStreamOptions<O> = Omit<O, 'grad' | 'reduction' | 'weight'> & { reduction?: 'mean' | 'sum' };

/** A stream of `loss`: each push is one call without outputs; finish() reduces the sum. */
function familyStream<Opts, T>(fn: string, loss: FamilyLoss<Opts>, options: unknown): FamilyStream<T> {
  workspace(fn);
  getExtras(fn);
  const o = expectOptions(fn, options, [...loss.keys, 'reduction', 'avgFactor', 'lossWeight']) as Record<string, unknown>;
  const opts = loss.resolve(fn, o);
  const reduce = streamReduction(fn, o);
  let sum = 0;
  let length = 0;
  let done = false;
  return {
    push(logits, targets, weight) {
      const pfn = `${fn}.push`;
      if (done) throw new Error(`${pfn}: the stream has finished`);
      const ws = workspace(pfn);
      const k = getExtras(pfn);
      const x = expectArray(pfn, 'logits', logits, Float32Array);
      const call = loss.call(pfn, x, targets, opts, weight);
      // The pass first, the sums after: a throwing push leaves them as they were.
      sum += familyPass(ws, k, call, x, undefined, 1, undefined, 1);
      length += call.units;
    },
    get length() {
      return length;
    },
    finish() {
      if (done) throw new Error(`${fn}.finish: the stream has already finished`);
      done = true;
      return { loss: reduce(sum, length), length };
    },
  };
}

export function qualityFocalStream(options?: FamilyStreamOptions<QualityFocalOptions>): FamilyStream<QualityTargets> {
  return familyStream('qualityFocalLoss.stream', quality, options);
}
export function varifocalStream(options?: FamilyStreamOptions<VarifocalOptions>): FamilyStream<Float32Array> {
  return familyStream('varifocalLoss.stream', varifocal, options);
}
export function distributionFocalStream(options?: FamilyStreamOptions<DistributionFocalOptions>): FamilyStream<Float32Array> {
  return familyStream('distributionFocalLoss.stream', distribution, options);
}

