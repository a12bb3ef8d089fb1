// focal-ghm benchmarks: `node bench/index.mjs [--quick] [--big | --no-big]`
//
// Suites (benny), each case verified against focal-ghm before it is timed:
//   1. sigmoid focal forward (γ=2, α=0.25, mean) at N = 1e4, 1e6, 4e6:
//        focal-ghm | scalar JS | TF.js wasm | TF.js cpu
//   2. forward + gradient at the same sizes:
//        focal-ghm (grad: true) | scalar JS forward+backward | TF.js wasm valueAndGrad
//   3. GHM-C forward (bins 30, momentum 0.75) at N = 4e6:
//        focal-ghm GHMC | mmdet-style scalar | single-pass scalar | focal-ghm sigmoid focal forward
//        (the last for the "GHM-C within 1.5× of focal forward" ratio, which is also measured
//        from alternating calls: see pairedRatio)
//   4. small batches (N = 16 and 1000): microseconds per call, where the call's fixed cost shows:
//        focal-ghm forward | scalar JS forward | focal-ghm GHM-C forward (alternating calls)
//   5. accuracy: reduction 'sum' over 1e8 elements vs a float64 (Neumaier) reference, ≤ 1e-5.
// Then a table of ratios focal-ghm throughput / peer throughput, also written to
// bench/results/latest.json.
//
// Options:
//   --quick        smoke run: N = 1e4 and 1e6 only, GHM-C at 1e6, short sampling, no 1e8 check
//   --big          run the 1e8 accuracy check even with --quick (also BENCH_BIG=1)
//   --no-big       skip the 1e8 accuracy check (also BENCH_BIG=0)
// Env: FOCAL_GHM_DIST=/path/to/index.js benchmarks another build of the library (default
//      ../dist/index.js).
// Exit status 1 when the library is missing or the 1e8 accuracy check fails.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import b from 'benny';

import { getData, fillData, SIZES } from './data.mjs';
import {
  sigmoidFocalForward,
  sigmoidFocalForwardBackward,
  sigmoidFocalSumKahan,
  createGhmcState,
  ghmcMmdetStyle,
  ghmcSinglePass,
} from './peers/scalar.mjs';
import {
  setupTf,
  tfBackendInfo,
  useBackendSync,
  tfFocalFromArrays,
  tfFocalWithGradFromArrays,
  tfElementwiseFocalFromArrays,
} from './peers/tfjs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--quick', '--big', '--no-big', '--help', '-h'].includes(a)) {
    console.error(`bench: unknown option ${a} (use --quick, --big, --no-big)`);
    process.exit(2);
  }
}
if (args.has('--help') || args.has('-h')) {
  console.log('usage: node bench/index.mjs [--quick] [--big | --no-big]');
  process.exit(0);
}
const QUICK = args.has('--quick');
const envBig = process.env.BENCH_BIG;
const BIG = args.has('--no-big') || envBig === '0' ? false : args.has('--big') || envBig === '1' ? true : !QUICK;

// ------------------------------------------------------------------------------------------------
// The library under test
// ------------------------------------------------------------------------------------------------
const distPath = process.env.FOCAL_GHM_DIST
  ? path.resolve(process.env.FOCAL_GHM_DIST)
  : path.resolve(here, '../dist/index.js');
if (!existsSync(distPath)) {
  console.error(`bench: ${path.relative(process.cwd(), distPath) || distPath} not found — run npm run build first`);
  process.exit(1);
}
const lib = await import(pathToFileURL(distPath).href);
for (const name of ['sigmoidFocalLoss', 'GHMC']) {
  if (typeof lib[name] !== 'function') {
    console.error(`bench: ${distPath} does not export ${name} — run npm run build first`);
    process.exit(1);
  }
}
if (typeof lib.init === 'function') await lib.init();

// ------------------------------------------------------------------------------------------------
// Settings
// ------------------------------------------------------------------------------------------------
const ALPHA = 0.25;
const GAMMA = 2;
const GHM_BINS = 30;
const GHM_MOMENTUM = 0.75;
const SIZES_RUN = QUICK ? SIZES.filter((n) => n <= 1e6) : SIZES;
const GHM_N = QUICK ? 1e6 : 4e6;
const BIG_N = 1e8;
const REL_TOL = 1e-4; // peer agreement before timing
const BIG_TOL = 1e-5; // SPEC §5

