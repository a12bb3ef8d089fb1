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
  /**
   * Poly-1 ε (SPEC §6): adds w·ε·q^(γ+1) per element, q = 1 − p_t (no α on it). Default 0, which
   * adds nothing at all (the §1 numbers exactly).
   */
  poly1?: number;
}

export interface RefSigmoidFocalResult {
  /** Scalar for mean/sum; per element for none (length = logits length). */
  loss: number | Float64Array;
  grad: Float64Array;
  /** The α applied (resolved for 'auto'); null when alpha is disabled. */
  alphaUsed: number | null;
  /** Every element's loss, weights applied, before reduction and lossWeight. */
  units: Float64Array;
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

function sigmoidFocalElement(x: number, t: number, gamma: number, out: FocalElement, poly?: FocalElement, eps = 0): void {
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
  if (poly) {
    // SPEC §6: ε·pt^(γ+1), d/dx = ε(γ+1)·pt^γ·(1 − 2t)·p(1 − p).
    poly.loss = eps * Math.pow(pt, gamma + 1);
    poly.grad = eps * (gamma + 1) * modulator * dPt;
  }
}

export function refSigmoidFocal(
  logits: ArrayLike<number>,
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

  const eps = opts.poly1 ?? 0;
  const units = new Float64Array(numel);
  const grad = new Float64Array(numel);
  const el: FocalElement = { loss: 0, grad: 0 };
  const poly: FocalElement | undefined = eps !== 0 ? { loss: 0, grad: 0 } : undefined;
  for (let i = 0; i < numel; i++) {
    const ti = t[i]!;
    if (ignored[i]) continue; // ignored rows: exactly 0, whatever the logit
    const aw = alpha === null ? 1 : alpha * ti + (1 - alpha) * (1 - ti);
    sigmoidFocalElement(logits[i]!, ti, gamma, el, poly, eps);
    const factor = aw * w[i]!;
    units[i] = factor * el.loss;
    grad[i] = scale * factor * el.grad;
    if (poly) {
      // The element weight multiplies the Poly-1 term too; α does not (SPEC §6).
      units[i]! += w[i]! * poly.loss;
      grad[i]! += scale * w[i]! * poly.grad;
    }
  }
  // Elementwise losses carry lossWeight only when returned as they are; a reduced loss gets it
  // through `scale`, once.
  const losses = reduction === 'none' && lossWeight !== 1 ? units.map((v) => v * lossWeight) : units;
  return { loss: reduceLoss(losses, reduction, scale), grad, alphaUsed: alpha, units };
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
  /** Poly-1 ε (SPEC §6): adds w_i·ε·(1 − p_y)^(γ+1) per row (no α on it). Default 0. */
  poly1?: number;
}

export interface RefSoftmaxFocalResult {
  /** Scalar for mean/sum; per row for none (length N, 0 for ignored rows). */
  loss: number | Float64Array;
  grad: Float64Array;
  /** Every row's loss, row weight applied, before reduction and lossWeight (0 for ignored rows). */
  units: Float64Array;
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
  logits: ArrayLike<number>,
  offset: number,
  numClasses: number,
  y: number,
  ay: number,
  gamma: number,
  grad: Float64Array,
  eps = 0,
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
  // Poly-1 (SPEC §6): ε·q^(γ+1), whose derivative in x_j is −ε(γ+1)·q^γ·p_y·(δ_jy − p_j).
  const polyInner = eps === 0 ? 0 : eps * (gamma + 1) * modulator * py;
  for (let j = 0; j < numClasses; j++) {
    const deltaMinusP = j === y ? oneMinusPy : -Math.exp(logits[offset + j]! - lse);
    grad[offset + j] = -ay * deltaMinusP * inner - (eps === 0 ? 0 : polyInner * deltaMinusP);
  }
  const loss = -ay * modulator * logPy;
  return eps === 0 ? loss : loss + eps * Math.pow(oneMinusPy, gamma + 1);
}

export function refSoftmaxFocal(
  logits: ArrayLike<number>,
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
    losses[i] = softmaxFocalRow(logits, offset, numClasses, y, classAlpha(alpha, y), gamma, grad, opts.poly1 ?? 0);
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
  const units = losses.slice();
  if (reduction === 'none' && lossWeight !== 1) for (let i = 0; i < rows; i++) losses[i]! *= lossWeight;
  return { loss: reduceLoss(losses, reduction, scale), grad, units };
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

// ---------------------------------------------------------------------------------------------
// §6–9 and the softmax with soft targets: common reduction
// ---------------------------------------------------------------------------------------------

/** The options every loss of the family takes (mmdetection `weight_reduce_loss`, `loss_weight`). */
export interface RefFamilyOptions {
  reduction?: Reduction;
  avgFactor?: number | null;
  lossWeight?: number;
}

export interface RefFamilyResult {
  /** Scalar for mean/sum; per unit (row, or element for Varifocal) for none, times lossWeight. */
  loss: number | Float64Array;
  /** d loss / d logits, scaled as the reduction and lossWeight scale the loss. */
  grad: Float64Array;
  /** Every unit's loss, weights applied, before reduction and lossWeight. */
  units: Float64Array;
}

/**
 * Reduces `units` and scales `grad` (in place) by the reduction's factor and lossWeight. `count`
 * is the mean's divisor without avgFactor: as for the sigmoid loss, a mean over 0 units is NaN
 * (0/0) for the family (ts/family.ts divides by the unit count); the softmax passes max(rows, 1).
 */
function finishFamily(units: Float64Array, grad: Float64Array, count: number, o: RefFamilyOptions): RefFamilyResult {
  const reduction = o.reduction ?? 'mean';
  const lossWeight = o.lossWeight ?? 1;
  checkReduction(reduction);
  const scale = lossWeight * reductionScale(reduction, count, o.avgFactor);
  for (let k = 0; k < grad.length; k++) grad[k]! *= scale;
  const losses = reduction === 'none' ? units.map((v) => v * lossWeight) : units;
  return { loss: reduceLoss(losses, reduction, scale), grad, units };
}

/** σ(x) and 1 − σ(x) = σ(−x), both without cancellation, and softplus(−|x|) = log1p(e^−|x|). */
function sigmoidPair(x: number): { p: number; q: number; lp: number } {
  const e = Math.exp(-Math.abs(x));
  const big = 1 / (1 + e);
  const small = e / (1 + e);
  return x >= 0 ? { p: big, q: small, lp: Math.log1p(e) } : { p: small, q: big, lp: Math.log1p(e) };
}

function rowWeightOf(weight: ArrayLike<number> | null | undefined, rows: number, what: string): (i: number) => number {
  if (weight === null || weight === undefined) return () => 1;
  if (weight.length !== rows) throw new RangeError(`${what}: weight length ${weight.length} != ${rows}`);
  return (i) => weight[i]!;
}

// ---------------------------------------------------------------------------------------------
// §7 Quality Focal Loss
// ---------------------------------------------------------------------------------------------

export interface RefQualityTargets {
  labels: Int32Array;
  scores: ArrayLike<number>;
  numClasses: number;
}

export interface RefQualityFocalOptions extends RefFamilyOptions {
  /** β ≥ 0 of |y − σ|^β. Default 2. */
  beta?: number;
  /** Per row (length N). */
  weight?: ArrayLike<number> | null;
}

/**
 * One element of QFL (SPEC §7): loss bce(x, y)·|y − σ|^β and its derivative
 * (σ − y)·|y − σ|^β + bce·β|y − σ|^(β−1)·sign(σ − y)·σ(1 − σ), whose second term is 0 where
 * y = σ (and for β = 0). σ − y is formed as σ(1 − y) − (1 − σ)y: exact σ for y = 0 and
 * −σ(−x) for y = 1.
 */
export function qualityFocalElement(x: number, y: number, beta: number): { loss: number; grad: number } {
  const { p, q, lp } = sigmoidPair(x);
  const bce = Math.max(x, 0) - x * y + lp;
  const d = p * (1 - y) - q * y;
  const ad = Math.abs(d);
  const mod = Math.pow(ad, beta); // 0^0 = 1
  const second = ad === 0 || beta === 0 ? 0 : bce * beta * Math.pow(ad, beta - 1) * Math.sign(d) * p * q;
  return { loss: bce * mod, grad: d * mod + second };
}

export function refQualityFocal(logits: ArrayLike<number>, targets: RefQualityTargets, opts: RefQualityFocalOptions = {}): RefFamilyResult {
  const { labels, scores, numClasses: c } = targets;
  const beta = opts.beta ?? 2;
  checkGamma(beta);
  checkLabels(labels, c, logits.length);
  const rows = labels.length;
  if (scores.length !== rows) throw new RangeError(`scores length ${scores.length} != rows ${rows}`);
  const wOf = rowWeightOf(opts.weight, rows, 'QFL');
  const units = new Float64Array(rows);
  const grad = new Float64Array(logits.length);
  for (let i = 0; i < rows; i++) {
    const l = labels[i]!;
    if (l < 0 || l > c) throw new RangeError(`labels[${i}] = ${l} outside [0, ${c}]`);
    const s = scores[i]!;
    const w = wOf(i);
    const row = new CompensatedSum();
    for (let j = 0; j < c; j++) {
      const k = i * c + j;
      const e = qualityFocalElement(logits[k]!, j === l ? s : 0, beta);
      row.add(e.loss);
      grad[k] = w * e.grad;
    }
    units[i] = w * row.value;
  }
  return finishFamily(units, grad, rows, opts);
}

// ---------------------------------------------------------------------------------------------
// §8 Varifocal Loss
// ---------------------------------------------------------------------------------------------

export interface RefVarifocalOptions extends RefFamilyOptions {
  /** Default 0.75. */
  alpha?: number;
  /** Default 2. */
  gamma?: number;
  /** Default true. */
  iouWeighted?: boolean;
  /** Per element. */
  weight?: ArrayLike<number> | null;
}

/**
 * One element of VFL (SPEC §8): bce(x, q)·w with w = q (iouWeighted) or 1 where q > 0, and
 * α·|σ − q|^γ where q ≤ 0; gradient (σ − q)·w + bce·dw/dx, dw/dx = αγ|σ − q|^(γ−1)·sign(σ − q)·σ(1 − σ)
 * for q ≤ 0 (0 where σ = q, and for γ = 0).
 */
export function varifocalElement(x: number, t: number, alpha: number, gamma: number, iouWeighted: boolean): { loss: number; grad: number } {
  const { p, q, lp } = sigmoidPair(x);
  const bce = Math.max(x, 0) - x * t + lp;
  const d = p * (1 - t) - q * t;
  if (t > 0) {
    const w = iouWeighted ? t : 1;
    return { loss: bce * w, grad: d * w };
  }
  const ad = Math.abs(d);
  const w = alpha * Math.pow(ad, gamma);
  const dw = ad === 0 || gamma === 0 ? 0 : alpha * gamma * Math.pow(ad, gamma - 1) * Math.sign(d) * p * q;
  return { loss: bce * w, grad: d * w + bce * dw };
}

export function refVarifocal(logits: ArrayLike<number>, targets: ArrayLike<number>, opts: RefVarifocalOptions = {}): RefFamilyResult {
  const alpha = opts.alpha ?? 0.75;
  const gamma = opts.gamma ?? 2;
  const iou = opts.iouWeighted ?? true;
  checkGamma(gamma);
  const n = logits.length;
  if (targets.length !== n) throw new RangeError(`targets length ${targets.length} != logits length ${n}`);
  const wOf = rowWeightOf(opts.weight, n, 'VFL');
  const units = new Float64Array(n);
  const grad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = varifocalElement(logits[i]!, targets[i]!, alpha, gamma, iou);
    const w = wOf(i);
    units[i] = w * e.loss;
    grad[i] = w * e.grad;
  }
  return finishFamily(units, grad, n, opts);
}

// ---------------------------------------------------------------------------------------------
// §9 Distribution Focal Loss
// ---------------------------------------------------------------------------------------------

export interface RefDistributionFocalOptions extends RefFamilyOptions {
  /** n: rows hold n + 1 logits. Default: logits length / targets length − 1. */
  bins?: number;
  /** Per row. */
  weight?: ArrayLike<number> | null;
}

/** log Σ exp(x_j) over a row, shifted by its max. */
function logSumExp(x: ArrayLike<number>, offset: number, c: number): number {
  let max = -Infinity;
  for (let j = 0; j < c; j++) max = Math.max(max, x[offset + j]!);
  let s = 0;
  for (let j = 0; j < c; j++) s += Math.exp(x[offset + j]! - max);
  return max + Math.log(s);
}

export function refDistributionFocal(logits: ArrayLike<number>, targets: ArrayLike<number>, opts: RefDistributionFocalOptions = {}): RefFamilyResult {
  const rows = targets.length;
  const bins = opts.bins ?? logits.length / rows - 1;
  const c = bins + 1;
  if (!Number.isInteger(bins) || bins < 1 || rows * c !== logits.length) {
    throw new RangeError(`logits length ${logits.length} is not ${rows} rows of bins + 1 = ${c}`);
  }
  const wOf = rowWeightOf(opts.weight, rows, 'DFL');
  const units = new Float64Array(rows);
  const grad = new Float64Array(logits.length);
  for (let i = 0; i < rows; i++) {
    const y = targets[i]!;
    if (!(y >= 0 && y < bins)) throw new RangeError(`targets[${i}] = ${y} outside [0, ${bins})`);
    const l = Math.floor(y);
    const r = l + 1;
    const wl = r - y;
    const wr = y - l;
    const o = i * c;
    const lse = logSumExp(logits, o, c);
    const w = wOf(i);
    units[i] = w * (wl * (lse - logits[o + l]!) + wr * (lse - logits[o + r]!));
    for (let j = 0; j < c; j++) {
      const p = Math.exp(logits[o + j]! - lse);
      grad[o + j] = w * (p - (j === l ? wl : 0) - (j === r ? wr : 0));
    }
  }
  return finishFamily(units, grad, rows, opts);
}

// ---------------------------------------------------------------------------------------------
// §2 Softmax focal loss with soft targets (class probabilities, or smoothed labels)
// ---------------------------------------------------------------------------------------------

/** Labels smoothed as PyTorch's cross_entropy(label_smoothing=ε): t = (1 − ε)·onehot + ε/C. */
export interface RefSmoothedLabels {
  labels: Int32Array;
  smoothing: number;
  /** Rows with this label give 0 and are not counted. Default -100. */
  ignoreIndex?: number;
}

export interface RefSoftmaxSoftOptions extends RefFamilyOptions {
  numClasses: number;
  /** One α, per class (length C), or null (1). Default 0.25. */
  alpha?: number | ArrayLike<number> | null;
  gamma?: number;
  /** Per row. */
  weight?: ArrayLike<number> | null;
}

/**
 * loss_i = −Σ_j α_j t_ij (1 − p_ij)^γ log p_ij, times the row weight. With
 * g_j = (1 − p_j)^γ − γ(1 − p_j)^(γ−1)·p_j·log p_j, d loss_i/dx_k = −α_k t_k g_k + p_k·Σ_j α_j t_j g_j.
 * Each 1 − p_j is the sum of the other classes' probabilities (prefix and suffix sums), accurate
 * when p_j is close to 1; terms with t_j = 0 are left out (their log p_j may be −∞ in the limit).
 * `targets`: probability rows [N, C] (every row counted), or smoothed labels (ignored rows 0,
 * left out of the mean's count).
 */
export function refSoftmaxSoft(logits: ArrayLike<number>, targets: ArrayLike<number> | RefSmoothedLabels, opts: RefSoftmaxSoftOptions): RefFamilyResult {
  const c = opts.numClasses;
  const gamma = opts.gamma ?? 2;
  checkGamma(gamma);
  const alpha = opts.alpha === undefined ? 0.25 : opts.alpha;
  if (!Number.isInteger(c) || c < 1 || logits.length % c !== 0) throw new RangeError(`numClasses ${c} does not divide ${logits.length}`);
  const rows = logits.length / c;
  const smoothed = !('length' in targets) ? targets : undefined;
  const probs = smoothed ? undefined : (targets as ArrayLike<number>);
  if (probs && probs.length !== logits.length) throw new RangeError(`targets length ${probs.length} != logits length ${logits.length}`);
  if (smoothed && smoothed.labels.length !== rows) throw new RangeError(`labels length ${smoothed.labels.length} != rows ${rows}`);
  const ignoreIndex = smoothed?.ignoreIndex ?? -100;
  const wOf = rowWeightOf(opts.weight, rows, 'softmax');
  const units = new Float64Array(rows);
  const grad = new Float64Array(logits.length);
  const t = new Float64Array(c);
  const e = new Float64Array(c);
  const prefix = new Float64Array(c + 1);
  const g = new Float64Array(c);
  let counted = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * c;
    if (smoothed) {
      const y = smoothed.labels[i]!;
      if (y === ignoreIndex) continue;
      if (y < 0 || y >= c) throw new RangeError(`labels[${i}] = ${y} outside [0, ${c})`);
      const eps = smoothed.smoothing;
      for (let j = 0; j < c; j++) t[j] = (j === y ? 1 - eps : 0) + eps / c;
    } else {
      for (let j = 0; j < c; j++) t[j] = probs![o + j]!;
    }
    counted++;
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, logits[o + j]!);
    for (let j = 0; j < c; j++) {
      e[j] = Math.exp(logits[o + j]! - max);
      prefix[j + 1] = prefix[j]! + e[j]!;
    }
    const sum = prefix[c]!;
    const lse = max + Math.log(sum);
    // Suffix sums from the right, so that each "others" sum adds positive terms only.
    let suffix = 0;
    const others = new Float64Array(c);
    for (let j = c - 1; j >= 0; j--) {
      others[j] = prefix[j]! + suffix;
      suffix += e[j]!;
    }
    let loss = 0;
    let a = 0;
    for (let j = 0; j < c; j++) {
      if (t[j] === 0) {
        g[j] = 0;
        continue;
      }
      const aj = classAlpha(alpha, j);
      const logp = logits[o + j]! - lse;
      const p = e[j]! / sum;
      const om = others[j]! / sum;
      const mod = Math.pow(om, gamma);
      const second = om === 0 && gamma < 1 ? 0 : gamma * Math.pow(om, gamma - 1) * p * logp;
      g[j] = mod - second;
      loss -= aj * t[j]! * mod * logp;
      a += aj * t[j]! * g[j]!;
    }
    const w = wOf(i);
    units[i] = w * loss;
    for (let k = 0; k < c; k++) {
      const gk = t[k] === 0 ? 0 : classAlpha(alpha, k) * t[k]! * g[k]!;
      grad[o + k] = w * (-gk + (e[k]! / sum) * a);
    }
  }
  return finishFamily(units, grad, smoothed ? Math.max(counted, 1) : Math.max(rows, 1), opts);
}
