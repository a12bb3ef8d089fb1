// The public focal losses: validate and lay out inputs, run the kernel over chunks, shape results.

import {
  describeValue,
  expectArray,
  expectDisjoint,
  expectBoolean,
  expectFinite,
  expectInRange,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectPositive,
} from './errors';
import { checkLabels, foldClassWeights, layoutTargets, layoutWeights, softLayout, TargetKind, TargetRange, WeightKind, type Layout, type Targets } from './inputs';
import { CHUNK_ELEMENTS, runChunked, type ChunkInput } from './memory';
import { liveView } from './views';
import { expectAxisClasses, parseClassAxis, runClassAxis, type ClassAxis } from './axes';
import { getExtras, type ExtrasKernels } from './loader';
import { workspace, type Workspace } from './workspace';

export type Reduction = 'mean' | 'sum' | 'none';
export const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];

/**
 * The loss a reduction gives: the elementwise losses (`Float32Array`) for `'none'`, one number
 * for `'mean'` and `'sum'`; both (a union) when the reduction is only known as a `Reduction`.
 */
export type LossFor<R extends Reduction> = R extends 'none' ? Float32Array : number;

/**
 * The `grad` member of a result: present for `G = true`, absent (`undefined`) for `false`,
 * optional for `boolean` (not known when compiling).
 */
export type GradFor<G extends boolean> = boolean extends G
  ? {
      /** d loss / d input, same length as the input, when the gradient was asked for. */
      grad?: Float32Array | undefined;
    }
  : G extends true
    ? {
        /** d loss / d input, same length as the input. */
        grad: Float32Array;
      }
    : {
        /** Not computed: pass `grad: true` for it. */
        grad?: undefined;
      };

/**
 * Whether a sigmoid focal call computes the gradient: `true` for `grad: true` or an `out.grad`
 * buffer (which implies it), `boolean` when either may or may not be given. (The `keyof` test:
 * `{ loss }` would fail `{ grad?: undefined }`, a weak type it shares no property with.)
 */
export type GradWanted<G extends boolean, Out> = Out extends { grad: Float32Array }
  ? true
  : 'grad' extends keyof Out
    ? Out extends { grad?: undefined }
      ? G
      : G | true
    : G;

/**
 * What a loss returns. Its type follows the options: `L` is the loss (`Float32Array` for
 * reduction `'none'`, `number` otherwise, see {@link LossFor}), `G` whether `grad` is present
 * (`true` with `grad: true`); the defaults are the types of any call.
 */
export type LossResult<L extends number | Float32Array = number | Float32Array, G extends boolean = boolean> = {
  /** The reduced loss, or the elementwise losses for reduction `'none'`. */
  loss: L;
} & GradFor<G>;

/** What {@link sigmoidFocalLoss} returns: a {@link LossResult} and the α used. */
export type SigmoidFocalResult<L extends number | Float32Array = number | Float32Array, G extends boolean = boolean> = LossResult<L, G> & {
  /** The α used: the option's value, or what `'auto'` resolved to; `null` when disabled. */
  alpha: number | null;
};

/**
 * Options of {@link sigmoidFocalLoss}. The type parameters only carry what the result type
 * depends on (the reduction, whether the gradient is asked for, the output buffers); the
 * defaults are the general option types.
 */
export interface SigmoidFocalOptions<
  R extends Reduction = Reduction,
  G extends boolean = boolean,
  Out extends OutputBuffers = OutputBuffers,
> {
  /** Weight of positives in [0, 1] (negatives get 1 - α); `null` disables it; `'auto'` uses the negatives' share of the batch. Default 0.25. */
  alpha?: number | null | 'auto';
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
  /** Per-element weights, or per-row weights (length N) with class-index targets. */
  weight?: Float32Array;
  /** Default `'mean'`; `'none'` makes `loss` a `Float32Array`. */
  reduction?: R;
  /** With `'mean'`: divide the sum by this instead of the element count (must be > 0). */
  avgFactor?: number;
  /** Multiplies the loss (and gradient). Default 1. */
  lossWeight?: number;
  /** Also return d loss / d logits (`grad` in the result). Default false. */
  grad?: G;
  /** Write results into these arrays instead of new ones (zero-copy when they live in wasm memory, see `createBatch`). */
  out?: Out;
  /**
   * What the first argument holds: `'logits'` (default) or `'probabilities'` in [0, 1]
   * (mmdetection `activated=True`, Keras `from_logits=False`): the BCE is then PyTorch's
   * `binary_cross_entropy` (logs clamped at -100) and `grad` is d loss / d probabilities.
   */
  input?: SigmoidInput;
  /** Label smoothing ε in [0, 1] (Keras): targets become `t·(1 - ε) + ε/2` before everything else. Default 0. */
  labelSmoothing?: number;
  /** Per-class weights (length C, kornia's `weight`): multiply every element of class c. C is `numClasses`, `shape[classAxis]`, or this length (targets `[N, C]`, class last). */
  classWeight?: Float32Array;
  /** Per-class weights of positives (length C, kornia's `pos_weight`): multiply the loss where t = 1. Needs 0/1 targets. */
  posWeight?: Float32Array;
  /** The logits' dimensions, e.g. `[B, C, H, W]`; with `classAxis`, class-index labels are `shape` without that axis. */
  shape?: readonly number[];
  /** The axis of `shape` that holds the classes (PyTorch/kornia: 1). Default: the last. Outputs keep the logits' layout. */
  classAxis?: number;
  /** Poly-1 ε (PolyLoss): adds `ε·(1 − p_t)^(γ+1)` per element. Default 0 (the plain loss). Other values need `init({ extras })`. */
  poly1?: number;
}

