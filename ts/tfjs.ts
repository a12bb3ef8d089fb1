/**
 * focal-ghm/tfjs: the focal and GHM-C losses as TensorFlow.js losses. Each call reads the
 * tensors, runs one kernel call that gives the loss and its gradient together, and hands TF.js
 * the gradient through `tf.customGrad`: drop them into `model.compile`, `optimizer.minimize` or
 * `tf.variableGrads` in place of a loss composed from TF.js ops.
 *
 * The kernels are the ones `focal-ghm` loads: call `await init()` from `focal-ghm` once before
 * the first loss; the focal family (`qualityFocalLoss`, `varifocalLoss`, `distributionFocalLoss`,
 * `poly1`, softmax probability targets and label smoothing) needs the extras module too:
 * `import { extras } from 'focal-ghm/extras'; await init({ extras });`.
 * `@tensorflow/tfjs-core` (4.x) is a peer dependency, the one your model uses.
 * On the cpu and wasm backends the tensors are read in place; on webgl and webgpu each call
 * reads yPred and yTrue back from the GPU and uploads the gradient (see the README). Gradients
 * are first derivatives: TF.js cannot differentiate through the loss twice.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { init, sigmoidFocalLoss } from 'focal-ghm/tfjs';
 * await init();
 * model.compile({ optimizer: 'adam', loss: (yTrue, yPred) => sigmoidFocalLoss(yTrue, yPred, { gamma: 2 }) });
 * ```
 * @packageDocumentation
 */

// The core comes in by the package's own name, kept external by tsup (tsup.config.ts), so that
// this entry uses the very module `import { init } from 'focal-ghm'` initialized (its wasm
// instance and memory), in ESM and CJS alike. Only stateless helpers are bundled from ./errors.
import { backend, customGrad, engine, expandDims, getBackend, mul, scalar, Tensor, tensor, type GradSaveFunc, type Scalar } from '@tensorflow/tfjs-core';
import {
  distributionFocalLoss as coreDistributionFocalLoss,
  GHMC,
  isInitialized,
  qualityFocalLoss as coreQualityFocalLoss,
  sigmoidFocalLoss as coreSigmoidFocalLoss,
  softmaxFocalLoss as coreSoftmaxFocalLoss,
  varifocalLoss as coreVarifocalLoss,
  type DistributionFocalOptions,
  type GHMCForwardOptions,
  type GHMCOptions,
  type GHMReduction,
  type GHMState,
  type QualityFocalOptions,
  type QualityTargets,
  type Reduction,
  type SigmoidFocalOptions,
  type SoftmaxFocalOptions,
  type Targets,
  type VarifocalOptions,
} from 'focal-ghm';
import { describeValue, expectOneOf, expectOptions } from './errors';

/**
 * The core's `init` (and `isInitialized`), re-exported so that one import gives the adapter and
 * the very instance it uses, whether the program loads focal-ghm as ES module or CommonJS.
 */
export { init, isInitialized } from 'focal-ghm';

/** Options of {@link GHMCLoss}: the core GHMC's, and when the EMA steps. */
export interface GHMCLossOptions extends GHMCOptions {
  /** `'always'` (default, mmdetection's behaviour) or `'training'`: only calls that record a gradient step the EMA. */
  ema?: 'always' | 'training';
}
const GHMC_LOSS_OPTIONS = ['bins', 'momentum', 'lossWeight', 'ema'] as const;
const EMA_MODES = ['always', 'training'] as const;

/** What a loss returns: a `tf.Scalar`, or for `reduction: 'none'` a tensor of the losses. */
export type LossTensor<R extends Reduction> = R extends 'none' ? Tensor : Scalar;

/**
 * Options of {@link sigmoidFocalLoss}: the core's ({@link SigmoidFocalOptions}) without `grad` and
 * `out` (TF.js asks for the gradient), and `weight` may be a tensor.
 */
export interface TfSigmoidFocalOptions<R extends Reduction = Reduction> extends Omit<SigmoidFocalOptions<R>, 'grad' | 'out' | 'weight'> {
  /**
   * Per-element weights (yPred's shape), or per-row weights (yPred's shape without the class
   * axis) with class-index targets: a float32 tensor or a `Float32Array`. A constant: no gradient
   * flows to it.
   */
  weight?: Tensor | Float32Array;
}

/**
 * Options of {@link softmaxFocalLoss}: the core's ({@link SoftmaxFocalOptions}) without `grad`,
 * and without `numClasses`, which is yPred's last dimension.
 */
export type TfSoftmaxFocalOptions<R extends Reduction = Reduction> = Omit<SoftmaxFocalOptions<R>, 'grad' | 'numClasses'>;

/** Options of {@link GHMCLoss.loss}: the reduction, `'mean'` (default) or `'none'`. */
export interface TfGHMCOptions<R extends GHMReduction = GHMReduction> {
  /** `'mean'`: the loss (a `tf.Scalar`); `'none'`: the per-element terms whose sum is the loss. */
  reduction?: R;
}

const GHMC_FORWARD_OPTIONS = ['reduction'] as const;
const SIGMOID_OPTIONS = ['alpha', 'gamma', 'weight', 'reduction', 'avgFactor', 'lossWeight', 'input', 'labelSmoothing', 'poly1'] as const;
const SOFTMAX_OPTIONS = ['alpha', 'gamma', 'reduction', 'ignoreIndex', 'lossWeight', 'labelSmoothing', 'poly1'] as const;
const FAMILY_OPTIONS = ['weight', 'reduction', 'avgFactor', 'lossWeight'] as const;
const QFL_OPTIONS = ['beta', ...FAMILY_OPTIONS] as const;
const VFL_OPTIONS = ['alpha', 'gamma', 'iouWeighted', ...FAMILY_OPTIONS] as const;
const DFL_OPTIONS = FAMILY_OPTIONS;

