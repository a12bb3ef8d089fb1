// focal-ghm/tfjs and the extras module (ts/tfjs.ts), on TF.js's cpu and wasm backends:
// - qualityFocalLoss, varifocalLoss and distributionFocalLoss, the poly1 option of the sigmoid
//   and softmax focal losses, and softmaxFocalLoss with label smoothing and class-probability
//   rows: loss and gradient equal those of the same loss composed from TF.js ops (docs/SPEC.md
//   §2, §6–9) within §5's bounds, for several shapes, target layouts and options;
// - bad input throws TypeError/RangeError naming the argument; without the extras, the core's
//   error saying how to load them;
// - no tensor leaks, inside and outside tf.tidy, with and without gradients, and on errors.

import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { focalElementwiseTensor, setupTf, softmaxFocalRowsTensor } from '../bench/peers/tfjs.mjs';
import { extras } from '../ts/extras';
import { init } from '../ts/index';
import {
  distributionFocalLoss,
  qualityFocalLoss,
  sigmoidFocalLoss,
  softmaxFocalLoss,
  varifocalLoss,
  type TfDistributionFocalOptions,
  type TfQualityFocalOptions,
  type TfVarifocalOptions,
} from '../ts/tfjs';
import { rng } from './helpers/random';
import { bad, expectThrow } from './helpers/throws';

const BACKENDS = ['cpu', 'wasm'] as const;

beforeAll(async () => {
  await init({ extras });
  for (const b of BACKENDS) await setupTf(b);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Logits ~ 3·(roughly normal), seeded. */
function randomLogits(shape: number[], seed: number): tf.Tensor {
  const r = rng(seed);
  return tf.tensor(Float32Array.from({ length: size(shape) }, () => (r() + r() + r() + r() - 2) * 3), shape, 'float32');
}

/** Uniform values in [lo, hi), seeded. */
function uniform(shape: number[], seed: number, lo = 0, hi = 1): tf.Tensor {
  const r = rng(seed);
  return tf.tensor(Float32Array.from({ length: size(shape) }, () => lo + (hi - lo) * r()), shape, 'float32');
}

/**
 * Soft targets y of Quality Focal Loss ([..., C]): about `rate` of the rows positive, with a
 * score in (0, 1] at a random column, the rest all 0. Also the labels ([...rows], C =
 * background), for the Varifocal case built from them.
 */
function qualityTargets(shape: number[], seed: number, rate = 0.4): { y: tf.Tensor; labels: Int32Array } {
  const r = rng(seed);
  const c = shape[shape.length - 1]!;
  const rows = size(shape) / c;
  const y = new Float32Array(rows * c);
  const labels = new Int32Array(rows).fill(c);
  for (let i = 0; i < rows; i++) {
    if (r() >= rate) continue;
    labels[i] = Math.floor(r() * c);
    y[i * c + labels[i]!] = 0.05 + 0.95 * r();
  }
  return { y: tf.tensor(y, shape, 'float32'), labels };
}

/** Class indices in [0, hi], with `ignore` at every 5th when given. */
function randomLabels(n: number, hi: number, seed: number, ignore?: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, (_, i) => (ignore !== undefined && i % 5 === 2 ? ignore : Math.floor(r() * (hi + 1))));
}

/** docs/SPEC.md §5, as in test/tfjs.test.ts: reduced losses within 1e-5 relative; elementwise values and gradients within 1e-5·max(min(1, largest), |ref|). */
function expectClose(actual: tf.Tensor, ref: tf.Tensor, what: string): void {
  expect(actual.shape, `${what}: shape`).toEqual(ref.shape);
  const a = actual.dataSync();
  const r = ref.dataSync();
  if (r.length === 1 && actual.rank === 0) {
    expect(Math.abs(a[0]! - r[0]!), `${what}: ${a[0]} vs ${r[0]}`).toBeLessThanOrEqual(1e-5 * Math.abs(r[0]!));
    return;
  }
  let scale = 0;
  for (const v of r) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < r.length; i++) {
    const e = Math.abs(a[i]! - r[i]!) / Math.max(Math.min(1, scale), Math.abs(r[i]!));
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  expect(worst, `${what}: worst at ${at}: ${a[at]} vs ${r[at]}`).toBeLessThanOrEqual(1e-5);
}

/** The common reductions of the family (mmdetection's weight_reduce_loss) of per-unit losses `l`. */
function reduce(l: tf.Tensor, o: { reduction?: string; avgFactor?: number; lossWeight?: number }, count: number): tf.Tensor {
  const lw = tf.mul(l, o.lossWeight ?? 1);
  if (o.reduction === 'none') return lw;
  if (o.reduction === 'sum') return tf.sum(lw);
  return tf.div(tf.sum(lw), o.avgFactor ?? count);
}

/** Stable BCE with logits: relu(x) − x·t + log1p(exp(−|x|)). */
const bce = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));