/** What the first argument of {@link sigmoidFocalLoss} holds. */
export type SigmoidInput = 'logits' | 'probabilities';
export const SIGMOID_INPUTS: readonly SigmoidInput[] = ['logits', 'probabilities'];

const SIGMOID_OPTIONS = ['alpha', 'gamma', 'weight', 'reduction', 'avgFactor', 'lossWeight', 'grad', 'out', 'input', 'labelSmoothing', 'classWeight', 'posWeight', 'shape', 'classAxis', 'poly1'] as const;

/** Caller-provided outputs (e.g. a batch's buffers in wasm memory, written in place). */
export interface OutputBuffers {
  /** Receives the elementwise losses (reduction `'none'` only). */
  loss?: Float32Array;
  /** Receives the gradient; implies `grad: true`. */
  grad?: Float32Array;
}

export function resolveOut(fn: string, v: unknown, n: number, reduction: Reduction, lossLength = n): OutputBuffers {
  if (v === undefined) return {};
  const o = expectOptions(fn, v, ['loss', 'grad'] as const, 'options.out');
  const res: OutputBuffers = {};
  if (o.loss !== undefined) {
    res.loss = expectArray(fn, 'options.out.loss', o.loss, Float32Array);
    if (reduction !== 'none') throw new RangeError(`${fn}: options.out.loss is only used with reduction 'none'`);
    if (res.loss.length !== lossLength) throw new RangeError(`${fn}: options.out.loss has length ${res.loss.length}, expected ${lossLength}`);
  }
  if (o.grad !== undefined) {
    res.grad = expectArray(fn, 'options.out.grad', o.grad, Float32Array);
    if (res.grad.length !== n) throw new RangeError(`${fn}: options.out.grad has length ${res.grad.length}, expected ${n}`);
  }
  return res;
}

/**
 * One chunked kernel pass of the sigmoid focal loss with class weights `aPos`/`aNeg`; returns
 * the unscaled Σ loss and throws if the targets (or probabilities, with `probs`) were out of
 * range. Shared by the one-shot call and the stream. `probs`: `x` holds probabilities, and `lay`
 * is a soft one (see {@link softLayout}).
 */
export function sigmoidPass(
  ws: Workspace, fn: string, x: Float32Array, lay: Layout, wkind: WeightKind, w: ChunkInput,
  aPos: number, aNeg: number, gamma: number,
  lossArr: Float32Array | undefined, lossScale: number, gradArr: Float32Array | undefined, gradScale: number,
  probs = false, poly1 = 0,
): number {
  // Poly-1's kernel is the extras module's (the core's stays as it was: ε = 0 is the plain loss).
  const xk = poly1 !== 0 ? getExtras(fn) : undefined;
  const infoPtr = ws.params.reserve(48);
  let sum = 0;
  const range = new TargetRange();
  const pRange = probs ? new TargetRange() : undefined;
  runChunked(
    ws.heap,
    ws.scratch,
    lay.units,
    unitsPerChunk(lay.perUnit),
    [{ array: x, perUnit: lay.perUnit }, lay.targets, w],
    [
      { array: lossArr, perUnit: lay.perUnit },
      { array: gradArr, perUnit: lay.perUnit },
    ],
    (u, [xp, tp, wp], [lp, gp]) => {
      if (pRange) {
        ws.k.fg_sigmoid_focal_prob(xp!, u, tp!, wkind, wp!, aPos, aNeg, gamma, lp!, lossScale, gp!, gradScale, infoPtr);
        pRange.add(ws.heap.views().f64, infoPtr / 8 + 3);
      } else if (xk) {
        xk.fg_sigmoid_focal_poly(
          xp!, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!,
          aPos, aNeg, gamma, poly1, lp!, lossScale, gp!, gradScale, infoPtr,
        );
      } else {
        ws.k.fg_sigmoid_focal(
          xp!, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!,
          aPos, aNeg, gamma, lp!, lossScale, gp!, gradScale, infoPtr,
        );
      }
      const f64 = ws.heap.views().f64;
      sum += f64[infoPtr / 8]!;
      range.add(f64, infoPtr / 8 + 1);
    },
  );
  range.check(fn, 'targets', lay.tkind);
  pRange?.checkProbabilities(fn, 'logits');
  return sum;
}

