// The three WebAssembly flavours of the kernels crate and the steps that produce each one:
// cargo (wasm32-unknown-unknown, release) → wasm-opt → .build/wasm/*.wasm → ts/wasm/*.generated.ts.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { cargoEnv, WASM_TARGET } from './toolchain.mjs';
import { BuildError, mtimeOf, newestMtime, REPO_ROOT, run, tail, writeIfChanged } from './util.mjs';

const PACKAGE = 'focal-ghm-kernels';
const LIB_FILE = 'focal_ghm_kernels.wasm';

/** `-C link-arg=...` for each linker argument. */
const linkArgs = (...args) => args.flatMap((a) => ['-C', `link-arg=${a}`]);

/**
 * wasm-opt starts from --mvp-features and adds only what we list (plus whatever the module's
 * target_features section declares). Its defaults would also enable sign-ext, letting -O3
 * introduce opcodes the scalar flavour's audience (engines without SIMD) may not have. The SIMD
 * flavours may use the post-MVP features every SIMD-capable engine has.
 */
const SIMD_ERA_FEATURES = ['--enable-sign-ext', '--enable-mutable-globals', '--enable-nontrapping-float-to-int'];

/**
 * name: file stem suffix and target-dir suffix; required: a failure fails the build (the shared
 * flavour, for thread pools, only warns); embedded: also written as base64 into a TS module
 * (simd: the core entry's default; shared: a chunk the pool imports when it starts); the scalar
 * build ships only as a file, fetched on engines without SIMD. fallbackRustflags: appended for
 * one retry when the link fails for a reason they address.
 */
export const FLAVOURS = [
  {
    name: 'simd',
    required: true,
    embedded: true,
    rustflags: ['-C', 'target-feature=+simd128', ...linkArgs('--export=__heap_base')],
    wasmOptFlags: ['--enable-simd', ...SIMD_ERA_FEATURES],
  },
  {
    name: 'scalar',
    required: true,
    rustflags: linkArgs('--export=__heap_base'),
    wasmOptFlags: [],
    // binaryen.js at -O3 (and -Os) runs for many minutes on the scalar build's large inlined
    // kernels; -O2 takes ~15 s and the scalar build is only the fallback for engines without SIMD.
    optLevel: '-O2',
  },
  {
    name: 'shared',
    required: false,
    embedded: true,
    rustflags: [
      '-C', 'target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals',
      ...linkArgs(
        '--shared-memory',
        '--import-memory',
        '--max-memory=4294967296',
        '--export=__stack_pointer',
        '--export=__heap_base',
      ),
    ],
    // The prebuilt core/compiler_builtins are compiled without atomics; if wasm-ld refuses to
    // put them in shared memory, skip its feature check. Safe for this crate: it is no_std with
    // no thread-locals, and each thread instance gets its own globals (stack pointer) anyway.
    fallbackRustflags: linkArgs('--no-check-features'),
    fallbackWhen: /--shared-memory is disallowed|Target feature '[^']+' used|Missing target feature/,
    wasmOptFlags: ['--enable-simd', '--enable-threads', '--enable-bulk-memory', ...SIMD_ERA_FEATURES],
  },
];

/**
 * The extras module (feature `extras`: the focal family and the soft-target softmax) imports the
 * core module's memory, whose layout is: the core's stack [0, 1 MiB), its data (panic metadata,
 * ~1.3 KiB), then the heap the TypeScript side owns. The extras' own stack and data go above the
 * core's data by linking them with a larger stack: its stack pointer starts at EXTRAS_STACK_TOP
 * and only grows down into the free gap above the core's data (and over the core's stack, never
 * in use at the same time: calls do not nest), and its data sits at [EXTRAS_STACK_TOP,
 * __heap_base). The heap starts at EXTRAS_END (ts/memory.ts, same number) for both modules, so
 * the extras' data never lands on anything the heap handed out; the build fails if it would not
 * fit (see checkExtrasLayout).
 */
export const EXTRAS_STACK_TOP = 1114112; // 1 MiB + 64 KiB
export const EXTRAS_END = 1179648; // 18 pages: ts/memory.ts HEAP_START
const extrasLink = ['--import-memory', '-z', `stack-size=${EXTRAS_STACK_TOP}`, '--export=__heap_base'];

