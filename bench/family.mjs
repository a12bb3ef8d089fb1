// Issue #21, the focal family, against scalar JS peers written the way a user would
// (bench/peers/scalar.mjs): `node bench/family.mjs [--n 1e6]`. Alternating calls, median over
// rounds of peer time / our time (> 1: focal-ghm is faster); and QFL's and VFL's forward time over
// the sigmoid focal forward on the same logits (the bound: ≤ 1.5).
import { getData } from './data.mjs';
import { distributionFocal, poly1SigmoidFocal, qualityFocal, varifocal } from './peers/scalar.mjs';
import { arg, loadDist, paired } from './util.mjs';

const N = arg('--n', 1e6);
const lib = await loadDist({ extras: true });

const { logits, targets } = getData(N);
const C = 80;
const rows = Math.floor(N / C);
const x80 = logits.subarray(0, rows * C);
// RetinaNet-like: 1% of rows positive, with an IoU-like quality score.
const labels = Int32Array.from({ length: rows }, (_, r) => (r % 100 === 0 ? (r * 7919) % C : C));
const scores = Float32Array.from({ length: rows }, (_, r) => (labels[r] < C ? 0.3 + ((r * 37) % 70) / 100 : 0));
const q = new Float32Array(N);
for (let i = 0; i < N; i++) if (targets[i]) q[i] = 0.3 + ((i * 37) % 70) / 100;
const bins = 16;
const dRows = Math.floor(N / (bins + 1));
const xd = logits.subarray(0, dRows * (bins + 1));
const y = Float32Array.from({ length: dRows }, (_, r) => ((r * 7919) % (bins * 100)) / 100);
// Gradients into preallocated arrays on both sides, as bench/index.mjs does (out.grad for ours).
const grad = new Float32Array(N);
const ourGrad = new Float32Array(N);
const og = (n) => ({ grad: true, out: { grad: ourGrad.subarray(0, n) } });
const qt = { labels, scores, numClasses: C };

const rowsOut = [
  ['QFL forward', () => lib.qualityFocalLoss(x80, qt).loss, () => qualityFocal(x80, labels, scores, C)],
  ['QFL forward + gradient', () => lib.qualityFocalLoss(x80, qt, og(x80.length)).loss, () => qualityFocal(x80, labels, scores, C, grad)],
  ['VFL forward', () => lib.varifocalLoss(logits, q).loss, () => varifocal(logits, q)],
  ['VFL forward + gradient', () => lib.varifocalLoss(logits, q, og(N)).loss, () => varifocal(logits, q, grad)],
  ['DFL forward (17 bins)', () => lib.distributionFocalLoss(xd, y).loss, () => distributionFocal(xd, y, bins + 1)],
  ['DFL forward + gradient', () => lib.distributionFocalLoss(xd, y, og(xd.length)).loss, () => distributionFocal(xd, y, bins + 1, grad)],
  ['Poly-1 sigmoid forward', () => lib.sigmoidFocalLoss(logits, targets, { poly1: 1 }).loss, () => poly1SigmoidFocal(logits, targets, 1)],
];
// The same calls on zero-copy batches (logits, Varifocal's targets and the gradient in wasm
// memory; the small per-row inputs as arrays): at N = 10^6 the arrays' copies in and out are
// memory traffic (12 MB for Varifocal with its gradient) that the peer's loop spreads over its
// much longer run and ours cannot.
const batch = lib.createBatch({ length: N, targets: 'f32', grad: true });
batch.logits.set(logits);
batch.targets.set(q);
const bx = (n) => batch.logits.subarray(0, n);
const bg = (n) => ({ grad: true, out: { grad: batch.grad.subarray(0, n) } });
rowsOut.push(
  ['QFL fwd + grad, batch', () => lib.qualityFocalLoss(bx(x80.length), qt, bg(x80.length)).loss, () => qualityFocal(x80, labels, scores, C, grad)],
  ['VFL fwd + grad, batch', () => lib.varifocalLoss(batch.logits, batch.targets, bg(N)).loss, () => varifocal(logits, q, grad)],
  ['DFL forward, batch', () => lib.distributionFocalLoss(bx(xd.length), y).loss, () => distributionFocal(xd, y, bins + 1)],
  ['DFL fwd + grad, batch', () => lib.distributionFocalLoss(bx(xd.length), y, bg(xd.length)).loss, () => distributionFocal(xd, y, bins + 1, grad)],
);
console.log(`issue #21, the focal family, N = ${N} (QFL: ${rows} rows × ${C} classes; DFL: ${dRows} rows × ${bins + 1}; mean)`);
for (const [name, ours, peer] of rowsOut) {
  const r = paired(ours, peer);
  const agree = Math.abs(r.ours - r.peer) <= 1e-4 * Math.abs(r.peer) ? '' : `  WARNING: losses differ (${r.ours} vs ${r.peer})`;
  console.log(`  ${name.padEnd(24)} ${r.oursMs.toFixed(2).padStart(7)} ms/call  ${r.ratio.toFixed(2)}× the scalar peer${agree}`);
}
const focal = () => lib.sigmoidFocalLoss(x80, targets.subarray(0, rows * C)).loss;
const qfl = paired(focal, () => lib.qualityFocalLoss(x80, qt).loss);
const vfl = paired(() => lib.sigmoidFocalLoss(logits, targets).loss, () => lib.varifocalLoss(logits, q).loss);
console.log(`  QFL forward / sigmoid focal forward, same logits: ${qfl.ratio.toFixed(2)} (bound 1.5)`);
console.log(`  VFL forward / sigmoid focal forward, same logits: ${vfl.ratio.toFixed(2)} (bound 1.5)`);