/** {@link sigmoidPass} for class-index rows gathered from another class axis (ts/axes.ts). */
function sigmoidClassAxis(
  ws: Workspace, fn: string, x: Float32Array, lay: Layout, wkind: WeightKind, w: ChunkInput, ax: ClassAxis,
  aPos: number, aNeg: number, gamma: number,
  lossArr: Float32Array | undefined, lossScale: number, gradArr: Float32Array | undefined, gradScale: number, poly1: number,
): number {
  const xk = poly1 !== 0 ? getExtras(fn) : undefined;
  const infoPtr = ws.params.reserve(48);
  let sum = 0;
  runClassAxis(ws, ax, unitsPerChunk(lay.perUnit), x, [lay.targets, w], [], [lossArr, gradArr], (u, xp, [tp, wp], _, [lp, gp]) => {
    if (xk) xk.fg_sigmoid_focal_poly(xp, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!, aPos, aNeg, gamma, poly1, lp!, lossScale, gp!, gradScale, infoPtr);
    else ws.k.fg_sigmoid_focal(xp, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!, aPos, aNeg, gamma, lp!, lossScale, gp!, gradScale, infoPtr);
    sum += ws.heap.views().f64[infoPtr / 8]!;
  });
  return sum;
}

/**
 * The largest accepted γ. The kernels raise a float32 pt to γ, so pt's rounding error grows by γ
 * in pt^γ: about 1.5e-7·γ relative, measured, against docs/SPEC.md §5's 1e-5. Up to 32 that keeps
 * half the budget, and (1 - p_t)^32 already weighs an example at p_t = 0.5 by 2e-10.
 */
export const MAX_GAMMA = 32;

export function resolveGamma(fn: string, v: unknown, name = 'options.gamma'): number {
  const g = expectFinite(fn, name, v ?? 2);
  if (!(g >= 0 && g <= MAX_GAMMA)) {
    throw new RangeError(`${fn}: ${name} must be in [0, ${MAX_GAMMA}], got ${g} (beyond ${MAX_GAMMA}, float32 rounding of p_t would exceed docs/SPEC.md §5's accuracy)`);
  }
  return g;
}

/**
 * The options every loss reduces by (`reduction`, `lossWeight`, `grad`, `avgFactor`), checked;
 * `count` is `'mean'`'s divisor without `avgFactor`.
 */
export function reductionOptions(fn: string, o: { reduction?: unknown; lossWeight?: unknown; grad?: unknown; avgFactor?: unknown }, count: number) {
  const reduction = expectOneOf(fn, 'options.reduction', o.reduction ?? 'mean', REDUCTIONS);
  const lossWeight = expectFinite(fn, 'options.lossWeight', o.lossWeight ?? 1);
  const wantGrad = expectBoolean(fn, 'options.grad', o.grad ?? false);
  const { denom, gradScale } = scales(fn, reduction, count, o.avgFactor, lossWeight);
  return { reduction, lossWeight, wantGrad, denom, gradScale };
}

/** Per-row weights (length `rows`), or undefined. */
export function rowWeights(fn: string, v: unknown, rows: number): Float32Array | undefined {
  if (v === undefined) return undefined;
  const w = expectArray(fn, 'options.weight', v, Float32Array);
  if (w.length !== rows) throw new RangeError(`${fn}: options.weight has length ${w.length}, expected ${rows} (one per row)`);
  return w;
}

/** The divisor of the mean, and what the elementwise loss and gradient are scaled by. */
export function scales(fn: string, reduction: Reduction, count: number, avgFactor: unknown, lossWeight: number) {
  let denom = 1;
  if (avgFactor !== undefined) {
    const a = expectPositive(fn, 'options.avgFactor', avgFactor);
    if (reduction === 'sum') {
      throw new RangeError(`${fn}: options.avgFactor cannot be used with reduction 'sum' (as in mmdetection); use 'mean'`);
    }
    if (reduction === 'mean') denom = a;
  } else if (reduction === 'mean') {
    denom = count;
  }
  return { denom, gradScale: lossWeight / denom };
}

/** α = 'auto': F / (P + F), the negatives' share among elements of weight > 0 (0.5 for none). */
export function autoAlpha(ws: Workspace, lay: Layout, wkind: WeightKind, w: ChunkInput): number {
  const [pos, neg] = countPosNeg(ws, lay, wkind, w);
  return alphaOf(pos, neg);
}

/** α = 'auto' from the counts of {@link countPosNeg} (also the thread pool's). */
export function alphaOf(pos: number, neg: number): number {
  return pos + neg > 0 ? neg / (pos + neg) : 0.5;
}

/** (P, F) of α = 'auto': elements of weight > 0 with t ≥ 0.5, and the rest of them. */
export function countPosNeg(ws: Workspace, lay: Layout, wkind: WeightKind, w: ChunkInput): [number, number] {
  const out = ws.params.reserve(16);
  let pos = 0;
  let neg = 0;
  runChunked(ws.heap, ws.scratch, lay.units, unitsPerChunk(lay.perUnit), [lay.targets, w], [], (u, [t, wp]) => {
    ws.k.fg_count_pos_neg(u * lay.perUnit, lay.tkind, t!, lay.numClasses, wkind, wp!, out);
    const f64 = ws.heap.views().f64;
    pos += f64[out / 8]!;
    neg += f64[out / 8 + 1]!;
  });
  return [pos, neg];
}

export function unitsPerChunk(perUnit: number): number {
  return Math.max(1, Math.floor(CHUNK_ELEMENTS / perUnit));
}

/**
 * Every check of a sigmoid focal call, before any work (shared with the thread pool, so both
 * throw the same errors): the validated arrays, their layout, and the resolved options.
 */
