#!/usr/bin/env node
// Builds the package: Rust kernels → six wasm flavours (three of the core module, three of the
// extras module) → embedded TS modules → dist/ via tsup.
//
//   node scripts/build.mjs            (npm run build)
//   node scripts/build.mjs --force    rebuild wasm and dist/ even when they look up to date
//   node scripts/build.mjs --wasm-only   stop after ts/wasm/*.generated.ts (skip tsup)
//
// Steps:
//   1. wasm, per flavour (simd, scalar, shared; extras_simd, extras_scalar, extras_shared), in
//      parallel, skipped when its .build/wasm output is newer than every input (crates/, Cargo.toml, Cargo.lock, lib/wasm.mjs, lib/toolchain.mjs):
//        cargo build (wasm32-unknown-unknown, release, target/wasm-<flavour>) → wasm-opt -O3
//        → .build/wasm/focal_ghm_<flavour>.wasm
//      simd, scalar and their extras must succeed; the shared ones (threads) only warn.
//   2. ts/wasm/focal_ghm_<flavour>.wasm, and ts/wasm/<flavour>.generated.ts with the module as
//      base64 for the embedded flavours (simd, shared, extras_simd, extras_shared); each rewritten
//      only when changed.
//   3. tsup (tsup.config.ts) → dist/, then a check that the core bundle has no Node imports,
//      and the required flavours' .wasm files copied to dist/wasm/ (the scalar fallbacks, workerd);
//      skipped when the last successful bundle is newer than ts/, the configs and package*.json.
//   4. the command: tsup in cli/ (cli/tsup.config.ts) → cli/dist/cli.js, with the core of step 3
//      bundled in; skipped when newer than cli/src, its config and dist/index.js.
// The Rust toolchain is located (or installed, see lib/toolchain.mjs) only when step 1 has work.

import { existsSync, realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPortability, copyWasmFiles, isBundleFresh, isCliFresh, markBundleFresh, runCliTsup, runTsup } from './lib/bundle.mjs';
import { findWasmToolchain } from './lib/toolchain.mjs';
import { BuildError, kib, REPO_ROOT, seconds, tail } from './lib/util.mjs';
import {
  buildFlavour,
  ensureReadableLockfile,
  FLAVOURS,
  inputsMtime,
  isFresh,
  outputWasm,
  recordedFailure,
  sourceWasm,
  writeGeneratedModule,
} from './lib/wasm.mjs';

const rel = (path) => relative(REPO_ROOT, path);

/**
 * One summary line per flavour, plus cargo's warnings and (for failures) its error output.
 * Flavours mostly share warnings; `shownWarnings` makes each distinct text print once.
 */
function reportFlavour(r, shownWarnings) {
  const { flavour } = r;
  const label = flavour.name.padEnd(6);
  if (r.skipped) {
    const status = recordedFailure(flavour) ? 'WARNING: failed last time, sources unchanged (--force retries)' : rel(outputWasm(flavour));
    console.log(`  ${label} up to date: ${status}`);
    return;
  }
  const timing = `cargo ${seconds(r.cargoMs)}, wasm-opt ${seconds(r.optMs)}`;
  if (r.error) {
    const mark = flavour.required ? 'FAILED' : 'WARNING: failed (optional flavour; ts/wasm module left empty)';
    console.log(`  ${label} ${mark}  [${timing}]`);
    console.log(indent(flavour.required ? r.error : tail(r.error)));
    return;
  }
  console.log(
    `  ${label} ${kib(r.bytes).padStart(10)}  (cargo output ${kib(r.rawBytes)}, ${r.exports} exports)  [${timing}]` +
      (r.note ? `  note: ${r.note}` : ''),
  );
  if (r.imports.length) console.log(`         imports: ${r.imports.join(', ')}`);
  if (r.warnings && !shownWarnings.has(r.warnings)) console.log(indent(r.warnings));
  shownWarnings.add(r.warnings);
}