/**
 * Options of {@link qualityFocalLoss}: the core's ({@link QualityFocalOptions}) without `grad`;
 * `weight` may be a tensor.
 */
export interface TfQualityFocalOptions<R extends Reduction = Reduction> extends Omit<QualityFocalOptions<R>, 'grad' | 'weight'> {
  /** Per-row weights (yPred's shape without the class axis): a float32 tensor or a `Float32Array`. A constant. */
  weight?: Tensor | Float32Array;
}

/**
 * Options of {@link varifocalLoss}: the core's ({@link VarifocalOptions}) without `grad`;
 * `weight` may be a tensor.
 */
export interface TfVarifocalOptions<R extends Reduction = Reduction> extends Omit<VarifocalOptions<R>, 'grad' | 'weight'> {
  /** Per-element weights (yPred's shape): a float32 tensor or a `Float32Array`. A constant. */
  weight?: Tensor | Float32Array;
}

/**
 * Options of {@link distributionFocalLoss}: the core's ({@link DistributionFocalOptions}) without
 * `grad`, and without `bins`, which is yPred's last dimension minus 1; `weight` may be a tensor.
 */
export interface TfDistributionFocalOptions<R extends Reduction = Reduction> extends Omit<DistributionFocalOptions<R>, 'grad' | 'weight' | 'bins'> {
  /** Per-row weights (yPred's shape without the last axis): a float32 tensor or a `Float32Array`. A constant. */
  weight?: Tensor | Float32Array;
}

/**
 * Sigmoid focal loss (Lin et al. 2017; docs/SPEC.md §1) of logits `yPred` against targets
 * `yTrue`, as a TF.js loss: Keras argument order, a `tf.Scalar` (a tensor for `reduction:
 * 'none'`), and a gradient for `yPred` that the same kernel call computed with the loss.
 *
 *     p = σ(x),  pt = (1 - p)·t + p·(1 - t),  aw = α·t + (1 - α)·(1 - t)
 *     loss = aw · pt^γ · (softplus(x) - x·t) · w,  then reduced (mean, sum or none)
 *
 * `yPred` is a float32 tensor of any shape: logits, or probabilities with `input:
 * 'probabilities'` (a sigmoid output layer; Keras `fromLogits: false`). `yTrue` either has its
 * shape (float32 targets in [0, 1], 0/1 int32, or bool), or, for yPred `[..., C]` with C ≥ 2,
 * yPred's shape without the last axis: one class index per row (int32 or integer-valued
 * float32) in [0, C], C meaning background (mmdetection's layout; no one-hot tensor is built).
 * `yTrue` and `weight` are constants: no gradient flows to them.
 *
 * Options (the core's, {@link TfSigmoidFocalOptions}): `alpha` (default 0.25; `null` off;
 * `'auto'`), `gamma` (2), `weight`, `reduction` (`'mean'`, `'sum'`, `'none'`), `avgFactor`,
 * `lossWeight`, `input` (`'logits'` or `'probabilities'`), `labelSmoothing` (ε: targets become
 * `t·(1 - ε) + ε/2`), `poly1` (ε of Poly-1, docs/SPEC.md §6: adds `ε·(1 - p_t)^(γ+1)`; a
 * non-zero one needs `init({ extras })`). Needs `await init()` from `focal-ghm` first.
 *
 * The gradient is computed only while TF.js records one (`tf.grad`, `variableGrads`,
 * `optimizer.minimize`, `model.fit`); otherwise the call is the forward pass alone.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { init } from 'focal-ghm';
 * import { sigmoidFocalLoss } from 'focal-ghm/tfjs';
 * await init();
 * model.compile({ optimizer: 'adam', loss: (yTrue, yPred) => sigmoidFocalLoss(yTrue, yPred, { alpha: 0.25, gamma: 2 }) });
 * // A sigmoid output layer, Keras-style smoothing:
 * const probs = (t: tf.Tensor, p: tf.Tensor) => sigmoidFocalLoss(t, p, { input: 'probabilities', labelSmoothing: 0.1 });
 * // Or by hand: logits [anchors, 80], one label per anchor (80 = background).
 * const loss = sigmoidFocalLoss(tf.tensor1d([3, 80], 'int32'), tf.randomNormal([2, 80]), { reduction: 'sum' });
 * const grads = tf.variableGrads(() => sigmoidFocalLoss(yTrue, model.predict(x) as tf.Tensor));
 * ```
 * @throws Error before `init()`; TypeError for an argument of the wrong type or dtype; RangeError
 * for shapes that disagree and values out of range (`yTrue` not 0/1 or in [0, 1], …).
 */
export function sigmoidFocalLoss<R extends Reduction = 'mean'>(yTrue: Tensor, yPred: Tensor, options?: TfSigmoidFocalOptions<R>): LossTensor<R>;
export function sigmoidFocalLoss(yTrue: Tensor, yPred: Tensor, options?: TfSigmoidFocalOptions): Tensor {
  const fn = 'sigmoidFocalLoss';
  const pred = logitsTensor(fn, yPred);
  const o = expectOptions(fn, options, SIGMOID_OPTIONS);
  const { targets, perRow } = sigmoidTargets(fn, expectTensor(fn, 'yTrue', yTrue), pred);
  const weight = weightArray(fn, 'options.weight', o.weight, pred, perRow);
  const x = valuesOf(pred) as Float32Array;
  const grad = engine().isTapeOn();
  const out = grad ? gradScratch(x.length) : undefined;
  const r = renamed('sigmoidFocalLoss', fn, () => coreSigmoidFocalLoss(x, targets, { ...o, weight, grad, out } as SigmoidFocalOptions));
  return lossOp(pred, r.loss, r.grad, pred.shape, false);
}

