/**
 * Float64 reference implementation of docs/SPEC.md: the oracle the wasm implementation is tested
 * against. Written straight from the formulas, favouring the obviously-correct over the fast
 * (still linear time: 10^6 elements take a few tens of milliseconds).
 *
 * Semantic choices docs/SPEC.md leaves open are marked "Choice:" below and listed in one place in
 * the header of test/reference.test.ts.
 */

export type Reduction = 'mean' | 'sum' | 'none';

/** Class-index targets for an [N, C] logit matrix: labels[i] in [0, C], C meaning background. */
export interface LabelTargets {
  labels: Int32Array;
  numClasses: number;
  /** Rows with this label add nothing, and are not counted by 'mean' (SPEC §1). */
  ignoreIndex?: number;
}

export type SigmoidTargets = Uint8Array | Float32Array | LabelTargets;

// ---------------------------------------------------------------------------------------------
// Scalar math
// ---------------------------------------------------------------------------------------------

/** σ(x), never forming exp of a large positive number (no overflow, no 1 - tiny cancellation). */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** softplus(z) = log(1 + e^z) = max(z, 0) + log1p(exp(-|z|)) (SPEC notation). */
export function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** Binary cross-entropy with logits, the SPEC §1 stable form softplus(x) - x·t. */
export function bceWithLogits(x: number, t: number): number {
  return Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * p - t, written as p·(1-t) - (1-p)·t with 1-p = σ(-x) so that for t = 1 the result is exactly
 * -σ(-x) and keeps its relative precision when p is close to 1.
 */
function sigmoidMinusTarget(p: number, q: number, t: number): number {
  return p * (1 - t) - q * t;
}

/**
 * Compensated (Neumaier) summation. Plain float64 summation would already meet SPEC §5 for
 * 10^6 terms; the oracle should be beyond suspicion, so it also removes that drift.
 */
class CompensatedSum {
  private sum = 0;
  private comp = 0;
  private plain = 0; // carries ±Infinity / NaN, which would poison the compensation term

  add(x: number): void {
    this.plain += x;
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.comp += this.sum - t + x;
    else this.comp += x - t + this.sum;
    this.sum = t;
  }

  get value(): number {
    return Number.isFinite(this.plain) ? this.sum + this.comp : this.plain;
  }
}

// ---------------------------------------------------------------------------------------------
// Input expansion: one float64 target and weight per logit
// ---------------------------------------------------------------------------------------------

function isLabelTargets(t: SigmoidTargets): t is LabelTargets {
  return !ArrayBuffer.isView(t);
}

function checkLabels(labels: Int32Array, numClasses: number, numel: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  }
  if (labels.length * numClasses !== numel) {
    throw new RangeError(
      `labels (${labels.length}) × numClasses (${numClasses}) != logits length (${numel})`,
    );
  }
}

/**
 * The target of every logit. Class indices expand to the one-hot matrix mmcv's CUDA kernel
 * implies (label C = background = an all-zero row); the oracle may build it, the kernels do not.
 */
export function expandTargets(numel: number, targets: SigmoidTargets): Float64Array {
  if (!isLabelTargets(targets)) {
    if (targets.length !== numel) {
      throw new RangeError(`targets length ${targets.length} != logits length ${numel}`);
    }
    return Float64Array.from(targets);
  }
  const { labels, numClasses } = targets;
  checkLabels(labels, numClasses, numel);
  const t = new Float64Array(numel);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (c === targets.ignoreIndex) continue;
    if (c < 0 || c > numClasses) {
      throw new RangeError(`labels[${i}] = ${c} outside [0, ${numClasses}]`);
    }
    if (c < numClasses) t[i * numClasses + c] = 1;
  }
  return t;
}

/**
 * The weight of every logit: all ones when absent; per element (length = logits length); or,
 * with class-index targets, per row (length N) broadcast over the row.
 */
export function expandWeights(
  numel: number,
  targets: SigmoidTargets,
  weight: ArrayLike<number> | null | undefined,
): Float64Array {
  if (weight === null || weight === undefined) return new Float64Array(numel).fill(1);
  if (weight.length === numel) return Float64Array.from(weight);
  if (isLabelTargets(targets) && weight.length === targets.labels.length) {
    const c = targets.numClasses;
    const w = new Float64Array(numel);
    for (let i = 0; i < numel; i++) w[i] = weight[Math.floor(i / c)]!;
    return w;
  }
  throw new RangeError(`weight length ${weight.length} matches neither the elements nor the rows`);
}