export function parseSigmoidCall(fn: string, logits: unknown, targets: unknown, options: unknown) {
  const given = expectArray(fn, 'logits', logits, Float32Array);
  let x: Float32Array = given;
  const o = expectOptions(fn, options, SIGMOID_OPTIONS);
  let lay = layoutTargets(fn, x.length, targets, 'targets', true);
  let { wkind, input: w } = layoutWeights(fn, 'options.weight', o.weight, lay);
  // Checked only when given: a call without them pays nothing (small batches feel every check).
  const probs = o.input !== undefined && expectOneOf(fn, 'options.input', o.input, SIGMOID_INPUTS) === 'probabilities';
  const smoothing = o.labelSmoothing === undefined ? 0 : expectInRange(fn, 'options.labelSmoothing', o.labelSmoothing, 0, 1);
  let count = x.length;
  let ax: ClassAxis | undefined;
  if (o.shape !== undefined || o.classAxis !== undefined || o.classWeight !== undefined || o.posWeight !== undefined || lay.ignored) {
    ({ x, lay, wkind, w, count, ax } = classOptions(fn, x, lay, wkind, w, o, probs || smoothing > 0));
  }
  const alphaOpt = (o.alpha === undefined ? 0.25 : o.alpha) as number | null | 'auto';
  if (alphaOpt !== null && alphaOpt !== 'auto') expectInRange(fn, 'options.alpha', alphaOpt, 0, 1);
  const gamma = resolveGamma(fn, o.gamma);
  const poly1 = o.poly1 === undefined ? 0 : resolvePoly1(fn, o.poly1, probs ? "options.input 'probabilities'" : undefined);
  const { reduction, lossWeight, wantGrad, denom, gradScale } = reductionOptions(fn, o, count);
  const out = resolveOut(fn, o.out, x.length, reduction);
  if (out.loss || out.grad) {
    expectDisjoint(
      fn,
      [['options.out.loss', out.loss], ['options.out.grad', out.grad]],
      [['logits', given], ['targets', lay.targets.array], ['options.weight', w.array]],
    );
  }
  // Probabilities and smoothed targets go to the kernels as soft floats (see softLayout); the
  // plain logit path keeps the arrays as given.
  if (probs || smoothing > 0) ({ lay, wkind, w } = softLayout(fn, 'targets', lay, wkind, w, smoothing));
  return { x, lay, wkind, w, alphaOpt, gamma, reduction, lossWeight, wantGrad, denom, gradScale, out, probs, ax, poly1 };
}

/** Poly-1's ε: any finite number; `conflict` names an option it does not combine with. */
export function resolvePoly1(fn: string, v: unknown, conflict?: string): number {
  const eps = expectFinite(fn, 'options.poly1', v);
  if (eps !== 0 && conflict) throw new RangeError(`${fn}: options.poly1 does not combine with ${conflict} (docs/SPEC.md §6 defines it on logits with 0/1 or class targets)`);
  return eps;
}

/**
 * `classWeight`, `posWeight`, `shape`/`classAxis` and ignored rows (docs/SPEC.md §1): checked,
 * then folded into the weights (see {@link foldClassWeights}). `ax` is returned when class-index
 * rows must be gathered from another class axis; `soft`: the targets reach the kernel as soft
 * floats (probabilities, label smoothing).
 */
function classOptions(
  fn: string, x: Float32Array, lay: Layout, wkind: WeightKind, w: ChunkInput,
  o: { shape?: unknown; classAxis?: unknown; classWeight?: unknown; posWeight?: unknown; labelSmoothing?: unknown }, soft: boolean,
) {
  const labels = lay.tkind === TargetKind.Labels;
  let ax = o.shape === undefined && o.classAxis === undefined ? undefined : parseClassAxis(fn, o.shape, o.classAxis, x.length);
  if (ax && labels) expectAxisClasses(fn, ax, lay.numClasses, 'targets.numClasses');
  const classWeight = o.classWeight === undefined ? undefined : expectArray(fn, 'options.classWeight', o.classWeight, Float32Array);
  const posWeight = o.posWeight === undefined ? undefined : expectArray(fn, 'options.posWeight', o.posWeight, Float32Array);
  if (posWeight && (lay.tkind === TargetKind.Soft || o.labelSmoothing)) {
    throw new RangeError(`${fn}: options.posWeight needs 0/1 targets (Uint8Array or class indices, without labelSmoothing): with soft targets kornia's pos_weight and this loss's formula disagree (docs/SPEC.md §10)`);
  }
  const transposed = labels && ax !== undefined && ax.inner > 1;
  if (transposed && soft) {
    throw new RangeError(`${fn}: options.shape with a class axis before the last and class-index targets does not combine with options.input 'probabilities' or options.labelSmoothing`);
  }
  let count = x.length;
  if (classWeight || posWeight || lay.ignored || (transposed && wkind === WeightKind.Elements)) {
    ({ x, lay, wkind, w, count } = foldClassWeights(fn, x, lay, wkind, w, { classWeight, posWeight }, ax));
  }
  // Only class-index rows need gathering: 0/1 and soft targets are laid out as the logits.
  if (!transposed) ax = undefined;
  return { x, lay, wkind, w, count, ax };
}

