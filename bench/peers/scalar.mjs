// Scalar JavaScript peers: what a competent JS developer would write by hand.
// One loop, Float32Array in, float64 arithmetic and accumulation, Math.exp / Math.log1p.
// Definitions: docs/SPEC.md §1 (sigmoid focal loss) and §3 (GHM-C).
//
// They are deliberately honest baselines, not strawmen: one Math.exp per element (shared by the
// sigmoid and the stable BCE), the γ = 2 square special-cased, no allocation in the hot loop.

// ---------------------------------------------------------------------------------------------
// Sigmoid focal loss (SPEC §1), binary Uint8Array targets, no element weights, reduction 'mean'.
// ---------------------------------------------------------------------------------------------

/** Mean sigmoid focal loss. `alpha` a number in [0, 1] or null (disabled); `gamma` ≥ 0. */
export function sigmoidFocalForward(logits, targets, alpha = 0.25, gamma = 2) {
  const n = logits.length;
  const a1 = alpha == null ? 1 : alpha; // weight of positives
  const a0 = alpha == null ? 1 : 1 - alpha; // weight of negatives
  const sq = gamma === 2;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const e = Math.exp(-Math.abs(x)); // in (0, 1]
    const inv = 1 / (1 + e);
    const p = x >= 0 ? inv : e * inv; // sigmoid(x), stable both sides
    const sp = (x > 0 ? x : 0) + Math.log1p(e); // softplus(x)
    let l;
    if (targets[i]) {
      const pt = 1 - p;
      l = a1 * (sq ? pt * pt : Math.pow(pt, gamma)) * (sp - x); // bce = softplus(x) - x
    } else {
      l = a0 * (sq ? p * p : Math.pow(p, gamma)) * sp; // bce = softplus(x)
    }
    sum += l;
  }
  return n > 0 ? sum / n : 0;
}

/**
 * Mean sigmoid focal loss and its gradient (SPEC §1, scaled by 1/n like the loss), written into
 * `gradOut` (Float32Array of the same length). Returns the mean loss.
 *
 *   d loss/dx = aw · ( γ·pt^(γ-1) · p(1-p)(1-2t) · bce + pt^γ · (p - t) ) / n
 */
export function sigmoidFocalForwardBackward(logits, targets, alpha = 0.25, gamma = 2, gradOut) {
  const n = logits.length;
  if (!gradOut || gradOut.length !== n) throw new Error('gradOut must have the length of logits');
  const a1 = alpha == null ? 1 : alpha;
  const a0 = alpha == null ? 1 : 1 - alpha;
  const sq = gamma === 2;
  const invN = n > 0 ? 1 / n : 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const e = Math.exp(-Math.abs(x));
    const inv = 1 / (1 + e);
    const p = x >= 0 ? inv : e * inv;
    const dp = e * inv * inv; // p(1-p), without cancellation
    const sp = (x > 0 ? x : 0) + Math.log1p(e);
    let l, g;
    if (targets[i]) {
      // t = 1: pt = 1-p, bce = softplus(x) - x, (1-2t) = -1, p - t = p - 1 = -pt
      const pt = 1 - p;
      const bce = sp - x;
      const ptg = sq ? pt * pt : Math.pow(pt, gamma);
      const d1 = pt > 0 ? (sq ? 2 * pt : gamma * Math.pow(pt, gamma - 1)) : 0;
      l = a1 * ptg * bce;
      g = a1 * (-d1 * dp * bce - ptg * pt);
    } else {
      // t = 0: pt = p, bce = softplus(x), (1-2t) = 1, p - t = p
      const pt = p;
      const ptg = sq ? pt * pt : Math.pow(pt, gamma);
      const d1 = pt > 0 ? (sq ? 2 * pt : gamma * Math.pow(pt, gamma - 1)) : 0;
      l = a0 * ptg * sp;
      g = a0 * (d1 * dp * sp + ptg * pt);
    }
    sum += l;
    gradOut[i] = g * invN;
  }
  return sum * invN;
}

