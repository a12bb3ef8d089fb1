// focal-ghm/tfjs (ts/tfjs.ts) on TF.js's cpu and wasm backends:
// - loss and gradient equal those of the same loss composed from TF.js ops (bench/peers/tfjs.mjs)
//   within docs/SPEC.md §5's bounds, for several shapes, target layouts, dtypes and options;
//   GHMCLoss equals the core GHMC (loss, gradient and EMA state, bit for bit);
// - bad input throws TypeError/RangeError naming the argument, before any state change;
// - no tensor leaks, inside and outside tf.tidy, with and without gradients, and on errors.

import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { focalElementwiseTensor, setupTf, softmaxFocalRowsTensor } from '../bench/peers/tfjs.mjs';
import { GHMC, init } from '../ts/index';
import { GHMCLoss, sigmoidFocalLoss, softmaxFocalLoss, type TfGHMCOptions, type TfSigmoidFocalOptions, type TfSoftmaxFocalOptions } from '../ts/tfjs';
import { rng } from './helpers/random';
import { bad, expectThrow } from './helpers/throws';

const BACKENDS = ['cpu', 'wasm'] as const;

/** Any of the three losses, called Keras-style. */
type Loss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

beforeAll(async () => {
  await init();
  for (const b of BACKENDS) await setupTf(b);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Logits ~ 3·(roughly normal), seeded. */
function randomLogits(shape: number[], seed: number): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (r() + r() + r() + r() - 2) * 3), shape, 'float32');
}

/** 0/1 targets (about `rate` ones), or soft ones in [0, 1]. */
function randomTargets(shape: number[], seed: number, kind: 'binary' | 'soft', rate = 0.3): Float32Array {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => (kind === 'soft' ? r() : r() < rate ? 1 : 0));
}

/** Class indices in [0, hi], with `ignore` at every 5th when given. */
function randomLabels(n: number, hi: number, seed: number, ignore?: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, (_, i) => (ignore !== undefined && i % 5 === 2 ? ignore : Math.floor(r() * (hi + 1))));
}

/**
 * docs/SPEC.md §5: reduced losses within 1e-5 relative; elementwise values and gradients within
 * 1e-5·max(1, |ref|). Gradients of a mean are small, so they are held to 1e-5 of their largest
 * entry instead of 1e-5 absolute (stricter).
 */
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

/** Value and gradient of `f` at `x` (with `dy` for a non-scalar value); disposes nothing of the caller's. */
function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, dy?: tf.Tensor): { value: tf.Tensor; grad: tf.Tensor } {
  return tf.valueAndGrad(f)(x, dy);
}

interface SigmoidCase {
  name: string;
  shape: number[];
  /** yTrue as given to the adapter, and the same targets as a float32 tensor of yPred's shape. */
  targets: (shape: number[], seed: number) => { yTrue: tf.Tensor; dense: tf.Tensor };
  options: TfSigmoidFocalOptions;
  /** The α the composed loss uses (for 'auto': the negatives' share). */
  alpha?: (dense: Float32Array) => number | null;
}

/** σ of seeded logits: probabilities in about [0.01, 0.99], for `input: 'probabilities'`. */
function randomProbabilities(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => tf.sigmoid(tf.mul(randomLogits(shape, seed), 0.5)));
}

const floatTargets = (kind: 'binary' | 'soft') => (shape: number[], seed: number) => {
  const t = tf.tensor(randomTargets(shape, seed, kind), shape, 'float32');
  return { yTrue: t, dense: t.clone() };
};
const castTargets = (dtype: 'int32' | 'bool') => (shape: number[], seed: number) => {
  const dense = tf.tensor(randomTargets(shape, seed, 'binary'), shape, 'float32');
  return { yTrue: tf.cast(dense, dtype), dense };
};
const classIndexTargets = (shape: number[], seed: number) => {
  const c = shape[shape.length - 1]!;
  const labels = randomLabels(shape.slice(0, -1).reduce((a, b) => a * b, 1), c, seed);
  const rows = shape.slice(0, -1);
  // Label c (background) gives an all-zero row.
  const dense = tf.tidy(() => tf.reshape(tf.cast(tf.slice(tf.oneHot(tf.tensor1d(labels, 'int32'), c + 1), [0, 0], [labels.length, c]), 'float32'), shape));
  return { yTrue: tf.tensor(labels, rows, 'int32'), dense };
};