/**
 * Sigmoid focal loss (Lin et al. 2017), as mmdetection's `py_sigmoid_focal_loss` and
 * torchvision's `sigmoid_focal_loss` compute it (docs/SPEC.md §1), optionally with its gradient.
 *
 * Targets are binary (`Uint8Array` of 0/1), soft (`Float32Array` in [0, 1]), or class indices
 * `{ labels, numClasses }` for an `[N, numClasses]` logit matrix (label `numClasses` = background),
 * which never builds the one-hot matrix. NaN logits give NaN, as in PyTorch; reduction `'mean'`
 * over zero elements is NaN (0/0), as `torch.mean` of an empty tensor.
 *
 * The result's type follows the options: `loss` is a `Float32Array` for `reduction: 'none'` and
 * a number otherwise; `grad` is a `Float32Array` for `grad: true` or `out: { grad }`, and absent
 * without. Options typed as plain {@link SigmoidFocalOptions} give `loss: number | Float32Array`
 * and `grad?: Float32Array`.
 *
 * @example
 * ```ts
 * import { init, sigmoidFocalLoss } from 'focal-ghm';
 * await init();
 * const logits = new Float32Array([2.0, -1.0, 0.5]);
 * const targets = new Uint8Array([1, 0, 0]);
 * const { loss, grad } = sigmoidFocalLoss(logits, targets, { alpha: 0.25, gamma: 2, grad: true });
 * //      ^ number  ^ Float32Array
 * const perElement: Float32Array = sigmoidFocalLoss(logits, targets, { reduction: 'none' }).loss;
 * // Class indices: 2 anchors × 3 classes; the second anchor is background (label 3).
 * sigmoidFocalLoss(new Float32Array(6), { labels: new Int32Array([1, 3]), numClasses: 3 });
 * ```
 * @throws TypeError for arrays of the wrong type; RangeError for wrong lengths or values out of range.
 */
export function sigmoidFocalLoss<R extends Reduction = 'mean', G extends boolean = false, Out extends OutputBuffers = {}>(
  logits: Float32Array,
  targets: Targets,
  options?: SigmoidFocalOptions<R, G, Out>,
): SigmoidFocalResult<LossFor<R>, GradWanted<G, Out>>;
export function sigmoidFocalLoss(logits: Float32Array, targets: Targets, options?: SigmoidFocalOptions): SigmoidFocalResult {
  const fn = 'sigmoidFocalLoss';
  const ws = workspace(fn);
  const { x, lay, wkind, w, alphaOpt, gamma, reduction, lossWeight, wantGrad, denom, gradScale, out, probs, ax, poly1 } = parseSigmoidCall(fn, logits, targets, options);
  const alpha = alphaOpt === 'auto' ? autoAlpha(ws, lay, wkind, w) : alphaOpt;
  const lossArr = reduction === 'none' ? (out.loss ?? new Float32Array(x.length)) : undefined;
  const gradArr = wantGrad || out.grad ? (out.grad ?? new Float32Array(x.length)) : undefined;
  const [aPos, aNeg] = alpha === null ? [1, 1] : [alpha, 1 - alpha];
  const sum = ax
    ? sigmoidClassAxis(ws, fn, x, lay, wkind, w, ax, aPos, aNeg, gamma, lossArr, lossWeight, gradArr, gradScale, poly1)
    : sigmoidPass(ws, fn, x, lay, wkind, w, aPos, aNeg, gamma, lossArr, lossWeight, gradArr, gradScale, probs, poly1);
  // Batch views given as outputs come back usable even if the call grew (and so detached) memory.
  const loss = lossArr ? liveView(lossArr, ws.heap.buffer) : (lossWeight * sum) / denom;
  return gradArr ? { loss, grad: liveView(gradArr, ws.heap.buffer), alpha } : { loss, alpha };
}

/**
 * Options of {@link softmaxFocalLoss}; as for {@link SigmoidFocalOptions}, the type parameters
 * carry the reduction and whether the gradient is asked for.
 */
export interface SoftmaxFocalOptions<R extends Reduction = Reduction, G extends boolean = boolean> {
  /** Number of classes C; logits are `[N, C]` row-major (or laid out as `shape`, see `classAxis`). */
  numClasses: number;
  /** α for every class, a per-class `Float32Array` of length C, or `null` (1). Default 0.25. */
  alpha?: number | Float32Array | null;
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
  /** Default `'mean'` (over non-ignored rows, at least 1). `'none'` gives one loss per row (a `Float32Array`). */
  reduction?: R;
  /** Rows with this label are skipped. Default -100. */
  ignoreIndex?: number;
  /** Multiplies the loss (and gradient). Default 1. */
  lossWeight?: number;
  /** Also return d loss / d logits (`grad` in the result). Default false. */
  grad?: G;
  /** Per-row weights (length N): multiply each row's loss and gradient (mmdetection's `weight`). */
  weight?: Float32Array;
  /** With `'mean'`: divide the sum by this instead of the non-ignored row count (must be > 0; not with `'sum'`). */
  avgFactor?: number;
  /** The logits' dimensions, e.g. `[B, C, H, W]`; with `classAxis`, labels are `shape` without that axis. */
  shape?: readonly number[];
  /** The axis of `shape` that holds the classes (PyTorch/kornia: 1). Default: the last. `grad` keeps the logits' layout. */
  classAxis?: number;
  /** Label smoothing ε in [0, 1] (PyTorch `cross_entropy(label_smoothing=ε)`): targets `(1 − ε)·onehot + ε/C`. Default 0; others need `init({ extras })`. */
  labelSmoothing?: number;
  /** Poly-1 ε (PolyLoss): adds `ε·(1 − p_y)^(γ+1)` per row. Default 0 (the plain loss); others need `init({ extras })`. */
  poly1?: number;
}