/**
 * Softmax focal loss (kornia's `focal_loss`; docs/SPEC.md §2) over the last axis of `yPred`, as
 * a TF.js loss: Keras argument order, a `tf.Scalar` (per-row losses for `reduction: 'none'`),
 * and a gradient for `yPred` from the same kernel call as the loss.
 *
 *     p = softmax(x_row),  loss_row = -α_y · (1 - p_y)^γ · log p_y,  then reduced
 *
 * `yPred`: float32 logits `[..., C]`. `yTrue`: one-hot of yPred's shape (as for Keras
 * `categoricalCrossentropy`; any dtype, exactly one 1 per row), or sparse integer labels of
 * yPred's shape without the last axis, or with a last axis of 1 (int32 or integer-valued
 * float32; `ignoreIndex` rows are skipped). A float32 yTrue of yPred's shape whose rows are not
 * all one-hot holds class probabilities (rows in [0, 1] summing to 1; every row counts):
 * `loss_row = -Σ_j α_j·t_j·(1 - p_j)^γ·log p_j`, as kornia's `focal_loss` on soft targets;
 * those need `init({ extras })`. Targets are constants: no gradient flows to them.
 *
 * Options (the core's, {@link TfSoftmaxFocalOptions}; C comes from yPred): `alpha` (a number,
 * a per-class `Float32Array` of length C, or `null`; default 0.25), `gamma` (2), `reduction`
 * (`'mean'` over non-ignored rows, `'sum'`, `'none'`), `ignoreIndex` (-100), `lossWeight` (1),
 * `labelSmoothing` (ε with labels: targets `(1 - ε)·onehot + ε/C`, as Keras and PyTorch),
 * `poly1` (ε of Poly-1 with labels: adds `ε·(1 - p_y)^(γ+1)`); a non-zero `labelSmoothing` or
 * `poly1` needs `init({ extras })`. Needs `await init()` from `focal-ghm` first.
 *
 * @example
 * ```ts
 * import { init } from 'focal-ghm';
 * import { softmaxFocalLoss } from 'focal-ghm/tfjs';
 * await init();
 * model.compile({ optimizer: 'adam', loss: (yTrue, yPred) => softmaxFocalLoss(yTrue, yPred, { gamma: 2, alpha: null }) });
 * // Sparse labels, -100 skipped:
 * const loss = softmaxFocalLoss(tf.tensor1d([2, -100], 'int32'), tf.tensor2d([[1, 0, 3], [0, 0, 0]]));
 * // Class probabilities (a teacher's softmax, mixup), with the extras loaded:
 * const soft = softmaxFocalLoss(tf.tensor2d([[0.7, 0.3, 0], [0, 0.5, 0.5]]), tf.tensor2d([[1, 0, 3], [0, 0, 0]]));
 * ```
 * @throws Error before `init()` (and without the extras where they are needed); TypeError for an
 * argument of the wrong type or dtype; RangeError for shapes that disagree, rows that are neither
 * one-hot nor probabilities, and labels out of range.
 */
export function softmaxFocalLoss<R extends Reduction = 'mean'>(yTrue: Tensor, yPred: Tensor, options?: TfSoftmaxFocalOptions<R>): LossTensor<R>;
export function softmaxFocalLoss(yTrue: Tensor, yPred: Tensor, options?: TfSoftmaxFocalOptions): Tensor {
  const fn = 'softmaxFocalLoss';
  const pred = logitsTensor(fn, yPred);
  const o = expectOptions(fn, options, SOFTMAX_OPTIONS);
  const numClasses = classAxis(fn, pred);
  const labels = softmaxTargets(fn, expectTensor(fn, 'yTrue', yTrue), pred, numClasses);
  const x = valuesOf(pred) as Float32Array;
  const grad = engine().isTapeOn();
  const r = renamed('softmaxFocalLoss', fn, () => coreSoftmaxFocalLoss(x, labels, { ...o, numClasses, grad } as SoftmaxFocalOptions));
  return lossOp(pred, r.loss, r.grad, pred.shape.slice(0, -1), true);
}

/**
 * Quality Focal Loss (Li et al. 2020, "Generalized Focal Loss"; mmdetection `QualityFocalLoss`;
 * docs/SPEC.md §7) of logits `yPred` `[..., C]` against soft targets `yTrue`, as a TF.js loss: a
 * `tf.Scalar` (per-row losses for `reduction: 'none'`) and a gradient for `yPred` from the same
 * kernel call.
 *
 *     loss_ij = bce(x_ij, y_ij) · |y_ij - σ(x_ij)|^β,  summed over the row, then reduced over rows
 *
 * `yTrue`: float32 of yPred's shape, mmdetection's soft target y itself: each row holds its
 * quality score (e.g. the IoU, in [0, 1]) at its label's column and 0 elsewhere; a background
 * row is all 0. (A row scored 0 is background: its loss is the same.) At most one non-zero per
 * row: two are a RangeError. It becomes the core's `{ labels, scores }` on the way.
 *
 * Options ({@link TfQualityFocalOptions}): `beta` (2), `weight` (per row), `reduction`
 * (`'mean'` over rows, `'sum'`, `'none'`), `avgFactor`, `lossWeight`. Needs the extras:
 * `import { extras } from 'focal-ghm/extras'; await init({ extras });`.
 *
 * @example
 * ```ts
 * import { init } from 'focal-ghm';
 * import { extras } from 'focal-ghm/extras';
 * import { qualityFocalLoss } from 'focal-ghm/tfjs';
 * await init({ extras });
 * // 2 anchors × 3 classes: class 1 with IoU 0.8, then background.
 * const yTrue = tf.tensor2d([[0, 0.8, 0], [0, 0, 0]]);
 * const loss = qualityFocalLoss(yTrue, tf.tensor2d([[-2, 1.5, -3], [-1, -2, -4]]), { beta: 2 });
 * ```
 * @throws Error before `init({ extras })`; TypeError for an argument of the wrong type or dtype;
 * RangeError for shapes that disagree, scores outside [0, 1] and rows with two scores.
 */