const SIGMOID_CASES: SigmoidCase[] = [
  { name: '1-D, float32 0/1 targets, defaults', shape: [257], targets: floatTargets('binary'), options: {} },
  { name: '[33, 7], int32 targets, α off, γ 0, sum', shape: [33, 7], targets: castTargets('int32'), options: { alpha: null, gamma: 0, reduction: 'sum' } },
  { name: '[4, 5, 6], soft targets, α 0.6, γ 3.5, lossWeight 2', shape: [4, 5, 6], targets: floatTargets('soft'), options: { alpha: 0.6, gamma: 3.5, lossWeight: 2 } },
  { name: '[64, 10], bool targets, α auto, avgFactor', shape: [64, 10], targets: castTargets('bool'), options: { alpha: 'auto', avgFactor: 17 }, alpha: autoAlpha },
  { name: '[2, 25, 4], class indices (label 4 = background), sum', shape: [2, 25, 4], targets: classIndexTargets, options: { reduction: 'sum', gamma: 1.5 } },
  { name: '[1] (one element)', shape: [1], targets: floatTargets('binary'), options: { gamma: 2 } },
  { name: '[128], int32 targets, label smoothing 0.1, sum', shape: [128], targets: castTargets('int32'), options: { labelSmoothing: 0.1, reduction: 'sum' } },
  { name: '[6, 7], probabilities (a sigmoid output), soft targets, γ 1.5', shape: [6, 7], targets: floatTargets('soft'), options: { input: 'probabilities', gamma: 1.5 } },
  { name: '[5, 4, 3], probabilities, class indices, label smoothing 0.2', shape: [5, 4, 3], targets: classIndexTargets, options: { input: 'probabilities', labelSmoothing: 0.2, alpha: 0.4 } },
];

/**
 * SPEC §1 on probabilities p (mmdetection's py_focal_loss_with_prob; the logs' clamp at -100 is
 * not reached by these inputs): -(t·log p + (1 - t)·log(1 - p)) for the BCE.
 */
function focalOfProbabilities(p: tf.Tensor, t: tf.Tensor, alpha: number | null, gamma: number): tf.Tensor {
  const pt = tf.add(tf.mul(tf.sub(1, p), t), tf.mul(p, tf.sub(1, t)));
  const bce = tf.neg(tf.add(tf.mul(t, tf.log(p)), tf.mul(tf.sub(1, t), tf.log1p(tf.neg(p)))));
  const focal = tf.mul(tf.pow(pt, gamma), bce);
  return alpha === null ? focal : tf.mul(tf.add(tf.mul(alpha, t), tf.mul(1 - alpha, tf.sub(1, t))), focal);
}

function autoAlpha(dense: Float32Array): number {
  let pos = 0;
  for (const v of dense) if (v >= 0.5) pos++;
  return (dense.length - pos) / dense.length;
}

/** SPEC §1 composed from TF.js ops, with the adapter's options. */
function composedSigmoid(x: tf.Tensor, dense: tf.Tensor, o: TfSigmoidFocalOptions, alpha: number | null, weight?: tf.Tensor): tf.Tensor {
  const eps = o.labelSmoothing ?? 0;
  const t = eps > 0 ? tf.add(tf.mul(dense, 1 - eps), eps / 2) : dense;
  let l = o.input === 'probabilities' ? focalOfProbabilities(x, t, alpha, o.gamma ?? 2) : focalElementwiseTensor(tf, x, t, alpha, o.gamma ?? 2);
  if (weight) l = tf.mul(l, weight.rank < x.rank ? tf.expandDims(weight, -1) : weight);
  l = tf.mul(l, o.lossWeight ?? 1);
  if (o.reduction === 'none') return l;
  if (o.reduction === 'sum') return tf.sum(l);
  return tf.div(tf.sum(l), o.avgFactor ?? x.size);
}