// ---------------------------------------------------------------------------------------------
// Reductions (mmdetection weight_reduce_loss)
// ---------------------------------------------------------------------------------------------

function checkReduction(reduction: string): asserts reduction is Reduction {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new RangeError(`reduction must be 'mean', 'sum' or 'none', got ${reduction}`);
  }
}

/**
 * The factor `reduction` applies to the summed loss, which scales the gradient alike.
 * Library decision: mean over zero elements (without avgFactor) is 0/0 = NaN, as torch.mean
 * of an empty tensor (the softmax mean instead divides by max(rows, 1), SPEC §2).
 * avgFactor only affects `mean`; with `sum` it is an error (mmdetection raises) and with `none`
 * it is ignored (mmdetection returns the elementwise loss untouched). Unlike recent
 * mmdetection, no float32 eps is added to avgFactor: SPEC and the golden files divide exactly.
 */
function reductionScale(
  reduction: Reduction,
  count: number,
  avgFactor: number | null | undefined,
): number {
  const hasAvg = avgFactor !== null && avgFactor !== undefined;
  // count = 0: 1/0 = Infinity, and the (empty) sum 0 times it is NaN.
  if (reduction === 'mean') return 1 / (hasAvg ? avgFactor : count);
  if (hasAvg && reduction === 'sum') {
    throw new RangeError('avgFactor can not be used with reduction "sum"');
  }
  return 1;
}

/** Sums per-item losses times `scale` (reduction factor × lossWeight); `none` returns them. */
function reduceLoss(
  losses: Float64Array,
  reduction: Reduction,
  scale: number,
): number | Float64Array {
  if (reduction === 'none') return losses;
  const sum = new CompensatedSum();
  for (let i = 0; i < losses.length; i++) sum.add(losses[i]!);
  // An empty mean has scale Infinity (or NaN with lossWeight 0): 0·Infinity = NaN, wanted.
  return sum.value * scale;
}

// ---------------------------------------------------------------------------------------------
// §1 Sigmoid focal loss
// ---------------------------------------------------------------------------------------------

export interface RefSigmoidFocalOptions {
  /** In [0, 1]; null disables the α factor; 'auto' = negatives' share. Default 0.25. */
  alpha?: number | null | 'auto';
  /** ≥ 0. Default 2. */
  gamma?: number;
  /** Per element, or per row (length N) with class-index targets. Default all ones. */
  weight?: ArrayLike<number> | null;
  reduction?: Reduction;
  avgFactor?: number | null;
  lossWeight?: number;
  /**
   * kornia's `weight` and `pos_weight` (SPEC §1), length C: the element's loss is
   * v_c·(q_c·pos_term + neg_term), pos_term the t part of the loss and neg_term the 1 − t part.
   */
  classWeight?: ArrayLike<number>;
  posWeight?: ArrayLike<number>;
  /** The class of element i (default i mod C, C the weights' length or numClasses). */
  classOf?: (i: number) => number;
}

export interface RefSigmoidFocalResult {
  /** Scalar for mean/sum; per element for none (length = logits length). */
  loss: number | Float64Array;
  grad: Float64Array;
  /** The α applied (resolved for 'auto'); null when alpha is disabled. */
  alphaUsed: number | null;
}

/**
 * 'auto' α = F/(P+F): P counts elements with t ≥ 0.5, F the rest, both only where w > 0.
 * Choice: with no element of positive weight (P+F = 0) α = 0.5, weighting both classes alike.
 * The loss is then 0 anyway unless some weight is negative, so the value is mostly reported,
 * not used.
 */
export function autoAlpha(t: Float64Array, w: Float64Array): number {
  let positives = 0;
  let negatives = 0;
  for (let i = 0; i < t.length; i++) {
    if (!(w[i]! > 0)) continue;
    if (t[i]! >= 0.5) positives++;
    else negatives++;
  }
  const counted = positives + negatives;
  return counted === 0 ? 0.5 : negatives / counted;
}

function resolveAlpha(
  alpha: number | null | 'auto',
  t: Float64Array,
  w: Float64Array,
): number | null {
  if (alpha === 'auto') return autoAlpha(t, w);
  if (alpha !== null && !(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`alpha must be in [0, 1], null or 'auto', got ${alpha}`);
  }
  return alpha;
}