const SOFTMAX_OPTIONS = ['numClasses', 'alpha', 'gamma', 'reduction', 'ignoreIndex', 'lossWeight', 'grad', 'weight', 'avgFactor', 'shape', 'classAxis', 'labelSmoothing', 'poly1'] as const;

/**
 * Softmax (multi-class) focal loss, as kornia's `focal_loss` computes it (docs/SPEC.md §2):
 * `-α_y (1 - p_y)^γ log p_y` per row, optionally with its gradient. As for
 * {@link sigmoidFocalLoss}, the result's type follows `reduction` and `grad`.
 *
 * @example
 * ```ts
 * import { init, softmaxFocalLoss } from 'focal-ghm';
 * await init();
 * // 2 rows × 3 classes; the second row is ignored.
 * const logits = new Float32Array([2, 0.5, -1, 0, 0, 0]);
 * const { loss, grad } = softmaxFocalLoss(logits, new Int32Array([0, -100]), { numClasses: 3, gamma: 2, grad: true });
 * const perRow: Float32Array = softmaxFocalLoss(logits, new Int32Array([0, 1]), { numClasses: 3, reduction: 'none' }).loss;
 * // A [B, C, H, W] segmentation map (PyTorch layout) with [B, H, W] labels:
 * softmaxFocalLoss(new Float32Array(2 * 3 * 4 * 4), new Int32Array(2 * 4 * 4), { numClasses: 3, shape: [2, 3, 4, 4], classAxis: 1 });
 * ```
 * @throws TypeError for arrays of the wrong type; RangeError for wrong lengths or values out of range.
 */
export function softmaxFocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
  logits: Float32Array,
  labels: Int32Array | Float32Array,
  options: SoftmaxFocalOptions<R, G>,
): LossResult<LossFor<R>, G>;
export function softmaxFocalLoss(logits: Float32Array, labels: Int32Array | Float32Array, options: SoftmaxFocalOptions): LossResult {
  const fn = 'softmaxFocalLoss';
  const ws = workspace(fn);
  const x = expectArray(fn, 'logits', logits, Float32Array);
  // A Float32Array: class-probability rows [N, C] (PyTorch `cross_entropy` with a probability target).
  if (labels instanceof Float32Array) return softmaxSoft(fn, ws, x, labels, options);
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(`${fn}: labels must be an Int32Array of class labels, or a Float32Array of class-probability rows [N, C], got ${describeValue(labels)}`);
  }
  const y = expectArray(fn, 'labels', labels, Int32Array);
  const { o, c, rows, ax } = softmaxHead(fn, x, options);
  if (y.length !== rows) throw new RangeError(`${fn}: labels has length ${y.length}, expected ${rows} (one per row of ${c} logits)`);
  const rowW = rowWeights(fn, o.weight, rows);
  const ignoreIndex = expectInteger(fn, 'options.ignoreIndex', o.ignoreIndex ?? -100, -(2 ** 31), 2 ** 31 - 1);
  checkLabels(fn, 'labels', y, 0, c - 1, ignoreIndex);
  const alpha = softmaxAlpha(fn, o.alpha, c);
  const gamma = resolveGamma(fn, o.gamma);
  const smoothing = o.labelSmoothing === undefined ? 0 : expectInRange(fn, 'options.labelSmoothing', o.labelSmoothing, 0, 1);
  const poly1 = o.poly1 === undefined ? 0 : resolvePoly1(fn, o.poly1, smoothing > 0 ? 'options.labelSmoothing' : undefined);
  let counted = 0;
  for (let i = 0; i < rows; i++) if (y[i] !== ignoreIndex) counted++;
  const { reduction, lossWeight, wantGrad, denom } = reductionOptions(fn, o, Math.max(counted, 1));

  const lossArr = reduction === 'none' ? new Float32Array(rows) : undefined;
  const gradArr = wantGrad ? new Float32Array(x.length) : undefined;
  if (smoothing > 0) {
    if (ax) throw new RangeError(`${fn}: options.labelSmoothing does not combine with options.shape's class axis before the last yet`);
    const t = { array: y, perUnit: 1, tkind: SoftRows.SmoothedLabels };
    return softPass(fn, ws, x, c, t, smoothing, ignoreIndex, alpha, gamma, rowW, lossWeight, denom, lossArr, gradArr);
  }
  const xk = poly1 !== 0 ? getExtras(fn) : undefined;
  if (rowW || ax) return softmaxWeighted(ws, x, y, c, alpha, gamma, ignoreIndex, lossWeight, denom, lossArr, gradArr, rowW, ax, xk, poly1);
  // Params: info words, then the α table.
  const params = ws.params.reserve(32 + c * 4);
  ws.heap.views().f32.set(alpha, (params + 32) / 4);
  let sum = 0;
  runChunked(
    ws.heap,
    ws.scratch,
    rows,
    unitsPerChunk(c),
    [{ array: x, perUnit: c }, { array: y, perUnit: 1 }],
    [
      { array: lossArr, perUnit: 1 },
      { array: gradArr, perUnit: c },
    ],
    (u, [xp, yp], [lp, gp]) => {
      if (xk) xk.fg_softmax_focal_poly(xp!, u, c, yp!, params + 32, gamma, ignoreIndex, poly1, lp!, lossWeight, gp!, lossWeight / denom, params);
      else ws.k.fg_softmax_focal(xp!, u, c, yp!, params + 32, gamma, ignoreIndex, lp!, lossWeight, gp!, lossWeight / denom, params);
      sum += ws.heap.views().f64[params / 8]!;
    },
  );
  const loss = lossArr ?? (lossWeight * sum) / denom;
  return gradArr ? { loss, grad: gradArr } : { loss };
}