const indent = (text) => text.trimEnd().replace(/^/gm, '    | ');

/** Step 1: cargo + wasm-opt for the flavours that are out of date. Returns per-flavour results. */
async function buildWasm({ force }) {
  const newestInput = inputsMtime();
  const stale = FLAVOURS.filter((f) => force || !isFresh(f, newestInput));
  const results = FLAVOURS.filter((f) => !stale.includes(f)).map((flavour) => ({ flavour, skipped: true }));
  if (stale.length > 0) {
    const toolchain = await findWasmToolchain();
    const names = stale.map((f) => f.name).join(', ');
    console.log(`wasm: ${toolchain.version} (${toolchain.cargo}); building ${names}${stale.length > 1 ? ' in parallel' : ''}…`);
    await ensureReadableLockfile(toolchain);
    results.push(...(await Promise.all(stale.map((f) => buildFlavour(toolchain, f, { force })))));
  } else {
    console.log('wasm: all flavours up to date');
  }
  results.sort((a, b) => FLAVOURS.indexOf(a.flavour) - FLAVOURS.indexOf(b.flavour));
  const shownWarnings = new Set();
  for (const r of results) reportFlavour(r, shownWarnings);
  const failed = results.filter((r) => r.error && r.flavour.required).map((r) => r.flavour.name);
  if (failed.length) throw new BuildError(`wasm build failed for: ${failed.join(', ')}`);
  return results;
}

/** Step 2: the generated TS modules, from whatever .build/wasm holds now. */
function writeGeneratedModules() {
  const changed = FLAVOURS.filter(writeGeneratedModule).map((f) => f.name);
  console.log(`ts/wasm/: ${changed.length ? `updated ${changed.join(', ')}` : 'unchanged'}`);
}

/**
 * Step 3: tsup, unless dist/ is up to date or there is no entry point yet (the library is
 * written in parallel with this pipeline).
 */
async function bundle({ force }) {
  if (!existsSync(join(REPO_ROOT, 'ts', 'index.ts'))) {
    console.warn('WARNING: ts/index.ts does not exist yet; skipped tsup (dist/ not built).');
    return;
  }
  if (!force && isBundleFresh()) {
    console.log('dist/: up to date');
    return;
  }
  const ms = await runTsup();
  checkPortability();
  copyWasmFiles(FLAVOURS.filter((f) => f.required).map(sourceWasm));
  markBundleFresh();
  console.log(`dist/: tsup ${seconds(ms)}`);
}

/** Step 4: the command (cli/dist/cli.js), which bundles the core of step 3. */
async function bundleCli({ force }) {
  if (!force && isCliFresh()) {
    console.log('cli/dist/: up to date');
    return;
  }
  console.log(`cli/dist/: tsup ${seconds(await runCliTsup())}`);
}

/** The whole build; used by the CLI below and by scripts/setup.mjs. Throws BuildError on failure. */
export async function build({ force = false, wasmOnly = false } = {}) {
  const started = performance.now();
  await buildWasm({ force });
  writeGeneratedModules();
  if (!wasmOnly) {
    await bundle({ force });
    await bundleCli({ force });
  }
  console.log(`build done in ${seconds(performance.now() - started)}`);
}

/** Runs `main` as a CLI: BuildErrors print their message, anything else its stack. */
export function runCli(main) {
  main().catch((error) => {
    console.error(error instanceof BuildError ? `\nbuild: ${error.message}` : error);
    process.exitCode = 1;
  });
}

const invokedDirectly = process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => !['--force', '--wasm-only'].includes(a));
  if (unknown.length) {
    console.error(`usage: node scripts/build.mjs [--force] [--wasm-only]   (unknown: ${unknown.join(' ')})`);
    process.exit(2);
  }
  runCli(() => build({ force: args.includes('--force'), wasmOnly: args.includes('--wasm-only') }));
}
