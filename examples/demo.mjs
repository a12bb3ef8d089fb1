// The quick-start demo: scores a synthetic detector-like batch (100k anchors × 80 classes, 1% of
// anchors positive) with each loss, and prints the losses and throughput.
//
//   npm run demo        (builds first; or `node examples/demo.mjs` after `npm run build`)

import { init, sigmoidFocalLoss, softmaxFocalLoss, GHMC } from '../dist/index.js';

const ANCHORS = 100_000;
const CLASSES = 80;
const N = ANCHORS * CLASSES;

/** mulberry32: a tiny seeded PRNG, so every run scores the same batch. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function syntheticBatch() {
  const rand = rng(42);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const labels = new Int32Array(ANCHORS);
  // RetinaNet's prior: logits start near log(0.01/0.99) ≈ -4.6; a half-trained head has moved
  // the true class up.
  const logits = new Float32Array(N);
  for (let a = 0; a < ANCHORS; a++) {
    labels[a] = rand() < 0.01 ? Math.floor(rand() * CLASSES) : CLASSES;
    for (let c = 0; c < CLASSES; c++) logits[a * CLASSES + c] = -4.6 + 1.5 * gauss() + (labels[a] === c ? 4 : 0);
  }
  return { logits, labels };
}

/** Median ms per call after a warm-up: V8 first runs wasm in its baseline compiler and
 * optimizes a function only once it is hot, so the first calls are 2–3× slower than the rest. */
function time(fn, reps = 7) {
  const warm = performance.now();
  for (let i = 0; i < 20 && performance.now() - warm < 1000; i++) fn();
  const ms = [];
  let r;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    r = fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { r, ms: ms[reps >> 1] };
}

const rt = await init();
const { logits, labels } = syntheticBatch();
const positives = labels.reduce((n, l) => n + (l < CLASSES ? 1 : 0), 0);
console.log(`focal-ghm demo: ${ANCHORS.toLocaleString()} anchors × ${CLASSES} classes = ${N.toLocaleString()} scores, ${positives} positive anchors; wasm ${rt.simd ? 'SIMD' : 'scalar'} build`);

const targets = { labels, numClasses: CLASSES };
const rows = [];
const report = (name, { r, ms }) => {
  rows.push({ loss: name, value: Number(r.loss.toPrecision(7)), 'ms/call': Number(ms.toFixed(2)), 'M scores/s': Number((N / ms / 1e3).toFixed(1)) });
};
// mmdetection RetinaNet's setting: α = 0.25, γ = 2, mean over the positives (avgFactor).
report('sigmoid focal', time(() => sigmoidFocalLoss(logits, targets, { alpha: 0.25, gamma: 2, avgFactor: positives })));
report('sigmoid focal + grad', time(() => sigmoidFocalLoss(logits, targets, { alpha: 0.25, gamma: 2, avgFactor: positives, grad: true })));
const ghmc = new GHMC({ bins: 30, momentum: 0.75 });
report('GHM-C (30 bins, EMA 0.75)', time(() => ghmc.forward(logits, targets)));
report('GHM-C + grad', time(() => ghmc.forward(logits, targets, undefined, { grad: true })));
// Softmax over 80 classes for the positive anchors' rows, background ignored.
const softLabels = labels.map((l) => (l < CLASSES ? l : -100));
report('softmax focal (positives)', time(() => softmaxFocalLoss(logits, softLabels, { numClasses: CLASSES, alpha: 0.25, gamma: 2 })));
console.table(rows);