/** SPEC §7 composed: Σ over the row of bce(x, y)·|y − σ(x)|^β, times the row weight; reduced over rows. */
function composedQuality(x: tf.Tensor, y: tf.Tensor, o: TfQualityFocalOptions): tf.Tensor {
  let row = tf.sum(tf.mul(bce(x, y), tf.pow(tf.abs(tf.sub(y, tf.sigmoid(x))), o.beta ?? 2)), -1);
  if (o.weight) row = tf.mul(row, o.weight as tf.Tensor);
  return reduce(row, o, row.size);
}

/** SPEC §8 composed: bce(x, q)·w, w = q (or 1) where q > 0, α·|σ − q|^γ elsewhere; reduced over elements. */
function composedVarifocal(x: tf.Tensor, q: tf.Tensor, o: TfVarifocalOptions): tf.Tensor {
  const pos = tf.greater(q, 0);
  const neg = tf.mul(o.alpha ?? 0.75, tf.pow(tf.abs(tf.sub(tf.sigmoid(x), q)), o.gamma ?? 2));
  let l = tf.mul(bce(x, q), tf.where(pos, o.iouWeighted === false ? tf.onesLike(q) : q, neg));
  if (o.weight) l = tf.mul(l, o.weight as tf.Tensor);
  return reduce(l, o, l.size);
}

/** SPEC §9 composed: cross-entropy against the two-hot row (r − y at ⌊y⌋, y − l at ⌊y⌋ + 1); reduced over rows. */
function composedDistribution(x: tf.Tensor, y: tf.Tensor, o: TfDistributionFocalOptions): tf.Tensor {
  const c = x.shape[x.rank - 1]!;
  const yf = tf.reshape(y, x.shape.slice(0, -1));
  const l = tf.floor(yf);
  const twoHot = tf.add(
    tf.mul(tf.oneHot(tf.cast(l, 'int32'), c), tf.expandDims(tf.sub(tf.add(l, 1), yf), -1)),
    tf.mul(tf.oneHot(tf.cast(tf.add(l, 1), 'int32'), c), tf.expandDims(tf.sub(yf, l), -1)),
  );
  let row = tf.neg(tf.sum(tf.mul(twoHot, tf.logSoftmax(x)), -1));
  if (o.weight) row = tf.mul(row, o.weight as tf.Tensor);
  return reduce(row, o, row.size);
}

/** Kornia's focal loss on target rows t ([..., C]): −Σ_j α_j·t_j·(1 − p_j)^γ·log p_j per row. */
function softRows(x: tf.Tensor, t: tf.Tensor, alpha: number | Float32Array | null, gamma: number): tf.Tensor {
  const logp = tf.logSoftmax(x);
  let terms = tf.mul(tf.mul(t, tf.pow(tf.sub(1, tf.exp(logp)), gamma)), logp);
  if (alpha !== null) terms = tf.mul(terms, typeof alpha === 'number' ? alpha : tf.tensor1d(alpha));
  return tf.neg(tf.sum(terms, -1));
}

const valueAndGrad = (f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, dy?: tf.Tensor) => tf.valueAndGrad(f)(x, dy);

/** One case: ours and the composed loss at the same logits; loss, gradient, the forward alone, and no tensor left behind. */
function check(x: tf.Tensor, ours: (p: tf.Tensor) => tf.Tensor, composed: (p: tf.Tensor) => tf.Tensor, dy?: tf.Tensor): void {
  const a = valueAndGrad(ours, x, dy);
  const b = valueAndGrad(composed, x, dy);
  expectClose(a.value, b.value, 'loss');
  expectClose(a.grad, b.grad, 'gradient');
  // Without a gradient being recorded: the forward alone, the same value.
  const plain = ours(x);
  expect(plain.dataSync()).toEqual(a.value.dataSync());
  tf.dispose([a.value, a.grad, b.value, b.grad, plain]);
}

