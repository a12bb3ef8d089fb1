/**
 * `focal-ghm/extras`: the extras kernels, a second wasm module loaded on demand, so that pages
 * that use only the core losses do not carry it. They compute the focal family
 * (`qualityFocalLoss`, `varifocalLoss`, `distributionFocalLoss`, the `poly1` option) and the
 * softmax focal loss with soft targets (`targets`, `labelSmoothing`).
 *
 * @example
 * ```ts
 * import { init, qualityFocalLoss } from 'focal-ghm';
 * import { extras } from 'focal-ghm/extras';
 * await init({ extras });
 * ```
 * @packageDocumentation
 */

import { cjsAssetUrl } from './asset';
import { compileUrl, decodeBase64, type Extras } from './loader';
import { wasmBase64 } from './wasm/extras_simd.generated';

/**
 * The extras module's builds (SIMD embedded; scalar fetched from beside the bundle when needed;
 * the shared-memory one for thread pools in a chunk of its own, loaded when a pool with extras
 * starts): pass to `init({ extras })` and `createPool({ extras })`.
 */
export const extras: Extras = {
  simd: () => WebAssembly.compile(decodeBase64(wasmBase64)),
  scalar: () =>
    compileUrl(
      cjsAssetUrl('focal_ghm_extras_scalar.wasm') ?? new URL('./wasm/focal_ghm_extras_scalar.wasm', import.meta.url),
      'focal-ghm init (the extras scalar build, for engines without SIMD)',
    ),
  // A separate chunk: programs that never start a pool with extras do not parse this build.
  shared: async () => {
    const { wasmBase64: shared } = await import('./wasm/extras_shared.generated');
    return shared ? decodeBase64(shared) : undefined;
  },
};
export type { Extras };