export function qualityFocalLoss<R extends Reduction = 'mean'>(yTrue: Tensor, yPred: Tensor, options?: TfQualityFocalOptions<R>): LossTensor<R>;
export function qualityFocalLoss(yTrue: Tensor, yPred: Tensor, options?: TfQualityFocalOptions): Tensor {
  const fn = 'qualityFocalLoss';
  const pred = logitsTensor(fn, yPred);
  const o = expectOptions(fn, options, QFL_OPTIONS);
  const targets = qualityTargets(fn, expectTensor(fn, 'yTrue', yTrue), pred, classAxis(fn, pred));
  const weight = weightArray(fn, 'options.weight', o.weight, pred, 'only');
  const x = valuesOf(pred) as Float32Array;
  const grad = engine().isTapeOn();
  const r = renamed(fn, fn, () => coreQualityFocalLoss(x, targets, { ...o, weight, grad } as QualityFocalOptions));
  return lossOp(pred, r.loss, r.grad, pred.shape.slice(0, -1), true);
}

/**
 * Varifocal Loss (Zhang et al. 2021, "VarifocalNet"; mmdetection `varifocal_loss`; docs/SPEC.md
 * §8) of logits `yPred` against IoU-aware scores `yTrue`, as a TF.js loss: a `tf.Scalar`
 * (elementwise losses for `reduction: 'none'`) and a gradient for `yPred` from the same kernel
 * call.
 *
 *     w = q (iouWeighted) or 1 where q > 0,  α·|σ(x) - q|^γ where q = 0;  loss = bce(x, q) · w
 *
 * `yTrue`: float32 of yPred's shape, q in [0, 1]: the IoU of a positive at its class's logit, 0
 * for negatives (VFNet's `cls_iou_targets`). Options ({@link TfVarifocalOptions}): `alpha`
 * (0.75), `gamma` (2), `iouWeighted` (true), `weight` (per element), `reduction` (`'mean'` over
 * elements, `'sum'`, `'none'`), `avgFactor`, `lossWeight`. Needs the extras:
 * `import { extras } from 'focal-ghm/extras'; await init({ extras });`.
 *
 * @example
 * ```ts
 * await init({ extras });
 * const loss = varifocalLoss(tf.tensor2d([[0, 0.9], [0, 0]]), logits, { avgFactor: numPositives });
 * ```
 * @throws Error before `init({ extras })`; TypeError for an argument of the wrong type or dtype;
 * RangeError for shapes that disagree and targets outside [0, 1].
 */
export function varifocalLoss<R extends Reduction = 'mean'>(yTrue: Tensor, yPred: Tensor, options?: TfVarifocalOptions<R>): LossTensor<R>;
export function varifocalLoss(yTrue: Tensor, yPred: Tensor, options?: TfVarifocalOptions): Tensor {
  const fn = 'varifocalLoss';
  const pred = logitsTensor(fn, yPred);
  const o = expectOptions(fn, options, VFL_OPTIONS);
  const t = expectTensor(fn, 'yTrue', yTrue);
  if (!sameShape(t.shape, pred.shape)) throw new RangeError(`${fn}: yTrue has shape ${fmtShape(t.shape)}, expected yPred's shape ${fmtShape(pred.shape)} (a target per logit)`);
  if (t.dtype !== 'float32') throw new TypeError(`${fn}: yTrue must be float32 (IoU-aware scores in [0, 1]), got dtype ${t.dtype}`);
  const weight = weightArray(fn, 'options.weight', o.weight, pred, false);
  const q = valuesOf(t) as Float32Array;
  const x = valuesOf(pred) as Float32Array;
  const grad = engine().isTapeOn();
  const r = renamed(fn, fn, () => coreVarifocalLoss(x, q, { ...o, weight, grad } as VarifocalOptions));
  return lossOp(pred, r.loss, r.grad, pred.shape, false);
}

/**
 * Distribution Focal Loss (Li et al. 2020, "Generalized Focal Loss"; mmdetection
 * `DistributionFocalLoss`; docs/SPEC.md §9) as a TF.js loss: each row of `yPred` `[..., n + 1]`
 * holds the logits of a distribution over 0…n, and its target y in [0, n) is matched by its two
 * neighbours; a `tf.Scalar` (per-row losses for `reduction: 'none'`) and a gradient for `yPred`
 * from the same kernel call.
 *
 *     l = ⌊y⌋,  loss_row = (l + 1 - y)·CE(x, l) + (y - l)·CE(x, l + 1),  then reduced over rows
 *
 * `yTrue`: one target per row, yPred's shape without the last axis, or with a last axis of 1
 * (float32, or int32). n comes from yPred. Options ({@link TfDistributionFocalOptions}):
 * `weight` (per row), `reduction` (`'mean'` over rows, `'sum'`, `'none'`), `avgFactor`,
 * `lossWeight`. Needs the extras: `import { extras } from 'focal-ghm/extras'; await init({ extras });`.
 * (Keras `model.fit` wants yTrue of the output's shape: train with `optimizer.minimize` or
 * `tf.variableGrads`.)
 *
 * @example
 * ```ts
 * await init({ extras });
 * // 4 box sides of 2 anchors, distributions over 0…16 (17 logits each), targets in [0, 16).
 * const loss = distributionFocalLoss(tf.tensor1d([3.4, 11, 0.5, 7.9]), tf.randomNormal([4, 17]));
 * ```
 * @throws Error before `init({ extras })`; TypeError for an argument of the wrong type or dtype;
 * RangeError for shapes that disagree and targets outside [0, n).
 */
