// Deterministic synthetic data for the benchmarks.
//
// Detector-like inputs: logits ~ N(-2, 2) (mean -2, standard deviation 2, i.e. most anchors are
// confidently negative), binary targets with ~1% positives (Uint8Array 0/1). Everything comes
// from a seeded mulberry32 PRNG, so every run (and every peer) sees the same numbers.

/** mulberry32: tiny, fast 32-bit PRNG. Returns a function giving uniforms in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const LOGIT_MEAN = -2;
export const LOGIT_STD = 2;
export const POSITIVE_RATE = 0.01;

/**
 * Fill `logits` (Float32Array) with N(mean, std) samples (Box–Muller, both outputs used) and
 * `targets` (Uint8Array) with Bernoulli(positiveRate) 0/1 values.
 */
export function fillData(logits, targets, { seed = 42, mean = LOGIT_MEAN, std = LOGIT_STD, positiveRate = POSITIVE_RATE } = {}) {
  const n = logits.length;
  if (targets.length !== n) throw new Error('fillData: logits and targets lengths differ');
  const rnd = mulberry32(seed);
  const TWO_PI = 2 * Math.PI;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const u1 = 1 - rnd(); // (0, 1]: log is finite
    const u2 = rnd();
    const r = std * Math.sqrt(-2 * Math.log(u1));
    logits[i] = mean + r * Math.cos(TWO_PI * u2);
    logits[i + 1] = mean + r * Math.sin(TWO_PI * u2);
  }
  if (i < n) {
    const u1 = 1 - rnd();
    const u2 = rnd();
    logits[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(TWO_PI * u2);
  }
  // A separate stream for the targets, so that the targets do not depend on the logits' draws.
  const rt = mulberry32((seed ^ 0x9e3779b9) >>> 0);
  for (let k = 0; k < n; k++) targets[k] = rt() < positiveRate ? 1 : 0;
  return { logits, targets };
}

/** Allocate and fill a data set of n elements. */
export function makeData(n, opts = {}) {
  const logits = new Float32Array(n);
  const targets = new Uint8Array(n);
  fillData(logits, targets, opts);
  return { n, logits, targets };
}

/** The benchmark sizes. */
export const SIZES = [1e4, 1e6, 4e6];

const cache = new Map();
/** makeData with a per-(n, seed) cache: the suites share one data set per size. */
export function getData(n, seed = 42) {
  const key = `${n}:${seed}`;
  let d = cache.get(key);
  if (!d) {
    d = makeData(n, { seed });
    cache.set(key, d);
  }
  return d;
}
