// TensorFlow.js adapter benchmark (issue #19): `node bench/tfjs.mjs [--n 1e6] [--rounds 15] [--quick]`
//
// One training step at N logits (a variable standing for a detection head's output; float32 0/1
// yTrue with ~1% positives, logits ~ N(-2, 2): bench/data.mjs), sigmoid focal loss (γ 2, α 0.25,
// mean), with focal-ghm/tfjs's `sigmoidFocalLoss` ("adapter") and with the same loss composed
// from TF.js ops ("composed": bench/peers/tfjs.mjs, which TF.js autodiff differentiates), on
// tfjs-backend-wasm and tfjs-backend-cpu, side by side in one run. Three ways to count a step:
//   loss + gradient   tf.variableGrads(loss): what the loss itself costs a step;
//   SGD step          optimizer.minimize(loss) with tf.train.sgd: plus an update of 2 ops over N;
//   Adam step         the same with tf.train.adam: plus Adam's ~10 ops over N (the same for both).
// Before timing, the adapter's loss and gradient are checked against the composed ones.
// Timing: rounds of (adapter, composed) back to back; the ratio is the median over rounds of
// time(composed) / time(adapter), which this VM's drift between phases cannot skew; the times are
// medians too. Results also go to bench/results/tfjs.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getData } from './data.mjs';
import { focalLossTensor, setupTf, tfBackendInfo, useBackendSync } from './peers/tfjs.mjs';
import { arg, argv, median } from './util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const QUICK = argv.includes('--quick');
const N = arg('--n', 1e6);
const ROUNDS = arg('--rounds', QUICK ? 3 : 15);
const ALPHA = 0.25;
const GAMMA = 2;
const TOL = 1e-4;

// By the package's name (its self-reference: dist/), as a user imports it: the adapter must use
// the very core instance that init() loaded.
let core;
let adapter;
try {
  core = await import('focal-ghm');
  adapter = await import('focal-ghm/tfjs');
} catch (e) {
  console.error(`bench/tfjs: cannot load focal-ghm from dist/ (${e.message}); run npm run build first`);
  process.exit(1);
}
await core.init();
const tf = await setupTf('cpu');
await setupTf('wasm');

console.log(`TF.js adapter: one training step, sigmoid focal loss, N = ${N.toExponential(0)}`);
console.log(`  node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} threads), load ${os.loadavg()[0].toFixed(2)}`);
useBackendSync(tf, 'wasm');
console.log(`  TF.js ${tf.version_core}: ${tfBackendInfo(tf)} / cpu; yTrue float32 0/1, 1% positive; ${ROUNDS} rounds (cpu: ${Math.ceil(ROUNDS / 3)})`);

const { logits, targets } = getData(N);
const now = () => performance.now();
const warnings = [];

/** Max |a - b| / max |b|. */
function gradRelErr(a, b) {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) err = e;
  }
  return err / scale;
}

/** The two losses of logits `v` against `y`, as tensors (scalars). */
const losses = (y) => ({
  adapter: (v) => adapter.sigmoidFocalLoss(y, v, { alpha: ALPHA, gamma: GAMMA }),
  composed: (v) => focalLossTensor(tf, v, y, ALPHA, GAMMA),
});

/** Checks the adapter against the composed loss (value, gradient) on the active backend. */
function verify(backend, y, v) {
  const f = losses(y);
  const [a, c] = [f.adapter, f.composed].map((loss) => {
    const { value, grads } = tf.variableGrads(() => loss(v), [v]);
    const r = { loss: value.dataSync()[0], grad: grads[v.name].dataSync() };
    tf.dispose([value, grads]);
    return r;
  });
  const le = Math.abs(a.loss - c.loss) / Math.abs(c.loss);
  const ge = gradRelErr(a.grad, c.grad);
  console.log(`  ${backend}: loss ${a.loss.toPrecision(8)} (composed ${c.loss.toPrecision(8)}, rel diff ${le.toExponential(2)}), gradient max|Δ|/max|g| ${ge.toExponential(2)}`);
  if (!(ge <= TOL)) warnings.push(`${backend}: gradients differ by ${ge.toExponential(2)} > ${TOL}`);
  // TF.js's wasm mean sums in float32: ~1e-3 off at 10^6 (bench/README.md); the gradient tells.
  if (!(le <= TOL)) warnings.push(`${backend}: losses differ by ${le.toExponential(2)} > ${TOL}${ge <= TOL ? ' (the gradients agree: the composed float32 mean)' : ''}`);
}

