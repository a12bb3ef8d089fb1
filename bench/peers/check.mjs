// Standalone sanity check of the benchmark peers (no focal-ghm build needed):
//   node bench/peers/check.mjs
// 1. scalar focal forward / forward+backward against the golden sigmoid-focal cases that the
//    peers cover (uint8 targets, no element weights, numeric or null alpha);
// 2. both scalar GHM-C peers against every golden `ghmc` case (loss and the EMA state);
// 3. TF.js (wasm and cpu) against the scalar peer on the bench's synthetic data, incl. gradients
//    and a tensor-leak check.
// Exits with status 1 on any failure.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  sigmoidFocalForward,
  sigmoidFocalForwardBackward,
  sigmoidFocalSumKahan,
  createGhmcState,
  ghmcMmdetStyle,
  ghmcSinglePass,
} from './scalar.mjs';
import { setupTf, tfFocalFromArrays, tfFocalWithGradFromArrays } from './tfjs.mjs';
import { makeData } from '../data.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const goldenDir = path.join(here, '../../test/fixtures/golden');
const haveGolden = existsSync(path.join(goldenDir, 'ghmc.json'));

let failures = 0;
function check(ok, msg) {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${msg}`);
}
const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

function decode(a) {
  if (a === null || a === undefined) return null;
  const bytes = Buffer.from(a.data, 'base64');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  switch (a.dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'uint8': return new Uint8Array(buf);
    case 'int32': return new Int32Array(buf);
    default: throw new Error(`dtype ${a.dtype}`);
  }
}

if (!haveGolden) {
  console.log('golden files not found; skipping golden checks');
} else {
  // ---- sigmoid focal -------------------------------------------------------------------------
  const sf = JSON.parse(readFileSync(path.join(goldenDir, 'sigmoid_focal.json'), 'utf8'));
  let used = 0;
  for (const [k, c] of sf.cases.entries()) {
    if (c.kind !== 'sigmoid_focal' || c.weight || c.targets.dtype !== 'uint8' || c.options.alpha === 'auto') continue;
    used++;
    const x = decode(c.logits);
    const t = decode(c.targets);
    const { alpha, gamma, reduction, avgFactor, lossWeight = 1 } = c.options;
    const n = x.length;
    const denom = reduction === 'mean' ? (avgFactor ?? n) : 1;
    const expLoss =
      reduction === 'none' ? decode(c.expected.loss).reduce((s, v) => s + v, 0) : c.expected.loss;
    const scale = reduction === 'none' ? n : (n * lossWeight) / denom; // our mean → case's scale
    const lf = sigmoidFocalForward(x, t, alpha, gamma) * scale;
    const gOut = new Float32Array(n);
    const lb = sigmoidFocalForwardBackward(x, t, alpha, gamma, gOut) * scale;
    const ls = sigmoidFocalSumKahan(x, t, alpha, gamma) * (scale / n);
    const eg = decode(c.expected.grad);
    let maxErr = 0;
    for (let i = 0; i < n; i++) {
      const err = Math.abs(gOut[i] * scale - eg[i]) / Math.max(1, Math.abs(eg[i]));
      if (!(err <= maxErr)) maxErr = err;
    }
    check(
      rel(lf, expLoss) <= 1e-5 && rel(lb, expLoss) <= 1e-5 && rel(ls, expLoss) <= 1e-5 && maxErr <= 1e-5,
      `sigmoid_focal case ${k} (n=${n}, α=${alpha}, γ=${gamma}, ${reduction}): rel ${rel(lf, expLoss).toExponential(2)} / ${rel(lb, expLoss).toExponential(2)} / kahan ${rel(ls, expLoss).toExponential(2)}, grad max err ${maxErr.toExponential(2)}`,
    );
  }
  check(used > 0, `used ${used} golden sigmoid_focal cases`);

  // ---- GHM-C ---------------------------------------------------------------------------------
  const gh = JSON.parse(readFileSync(path.join(goldenDir, 'ghmc.json'), 'utf8'));
  for (const [k, c] of gh.cases.entries()) {
    if (c.kind !== 'ghmc') continue;
    const opts = { bins: 10, momentum: 0, lossWeight: 1, ...c.options };
    const sA = createGhmcState(opts);
    const sB = createGhmcState(opts);
    for (const [j, b] of c.batches.entries()) {
      const x = decode(b.logits);
      const t = decode(b.targets);
      const lw = decode(b.labelWeight) ?? undefined;
      const la = ghmcMmdetStyle(sA, x, t, lw);
      const lb = ghmcSinglePass(sB, x, t, lw);
      const e = b.expected.loss;
      const relOf = (l) => (e === 0 ? Math.abs(l) : rel(l, e));
      let accOk = true;
      const acc = decode(b.expected.accSum);
      if (acc) {
        for (let i = 0; i < acc.length; i++) {
          if (Math.abs(sA.acc[i] - acc[i]) > 1e-9 * Math.max(1, acc[i])) accOk = false;
          if (Math.abs(sB.acc[i] - acc[i]) > 1e-9 * Math.max(1, acc[i])) accOk = false;
        }
      }
      check(
        relOf(la) <= 1e-5 && relOf(lb) <= 1e-5 && accOk,
        `ghmc case ${k} batch ${j} (n=${x.length}, bins ${opts.bins}, m ${opts.momentum}): mmdet rel ${relOf(la).toExponential(2)}, single-pass rel ${relOf(lb).toExponential(2)}, acc ${acc ? (accOk ? 'exact' : 'MISMATCH') : 'n/a'}`,
      );
    }
  }
}

// ---- TF.js vs scalar on the bench data ---------------------------------------------------------
for (const backend of ['wasm', 'cpu']) {
  const tf = await setupTf(backend);
  for (const n of [1e4, 1e5]) {
    const { logits, targets } = makeData(n, { seed: 7 });
    const ref = sigmoidFocalForward(logits, targets, 0.25, 2);
    const refG = new Float32Array(n);
    sigmoidFocalForwardBackward(logits, targets, 0.25, 2, refG);
    const before = tf.memory().numTensors;
    const v = tfFocalFromArrays(tf, logits, targets);
    const { loss, grad } = tfFocalWithGradFromArrays(tf, logits, targets);
    tfFocalFromArrays(tf, logits, targets);
    tfFocalWithGradFromArrays(tf, logits, targets);
    const after = tf.memory().numTensors;
    let maxAbs = 0;
    let maxErr = 0;
    for (let i = 0; i < n; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(refG[i]));
      maxErr = Math.max(maxErr, Math.abs(grad[i] - refG[i]));
    }
    check(
      rel(v, ref) <= 1e-4 && rel(loss, ref) <= 1e-4 && maxErr / maxAbs <= 1e-4 && after === before,
      `tfjs-${tf.getBackend()} n=${n}: loss rel ${rel(v, ref).toExponential(2)}, valueAndGrad loss rel ${rel(loss, ref).toExponential(2)}, grad max err / max|g| ${(maxErr / maxAbs).toExponential(2)}, tensors ${before}→${after}`,
    );
  }
}

console.log(failures ? `\n${failures} FAILURE(S)` : '\nall peer checks passed');
process.exit(failures ? 1 : 0);
