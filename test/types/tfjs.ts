// The declarations of 'focal-ghm/tfjs' as a strict TF.js project sees them: compiled, never run,
// by test/package.test.ts against the packed tarball (TypeScript 5.0 and current, ESM and CJS
// resolution), with @tensorflow/tfjs-core installed beside it. Its tsconfig adds the DOM library,
// which tfjs-core's own declarations need.

import * as tf from '@tensorflow/tfjs-core';
import { init, type GHMState } from 'focal-ghm';
import { extras } from 'focal-ghm/extras';
import {
  distributionFocalLoss,
  GHMCLoss,
  qualityFocalLoss,
  sigmoidFocalLoss,
  softmaxFocalLoss,
  varifocalLoss,
  type LossTensor,
  type TfDistributionFocalOptions,
  type TfGHMCOptions,
  type TfQualityFocalOptions,
  type TfSigmoidFocalOptions,
  type TfSoftmaxFocalOptions,
  type TfVarifocalOptions,
} from 'focal-ghm/tfjs';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
declare function expectType<V>(value: V): {
  toBe<T>(...typesDiffer: Equal<V, T> extends true ? [] : [actualType: V]): void;
};

await init({ extras });
const yPred = tf.zeros([4, 3]);
const yTrue = tf.ones([4, 3]);
const labels = tf.tensor1d([0, 1, 2, 3], 'int32');

// The result follows the reduction: a Scalar, or a Tensor for 'none'.
expectType(sigmoidFocalLoss(yTrue, yPred)).toBe<tf.Scalar>();
expectType(sigmoidFocalLoss(yTrue, yPred, { gamma: 2, alpha: 'auto', avgFactor: 4, lossWeight: 2 })).toBe<tf.Scalar>();
expectType(sigmoidFocalLoss(labels, yPred, { reduction: 'none', weight: tf.ones([4]) })).toBe<tf.Tensor>();
expectType(sigmoidFocalLoss(yTrue, yPred, { weight: new Float32Array(12), reduction: 'sum' })).toBe<tf.Scalar>();
expectType(sigmoidFocalLoss(yTrue, yPred, { input: 'probabilities', labelSmoothing: 0.1 })).toBe<tf.Scalar>();
expectType(softmaxFocalLoss(labels, yPred, { alpha: new Float32Array(3), ignoreIndex: -1 })).toBe<tf.Scalar>();
expectType(softmaxFocalLoss(yTrue, yPred, { reduction: 'none' })).toBe<tf.Tensor>();
declare const wide: TfSigmoidFocalOptions;
expectType(sigmoidFocalLoss(yTrue, yPred, wide)).toBe<tf.Tensor | tf.Scalar>();
const softmaxOptions: TfSoftmaxFocalOptions<'sum'> = { reduction: 'sum', gamma: 0 };
expectType(softmaxFocalLoss(labels, yPred, softmaxOptions)).toBe<LossTensor<'sum'>>();

// poly1, label smoothing, class probabilities; the focal family of the extras.
expectType(sigmoidFocalLoss(labels, yPred, { poly1: 1 })).toBe<tf.Scalar>();
expectType(softmaxFocalLoss(labels, yPred, { poly1: -0.5, labelSmoothing: 0.1 })).toBe<tf.Scalar>();
expectType(softmaxFocalLoss(tf.fill([4, 3], 1 / 3), yPred, { reduction: 'none' })).toBe<tf.Tensor>();
expectType(qualityFocalLoss(yTrue, yPred)).toBe<tf.Scalar>();
expectType(qualityFocalLoss(yTrue, yPred, { beta: 2, weight: tf.ones([4]), avgFactor: 2, lossWeight: 1, reduction: 'none' })).toBe<tf.Tensor>();
expectType(varifocalLoss(yTrue, yPred, { alpha: 0.75, gamma: 2, iouWeighted: false, weight: new Float32Array(12), reduction: 'sum' })).toBe<tf.Scalar>();
expectType(distributionFocalLoss(tf.zeros([4]), yPred, { weight: tf.ones([4]) })).toBe<tf.Scalar>();
const qflOptions: TfQualityFocalOptions<'none'> = { reduction: 'none' };
expectType(qualityFocalLoss(yTrue, yPred, qflOptions)).toBe<LossTensor<'none'>>();
const vflOptions: TfVarifocalOptions<'mean'> = { alpha: 0.5 };
const dflOptions: TfDistributionFocalOptions<'sum'> = { reduction: 'sum' };
expectType(varifocalLoss(yTrue, yPred, vflOptions)).toBe<tf.Scalar>();
expectType(distributionFocalLoss(tf.zeros([4]), yPred, dflOptions)).toBe<tf.Scalar>();
const familyLoss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor = (t, p) => qualityFocalLoss(t, p, { beta: 2 });

