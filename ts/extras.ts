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

/** The extras module's builds (SIMD embedded; scalar fetched from beside the bundle when needed): pass to `init({ extras })`. */
export const extras: Extras = {
  simd: () => WebAssembly.compile(decodeBase64(wasmBase64)),
  scalar: () =>
    compileUrl(
      cjsAssetUrl('focal_ghm_extras_scalar.wasm') ?? new URL('./wasm/focal_ghm_extras_scalar.wasm', import.meta.url),
      'focal-ghm init (the extras scalar build, for engines without SIMD)',
    ),
};
export type { Extras };