export function distributionFocalLoss<R extends Reduction = 'mean'>(yTrue: Tensor, yPred: Tensor, options?: TfDistributionFocalOptions<R>): LossTensor<R>;
export function distributionFocalLoss(yTrue: Tensor, yPred: Tensor, options?: TfDistributionFocalOptions): Tensor {
  const fn = 'distributionFocalLoss';
  const pred = logitsTensor(fn, yPred);
  const o = expectOptions(fn, options, DFL_OPTIONS);
  const c = classAxis(fn, pred);
  if (c < 2) throw new RangeError(`${fn}: yPred has shape ${fmtShape(pred.shape)}; its last axis must hold a distribution over 0…n (n + 1 ≥ 2 logits)`);
  const y = rowTargets(fn, expectTensor(fn, 'yTrue', yTrue), pred);
  const weight = weightArray(fn, 'options.weight', o.weight, pred, 'only');
  const x = valuesOf(pred) as Float32Array;
  const grad = engine().isTapeOn();
  const r = renamed(fn, fn, () => coreDistributionFocalLoss(x, y, { ...o, bins: c - 1, weight, grad } as DistributionFocalOptions));
  return lossOp(pred, r.loss, r.grad, pred.shape.slice(0, -1), true);
}

/**
 * GHM-C loss (Li et al. 2019; mmdetection `GHMC`; docs/SPEC.md §3) as a TF.js loss: BCE with
 * each element weighted by the inverse density of its gradient norm `g = |σ(x) - t|` over
 * `bins` bins, the density smoothed across calls by an EMA (`momentum`). Every call of
 * {@link GHMCLoss.loss} is one EMA step, as mmdetection's forward (evaluation calls included);
 * the loss, its gradient and the step come from the core `GHMC`, so the state evolves exactly
 * as the core's would on the same logits.
 *
 *     weight_bin = tot / (EMA of the bin's count) / (bins in use),  loss = Σ weight · BCE / tot
 *
 * Targets as for {@link sigmoidFocalLoss}: yPred's shape (0/1 or in [0, 1]) or one class index
 * per row. Save the state with the model's weights (`state()`, plain JSON) and restore it with
 * `loadState()`.
 *
 * @example
 * ```ts
 * import { init } from 'focal-ghm';
 * import { GHMCLoss } from 'focal-ghm/tfjs';
 * await init();
 * const ghm = new GHMCLoss({ bins: 30, momentum: 0.75 });
 * model.compile({ optimizer: 'adam', loss: ghm.loss });
 * await model.fit(xs, ys, { epochs: 5 });
 * const saved = JSON.stringify(ghm.state()); // beside model.save(…)
 * new GHMCLoss({ bins: 30, momentum: 0.75 }).loadState(JSON.parse(saved));
 * ```
 */
export class GHMCLoss {
  private readonly core: GHMC;
  /** Whether calls without a gradient (evaluation, validation in `model.fit`) step the EMA. */
  private readonly stepOnEvaluation: boolean;

  /**
   * @param options `bins` (1..1024, default 10), `momentum` in [0, 1) (default 0: no EMA),
   * `lossWeight` (default 1), as the core `GHMC`; `ema`: `'always'` (default: every call is one
   * EMA step, as mmdetection's GHMC forward) or `'training'` (only calls while TF.js records a
   * gradient step it; evaluation calls, such as `model.fit`'s validation batches, use the state
   * as it is and leave it so).
   */
  constructor(options: GHMCLossOptions = {}) {
    const { ema, ...core } = expectOptions('GHMCLoss', options, GHMC_LOSS_OPTIONS);
    this.stepOnEvaluation = expectOneOf('GHMCLoss', 'options.ema', ema ?? 'always', EMA_MODES) === 'always';
    this.core = renamed('GHMC', 'GHMCLoss', () => new GHMC(core as GHMCOptions));
  }

  /**
   * The loss of logits `yPred` against `yTrue` (a `tf.Scalar`), one EMA step, and the gradient
   * for `yPred` while TF.js records one. A bound function: pass `ghm.loss` itself as a Keras
   * loss. `labelWeight` (yPred's shape, or per row with class indices): elements with weight ≤ 0
   * are ignored; a constant. `options.reduction: 'none'` gives the per-element terms (yPred's
   * shape) whose sum is the loss.
   * @throws as {@link sigmoidFocalLoss}; nothing changes (the EMA state included) when it throws.
   */
  readonly loss = <R extends GHMReduction = 'mean'>(yTrue: Tensor, yPred: Tensor, labelWeight?: Tensor | Float32Array, options?: TfGHMCOptions<R>): LossTensor<R> => {
    const fn = 'GHMCLoss';
    const pred = logitsTensor(fn, yPred);
    const o = expectOptions(fn, options, GHMC_FORWARD_OPTIONS);
    const { targets, perRow } = sigmoidTargets(fn, expectTensor(fn, 'yTrue', yTrue), pred);
    const w = weightArray(fn, 'labelWeight', labelWeight, pred, perRow);
    const x = valuesOf(pred) as Float32Array;
    const grad = engine().isTapeOn();
    // With ema 'training', a call without a gradient runs on a copy of the state.
    const ghm = grad || this.stepOnEvaluation ? this.core : this.evaluationCopy();
    const r = renamed('GHMC.forward', fn, () => ghm.forward(x, targets, w, { ...o, grad } as GHMCForwardOptions));
    return lossOp(pred, r.loss, r.grad, pred.shape, false) as LossTensor<R>;
  };