// What a Keras loss, tf.variableGrads and an optimizer take.
const kerasLoss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor = (t, p) => sigmoidFocalLoss(t, p, { gamma: 2 });
const v = tf.variable(yPred);
const { value, grads } = tf.variableGrads(() => sigmoidFocalLoss(yTrue, v));
expectType(value).toBe<tf.Scalar>();
grads[v.name];
tf.train.adam(0.01).minimize(() => softmaxFocalLoss(labels, v));

const ghm = new GHMCLoss({ bins: 30, momentum: 0.75, lossWeight: 1 });
const validated: GHMCLoss = new GHMCLoss({ bins: 30, momentum: 0.75, ema: 'training' });
validated.reset();
const ghmLoss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor = ghm.loss;
expectType(ghm.loss(yTrue, yPred, tf.ones([4, 3]))).toBe<tf.Scalar>();
expectType(ghm.loss(yTrue, yPred, undefined, { reduction: 'none' })).toBe<tf.Tensor>();
const ghmOptions: TfGHMCOptions<'mean'> = { reduction: 'mean' };
expectType(ghm.loss(labels, yPred, new Float32Array(4), ghmOptions)).toBe<tf.Scalar>();
const saved: GHMState = ghm.state();
ghm.loadState(saved);
ghm.reset();
expectType(ghm.accSum).toBe<Float64Array>();
expectType(ghm.bins + ghm.momentum).toBe<number>();

// Mistakes are caught where they are made.
// @ts-expect-error the gradient is TF.js's to ask for
sigmoidFocalLoss(yTrue, yPred, { grad: true });
// @ts-expect-error numClasses comes from yPred's last axis
softmaxFocalLoss(labels, yPred, { numClasses: 3 });
// @ts-expect-error no such reduction
sigmoidFocalLoss(yTrue, yPred, { reduction: 'avg' });
// @ts-expect-error tensors, not arrays
sigmoidFocalLoss(new Float32Array(12), yPred);
// @ts-expect-error GHM-C has no mu (that is GHM-R)
new GHMCLoss({ mu: 0.02 });
// @ts-expect-error ema is 'always' or 'training'
new GHMCLoss({ ema: 'never' });
// @ts-expect-error GHM-C's reductions are 'mean' and 'none'
ghm.loss(yTrue, yPred, undefined, { reduction: 'sum' });
// @ts-expect-error no such input
sigmoidFocalLoss(yTrue, yPred, { input: 'logit' });
// @ts-expect-error the bins come from yPred's last axis
distributionFocalLoss(tf.zeros([4]), yPred, { bins: 2 });
// @ts-expect-error the gradient is TF.js's to ask for
qualityFocalLoss(yTrue, yPred, { grad: true });
// @ts-expect-error targets are in yTrue, not options
qualityFocalLoss(yTrue, yPred, { numClasses: 3 });
// @ts-expect-error iouWeighted is a boolean
varifocalLoss(yTrue, yPred, { iouWeighted: 1 });

export { kerasLoss, ghmLoss, familyLoss };