function checkGamma(gamma: number): void {
  if (!(gamma >= 0) || !Number.isFinite(gamma)) {
    throw new RangeError(`gamma must be a finite number ≥ 0, got ${gamma}`);
  }
}

/** Unweighted, unreduced focal term of one element and its derivative in x (SPEC §1). */
interface FocalElement {
  loss: number;
  grad: number;
}

function sigmoidFocalElement(x: number, t: number, gamma: number, out: FocalElement): void {
  // One exp serves σ(x), σ(-x) = 1 - p (without cancellation) and the softplus: with
  // e = exp(-|x|) ≤ 1, σ(|x|) = 1/(1+e) and σ(-|x|) = e/(1+e).
  const e = Math.exp(-Math.abs(x));
  const big = 1 / (1 + e);
  const small = e / (1 + e);
  const p = x >= 0 ? big : small;
  const q = x >= 0 ? small : big;
  const bce = Math.max(x, 0) - x * t + Math.log1p(e); // = bceWithLogits(x, t)
  const pt = q * t + p * (1 - t);
  const modulator = Math.pow(pt, gamma); // 0^0 = 1: γ = 0 is plain BCE even at pt = 0
  const dPt = p * q * (1 - 2 * t); // d pt / dx
  // γ·pt^(γ-1) is infinite at pt = 0 for γ < 1; SPEC defines that term as 0 there.
  const first = pt === 0 && gamma < 1 ? 0 : gamma * Math.pow(pt, gamma - 1) * dPt * bce;
  out.loss = modulator * bce;
  out.grad = first + modulator * sigmoidMinusTarget(p, q, t);
}

export function refSigmoidFocal(
  logits: Float32Array,
  targets: SigmoidTargets,
  opts: RefSigmoidFocalOptions = {},
): RefSigmoidFocalResult {
  const gamma = opts.gamma ?? 2;
  const reduction = opts.reduction ?? 'mean';
  const lossWeight = opts.lossWeight ?? 1;
  checkGamma(gamma);
  checkReduction(reduction);

  const numel = logits.length;
  const t = expandTargets(numel, targets);
  const w = expandWeights(numel, targets, opts.weight);
  // Ignored rows: weight 0 (logits unread), and left out of the mean's count.
  let counted = numel;
  const ignored = new Uint8Array(numel);
  if (isLabelTargets(targets) && targets.ignoreIndex !== undefined) {
    const c = targets.numClasses;
    targets.labels.forEach((l, r) => {
      if (l !== targets.ignoreIndex) return;
      w.fill(0, r * c, r * c + c);
      ignored.fill(1, r * c, r * c + c);
      counted -= c;
    });
  }
  const { classWeight: v, posWeight: q } = opts;
  if (v || q) {
    const c = isLabelTargets(targets) ? targets.numClasses : (v ?? q)!.length;
    const classOf = opts.classOf ?? ((i: number) => i % c);
    for (let i = 0; i < numel; i++) {
      const k = classOf(i);
      if (q && t[i] !== 0 && t[i] !== 1) throw new RangeError('posWeight needs 0/1 targets');
      // t = 1: only pos_term, times v·q; t = 0: only neg_term, times v.
      w[i]! *= (v ? v[k]! : 1) * (q && t[i] === 1 ? q[k]! : 1);
    }
  }
  const alpha = resolveAlpha(opts.alpha === undefined ? 0.25 : opts.alpha, t, w);
  const scale = lossWeight * reductionScale(reduction, counted, opts.avgFactor);

  const losses = new Float64Array(numel);
  const grad = new Float64Array(numel);
  const el: FocalElement = { loss: 0, grad: 0 };
  for (let i = 0; i < numel; i++) {
    const ti = t[i]!;
    if (ignored[i]) continue; // ignored rows: exactly 0, whatever the logit
    const aw = alpha === null ? 1 : alpha * ti + (1 - alpha) * (1 - ti);
    sigmoidFocalElement(logits[i]!, ti, gamma, el);
    const factor = aw * w[i]!;
    // Elementwise losses carry lossWeight only when returned as they are; a reduced loss gets
    // it through `scale`, once.
    losses[i] = (reduction === 'none' ? lossWeight : 1) * factor * el.loss;
    grad[i] = scale * factor * el.grad;
  }
  return { loss: reduceLoss(losses, reduction, scale), grad, alphaUsed: alpha };
}

// ---------------------------------------------------------------------------------------------
// §2 Softmax focal loss
// ---------------------------------------------------------------------------------------------

