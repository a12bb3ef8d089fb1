// What the benchmark scripts share: command-line numbers, timing, medians, the built package.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const argv = process.argv.slice(2);

/** The number after `name` on the command line (`--n 1e6`), or `def`. */
export function arg(name, def) {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
}

/** The upper median (the middle element; of two, the larger). */
export const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** Milliseconds one call of `f` takes. */
export function time(f) {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

/**
 * `ours` against `peer` by alternating calls: the median over `rounds` rounds of peer time / our
 * time (> 1: ours is faster), after a warm-up; our median milliseconds; and each one's result.
 */
export function paired(ours, peer, rounds = 15) {
  const a = ours();
  const b = peer();
  for (let k = 0; k < 3; k++) (ours(), peer());
  const r = [];
  const to = [];
  for (let k = 0; k < rounds; k++) {
    const t = time(ours);
    r.push(time(peer) / t);
    to.push(t);
  }
  return { ratio: median(r), oursMs: median(to), ours: a, peer: b };
}

/** The package as built (dist/index.js), initialized; with `extras`, the extras module too. */
export async function loadDist({ extras = false } = {}) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dist = (file) => import(pathToFileURL(path.resolve(here, '../dist', file)).href);
  const lib = await dist('index.js');
  await lib.init(extras ? { extras: (await dist('extras.js')).extras } : {});
  return lib;
}
