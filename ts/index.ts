/**
 * focal-ghm: focal loss and GHM loss for JavaScript, computed by a Rust/WebAssembly-SIMD core.
 *
 * @example
 * ```ts
 * import { init, sigmoidFocalLoss } from 'focal-ghm';
 * await init();
 * const { loss, grad } = sigmoidFocalLoss(logits, targets, { gamma: 2, alpha: 0.25, grad: true });
 * ```
 * @packageDocumentation
 */

export { init, isInitialized, simdSupported, type InitOptions, type Runtime } from './loader';
export {
  sigmoidFocalLoss,
  softmaxFocalLoss,
  type LossResult,
  type Reduction,
  type SigmoidFocalOptions,
  type SigmoidFocalResult,
  type SoftmaxFocalOptions,
} from './focal';
export { GHMC, GHMR, GHMStats, MAX_BINS, type GHMCOptions, type GHMROptions, type GHMState, type GHMStep } from './ghm';
export type { ClassTargets, Targets } from './inputs';
