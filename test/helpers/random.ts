/**
 * Deterministic input generators for the property tests. fast-check draws small "case specs"
 * (sizes, option values, a seed); the arrays themselves come from a seeded PRNG, so large inputs
 * are cheap to build and every failure reproduces from the printed spec.
 */

import { ghmcEdges, ghmcGradNorm, ghmrEdges, ghmrGradNorm } from './reference';

/** Uniform [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * fast-check parameters: fixed seeds, so that the suite is deterministic. For a longer bug hunt
 * set PROPERTY_RUNS_SCALE (e.g. 20) and PROPERTY_SEED (any integer, or 'random').
 */
export function runs(numRuns: number, seed: number): { numRuns: number; seed?: number } {
  const scale = Number(process.env.PROPERTY_RUNS_SCALE ?? 1);
  const envSeed = process.env.PROPERTY_SEED;
  const n = Math.max(1, Math.round(numRuns * scale));
  if (envSeed === 'random') return { numRuns: n };
  return { numRuns: n, seed: envSeed === undefined ? seed : seed ^ Number(envSeed) };
}

/** Roughly normal (Irwin–Hall of 4), scaled so most mass sits in [-10, 10]. */
function normalish(r: () => number, scale: number): number {
  return (r() + r() + r() + r() - 2) * scale;
}

export type LogitMix = 'moderate' | 'mixed' | 'extreme' | 'tiny';
export const LOGIT_MIXES: LogitMix[] = ['moderate', 'mixed', 'extreme', 'tiny'];

const SUBNORMALS = [1e-40, -3e-42, 1.4e-45, -1e-39, 5e-44];
const EXTREMES = [88, -88, 1e4, -1e4, 87.5, -87.9];

/**
 * Logits from a mixture: normal-ish in [-10, 10]; extremes ±88 and ±1e4; subnormals (1e-40,
 * -3e-42, ...); exact ±0. 'moderate' has only the first, 'extreme' is half extremes.
 */
export function logits(n: number, seed: number, mix: LogitMix = 'mixed'): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  const [pExt, pSub, pZero] =
    mix === 'moderate' ? [0, 0, 0] : mix === 'mixed' ? [0.08, 0.06, 0.06] : mix === 'extreme' ? [0.5, 0.1, 0.1] : [0.02, 0.3, 0.3];
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < pExt) x[i] = EXTREMES[Math.floor(r() * EXTREMES.length)]!;
    else if (u < pExt + pSub) x[i] = SUBNORMALS[Math.floor(r() * SUBNORMALS.length)]!;
    else if (u < pExt + pSub + pZero) x[i] = r() < 0.5 ? 0 : -0;
    else x[i] = Math.max(-10, Math.min(10, normalish(r, mix === 'tiny' ? 0.5 : 5)));
  }
  return x;
}

/** Uniform logits in [lo, hi]. */
export function uniformLogits(n: number, seed: number, lo: number, hi: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export function binaryTargets(n: number, seed: number, pPos = 0.3): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => (r() < pPos ? 1 : 0));
}

/** Soft targets in [0, 1], with exact 0, 1 and 0.5 mixed in. */
export function softTargets(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    return u < 0.15 ? 0 : u < 0.3 ? 1 : u < 0.4 ? 0.5 : r();
  });
}

/** Class indices in [0, numClasses]; numClasses (background) with probability pBackground. */
export function sigmoidLabels(rows: number, numClasses: number, seed: number, pBackground = 0.4): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: rows }, () => (r() < pBackground ? numClasses : Math.floor(r() * numClasses)));
}

/** Class indices in [0, numClasses), or ignoreIndex with probability pIgnore. */
export function softmaxLabels(rows: number, numClasses: number, seed: number, ignoreIndex: number, pIgnore: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: rows }, () => (r() < pIgnore ? ignoreIndex : Math.floor(r() * numClasses)));
}

/** Non-negative weights in [0.1, 3], a share pZero of exact zeros. */
export function weights(n: number, seed: number, pZero = 0.2): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < pZero ? 0 : 0.1 + 2.9 * r()));
}