/** Float64 reference sum of the focal loss with Neumaier (Kahan–Babuška) compensation. */
export function sigmoidFocalSumKahan(logits, targets, alpha = 0.25, gamma = 2) {
  const n = logits.length;
  const a1 = alpha == null ? 1 : alpha;
  const a0 = alpha == null ? 1 : 1 - alpha;
  let sum = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const e = Math.exp(-Math.abs(x));
    const inv = 1 / (1 + e);
    const p = x >= 0 ? inv : e * inv;
    const sp = (x > 0 ? x : 0) + Math.log1p(e);
    let l;
    if (targets[i]) {
      const pt = 1 - p;
      l = a1 * Math.pow(pt, gamma) * (sp - x);
    } else {
      l = a0 * Math.pow(p, gamma) * sp;
    }
    const s = sum + l;
    if (Math.abs(sum) >= Math.abs(l)) c += sum - s + l;
    else c += l - s + sum;
    sum = s;
  }
  return sum + c;
}

// ---------------------------------------------------------------------------------------------
// GHM-C (SPEC §3; mmdetection GHMC)
// ---------------------------------------------------------------------------------------------

/**
 * The GHM-C loss object's state: options, the float32 edges and the EMA accumulator `acc`.
 * edges = float32(i / bins), then edges[bins] += 1e-6 (as float32).
 */
export function createGhmcState({ bins = 10, momentum = 0, lossWeight = 1 } = {}) {
  const edges = new Float32Array(bins + 1);
  for (let i = 0; i <= bins; i++) edges[i] = i / bins;
  edges[bins] = edges[bins] + 1e-6; // Float32Array store rounds to float32
  return { bins, momentum, lossWeight, edges, acc: new Float64Array(bins) };
}

/**
 * mmdetection's GHMC.forward, followed literally:
 *
 *     g = |sigmoid(pred) - target|;  valid = label_weight > 0;  tot = max(valid.sum(), 1)
 *     for i in range(bins):
 *         inds = (g >= edges[i]) & (g < edges[i+1]) & valid
 *         num_in_bin = inds.sum()
 *         if num_in_bin > 0:
 *             acc_sum[i] = mmt*acc_sum[i] + (1-mmt)*num_in_bin ; weights[inds] = tot/acc_sum[i]
 *             (or tot/num_in_bin when mmt = 0);  n += 1
 *     if n > 0: weights /= n
 *     loss = sum(BCE(pred, target) * weights) / tot * loss_weight
 *
 * i.e. a g pass, then per bin a full mask pass + a weight-assignment pass, then a BCE pass.
 * `labelWeight` may be undefined (all valid). Returns the loss.
 */
export function ghmcMmdetStyle(state, logits, targets, labelWeight) {
  const n = logits.length;
  const { bins, momentum: mmt, edges, acc, lossWeight } = state;
  // g = |sigmoid(pred) - target|, valid = label_weight > 0
  const g = new Float64Array(n);
  const valid = new Uint8Array(n);
  let validCount = 0;
  for (let i = 0; i < n; i++) {
    g[i] = Math.abs(1 / (1 + Math.exp(-logits[i])) - targets[i]);
    const v = labelWeight === undefined || labelWeight === null || labelWeight[i] > 0 ? 1 : 0;
    valid[i] = v;
    validCount += v;
  }
  const tot = Math.max(validCount, 1);
  const weights = new Float64Array(n); // torch.zeros_like(pred)
  const inds = new Uint8Array(n);
  let nonEmpty = 0;
  for (let b = 0; b < bins; b++) {
    const lo = edges[b];
    const hi = edges[b + 1];
    let num = 0;
    for (let i = 0; i < n; i++) {
      const m = g[i] >= lo && g[i] < hi && valid[i] === 1 ? 1 : 0;
      inds[i] = m;
      num += m;
    }
    if (num > 0) {
      let w;
      if (mmt > 0) {
        acc[b] = mmt * acc[b] + (1 - mmt) * num;
        w = tot / acc[b];
      } else {
        w = tot / num;
      }
      for (let i = 0; i < n; i++) if (inds[i]) weights[i] = w;
      nonEmpty++;
    }
  }
  if (nonEmpty > 0) for (let i = 0; i < n; i++) weights[i] /= nonEmpty;
  // F.binary_cross_entropy_with_logits(pred, target, reduction='none'), weighted, sum / tot
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const bce = Math.max(x, 0) - x * targets[i] + Math.log1p(Math.exp(-Math.abs(x)));
    sum += bce * weights[i];
  }
  return (sum / tot) * lossWeight;
}

