#!/usr/bin/env node
// Prepares a checkout for `npm test`, `npm run demo` and `npm run bench`: installs npm
// dependencies when they are missing or stale, then runs the build (scripts/build.mjs), which in
// turn finds (or, as root on Debian, installs) the Rust toolchain for wasm32.
//
//   node scripts/setup.mjs [--force]     (--force is passed to the build)
//
// Only Node built-ins may be imported here (directly or via build.mjs): node_modules may not
// exist yet when this starts.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { build, runCli } from './build.mjs';
import { BuildError, mtimeOf, REPO_ROOT, run, seconds } from './lib/util.mjs';

/**
 * npm writes node_modules/.package-lock.json on every install; if package-lock.json is newer,
 * the lockfile changed (git pull, branch switch) since node_modules was last installed.
 */
function dependenciesStale() {
  const installed = join(REPO_ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(installed)) return 'node_modules is missing';
  if (mtimeOf(join(REPO_ROOT, 'package-lock.json')) > mtimeOf(installed)) return 'package-lock.json changed';
  return null;
}

/** npm itself: the one running us when invoked as an npm script, else `npm` from PATH. */
function npm(args, options) {
  const npmCli = process.env.npm_execpath;
  return npmCli && /npm-cli\.js$/.test(npmCli)
    ? run(process.execPath, [npmCli, ...args], options)
    : run('npm', args, options);
}

/** The gist of a failed npm run: its `npm error` lines minus the usage text npm appends. */
function npmErrorGist(output) {
  const lines = output.split('\n').filter((l) => l.startsWith('npm error') && l.trim() !== 'npm error');
  const usage = lines.findIndex((l) => /npm error (Clean install a project|Usage:)/.test(l));
  const gist = lines.slice(0, usage === -1 ? undefined : usage);
  return [...gist.slice(0, 6), ...(gist.length > 6 ? [`npm error … (${gist.length - 6} more lines)`] : [])].join('\n');
}

async function installDependencies() {
  const reason = dependenciesStale();
  if (!reason) return;
  console.log(`setup: ${reason}; running npm ci`);
  const started = performance.now();
  // npm ci is exact and fast, but refuses a lockfile out of sync with package.json; then, outside
  // CI, fall back to npm install, which repairs the lockfile. (ci's output is captured: on that
  // failure it is pages of usage text.)
  const ci = await npm(['ci', '--no-audit', '--no-fund'], { capture: true });
  if (ci.code === 0) {
    process.stdout.write(ci.stdout);
  } else if (process.env.CI) {
    // CI installs exactly what the lockfile says, or fails: a lockfile npm ci refuses would
    // otherwise be rewritten in every user's clone by the fallback below.
    throw new BuildError(`npm ci failed (CI does not fall back to npm install):\n${npmErrorGist(ci.stdout + ci.stderr)}`);
  } else {
    console.warn(`setup: npm ci failed:\n${npmErrorGist(ci.stdout + ci.stderr)}\nsetup: falling back to npm install`);
    if ((await npm(['install', '--no-audit', '--no-fund'])).code !== 0) throw new BuildError('npm install failed (see output above).');
  }
  console.log(`setup: dependencies installed in ${seconds(performance.now() - started)}`);
}

runCli(async () => {
  await installDependencies();
  await build({ force: process.argv.includes('--force') });
});