  /** A GHMC with this one's options and state, whose steps do not reach this one. */
  private evaluationCopy(): GHMC {
    const copy = new GHMC({ bins: this.core.bins, momentum: this.core.momentum, lossWeight: this.core.lossWeight });
    copy.loadState(this.core.state());
    return copy;
  }

  /** Number of gradient-norm bins. */
  get bins(): number {
    return this.core.bins;
  }

  /** EMA momentum (0: none). */
  get momentum(): number {
    return this.core.momentum;
  }

  /** The EMA state, one entry per bin (a copy): mmdetection's `acc_sum`. */
  get accSum(): Float64Array {
    return this.core.accSum;
  }

  /** The EMA state as plain JSON: save it with the model, {@link GHMCLoss.loadState} it back. */
  state(): GHMState {
    return this.core.state();
  }

  /** Restores a {@link GHMCLoss.state} of the same bins and momentum; nothing changes when it throws. */
  loadState(state: GHMState): void {
    renamed('GHMC.loadState', 'GHMCLoss.loadState', () => this.core.loadState(state));
  }

  /** Zeroes the EMA state. */
  reset(): void {
    this.core.reset();
  }
}

// ---- Tensors in, tensors out ------------------------------------------------------------------

/** A live tensor, or a TypeError naming the argument. */
function expectTensor(fn: string, name: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) throw new TypeError(`${fn}: ${name} must be a tf.Tensor, got ${describeValue(v)}`);
  if (v.isDisposed) throw new TypeError(`${fn}: ${name} has been disposed`);
  return v;
}

/** `yPred` checked (float32), after the check that the kernels are loaded. */
function logitsTensor(fn: string, yPred: unknown): Tensor {
  if (!isInitialized()) {
    throw new Error(
      `${fn} (focal-ghm/tfjs): focal-ghm is not initialized; call \`await init()\` (import { init } from 'focal-ghm/tfjs' or 'focal-ghm') once before the first loss` +
        ' (a program that both imports and requires focal-ghm has two copies: take init from focal-ghm/tfjs)',
    );
  }
  const t = expectTensor(fn, 'yPred', yPred);
  if (t.dtype !== 'float32') throw new TypeError(`${fn}: yPred must be a float32 tensor (logits or probabilities), got dtype ${t.dtype}`);
  return t;
}

/** What the wasm backend offers to read a tensor in place (public in its declarations). */
interface HeapReader {
  typedArrayFromHeap?(t: Tensor): Float32Array | Int32Array | Uint8Array;
  dataIdMap?: { has(dataId: object): boolean };
}

/**
 * The values of a tensor for the kernels to read: on the wasm backend a view of the tensor in its
 * memory (`typedArrayFromHeap`, as its own kernels read inputs; reading it with `dataSync()`
 * would copy it, 0.4–2 ms per 10^6 elements), else `dataSync()` (the cpu backend's array itself,
 * or a read back). A view is valid until TF.js allocates again: take them after the checks and
 * make tensors only after the kernel call.
 */
function valuesOf(t: Tensor): Float32Array | Int32Array | Uint8Array {
  if (getBackend() === 'wasm') {
    const b = backend() as unknown as HeapReader;
    // A tensor made on another backend has its data there until TF.js moves it: dataSync().
    if (typeof b.typedArrayFromHeap === 'function' && b.dataIdMap?.has(t.dataId)) return b.typedArrayFromHeap(t);
  }
  return t.dataSync() as Float32Array | Int32Array | Uint8Array;
}

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** C, the size of yPred's last axis (the classes), for losses that need one. */
function classAxis(fn: string, pred: Tensor): number {
  const c = pred.shape[pred.rank - 1];
  if (c === undefined || c < 1) throw new RangeError(`${fn}: yPred has shape ${fmtShape(pred.shape)}; it needs a last axis of classes (size ≥ 1)`);
  return c;
}

/**
 * Elementwise targets (yPred's shape) as the core takes them: float32 as soft targets (0/1
 * included), bool as bytes, int32 as bytes once checked to be 0 or 1. Or, for yPred `[..., C]`
 * with C ≥ 2, class indices of yPred's shape without the last axis.
 */
function sigmoidTargets(fn: string, yTrue: Tensor, pred: Tensor): { targets: Targets; perRow: boolean } {
  if (sameShape(yTrue.shape, pred.shape)) {
    if (yTrue.dtype === 'float32') return { targets: valuesOf(yTrue) as Float32Array, perRow: false };
    if (yTrue.dtype === 'bool') return { targets: valuesOf(yTrue) as Uint8Array, perRow: false };
    if (yTrue.dtype === 'int32') return { targets: binaryBytes(fn, valuesOf(yTrue) as Int32Array), perRow: false };
    throw new TypeError(`${fn}: yTrue must be float32 (targets in [0, 1]), int32 or bool, got dtype ${yTrue.dtype}`);
  }
  const rows = pred.shape.slice(0, -1);
  const c = pred.shape[pred.rank - 1];
  if (pred.rank >= 1 && sameShape(yTrue.shape, rows)) {
    if (c === 1) {
      throw new RangeError(
        `${fn}: yTrue has shape ${fmtShape(yTrue.shape)} and yPred ${fmtShape(pred.shape)}: one class index per row needs at least 2 classes ` +
          `(with 1, label 1 would mean background); for binary targets give yTrue yPred's shape`,
      );
    }
    return { targets: { labels: integerLabels(fn, yTrue), numClasses: c! }, perRow: true };
  }
  const indices = pred.rank >= 1 && c! >= 2 ? `, or ${fmtShape(rows)} (one class index per row, ${c} = background)` : '';
  throw new RangeError(`${fn}: yTrue has shape ${fmtShape(yTrue.shape)}, expected yPred's shape ${fmtShape(pred.shape)} (a target per logit)${indices}`);
}