export interface RefSoftmaxFocalOptions {
  numClasses: number;
  /**
   * One α for all classes, a per-class vector (length C), or null (factor 1).
   * Choice: default 0.25 — SPEC §2 names none (kornia makes it a required argument); 0.25
   * matches the sigmoid default.
   */
  alpha?: number | ArrayLike<number> | null;
  gamma?: number;
  reduction?: Reduction;
  ignoreIndex?: number;
  /**
   * Multiplies the loss (reduced or per row) and the gradient, as for the sigmoid loss.
   * Default 1. (The library's softmax option; SPEC §2 does not name it.)
   */
  lossWeight?: number;
  /** Per-row weights (length N): multiply each row's loss and gradient row. */
  weight?: ArrayLike<number>;
  /** 'mean' divides by this instead of the counted rows; an error with 'sum'. */
  avgFactor?: number;
}

export interface RefSoftmaxFocalResult {
  /** Scalar for mean/sum; per row for none (length N, 0 for ignored rows). */
  loss: number | Float64Array;
  grad: Float64Array;
}

function classAlpha(alpha: number | ArrayLike<number> | null, c: number): number {
  if (alpha === null) return 1;
  return typeof alpha === 'number' ? alpha : alpha[c]!;
}

/**
 * One row: writes the row's unscaled gradient into grad[offset .. offset+C) and returns its loss.
 * log p_y = x_y - logsumexp(x) (shifted by the max, so nothing overflows) and 1 - p_y is the sum
 * of the other classes' probabilities, which stays accurate when p_y is close to 1.
 */
function softmaxFocalRow(
  logits: Float32Array,
  offset: number,
  numClasses: number,
  y: number,
  ay: number,
  gamma: number,
  grad: Float64Array,
): number {
  let max = -Infinity;
  for (let j = 0; j < numClasses; j++) max = Math.max(max, logits[offset + j]!);
  let sumExp = 0;
  for (let j = 0; j < numClasses; j++) sumExp += Math.exp(logits[offset + j]! - max);
  const lse = max + Math.log(sumExp);

  const logPy = logits[offset + y]! - lse;
  const py = Math.exp(logPy);
  let oneMinusPy = 0;
  for (let j = 0; j < numClasses; j++) {
    if (j !== y) oneMinusPy += Math.exp(logits[offset + j]! - lse);
  }

  const modulator = Math.pow(oneMinusPy, gamma);
  // γ·(1-p_y)^(γ-1) is infinite at 1-p_y = 0 for γ < 1; the limit of the whole term is 0.
  const second =
    oneMinusPy === 0 && gamma < 1 ? 0 : gamma * Math.pow(oneMinusPy, gamma - 1) * py * logPy;
  const inner = modulator - second;
  for (let j = 0; j < numClasses; j++) {
    const deltaMinusP = j === y ? oneMinusPy : -Math.exp(logits[offset + j]! - lse);
    grad[offset + j] = -ay * deltaMinusP * inner;
  }
  return -ay * modulator * logPy;
}

export function refSoftmaxFocal(
  logits: Float32Array,
  labels: Int32Array,
  opts: RefSoftmaxFocalOptions,
): RefSoftmaxFocalResult {
  const { numClasses } = opts;
  const alpha = opts.alpha === undefined ? 0.25 : opts.alpha;
  const gamma = opts.gamma ?? 2;
  const reduction = opts.reduction ?? 'mean';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const lossWeight = opts.lossWeight ?? 1;
  checkGamma(gamma);
  checkReduction(reduction);
  checkLabels(labels, numClasses, logits.length);
  if (alpha !== null && typeof alpha !== 'number' && alpha.length !== numClasses) {
    throw new RangeError(`alpha vector length ${alpha.length} != numClasses ${numClasses}`);
  }

  const rows = labels.length;
  const losses = new Float64Array(rows);
  const grad = new Float64Array(logits.length);
  let counted = 0;
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    if (y === ignoreIndex) continue; // loss and gradient stay 0
    if (y < 0 || y >= numClasses) {
      throw new RangeError(`labels[${i}] = ${y} outside [0, ${numClasses}) and not ignoreIndex`);
    }
    counted++;
    const offset = i * numClasses;
    losses[i] = softmaxFocalRow(logits, offset, numClasses, y, classAlpha(alpha, y), gamma, grad);
    if (opts.weight) {
      const wi = opts.weight[i]!;
      losses[i]! *= wi;
      for (let j = 0; j < numClasses; j++) grad[offset + j]! *= wi;
    }
  }

  // mean divides by the non-ignored rows (at least 1), or by avgFactor (mmdetection).
  if (opts.avgFactor !== undefined && reduction === 'sum') throw new RangeError('avgFactor can not be used with reduction "sum"');
  const scale = lossWeight / (reduction === 'mean' ? (opts.avgFactor ?? Math.max(counted, 1)) : 1);
  if (scale !== 1) for (let k = 0; k < grad.length; k++) grad[k]! *= scale;
  if (reduction === 'none' && lossWeight !== 1) for (let i = 0; i < rows; i++) losses[i]! *= lossWeight;
  return { loss: reduceLoss(losses, reduction, scale), grad };
}