for (const backend of BACKENDS) {
  describe(`on the ${backend} backend`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    describe('qualityFocalLoss equals the loss composed from TF.js ops', () => {
      const cases: { name: string; shape: number[]; options: TfQualityFocalOptions; weight?: boolean; dy?: boolean }[] = [
        { name: '[40, 5], defaults (β 2, mean over rows)', shape: [40, 5], options: {} },
        { name: '[3, 7, 4], β 1.5, sum, lossWeight 2', shape: [3, 7, 4], options: { beta: 1.5, reduction: 'sum', lossWeight: 2 } },
        { name: '[30, 3], per-row weights, avgFactor', shape: [30, 3], options: { avgFactor: 7 }, weight: true },
        { name: "[12, 6], 'none' (per row), dy", shape: [12, 6], options: { reduction: 'none', beta: 3 }, dy: true },
        { name: '[9, 1] (one class)', shape: [9, 1], options: {} },
      ];
      for (const [k, c] of cases.entries()) {
        it(c.name, () => {
          const n0 = tf.memory().numTensors;
          const x = randomLogits(c.shape, 10 + k);
          const { y } = qualityTargets(c.shape, 20 + k);
          const rows = c.shape.slice(0, -1);
          const weight = c.weight ? uniform(rows, 30 + k) : undefined;
          const dy = c.dy ? randomLogits(rows, 40 + k) : undefined;
          const o = { ...c.options, ...(weight ? { weight } : {}) };
          check(x, (p) => qualityFocalLoss(y, p, o), (p) => composedQuality(p, y, o), dy);
          if (weight) {
            // A Float32Array weight is the same weight.
            const [a, b] = [qualityFocalLoss(y, x, o), qualityFocalLoss(y, x, { ...o, weight: weight.dataSync() as Float32Array })];
            expect(b.dataSync()).toEqual(a.dataSync());
            tf.dispose([a, b]);
          }
          tf.dispose([x, y, ...(weight ? [weight] : []), ...(dy ? [dy] : [])]);
          expect(tf.memory().numTensors).toBe(n0);
        });
      }

      it('equals the core on the labels and scores the rows hold (background rows all 0)', async () => {
        const { qualityFocalLoss: core } = await import('../ts/index');
        const x = randomLogits([25, 4], 50);
        const { y, labels } = qualityTargets([25, 4], 51);
        const scores = Float32Array.from(labels, (l, i) => (l < 4 ? y.dataSync()[i * 4 + l]! : 0));
        const ours = tf.grad((p) => qualityFocalLoss(y, p))(x);
        const want = core(x.dataSync() as Float32Array, { labels, scores, numClasses: 4 }, { grad: true });
        const value = qualityFocalLoss(y, x);
        expect(ours.dataSync()).toEqual(want.grad);
        expect(value.dataSync()[0]).toBe(Math.fround(want.loss));
        tf.dispose([x, y, ours, value]);
      });
    });

    describe('varifocalLoss equals the loss composed from TF.js ops', () => {
      const cases: { name: string; shape: number[]; options: TfVarifocalOptions; weight?: boolean; dy?: boolean }[] = [
        { name: '[40, 5], defaults (α 0.75, γ 2, IoU-weighted, mean)', shape: [40, 5], options: {} },
        { name: '[2, 9, 3], α 0.5, γ 1.5, not IoU-weighted, sum', shape: [2, 9, 3], options: { alpha: 0.5, gamma: 1.5, iouWeighted: false, reduction: 'sum' } },
        { name: '[20, 4], per-element weights, avgFactor, lossWeight', shape: [20, 4], options: { avgFactor: 6, lossWeight: 1.5 }, weight: true },
        { name: "[10, 3], 'none' (per element), dy", shape: [10, 3], options: { reduction: 'none' }, dy: true },
      ];
      for (const [k, c] of cases.entries()) {
        it(c.name, () => {
          const n0 = tf.memory().numTensors;
          const x = randomLogits(c.shape, 60 + k);
          // VFNet's targets: the IoU at the positive's class column, 0 elsewhere.
          const { y: q } = qualityTargets(c.shape, 70 + k);
          const weight = c.weight ? uniform(c.shape, 80 + k) : undefined;
          const dy = c.dy ? randomLogits(c.shape, 90 + k) : undefined;
          const o = { ...c.options, ...(weight ? { weight } : {}) };
          check(x, (p) => varifocalLoss(q, p, o), (p) => composedVarifocal(p, q, o), dy);
          tf.dispose([x, q, ...(weight ? [weight] : []), ...(dy ? [dy] : [])]);
          expect(tf.memory().numTensors).toBe(n0);
        });
      }
    });

    describe('distributionFocalLoss equals the loss composed from TF.js ops', () => {
      const cases: { name: string; shape: number[]; yShape: 'rows' | 'rows1' | 'int32'; options: TfDistributionFocalOptions; weight?: boolean; dy?: boolean }[] = [
        { name: '[32, 17] (n 16), targets [32], mean', shape: [32, 17], yShape: 'rows', options: {} },
        { name: '[2, 8, 9], targets [2, 8, 1], sum, lossWeight 0.25', shape: [2, 8, 9], yShape: 'rows1', options: { reduction: 'sum', lossWeight: 0.25 } },
        { name: '[24, 5], int32 targets, per-row weights, avgFactor', shape: [24, 5], yShape: 'int32', options: { avgFactor: 4 }, weight: true },
        { name: "[6, 2] (n 1), 'none', dy", shape: [6, 2], yShape: 'rows', options: { reduction: 'none' }, dy: true },
      ];
      for (const [k, c] of cases.entries()) {
        it(c.name, () => {
          const n0 = tf.memory().numTensors;
          const n = c.shape[c.shape.length - 1]! - 1;
          const rows = c.shape.slice(0, -1);
          const x = randomLogits(c.shape, 100 + k);
          const yf = tf.tidy(() => (c.yShape === 'int32' ? tf.floor(uniform(rows, 110 + k, 0, n)) : uniform(rows, 110 + k, 0, n * 0.9999)));
          const yTrue = c.yShape === 'rows' ? yf.clone() : c.yShape === 'rows1' ? tf.expandDims(yf, -1) : tf.cast(yf, 'int32');
          const weight = c.weight ? uniform(rows, 120 + k) : undefined;
          const dy = c.dy ? randomLogits(rows, 130 + k) : undefined;
          const o = { ...c.options, ...(weight ? { weight } : {}) };
          check(x, (p) => distributionFocalLoss(yTrue, p, o), (p) => composedDistribution(p, yf, o), dy);
          tf.dispose([x, yf, yTrue, ...(weight ? [weight] : []), ...(dy ? [dy] : [])]);
          expect(tf.memory().numTensors).toBe(n0);
        });
      }
    });

    describe('poly1 on sigmoidFocalLoss and softmaxFocalLoss equals the composed Poly-1 focal loss (§6)', () => {
      it('sigmoid: 0/1 targets, soft targets, class indices with row weights', () => {
        const n0 = tf.memory().numTensors;
        const cases: { shape: number[]; kind: 'binary' | 'soft' | 'labels'; alpha: number | null; gamma: number; eps: number; reduction?: 'sum' | 'none' }[] = [
          { shape: [50, 4], kind: 'binary', alpha: 0.25, gamma: 2, eps: 1 },
          { shape: [7, 6], kind: 'soft', alpha: null, gamma: 1.5, eps: -0.5, reduction: 'sum' },
          { shape: [30, 5], kind: 'labels', alpha: 0.4, gamma: 2, eps: 2, reduction: 'none' },
        ];
        for (const [k, c] of cases.entries()) {
          const x = randomLogits(c.shape, 140 + k);
          const rows = c.shape.slice(0, -1);
          const cls = c.shape[c.shape.length - 1]!;
          const labels = randomLabels(size(rows), cls, 150 + k);
          const dense =
            c.kind === 'labels'
              ? tf.tidy(() => tf.cast(tf.slice(tf.oneHot(tf.tensor1d(labels, 'int32'), cls + 1), [0, 0], [labels.length, cls]), 'float32'))
              : c.kind === 'soft'
                ? uniform(c.shape, 150 + k)
                : tf.tidy(() => tf.cast(tf.less(uniform(c.shape, 150 + k), 0.3), 'float32'));
          const yTrue = c.kind === 'labels' ? tf.tensor1d(labels, 'int32') : dense.clone();
          const weight = c.kind === 'labels' ? uniform(rows, 160 + k) : undefined;
          const dy = c.reduction === 'none' ? randomLogits(c.shape, 170 + k) : undefined;
          const o = { alpha: c.alpha, gamma: c.gamma, poly1: c.eps, ...(c.reduction ? { reduction: c.reduction } : {}), ...(weight ? { weight } : {}) };
          const composed = (p: tf.Tensor) => {
            const s = tf.sigmoid(p);
            const q = tf.sub(tf.add(s, dense), tf.mul(tf.mul(2, s), dense));
            let l = tf.add(focalElementwiseTensor(tf, p, dense, c.alpha, c.gamma), tf.mul(c.eps, tf.pow(q, c.gamma + 1)));
            if (weight) l = tf.mul(l, tf.expandDims(weight, -1));
            return c.reduction === 'none' ? l : c.reduction === 'sum' ? tf.sum(l) : tf.mean(l);
          };
          check(x, (p) => sigmoidFocalLoss(yTrue, p, o), composed, dy);
          // ε = 0 is the plain loss, bit for bit.
          const [plain, zero] = [sigmoidFocalLoss(yTrue, x, { ...o, poly1: undefined }), sigmoidFocalLoss(yTrue, x, { ...o, poly1: 0 })];
          expect(zero.dataSync()).toEqual(plain.dataSync());
          tf.dispose([x, dense, yTrue, plain, zero, ...(weight ? [weight] : []), ...(dy ? [dy] : [])]);
        }
        expect(tf.memory().numTensors).toBe(n0);
      });

      it('softmax: sparse labels with ignored rows, per-class α; one-hot rows, none with dy', () => {
        const n0 = tf.memory().numTensors;
        const cases: { shape: number[]; onehot: boolean; alpha: number | Float32Array | null; gamma: number; eps: number; reduction?: 'none' }[] = [
          { shape: [40, 5], onehot: false, alpha: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5), gamma: 2, eps: 1 },
          { shape: [3, 6, 4], onehot: true, alpha: null, gamma: 0.5, eps: -1, reduction: 'none' },
        ];
        for (const [k, c] of cases.entries()) {
          const x = randomLogits(c.shape, 180 + k);
          const cls = c.shape[c.shape.length - 1]!;
          const rows = c.shape.slice(0, -1);
          const labels = randomLabels(size(rows), cls - 1, 190 + k, c.onehot ? undefined : -100);
          const yTrue = c.onehot ? tf.tidy(() => tf.reshape(tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), cls), 'float32'), c.shape)) : tf.tensor1d(labels, 'int32');
          const valid = tf.tensor(Float32Array.from(labels, (l) => (l < 0 ? 0 : 1)), rows);
          const labelTensor = tf.tensor(labels, rows, 'int32');
          const counted = labels.filter((l) => l >= 0).length;
          const dy = c.reduction === 'none' ? randomLogits(rows, 200 + k) : undefined;
          const composed = (p: tf.Tensor) => {
            const py = tf.sum(tf.mul(tf.softmax(p), tf.oneHot(labelTensor, cls)), -1);
            const per = tf.mul(tf.add(softmaxFocalRowsTensor(tf, p, labelTensor, c.alpha, c.gamma), tf.mul(c.eps, tf.pow(tf.sub(1, py), c.gamma + 1))), valid);
            return c.reduction === 'none' ? per : tf.div(tf.sum(per), counted);
          };
          const o = { alpha: c.alpha, gamma: c.gamma, poly1: c.eps, ...(c.reduction ? { reduction: c.reduction } : {}) };
          check(x, (p) => softmaxFocalLoss(yTrue, p, o), composed, dy);
          tf.dispose([x, yTrue, valid, labelTensor, ...(dy ? [dy] : [])]);
        }
        expect(tf.memory().numTensors).toBe(n0);
      });
    });

    describe('softmaxFocalLoss with label smoothing and class-probability rows equals kornia’s loss on soft rows', () => {
      it('labelSmoothing with sparse labels (ignored rows skipped) and one-hot rows', () => {
        const n0 = tf.memory().numTensors;
        for (const [k, onehot] of [false, true].entries()) {
          const shape = [30, 4];
          const eps = 0.1 + 0.2 * k;
          const x = randomLogits(shape, 210 + k);
          const labels = randomLabels(30, 3, 220 + k, onehot ? undefined : -100);
          const valid = tf.tensor1d(Float32Array.from(labels, (l) => (l < 0 ? 0 : 1)));
          const counted = labels.filter((l) => l >= 0).length;
          const hot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), 4), 'float32'));
          const yTrue = onehot ? hot.clone() : tf.tensor1d(labels, 'int32');
          const smoothed = tf.tidy(() => tf.add(tf.mul(hot, 1 - eps), eps / 4));
          const composed = (p: tf.Tensor) => tf.div(tf.sum(tf.mul(softRows(p, smoothed, 0.25, 2), valid)), counted);
          check(x, (p) => softmaxFocalLoss(yTrue, p, { labelSmoothing: eps }), composed);
          tf.dispose([x, valid, hot, yTrue, smoothed]);
        }
        expect(tf.memory().numTensors).toBe(n0);
      });

      it('float32 rows that are not one-hot are class probabilities: mean over every row, sum, none', () => {
        const n0 = tf.memory().numTensors;
        const shape = [5, 6, 3];
        const x = randomLogits(shape, 230);
        const t = tf.tidy(() => tf.softmax(tf.mul(randomLogits(shape, 231), 0.7)));
        const alpha = Float32Array.of(0.2, 0.5, 0.8);
        for (const reduction of ['mean', 'sum', 'none'] as const) {
          const dy = reduction === 'none' ? randomLogits([5, 6], 232) : undefined;
          const composed = (p: tf.Tensor) => {
            const rows = softRows(p, t, alpha, 1.5);
            return reduction === 'none' ? rows : reduction === 'sum' ? tf.sum(rows) : tf.mean(rows);
          };
          check(x, (p) => softmaxFocalLoss(t, p, { alpha, gamma: 1.5, reduction }), composed, dy);
          dy?.dispose();
        }
        // One-hot rows among them: every row is a probability row, as it happens the same loss.
        const mixed = tf.tensor2d([[1, 0, 0], [0.2, 0.3, 0.5]]);
        const x2 = randomLogits([2, 3], 233);
        const [label, row0] = [tf.tensor1d([0], 'int32'), tf.slice(x2, [0, 0], [1, 3])];
        const viaLabels = softmaxFocalLoss(label, row0, { reduction: 'sum' });
        const rowsOf = softmaxFocalLoss(mixed, x2, { reduction: 'none' });
        expect(Math.abs(rowsOf.dataSync()[0]! - viaLabels.dataSync()[0]!)).toBeLessThanOrEqual(1e-6 * viaLabels.dataSync()[0]!);
        tf.dispose([x, t, mixed, x2, label, row0, viaLabels, rowsOf]);
        expect(tf.memory().numTensors).toBe(n0);
      });
    });

    describe('no tensor leaks', () => {
      const shape = [16, 5];
      let x: tf.Tensor;
      let v: tf.Variable;
      let y: tf.Tensor;
      let pos: tf.Tensor;
      let labels: tf.Tensor;
      let probs: tf.Tensor;
      let sgd: tf.SGDOptimizer;
      beforeAll(() => {
        sgd = tf.train.sgd(0.01);
        x = randomLogits(shape, 300);
        v = tf.variable(randomLogits(shape, 301));
        y = qualityTargets(shape, 302).y;
        pos = uniform([16], 303, 0, 3.99);
        labels = tf.tensor1d(randomLabels(16, 4, 304), 'int32');
        probs = tf.tidy(() => tf.softmax(randomLogits(shape, 305)));
      });
      afterAll(() => {
        tf.dispose([x, v, y, pos, labels, probs]);
        sgd.dispose();
      });

      const losses: [string, (p: tf.Tensor) => tf.Tensor][] = [
        ['qualityFocalLoss', (p) => qualityFocalLoss(y, p)],
        ["qualityFocalLoss 'none'", (p) => qualityFocalLoss(y, p, { reduction: 'none' })],
        ['varifocalLoss', (p) => varifocalLoss(y, p)],
        ["varifocalLoss 'none'", (p) => varifocalLoss(y, p, { reduction: 'none' })],
        ['distributionFocalLoss', (p) => distributionFocalLoss(pos, p)],
        ["distributionFocalLoss 'none'", (p) => distributionFocalLoss(pos, p, { reduction: 'none' })],
        ['sigmoidFocalLoss with poly1', (p) => sigmoidFocalLoss(labels, p, { poly1: 1 })],
        ['softmaxFocalLoss with poly1', (p) => softmaxFocalLoss(labels, p, { poly1: 1 })],
        ['softmaxFocalLoss with labelSmoothing', (p) => softmaxFocalLoss(labels, p, { labelSmoothing: 0.1 })],
        ['softmaxFocalLoss with class probabilities', (p) => softmaxFocalLoss(probs, p)],
      ];
      const scalarOf = (l: tf.Tensor) => (l.rank === 0 ? l : tf.sum(l));

      for (const [name, loss] of losses) {
        it(name, () => {
          const n0 = tf.memory().numTensors;
          const count = () => tf.memory().numTensors - n0;
          loss(x).dispose();
          expect(count(), 'a call, disposed').toBe(0);
          tf.tidy(() => {
            loss(x);
          });
          expect(count(), 'a call in tf.tidy').toBe(0);
          tf.grad((p) => scalarOf(loss(p)))(x).dispose();
          expect(count(), 'tf.grad, disposed').toBe(0);
          tf.tidy(() => {
            tf.grad((p) => scalarOf(loss(p)))(x);
          });
          expect(count(), 'tf.grad in tf.tidy').toBe(0);
          const { value, grads } = tf.variableGrads(() => scalarOf(loss(v)) as tf.Scalar);
          tf.dispose([value, grads]);
          expect(count(), 'tf.variableGrads').toBe(0);
          sgd.minimize(() => scalarOf(loss(v)) as tf.Scalar);
          expect(count(), 'optimizer.minimize').toBe(0);
          const wrong = tf.tensor1d([1, 2, 3]);
          expect(() => loss(wrong)).toThrow(RangeError);
          expect(() => tf.tidy(() => tf.grad((p) => scalarOf(loss(p)))(wrong))).toThrow(RangeError);
          wrong.dispose();
          expect(count(), 'errors').toBe(0);
        });
      }
    });
  });
}

