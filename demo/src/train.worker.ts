// The training worker: three identical MLPs (8 → 32 → 1, RetinaNet's prior bias) trained with
// Adam on the same batches, one with BCE, one with the focal loss, one with GHM-C, all three from
// focal-ghm/tfjs (BCE is the focal loss with γ = 0 and no α). Posts losses every step, held-out
// metrics every EVAL_EVERY steps, and the GHM-C model's gradient-norm histogram.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { GHMC, init } from 'focal-ghm';
import { GHMCLoss, sigmoidFocalLoss } from 'focal-ghm/tfjs';
import { rng } from '../../cli/src/random';
import { averagePrecision, FEATURES, makeDataset } from './data';
import { MODELS, type FocalSettings, type FromWorker, type ModelName, type ToWorker } from './protocol';

const BATCH = 2048;
const HIDDEN = 32;
const EVAL_EVERY = 10;
const MAX_STEPS = 5000;
const BINS = 10;

const post = (m: FromWorker) => postMessage(m);

class Mlp {
  readonly vars: tf.Variable[];
  constructor(seed: number) {
    const prior = -Math.log((1 - 0.01) / 0.01); // RetinaNet: p = 0.01 at the start
    this.vars = [
      tf.variable(tf.randomNormal([FEATURES, HIDDEN], 0, Math.sqrt(2 / FEATURES), 'float32', seed)),
      tf.variable(tf.zeros([HIDDEN])),
      tf.variable(tf.randomNormal([HIDDEN, 1], 0, Math.sqrt(1 / HIDDEN), 'float32', seed + 1)),
      tf.variable(tf.fill([1], prior)),
    ];
  }
  logits(x: tf.Tensor): tf.Tensor {
    const [w1, b1, w2, b2] = this.vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    return tf.tidy(() => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2));
  }
}

let focal: FocalSettings = { gamma: 2, alpha: 0.25 };
let running = false;
let wake: (() => void) | undefined;

onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === 'focal') focal = { gamma: m.gamma, alpha: m.alpha };
  if (m.type === 'run') running = m.running;
  wake?.();
};

async function setBackend(): Promise<string> {
  setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });
  for (const name of ['wasm', 'cpu']) {
    try {
      if (await tf.setBackend(name)) return name;
    } catch {
      // try the next one
    }
  }
  throw new Error('no TensorFlow.js backend could start');
}

async function main(): Promise<void> {
  const [backend] = await Promise.all([setBackend(), init()]);
  const train = makeDataset(60_000, 1);
  const test = makeDataset(20_000, 2);
  const xTrain = tf.tensor2d(train.x, [train.n, FEATURES]);
  const yTrain = tf.tensor2d(train.y, [train.n, 1]);
  const xTest = tf.tensor2d(test.x, [test.n, FEATURES]);
  const ghm = new GHMCLoss({ bins: BINS, momentum: 0.75 });
  const losses: Record<ModelName, (y: tf.Tensor, logits: tf.Tensor) => tf.Scalar> = {
    BCE: (y, p) => sigmoidFocalLoss(y, p, { gamma: 0, alpha: null }),
    focal: (y, p) => sigmoidFocalLoss(y, p, { gamma: focal.gamma, alpha: focal.alpha }),
    'GHM-C': ghm.loss,
  };
  const models = Object.fromEntries(MODELS.map((m) => [m, { net: new Mlp(7), opt: tf.train.adam(0.01) as tf.Optimizer }])) as Record<ModelName, { net: Mlp; opt: tf.Optimizer }>;
  const pick = rng(3);
  const stats = new GHMC({ bins: BINS }); // counts the batch's bins for the histogram (no state used)
  post({ type: 'ready', backend });

  for (let step = 1; step <= MAX_STEPS; step++) {
    while (!running) await new Promise<void>((r) => (wake = r));
    const idx = tf.tensor1d(Int32Array.from({ length: BATCH }, () => Math.floor(pick() * train.n)), 'int32');
    const xb = tf.gather(xTrain, idx);
    const yb = tf.gather(yTrain, idx);
    idx.dispose();
    // The GHM-C model's logits before its step: the batch its EMA step sees.
    const ghmLogits = models['GHM-C'].net.logits(xb);
    const stepLosses = {} as Record<ModelName, number>;
    const t0 = performance.now();
    for (const m of MODELS) {
      const { net, opt } = models[m];
      const cost = opt.minimize(() => losses[m](yb, net.logits(xb)), true, net.vars)!;
      stepLosses[m] = cost.dataSync()[0]!;
      cost.dispose();
    }
    const throughput = (BATCH * MODELS.length) / ((performance.now() - t0) / 1000);
    postHistogram(step, stats, ghm, ghmLogits.dataSync() as Float32Array, yb.dataSync() as Float32Array);
    ghmLogits.dispose();
    xb.dispose();
    yb.dispose();
    post({ type: 'step', step, losses: stepLosses, throughput, tensors: tf.memory().numTensors });
    if (step % EVAL_EVERY === 0) post({ type: 'eval', step, metrics: evaluate(models, xTest, test.y) });
    // Let messages (pause, γ and α) in between steps.
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** Positives and negatives per bin of g in this batch (the library's GHM-C binning), and the weights the EMA gives the non-empty bins. */
function postHistogram(step: number, stats: GHMC, ghm: GHMCLoss, logits: Float32Array, y: Float32Array): void {
  const targets = Uint8Array.from(y);
  const all = stats.collect(logits, targets).counts;
  const positives = Array.from(stats.collect(logits, targets, y).counts);
  const negatives = Array.from(all, (c, i) => c - positives[i]!);
  const acc = ghm.accSum;
  const nonEmpty = all.filter((c) => c > 0).length;
  // mmdetection's weight: tot / acc_sum[bin] / (non-empty bins), for the bins this batch fills.
  const weights = Array.from(all, (c, i) => (c > 0 && acc[i]! > 0 ? logits.length / acc[i]! / nonEmpty : 0));
  const edges = Array.from({ length: BINS + 1 }, (_, i) => (i === BINS ? 1 + 1e-6 : i / BINS));
  post({ type: 'histogram', step, bins: BINS, edges, positives, negatives, weights });
}

function evaluate(models: Record<ModelName, { net: Mlp }>, x: tf.Tensor, y: Float32Array) {
  const out = {} as Record<ModelName, { ap: number; precision: number; recall: number }>;
  for (const m of MODELS) {
    const scores = tf.tidy(() => tf.sigmoid(models[m].net.logits(x)).dataSync() as Float32Array);
    let tp = 0;
    let fp = 0;
    let pos = 0;
    for (let i = 0; i < y.length; i++) {
      const predicted = scores[i]! >= 0.5;
      if (y[i] === 1) pos++;
      if (predicted && y[i] === 1) tp++;
      if (predicted && y[i] === 0) fp++;
    }
    out[m] = { ap: averagePrecision(scores, y), precision: tp + fp > 0 ? tp / (tp + fp) : 0, recall: pos > 0 ? tp / pos : 0 };
  }
  return out;
}

main().catch((e: unknown) => post({ type: 'failed', message: e instanceof Error ? e.message : String(e) }));