/** The extras flavours: the same three, built with the `extras` feature against an imported memory. */
FLAVOURS.push(
  {
    name: 'extras_simd',
    required: true,
    embedded: true,
    extras: true,
    rustflags: ['-C', 'target-feature=+simd128', ...linkArgs(...extrasLink)],
    wasmOptFlags: ['--enable-simd', ...SIMD_ERA_FEATURES],
  },
  {
    name: 'extras_scalar',
    required: true,
    extras: true,
    rustflags: linkArgs(...extrasLink),
    wasmOptFlags: [],
    optLevel: '-O2',
  },
  {
    name: 'extras_shared',
    required: false,
    embedded: true,
    extras: true,
    rustflags: [
      '-C', 'target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals',
      ...linkArgs(...extrasLink, '--shared-memory', '--max-memory=4294967296', '--export=__stack_pointer'),
    ],
    fallbackRustflags: linkArgs('--no-check-features'),
    fallbackWhen: /--shared-memory is disallowed|Target feature '[^']+' used|Missing target feature/,
    wasmOptFlags: ['--enable-simd', '--enable-threads', '--enable-bulk-memory', ...SIMD_ERA_FEATURES],
  },
);

export const outputWasm = (flavour) => join(REPO_ROOT, '.build', 'wasm', `focal_ghm_${flavour.name}.wasm`);
/** Marks "this flavour failed for the current inputs", so an optional failure is not retried every build. */
const failedStamp = (flavour) => `${outputWasm(flavour)}.failed`;
const targetDir = (flavour) => join(REPO_ROOT, 'target', `wasm-${flavour.name}`);
const cargoOutput = (flavour) => join(targetDir(flavour), WASM_TARGET, 'release', LIB_FILE);
export const generatedModule = (flavour) => join(REPO_ROOT, 'ts', 'wasm', `${flavour.name}.generated.ts`);
/** The module as a file beside the sources, where ts/index.ts and ts/workerd.ts load it from. */
export const sourceWasm = (flavour) => join(REPO_ROOT, 'ts', 'wasm', `focal_ghm_${flavour.name}.wasm`);

/**
 * Newest mtime among everything that determines the wasm output: the crate sources, the
 * workspace manifest and lockfile, and the pipeline code that picks the toolchain and the flags.
 */
export function inputsMtime() {
  return newestMtime([
    join(REPO_ROOT, 'crates'),
    join(REPO_ROOT, 'Cargo.toml'),
    join(REPO_ROOT, 'Cargo.lock'),
    join(REPO_ROOT, 'scripts', 'lib', 'wasm.mjs'),
    join(REPO_ROOT, 'scripts', 'lib', 'toolchain.mjs'),
  ]);
}

/**
 * Is the flavour's last result newer than all of its inputs? For an optional flavour a recorded
 * failure counts as a result (so it is not retried on every build); a required one must have
 * its output.
 */
export function isFresh(flavour, newestInput) {
  const lastResult = Math.max(mtimeOf(outputWasm(flavour)), flavour.required ? -Infinity : mtimeOf(failedStamp(flavour)));
  return lastResult > newestInput;
}

/** The message recorded when this (optional) flavour last failed, if it has no output since. */
export function recordedFailure(flavour) {
  return existsSync(failedStamp(flavour)) ? readFileSync(failedStamp(flavour), 'utf8') : null;
}

function cargoArgs(flavour) {
  return [
    'build', '--release', '--lib', '--offline',
    '--target', WASM_TARGET,
    '-p', PACKAGE,
    '--manifest-path', join(REPO_ROOT, 'Cargo.toml'),
    '--target-dir', targetDir(flavour),
    ...(flavour.extras ? ['--features', 'extras'] : []),
  ];
}

/**
 * Records that the toolchain needed the flavour's fallback flags, so later builds start with them
 * instead of paying for a failed link (and the full recompile a RUSTFLAGS change costs) each time.
 * --force re-checks from scratch.
 */
const fallbackMarker = (flavour) => `${outputWasm(flavour)}.needs-fallback`;

/**
 * Runs cargo for one flavour, retrying once with `fallbackRustflags` when the failure matches
 * `fallbackWhen`. Returns { ok, ms, stderr, note }.
 */
async function cargoBuild(toolchain, flavour, { force }) {
  const cargo = (rustflags) => run(toolchain.cargo, cargoArgs(flavour), { env: cargoEnv(toolchain, rustflags), capture: true });
  const withFallback = [...flavour.rustflags, ...(flavour.fallbackRustflags ?? [])];
  const note = flavour.fallbackRustflags ? `linked only with ${flavour.fallbackRustflags.join(' ')}` : '';
  if (force) rmSync(fallbackMarker(flavour), { force: true });

  if (existsSync(fallbackMarker(flavour))) {
    const result = await cargo(withFallback);
    return { ok: result.code === 0, ms: result.ms, stderr: result.stderr, note };
  }
  const first = await cargo(flavour.rustflags);
  if (first.code === 0 || !flavour.fallbackRustflags || !flavour.fallbackWhen.test(first.stderr)) {
    return { ok: first.code === 0, ms: first.ms, stderr: first.stderr, note: '' };
  }
  const retry = await cargo(withFallback);
  if (retry.code === 0) writeFileSync(fallbackMarker(flavour), `${tail(first.stderr, 40)}\n`);
  return { ok: retry.code === 0, ms: first.ms + retry.ms, stderr: retry.stderr, note };
}