// ---------------------------------------------------------------------------------------------
// §3, §4 Gradient harmonizing mechanism
// ---------------------------------------------------------------------------------------------

/** GHM-C edges: float32(i / bins), the last one raised by 1e-6 in float32 arithmetic. */
export function ghmcEdges(bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  for (let i = 0; i <= bins; i++) edges[i] = Math.fround(i / bins);
  edges[bins] = Math.fround(edges[bins]! + Math.fround(1e-6));
  return edges;
}

/** GHM-R edges: float32(i / bins), the last one 1e3 (g < 1 always lands in the last bin). */
export function ghmrEdges(bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) edges[i] = Math.fround(i / bins);
  edges[bins] = 1e3;
  return edges;
}

/** The i with edges[i] ≤ g < edges[i+1], or -1 (NaN and out-of-range g belong to no bin). */
export function findBin(g: number, edges: Float64Array): number {
  for (let i = 0; i + 1 < edges.length; i++) {
    if (edges[i]! <= g && g < edges[i + 1]!) return i;
  }
  return -1;
}

/** GHM-C's g = |p - t|, the BCE gradient norm (1-p taken as σ(-x) for t = 1). */
export function ghmcGradNorm(x: number, t: number): number {
  return Math.abs(sigmoidMinusTarget(sigmoid(x), sigmoid(-x), t));
}

/** GHM-R's g = |d| / sqrt(d² + mu²), the ASL1 gradient norm. */
export function ghmrGradNorm(d: number, mu: number): number {
  return Math.abs(d) / Math.sqrt(d * d + mu * mu);
}

export interface RefGHMOptions {
  bins?: number;
  /** In [0, 1); 0 disables the EMA. */
  momentum?: number;
  lossWeight?: number;
}

export interface RefGHMResult {
  loss: number;
  grad: Float64Array;
}

/**
 * Per-bin harmonizing weights from per-element bin indices (-1: not counted). Updates the EMA
 * state `acc` for non-empty bins only, in the exact float64 expression m·acc + (1-m)·num.
 */
function harmonizingWeights(
  binOf: Int32Array,
  bins: number,
  tot: number,
  momentum: number,
  acc: Float64Array,
): Float64Array {
  const num = new Float64Array(bins);
  for (let k = 0; k < binOf.length; k++) if (binOf[k]! >= 0) num[binOf[k]!]!++;

  const weight = new Float64Array(bins);
  let nonEmpty = 0;
  for (let i = 0; i < bins; i++) {
    if (num[i] === 0) continue;
    nonEmpty++;
    if (momentum > 0) {
      acc[i] = momentum * acc[i]! + (1 - momentum) * num[i]!;
      weight[i] = tot / acc[i]!;
    } else {
      weight[i] = tot / num[i]!;
    }
  }
  if (nonEmpty > 0) for (let i = 0; i < bins; i++) weight[i]! /= nonEmpty;
  return weight;
}

