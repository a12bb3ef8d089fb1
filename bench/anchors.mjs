// Issue #20 options (softmax soft targets need the extras) against scalar JS peers written the way a user would (bench/peers/scalar.mjs):
// `node bench/anchors.mjs [--n 1e6]`. Alternating calls, median over rounds of peer time / our
// time (> 1: focal-ghm is faster), so that this machine's drift cannot skew the ratio.
import { getData } from './data.mjs';
import { ghmcTerms, sigmoidFocalClassWeighted, sigmoidFocalProbForward, sigmoidFocalSmoothForward, softmaxFocalSoft, softmaxFocalWeighted, fromClassLast, toClassLast } from './peers/scalar.mjs';
import { arg, loadDist, paired } from './util.mjs';

const N = arg('--n', 1e6);
const lib = await loadDist({ extras: true });

const { logits, targets } = getData(N);
const probs = logits.map((x) => 1 / (1 + Math.exp(-x)));
const rows = [
  ["input: 'probabilities'", () => lib.sigmoidFocalLoss(probs, targets, { input: 'probabilities' }).loss, () => sigmoidFocalProbForward(probs, targets)],
  ['labelSmoothing: 0.1', () => lib.sigmoidFocalLoss(logits, targets, { labelSmoothing: 0.1 }).loss, () => sigmoidFocalSmoothForward(logits, targets, 0.1)],
  ["GHM-C reduction: 'none'", () => new lib.GHMC().forward(logits, targets, undefined, { reduction: 'none' }).loss, () => ghmcTerms(logits, targets)],
];
// Class options: 8 classes; a [4, 8, H, W] map for the class axis (rows = N / 8).
const C = 8;
const rowsN = Math.floor(N / C);
const bytes = targets.subarray(0, rowsN * C);
const x8 = logits.subarray(0, rowsN * C);
const cw = Float32Array.from({ length: C }, (_, j) => 0.5 + j / C);
const labels = Int32Array.from({ length: rowsN }, (_, r) => (r * 7919) % C);
const rowW = Float32Array.from({ length: rowsN }, (_, r) => ((r * 31) % 17) / 8);
const B = 4;
const inner = Math.floor(rowsN / B);
const seg = x8.subarray(0, B * C * inner);
const segLabels = labels.subarray(0, B * inner);
// Class-probability rows: a softmax of other logits, so every entry is non-zero.
const probRows = new Float32Array(rowsN * C);
for (let r = 0; r < rowsN; r++) {
  let s = 0;
  for (let j = 0; j < C; j++) s += (probRows[r * C + j] = Math.exp(Math.sin(r * 12.9898 + j * 78.233) * 2));
  for (let j = 0; j < C; j++) probRows[r * C + j] /= s;
}
rows.push(
  ['softmax labelSmoothing 0.1', () => lib.softmaxFocalLoss(x8, labels, { numClasses: C, labelSmoothing: 0.1 }).loss, () => softmaxFocalSoft(x8, labels, C, 0.1)],
  ['softmax probability rows', () => lib.softmaxFocalLoss(x8, probRows, { numClasses: C }).loss, () => softmaxFocalSoft(x8, probRows, C)],
  ['softmax weight (C = 8)', () => lib.softmaxFocalLoss(x8, labels, { numClasses: C, weight: rowW }).loss, () => softmaxFocalWeighted(x8, labels, C, rowW)],
  ['classWeight+posWeight', () => lib.sigmoidFocalLoss(x8, bytes, { classWeight: cw, posWeight: cw }).loss, () => sigmoidFocalClassWeighted(x8, bytes, cw, cw)],
  // The peer here is this library too, after the full transposed copy a user would make.
  ['softmax classAxis 1', () => lib.softmaxFocalLoss(seg, segLabels, { numClasses: C, shape: [B, C, inner], classAxis: 1, grad: true }).loss,
    () => {
      const r = lib.softmaxFocalLoss(toClassLast(seg, B, C, inner), segLabels, { numClasses: C, grad: true });
      fromClassLast(r.grad, B, C, inner);
      return r.loss;
    }],
  ['softmax classAxis 1, no grad', () => lib.softmaxFocalLoss(seg, segLabels, { numClasses: C, shape: [B, C, inner], classAxis: 1 }).loss,
    () => lib.softmaxFocalLoss(toClassLast(seg, B, C, inner), segLabels, { numClasses: C }).loss],
);
console.log(`issue #20 options, forward, N = ${N} (binary targets, mean or 'none', 10 bins; class axis: peer = this library on a full transposed copy, grad transposed back)`);
for (const [name, ours, peer] of rows) {
  const r = paired(ours, peer);
  const sum = (v) => (typeof v === 'number' ? v : v.reduce((a, b) => a + b, 0));
  const agree = Math.abs(sum(r.ours) - sum(r.peer)) <= 1e-4 * Math.abs(sum(r.peer)) ? '' : `  WARNING: losses differ (${sum(r.ours)} vs ${sum(r.peer)})`;
  console.log(`  ${name.padEnd(26)} ${r.oursMs.toFixed(2).padStart(7)} ms/call  ${r.ratio.toFixed(2)}× the scalar peer${agree}`);
}