/**
 * The largest function body an optimized module may have. The sigmoid focal kernels are one
 * function per variant, on purpose (see `run` in crates/kernels/src/focal/sigmoid.rs), each at
 * most about 10 KiB (SIMD) or 12 KiB (scalar); the largest function otherwise is GHM-C's stats
 * pass, 21 KiB in the scalar flavour. Merged into their dispatcher the kernels would make one
 * function of 200–300 KiB, which V8 compiles into a markedly slower loop (forward: 5.0 vs 3.0 ns
 * per element measured) without failing any test; so the build fails instead. (They stay apart
 * because they are only called through a function pointer: wasm-opt inlines any function with a
 * single direct caller, whatever its size.)
 */
const MAX_FUNCTION_BYTES = 32 * 1024;

/** wasm-opt from the binaryen npm package (a Node script, so run it with this Node). */
async function wasmOpt(flavour) {
  const wasmOptJs = join(REPO_ROOT, 'node_modules', 'binaryen', 'bin', 'wasm-opt');
  if (!existsSync(wasmOptJs)) throw new BuildError(`${wasmOptJs} is missing: run \`npm ci\` (or node scripts/setup.mjs).`);
  const out = outputWasm(flavour);
  // Written then renamed, so a failed run never leaves a "fresh" output (pid: concurrent builds).
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [
    wasmOptJs, cargoOutput(flavour),
    flavour.optLevel ?? '-O3', '--mvp-features', ...flavour.wasmOptFlags,
    '--strip-debug', '--strip-producers',
    '-o', tmp,
  ];
  const result = await run(process.execPath, args, { capture: true });
  if (result.code !== 0 || !existsSync(tmp)) {
    rmSync(tmp, { force: true });
    return { ok: false, ms: result.ms, stderr: `wasm-opt ${args.slice(1).join(' ')}\n${result.stderr}${result.stdout}` };
  }
  const largest = Math.max(0, ...functionSizes(readFileSync(tmp)));
  if (largest > MAX_FUNCTION_BYTES) {
    rmSync(tmp, { force: true });
    const stderr =
      `wasm-opt ${args.slice(1).join(' ')}\nmade a function of ${largest} bytes (limit ${MAX_FUNCTION_BYTES}): it has merged ` +
      'kernels into one function, which V8 compiles into slower code (see MAX_FUNCTION_BYTES in scripts/lib/wasm.mjs).';
    return { ok: false, ms: result.ms, stderr };
  }
  renameSync(tmp, out);
  return { ok: true, ms: result.ms, stderr: '' };
}