/**
 * Single-pass scalar GHM-C: per element compute the bin and the BCE once, accumulate per-bin
 * (count, Σ bce), then combine (SPEC §3: loss = lossWeight/(n·tot) · Σ_i w_i · S_i).
 * `targets` any numeric array of 0/1; `labelWeight` may be undefined (all valid). Returns the loss.
 */
export function ghmcSinglePass(state, logits, targets, labelWeight) {
  const n = logits.length;
  const { bins, momentum: mmt, edges, acc, lossWeight } = state;
  const counts = new Float64Array(bins);
  const sums = new Float64Array(bins);
  const last = bins - 1;
  const hasLw = labelWeight !== undefined && labelWeight !== null;
  let validCount = 0;
  for (let i = 0; i < n; i++) {
    if (hasLw && !(labelWeight[i] > 0)) continue;
    const x = logits[i];
    const t = targets[i];
    const e = Math.exp(-Math.abs(x));
    const inv = 1 / (1 + e);
    const p = x >= 0 ? inv : e * inv;
    const bce = (x > 0 ? x : 0) - x * t + Math.log1p(e);
    const g = Math.abs(p - t);
    // Estimate the bin, then settle it against the float32 edges (edges[b] <= g < edges[b+1]).
    let b = (g * bins) | 0;
    if (b > last) b = last;
    while (b > 0 && g < edges[b]) b--;
    while (b < last && g >= edges[b + 1]) b++;
    counts[b] += 1;
    sums[b] += bce;
    validCount++;
  }
  if (validCount === 0) return 0; // no valid element: state unchanged, loss 0
  const tot = validCount; // = max(validCount, 1)
  let nonEmpty = 0;
  let total = 0;
  for (let b = 0; b < bins; b++) {
    const num = counts[b];
    if (num > 0) {
      let w;
      if (mmt > 0) {
        acc[b] = mmt * acc[b] + (1 - mmt) * num;
        w = tot / acc[b];
      } else {
        w = tot / num;
      }
      total += w * sums[b];
      nonEmpty++;
    }
  }
  return (lossWeight * total) / (nonEmpty * tot);
}

// ---------------------------------------------------------------------------------------------
// Issue #20 options, as a user would write them: binary targets, reduction 'mean'.
// ---------------------------------------------------------------------------------------------

/** Mean sigmoid focal loss on probabilities, PyTorch's BCE (logs clamped at -100). */
export function sigmoidFocalProbForward(probs, targets, alpha = 0.25, gamma = 2) {
  const n = probs.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = probs[i];
    const t = targets[i];
    const bce = -(t * Math.max(Math.log(p), -100) + (1 - t) * Math.max(Math.log1p(-p), -100));
    const pt = (1 - p) * t + p * (1 - t);
    sum += (alpha * t + (1 - alpha) * (1 - t)) * (gamma === 2 ? pt * pt : Math.pow(pt, gamma)) * bce;
  }
  return n > 0 ? sum / n : 0;
}

