// Loads and instantiates the wasm kernels. No wasm-bindgen: the crate exports plain `extern "C"`
// functions over pointers, so the whole binding is the typed interface below.

import { wasmBase64 as simdBase64 } from './wasm/simd.generated';
import { wasmBase64 as scalarBase64 } from './wasm/scalar.generated';

/** The raw exports of the kernel module (see crates/kernels/src/ffi.rs for the contract). */
export interface Kernels {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  fg_sigmoid_focal(
    x: number, n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number,
    alphaPos: number, alphaNeg: number, gamma: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_count_pos_neg(n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number, out: number): void;
  fg_softmax_focal(
    x: number, rows: number, numClasses: number, labels: number, alpha: number, gamma: number, ignoreIndex: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_ghm_stats_len(bins: number): number;
  fg_ghmc_stats(x: number, n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number, bins: number, stats: number, info: number): void;
  fg_ghmc_grad(x: number, n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number, bins: number, factor: number, grad: number): void;
  fg_ghmr_stats(pred: number, target: number, n: number, wkind: number, w: number, mu: number, bins: number, stats: number): void;
  fg_ghmr_grad(pred: number, target: number, n: number, wkind: number, w: number, mu: number, bins: number, factor: number, grad: number): void;
}

/** Where to get the wasm from; by default the builds bundled in the package. */
export interface InitOptions {
  /**
   * A compiled module: in Cloudflare workerd, which cannot compile bytes, import the shipped file
   * (`import wasm from 'focal-ghm/simd.wasm'`) and pass it here.
   */
  module?: WebAssembly.Module;
  /** The bytes of a kernel build. */
  bytes?: BufferSource;
  /** A URL to fetch the bytes from. */
  url?: string | URL;
  /** Force the SIMD (`true`) or scalar (`false`) bundled build; default: SIMD where supported. */
  simd?: boolean;
}

export interface Runtime {
  kernels: Kernels;
  /** Whether the running build is the SIMD one; `null` for a build passed in by the caller. */
  simd: boolean | null;
}

let runtime: Runtime | undefined;
let pending: Promise<Runtime> | undefined;

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): validates only with SIMD.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** Whether this engine supports WebAssembly SIMD128. */
export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The bytes of a base64 string (the embedded builds; `atob` exists in every runtime we support). */
export function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function compile(opts: InitOptions): Promise<{ module: WebAssembly.Module; simd: boolean | null }> {
  if (opts.module) return { module: opts.module, simd: null };
  if (opts.bytes) return { module: await WebAssembly.compile(opts.bytes), simd: null };
  if (opts.url !== undefined) {
    const res = await fetch(opts.url);
    if (!res.ok) throw new Error(`focal-ghm init: fetching ${String(opts.url)} failed with HTTP ${res.status}`);
    return { module: await WebAssembly.compile(await res.arrayBuffer()), simd: null };
  }
  const simd = opts.simd ?? simdSupported();
  if (simd && !simdSupported()) throw new Error('focal-ghm init: simd: true was asked for, but this engine has no WebAssembly SIMD');
  try {
    return { module: await WebAssembly.compile(decodeBase64(simd ? simdBase64 : scalarBase64)), simd };
  } catch (e) {
    // Cloudflare workerd (and pages whose CSP lacks 'wasm-unsafe-eval') refuse to compile bytes,
    // with a message ("Wasm code generation disallowed by embedder") that says nothing of what
    // to do instead.
    const flavour = simd ? 'simd' : 'scalar';
    throw new Error(
      `focal-ghm init: compiling the bundled ${flavour} build failed (${(e as Error).message}). ` +
        `Where a runtime does not allow compiling WebAssembly from bytes (Cloudflare workerd), import the module file and pass it in: ` +
        `\`import wasm from 'focal-ghm/${flavour}.wasm'; await init({ module: wasm });\``,
      { cause: e },
    );
  }
}

/**
 * Loads the kernels. Idempotent: later calls return the first one's result (pass options only
 * to the first). Every loss function needs it to have completed.
 *
 * @example
 * ```ts
 * import { init, sigmoidFocalLoss } from 'focal-ghm';
 * await init();                                   // the bundled build, SIMD when supported
 * await init({ url: '/assets/focal_ghm.wasm' });  // or: your own copy of a build
 * // Cloudflare Workers (no compiling from bytes there): the shipped module file
 * // import wasm from 'focal-ghm/simd.wasm';  await init({ module: wasm });
 * ```
 */
export function init(opts: InitOptions = {}): Promise<Runtime> {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`init: options must be an object, got ${String(opts)}`);
  if (runtime) return Promise.resolve(runtime);
  if (!pending) {
    pending = (async () => {
      const { module, simd } = await compile(opts);
      const instance = await WebAssembly.instantiate(module, {});
      const rt: Runtime = { kernels: instance.exports as unknown as Kernels, simd };
      runtime = rt;
      return rt;
    })();
    // A failed init may be retried (e.g. with other options).
    pending.catch(() => {
      pending = undefined;
    });
  }
  return pending;
}

/** Whether `init()` has completed. */
export function isInitialized(): boolean {
  return runtime !== undefined;
}

/** The loaded runtime, or a clear error when `init()` has not completed. */
export function getRuntime(fn: string): Runtime {
  if (!runtime) throw new Error(`${fn}: focal-ghm is not initialized; call \`await init()\` first`);
  return runtime;
}
