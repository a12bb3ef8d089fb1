// Finds a Rust toolchain that can compile for wasm32-unknown-unknown, installing Debian's when
// nothing suitable exists and we are allowed to (root + apt-get).
//
// Why this is more than `cargo build --target ...`: on the build machines rustup's stable has no
// wasm32 target and cannot download one (no access to static.rust-lang.org), while Debian packages
// one for its own rustc (libstd-rust-dev-wasm32). Each rustc must be driven by its *own* cargo
// (rustup's cargo 1.95 cannot drive rustc 1.63), and rustup's proxies on PATH must not redirect
// the build back to rustup's toolchain. So we identify every candidate by its sysroot and run
// `<sysroot>/bin/cargo` with RUSTC=`<sysroot>/bin/rustc` and `<sysroot>/bin` first on PATH.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BuildError, run } from './util.mjs';

export const WASM_TARGET = 'wasm32-unknown-unknown';

/** Debian packages that provide rustc + cargo + the wasm32 std + the rust-lld linker. */
const APT_PACKAGES = ['rustc', 'cargo', 'libstd-rust-dev-wasm32', 'lld-14'];
const APT_COMMAND = `apt-get install -y ${APT_PACKAGES.join(' ')}`;

/**
 * rustc executables worth probing, most preferred first. `FOCAL_GHM_WASM_RUSTC` lets a developer
 * pin one explicitly; then whatever PATH resolves (usually rustup's proxy, i.e. the default
 * toolchain, which wins if someone ran `rustup target add`); then the usual fixed locations.
 */
function candidateRustcs() {
  return [
    process.env.FOCAL_GHM_WASM_RUSTC,
    'rustc',
    join(homedir(), '.cargo', 'bin', 'rustc'),
    '/usr/bin/rustc',
    '/usr/local/bin/rustc',
  ].filter(Boolean);
}

function capture(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 }).trim();
}

/** Is `name` an existing file (symlinks followed, so a dangling rust-lld link does not count)? */
function onPath(name, pathVar) {
  return pathVar.split(delimiter).some((dir) => dir && existsSync(join(dir, name)));
}

/**
 * Describes one rustc: its real binaries, version, and what (if anything) it lacks for a wasm
 * build. Returns null when the command does not run at all.
 */
function probe(rustc) {
  let sysroot, verbose;
  try {
    sysroot = realpathSync(capture(rustc, ['--print', 'sysroot']));
    verbose = capture(rustc, ['-vV']);
  } catch {
    return null;
  }
  const host = /^host: (.+)$/m.exec(verbose)?.[1] ?? '';
  const version = verbose.split('\n')[0];
  const bin = join(sysroot, 'bin');
  const missing = [];

  // The wasm32 std lives at <sysroot>/lib/rustlib/wasm32-unknown-unknown/lib (this is what
  // `rustc --print target-libdir --target wasm32-unknown-unknown` names, but that command prints
  // the path even when it does not exist, so look inside).
  const libdir = join(sysroot, 'lib', 'rustlib', WASM_TARGET, 'lib');
  const hasStd = existsSync(libdir) && readdirSync(libdir).some((f) => f.startsWith('libcore-'));
  if (!hasStd) missing.push(`the ${WASM_TARGET} standard library`);

  const cargo = join(bin, 'cargo');
  if (!existsSync(cargo)) missing.push(`cargo (expected at ${cargo})`);

  // wasm32 links with `rust-lld`: rustup ships it inside the sysroot; Debian's rustc ships
  // /usr/bin/rust-lld as a symlink to lld-14, which dangles until lld-14 is installed.
  const bundledLld = join(sysroot, 'lib', 'rustlib', host, 'bin', 'rust-lld');
  if (!existsSync(bundledLld) && !onPath('rust-lld', `${bin}${delimiter}${process.env.PATH ?? ''}`)) {
    missing.push('the rust-lld linker');
  }

  return { command: rustc, sysroot, rustc: join(bin, 'rustc'), cargo, bin, version, missing };
}

