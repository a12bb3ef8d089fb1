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

const simd = (): Promise<WebAssembly.Module> => WebAssembly.compile(decodeBase64(wasmBase64));
const scalar = (): Promise<WebAssembly.Module> =>
  compileUrl(
    cjsAssetUrl('focal_ghm_extras_scalar.wasm') ?? new URL('./wasm/focal_ghm_extras_scalar.wasm', import.meta.url),
    'focal-ghm init (the extras scalar build, for engines without SIMD)',
  );

/**
 * The extras module's builds (SIMD embedded; scalar fetched from beside the bundle on engines
 * without SIMD): pass to `init({ extras })`.
 */
export const extras: Extras = { simd, scalar };

/**
 * {@link extras} with the shared-memory build for thread pools: pass to `createPool({ extras:
 * threadedExtras })` (and `init` too). A separate export, because bundlers that do not split
 * code (esbuild without `splitting`) inline the shared build's dynamic import, about 400 KB of
 * base64, into every bundle that references it; with `extras` alone a page carries none of it.
 */
export const threadedExtras: Extras = {
  simd,
  scalar,
  shared: async () => {
    const { wasmBase64: shared } = await import('./wasm/extras_shared.generated');
    return shared ? decodeBase64(shared) : undefined;
  },
};
export type { Extras };