/**
 * {@link softmaxFocalLoss} with row weights or another class axis: the same kernel, with the
 * logits gathered class-last (see ts/axes.ts), and with weights, the kernel's unscaled row
 * losses and gradient rows each scaled once (in float64, rounded once), the sum in float64.
 */
function softmaxWeighted(
  ws: Workspace, x: Float32Array, y: Int32Array, c: number, alpha: Float32Array, gamma: number, ignoreIndex: number,
  lossWeight: number, denom: number, lossArr: Float32Array | undefined, gradArr: Float32Array | undefined,
  rowW: Float32Array | undefined, ax: ClassAxis | undefined, xk: ExtrasKernels | undefined, poly1: number,
): LossResult {
  const rows = y.length;
  const chunkRows = unitsPerChunk(c);
  // Params: info words, the α table, and with weights but no 'none' output, a chunk's row losses.
  const alphaAt = 32;
  const rowLossAt = alphaAt + Math.ceil(c / 4) * 16;
  const params = ws.params.reserve(rowLossAt + (rowW && !lossArr ? Math.min(rows, chunkRows) * 4 : 0));
  ws.heap.views().f32.set(alpha, (params + alphaAt) / 4);
  let sum = 0;
  const rowInputs: ChunkInput[] = [{ array: y, perUnit: 1 }, { array: rowW, perUnit: 1 }];
  const rowOutputs = [{ array: lossArr, perUnit: 1 }];
  const kernel = (u: number, xp: number, yp: number, wp: number, lp: number, gp: number) => {
    const run = (l: number, ls: number, gs: number) =>
      xk
        ? xk.fg_softmax_focal_poly(xp, u, c, yp, params + alphaAt, gamma, ignoreIndex, poly1, l, ls, gp, gs, params)
        : ws.k.fg_softmax_focal(xp, u, c, yp, params + alphaAt, gamma, ignoreIndex, l, ls, gp, gs, params);
    if (!rowW) {
      run(lp, lossWeight, lossWeight / denom);
      sum += ws.heap.views().f64[params / 8]!;
      return;
    }
    const rl = lp || params + rowLossAt;
    run(rl, 1, 1);
    const { f32, i32 } = ws.heap.views();
    const k = lossWeight / denom;
    for (let r = 0; r < u; r++) {
      // Ignored rows stay 0, whatever their weight (a NaN one too).
      if (i32[yp / 4 + r] === ignoreIndex) continue;
      const wr = f32[wp / 4 + r]!;
      const wl = wr * f32[rl / 4 + r]!;
      sum += wl;
      if (lp) f32[rl / 4 + r] = wl * lossWeight;
      if (gp) {
        const s = wr * k;
        for (let j = 0, g = gp / 4 + r * c; j < c; j++, g++) f32[g] = f32[g]! * s;
      }
    }
  };
  if (ax) {
    runClassAxis(ws, ax, chunkRows, x, rowInputs, rowOutputs, [gradArr], (u, xp, [yp, wp], [lp], [gp]) => kernel(u, xp, yp!, wp!, lp!, gp!));
  } else {
    runChunked(ws.heap, ws.scratch, rows, chunkRows, [{ array: x, perUnit: c }, ...rowInputs], [...rowOutputs, { array: gradArr, perUnit: c }], (u, [xp, yp, wp], [lp, gp]) =>
      kernel(u, xp!, yp!, wp!, lp!, gp!),
    );
  }
  const loss = lossArr ?? (lossWeight * sum) / denom;
  return gradArr ? { loss, grad: gradArr } : { loss };
}

/**
 * The checks both softmax target forms start with: the options, numClasses, and a class axis
 * (`undefined` when absent or already the last; checked only when given, as every new option:
 * small calls feel each check).
 */
function softmaxHead(fn: string, x: Float32Array, options: unknown) {
  if (options === undefined) throw new TypeError(`${fn}: options with numClasses are required`);
  const o = expectOptions(fn, options, SOFTMAX_OPTIONS);
  const c = expectInteger(fn, 'options.numClasses', o.numClasses, 1, 1 << 24);
  if (x.length % c !== 0) throw new RangeError(`${fn}: options.numClasses (${c}) does not divide the logits length ${x.length}`);
  let ax = o.shape === undefined && o.classAxis === undefined ? undefined : parseClassAxis(fn, o.shape, o.classAxis, x.length);
  if (ax) {
    expectAxisClasses(fn, ax, c, 'options.numClasses');
    if (ax.inner === 1) ax = undefined; // already class-last
  }
  return { o, c, rows: x.length / c, ax };
}