/** Probes every candidate once per sysroot (the PATH rustc is often one of the fixed paths). */
function probeAll() {
  const seen = new Map();
  for (const command of candidateRustcs()) {
    const found = probe(command);
    if (found && !seen.has(found.sysroot)) seen.set(found.sysroot, found);
  }
  return [...seen.values()];
}

const isRoot = () => process.getuid?.() === 0;
const hasAptGet = () => onPath('apt-get', process.env.PATH ?? '');

async function aptInstall() {
  console.log(`\nNo Rust toolchain with the ${WASM_TARGET} target; installing Debian's (running as root):`);
  console.log(`  apt-get update && ${APT_COMMAND}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // An unreachable third-party source makes `update` fail while Debian's lists are fine: go on.
  if ((await run('apt-get', ['update'], { env })).code !== 0) console.warn('apt-get update failed; trying the install anyway');
  if ((await run('apt-get', ['install', '-y', ...APT_PACKAGES], { env })).code === 0) return;
  // lld-14 is Debian 12's; other releases pair rustc with another lld-N, which
  // libstd-rust-dev-wasm32 recommends.
  const fallback = ['install', '-y', '--install-recommends', ...APT_PACKAGES.filter((p) => !p.startsWith('lld'))];
  console.warn(`retrying: apt-get ${fallback.join(' ')}`);
  if ((await run('apt-get', fallback, { env })).code !== 0) throw new BuildError(`\`${APT_COMMAND}\` failed (see output above).`);
}

function notFoundMessage(probed) {
  const lines = [`No Rust toolchain that can build for ${WASM_TARGET} was found.`];
  for (const p of probed) lines.push(`  ${p.command} (${p.version}, sysroot ${p.sysroot}): lacks ${p.missing.join(', ')}`);
  if (probed.length === 0) lines.push('  (no rustc found at all)');
  lines.push(
    'Install one of:',
    `  - with rustup:        rustup target add ${WASM_TARGET}`,
    `  - on Debian/Ubuntu:   sudo apt-get update && sudo ${APT_COMMAND}`,
    'or point FOCAL_GHM_WASM_RUSTC at a rustc that has the target.',
  );
  return lines.join('\n');
}

/**
 * Returns `{ rustc, cargo, bin, sysroot, version }` for the first toolchain that can build wasm32.
 * Installs Debian's toolchain when none can and `autoInstall` is allowed (root with apt-get).
 */
export async function findWasmToolchain({ autoInstall = true } = {}) {
  let probed = probeAll();
  let usable = probed.find((p) => p.missing.length === 0);
  if (!usable && autoInstall && isRoot() && hasAptGet()) {
    await aptInstall();
    probed = probeAll();
    usable = probed.find((p) => p.missing.length === 0);
  }
  if (!usable) throw new BuildError(notFoundMessage(probed));
  return usable;
}

/**
 * Environment for running `toolchain.cargo`: pins rustc and puts the toolchain's bin/ first on
 * PATH (so rust-lld and any rustc cargo looks up by name come from the same toolchain); drops
 * RUSTUP_TOOLCHAIN (meaningless for a non-rustup toolchain, and could send proxies elsewhere) and
 * CARGO_ENCODED_RUSTFLAGS (it would silently override our RUSTFLAGS).
 */
export function cargoEnv(toolchain, rustflags) {
  const env = { ...process.env };
  delete env.RUSTUP_TOOLCHAIN;
  delete env.CARGO_ENCODED_RUSTFLAGS;
  env.RUSTC = toolchain.rustc;
  env.PATH = `${toolchain.bin}${delimiter}${process.env.PATH ?? ''}`;
  env.RUSTFLAGS = rustflags.join(' ');
  if (process.stderr.isTTY) env.CARGO_TERM_COLOR ??= 'always'; // output is captured, keep colours
  return env;
}
