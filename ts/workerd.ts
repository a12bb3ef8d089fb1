/**
 * focal-ghm for Cloudflare Workers (workerd), chosen by the `workerd` export condition that
 * wrangler bundles with: the same API, with the SIMD build imported as a module file, since
 * workerd does not compile WebAssembly from bytes. The upload then holds the kernels once, as a
 * wasm module, and no base64.
 *
 * @example
 * ```ts
 * import { init, sigmoidFocalLoss } from 'focal-ghm';
 * export default {
 *   async fetch() {
 *     await init();
 *     return Response.json(sigmoidFocalLoss(Float32Array.of(2, -1), Uint8Array.of(1, 0)));
 *   },
 * };
 * ```
 * @packageDocumentation
 */

import { initResult, initRuntime, useBuilds, type Builds, type InitOptions, type InitResult } from './loader';
import simdModule from './wasm/focal_ghm_simd.wasm';

export * from './api';

const builds: Builds = { entry: 'focal-ghm (workerd)', simd: async () => simdModule };
useBuilds(builds);

/** Loads the kernels: the SIMD module file, or what `opts` names. See the core entry's `init`. */
export function init(opts: InitOptions = {}): Promise<InitResult> {
  return initRuntime(opts, builds).then(initResult);
}
