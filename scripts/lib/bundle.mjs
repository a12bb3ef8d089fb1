// The TypeScript half of the build: tsup (configured by tsup.config.ts) into dist/, then a check
// that the platform-neutral entry points really are free of Node built-ins.

import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { BuildError, mtimeOf, newestMtime, REPO_ROOT, run } from './util.mjs';

const DIST = join(REPO_ROOT, 'dist');

/**
 * Written after a bundle that fully succeeded (tsup and the portability check), removed before
 * each attempt: a failed tsup can leave dist/index.js without its .d.ts, which must not pass for
 * an up-to-date bundle.
 */
const BUNDLE_STAMP = join(REPO_ROOT, '.build', 'bundle.ok');

/**
 * Is the last successful bundle newer than everything tsup reads? (ts/wasm/*.generated.ts are
 * under ts/ and only change when the wasm does.)
 */
export function isBundleFresh() {
  if (!existsSync(join(DIST, 'index.js'))) return false;
  const inputs = ['ts', 'tsup.config.ts', 'tsconfig.json', 'tsconfig.tfjs.json', 'package.json', 'package-lock.json', 'scripts/lib/bundle.mjs'];
  return mtimeOf(BUNDLE_STAMP) > newestMtime(inputs.map((p) => join(REPO_ROOT, p)));
}

/**
 * Runs tsup's CLI (resolved from its package.json, not a shell shim) with this Node, in `cwd`
 * (the repository: the core; cli/: the command, with its own tsup.config.ts).
 */
export async function runTsup(cwd = REPO_ROOT) {
  const pkgPath = join(REPO_ROOT, 'node_modules', 'tsup', 'package.json');
  if (!existsSync(pkgPath)) throw new BuildError('tsup is not installed: run `npm ci` (or node scripts/setup.mjs).');
  const cli = join(REPO_ROOT, 'node_modules', 'tsup', JSON.parse(readFileSync(pkgPath, 'utf8')).bin.tsup);
  if (cwd === REPO_ROOT) rmSync(BUNDLE_STAMP, { force: true });
  const result = await run(process.execPath, [cli], { capture: true, cwd });
  if (result.code !== 0) throw new BuildError(`tsup failed:\n${result.stdout}${result.stderr}`);
  return result.ms;
}

const CLI = join(REPO_ROOT, 'cli');

/** Is cli/dist/cli.js newer than its sources and the core bundle it includes? */
export function isCliFresh() {
  const inputs = [join(CLI, 'src'), join(CLI, 'tsup.config.ts'), join(CLI, 'package.json'), join(DIST, 'index.js')];
  return mtimeOf(join(CLI, 'dist', 'cli.js')) > newestMtime(inputs);
}

/** The `focal-ghm` command (cli/, an npm workspace): tsup bundles it with the core from dist/. */
export async function runCliTsup() {
  return runTsup(CLI);
}

/** Records that dist/ is complete and checked (see BUNDLE_STAMP). */
export function markBundleFresh() {
  mkdirSync(dirname(BUNDLE_STAMP), { recursive: true });
  writeFileSync(BUNDLE_STAMP, `${new Date().toISOString()}\n`);
}

/** Module specifiers of static/dynamic imports and requires in a bundled file. */
function importedSpecifiers(code) {
  const specifiers = [];
  const patterns = [/\bfrom\s*["']([^"']+)["']/g, /\bimport\s*\(?\s*["']([^"']+)["']/g, /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specifiers.push(m[1]);
  return specifiers;
}

/** Files reachable from `entry` through relative imports (tsup's ESM code-splitting chunks). */
function reachableFiles(entry) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    for (const s of importedSpecifiers(readFileSync(file, 'utf8'))) if (s.startsWith('./')) visit(join(DIST, s));
  };
  visit(entry);
  return [...seen];
}

/**
 * The core entries must load in browsers, Deno, Bun and workerd: no `node:*` (or bare built-in)
 * import may be reachable from dist/index.{js,cjs}, dist/workerd.js or dist/tfjs.{js,cjs}.
 * Throws on a violation.
 */
export function checkPortability() {
  const builtins = ['fs', 'path', 'os', 'url', 'crypto', 'module', 'worker_threads', 'child_process'];
  const isNodeImport = (s) => s.startsWith('node:') || builtins.includes(s);
  const offenders = ['index.js', 'index.cjs', 'workerd.js', 'tfjs.js', 'tfjs.cjs'].flatMap((entry) =>
    reachableFiles(join(DIST, entry)).flatMap((file) =>
      importedSpecifiers(readFileSync(file, 'utf8'))
        .filter(isNodeImport)
        .map((s) => `${relative(REPO_ROOT, file)} imports ${s}`),
    ),
  );
  if (offenders.length) {
    throw new BuildError(`dist/index must be platform-neutral, but:\n  ${[...new Set(offenders)].join('\n  ')}`);
  }
}

/**
 * The SIMD and scalar builds as files in dist/wasm/ (package exports `focal-ghm/simd.wasm` and
 * `focal-ghm/scalar.wasm`): dist/index.js fetches the scalar one on engines without SIMD, and
 * dist/workerd.js imports the SIMD one (workerd compiles no wasm from bytes). Copied after tsup,
 * which empties dist/.
 */
export function copyWasmFiles(paths) {
  mkdirSync(join(DIST, 'wasm'), { recursive: true });
  for (const from of paths) {
    if (!existsSync(from)) throw new BuildError(`${relative(REPO_ROOT, from)} is missing; run the wasm build first`);
    copyFileSync(from, join(DIST, 'wasm', basename(from)));
  }
  writeFileSync(join(DIST, 'wasm', 'module.d.ts'), WASM_MODULE_TYPES.esm);
  writeFileSync(join(DIST, 'wasm', 'module.d.cts'), WASM_MODULE_TYPES.cjs);
}

/** The type of `import wasm from 'focal-ghm/simd.wasm'` (package.json exports' "types"). */
const wasmModuleTypes = (index, exportModule) => `// The default export of 'focal-ghm/simd.wasm' and 'focal-ghm/scalar.wasm' where a bundler or
// runtime turns .wasm imports into compiled modules (wrangler, workerd): pass it to init({ module }).
import type { InitOptions } from '${index}';

declare const module: NonNullable<InitOptions['module']>;
${exportModule}
`;
const WASM_MODULE_TYPES = { esm: wasmModuleTypes('../index.js', 'export default module;'), cjs: wasmModuleTypes('../index.cjs', 'export = module;') };
