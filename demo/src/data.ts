// Synthetic imbalanced data: 1% positives, most negatives easy, some hard (near the positives).

import { gaussian, rng } from '../../cli/src/random';

export interface Dataset {
  x: Float32Array; // [n, FEATURES]
  y: Float32Array; // [n, 1], 0 or 1
  n: number;
}

export const FEATURES = 8;

export function makeDataset(n: number, seed: number, positiveRate = 0.01): Dataset {
  const rand = rng(seed);
  const gauss = gaussian(rand);
  const x = new Float32Array(n * FEATURES);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const positive = rand() < positiveRate;
    // Positives sit around (1.6, 1.6, 1.6, 0, …); a tenth of the negatives are hard: halfway there.
    const shift = positive ? 1.6 : rand() < 0.1 ? 0.8 : 0;
    y[i] = positive ? 1 : 0;
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = gauss() + (f < 3 ? shift : 0);
  }
  return { x, y, n };
}

/**
 * Average precision (area under the step-wise precision-recall curve) of scores against 0/1
 * labels; equal scores are one threshold (as scikit-learn's average_precision_score), so the
 * order of ties does not matter.
 */
export function averagePrecision(scores: Float32Array, labels: Float32Array): number {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
  const positives = labels.reduce((a, b) => a + b, 0);
  if (positives === 0) return NaN;
  let tp = 0;
  let seen = 0;
  let ap = 0;
  for (let k = 0; k < order.length; ) {
    // One threshold per distinct score: take the whole group of ties at once.
    const s = scores[order[k]!]!;
    let groupTp = 0;
    for (; k < order.length && scores[order[k]!] === s; k++, seen++) groupTp += labels[order[k]!]!;
    tp += groupTp;
    ap += (groupTp / positives) * (tp / seen);
  }
  return ap;
}