/** Concatenation of typed arrays of one kind. */
export function concat<T extends Float32Array | Uint8Array | Int32Array>(a: T, b: T): T {
  const out = new (a.constructor as new (n: number) => T)(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// GHM bin edges
// ---------------------------------------------------------------------------------------------

/**
 * The kernels compute g in float32 (from an approximate float32 exp), the oracle in float64.
 * Where g lies within float32 rounding of an interior bin edge the two may honestly pick
 * different bins, and then counts and EMA state differ. (Observed: on 10^6 raw mixed logits a
 * few elements per bin count land differently, all with |g - edge| < 1e-5; none farther out.)
 * As the golden data does (SPEC §5), the inputs are kept at least 1e-5 away from every interior
 * edge: such logits are nudged by 0.01 until clear. g = 0, 0.5 and 1 exactly (in float64) are
 * exact in float32 too and left alone — e.g. x = ±0 or a subnormal with a binary target.
 */
export const EDGE_MARGIN = 1e-5;

function nearInteriorEdge(g: number, edges: Float64Array): boolean {
  const bins = edges.length - 1;
  // Interior edges are float32(i / bins), i = 1..bins-1: only the ones around g·bins can be near.
  const k = Math.round(g * bins);
  for (let i = Math.max(1, k - 1); i <= Math.min(bins - 1, k + 1); i++) {
    if (Math.abs(g - edges[i]!) < EDGE_MARGIN) return true;
  }
  return false;
}

/** Nudges logits in place so that no valid element's g = |σ(x) - t| sits near an edge. Returns the count moved. */
export function clearGhmcEdges(x: Float32Array, target: (k: number) => number, bins: number): number {
  const edges = ghmcEdges(bins);
  let moved = 0;
  for (let k = 0; k < x.length; k++) {
    const t = target(k);
    if (Number.isNaN(x[k]!)) continue;
    let guard = 0;
    for (;;) {
      const g = ghmcGradNorm(x[k]!, t);
      // Exactly 0, 0.5 (x = ±0 or subnormal with a binary target) or 1: exact in float32 too.
      if (g === 0 || g === 0.5 || g === 1 || !nearInteriorEdge(g, edges) || guard++ >= 1000) break;
      x[k] = Math.fround(x[k]! + 0.01);
      moved++;
    }
  }
  return moved;
}

/** As {@link clearGhmcEdges} for GHM-R: nudges pred so that g = |d|/sqrt(d²+μ²) is clear of every edge. */
export function clearGhmrEdges(pred: Float32Array, target: Float32Array, bins: number, mu: number): number {
  const edges = ghmrEdges(bins);
  let moved = 0;
  for (let k = 0; k < pred.length; k++) {
    if (Number.isNaN(pred[k]!)) continue;
    let guard = 0;
    // Edge 0 is g = 0 exactly (d = 0): both agree, nothing to clear.
    while (pred[k]! - target[k]! !== 0 && nearInteriorEdge(ghmrGradNorm(pred[k]! - target[k]!, Math.fround(mu)), edges) && guard++ < 1000) {
      pred[k] = Math.fround(pred[k]! + 0.001 * (1 + Math.abs(pred[k]!)));
      moved++;
    }
  }
  return moved;
}

/**
 * GHM-R inputs: targets normal-ish in [-10, 10]; pred = target + d with d from a mixture of
 * scales (|d| ~ 1, ~ μ-sized 1e-2, ~ 1e-4, ~ 1e2, exactly 0).
 */
export function regression(n: number, seed: number): { pred: Float32Array; target: Float32Array } {
  const r = rng(seed);
  const target = new Float32Array(n);
  const pred = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    target[i] = normalish(r, 5);
    const u = r();
    const scale = u < 0.4 ? 1 : u < 0.65 ? 1e-2 : u < 0.75 ? 1e-4 : u < 0.85 ? 1e2 : 0;
    pred[i] = target[i]! + scale * normalish(r, 1);
  }
  return { pred, target };
}