/** Median over rounds of time(composed) / time(adapter), and the median ms of each. */
function alternate(fAdapter, fComposed, rounds) {
  fAdapter();
  fComposed();
  const [ta, tc, ratio] = [[], [], []];
  for (let r = 0; r < rounds; r++) {
    let t0 = now();
    fAdapter();
    ta.push(now() - t0);
    t0 = now();
    fComposed();
    tc.push(now() - t0);
    ratio.push(tc[r] / ta[r]);
  }
  return { adapterMs: median(ta), composedMs: median(tc), ratio: median(ratio) };
}

const results = {};
console.log('\nverification (one loss + gradient each):');
for (const backend of ['wasm', 'cpu']) {
  useBackendSync(tf, backend);
  const y = tf.tensor1d(Float32Array.from(targets));
  // One variable per side, so that each side's optimizer steps its own copy.
  const va = tf.variable(tf.tensor1d(logits), true, 'adapter');
  const vc = tf.variable(tf.tensor1d(logits), true, 'composed');
  verify(backend, y, va);
  const f = losses(y);
  const sgd = tf.train.sgd(1e-3);
  const adams = [tf.train.adam(1e-3), tf.train.adam(1e-3)];
  const ways = {
    'loss + gradient': [() => tf.dispose(tf.variableGrads(() => f.adapter(va), [va])), () => tf.dispose(tf.variableGrads(() => f.composed(vc), [vc]))],
    'SGD step': [() => sgd.minimize(() => f.adapter(va), false, [va]), () => sgd.minimize(() => f.composed(vc), false, [vc])],
    'Adam step': [() => adams[0].minimize(() => f.adapter(va), false, [va]), () => adams[1].minimize(() => f.composed(vc), false, [vc])],
  };
  const n0 = tf.memory().numTensors;
  results[backend] = {};
  for (const [way, [fa, fc]] of Object.entries(ways)) {
    results[backend][way] = alternate(fa, fc, backend === 'cpu' ? Math.ceil(ROUNDS / 3) : ROUNDS);
  }
  // Adam's moments are created on its first step: 2 per variable; nothing else may stay.
  const leaked = tf.memory().numTensors - n0 - 4;
  if (leaked !== 0) warnings.push(`${backend}: ${leaked} tensors left behind by the timed steps`);
  tf.dispose([y, va, vc]);
  sgd.dispose();
  adams.forEach((a) => a.dispose());
}

console.log(`\nms per step (median) and composed / adapter time (median of ${ROUNDS} alternating rounds; cpu ${Math.ceil(ROUNDS / 3)}):`);
console.log(`  ${'backend'.padEnd(9)}${'step'.padEnd(18)}${'adapter'.padStart(10)}${'composed'.padStart(11)}${'ratio'.padStart(9)}`);
for (const [backend, ways] of Object.entries(results)) {
  for (const [way, r] of Object.entries(ways)) {
    console.log(`  ${backend.padEnd(9)}${way.padEnd(18)}${r.adapterMs.toFixed(1).padStart(10)}${r.composedMs.toFixed(1).padStart(11)}${`${r.ratio.toFixed(1)}×`.padStart(9)}`);
  }
}
const goal = results.wasm['SGD step'].ratio;
console.log(`\ngoal (issue #19): a training step on wasm ≥ 5× the composed loss's: SGD step ${goal.toFixed(1)}× ${goal >= 5 ? 'met' : 'NOT met'}`);
for (const w of warnings) console.log(`WARNING: ${w}`);

mkdirSync(path.join(here, 'results'), { recursive: true });
const file = path.join(here, 'results', 'tfjs.json');
writeFileSync(
  file,
  JSON.stringify({ generatedAt: new Date().toISOString(), n: N, rounds: ROUNDS, alpha: ALPHA, gamma: GAMMA, tfjs: tf.version_core, loadAverageAtStart: os.loadavg()[0], results, warnings }, null, 2) + '\n',
);
console.log(`wrote ${path.relative(process.cwd(), file)}`);
