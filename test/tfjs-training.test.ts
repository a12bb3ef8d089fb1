// Training with focal-ghm/tfjs, on TF.js's cpu and wasm backends: a small MLP on synthetic
// imbalanced data (1% positives), 100 full-batch steps of Adam.
// - With sigmoidFocalLoss (and softmaxFocalLoss on a 3-class version) it ends at the same
//   weights as with the same loss composed from TF.js ops (bench/peers/tfjs.mjs), and its loss
//   falls.
// - Keras-style: a tfjs-layers model compiled with the adapter's loss (model.compile, model.fit)
//   trains to the weights the composed loss gives it.
// - With GHMCLoss its loss falls, and its EMA state and per-step losses are exactly those of the
//   core GHMC fed the same logits.
// - With the focal family of the extras (qualityFocalLoss, varifocalLoss, distributionFocalLoss,
//   poly1) it ends at the weights the composed loss reaches, and its loss falls.

import * as tf from '@tensorflow/tfjs-core';
import * as tl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { focalElementwiseTensor, focalLossTensor, setupTf, softmaxFocalRowsTensor } from '../bench/peers/tfjs.mjs';
import { extras } from '../ts/extras';
import { GHMC, init } from '../ts/index';
import { distributionFocalLoss, GHMCLoss, qualityFocalLoss, sigmoidFocalLoss, softmaxFocalLoss, varifocalLoss } from '../ts/tfjs';
import { rng } from './helpers/random';

const BACKENDS = ['cpu', 'wasm'] as const;
const SAMPLES = 1000;
const FEATURES = 8;
const HIDDEN = 16;
const STEPS = 100;
const LEARNING_RATE = 0.01;

beforeAll(async () => {
  await init({ extras });
  for (const b of BACKENDS) await setupTf(b);
});

/** Features ~ N(0, 1); the 1% positives (class ≥ 1) shifted by +1.5 on the first features. */
function dataset(classes: number): { x: tf.Tensor2D; labels: Int32Array } {
  const r = rng(2024);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const labels = new Int32Array(SAMPLES);
  const x = new Float32Array(SAMPLES * FEATURES);
  for (let i = 0; i < SAMPLES; i++) {
    labels[i] = i % 100 === 7 ? 1 + (i % (classes - 1 || 1)) : 0;
    for (let j = 0; j < FEATURES; j++) x[i * FEATURES + j] = gauss() + (labels[i]! > 0 && j < 2 + labels[i]! ? 1.5 : 0);
  }
  return { x: tf.tensor2d(x, [SAMPLES, FEATURES]), labels };
}

/** A two-layer MLP with seeded (Glorot-uniform) weights. */
function mlp(outputs: number): { params: tf.Variable[]; forward: (x: tf.Tensor) => tf.Tensor } {
  const r = rng(99);
  const glorot = (fanIn: number, fanOut: number) => {
    const lim = Math.sqrt(6 / (fanIn + fanOut));
    return tf.variable(tf.tensor2d(Float32Array.from({ length: fanIn * fanOut }, () => (2 * r() - 1) * lim), [fanIn, fanOut]));
  };
  // RetinaNet's prior for the rare class: start at p ≈ 0.01. (tidy: the initial values go.)
  const params = tf.tidy(() => [glorot(FEATURES, HIDDEN), tf.variable(tf.zeros([HIDDEN])), glorot(HIDDEN, outputs), tf.variable(tf.fill([outputs], outputs === 1 ? -4.6 : 0))]);
  const [w1, b1, w2, b2] = params as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
  return { params, forward: (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2) };
}

/** `steps` (100) Adam steps of `loss(logits)`; the final weights and the first and last losses. */
function train(outputs: number, x: tf.Tensor, loss: (logits: tf.Tensor) => tf.Scalar, steps = STEPS): { weights: Float32Array[]; first: number; last: number } {
  const { params, forward } = mlp(outputs);
  const adam = tf.train.adam(LEARNING_RATE);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const l = adam.minimize(() => loss(forward(x)), true)!;
    losses.push(l.dataSync()[0]!);
    l.dispose();
  }
  const weights = params.map((p) => p.dataSync() as Float32Array);
  tf.dispose(params);
  adam.dispose();
  return { weights, first: losses[0]!, last: losses[steps - 1]! };
}