/** Mean sigmoid focal loss on logits with Keras' label smoothing ε. */
export function sigmoidFocalSmoothForward(logits, targets, eps, alpha = 0.25, gamma = 2) {
  const n = logits.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const t = targets[i] * (1 - eps) + eps / 2;
    const e = Math.exp(-Math.abs(x));
    const inv = 1 / (1 + e);
    const p = x >= 0 ? inv : e * inv;
    const bce = (x > 0 ? x : 0) - x * t + Math.log1p(e);
    const pt = (1 - p) * t + p * (1 - t);
    sum += (alpha * t + (1 - alpha) * (1 - t)) * (gamma === 2 ? pt * pt : Math.pow(pt, gamma)) * bce;
  }
  return n > 0 ? sum / n : 0;
}

/**
 * GHM-C per-element terms (reduction 'none', momentum 0, SPEC §3), binary targets: a pass that
 * bins g = |σ(x) − t| and keeps each BCE, then one that weights them.
 */
export function ghmcTerms(logits, targets, bins = 10, out = new Float32Array(logits.length)) {
  const n = logits.length;
  const bin = new Int32Array(n);
  const num = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const e = Math.exp(-Math.abs(x));
    const p = x >= 0 ? 1 / (1 + e) : e / (1 + e);
    const t = targets[i];
    const g = Math.abs(p - t);
    const k = Math.min(bins - 1, Math.floor(g * bins));
    bin[i] = k;
    num[k]++;
    out[i] = (x > 0 ? x : 0) - x * t + Math.log1p(e);
  }
  let nonEmpty = 0;
  for (let k = 0; k < bins; k++) if (num[k] > 0) nonEmpty++;
  const tot = Math.max(n, 1);
  for (let i = 0; i < n; i++) out[i] *= tot / num[bin[i]] / nonEmpty / tot;
  return out;
}

/** Softmax focal loss with per-row weights, mean over non-ignored rows, the plain way (SPEC §2). */
export function softmaxFocalWeighted(logits, labels, c, weight, alpha = 0.25, gamma = 2, ignoreIndex = -100) {
  let sum = 0;
  let count = 0;
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r];
    if (y === ignoreIndex) continue;
    count++;
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[r * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[r * c + j] - m);
    const logp = logits[r * c + y] - m - Math.log(s);
    const omp = 1 - Math.exp(logp);
    sum += -alpha * weight[r] * (gamma === 2 ? omp * omp : Math.pow(omp, gamma)) * logp;
  }
  return sum / Math.max(count, 1);
}

/** kornia's binary focal loss with per-class weight and pos_weight, targets [N, C], mean (SPEC §1). */
export function sigmoidFocalClassWeighted(logits, targets, v, q, alpha = 0.25, gamma = 2) {
  const n = logits.length;
  const c = v.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const t = targets[i];
    const e = Math.exp(-Math.abs(x));
    const p = x >= 0 ? 1 / (1 + e) : e / (1 + e);
    const logPos = -(Math.max(-x, 0) + Math.log1p(e));
    const logNeg = -(Math.max(x, 0) + Math.log1p(e));
    const pos = -alpha * (gamma === 2 ? (1 - p) * (1 - p) : Math.pow(1 - p, gamma)) * t * logPos;
    const neg = -(1 - alpha) * (gamma === 2 ? p * p : Math.pow(p, gamma)) * (1 - t) * logNeg;
    sum += v[i % c] * (q[i % c] * pos + neg);
  }
  return n > 0 ? sum / n : 0;
}

/** `[B, C, …]` logits to class-last rows `[B·…, C]`: the full transposed copy a user would make. */
export function toClassLast(x, outer, c, inner) {
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) for (let j = 0; j < c; j++) for (let i = 0; i < inner; i++) out[(o * inner + i) * c + j] = x[(o * c + j) * inner + i];
  return out;
}

/** Class-last rows `[B·…, C]` back to `[B, C, …]` (the gradient, after a call on the copy). */
export function fromClassLast(x, outer, c, inner) {
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) for (let j = 0; j < c; j++) for (let i = 0; i < inner; i++) out[(o * c + j) * inner + i] = x[(o * inner + i) * c + j];
  return out;
}

