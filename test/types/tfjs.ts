// The declarations of 'focal-ghm/tfjs' as a strict TF.js project sees them: compiled, never run,
// by test/package.test.ts against the packed tarball (TypeScript 5.0 and current, ESM and CJS
// resolution), with @tensorflow/tfjs-core installed beside it. Its tsconfig adds the DOM library,
// which tfjs-core's own declarations need.

import * as tf from '@tensorflow/tfjs-core';
import { init, type GHMState } from 'focal-ghm';
import { GHMCLoss, sigmoidFocalLoss, softmaxFocalLoss, type LossTensor, type TfGHMCOptions, type TfSigmoidFocalOptions, type TfSoftmaxFocalOptions } from 'focal-ghm/tfjs';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
declare function expectType<V>(value: V): {
  toBe<T>(...typesDiffer: Equal<V, T> extends true ? [] : [actualType: V]): void;
};

await init();
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

export { kerasLoss, ghmLoss };