describe('bad input: TypeError or RangeError naming the argument', () => {
  const tensors: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
  afterAll(() => tf.dispose(tensors));
  const x = () => keep(tf.tensor2d([[2, -1, 0.5], [-3, 1, 0]]));

  it('qualityFocalLoss: yTrue of yPred’s shape, float32, one score per row in [0, 1]; row weights', () => {
    const y = () => keep(tf.tensor2d([[0, 0.5, 0], [0, 0, 0]]));
    expectThrow(() => qualityFocalLoss(keep(tf.tensor1d([1, 3], 'int32')), x()), RangeError, /^qualityFocalLoss: yTrue has shape \[2\], expected yPred's shape \[2, 3\] \(each row: its quality score at its label's column, 0 elsewhere\)$/);
    expectThrow(() => qualityFocalLoss(keep(tf.tensor2d([[0, 1, 0], [0, 0, 0]], undefined, 'int32')), x()), TypeError, /^qualityFocalLoss: yTrue must be float32 \(quality scores in \[0, 1\]\), got dtype int32$/);
    expectThrow(() => qualityFocalLoss(keep(tf.tensor2d([[0, 0.5, 0.25], [0, 0, 0]])), x()), RangeError, /^qualityFocalLoss: yTrue row 0 has non-zero entries in columns 1 and 2; a row holds one quality score/);
    expectThrow(() => qualityFocalLoss(keep(tf.tensor2d([[0, 0, 0], [0, 1.5, 0]])), x()), RangeError, /^qualityFocalLoss: yTrue\[4\] is 1\.5, expected a quality score in \[0, 1\] \(row 1\)$/);
    expectThrow(() => qualityFocalLoss(keep(tf.tensor2d([[0, NaN, 0], [0, 0, 0]])), x()), RangeError, /yTrue\[1\] is NaN/);
    expectThrow(() => qualityFocalLoss(y(), x(), { weight: keep(tf.ones([2, 3])) }), RangeError, /^qualityFocalLoss: options\.weight has shape \[2, 3\], expected \[2\] \(one per row of yPred \[2, 3\]\)$/);
    expectThrow(() => qualityFocalLoss(y(), x(), { weight: new Float32Array(3) }), RangeError, /^qualityFocalLoss: options\.weight has length 3, expected 2 \(one per row\)$/);
    expectThrow(() => qualityFocalLoss(y(), x(), { beta: -1 }), RangeError, /^qualityFocalLoss: options\.beta/);
    expectThrow(() => qualityFocalLoss(y(), x(), bad<TfQualityFocalOptions>({ grad: true })), TypeError, /^qualityFocalLoss: unknown option 'grad'/);
    expectThrow(() => qualityFocalLoss(y(), x(), bad<TfQualityFocalOptions>({ numClasses: 3 })), TypeError, /unknown option 'numClasses'/);
  });

  it('varifocalLoss: yTrue of yPred’s shape, float32 in [0, 1]', () => {
    expectThrow(() => varifocalLoss(keep(tf.tensor1d([0, 1])), x()), RangeError, /^varifocalLoss: yTrue has shape \[2\], expected yPred's shape \[2, 3\] \(a target per logit\)$/);
    expectThrow(() => varifocalLoss(keep(tf.tensor2d([[0, 1, 0], [0, 0, 0]], undefined, 'bool')), x()), TypeError, /^varifocalLoss: yTrue must be float32 \(IoU-aware scores in \[0, 1\]\), got dtype bool$/);
    expectThrow(() => varifocalLoss(keep(tf.tensor2d([[0, 0.5, 0], [0, 2, 0]])), x()), RangeError, /^varifocalLoss: yTrue\[4\] is 2, expected a number in \[0, 1\] \(element 4\)$/);
    expectThrow(() => varifocalLoss(keep(tf.zeros([2, 3])), x(), { weight: keep(tf.ones([2])) }), RangeError, /^varifocalLoss: options\.weight has shape \[2\], expected yPred's shape \[2, 3\]$/);
    expectThrow(() => varifocalLoss(keep(tf.zeros([2, 3])), x(), bad<TfVarifocalOptions>({ iouWeighted: 1 })), TypeError, /options\.iouWeighted/);
  });

  it('distributionFocalLoss: a target per row in [0, n), n + 1 ≥ 2 logits per row', () => {
    expectThrow(() => distributionFocalLoss(keep(tf.zeros([2, 3])), x()), RangeError, /^distributionFocalLoss: yTrue has shape \[2, 3\], expected one target per row of yPred \[2, 3\]: \[2\] or \[2, 1\]$/);
    expectThrow(() => distributionFocalLoss(keep(tf.tensor1d([0, 2])), x()), RangeError, /^distributionFocalLoss: yTrue\[1\] is 2, expected a number in \[0, 2\) \(row 1\)$/);
    expectThrow(() => distributionFocalLoss(keep(tf.tensor1d([0, -0.5])), x()), RangeError, /yTrue\[1\] is -0\.5/);
    expectThrow(() => distributionFocalLoss(keep(tf.tensor1d([0, 1], 'bool')), x()), TypeError, /^distributionFocalLoss: yTrue must be float32 or int32 \(targets in \[0, n\)\), got dtype bool$/);
    expectThrow(() => distributionFocalLoss(keep(tf.tensor1d([0, 0])), keep(tf.tensor2d([[1], [2]]))), RangeError, /^distributionFocalLoss: yPred has shape \[2, 1\]; its last axis must hold a distribution over 0…n \(n \+ 1 ≥ 2 logits\)$/);
    expectThrow(() => distributionFocalLoss(keep(tf.tensor1d([0, 1])), x(), bad<TfDistributionFocalOptions>({ bins: 2 })), TypeError, /^distributionFocalLoss: unknown option 'bins'/);
  });

  it('softmaxFocalLoss: float32 rows neither one-hot nor probabilities; int32 rows not one-hot; poly1 and labelSmoothing where they do not apply', () => {
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 0, 0], [0, 0, 0]])), x()), RangeError, /^softmaxFocalLoss: yTrue row 1 sums to 0, expected 1 \(class probabilities\)$/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[2, -1, 0], [0, 1, 0]])), x()), RangeError, /^softmaxFocalLoss: yTrue\[0\] is 2, expected a probability in \[0, 1\] \(row 0\)$/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 1, 0], [0, 0, 1]], undefined, 'int32')), x()), RangeError, /rows must be one-hot .* row 0 is \[1, 1, 0\]; class probabilities must be float32/);
    const probs = () => keep(tf.tensor2d([[0.5, 0.5, 0], [0, 0.25, 0.75]]));
    expectThrow(() => softmaxFocalLoss(probs(), x(), { poly1: 1 }), RangeError, /^softmaxFocalLoss: options\.poly1 needs class labels/);
    expectThrow(() => softmaxFocalLoss(probs(), x(), { labelSmoothing: 0.1 }), RangeError, /^softmaxFocalLoss: options\.labelSmoothing applies to class labels/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 1], 'int32')), x(), { labelSmoothing: 2 }), RangeError, /options\.labelSmoothing/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.zeros([2, 3])), x(), { poly1: Infinity }), RangeError, /^sigmoidFocalLoss: options\.poly1/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.zeros([2, 3])), keep(tf.fill([2, 3], 0.5)), { poly1: 1, input: 'probabilities' }), RangeError, /options\.poly1 does not combine with options\.input 'probabilities'/);
  });
});

