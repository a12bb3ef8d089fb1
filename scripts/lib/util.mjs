// Small process/filesystem helpers shared by scripts/build.mjs and scripts/setup.mjs.
// Node built-ins only: setup.mjs must run before node_modules exists.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: scripts/lib/ is two levels below it. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Thrown for failures that already carry a user-facing explanation (no stack trace needed). */
export class BuildError extends Error {}

/**
 * Runs a command to completion. With `capture`, stdout/stderr are collected and returned (used
 * for the parallel cargo builds, whose interleaved output would be unreadable); otherwise they
 * stream to the terminal. Never rejects on a non-zero exit: callers decide what failure means.
 */
export function run(cmd, args, { cwd = REPO_ROOT, env = process.env, capture = false } = {}) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    const done = (code, error) =>
      resolve({ code, stdout, stderr: error ? `${stderr}${error.message}\n` : stderr, ms: performance.now() - started });
    child.on('error', (error) => done(-1, error)); // e.g. ENOENT: command not found
    child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

/**
 * Latest mtime (ms) of the given paths and everything below them. Directories count too: their
 * mtime changes when an entry is deleted or renamed, which no remaining file's mtime reflects.
 */
export function newestMtime(paths, { skipDirs = ['target', 'node_modules', '.git'] } = {}) {
  let newest = 0;
  const visit = (path) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return;
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      for (const entry of readdirSync(path)) if (!skipDirs.includes(entry)) visit(join(path, entry));
    }
  };
  paths.forEach(visit);
  return newest;
}

/** mtime (ms) of a file, or -Infinity when it does not exist. */
export function mtimeOf(path) {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
}

/**
 * Writes `content` only when it differs from what is on disk, so watchers (vitest --watch,
 * tsup --watch) are not woken by a no-op rebuild; via a temporary file and rename, so a reader
 * never sees half a file. Returns whether the file was written.
 */
export function writeIfChanged(path, content) {
  if (existsSync(path) && readFileSync(path).equals(Buffer.from(content))) return false;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
  return true;
}

export const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;
export const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/** Last `n` lines of a command's output, for error reports that should not scroll forever. */
export const tail = (text, n = 25) => text.trimEnd().split('\n').slice(-n).join('\n');