/** α of the softmax focal loss: one per class, from a number, a per-class array or null (1). */
function softmaxAlpha(fn: string, a: unknown, c: number): Float32Array {
  const alpha = new Float32Array(c);
  if (a === undefined) a = 0.25;
  if (a === null) alpha.fill(1);
  else if (a instanceof Float32Array) {
    if (a.length !== c) throw new RangeError(`${fn}: options.alpha has length ${a.length}, expected numClasses = ${c}`);
    a.forEach((v, i) => expectInRange(fn, `options.alpha[${i}]`, v, 0, 1));
    alpha.set(a);
  } else if (typeof a === 'number') alpha.fill(expectInRange(fn, 'options.alpha', a, 0, 1));
  else throw new TypeError(`${fn}: options.alpha must be a number, a Float32Array or null`);
  return alpha;
}

/** Target rows of the extras' soft softmax kernel (`tkind` of fg_softmax_focal_soft). */
export enum SoftRows {
  Probabilities = 0,
  SmoothedLabels = 1,
  TwoHot = 2,
}

/** How far a probability row's sum may be from 1 (float32 rows of a softmax are within ~1e-6). */
const ROW_SUM_TOLERANCE = 1e-3;

/**
 * {@link softmaxFocalLoss} with class-probability targets (docs/SPEC.md §2, soft targets): rows
 * of values in [0, 1] summing to 1, every row counted.
 */
function softmaxSoft(fn: string, ws: Workspace, x: Float32Array, targets: Float32Array, options: SoftmaxFocalOptions): LossResult {
  const { o, c, rows, ax } = softmaxHead(fn, x, options);
  if (targets.length !== x.length) {
    throw new RangeError(`${fn}: a Float32Array of targets is class-probability rows [N, C], as the logits (length ${x.length}), but it has length ${targets.length}; class labels are an Int32Array`);
  }
  // ignoreIndex is accepted and unused: every probability row counts.
  if (o.labelSmoothing !== undefined && o.labelSmoothing !== 0) throw new RangeError(`${fn}: options.labelSmoothing applies to class labels; smooth class-probability targets before passing them`);
  if (o.poly1 !== undefined && o.poly1 !== 0) throw new RangeError(`${fn}: options.poly1 needs class labels (docs/SPEC.md §6 defines it on p_y)`);
  if (ax) throw new RangeError(`${fn}: class-probability targets need the class as the last axis (options.classAxis ${o.classAxis} is not)`);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = r * c; j < (r + 1) * c; j++) {
      const v = targets[j]!;
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${fn}: targets[${j}] is ${v}, expected a probability in [0, 1] (row ${r})`);
      sum += v;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) throw new RangeError(`${fn}: targets row ${r} sums to ${sum}, expected 1 (class probabilities)`);
  }
  const rowW = rowWeights(fn, o.weight, rows);
  const alpha = softmaxAlpha(fn, o.alpha, c);
  const gamma = resolveGamma(fn, o.gamma);
  const { reduction, lossWeight, wantGrad, denom } = reductionOptions(fn, o, Math.max(rows, 1));
  const lossArr = reduction === 'none' ? new Float32Array(rows) : undefined;
  const gradArr = wantGrad ? new Float32Array(x.length) : undefined;
  const t = { array: targets, perUnit: c, tkind: SoftRows.Probabilities };
  return softPass(fn, ws, x, c, t, 0, 0, alpha, gamma, rowW, lossWeight, denom, lossArr, gradArr);
}

/** One chunked pass of the extras' soft softmax kernel (row weights applied by the kernel). */
function softPass(
  fn: string, ws: Workspace, x: Float32Array, c: number, t: ChunkInput & { tkind: SoftRows }, eps: number, ignoreIndex: number,
  alpha: Float32Array, gamma: number, rowW: Float32Array | undefined,
  lossWeight: number, denom: number, lossArr: Float32Array | undefined, gradArr: Float32Array | undefined,
): LossResult {
  const xk = getExtras(fn);
  const params = ws.params.reserve(32 + c * 4);
  ws.heap.views().f32.set(alpha, (params + 32) / 4);
  let sum = 0;
  runChunked(
    ws.heap, ws.scratch, x.length / c, unitsPerChunk(c),
    [{ array: x, perUnit: c }, t, { array: rowW, perUnit: 1 }],
    [{ array: lossArr, perUnit: 1 }, { array: gradArr, perUnit: c }],
    (u, [xp, tp, wp], [lp, gp]) => {
      xk.fg_softmax_focal_soft(xp!, u, c, t.tkind, tp!, eps, ignoreIndex, params + 32, gamma, wp!, lp!, lossWeight, gp!, lossWeight / denom, params);
      sum += ws.heap.views().f64[params / 8]!;
    },
  );
  const loss = lossArr ?? (lossWeight * sum) / denom;
  return gradArr ? { loss, grad: gradArr } : { loss };
}
