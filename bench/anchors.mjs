// Issue #20 options against scalar JS peers written the way a user would (bench/peers/scalar.mjs):
// `node bench/anchors.mjs [--n 1e6]`. Alternating calls, median over rounds of peer time / our
// time (> 1: focal-ghm is faster), so that this machine's drift cannot skew the ratio.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getData } from './data.mjs';
import { ghmcTerms, sigmoidFocalProbForward, sigmoidFocalSmoothForward } from './peers/scalar.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const i = argv.indexOf('--n');
const N = i >= 0 ? Number(argv[i + 1]) : 1e6;
const lib = await import(pathToFileURL(path.resolve(here, '../dist/index.js')).href);
await lib.init();

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const time = (f) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};
/** Median of peer/ours over `rounds` alternating rounds, after a warm-up; and the two losses. */
function paired(ours, peer, rounds = 15) {
  const a = ours();
  const b = peer();
  for (let k = 0; k < 3; k++) (ours(), peer());
  const r = [];
  const to = [];
  for (let k = 0; k < rounds; k++) {
    const t = time(ours);
    r.push(time(peer) / t);
    to.push(t);
  }
  return { ratio: median(r), oursMs: median(to), ours: a, peer: b };
}

const { logits, targets } = getData(N);
const probs = logits.map((x) => 1 / (1 + Math.exp(-x)));
const rows = [
  ["input: 'probabilities'", () => lib.sigmoidFocalLoss(probs, targets, { input: 'probabilities' }).loss, () => sigmoidFocalProbForward(probs, targets)],
  ['labelSmoothing: 0.1', () => lib.sigmoidFocalLoss(logits, targets, { labelSmoothing: 0.1 }).loss, () => sigmoidFocalSmoothForward(logits, targets, 0.1)],
  ["GHM-C reduction: 'none'", () => new lib.GHMC().forward(logits, targets, undefined, { reduction: 'none' }).loss, () => ghmcTerms(logits, targets)],
];
console.log(`issue #20 options, forward, N = ${N} (binary targets, mean or 'none', 10 bins)`);
for (const [name, ours, peer] of rows) {
  const r = paired(ours, peer);
  const sum = (v) => (typeof v === 'number' ? v : v.reduce((a, b) => a + b, 0));
  const agree = Math.abs(sum(r.ours) - sum(r.peer)) <= 1e-4 * Math.abs(sum(r.peer)) ? '' : `  WARNING: losses differ (${sum(r.ours)} vs ${sum(r.peer)})`;
  console.log(`  ${name.padEnd(26)} ${r.oursMs.toFixed(2).padStart(7)} ms/call  ${r.ratio.toFixed(2)}× the scalar peer${agree}`);
}