for (const backend of BACKENDS) {
  describe(`on the ${backend} backend`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    describe('sigmoidFocalLoss equals the loss composed from TF.js ops', () => {
      for (const [k, c] of SIGMOID_CASES.entries()) {
        it(c.name, () => {
          const n0 = tf.memory().numTensors;
          const x = c.options.input === 'probabilities' ? randomProbabilities(c.shape, 100 + k) : randomLogits(c.shape, 100 + k);
          const { yTrue, dense } = c.targets(c.shape, 200 + k);
          const alpha = c.alpha ? c.alpha(dense.dataSync() as Float32Array) : c.options.alpha === undefined ? 0.25 : (c.options.alpha as number | null);
          const ours = valueAndGrad((p) => sigmoidFocalLoss(yTrue, p, c.options), x);
          const ref = valueAndGrad((p) => composedSigmoid(p, dense, c.options, alpha), x);
          expectClose(ours.value, ref.value, 'loss');
          expectClose(ours.grad, ref.grad, 'gradient');
          // Without a gradient being recorded: the forward alone, the same value.
          const plain = sigmoidFocalLoss(yTrue, x, c.options);
          expect(plain.dataSync()[0]).toBe(ours.value.dataSync()[0]);
          tf.dispose([x, yTrue, dense, ours.value, ours.grad, ref.value, ref.grad, plain]);
          expect(tf.memory().numTensors).toBe(n0);
        });
      }

      it("reduction 'none' with per-element weights: the losses, and dy ⊙ gradient", () => {
        const shape = [6, 9];
        const x = randomLogits(shape, 7);
        const { yTrue, dense } = floatTargets('soft')(shape, 8);
        const weight = tf.tensor(randomTargets(shape, 9, 'soft'), shape);
        const dy = randomLogits(shape, 10);
        const o: TfSigmoidFocalOptions<'none'> = { reduction: 'none', alpha: 0.3, lossWeight: 0.5, weight };
        const ours = valueAndGrad((p) => sigmoidFocalLoss(yTrue, p, o), x, dy);
        const ref = valueAndGrad((p) => composedSigmoid(p, dense, o, 0.3, weight), x, dy);
        expectClose(ours.value, ref.value, 'losses');
        expectClose(ours.grad, ref.grad, 'gradient');
        // A Float32Array weight is the same weight.
        const viaArray = sigmoidFocalLoss(yTrue, x, { ...o, weight: weight.dataSync() as Float32Array });
        expect(viaArray.dataSync()).toEqual(ours.value.dataSync());
        tf.dispose([x, yTrue, dense, weight, dy, ours.value, ours.grad, ref.value, ref.grad, viaArray]);
      });

      it('per-row weights with class indices; a scalar dy ≠ 1 scales the gradient', () => {
        const shape = [30, 5];
        const x = randomLogits(shape, 11);
        const { yTrue, dense } = classIndexTargets(shape, 12);
        const w = tf.tensor1d(randomTargets([30], 13, 'soft'));
        const o: TfSigmoidFocalOptions = { weight: w, avgFactor: 9 };
        const ours = valueAndGrad((p) => tf.mul(-2.5, sigmoidFocalLoss(yTrue, p, o)), x);
        const ref = valueAndGrad((p) => tf.mul(-2.5, composedSigmoid(p, dense, o, 0.25, w)), x);
        expectClose(ours.value, ref.value, 'loss');
        expectClose(ours.grad, ref.grad, 'gradient');
        tf.dispose([x, yTrue, dense, w, ours.value, ours.grad, ref.value, ref.grad]);
      });

      it('tensors made on the other backend give the same loss and gradient', async () => {
        const other = backend === 'cpu' ? 'wasm' : 'cpu';
        await tf.setBackend(other);
        const [xo, yo] = [randomLogits([40, 5], 20), tf.tensor(randomTargets([40, 5], 21, 'binary'), [40, 5])];
        await tf.setBackend(backend);
        const [x, y] = [randomLogits([40, 5], 20), tf.tensor(randomTargets([40, 5], 21, 'binary'), [40, 5])];
        const here = valueAndGrad((p) => sigmoidFocalLoss(y, p), x);
        const moved = valueAndGrad((p) => sigmoidFocalLoss(yo, p), xo);
        expect(moved.value.dataSync()).toEqual(here.value.dataSync());
        expect(moved.grad.dataSync()).toEqual(here.grad.dataSync());
        tf.dispose([xo, yo, x, y, here.value, here.grad, moved.value, moved.grad]);
      });

      it('gradients of successive calls stay intact (the wasm backend reuses one buffer for the kernel)', () => {
        const y = tf.tensor(randomTargets([500], 16, 'binary'), [500]);
        const xs = [randomLogits([500], 17), randomLogits([500], 18), randomLogits([300], 19)];
        const grads = xs.map((x) => tf.grad((p) => sigmoidFocalLoss(x.size === 500 ? y : tf.slice(y, 0, 300), p))(x));
        xs.forEach((x, i) => {
          const ref = tf.grad((p) => composedSigmoid(p, x.size === 500 ? y : tf.slice(y, 0, 300), {}, 0.25))(x);
          expectClose(grads[i]!, ref, `gradient ${i}`);
          ref.dispose();
        });
        tf.dispose([y, ...xs, ...grads]);
      });

      it('the same targets as float32, int32 and bool give the same loss and gradient (float32 0/1 within §5)', () => {
        const shape = [40, 3];
        const x = randomLogits(shape, 14);
        const dense = tf.tensor(randomTargets(shape, 15, 'binary'), shape);
        const runs = [dense, tf.cast(dense, 'int32'), tf.cast(dense, 'bool')].map((t) => valueAndGrad((p) => sigmoidFocalLoss(t, p), x));
        // int32 and bool go to the kernel as the same bytes: identical.
        expect(runs[2]!.value.dataSync()).toEqual(runs[1]!.value.dataSync());
        expect(runs[2]!.grad.dataSync()).toEqual(runs[1]!.grad.dataSync());
        expectClose(runs[0]!.value, runs[1]!.value, 'float32 vs int32 loss');
        expectClose(runs[0]!.grad, runs[1]!.grad, 'float32 vs int32 gradient');
        tf.dispose([x, dense, ...runs.flatMap((r) => [r.value, r.grad])]);
      });
    });

    describe('softmaxFocalLoss equals the loss composed from TF.js ops', () => {
      interface SoftmaxCase {
        name: string;
        shape: number[];
        label: 'sparse' | 'sparse1' | 'float' | 'onehot';
        ignore?: boolean;
        options: TfSoftmaxFocalOptions;
        dy?: boolean;
      }
      const cases: SoftmaxCase[] = [
        { name: '[40, 5], int32 sparse labels, defaults', shape: [40, 5], label: 'sparse', options: {} },
        { name: '[3, 4, 6], one-hot float32, per-class α, γ 1.5, sum', shape: [3, 4, 6], label: 'onehot', options: { alpha: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), gamma: 1.5, reduction: 'sum' } },
        { name: '[30, 3], labels [30, 1] as float32, ignored rows (-100)', shape: [30, 3], label: 'float', ignore: true, options: { alpha: null } },
        { name: '[8, 4], sparse [8, 1], none, lossWeight 3, ignoreIndex 7', shape: [8, 4], label: 'sparse1', ignore: true, options: { reduction: 'none', lossWeight: 3, ignoreIndex: 7 }, dy: true },
        { name: '[2, 2] (two classes), γ 0', shape: [2, 2], label: 'sparse', options: { gamma: 0 } },
      ];
      for (const [k, c] of cases.entries()) {
        it(c.name, () => {
          const n0 = tf.memory().numTensors;
          const cls = c.shape[c.shape.length - 1]!;
          const rows = c.shape.slice(0, -1);
          const nRows = rows.reduce((a, b) => a * b, 1);
          const ignoreIndex = c.options.ignoreIndex ?? -100;
          const labels = randomLabels(nRows, cls - 1, 300 + k, c.ignore ? ignoreIndex : undefined);
          const x = randomLogits(c.shape, 400 + k);
          const yTrue =
            c.label === 'sparse'
              ? tf.tensor(labels, rows, 'int32')
              : c.label === 'sparse1'
                ? tf.tensor(labels, [...rows, 1], 'int32')
                : c.label === 'float'
                  ? tf.tensor(Float32Array.from(labels), [...rows, 1], 'float32')
                  : tf.tidy(() => tf.reshape(tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), cls), 'float32'), c.shape));
          let counted = 0;
          for (const l of labels) if (l !== ignoreIndex) counted++;
          const valid = tf.tensor(Float32Array.from(labels, (l) => (l === ignoreIndex ? 0 : 1)), rows);
          const labelTensor = tf.tensor(Int32Array.from(labels, (l) => (l === ignoreIndex ? -1 : l)), rows, 'int32');
          const composed = (p: tf.Tensor) => {
            const per = tf.mul(tf.mul(softmaxFocalRowsTensor(tf, p, labelTensor, c.options.alpha === undefined ? 0.25 : c.options.alpha, c.options.gamma ?? 2), valid), c.options.lossWeight ?? 1);
            if (c.options.reduction === 'none') return per;
            return c.options.reduction === 'sum' ? tf.sum(per) : tf.div(tf.sum(per), Math.max(counted, 1));
          };
          const dy = c.dy ? randomLogits(rows, 500 + k) : undefined;
          const ours = valueAndGrad((p) => softmaxFocalLoss(yTrue, p, c.options), x, dy);
          const ref = valueAndGrad(composed, x, dy);
          expectClose(ours.value, ref.value, 'loss');
          expectClose(ours.grad, ref.grad, 'gradient');
          tf.dispose([x, yTrue, valid, labelTensor, ours.value, ours.grad, ref.value, ref.grad, ...(dy ? [dy] : [])]);
          expect(tf.memory().numTensors).toBe(n0);
        });
      }
    });

    describe('GHMCLoss is the core GHMC', () => {
      it('loss, gradient and EMA state over calls equal the core GHMC on the same data, bit for bit', () => {
        const opts = { bins: 12, momentum: 0.75, lossWeight: 1.5 };
        const ours = new GHMCLoss(opts);
        const core = new GHMC(opts);
        for (let call = 0; call < 4; call++) {
          const shape = [50, 6];
          const x = randomLogits(shape, 600 + call);
          const t = randomTargets(shape, 700 + call, 'binary', 0.1);
          const lw = randomTargets(shape, 800 + call, 'binary', 0.9);
          const yTrue = tf.tensor(t, shape);
          const weight = tf.tensor(lw, shape);
          const r = valueAndGrad((p) => ours.loss(yTrue, p, weight), x);
          const c = core.forward(x.dataSync() as Float32Array, Uint8Array.from(t), lw, { grad: true });
          expect(r.value.dataSync()[0]).toBe(Math.fround(c.loss));
          expect(r.grad.dataSync()).toEqual(c.grad);
          expect(ours.accSum).toEqual(core.accSum);
          tf.dispose([x, yTrue, weight, r.value, r.grad]);
        }
        expect(ours.state()).toEqual(core.state());
        expect([ours.bins, ours.momentum]).toEqual([12, 0.75]);
      });

      it('class-index targets and per-row label weights; forward-only calls also step the EMA', () => {
        const ours = new GHMCLoss({ bins: 5, momentum: 0.5 });
        const core = new GHMC({ bins: 5, momentum: 0.5 });
        const x = randomLogits([20, 4], 900);
        const labels = randomLabels(20, 4, 901);
        const rowW = randomTargets([20], 902, 'binary', 0.8);
        const loss = ours.loss(tf.tensor1d(labels, 'int32'), x, tf.tensor1d(rowW));
        const c = core.forward(x.dataSync() as Float32Array, { labels, numClasses: 4 }, rowW);
        expect(loss.dataSync()[0]).toBe(Math.fround(c.loss));
        expect(ours.accSum).toEqual(core.accSum);
        tf.dispose([x, loss]);
      });

      it("ema 'training': calls without a gradient (evaluation, validation) use the state and leave it", () => {
        const ours = new GHMCLoss({ bins: 6, momentum: 0.7, ema: 'training' });
        const core = new GHMC({ bins: 6, momentum: 0.7 });
        const shape = [30, 3];
        const x = randomLogits(shape, 920);
        const t = randomTargets(shape, 921, 'binary', 0.2);
        const yTrue = tf.tensor(t, shape);
        const xs = x.dataSync() as Float32Array;
        const trained = valueAndGrad((p) => ours.loss(yTrue, p), x); // a training call: one step
        core.forward(xs, Uint8Array.from(t));
        expect(ours.accSum).toEqual(core.accSum);
        const state = ours.state();
        const evaluated = ours.loss(yTrue, x); // no tape: the loss from the state, which stays
        const fromCopy = new GHMC({ bins: 6, momentum: 0.7 });
        fromCopy.loadState(state);
        expect(evaluated.dataSync()[0]).toBe(Math.fround(fromCopy.forward(xs, Uint8Array.from(t)).loss));
        expect(ours.state()).toEqual(state);
        // The default steps on every call, as mmdetection.
        const always = new GHMCLoss({ bins: 6, momentum: 0.7 });
        always.loss(yTrue, x).dispose();
        expect(always.accSum.some((a) => a > 0)).toBe(true);
        expectThrow(() => new GHMCLoss(bad({ ema: 'never' })), RangeError, /^GHMCLoss: options\.ema must be one of/);
        tf.dispose([x, yTrue, trained.value, trained.grad, evaluated]);
      });

      it("reduction 'none': the core's per-element terms, summing to the loss; gradient dy ⊙ the core's", () => {
        const ours = new GHMCLoss({ bins: 8, momentum: 0.6 });
        const core = new GHMC({ bins: 8, momentum: 0.6 });
        const shape = [12, 5];
        const x = randomLogits(shape, 910);
        const t = randomTargets(shape, 911, 'binary', 0.2);
        const yTrue = tf.tensor(t, shape);
        const dy = randomLogits(shape, 912);
        const r = valueAndGrad((p) => ours.loss(yTrue, p, undefined, { reduction: 'none' }), x, dy);
        const c = core.forward(x.dataSync() as Float32Array, Uint8Array.from(t), undefined, { reduction: 'none', grad: true });
        expect(r.value.shape).toEqual(shape);
        expect(r.value.dataSync()).toEqual(c.loss);
        const dyv = dy.dataSync();
        expect(r.grad.dataSync()).toEqual(c.grad.map((g, i) => g * dyv[i]!));
        expect(ours.accSum).toEqual(core.accSum);
        // The terms sum to the mean loss of the same step (the core's 'mean' from the same state).
        const again = new GHMC({ bins: 8, momentum: 0.6 }).forward(x.dataSync() as Float32Array, Uint8Array.from(t));
        expect(c.loss.reduce((a, b) => a + b, 0)).toBeCloseTo(again.loss, 5);
        tf.dispose([x, yTrue, dy, r.value, r.grad]);
      });

      it('state() / loadState() / reset()', () => {
        const a = new GHMCLoss({ bins: 4, momentum: 0.9 });
        const x = randomLogits([30], 903);
        const t = tf.tensor(randomTargets([30], 904, 'binary'), [30]);
        a.loss(t, x).dispose();
        const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<GHMCLoss['state']>;
        const b = new GHMCLoss({ bins: 4, momentum: 0.9 });
        b.loadState(saved);
        expect(b.accSum).toEqual(a.accSum);
        const [la, lb] = [a.loss(t, x), b.loss(t, x)];
        expect(lb.dataSync()[0]).toBe(la.dataSync()[0]);
        expect(() => new GHMCLoss({ bins: 5, momentum: 0.9 }).loadState(saved)).toThrow(/GHMCLoss\.loadState: state\.bins/);
        b.reset();
        expect(Array.from(b.accSum)).toEqual([0, 0, 0, 0]);
        tf.dispose([x, t, la, lb]);
      });
    });

    describe('no tensor leaks', () => {
      const shape = [16, 4];
      let x: tf.Tensor;
      let v: tf.Variable;
      let t: tf.Tensor;
      let labels: tf.Tensor;
      let ghm: GHMCLoss;
      let sgd: tf.SGDOptimizer;
      beforeAll(() => {
        sgd = tf.train.sgd(0.01);
        x = randomLogits(shape, 1000);
        v = tf.variable(randomLogits(shape, 1001));
        t = tf.tensor(randomTargets(shape, 1002, 'binary'), shape);
        labels = tf.tensor1d(randomLabels(16, 3, 1003), 'int32');
        ghm = new GHMCLoss({ bins: 10, momentum: 0.75 });
      });
      afterAll(() => {
        tf.dispose([x, v, t, labels]);
        sgd.dispose();
      });

      const losses: Array<[string, (p: tf.Tensor) => tf.Tensor]> = [
        ['sigmoidFocalLoss', (p) => sigmoidFocalLoss(t, p)],
        ["sigmoidFocalLoss 'none'", (p) => sigmoidFocalLoss(t, p, { reduction: 'none' })],
        ['softmaxFocalLoss', (p) => softmaxFocalLoss(labels, p)],
        ["softmaxFocalLoss 'none'", (p) => softmaxFocalLoss(labels, p, { reduction: 'none' })],
        ['GHMCLoss', (p) => ghm.loss(t, p)],
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
          // Gradients recorded, but this loss is not on the path to x.
          tf.grad((p) => tf.add(tf.sum(p), tf.mul(0, scalarOf(loss(v)))))(x).dispose();
          expect(count(), 'recorded, unused').toBe(0);
          // Errors, with and without a gradient being recorded.
          const bad = tf.tensor1d([1, 2, 3]);
          expect(() => loss(bad)).toThrow(RangeError);
          expect(() => tf.tidy(() => tf.grad((p) => scalarOf(loss(p)))(bad))).toThrow(RangeError);
          bad.dispose();
          expect(count(), 'errors').toBe(0);
        });
      }
    });
  });
}

