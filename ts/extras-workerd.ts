/**
 * `focal-ghm/extras` for Cloudflare Workers (the `workerd` export condition): the extras module
 * as an imported module file, since workerd does not compile WebAssembly from bytes. See
 * ts/extras.ts.
 * @packageDocumentation
 */

import type { Extras } from './loader';
import extrasModule from './wasm/focal_ghm_extras_simd.wasm';

/** The extras module's SIMD build, a module file: pass to `init({ extras })`. */
export const extras: Extras = { simd: async () => extrasModule };
/** As `extras`: workerd has no thread pools, so no shared-memory build. */
export const threadedExtras: Extras = extras;
export type { Extras };