/** The largest |a - b| over all weights. */
function maxWeightDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((w, k) => w.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[k]![i]!)))));
  return m;
}

for (const backend of BACKENDS) {
  describe(`training on the ${backend} backend`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    it('sigmoidFocalLoss: 100 Adam steps end at the weights the composed loss reaches', () => {
      const n0 = tf.memory().numTensors;
      const { x, labels } = dataset(2);
      const y = tf.tensor2d(Float32Array.from(labels), [SAMPLES, 1]);
      const ours = train(1, x, (logits) => sigmoidFocalLoss(y, logits, { alpha: 0.25, gamma: 2 }));
      const composed = train(1, x, (logits) => focalLossTensor(tf, logits, y, 0.25, 2) as tf.Scalar);
      const diff = maxWeightDiff(ours.weights, composed.weights);
      console.log(`${backend} sigmoid: loss ${ours.first.toPrecision(5)} → ${ours.last.toPrecision(5)} (composed → ${composed.last.toPrecision(5)}), max |Δw| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(ours.last - composed.last)).toBeLessThanOrEqual(1e-4 * composed.last);
      expect(ours.last).toBeLessThan(0.5 * ours.first);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(n0);
    });

    it('Keras-style: model.compile({ loss }) and model.fit train as with the composed loss; GHMCLoss as loss: ghm.loss', async () => {
      const n0 = tf.memory().numTensors;
      const { x, labels } = dataset(2);
      const y = tf.tensor2d(Float32Array.from(labels), [SAMPLES, 1]);
      const fit = async (loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor, classWeight?: Record<number, number>) => {
        const model = tl.sequential({
          layers: [
            tl.layers.dense({ units: HIDDEN, inputShape: [FEATURES], activation: 'relu', kernelInitializer: tl.initializers.glorotUniform({ seed: 1 }) }),
            tl.layers.dense({ units: 1, kernelInitializer: tl.initializers.glorotUniform({ seed: 2 }), biasInitializer: tl.initializers.constant({ value: -4.6 }) }),
          ],
        });
        const optimizer = tf.train.adam(LEARNING_RATE);
        model.compile({ optimizer, loss });
        const h = await model.fit(x, y, { epochs: 20, batchSize: 250, shuffle: false, verbose: 0, ...(classWeight ? { classWeight } : {}) });
        const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
        model.dispose();
        optimizer.dispose(); // its moments: the model does not own the optimizer it was given
        return { weights, losses: h.history.loss as number[] };
      };
      const ours = await fit((t, p) => sigmoidFocalLoss(t, p, { alpha: 0.25, gamma: 2 }));
      const composed = await fit((t, p) => focalLossTensor(tf, p, t, 0.25, 2) as tf.Scalar);
      const diff = maxWeightDiff(ours.weights, composed.weights);
      expect(diff).toBeLessThanOrEqual(1e-5);
      expect(ours.losses.at(-1)!).toBeLessThan(0.5 * ours.losses[0]!);
      // Keras classWeight weights per-sample losses: the README's per-sample form (the elementwise
      // losses' mean over the class axis) trains as the composed per-sample loss does.
      const classWeight = { 0: 1, 1: 20 };
      const perSample = await fit((t, p) => tf.mean(sigmoidFocalLoss(t, p, { reduction: 'none' }), -1), classWeight);
      const composedPerSample = await fit((t, p) => tf.mean(focalElementwiseTensor(tf, p, t, 0.25, 2), -1), classWeight);
      expect(maxWeightDiff(perSample.weights, composedPerSample.weights)).toBeLessThanOrEqual(1e-5);
      // … and differently from the scalar loss, which classWeight only scales (the trap documented).
      expect(maxWeightDiff(perSample.weights, (await fit((t, p) => sigmoidFocalLoss(t, p), classWeight)).weights)).toBeGreaterThan(1e-3);
      const ghm = new GHMCLoss({ bins: 10, momentum: 0.75 });
      const g = await fit(ghm.loss);
      expect(g.losses.at(-1)!).toBeLessThan(g.losses[0]!);
      expect(ghm.accSum.some((a) => a > 0)).toBe(true);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(n0);
    });

    it('softmaxFocalLoss (3 classes, one-hot yTrue): the same weights as the composed loss', () => {
      const n0 = tf.memory().numTensors;
      const { x, labels } = dataset(3);
      const oneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), 'float32'));
      const sparse = tf.tensor1d(labels, 'int32');
      const ours = train(3, x, (logits) => softmaxFocalLoss(oneHot, logits, { alpha: 0.5, gamma: 2 }));
      const composed = train(3, x, (logits) => tf.mean(softmaxFocalRowsTensor(tf, logits, sparse, 0.5, 2)) as tf.Scalar);
      const diff = maxWeightDiff(ours.weights, composed.weights);
      console.log(`${backend} softmax: loss ${ours.first.toPrecision(5)} → ${ours.last.toPrecision(5)} (composed → ${composed.last.toPrecision(5)}), max |Δw| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(1e-5);
      expect(ours.last).toBeLessThan(0.5 * ours.first);
      tf.dispose([x, oneHot, sparse]);
      expect(tf.memory().numTensors).toBe(n0);
    });

    describe('the focal family (extras): 60 Adam steps end at the weights the composed loss reaches', () => {
      const FAMILY_STEPS = 60;
      /** Stable BCE with logits. */
      const bce = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
      /** The positives' quality scores (a pseudo-IoU in [0.3, 1)) at their class's column: [N, classes - 1]. */
      const qualityScores = (labels: Int32Array, classes: number) => {
        const r = rng(5);
        const y = new Float32Array(SAMPLES * (classes - 1));
        labels.forEach((l, i) => {
          if (l > 0) y[i * (classes - 1) + l - 1] = 0.3 + 0.7 * r();
        });
        return tf.tensor2d(y, [SAMPLES, classes - 1]);
      };
      const compare = (name: string, ours: ReturnType<typeof train>, composed: ReturnType<typeof train>) => {
        const diff = maxWeightDiff(ours.weights, composed.weights);
        console.log(`${backend} ${name}: loss ${ours.first.toPrecision(5)} → ${ours.last.toPrecision(5)} (composed → ${composed.last.toPrecision(5)}), max |Δw| ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(1e-5);
        expect(ours.last).toBeLessThan(0.8 * ours.first);
      };

      it('qualityFocalLoss (2 classes + background; soft targets y)', () => {
        const n0 = tf.memory().numTensors;
        const { x, labels } = dataset(3);
        const y = qualityScores(labels, 3);
        const ours = train(2, x, (logits) => qualityFocalLoss(y, logits, { beta: 2 }), FAMILY_STEPS);
        const composed = train(2, x, (logits) => tf.mean(tf.sum(tf.mul(bce(logits, y), tf.square(tf.sub(y, tf.sigmoid(logits)))), -1)) as tf.Scalar, FAMILY_STEPS);
        compare('QFL', ours, composed);
        tf.dispose([x, y]);
        expect(tf.memory().numTensors).toBe(n0);
      });

      it('varifocalLoss (one class, IoU-aware targets)', () => {
        const n0 = tf.memory().numTensors;
        const { x, labels } = dataset(2);
        const q = qualityScores(labels, 2);
        const ours = train(1, x, (logits) => varifocalLoss(q, logits), FAMILY_STEPS);
        const composed = train(
          1,
          x,
          (logits) => tf.mean(tf.mul(bce(logits, q), tf.where(tf.greater(q, 0), q, tf.mul(0.75, tf.square(tf.sub(tf.sigmoid(logits), q)))))) as tf.Scalar,
          FAMILY_STEPS,
        );
        compare('VFL', ours, composed);
        tf.dispose([x, q]);
        expect(tf.memory().numTensors).toBe(n0);
      });

      it('distributionFocalLoss (a distribution over 0…8 per sample)', () => {
        const n0 = tf.memory().numTensors;
        const { x } = dataset(2);
        // A target the features tell: 4 + 1.5·(x0 + x1), kept in [0, 8).
        const y = tf.tidy(() => tf.clipByValue(tf.add(4, tf.mul(1.5, tf.sum(tf.slice(x, [0, 0], [SAMPLES, 2]), -1))), 0, 7.99));
        const l = tf.floor(y);
        const twoHot = tf.tidy(() => tf.add(tf.mul(tf.oneHot(tf.cast(l, 'int32'), 9), tf.expandDims(tf.sub(tf.add(l, 1), y), -1)), tf.mul(tf.oneHot(tf.cast(tf.add(l, 1), 'int32'), 9), tf.expandDims(tf.sub(y, l), -1))));
        const ours = train(9, x, (logits) => distributionFocalLoss(y, logits), FAMILY_STEPS);
        const composed = train(9, x, (logits) => tf.mean(tf.neg(tf.sum(tf.mul(twoHot, tf.logSoftmax(logits)), -1))) as tf.Scalar, FAMILY_STEPS);
        compare('DFL', ours, composed);
        tf.dispose([x, y, l, twoHot]);
        expect(tf.memory().numTensors).toBe(n0);
      });

      it('sigmoidFocalLoss with poly1', () => {
        const n0 = tf.memory().numTensors;
        const { x, labels } = dataset(2);
        const y = tf.tensor2d(Float32Array.from(labels), [SAMPLES, 1]);
        const ours = train(1, x, (logits) => sigmoidFocalLoss(y, logits, { poly1: 1 }), FAMILY_STEPS);
        const composed = train(
          1,
          x,
          (logits) => {
            const p = tf.sigmoid(logits);
            const q = tf.sub(tf.add(p, y), tf.mul(tf.mul(2, p), y));
            return tf.mean(tf.add(focalElementwiseTensor(tf, logits, y, 0.25, 2), tf.pow(q, 3))) as tf.Scalar;
          },
          FAMILY_STEPS,
        );
        compare('poly-1 sigmoid', ours, composed);
        tf.dispose([x, y]);
        expect(tf.memory().numTensors).toBe(n0);
      });
    });

    it('GHMCLoss: the loss falls, and the EMA state evolves exactly as the core GHMC on the same logits', () => {
      const n0 = tf.memory().numTensors;
      const { x, labels } = dataset(2);
      const targets = Uint8Array.from(labels);
      const y = tf.tensor2d(Float32Array.from(labels), [SAMPLES, 1]);
      const ghm = new GHMCLoss({ bins: 10, momentum: 0.75 });
      const core = new GHMC({ bins: 10, momentum: 0.75 });
      const seen: Float32Array[] = [];
      const coreLosses: number[] = [];
      const ours = train(1, x, (logits) => {
        const l = ghm.loss(y, logits);
        const xs = logits.dataSync() as Float32Array;
        seen.push(xs.slice());
        coreLosses.push(Math.fround(core.forward(xs, targets).loss));
        expect(l.dataSync()[0]).toBe(coreLosses[coreLosses.length - 1]);
        return l;
      });
      expect(seen).toHaveLength(STEPS);
      expect(ghm.accSum).toEqual(core.accSum);
      expect(ghm.state()).toEqual(core.state());
      // The loss without the EMA's memory, before and after: the model learnt.
      const [before, after] = [seen[0]!, seen[STEPS - 1]!].map((xs) => new GHMC({ bins: 10 }).forward(xs, targets).loss);
      console.log(`${backend} GHM-C: loss ${ours.first.toPrecision(5)} → ${ours.last.toPrecision(5)}; without EMA ${before!.toPrecision(5)} → ${after!.toPrecision(5)}`);
      expect(ours.last).toBeLessThan(0.5 * ours.first);
      expect(after).toBeLessThan(0.5 * before!);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(n0);
    });
  });
}