describe('without the extras', () => {
  it('each loss that needs them throws the core’s error saying how to load them; the rest works', async () => {
    vi.resetModules();
    const core = await import('../ts/index');
    const fresh = await import('../ts/tfjs');
    await core.init();
    const n0 = tf.memory().numTensors;
    const x = tf.tensor2d([[2, -1, 0.5], [-3, 1, 0]]);
    const labels = tf.tensor1d([0, 2], 'int32');
    const y = tf.tensor2d([[0, 0.5, 0], [0, 0, 0]]);
    const probs = tf.tensor2d([[0.5, 0.5, 0], [0, 0.25, 0.75]]);
    const pos = tf.tensor1d([0.5, 1]);
    const calls: [string, () => tf.Tensor][] = [
      ['qualityFocalLoss', () => fresh.qualityFocalLoss(y, x)],
      ['varifocalLoss', () => fresh.varifocalLoss(y, x)],
      ['distributionFocalLoss', () => fresh.distributionFocalLoss(pos, x)],
      ['sigmoidFocalLoss', () => fresh.sigmoidFocalLoss(labels, x, { poly1: 1 })],
      ['softmaxFocalLoss', () => fresh.softmaxFocalLoss(labels, x, { poly1: 1 })],
      ['softmaxFocalLoss', () => fresh.softmaxFocalLoss(labels, x, { labelSmoothing: 0.1 })],
      ['softmaxFocalLoss', () => fresh.softmaxFocalLoss(probs, x)],
    ];
    for (const [fn, call] of calls) {
      expectThrow(call, Error, new RegExp(`^${fn}: needs the extras kernels: \`import \\{ extras \\} from 'focal-ghm/extras'; await init\\(\\{ extras \\}\\);\`$`));
    }
    // ε = 0 and the plain losses need only the core.
    tf.dispose([fresh.sigmoidFocalLoss(labels, x, { poly1: 0 }), fresh.softmaxFocalLoss(labels, x)]);
    tf.dispose([x, labels, y, probs, pos]);
    expect(tf.memory().numTensors).toBe(n0);
  });
});