/** int32 0/1 targets as bytes. */
function binaryBytes(fn: string, t: Int32Array): Uint8Array {
  const out = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (v !== 0 && v !== 1) throw new RangeError(`${fn}: yTrue[${i}] is ${v}; int32 targets must be 0 or 1 (float32 targets may be in [0, 1])`);
    out[i] = v;
  }
  return out;
}

/** Class indices from an int32 tensor, or a float32 one holding whole numbers. */
function integerLabels(fn: string, yTrue: Tensor): Int32Array {
  if (yTrue.dtype === 'int32') return valuesOf(yTrue) as Int32Array;
  if (yTrue.dtype !== 'float32') throw new TypeError(`${fn}: yTrue holds class indices here (one per row), which must be int32 or float32, got dtype ${yTrue.dtype}`);
  const f = valuesOf(yTrue) as Float32Array;
  const out = new Int32Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const v = f[i]!;
    if (!Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) throw new RangeError(`${fn}: yTrue[${i}] is ${v}; class indices must be whole numbers`);
    out[i] = v;
  }
  return out;
}

/**
 * Softmax targets: one-hot rows (yPred's shape) as labels, float32 rows of yPred's shape that are
 * not all one-hot as class probabilities (checked by the core), or sparse labels of shape
 * [...rows] or [...rows, 1].
 */
function softmaxTargets(fn: string, yTrue: Tensor, pred: Tensor, c: number): Int32Array | Float32Array {
  const rows = pred.shape.slice(0, -1);
  if (sameShape(yTrue.shape, pred.shape)) return oneHotLabels(fn, yTrue, c);
  if (sameShape(yTrue.shape, rows) || sameShape(yTrue.shape, [...rows, 1])) return integerLabels(fn, yTrue);
  throw new RangeError(
    `${fn}: yTrue has shape ${fmtShape(yTrue.shape)}, expected one-hot rows of yPred's shape ${fmtShape(pred.shape)}, or one label per row: ${fmtShape(rows)} or ${fmtShape([...rows, 1])}`,
  );
}

/**
 * The label of each one-hot row (exactly one 1, every other entry 0); a float32 yTrue with a row
 * that is not one-hot is returned as is: class-probability rows.
 */
function oneHotLabels(fn: string, yTrue: Tensor, c: number): Int32Array | Float32Array {
  if (yTrue.dtype !== 'float32' && yTrue.dtype !== 'int32' && yTrue.dtype !== 'bool') {
    throw new TypeError(`${fn}: yTrue (one-hot) must be float32, int32 or bool, got dtype ${yTrue.dtype}`);
  }
  const t = valuesOf(yTrue);
  const labels = new Int32Array(t.length / c);
  for (let r = 0, i = 0; r < labels.length; r++) {
    let label = -1;
    for (let j = 0; j < c; j++, i++) {
      const v = t[i]!;
      // -1: no 1 yet; -2: not one-hot (a second 1, or any other non-zero value), for good.
      if (v === 1 && label === -1) label = j;
      else if (v !== 0) label = -2;
    }
    if (label < 0) {
      if (t instanceof Float32Array) return t;
      const row = Array.from(t.subarray(r * c, r * c + Math.min(c, 8)), (v) => Number(v.toPrecision(7))).join(', ') + (c > 8 ? ', …' : '');
      throw new RangeError(
        `${fn}: yTrue has yPred's shape, so rows must be one-hot (one 1, the rest 0), but row ${r} is [${row}]; class probabilities must be float32, sparse labels (one per row) may be int32`,
      );
    }
    labels[r] = label;
  }
  return labels;
}

/**
 * Quality Focal Loss's soft targets y (yPred's shape: a row's score at its label's column, 0
 * elsewhere) as the core's labels and scores; an all-0 row is background (label C).
 */
function qualityTargets(fn: string, yTrue: Tensor, pred: Tensor, c: number): QualityTargets {
  if (!sameShape(yTrue.shape, pred.shape)) {
    throw new RangeError(`${fn}: yTrue has shape ${fmtShape(yTrue.shape)}, expected yPred's shape ${fmtShape(pred.shape)} (each row: its quality score at its label's column, 0 elsewhere)`);
  }
  if (yTrue.dtype !== 'float32') throw new TypeError(`${fn}: yTrue must be float32 (quality scores in [0, 1]), got dtype ${yTrue.dtype}`);
  const t = valuesOf(yTrue) as Float32Array;
  const labels = new Int32Array(t.length / c).fill(c);
  const scores = new Float32Array(labels.length);
  for (let r = 0, i = 0; r < labels.length; r++) {
    for (let j = 0; j < c; j++, i++) {
      const v = t[i]!;
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${fn}: yTrue[${i}] is ${v}, expected a quality score in [0, 1] (row ${r})`);
      if (v === 0) continue;
      if (labels[r] !== c) {
        throw new RangeError(`${fn}: yTrue row ${r} has non-zero entries in columns ${labels[r]} and ${j}; a row holds one quality score, at its label's column (all 0 for background)`);
      }
      labels[r] = j;
      scores[r] = v;
    }
  }
  return { labels, scores, numClasses: c };
}