/** Compiles and validates the optimized module in this Node, and lists its imports. */
async function inspect(path) {
  const bytes = readFileSync(path);
  const module = await WebAssembly.compile(bytes);
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name} (${i.kind})`);
  const exports = WebAssembly.Module.exports(module).length;
  return { bytes: bytes.length, imports, exports };
}

/**
 * Why an extras module would overwrite the heap (its data ends past EXTRAS_END), or '' when its
 * layout is as EXTRAS_STACK_TOP describes. Read by instantiating it over a scratch memory.
 */
async function checkExtrasLayout(path, flavour) {
  const module = await WebAssembly.compile(readFileSync(path));
  const shared = flavour.name === 'extras_shared';
  const memory = new WebAssembly.Memory({ initial: EXTRAS_END / 65536 + 1, maximum: 65536, shared });
  const { exports } = await WebAssembly.instantiate(module, { env: { memory } });
  const heapBase = exports.__heap_base?.value;
  if (typeof heapBase !== 'number' || heapBase > EXTRAS_END || heapBase < EXTRAS_STACK_TOP) {
    return `${flavour.name}: __heap_base is ${heapBase}, outside [${EXTRAS_STACK_TOP}, ${EXTRAS_END}]: its data would overlap the heap (see EXTRAS_STACK_TOP in scripts/lib/wasm.mjs)`;
  }
  return '';
}

/** The body sizes in bytes of a (valid) module's functions, from its code section. */
function functionSizes(bytes) {
  let p = 8; // past the magic number and version
  const leb = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = leb();
    const end = p + size;
    if (id === 10) return Array.from({ length: leb() }, () => { const size = leb(); p += size; return size; });
    p = end;
  }
  return [];
}

/**
 * cargo + wasm-opt for one flavour. On success clears any failure stamp; on failure removes the
 * previous output (a stale module built from older sources must never ship next to fresh ones)
 * and records the failure. Returns a result object for the summary; never throws for build
 * failures, so the other flavours running in parallel can finish.
 */
export async function buildFlavour(toolchain, flavour, { force = false } = {}) {
  mkdirSync(dirname(outputWasm(flavour)), { recursive: true });
  const cargo = await cargoBuild(toolchain, flavour, { force });
  let opt = { ok: false, ms: 0, stderr: '' };
  if (cargo.ok) opt = await wasmOpt(flavour);
  const result = { flavour, cargoMs: cargo.ms, optMs: opt.ms, note: cargo.note, warnings: '', error: '' };
  if (cargo.ok && opt.ok) {
    rmSync(failedStamp(flavour), { force: true });
    result.rawBytes = readFileSync(cargoOutput(flavour)).length;
    Object.assign(result, await inspect(outputWasm(flavour)));
    if (flavour.extras) {
      const layout = await checkExtrasLayout(outputWasm(flavour), flavour);
      if (layout) {
        result.error = layout;
        rmSync(outputWasm(flavour), { force: true });
        return result;
      }
    }
    // Keep compiler warnings (minus cargo's progress lines) for the summary.
    const warnings = cargo.stderr.replace(/^\s*(Compiling|Finished|Blocking) .*\n?/gm, '');
    if (/^warning/m.test(warnings)) result.warnings = warnings;
    return result;
  }
  result.error = cargo.ok ? opt.stderr : cargo.stderr;
  rmSync(outputWasm(flavour), { force: true });
  if (!flavour.required) {
    writeFileSync(failedStamp(flavour), `${cargo.ok ? 'wasm-opt' : 'cargo build'} failed:\n${tail(result.error)}\n`);
  }
  return result;
}

/**
 * The flavour's module beside the sources: ts/wasm/focal_ghm_<name>.wasm, and for embedded
 * flavours ts/wasm/<name>.generated.ts holding it as base64 (empty when the flavour failed, so
 * imports still resolve and the loader can detect "not available"). Returns whether any changed.
 */
export function writeGeneratedModule(flavour) {
  const wasm = outputWasm(flavour);
  const bytes = existsSync(wasm) ? readFileSync(wasm) : null;
  let changed = false;
  if (bytes) changed = writeIfChanged(sourceWasm(flavour), bytes);
  else rmSync(sourceWasm(flavour), { force: true });
  if (flavour.embedded) {
    const source = `/* generated by scripts/build.mjs — do not edit */\nexport const wasmBase64 = "${bytes ? bytes.toString('base64') : ''}";\n`;
    changed = writeIfChanged(generatedModule(flavour), source) || changed;
  }
  return changed;
}

/**
 * Cargo.lock: a missing one is generated by the (old) wasm cargo, so it gets a format every cargo
 * reads; a version-4 lockfile (written by cargo >= 1.78) is unreadable by Debian's cargo 1.65, and
 * for a workspace without dependencies v3 and v4 differ only in that header line, so downgrade it.
 */
export async function ensureReadableLockfile(toolchain) {
  const lockfile = join(REPO_ROOT, 'Cargo.lock');
  if (!existsSync(lockfile)) {
    const args = ['generate-lockfile', '--offline', '--manifest-path', join(REPO_ROOT, 'Cargo.toml')];
    const result = await run(toolchain.cargo, args, { env: cargoEnv(toolchain, []), capture: true });
    if (result.code !== 0) throw new BuildError(`cargo generate-lockfile failed:\n${result.stderr}`);
    return;
  }
  const text = readFileSync(lockfile, 'utf8');
  const version = Number(/^version = (\d+)/m.exec(text)?.[1] ?? 0);
  const cargoMinor = Number(/cargo 1\.(\d+)/.exec((await run(toolchain.cargo, ['-V'], { capture: true })).stdout)?.[1] ?? 999);
  if (version >= 4 && cargoMinor < 78 && !/^source = /m.test(text)) {
    writeFileSync(lockfile, text.replace(/^version = \d+/m, 'version = 3'));
    console.log(`note: rewrote ${relative(REPO_ROOT, lockfile)} from lockfile version ${version} to 3 so cargo 1.${cargoMinor} can read it`);
  }
}