// ---------------------------------------------------------------------------------------------
// The focal family (SPEC §6–9), each with an optional gradient (`grad`: a Float32Array of the
// logits' length, scaled like the loss), reduction 'mean' as mmdetection's defaults.
// ---------------------------------------------------------------------------------------------

/** Softplus and sigmoid of x from one Math.exp. */
function spSig(x) {
  const e = Math.exp(-Math.abs(x));
  const inv = 1 / (1 + e);
  return [(x > 0 ? x : 0) + Math.log1p(e), x >= 0 ? inv : e * inv];
}

/** Quality Focal Loss (§7), β = 2, mean over rows: labels [N] (C = background), scores [N]. */
export function qualityFocal(logits, labels, scores, c, grad) {
  const rows = labels.length;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      const i = r * c + j;
      const x = logits[i];
      const y = labels[r] === j ? scores[r] : 0;
      const [sp, p] = spSig(x);
      const bce = sp - x * y;
      const d = p - y; // |y − σ|² = d²
      sum += bce * d * d;
      if (grad) grad[i] = (d * d * d + bce * 2 * d * p * (1 - p)) / rows;
    }
  }
  return sum / rows;
}

/** Varifocal Loss (§8), α 0.75, γ 2, IoU-weighted, mean over elements. */
export function varifocal(logits, q, grad, alpha = 0.75) {
  const n = logits.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const t = q[i];
    const [sp, p] = spSig(x);
    const bce = sp - x * t;
    const d = p - t;
    const w = t > 0 ? t : alpha * d * d;
    sum += bce * w;
    if (grad) grad[i] = (d * w + (t > 0 ? 0 : bce * alpha * 2 * d * p * (1 - p))) / n;
  }
  return sum / n;
}

/** Distribution Focal Loss (§9), mean over rows: logits [N, n + 1], targets y [N] in [0, n). */
export function distributionFocal(logits, y, c, grad) {
  const rows = y.length;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * c;
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[o + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[o + j] - m);
    const lse = m + Math.log(s);
    const l = Math.floor(y[r]);
    const wl = l + 1 - y[r];
    const wr = y[r] - l;
    sum += wl * (lse - logits[o + l]) + wr * (lse - logits[o + l + 1]);
    if (grad) {
      for (let j = 0; j < c; j++) grad[o + j] = Math.exp(logits[o + j] - lse) / rows;
      grad[o + l] -= wl / rows;
      grad[o + l + 1] -= wr / rows;
    }
  }
  return sum / rows;
}

/** Poly-1 sigmoid focal loss (§6), binary targets, α 0.25, γ 2, mean. */
export function poly1SigmoidFocal(logits, targets, eps) {
  const n = logits.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const [sp, p] = spSig(x);
    const t = targets[i];
    const q = t ? 1 - p : p;
    sum += (t ? 0.25 : 0.75) * q * q * (sp - x * t) + eps * q * q * q;
  }
  return sum / n;
}

/**
 * Softmax focal loss with soft target rows (SPEC §2, soft targets), mean over rows: `t` a
 * [N, C] probability matrix, or labels smoothed by `eps` when `t` is an Int32Array.
 */
export function softmaxFocalSoft(logits, t, c, eps = 0, alpha = 0.25, gamma = 2) {
  const rows = logits.length / c;
  const smoothed = t instanceof Int32Array;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * c;
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[o + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[o + j] - m);
    const ls = Math.log(s);
    for (let j = 0; j < c; j++) {
      const tj = smoothed ? (t[r] === j ? 1 - eps : 0) + eps / c : t[o + j];
      if (tj === 0) continue;
      const logp = logits[o + j] - m - ls;
      const omp = 1 - Math.exp(logp);
      sum += -alpha * tj * (gamma === 2 ? omp * omp : Math.pow(omp, gamma)) * logp;
    }
  }
  return sum / rows;
}
