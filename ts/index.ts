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

import { compileUrl, decodeBase64, initResult, initRuntime, useBuilds, type Builds, type InitOptions, type InitResult } from './loader';
import { wasmBase64 as simdBase64 } from './wasm/simd.generated';
import { cjsAssetUrl } from './asset';

export * from './api';

/**
 * The scalar build, shipped beside the bundle as a file (never embedded: engines without SIMD
 * are rare, and it is the larger build). The literal `new URL('…', import.meta.url)` lets
 * bundlers that handle assets (Vite, webpack, Parcel) copy the file and rewrite the URL.
 */
function scalarUrl(): URL {
  return cjsAssetUrl('focal_ghm_scalar.wasm') ?? new URL('./wasm/focal_ghm_scalar.wasm', import.meta.url);
}

const builds: Builds = {
  entry: 'focal-ghm',
  simd: () => WebAssembly.compile(decodeBase64(simdBase64)),
  scalar: () => compileUrl(scalarUrl(), 'focal-ghm init (the scalar build, for engines without SIMD)'),
};
useBuilds(builds);

/**
 * Loads the kernels. Idempotent: later calls return the first one's result (pass options only
 * to the first). Every loss function needs it to have completed. Resolves to {@link InitResult}.
 *
 * By default: the SIMD build, embedded in the bundle; on engines without WebAssembly SIMD, the
 * scalar build, fetched from `wasm/focal_ghm_scalar.wasm` beside the bundle (bundlers that
 * handle `new URL(…, import.meta.url)` assets copy it; otherwise pass `url`).
 *
 * @example
 * ```ts
 * import { init, sigmoidFocalLoss } from 'focal-ghm';
 * await init();                                   // the bundled build, SIMD when supported
 * await init({ url: '/assets/focal_ghm.wasm' });  // or: your own copy of a build
 * ```
 */
export function init(opts: InitOptions = {}): Promise<InitResult> {
  return initRuntime(opts, builds).then(initResult);
}
