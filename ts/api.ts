// The public API of every entry point except `init`, whose default builds differ per entry point
// (ts/index.ts, ts/workerd.ts).

export { isInitialized, simdSupported, type Extras, type InitOptions, type InitResult, type WasmModule } from './loader';
import { sigmoidFocalLoss as sigmoidFocalLossFn } from './focal';
import { sigmoidFocalStream } from './stream';
import {
  distributionFocalLoss as distributionFocalLossFn,
  distributionFocalStream,
  qualityFocalLoss as qualityFocalLossFn,
  qualityFocalStream,
  varifocalLoss as varifocalLossFn,
  varifocalStream,
} from './family';

/**
 * Sigmoid focal loss (docs/SPEC.md §1; mmdetection `py_sigmoid_focal_loss`, torchvision
 * `sigmoid_focal_loss`), optionally with its gradient; `sigmoidFocalLoss.stream(options)` scores
 * a batch that arrives in pieces. Full option docs: {@link SigmoidFocalOptions}.
 *
 * @example
 * ```ts
 * await init();
 * const { loss, grad } = sigmoidFocalLoss(logits, new Uint8Array(targets), { gamma: 2, grad: true });
 * sigmoidFocalLoss(logits, { labels, numClasses: 80 }, { avgFactor: numPositives });
 * const s = sigmoidFocalLoss.stream({ reduction: 'sum' });
 * s.push(logitsA, targetsA); s.push(logitsB, targetsB);
 * s.finish().loss;
 * ```
 */
export const sigmoidFocalLoss: typeof sigmoidFocalLossFn & { stream: typeof sigmoidFocalStream } = Object.assign(
  sigmoidFocalLossFn,
  { stream: sigmoidFocalStream },
);

export {
  softmaxFocalLoss,
  type GradFor,
  type LossFor,
  type OutputBuffers,
  type LossResult,
  type Reduction,
  type SigmoidFocalOptions,
  type SigmoidInput,
  type SigmoidFocalResult,
  type SoftmaxFocalOptions,
} from './focal';
export { GHMC, GHMR, GHMStats, MAX_BINS, type GHMCOptions, type GHMForwardOptions, type GHMCForwardOptions, type GHMRForwardOptions, type GHMReduction, type GHMROptions, type GHMState, type GHMStep, type GHMStream, type GHMStreamResult } from './ghm';
export { Batch, createBatch, type BatchOptions } from './batch';
export { scoreStream, sigmoidFocalStream, type ReadableStreamLike, type ScoreLoss, type ScoreResult, type ScoreSpec, type SigmoidFocalStream, type SigmoidFocalStreamOptions, type SigmoidFocalStreamResult, type StreamChunk } from './stream';
export type { ClassTargets, Targets } from './inputs';
export { createPool, Pool, type PoolOptions } from './pool';

// (`@__PURE__`: an unused loss's call of Object.assign is then dropped by bundlers, and with it
// the loss; a page that never calls the focal family carries none of its code.)
/** Quality Focal Loss (docs/SPEC.md §7), with `.stream(options)`; see {@link qualityFocalLossFn}. Needs `init({ extras })`. */
export const qualityFocalLoss: typeof qualityFocalLossFn & { stream: typeof qualityFocalStream } = /* @__PURE__ */ Object.assign(qualityFocalLossFn, { stream: qualityFocalStream });
/** Varifocal Loss (docs/SPEC.md §8), with `.stream(options)`; see {@link varifocalLossFn}. Needs `init({ extras })`. */
export const varifocalLoss: typeof varifocalLossFn & { stream: typeof varifocalStream } = /* @__PURE__ */ Object.assign(varifocalLossFn, { stream: varifocalStream });
/** Distribution Focal Loss (docs/SPEC.md §9), with `.stream(options)`; see {@link distributionFocalLossFn}. Needs `init({ extras })`. */
export const distributionFocalLoss: typeof distributionFocalLossFn & { stream: typeof distributionFocalStream } = /* @__PURE__ */ Object.assign(distributionFocalLossFn, {
  stream: distributionFocalStream,
});
export type {
  DistributionFocalOptions,
  FamilyOptions,
  FamilyStream,
  FamilyStreamOptions,
  FamilyStreamResult,
  QualityFocalOptions,
  QualityTargets,
  VarifocalOptions,
} from './family';