const focalOpts = { alpha: ALPHA, gamma: GAMMA, reduction: 'mean' };
const focalGradOpts = { alpha: ALPHA, gamma: GAMMA, reduction: 'mean', grad: true };

/** benny/benchmark.js options from the measured cost of one call (seconds). */
function caseOptions(secondsPerCall) {
  if (QUICK) return { minSamples: 2, maxTime: 0.3 };
  if (secondsPerCall > 1.5) return { minSamples: 2, maxTime: 0.5 };
  if (secondsPerCall > 0.3) return { minSamples: 3, maxTime: 1.5 };
  return { minSamples: 5, maxTime: 3 };
}

const fmtN = (n) => {
  const e = Math.floor(Math.log10(n));
  const m = n / 10 ** e;
  return `${Number.isInteger(m) ? m : m.toFixed(1)}e${e}`;
};
const fmtNum = (x, digits = 3) => {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${(x / 1e6).toPrecision(digits)}M`;
  if (a >= 1e3) return `${(x / 1e3).toPrecision(digits)}k`;
  return x.toPrecision(digits);
};
const rel = (a, b) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), 1e-300));
const now = () => performance.now() / 1e3;

const warnings = [];
function warn(msg) {
  warnings.push(msg);
  console.log(`  WARNING: ${msg}`);
}

/** Max |a - b| / max |b| over two gradient arrays. */
function gradRelErr(a, b) {
  let maxAbs = 0;
  let maxErr = 0;
  for (let i = 0; i < b.length; i++) {
    const bb = Math.abs(b[i]);
    if (bb > maxAbs) maxAbs = bb;
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= maxErr)) maxErr = e; // NaN propagates
  }
  return maxAbs > 0 ? maxErr / maxAbs : maxErr;
}

/** Run fn once, timed (seconds); errors are returned, not thrown. */
function timed(fn) {
  const t0 = now();
  try {
    const value = fn();
    return { value, seconds: now() - t0 };
  } catch (error) {
    return { error, seconds: now() - t0 };
  }
}

// ------------------------------------------------------------------------------------------------
// Results and benny glue
// ------------------------------------------------------------------------------------------------
/** results[suite][fmtN(n)][case] = { ops, elementsPerSec, rme, samples } */
const results = { forward: {}, forwardGrad: {}, ghmc: {} };
/** GHM-C time / focal forward time from alternating calls (see pairedRatio); null if not run. */
let ghmcPaired = null;
// [kind, our case, peer case, label, key in latest.json's ratios (default: the peer's name)]
const ratioRows = [
  ['forward', 'focal-ghm', 'scalar JS', 'forward   vs scalar JS'],
  ['forward', 'focal-ghm', 'TF.js wasm', 'forward   vs TF.js wasm'],
  ['forward', 'focal-ghm', 'TF.js cpu', 'forward   vs TF.js cpu'],
  ['forwardGrad', 'focal-ghm (grad)', 'scalar JS fwd+bwd', 'fwd+grad  vs scalar JS fwd+bwd'],
  ['forwardGrad', 'focal-ghm (grad, new array)', 'scalar JS fwd+bwd', 'fwd+grad  (new array) vs scalar JS', 'scalar JS fwd+bwd, focal-ghm returning a new array'],
  ['forwardGrad', 'focal-ghm (grad)', 'TF.js wasm valueAndGrad', 'fwd+grad  vs TF.js wasm valueAndGrad'],
  ['ghmc', 'focal-ghm GHMC', 'scalar mmdet-style', 'GHM-C     vs mmdet-style scalar'],
  ['ghmc', 'focal-ghm GHMC', 'scalar single-pass', 'GHM-C     vs single-pass scalar'],
];
/** pairedRatios[kind][size][key]: the ratio rows from alternating calls (see pairedRatio). */
const pairedRatios = { forward: {}, forwardGrad: {}, ghmc: {} };

/**
 * Median over alternating rounds of time(peer) / time(ours), the two called back to back in
 * each round: a throughput ratio that this VM's drift cannot skew. benny times the cases of a
 * suite one after another, seconds apart, and the machine's speed drifts between phases by
 * 30–50%, so ratios of those throughputs can move by as much. Rounds fit a budget of about 8 s
 * (at least 3, at most 30).
 */
function pairedRatio(ours, peer, oursSeconds, peerSeconds) {
  // Each side of a round is `reps` calls of at least ~5 ms in all: single short calls are
  // dominated by timer resolution and JIT and GC jitter.
  const repsOf = (s) => Math.max(1, Math.ceil(0.005 / s));
  const [ro, rp] = [repsOf(oursSeconds), repsOf(peerSeconds)];
  const rounds = Math.max(3, Math.min(QUICK ? 10 : 30, Math.floor(8 / (ro * oursSeconds + rp * peerSeconds))));
  const time = (f, reps) => {
    const t0 = now();
    for (let i = 0; i < reps; i++) f();
    return (now() - t0) / reps;
  };
  const r = [];
  for (let i = 0; i < rounds; i++) {
    const to = time(ours, ro);
    const tp = time(peer, rp);
    r.push(tp / to);
  }
  r.sort((x, y) => x - y);
  return r[r.length >> 1];
}

/** The suite's ratio rows again, from alternating calls. */
function pairSuite(kind, n, cases) {
  const byName = new Map(cases.map((c) => [c.name, c]));
  for (const [k, ours, peer, , key = peer] of ratioRows) {
    const o = byName.get(ours);
    const p = byName.get(peer);
    if (k !== kind || !o || !p) continue;
    const bucket = results[kind][fmtN(n)];
    const so = bucket?.[ours]?.secondsPerCallMedian ?? o.seconds;
    const sp = bucket?.[peer]?.secondsPerCallMedian ?? p.seconds;
    (pairedRatios[kind][fmtN(n)] ??= {})[key] = pairedRatio(o.fn, p.fn, so, sp);
  }
}

async function runSuite(title, kind, n, cases) {
  if (cases.length === 0) return;
  const bucket = (results[kind][fmtN(n)] ??= {});
  console.log('');
  await b.suite(
    title,
    ...cases.map((c) => b.add(c.name, c.fn, caseOptions(c.seconds))),
    b.cycle((r) => {
      // Throughput from the MEDIAN sample (seconds per call): robust to load spikes on a shared
      // machine. benchmark.js's mean-based hz is kept as opsMean.
      const ops = r.details.median > 0 ? 1 / r.details.median : r.ops;
      const eps = ops * n;
      bucket[r.name] = {
        ops,
        elementsPerSec: eps,
        opsMean: r.ops,
        rme: r.margin,
        samples: r.samples,
        secondsPerCallMedian: r.details.median,
      };
      console.log(
        `  ${r.name.padEnd(34)} ${fmtNum(ops).padStart(7)} ops/s  ${fmtNum(eps).padStart(7)} elements/s  ` +
          `(median of ${r.samples} samples; mean ${fmtNum(r.ops)} ops/s ±${r.margin.toFixed(1)}%)`,
      );
    }),
    b.complete((s) => {
      if (s.results.length > 1) console.log(`  fastest: ${s.fastest.name}`);
    }),
  );
  pairSuite(kind, n, cases);
}

// ------------------------------------------------------------------------------------------------
// Header
// ------------------------------------------------------------------------------------------------
const tStart = now();
console.log('focal-ghm benchmarks' + (QUICK ? ' (--quick)' : ''));
console.log(`  library: ${path.relative(process.cwd(), distPath) || distPath}`);
console.log(`  node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} threads), ${os.platform()}-${os.arch()}`);
const tf = await setupTf('cpu'); // initialize both backends up front, so cases can switch synchronously
await setupTf('wasm');
console.log(`  TF.js ${tf.version_core}: ${tfBackendInfo(tf)} / cpu`);
const load1 = os.loadavg()[0];
if (load1 > 0.75 * os.cpus().length) {
  console.log(`  NOTE: load average ${load1.toFixed(2)} on ${os.cpus().length} threads: the machine is busy, expect noisy timings`);
}
console.log(`  sizes ${SIZES_RUN.map(fmtN).join(', ')}; GHM-C at ${fmtN(GHM_N)}; 1e8 accuracy check ${BIG ? 'on' : 'off'}`);
console.log('  timed TF.js calls include tensor creation from the typed arrays, dataSync() read-back and disposal');

// ------------------------------------------------------------------------------------------------
// 1. Sigmoid focal forward
// ------------------------------------------------------------------------------------------------
for (const n of SIZES_RUN) {
  const { logits, targets } = getData(n);
  console.log(`\n== sigmoid focal forward, N=${fmtN(n)}: verifying peers`);
  const peers = [
    { name: 'focal-ghm', fn: () => lib.sigmoidFocalLoss(logits, targets, focalOpts).loss },
    { name: 'scalar JS', fn: () => sigmoidFocalForward(logits, targets, ALPHA, GAMMA) },
    { name: 'TF.js wasm', backend: 'wasm', fn: () => (useBackendSync(tf, 'wasm'), tfFocalFromArrays(tf, logits, targets, ALPHA, GAMMA)) },
    { name: 'TF.js cpu', backend: 'cpu', fn: () => (useBackendSync(tf, 'cpu'), tfFocalFromArrays(tf, logits, targets, ALPHA, GAMMA)) },
  ];
  const cases = [];
  let ref;
  for (const p of peers) {
    const w = timed(p.fn); // warm-up (JIT, first-call allocations)
    const r = w.error ? w : timed(p.fn);
    if (r.error) {
      warn(`forward N=${fmtN(n)}: ${p.name} threw (${r.error.message}); case skipped`);
      if (p.name === 'focal-ghm') break; // nothing to compare against
      continue;
    }
    if (p.name === 'focal-ghm') {
      ref = r.value;
      console.log(`  focal-ghm loss ${ref.toPrecision(10)}`);
    } else {
      const e = rel(r.value, ref);
      let note = '';
      if (!(e <= REL_TOL)) {
        if (p.backend) {
          // A float32 mean over N elements drifts: tell a reduction error from a formula error.
          useBackendSync(tf, p.backend);
          const el = tfElementwiseFocalFromArrays(tf, logits, targets, ALPHA, GAMMA);
          let s = 0;
          for (let i = 0; i < el.length; i++) s += el[i];
          const e64 = rel(s / el.length, ref);
          note = `; its elementwise losses summed in float64 differ by ${e64.toExponential(2)}` +
            (e64 <= REL_TOL ? ' (the gap is TF.js\'s float32 reduction, not the formula)' : '');
        }
        warn(`forward N=${fmtN(n)}: ${p.name} loss ${r.value} differs from focal-ghm ${ref} by rel ${e.toExponential(2)} > ${REL_TOL}${note}`);
      }
      console.log(`  ${p.name.padEnd(12)} loss ${Number(r.value).toPrecision(10)}  rel diff ${e.toExponential(2)}`);
    }
    cases.push({ name: p.name, fn: p.fn, seconds: r.seconds });
  }
  await runSuite(`sigmoid focal forward, N=${fmtN(n)}`, 'forward', n, cases);
}

// ------------------------------------------------------------------------------------------------
// 2. Forward + gradient
// ------------------------------------------------------------------------------------------------
for (const n of SIZES_RUN) {
  const { logits, targets } = getData(n);
  console.log(`\n== sigmoid focal forward+gradient, N=${fmtN(n)}: verifying peers`);
  // Like for like: the scalar peer writes into a reused buffer, and so does focal-ghm (its
  // `out.grad` option). The call that returns a new array each time is timed too, for reference.
  const gradOut = new Float32Array(n);
  const ourGrad = new Float32Array(n);
  const peers = [
    { name: 'focal-ghm (grad)', fn: () => lib.sigmoidFocalLoss(logits, targets, { ...focalGradOpts, out: { grad: ourGrad } }) },
    { name: 'focal-ghm (grad, new array)', fn: () => lib.sigmoidFocalLoss(logits, targets, focalGradOpts) },
    {
      name: 'scalar JS fwd+bwd',
      fn: () => ({ loss: sigmoidFocalForwardBackward(logits, targets, ALPHA, GAMMA, gradOut), grad: gradOut }),
    },
    {
      name: 'TF.js wasm valueAndGrad',
      backend: 'wasm',
      fn: () => (useBackendSync(tf, 'wasm'), tfFocalWithGradFromArrays(tf, logits, targets, ALPHA, GAMMA)),
    },
  ];
  const cases = [];
  let ref;
  for (const p of peers) {
    const w = timed(p.fn); // warm-up (JIT, first-call allocations)
    const r = w.error ? w : timed(p.fn);
    if (r.error || !r.value || !r.value.grad || r.value.grad.length !== n) {
      warn(`forward+grad N=${fmtN(n)}: ${p.name} ${r.error ? `threw (${r.error.message})` : 'returned no gradient of length N'}; case skipped`);
      if (p.name.startsWith('focal-ghm')) break;
      continue;
    }
    if (!ref) {
      ref = { loss: r.value.loss, grad: Float32Array.from(r.value.grad) };
      console.log(`  focal-ghm loss ${ref.loss.toPrecision(10)}`);
    } else {
      const e = rel(r.value.loss, ref.loss);
      const ge = gradRelErr(r.value.grad, ref.grad);
      if (!(e <= REL_TOL)) {
        const note = p.backend && ge <= REL_TOL
          ? ' (gradient agrees: the same float32 mean reduction as in the forward suite)'
          : '';
        warn(`forward+grad N=${fmtN(n)}: ${p.name} loss differs from focal-ghm by rel ${e.toExponential(2)} > ${REL_TOL}${note}`);
      }
      if (!(ge <= REL_TOL)) warn(`forward+grad N=${fmtN(n)}: ${p.name} gradient differs from focal-ghm: max |Δ| / max |g| = ${ge.toExponential(2)} > ${REL_TOL}`);
      console.log(`  ${p.name.padEnd(24)} loss rel diff ${e.toExponential(2)}, grad max|Δ|/max|g| ${ge.toExponential(2)}`);
    }
    cases.push({ name: p.name, fn: p.fn, seconds: r.seconds });
  }
  await runSuite(`sigmoid focal forward+gradient, N=${fmtN(n)}`, 'forwardGrad', n, cases);
}

// ------------------------------------------------------------------------------------------------
// 3. GHM-C forward
// ------------------------------------------------------------------------------------------------
{
  const n = GHM_N;
  const { logits, targets } = getData(n);
  const ghmOpts = { bins: GHM_BINS, momentum: GHM_MOMENTUM, lossWeight: 1 };
  console.log(`\n== GHM-C forward (bins ${GHM_BINS}, momentum ${GHM_MOMENTUM}), N=${fmtN(n)}: verifying peers`);
  // Verification on fresh objects: two consecutive calls (the second exercises the EMA state).
  const fresh = {
    'focal-ghm GHMC': () => {
      const g = new lib.GHMC(ghmOpts);
      return (x, t) => g.forward(x, t, undefined, { grad: false }).loss;
    },
    'scalar mmdet-style': () => {
      const s = createGhmcState(ghmOpts);
      return (x, t) => ghmcMmdetStyle(s, x, t, undefined);
    },
    'scalar single-pass': () => {
      const s = createGhmcState(ghmOpts);
      return (x, t) => ghmcSinglePass(s, x, t, undefined);
    },
  };
  const cases = [];
  let ref;
  for (const [name, make] of Object.entries(fresh)) {
    let vals;
    try {
      const f = make();
      vals = [f(logits, targets), f(logits, targets)];
    } catch (error) {
      warn(`GHM-C: ${name} threw (${error.message}); case skipped`);
      if (name.startsWith('focal-ghm')) break;
      continue;
    }
    if (name.startsWith('focal-ghm')) {
      ref = vals;
      console.log(`  focal-ghm loss (call 1, call 2) ${vals.map((v) => v.toPrecision(10)).join(', ')}`);
    } else {
      const e = Math.max(rel(vals[0], ref[0]), rel(vals[1], ref[1]));
      if (!(e <= REL_TOL)) warn(`GHM-C: ${name} losses ${vals.join(', ')} differ from focal-ghm ${ref.join(', ')} by rel ${e.toExponential(2)} > ${REL_TOL}`);
      console.log(`  ${name.padEnd(20)} rel diff ${e.toExponential(2)}`);
    }
    // The timed object keeps its EMA state across iterations, like a training loop.
    const f = make();
    const r = timed(() => f(logits, targets));
    cases.push({ name, fn: () => f(logits, targets), seconds: r.seconds });
  }
  if (ref) {
    const ff = () => lib.sigmoidFocalLoss(logits, targets, focalOpts).loss;
    timed(ff);
    const r = timed(ff);
    if (r.error) warn(`GHM-C: focal-ghm sigmoid focal forward threw (${r.error.message}); case skipped`);
    else cases.push({ name: 'focal-ghm sigmoid focal forward', fn: ff, seconds: r.seconds });
  }
  await runSuite(`GHM-C forward (bins ${GHM_BINS}, momentum ${GHM_MOMENTUM}), N=${fmtN(n)}`, 'ghmc', n, cases);
  const ours = cases.find((c) => c.name === 'focal-ghm GHMC');
  const focal = cases.find((c) => c.name === 'focal-ghm sigmoid focal forward');
  // time(GHM-C) / time(focal forward), alternating (focal in the role of "ours").
  if (ours && focal) ghmcPaired = pairedRatio(focal.fn, ours.fn, focal.seconds, ours.seconds);
}

// ------------------------------------------------------------------------------------------------
// Ratios
// ------------------------------------------------------------------------------------------------
const ratios = { forward: {}, forwardGrad: {}, ghmc: {} };
const sizeKeys = [...new Set([...SIZES_RUN, GHM_N])].sort((a, b) => a - b).map(fmtN);
for (const [kind, ours, peer, , key = peer] of ratioRows) {
  for (const size of sizeKeys) {
    const r = results[kind][size];
    if (r && r[ours] && r[peer]) ((ratios[kind][size] ??= {})[key] = r[ours].ops / r[peer].ops);
  }
}
const g = results.ghmc[fmtN(GHM_N)];
const ghmcOverFocal =
  g && g['focal-ghm GHMC'] && g['focal-ghm sigmoid focal forward']
    ? g['focal-ghm sigmoid focal forward'].ops / g['focal-ghm GHMC'].ops
    : null;

/** Prints `table[kind][size][key]` as one row per ratio row, one column per size. */
function printRatios(title, table) {
  const col = 10;
  console.log(`\n== ${title}`);
  console.log(`  ${''.padEnd(38)}${sizeKeys.map((k) => `N=${k}`.padStart(col)).join('')}`);
  for (const [kind, , peer, label, key = peer] of ratioRows) {
    const cells = sizeKeys.map((k) => {
      const v = table[kind][k]?.[key];
      return (v === undefined ? '—' : `${v.toFixed(2)}×`).padStart(col);
    });
    if (cells.some((c) => c.trim() !== '—')) console.log(`  ${label.padEnd(38)}${cells.join('')}`);
  }
}
printRatios('Ratios: focal-ghm throughput / peer throughput (> 1: focal-ghm faster; median-based)', ratios);
printRatios('The same ratios from alternating calls (median of per-round ratios; see pairedRatio)', pairedRatios);
if (ghmcOverFocal !== null) {
  console.log(`  GHM-C time / focal forward time at N=${fmtN(GHM_N)}, from the suite above: ${ghmcOverFocal.toFixed(2)}`);
}
if (ghmcPaired !== null) {
  console.log(
    `  GHM-C time / focal forward time at N=${fmtN(GHM_N)}, alternating calls (median of per-pair ratios): ` +
      `${ghmcPaired.toFixed(2)} (target ≤ 1.5: ${ghmcPaired <= 1.5 ? 'met' : 'NOT met'})`,
  );
}

// ------------------------------------------------------------------------------------------------
// 4. Small batches: one image's anchors per call, where validation, layout and the wasm call's
//    fixed cost weigh as much as the elements
// ------------------------------------------------------------------------------------------------
/** Median microseconds per call of each function, called in alternating rounds (drift-proof). */
function perCallMicros(fns) {
  const reps = fns.map((f) => {
    const t0 = now();
    let k = 0;
    while (now() - t0 < 0.005) (f(), k++);
    return Math.max(1, k);
  });
  const times = fns.map(() => []);
  for (let round = 0; round < (QUICK ? 5 : 15); round++) {
    fns.forEach((f, i) => {
      const t0 = now();
      for (let k = 0; k < reps[i]; k++) f();
      times[i].push(((now() - t0) / reps[i]) * 1e6);
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]);
}

const smallBatches = {};
console.log('\n== small batches: microseconds per call (alternating calls, median of rounds)');
for (const n of [16, 1000]) {
  const { logits, targets } = getData(n);
  const ghmc = new lib.GHMC({ bins: GHM_BINS, momentum: GHM_MOMENTUM });
  const ours = lib.sigmoidFocalLoss(logits, targets, focalOpts).loss;
  const peer = sigmoidFocalForward(logits, targets, ALPHA, GAMMA);
  if (!(rel(ours, peer) <= REL_TOL)) warn(`small batches N=${n}: scalar JS loss ${peer} differs from focal-ghm ${ours}`);
  const [f, sc, gh] = perCallMicros([
    () => lib.sigmoidFocalLoss(logits, targets, focalOpts).loss,
    () => sigmoidFocalForward(logits, targets, ALPHA, GAMMA),
    () => ghmc.forward(logits, targets).loss,
  ]);
  smallBatches[fmtN(n)] = { focalGhmForwardMicros: f, scalarJsForwardMicros: sc, focalGhmGhmcForwardMicros: gh };
  console.log(
    `  N=${String(n).padEnd(5)} focal-ghm forward ${f.toFixed(2)} µs, scalar JS forward ${sc.toFixed(2)} µs ` +
      `(focal-ghm ${(sc / f).toFixed(2)}× its speed); focal-ghm GHM-C forward ${gh.toFixed(2)} µs`,
  );
}

// ------------------------------------------------------------------------------------------------
// 5. Accuracy: reduction 'sum' over 1e8 elements
// ------------------------------------------------------------------------------------------------
let big = null;
if (BIG) {
  console.log(`\n== accuracy: sigmoid focal reduction 'sum' over ${fmtN(BIG_N)} elements`);
  const t0 = now();
  const logits = new Float32Array(BIG_N);
  const targets = new Uint8Array(BIG_N);
  fillData(logits, targets, { seed: 20240601 });
  const t1 = now();
  const reference = sigmoidFocalSumKahan(logits, targets, ALPHA, GAMMA);
  const t2 = now();
  console.log(`  data ${(t1 - t0).toFixed(1)} s; float64 Neumaier reference ${reference.toPrecision(15)} (${(t2 - t1).toFixed(1)} s)`);
  const r = timed(() => lib.sigmoidFocalLoss(logits, targets, { alpha: ALPHA, gamma: GAMMA, reduction: 'sum' }).loss);
  if (r.error) {
    big = { n: BIG_N, reference, error: String(r.error.message), pass: false };
    console.log(`  FAIL: focal-ghm threw on ${fmtN(BIG_N)} elements: ${r.error.message}`);
  } else {
    const e = rel(r.value, reference);
    big = { n: BIG_N, reference, focalGhm: r.value, relError: e, seconds: r.seconds, tolerance: BIG_TOL, pass: e <= BIG_TOL };
    console.log(
      `  focal-ghm ${r.value.toPrecision(15)} in ${r.seconds.toFixed(2)} s; relative error ${e.toExponential(3)} ` +
        `(≤ ${BIG_TOL}: ${big.pass ? 'PASS' : 'FAIL'})`,
    );
  }
  if (!big.pass) process.exitCode = 1;
}

// ------------------------------------------------------------------------------------------------
// JSON
// ------------------------------------------------------------------------------------------------
const out = {
  generatedAt: new Date().toISOString(),
  quick: QUICK,
  environment: {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? null,
    threads: os.cpus().length,
    platform: `${os.platform()}-${os.arch()}`,
    loadAverageAtStart: load1,
    tfjs: tf.version_core,
    tfjsWasm: (useBackendSync(tf, 'wasm'), tfBackendInfo(tf)),
  },
  settings: { alpha: ALPHA, gamma: GAMMA, reduction: 'mean', sizes: SIZES_RUN, ghmc: { n: GHM_N, bins: GHM_BINS, momentum: GHM_MOMENTUM } },
  ratioDefinition:
    'focal-ghm throughput / peer throughput (> 1 means focal-ghm is faster); throughput = 1 / median seconds per call. ' +
    'ratiosPaired: the same from alternating calls, the median over rounds of peer time / focal-ghm time',
  ratios,
  ghmcTimeOverFocalForwardTime: ghmcOverFocal,
  ghmcTimeOverFocalForwardTimePaired: ghmcPaired,
  ratiosPaired: pairedRatios,
  results,
  smallBatchesMicrosPerCall: smallBatches,
  accuracy1e8: big,
  warnings,
  totalSeconds: now() - tStart,
};
const resultsDir = path.join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
const outPath = path.join(resultsDir, 'latest.json');
writeFileSync(outPath, JSON.stringify(out, null, 2) + '\n');

if (warnings.length) {
  console.log(`\n${warnings.length} warning(s):`);
  for (const w of warnings) console.log(`  - ${w}`);
}
console.log(`\nwrote ${path.relative(process.cwd(), outPath)} (total ${(now() - tStart).toFixed(0)} s)`);
