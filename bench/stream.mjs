// Streams and zero-copy benchmark (issue #4): `node bench/stream.mjs [--elements 1e9] [--n 16e6]`
//
// 1. Zero copy: sigmoid focal forward at N (default 16·10^6) on a `createBatch` batch (inputs
//    already in wasm memory) vs the same call on ordinary arrays (copied through scratch),
//    interleaved, median of 9; prints the ratio (issue target ≥ 1.3×).
// 2. Memory: pushes `--elements` (default 10^9) through `sigmoidFocalLoss.stream` in 10^6-element
//    pieces and prints the growth of resident memory over the run (issue target < 64 MB) and the
//    throughput.
import { getData } from './data.mjs';
import { arg, loadDist, median, time } from './util.mjs';

const N = arg('--n', 16e6);
const ELEMENTS = arg('--elements', 1e9);
const lib = await loadDist();

// 1. Zero copy vs ordinary arrays.
const { logits, targets } = getData(N);
const b = lib.createBatch({ length: N, targets: 'u8' });
b.logits.set(logits);
b.targets.set(targets);
const opts = { alpha: 0.25, gamma: 2 };
const a1 = lib.sigmoidFocalLoss(b.logits, b.targets, opts).loss;
const a2 = lib.sigmoidFocalLoss(logits, targets, opts).loss;
if (a1 !== a2) console.log(`WARNING: batch loss ${a1} != array loss ${a2}`);
const tb = [];
const ta = [];
for (let i = 0; i < 9; i++) {
  tb.push(time(() => lib.sigmoidFocalLoss(b.logits, b.targets, opts)));
  ta.push(time(() => lib.sigmoidFocalLoss(logits, targets, opts)));
}
b.free();
console.log(`zero copy, N=${N.toExponential(1)}: batch ${median(tb).toFixed(1)} ms, arrays ${median(ta).toFixed(1)} ms, ratio ${(median(ta) / median(tb)).toFixed(2)}x`);

// 2. A long stream in bounded memory.
const piece = getData(1e6);
const s = lib.sigmoidFocalLoss.stream({ reduction: 'sum' });
s.push(piece.logits, piece.targets); // warm-up: scratch allocated, code compiled
const rss0 = process.memoryUsage().rss;
let peak = rss0;
const t0 = performance.now();
for (let pushed = 1e6; pushed < ELEMENTS; pushed += 1e6) {
  s.push(piece.logits, piece.targets);
  if ((pushed / 1e6) % 50 === 0) peak = Math.max(peak, process.memoryUsage().rss);
}
const secs = (performance.now() - t0) / 1000;
const { loss, length } = s.finish();
peak = Math.max(peak, process.memoryUsage().rss);
console.log(
  `stream: ${length.toExponential(2)} elements in ${secs.toFixed(1)} s (${(length / secs / 1e6).toFixed(0)} M/s), loss ${loss.toExponential(6)}; ` +
    `resident memory growth ${((peak - rss0) / 2 ** 20).toFixed(1)} MB (target < 64 MB)`,
);
