// Loads and instantiates the wasm kernels. No wasm-bindgen: the crate exports plain `extern "C"`
// functions over pointers, so the whole binding is the typed interface below.
//
// Where the default builds come from is up to the entry point (`Builds`): ts/index.ts embeds
// the SIMD build and fetches the scalar one from beside the bundle; ts/workerd.ts imports the
// shipped module file. This module holds none of them, so a bundle carries only what its entry
// point loads.

import { HEAP_START } from './memory';
import { fetchBytes, g } from './platform';

/** The raw exports of the kernel module (see crates/kernels/src/ffi.rs for the contract). */
export interface Kernels {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  fg_sigmoid_focal(
    x: number, n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number,
    alphaPos: number, alphaNeg: number, gamma: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_sigmoid_focal_prob(
    p: number, n: number, t: number, wkind: number, w: number, alphaPos: number, alphaNeg: number, gamma: number,
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

/**
 * The raw exports of the extras module (crates/kernels/src/ffi_extras.rs), which imports the
 * core module's memory: the same pointers, the same heap.
 */
export interface ExtrasKernels {
  __heap_base: WebAssembly.Global;
  fg_sigmoid_focal_poly(
    x: number, n: number, tkind: number, t: number, numClasses: number, wkind: number, w: number,
    alphaPos: number, alphaNeg: number, gamma: number, eps: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_softmax_focal_poly(
    x: number, rows: number, numClasses: number, labels: number, alpha: number, gamma: number, ignoreIndex: number, eps: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_softmax_focal_soft(
    x: number, rows: number, numClasses: number, tkind: number, t: number, eps: number, ignoreIndex: number,
    alpha: number, gamma: number, rw: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_quality_focal(
    x: number, rows: number, numClasses: number, labels: number, scores: number, rw: number, beta: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
  fg_varifocal(
    x: number, n: number, q: number, w: number, alpha: number, gamma: number, iouWeighted: number,
    lossOut: number, lossScale: number, gradOut: number, gradScale: number, info: number,
  ): void;
}

/**
 * The extras module's builds: what `import { extras } from 'focal-ghm/extras'` gives, to pass to
 * `init({ extras })`, and with `shared` (`threadedExtras`) to `createPool`. Each function
 * compiles (or loads) its build when called.
 */
export interface Extras {
  /** The SIMD build. */
  simd(): Promise<WasmModule>;
  /** The scalar build, for engines without SIMD (absent in the workerd entry: every version has SIMD). */
  scalar?(): Promise<WasmModule>;
  /**
   * The bytes of the shared-memory build, for a thread pool's workers (`createPool({ extras:
   * threadedExtras })`), or `undefined` when the package was built without it. Absent in the
   * workerd entry (no pool).
   */
  shared?(): Promise<Uint8Array | undefined>;
}

/**
 * A compiled kernel module: a `WebAssembly.Module`. Declared structurally (as any object) so that
 * the package's types need neither the DOM nor the Node typings; pass the module itself.
 */
export type WasmModule = object;

/** Where to get the wasm from; by default the builds bundled in the package. */
export interface InitOptions {
  /**
   * A compiled module (a `WebAssembly.Module`): in Cloudflare workerd, which cannot compile
   * bytes, import the shipped file (`import wasm from 'focal-ghm/simd.wasm'`) and pass it here.
   */
  module?: WasmModule;
  /** The bytes of a kernel build (an `ArrayBuffer` or a view of one, e.g. a `Uint8Array` or Node `Buffer`). */
  bytes?: ArrayBuffer | ArrayBufferView;
  /** A URL to fetch the bytes from: a string or a `URL`. */
  url?: string | { readonly href: string };
  /** Force the SIMD (`true`) or scalar (`false`) bundled build; default: SIMD where supported. */
  simd?: boolean;
  /**
   * Also load the extras module: the focal family (`qualityFocalLoss`, `varifocalLoss`,
   * `distributionFocalLoss`, the `poly1` option) and softmax soft targets. Pass `extras` from
   * `focal-ghm/extras`; it may come with a later `init` call than the first.
   */
  extras?: Extras;
}

/** What {@link init} resolves to. */
export interface InitResult {
  /** Whether the running build is the SIMD one; `null` for a build passed in by the caller. */
  simd: boolean | null;
  /** Whether the extras module is loaded (see {@link InitOptions.extras}). */
  extras: boolean;
}

/** The loaded kernels (internal: the public type of what `init` gives is {@link InitResult}). */
export interface Runtime extends Omit<InitResult, 'extras'> {
  kernels: Kernels;
  /** The extras module's exports, once loaded. */
  extrasKernels?: ExtrasKernels;
}

/** What `init` resolves to: a snapshot of the public fields, not the runtime's internals. */
export function initResult(rt: Runtime): InitResult {
  return { simd: rt.simd, extras: rt.extrasKernels !== undefined };
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

/** An entry point's default builds: each loads and compiles its module only when called. */
export interface Builds {
  /** The entry point's name in messages, e.g. `focal-ghm` or `focal-ghm (workerd)`. */
  entry: string;
  simd: () => Promise<WebAssembly.Module>;
  /** Absent where the entry point ships no scalar build (workerd: every version has SIMD). */
  scalar?: () => Promise<WebAssembly.Module>;
}

/** Compiles the module at `url` (the scalar build beside the bundle, or the caller's `url`). */
export async function compileUrl(url: URL, what: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(await fetchBytes(url, what));
}

async function compile(opts: InitOptions, builds: Builds): Promise<{ module: WebAssembly.Module; simd: boolean | null }> {
  if (opts.module) return { module: opts.module as WebAssembly.Module, simd: null };
  // (BufferSource: the DOM typings' name for what InitOptions.bytes declares without them.)
  if (opts.bytes) return { module: await WebAssembly.compile(opts.bytes as BufferSource), simd: null };
  if (opts.url !== undefined) return { module: await compileUrl(new URL(String(opts.url), g.location?.href), 'focal-ghm init'), simd: null };
  const simd = opts.simd ?? simdSupported();
  if (simd && !simdSupported()) throw new Error('focal-ghm init: simd: true was asked for, but this engine has no WebAssembly SIMD');
  if (!simd) {
    if (!builds.scalar) throw new Error(`focal-ghm init: ${builds.entry} ships only the SIMD build; pass the scalar one yourself: \`import wasm from 'focal-ghm/scalar.wasm'; await init({ module: wasm });\``);
    return { module: await builds.scalar(), simd };
  }
  try {
    return { module: await builds.simd(), simd };
  } catch (e) {
    // Cloudflare workerd (and pages whose CSP lacks 'wasm-unsafe-eval') refuse to compile bytes,
    // with a message ("Wasm code generation disallowed by embedder") that says nothing of what
    // to do instead.
    throw new Error(
      `focal-ghm init: compiling the bundled simd build failed (${(e as Error).message}). ` +
        `A page needs 'wasm-unsafe-eval' in its Content-Security-Policy script-src. ` +
        `Where a runtime does not allow compiling WebAssembly from bytes (Cloudflare workerd; bundle with the "workerd" condition, as wrangler does, and this is automatic), import the module file and pass it in: ` +
        `\`import wasm from 'focal-ghm/simd.wasm'; await init({ module: wasm });\``,
      { cause: e },
    );
  }
}

/** What a kernel build exports: checked before a module is taken for one (see `instantiate`). */
const KERNEL_EXPORTS: Array<[string, string]> = [
  ['memory', 'memory'],
  ['__heap_base', 'global'],
  ...[
    'fg_sigmoid_focal', 'fg_count_pos_neg', 'fg_softmax_focal', 'fg_ghm_stats_len',
    'fg_ghmc_stats', 'fg_ghmc_grad', 'fg_ghmr_stats', 'fg_ghmr_grad', 'fg_sigmoid_focal_prob',
  ].map((name): [string, string] => [name, 'function']),
];

/**
 * The kernels of `module`, or a clear error when it is not a focal-ghm build (another module, or
 * one that needs imports): nothing is initialized then, and `init` can be called again.
 */
async function instantiate(module: WebAssembly.Module): Promise<Kernels> {
  if (!(module instanceof WebAssembly.Module)) throw new TypeError(`focal-ghm init: options.module must be a WebAssembly.Module, got ${String(module)}`);
  const exported = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  const missing = KERNEL_EXPORTS.filter(([name, kind]) => exported.get(name) !== kind).map(([name]) => name);
  if (missing.length) {
    throw new TypeError(`focal-ghm init: the module is not a focal-ghm kernel build (it lacks ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''})`);
  }
  const imports = WebAssembly.Module.imports(module);
  if (imports.length) {
    throw new TypeError(`focal-ghm init: the module imports ${imports[0]!.module}.${imports[0]!.name}; the single-thread kernel builds import nothing (is it the shared-memory build?)`);
  }
  return (await WebAssembly.instantiate(module, {})).exports as unknown as Kernels;
}

/**
 * The builds of the entry point that loaded last, for an `init()` from inside the library (a
 * pool without threads runs the single-thread API, initializing it if needed).
 */
let entryBuilds: Builds | undefined;

/** Called by each entry point as it loads (ts/index.ts, ts/workerd.ts). */
export function useBuilds(builds: Builds): void {
  entryBuilds = builds;
}

/**
 * `init` of an entry point whose default builds are `builds` (see ts/index.ts). Idempotent: later
 * calls return the first one's result. A failed init may be retried, e.g. with other options.
 */
export function initRuntime(opts: InitOptions = {}, builds = entryBuilds): Promise<Runtime> {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`init: options must be an object, got ${String(opts)}`);
  if (opts.extras !== undefined) expectExtras('init', opts.extras);
  if (!pending) {
    pending = (async () => {
      if (!builds) throw new Error('focal-ghm init: no entry point registered its builds (import from "focal-ghm", not its internals)');
      const { module, simd } = await compile(opts, builds);
      const rt: Runtime = { kernels: await instantiate(module), simd };
      runtime = rt;
      return rt;
    })();
    pending.catch(() => {
      pending = undefined;
    });
  }
  if (opts.extras === undefined) return pending;
  const extras = opts.extras;
  return pending.then((rt) => {
    if (!pendingExtras) {
      pendingExtras = loadExtras(rt, extras);
      pendingExtras.catch(() => {
        pendingExtras = undefined;
      });
    }
    return pendingExtras.then(() => rt);
  });
}

let pendingExtras: Promise<void> | undefined;

/** `v` as {@link Extras}, or a TypeError naming `fn` (init, createPool). */
export function expectExtras(fn: string, v: unknown): Extras {
  const e = v as Partial<Extras> | null;
  if (typeof e !== 'object' || e === null || typeof e.simd !== 'function' || (e.shared !== undefined && typeof e.shared !== 'function')) {
    throw new TypeError(`${fn}: options.extras must be the \`extras\` export of 'focal-ghm/extras' (\`import { extras } from 'focal-ghm/extras'\`)`);
  }
  return e as Extras;
}

/** What the extras module exports: checked before a module is taken for one. */
const EXTRAS_EXPORTS = ['fg_sigmoid_focal_poly', 'fg_softmax_focal_poly', 'fg_softmax_focal_soft', 'fg_quality_focal', 'fg_varifocal'];

/**
 * Instantiates the extras build that matches the core's (SIMD or scalar) over the core's memory.
 * Its stack and data lie below the heap (HEAP_START; scripts/lib/wasm.mjs links it so), so the
 * instantiation writes nothing the heap holds; the memory is grown to the module's minimum first.
 */
async function loadExtras(rt: Runtime, extras: Extras): Promise<void> {
  if (rt.extrasKernels) return;
  const simd = rt.simd ?? simdSupported();
  if (!simd && !extras.scalar) throw new Error("focal-ghm init: this engine has no WebAssembly SIMD and this entry point's extras ship only the SIMD build; pass a scalar one");
  const module = (await (simd ? extras.simd() : extras.scalar!())) as WebAssembly.Module;
  if (!(module instanceof WebAssembly.Module)) throw new TypeError('focal-ghm init: options.extras did not give a WebAssembly.Module');
  const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const missing = EXTRAS_EXPORTS.filter((name) => !exported.has(name));
  const imports = WebAssembly.Module.imports(module);
  if (missing.length || imports.length !== 1 || imports[0]!.kind !== 'memory') {
    throw new TypeError(`focal-ghm init: options.extras gave a module that is not a focal-ghm extras build${missing.length ? ` (it lacks ${missing.slice(0, 3).join(', ')})` : ' (its imports differ)'}`);
  }
  const memory = rt.kernels.memory;
  const pages = HEAP_START / 65536;
  if (memory.buffer.byteLength < HEAP_START) memory.grow(pages - memory.buffer.byteLength / 65536);
  const x = (await WebAssembly.instantiate(module, { env: { memory } })).exports as unknown as ExtrasKernels;
  if ((x.__heap_base.value as number) > HEAP_START) throw new Error('focal-ghm init: the extras build does not fit below the heap (it was linked for another layout)');
  rt.extrasKernels = x;
}

/** Whether `init()` has completed. */
export function isInitialized(): boolean {
  return runtime !== undefined;
}

/** The extras module's kernels, or a clear error when they are not loaded. */
export function getExtras(fn: string): ExtrasKernels {
  const x = getRuntime(fn).extrasKernels;
  if (!x) throw new Error(`${fn}: needs the extras kernels: \`import { extras } from 'focal-ghm/extras'; await init({ extras });\``);
  return x;
}

/** The loaded runtime, or a clear error when `init()` has not completed. */
export function getRuntime(fn: string): Runtime {
  if (!runtime) throw new Error(`${fn}: focal-ghm is not initialized; call \`await init()\` first`);
  return runtime;
}