function checkGhmOptions(bins: number, momentum: number): void {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be ≥ 1, got ${bins}`);
  if (!(momentum >= 0 && momentum < 1)) {
    throw new RangeError(`momentum must be in [0, 1), got ${momentum}`);
  }
}

/**
 * GHM-C (SPEC §3). One object = one mmdetection GHMC module: `accSum` persists across forward
 * calls. Elements that are valid but fall in no bin (NaN g, from a NaN logit) count towards
 * `tot`, update no bin, and make the loss NaN (library decision: 0·NaN, as in PyTorch); their
 * gradient is not specified (the reference leaves it 0).
 */
export class RefGHMC {
  readonly bins: number;
  readonly momentum: number;
  readonly lossWeight: number;
  readonly edges: Float64Array;
  accSum: Float64Array;

  constructor({ bins = 10, momentum = 0, lossWeight = 1 }: RefGHMOptions = {}) {
    checkGhmOptions(bins, momentum);
    this.bins = bins;
    this.momentum = momentum;
    this.lossWeight = lossWeight;
    this.edges = ghmcEdges(bins);
    this.accSum = new Float64Array(bins);
  }

  forward(
    logits: Float32Array,
    targets: SigmoidTargets,
    labelWeight?: ArrayLike<number> | null,
  ): RefGHMResult {
    const numel = logits.length;
    const t = expandTargets(numel, targets);
    const lw = expandWeights(numel, targets, labelWeight);

    let validCount = 0;
    let nanValid = false;
    const binOf = new Int32Array(numel).fill(-1);
    for (let k = 0; k < numel; k++) {
      if (!(lw[k]! > 0)) continue;
      validCount++;
      const g = ghmcGradNorm(logits[k]!, t[k]!);
      if (Number.isNaN(g)) nanValid = true;
      binOf[k] = findBin(g, this.edges);
    }
    const tot = Math.max(validCount, 1);
    const weight = harmonizingWeights(binOf, this.bins, tot, this.momentum, this.accSum);

    const sum = new CompensatedSum();
    const grad = new Float64Array(numel);
    for (let k = 0; k < numel; k++) {
      const b = binOf[k]!;
      if (b < 0) continue;
      const x = logits[k]!;
      sum.add(weight[b]! * bceWithLogits(x, t[k]!));
      const pMinusT = sigmoidMinusTarget(sigmoid(x), sigmoid(-x), t[k]!);
      grad[k] = (this.lossWeight * weight[b]! * pMinusT) / tot;
    }
    if (nanValid) return { loss: NaN, grad };
    return { loss: (this.lossWeight * sum.value) / tot, grad };
  }
}

export interface RefGHMROptions extends RefGHMOptions {
  /** > 0; the ASL1 transition width. Default 0.02. */
  mu?: number;
}

/** GHM-R (SPEC §4), same state semantics as RefGHMC; tot is the SUM of label weights here. */
export class RefGHMR {
  readonly mu: number;
  readonly bins: number;
  readonly momentum: number;
  readonly lossWeight: number;
  readonly edges: Float64Array;
  accSum: Float64Array;

  constructor({ mu = 0.02, bins = 10, momentum = 0, lossWeight = 1 }: RefGHMROptions = {}) {
    checkGhmOptions(bins, momentum);
    this.mu = mu;
    this.bins = bins;
    this.momentum = momentum;
    this.lossWeight = lossWeight;
    this.edges = ghmrEdges(bins);
    this.accSum = new Float64Array(bins);
  }

  forward(
    pred: Float32Array,
    target: Float32Array,
    labelWeight?: ArrayLike<number> | null,
  ): RefGHMResult {
    const numel = pred.length;
    if (target.length !== numel) {
      throw new RangeError(`target length ${target.length} != pred length ${numel}`);
    }
    const lw = expandWeights(numel, target, labelWeight);
    const mu = this.mu;

    const weightSum = new CompensatedSum();
    let nanValid = false;
    const binOf = new Int32Array(numel).fill(-1);
    for (let k = 0; k < numel; k++) {
      weightSum.add(lw[k]!);
      if (!(lw[k]! > 0)) continue;
      const g = ghmrGradNorm(pred[k]! - target[k]!, mu);
      if (Number.isNaN(g)) nanValid = true;
      binOf[k] = findBin(g, this.edges);
    }
    const tot = Math.max(weightSum.value, 1);
    const weight = harmonizingWeights(binOf, this.bins, tot, this.momentum, this.accSum);

    const sum = new CompensatedSum();
    const grad = new Float64Array(numel);
    for (let k = 0; k < numel; k++) {
      const b = binOf[k]!;
      if (b < 0) continue;
      const d = pred[k]! - target[k]!; // exact: both are float32
      const root = Math.sqrt(d * d + mu * mu);
      // sqrt(d²+mu²) - mu rewritten as d²/(sqrt(d²+mu²)+mu): no cancellation for |d| << mu.
      sum.add(weight[b]! * ((d * d) / (root + mu)));
      grad[k] = (this.lossWeight * weight[b]! * d) / root / tot;
    }
    if (nanValid) return { loss: NaN, grad };
    return { loss: (this.lossWeight * sum.value) / tot, grad };
  }
}