/** One float target per row (Distribution Focal Loss): of shape [...rows] or [...rows, 1], float32 or int32. */
function rowTargets(fn: string, yTrue: Tensor, pred: Tensor): Float32Array {
  const rows = pred.shape.slice(0, -1);
  if (!sameShape(yTrue.shape, rows) && !sameShape(yTrue.shape, [...rows, 1])) {
    throw new RangeError(`${fn}: yTrue has shape ${fmtShape(yTrue.shape)}, expected one target per row of yPred ${fmtShape(pred.shape)}: ${fmtShape(rows)} or ${fmtShape([...rows, 1])}`);
  }
  if (yTrue.dtype === 'float32') return valuesOf(yTrue) as Float32Array;
  if (yTrue.dtype === 'int32') return Float32Array.from(valuesOf(yTrue));
  throw new TypeError(`${fn}: yTrue must be float32 or int32 (targets in [0, n)), got dtype ${yTrue.dtype}`);
}

/**
 * A weight argument as the core takes it: a `Float32Array`, or a float32 tensor of yPred's shape,
 * or per row: as well with `perRow` true (class indices), only with `'only'`.
 */
function weightArray(fn: string, name: string, w: unknown, pred: Tensor, perRow: boolean | 'only'): Float32Array | undefined {
  if (w === undefined || w instanceof Float32Array) return w;
  if (!(w instanceof Tensor)) throw new TypeError(`${fn}: ${name} must be a tf.Tensor or a Float32Array, got ${describeValue(w)}`);
  const t = expectTensor(fn, name, w);
  if (t.dtype !== 'float32') throw new TypeError(`${fn}: ${name} must be a float32 tensor, got dtype ${t.dtype}`);
  const rows = pred.shape.slice(0, -1);
  if (perRow === 'only') {
    if (!sameShape(t.shape, rows)) throw new RangeError(`${fn}: ${name} has shape ${fmtShape(t.shape)}, expected ${fmtShape(rows)} (one per row of yPred ${fmtShape(pred.shape)})`);
  } else if (!sameShape(t.shape, pred.shape) && !(perRow && sameShape(t.shape, rows))) {
    throw new RangeError(`${fn}: ${name} has shape ${fmtShape(t.shape)}, expected yPred's shape ${fmtShape(pred.shape)}${perRow ? ` or ${fmtShape(rows)} (one per row)` : ''}`);
  }
  return valuesOf(t) as Float32Array;
}

let scratch = new Float32Array(0);

/**
 * Where the kernel may write the gradient: on the wasm backend, which copies a new tensor's
 * values into its own memory, one buffer reused from call to call (writing a fresh array costs
 * its page faults: 2 of 5 ms at N = 10^6). Other backends keep the array a tensor is made
 * from (cpu for good, webgl until it uploads), so they get a new one (`undefined`).
 */
function gradScratch(n: number): { grad: Float32Array } | undefined {
  if (getBackend() !== 'wasm') return undefined;
  if (scratch.length < n) scratch = new Float32Array(n);
  return { grad: scratch.subarray(0, n) };
}

/**
 * Runs a core call; its argument errors then name this entry's function and arguments (`yTrue`
 * for the core's targets or labels, `yPred` for its logits or probabilities).
 */
function renamed<T>(coreFn: string, fn: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if ((e instanceof TypeError || e instanceof RangeError) && e.message.startsWith(`${coreFn}: `)) {
      const rest = e.message.slice(coreFn.length + 2).replace(/^(targets\.labels|targets|labels)\b/, 'yTrue').replace(/^logits\b/, 'yPred');
      throw new (e instanceof TypeError ? TypeError : RangeError)(`${fn}: ${rest}`);
    }
    throw e;
  }
}

/**
 * The loss as a TF.js op on `yPred`: its value, and (when the kernel computed one) the gradient,
 * saved for the backward pass, which scales it by the incoming dy: as is for a scalar dy of 1
 * (what `minimize` and `grad` pass), else dy times it, broadcast over the class axis for per-row
 * losses.
 */
function lossOp(yPred: Tensor, loss: number | Float32Array, grad: Float32Array | undefined, lossShape: number[], perRow: boolean): Tensor {
  return customGrad((x: Tensor | GradSaveFunc, save: Tensor | GradSaveFunc) => {
    const value = typeof loss === 'number' ? scalar(loss) : tensor(loss, lossShape, 'float32');
    if (grad) (save as GradSaveFunc)([tensor(grad, (x as Tensor).shape, 'float32')]);
    const gradFunc = (dy: Tensor, saved: Tensor[]): Tensor => {
      const g = saved[0];
      // Not reachable through TF.js: it records the gradient exactly when it saves tensors.
      if (!g) throw new Error('focal-ghm/tfjs: the loss was computed while TF.js recorded no gradient');
      // A scalar dy of 1 needs no multiplication; reading dy is free on the cpu and wasm
      // backends only (on webgl/webgpu it would be a second GPU stall per step).
      if (dy.rank === 0 && (getBackend() === 'cpu' || getBackend() === 'wasm') && dy.dataSync()[0] === 1) return g.clone();
      return mul(perRow && dy.rank > 0 ? expandDims(dy, -1) : dy, g);
    };
    return { value, gradFunc };
  })(yPred);
}