describe('bad input: TypeError or RangeError naming the argument, nothing changed', () => {
  const tensors: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
  afterAll(() => tf.dispose(tensors));
  const x = () => keep(tf.tensor2d([[2, -1, 0.5], [-3, 1, 0]]));
  const t = () => keep(tf.tensor2d([[1, 0, 0], [0, 0, 1]]));

  it('yPred and yTrue that are not live tensors, or yPred not float32', () => {
    for (const f of [sigmoidFocalLoss, softmaxFocalLoss, new GHMCLoss().loss] as Loss[]) {
      expectThrow(() => f(t(), bad(Float32Array.of(1, 2, 3, 4, 5, 6))), TypeError, /: yPred must be a tf\.Tensor, got Float32Array/);
      expectThrow(() => f(bad([[1, 0, 0], [0, 0, 1]]), x()), TypeError, /: yTrue must be a tf\.Tensor, got Array/);
      expectThrow(() => f(t(), keep(tf.tensor2d([[1, 2, 3], [4, 5, 6]], undefined, 'int32'))), TypeError, /yPred must be a float32 tensor \(logits or probabilities\), got dtype int32/);
      const gone = tf.tensor2d([[1, 0, 0], [0, 0, 1]]);
      gone.dispose();
      expectThrow(() => f(gone, x()), TypeError, /yTrue has been disposed/);
    }
  });

  it('sigmoid targets: shapes that disagree, values out of range, ambiguous per-row targets', () => {
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([1, 0, 0])), x()), RangeError, /yTrue has shape \[3\], expected yPred's shape \[2, 3\] .* or \[2\] \(one class index per row, 3 = background\)/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor2d([[1, 0, 2], [0, 0, 1]], undefined, 'int32')), x()), RangeError, /sigmoidFocalLoss: yTrue\[2\] is 2; int32 targets must be 0 or 1/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor2d([[1, 0, 1.5], [0, 0, 1]])), x()), RangeError, /sigmoidFocalLoss: yTrue has values in \[0, 1\.5\]; soft targets must be in \[0, 1\]/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor2d([[1, 0, NaN], [0, 0, 1]])), x()), RangeError, /yTrue contains NaN/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([0, 4], 'int32')), x()), RangeError, /sigmoidFocalLoss: yTrue\[1\] is 4, expected an integer in \[0, 3\]/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([0, 1.5])), x()), RangeError, /yTrue\[1\] is 1\.5; class indices must be whole numbers/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([0, 1], 'bool')), x()), TypeError, /class indices .* must be int32 or float32, got dtype bool/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([1, 0])), keep(tf.tensor2d([[1], [2]]))), RangeError, /needs at least 2 classes .* give yTrue yPred's shape/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor2d([['a', 'b', 'c'], ['d', 'e', 'f']])), x()), TypeError, /yTrue must be float32 .* got dtype string/);
  });

  it('sigmoid options: unknown keys (grad, out), bad values, weight shapes', () => {
    expectThrow(() => sigmoidFocalLoss(t(), x(), bad<TfSigmoidFocalOptions>({ grad: true })), TypeError, /sigmoidFocalLoss: unknown option 'grad'/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), bad<TfSigmoidFocalOptions>({ out: {} })), TypeError, /unknown option 'out'/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { gamma: -1 }), RangeError, /sigmoidFocalLoss: options\.gamma must be in \[0, 32\]/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { alpha: 2 }), RangeError, /options\.alpha/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), bad<TfSigmoidFocalOptions>({ reduction: 'avg' })), RangeError, /options\.reduction/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { weight: keep(tf.tensor1d([1, 1])) }), RangeError, /options\.weight has shape \[2\], expected yPred's shape \[2, 3\]$/);
    expectThrow(() => sigmoidFocalLoss(keep(tf.tensor1d([0, 3], 'int32')), x(), { weight: keep(tf.tensor1d([1, 1, 1])) }), RangeError, /options\.weight has shape \[3\], expected yPred's shape \[2, 3\] or \[2\] \(one per row\)/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { weight: keep(tf.ones([2, 3], 'int32')) }), TypeError, /options\.weight must be a float32 tensor/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { weight: bad([1, 1, 1, 1, 1, 1]) }), TypeError, /options\.weight must be a tf\.Tensor or a Float32Array, got Array/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { weight: new Float32Array(5) }), RangeError, /options\.weight has length 5/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { input: 'probabilities' }), RangeError, /^sigmoidFocalLoss: yPred /);
    expectThrow(() => sigmoidFocalLoss(t(), x(), bad<TfSigmoidFocalOptions>({ input: 'probs' })), RangeError, /options\.input/);
    expectThrow(() => sigmoidFocalLoss(t(), x(), { labelSmoothing: 1.5 }), RangeError, /options\.labelSmoothing/);
  });

  it('softmax labels: not one-hot, not probabilities, wrong shapes, out of range, numClasses is not an option', () => {
    // float32 rows of yPred's shape that are not all one-hot are class probabilities (checked as such).
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 0, 0], [0, 0, 0]])), x()), RangeError, /^softmaxFocalLoss: yTrue row 1 sums to 0, expected 1 \(class probabilities\)$/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 0, 0], [0.5, 1, 0]])), x()), RangeError, /^softmaxFocalLoss: yTrue row 1 sums to 1\.5/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[2, 1, 0], [0, 1, 0]])), x()), RangeError, /^softmaxFocalLoss: yTrue\[0\] is 2, expected a probability in \[0, 1\] \(row 0\)$/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[-3, 1, 0], [0, 1, 0]])), x()), RangeError, /yTrue\[0\] is -3/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 1, 0], [0, 0, 1]])), x()), RangeError, /row 0 sums to 2/);
    // int32 and bool rows must be one-hot.
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 0, 0], [0, 0, 0]], undefined, 'int32')), x()), RangeError, /softmaxFocalLoss: yTrue has yPred's shape, so rows must be one-hot .* row 1 is \[0, 0, 0\]; class probabilities must be float32/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[1, 1, 0], [0, 0, 1]], undefined, 'bool')), x()), RangeError, /row 0 is \[1, 1, 0\]/);
    // Valid probabilities need the extras (not loaded here): the core's error saying how to load them.
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor2d([[0.9, 0.1, 0], [0, 0, 1]])), x()), Error, /^softmaxFocalLoss: needs the extras kernels: `import \{ extras \} from 'focal-ghm\/extras'; await init\(\{ extras \}\);`$/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 1, 2], 'int32')), x()), RangeError, /yTrue has shape \[3\], expected one-hot rows of yPred's shape \[2, 3\], or one label per row: \[2\] or \[2, 1\]/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 3], 'int32')), x()), RangeError, /softmaxFocalLoss: yTrue\[1\] is 3, expected an integer in \[0, 2\] or -100/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 1], 'int32')), keep(tf.scalar(1))), RangeError, /yPred has shape \[\]; it needs a last axis of classes/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 1], 'int32')), x(), bad<TfSoftmaxFocalOptions>({ numClasses: 3 })), TypeError, /unknown option 'numClasses'/);
    expectThrow(() => softmaxFocalLoss(keep(tf.tensor1d([0, 1], 'int32')), x(), { alpha: Float32Array.of(0.5) }), RangeError, /options\.alpha has length 1, expected numClasses = 3/);
  });

  it('GHMCLoss: constructor options, targets, labelWeight; a failed call leaves the EMA state unchanged', () => {
    expectThrow(() => new GHMCLoss({ bins: 0 }), RangeError, /^GHMCLoss: options\.bins/);
    expectThrow(() => new GHMCLoss(bad({ mu: 1 })), TypeError, /^GHMCLoss: unknown option 'mu'/);
    const g = new GHMCLoss({ bins: 10, momentum: 0.5 });
    g.loss(t(), x()).dispose();
    const before = g.state();
    expectThrow(() => g.loss(keep(tf.tensor2d([[1, 0, 2], [0, 0, 1]])), x()), RangeError, /^GHMCLoss: yTrue has values in \[0, 2\]/);
    expectThrow(() => g.loss(t(), x(), keep(tf.tensor1d([1, 1]))), RangeError, /^GHMCLoss: labelWeight has shape \[2\]/);
    expectThrow(() => g.loss(keep(tf.tensor1d([0, 9], 'int32')), x()), RangeError, /^GHMCLoss: yTrue\[1\] is 9/);
    expectThrow(() => g.loss(t(), x(), undefined, bad<TfGHMCOptions>({ grad: true })), TypeError, /^GHMCLoss: unknown option 'grad'/);
    expectThrow(() => g.loss(t(), x(), undefined, bad<TfGHMCOptions>({ reduction: 'sum' })), RangeError, /^GHMCLoss: options\.reduction/);
    expect(g.state()).toEqual(before);
  });

  it('before init(): an Error saying to call it', async () => {
    vi.resetModules();
    const fresh = await import('../ts/tfjs');
    const n0 = tf.memory().numTensors;
    for (const f of [fresh.sigmoidFocalLoss, fresh.softmaxFocalLoss, new fresh.GHMCLoss().loss] as Loss[]) {
      expectThrow(() => f(t(), x()), Error, /focal-ghm is not initialized; call `await init\(\)` \(import \{ init \} from 'focal-ghm\/tfjs' or 'focal-ghm'\) .* two copies: take init from focal-ghm\/tfjs\)$/);
    }
    expect(tf.memory().numTensors - n0).toBe(6); // only the arguments
  });
});

describe('one import for the adapter and its core', () => {
  it('focal-ghm/tfjs re-exports the core’s init and isInitialized (the instance the adapter uses)', async () => {
    const adapter = await import('../ts/tfjs');
    const core = await import('../ts/index');
    expect(adapter.init).toBe(core.init);
    expect(adapter.isInitialized).toBe(core.isInitialized);
  });
});
