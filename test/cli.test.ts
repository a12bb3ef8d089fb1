// The command (issue #18): `focal-ghm score` on files NumPy itself wrote (every dtype, format
// versions 1.0–3.0, C and Fortran order, 0-d, empty, truncated), its losses against the library's
// on the same arrays, --json, the plots (SVG bars per bin, PNG), errors and exit codes, threads
// and chunking, `sample`, and memory on a 2^27-logit file. NumPy comes from Debian's
// python3-numpy (.ci/run installs it); without it these tests skip locally and fail in CI.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, npyBytes, openArray, readElements, type ArrayFile } from '../cli/src/npy';
import { expectReducedClose } from './helpers/golden';
import { expandTargets, findBin, ghmcEdges, ghmcGradNorm, RefGHMC, refSigmoidFocal, refSoftmaxFocal } from './helpers/reference';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'cli', 'bin', 'focal-ghm.js');
const REQUIRE_ALL = process.env.FOCAL_GHM_RUNTIMES === 'all';
/** Losses of one file in different pieces or threads: only the float64 sums' order differs. */
const REL = 1e-7;

function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const numpy = hasNumpy();
if (!numpy && !REQUIRE_ALL) console.warn('test/cli.test.ts: python3 with numpy not found (apt-get install -y python3-numpy); skipping');
const withNumpy = numpy || REQUIRE_ALL ? describe : describe.skip;

/** Runs the executable; resolves with its exit code and output (never rejects on a non-zero exit). */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function json(args: string[]): Promise<any> {
  const r = await run([...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

let dir: string;
/** What the Python script wrote: file name → dtype, shape and the values as float64. */
let manifest: Record<string, { dtype: string; shape: number[]; values: number[] }>;

// Arrays written by NumPy: every dtype in every format version, and the cases the reader refuses.
const PYTHON = String.raw`
import json, sys, numpy as np
from numpy.lib import format as fmt
out = sys.argv[1]
rng = np.random.default_rng(7)
manifest = {}
def save(name, a, version=None, record=True):
    with open(f'{out}/{name}', 'wb') as f:
        if version is None:
            np.save(f, a, allow_pickle=a.dtype == object)
        else:
            fmt.write_array(f, a, version=version)
    if record and a.dtype != object:
        manifest[name] = {'dtype': str(a.dtype), 'shape': list(a.shape), 'values': np.ascontiguousarray(a).astype(np.float64).ravel().tolist()}
for v in [(1, 0), (2, 0), (3, 0)]:
    for dt in ['f2', 'f4', 'f8', 'u1', '?', 'i1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8']:
        a = (rng.standard_normal((3, 4)) * 3) if dt[0] == 'f' else (np.arange(12).reshape(3, 4) % 2 if dt == '?' else np.arange(12).reshape(3, 4) * 7 - (20 if dt[0] == 'i' else 0))
        save(f'v{v[0]}_{dt.replace("?", "bool")}.npy', a.astype(dt), v)
save('zero_d.npy', np.float32(1.5))
save('fortran.npy', np.asfortranarray(rng.standard_normal((5, 3)).astype('f4')))
save('big_endian.npy', np.arange(4, dtype='>f4'))
save('object.npy', np.array([1, 'a'], dtype=object))
save('empty_logits.npy', np.zeros((0, 5), 'f4'))
save('empty_labels.npy', np.zeros((0,), 'i8'))
save('truncated.npy', rng.standard_normal(100).astype('f4'))
# A batch: logits [1000, 7] in several dtypes; dense, soft and class-index targets.
x = (rng.standard_normal((1000, 7)) * 3 - 2).astype('f4')
save('logits.npy', x)
save('logits_f16.npy', x.astype('f2'))
save('logits_f64.npy', x.astype('f8') + 1e-3)
dense = (rng.random((1000, 7)) < 0.1)
save('dense_u8.npy', dense.astype('u1'))
save('dense_bool.npy', dense)
save('soft.npy', rng.random((1000, 7)).astype('f4'))
labels = rng.integers(0, 8, 1000)
save('labels_bg.npy', labels.astype('i8'))
save('labels.npy', (labels % 7).astype('i4'))
save('labels_bad.npy', np.where(np.arange(1000) == 123, 9, labels % 7).astype('i8'))
save('soft_bad.npy', np.where(np.arange(7000).reshape(1000, 7) == 4567, 1.5, 0.5).astype('f4'))
save('targets_wrong_shape.npy', np.zeros((999, 7), 'u1'))
save('targets_transposed.npy', np.ascontiguousarray(dense.T).astype('u1'))
save('logits_3d.npy', x.reshape(4, 250, 7))
save('labels_3d.npy', labels.reshape(4, 250).astype('i8'))
save('logits_1class.npy', x[:, :1].copy())
save('labels_1class.npy', (labels % 2).astype('i8'))
x_nan = x.copy(); x_nan[3, 2] = np.nan; x_nan[999, 6] = np.nan
save('logits_nan.npy', x_nan, record=False)  # JSON has no NaN
save('labels_huge.npy', np.where(np.arange(1000) == 5, 2**40, labels).astype('i8'))
np.savez(f'{out}/arrays.npz', x=x)
open(f'{out}/empty.npy', 'wb').close()
json.dump(manifest, open(f'{out}/manifest.json', 'w'))
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'focal-ghm-cli-'));
  if (!numpy) return;
  execFileSync('python3', ['-c', PYTHON, dir]);
  manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  writeFileSync(join(dir, 'bytes7000.bin'), new Uint8Array(7000));
  const t = join(dir, 'truncated.npy');
  truncateSync(t, statSync(t).size - 6);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f = (name: string): string => join(dir, name);

async function readAll(a: ArrayFile): Promise<Float32Array | Uint8Array | Int32Array> {
  const fh = await open(a.path, 'r');
  try {
    return await readElements(fh, a, 0, a.size);
  } finally {
    await fh.close();
  }
}

withNumpy('reading .npy files written by NumPy', () => {
  it('requires NumPy in CI', () => expect(numpy).toBe(true));

  it('every dtype, in format versions 1.0, 2.0 and 3.0: shape and values', async () => {
    const names = Object.keys(manifest).filter((n) => /^v\d_/.test(n));
    expect(names).toHaveLength(36);
    for (const name of names) {
      const m = manifest[name]!;
      const a = await openArray(f(name));
      expect(a.shape, name).toEqual(m.shape);
      expect(a.format, name).toBe(`npy ${name[1]}.0`);
      const got = Array.from(await readAll(a));
      // Floats arrive as float32 (float16 exactly, float64 rounded); integers and booleans exactly.
      const want = m.dtype.startsWith('float') ? m.values.map(Math.fround) : m.values;
      expect(got, name).toEqual(want);
    }
  });

  it('0-d arrays are one element; Fortran order, big-endian, object arrays and truncated files are refused', async () => {
    const z = await openArray(f('zero_d.npy'));
    expect(z.shape).toEqual([]);
    expect(Array.from(await readAll(z))).toEqual([1.5]);
    const refused: [string, RegExp][] = [
      ['fortran.npy', /Fortran-ordered array \(shape \[5, 3\]\) is not supported; save np\.ascontiguousarray/],
      ['big_endian.npy', /big-endian data \(>f4\) is not supported/],
      ['object.npy', /object arrays \(dtype object\) are not supported/],
      ['truncated.npy', /truncated: shape \[100\] of float32 needs 400 bytes of data, the file has 394/],
    ];
    for (const [name, message] of refused) {
      const e = await openArray(f(name)).catch((x: unknown) => x);
      expect(e, name).toBeInstanceOf(DataError);
      expect((e as Error).message, name).toMatch(message);
      expect((e as Error).message, name).toContain(f(name));
    }
  });

  it('the sample writer’s files load in NumPy with their dtype, shape and values', () => {
    const path = f('written.npy');
    writeFileSync(path, npyBytes(new Float32Array([1.5, -2, 3, 4, 5, 6]), [2, 3]));
    writeFileSync(f('written_i8.npy'), npyBytes(new BigInt64Array([3n, -1n]), [2]));
    const out = execFileSync('python3', ['-c', `import numpy as np; a = np.load('${path}'); b = np.load('${f('written_i8.npy')}'); print(a.dtype, a.shape, a.tolist(), b.dtype, b.tolist())`]);
    expect(String(out).trim()).toBe('float32 (2, 3) [[1.5, -2.0, 3.0], [4.0, 5.0, 6.0]] int64 [3, -1]');
  });
});

type TargetSpec = { dense?: string; soft?: string; labels?: string };

/**
 * What `score --json` must report, from the float64 reference (test/helpers/reference.ts, an
 * oracle independent of the kernels) on the manifest's arrays: losses, and per bin of g the
 * positives, negatives and GHM-C weights.
 */
function reference(logitsName: string, targets: TargetSpec, o: { alpha?: number | null; gamma?: number; bins?: number; momentum?: number; avgFactor?: number } = {}) {
  const { alpha = 0.25, gamma = 2, bins = 30, momentum = 0 } = o;
  // Float16 and float64 logits are scored as float32, as the command converts them.
  const x = Float32Array.from(manifest[logitsName]!.values);
  const C = manifest[logitsName]!.shape.at(-1)!;
  const t = targets.labels
    ? { labels: Int32Array.from(manifest[targets.labels]!.values), numClasses: C }
    : targets.soft
      ? Float32Array.from(manifest[targets.soft]!.values)
      : Uint8Array.from(manifest[targets.dense!]!.values);
  const tt = expandTargets(x.length, t);
  const edges = ghmcEdges(bins);
  const positives = new Array<number>(bins).fill(0);
  const negatives = new Array<number>(bins).fill(0);
  for (let k = 0; k < x.length; k++) {
    const b = findBin(ghmcGradNorm(x[k]!, tt[k]!), edges);
    if (b >= 0) (tt[k]! >= 0.5 ? positives : negatives)[b]!++;
  }
  const counts = positives.map((p, i) => p + negatives[i]!);
  const nonEmpty = counts.filter((c) => c > 0).length;
  const weights = counts.map((c) => (c > 0 ? x.length / ((momentum > 0 ? (1 - momentum) * c : c) * nonEmpty) : 0));
  return {
    x,
    t,
    focal: (refSigmoidFocal(x, t, { alpha, gamma, ...(o.avgFactor ? { avgFactor: o.avgFactor } : {}) }).loss as number),
    ghmc: new RefGHMC({ bins, momentum }).forward(x, t).loss,
    positives,
    negatives,
    counts,
    weights,
  };
}

withNumpy('score: the library’s numbers', () => {
  it('binary, bool, soft and class-index targets; float16/32/64 and 3-D logits: losses and bins as the float64 reference', async () => {
    const cases: [string, string, TargetSpec][] = [
      ['logits.npy', 'dense_u8.npy', { dense: 'dense_u8.npy' }],
      ['logits.npy', 'dense_bool.npy', { dense: 'dense_bool.npy' }],
      ['logits.npy', 'soft.npy', { soft: 'soft.npy' }],
      ['logits.npy', 'labels_bg.npy', { labels: 'labels_bg.npy' }],
      ['logits_f16.npy', 'dense_u8.npy', { dense: 'dense_u8.npy' }],
      ['logits_f64.npy', 'labels_bg.npy', { labels: 'labels_bg.npy' }],
      ['logits_3d.npy', 'labels_3d.npy', { labels: 'labels_3d.npy' }],
    ];
    for (const [logits, targets, spec] of cases) {
      const j = await json(['score', '--logits', f(logits), '--targets', f(targets)]);
      const want = reference(logits, spec);
      const what = `${logits} + ${targets}`;
      expect(j.elements, what).toBe(7000);
      expectReducedClose(j.losses['sigmoid-focal'], want.focal, 1e-5, what);
      expectReducedClose(j.losses.ghmc, want.ghmc, 1e-5, what);
      expect(j.ghm.counts, what).toEqual(want.counts);
      expect(j.ghm.positives, what).toEqual(want.positives);
      expect(j.ghm.negatives, what).toEqual(want.negatives);
      j.ghm.weights.forEach((w: number, i: number) => expect(w, `${what} weight ${i}`).toBeCloseTo(want.weights[i]!, 3));
      expect(j.positives, what).toBe(want.positives.reduce((a, b) => a + b, 0));
      // GHM-C's loss is the sum of its per-bin parts; the focal loss's mean the sum of its parts / n.
      expectReducedClose(j.ghm.lossByBin.ghmc.reduce((a: number, b: number) => a + b, 0), want.ghmc, 1e-5, what);
      expectReducedClose(j.ghm.lossByBin['sigmoid-focal'].reduce((a: number, b: number) => a + b, 0) / 7000, want.focal, 1e-5, what);
      expect(j.targets, what).toBe(spec.labels ? 'class-indices' : 'per-logit');
      expect('softmax-focal' in j.losses, what).toBe(false); // background labels or per-logit targets
    }
  });

  it('softmax focal loss when every label has a logit column; options reach every loss', async () => {
    const args = ['score', '--logits', f('logits.npy'), '--targets', f('labels.npy'), '--alpha', '0.5', '--gamma', '1.5', '--bins', '12', '--momentum', '0.5', '--reduction', 'sum'];
    const j = await json(args);
    const x = Float32Array.from(manifest['logits.npy']!.values);
    const labels = Int32Array.from(manifest['labels.npy']!.values);
    const t = { labels, numClasses: 7 };
    expectReducedClose(j.losses['softmax-focal'], (refSoftmaxFocal(x, labels, { numClasses: 7, alpha: 0.5, gamma: 1.5, reduction: 'sum' }).loss as number), 1e-5, 'softmax');
    expectReducedClose(j.losses['sigmoid-focal'], (refSigmoidFocal(x, t, { alpha: 0.5, gamma: 1.5, reduction: 'sum' }).loss as number), 1e-5, 'sigmoid');
    expectReducedClose(j.losses.ghmc, new RefGHMC({ bins: 12, momentum: 0.5 }).forward(x, t).loss, 1e-5, 'ghmc');
    const ref = reference('logits.npy', { labels: 'labels.npy' }, { bins: 12, momentum: 0.5 });
    j.ghm.weights.forEach((w: number, i: number) => expect(w, `weight ${i}`).toBeCloseTo(ref.weights[i]!, 3));
    expect(j.ghm.bins).toBe(12);
    expect(j.options).toEqual({ alpha: 0.5, gamma: 1.5, bins: 12, momentum: 0.5, reduction: 'sum', avgFactor: null });
    // RetinaNet's normalisation: the sum over the number of positives (rows that are not background).
    const retina = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--avg-factor', 'positives']);
    const bg = Int32Array.from(manifest['labels_bg.npy']!.values);
    const positives = bg.filter((l) => l < 7).length;
    expect(retina.positives).toBe(positives);
    expect(retina.options.avgFactor).toBe(positives);
    expectReducedClose(retina.losses['sigmoid-focal'], (refSigmoidFocal(x, { labels: bg, numClasses: 7 }, { avgFactor: positives }).loss as number), 1e-5, 'avgFactor');
    // --loss picks; --alpha none disables α.
    const only = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels.npy'), '--loss', 'softmax-focal', '--alpha', 'none']);
    expect(Object.keys(only.losses)).toEqual(['softmax-focal']);
    expectReducedClose(only.losses['softmax-focal'], (refSoftmaxFocal(x, labels, { numClasses: 7, alpha: null, gamma: 2 }).loss as number), 1e-5, 'softmax, no α');
  });

  it('the same numbers for any piece size and with two threads, for every kind of targets', async () => {
    const strip = (j: any) => ({ ...j, seconds: 0, threads: 0, losses: Object.keys(j.losses) });
    for (const targets of ['labels_bg.npy', 'dense_u8.npy', 'soft.npy']) {
      const base = ['score', '--logits', f('logits.npy'), '--targets', f(targets)];
      const one = await json(base);
      for (const extra of [['--chunk', '1'], ['--chunk', '999'], ['--threads', '2', '--chunk', '700']]) {
        const what = `${targets} ${extra.join(' ')}`;
        const j = await json([...base, ...extra]);
        expect(strip(j), what).toEqual(strip(one));
        for (const k of Object.keys(one.losses)) expectReducedClose(j.losses[k], one.losses[k], REL, `${k} ${what}`);
      }
    }
    expect((await json(['score', '--logits', f('logits.npy'), '--targets', f('soft.npy'), '--threads', '2'])).threads).toBe(2);
  });

  it('logits [N, 1] with integer targets [N]: --targets-kind says whether they are class indices or 0/1', async () => {
    const args = ['score', '--logits', f('logits_1class.npy'), '--targets', f('labels_1class.npy')];
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/are either class indices of one class \(mmdetection: 0 = object, 1 = background\) or 0\/1 targets .* --targets-kind class-indices or per-logit\n$/);
    const labels = Int32Array.from(manifest['labels_1class.npy']!.values);
    const x = Float32Array.from(manifest['logits_1class.npy']!.values);
    const indices = await json([...args, '--targets-kind', 'class-indices']);
    expect(indices.positives).toBe(labels.filter((l) => l === 0).length);
    expectReducedClose(indices.losses['sigmoid-focal'], (refSigmoidFocal(x, { labels, numClasses: 1 }).loss as number), 1e-5, 'class indices');
    const perLogit = await json([...args, '--targets-kind', 'per-logit']);
    expect(perLogit.positives).toBe(labels.filter((l) => l === 1).length);
    expectReducedClose(perLogit.losses['sigmoid-focal'], (refSigmoidFocal(x, Uint8Array.from(labels)).loss as number), 1e-5, 'per logit');
  });

  it('NaN logits: NaN losses (null in JSON), a warning, the other elements binned', async () => {
    const r = await run(['score', '--logits', f('logits_nan.npy'), '--targets', f('dense_u8.npy'), '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('focal-ghm: 2 logits are NaN: the losses are NaN (as PyTorch\'s), and those elements are in no bin\n');
    const j = JSON.parse(r.stdout);
    expect(j.losses).toEqual({ 'sigmoid-focal': null, ghmc: null });
    expect(j.ghm.nan).toBe(2);
    expect(j.ghm.counts.reduce((a: number, b: number) => a + b, 0)).toBe(6998);
    expect(j.positives).toBe(manifest['dense_u8.npy']!.values.filter((v) => v === 1).length);
  });

  it('empty arrays: zero elements, NaN losses as null', async () => {
    const j = await json(['score', '--logits', f('empty_logits.npy'), '--targets', f('empty_labels.npy')]);
    expect(j.elements).toBe(0);
    expect(j.losses['sigmoid-focal']).toBeNull();
    expect(j.losses.ghmc).toBe(0); // a batch with no valid element has GHM-C loss 0 (SPEC §3)
    expect(j.ghm.counts.every((c: number) => c === 0)).toBe(true);
  });

  it('raw little-endian files with --dtype and --shape', async () => {
    const x = Float32Array.from(manifest['logits.npy']!.values);
    const t = Uint8Array.from(manifest['dense_u8.npy']!.values);
    writeFileSync(f('x.f32'), x);
    writeFileSync(f('t.u8'), t);
    const j = await json(['score', '--logits', f('x.f32'), '--dtype', 'float32', '--shape', '1000,7', '--targets', f('t.u8'), '--targets-dtype', 'u1']);
    expectReducedClose(j.losses['sigmoid-focal'], (refSigmoidFocal(x, t).loss as number), 1e-5, 'raw');
    expect(j.classes).toBe(7);
  });
});

withNumpy('score: output', () => {
  it('the table names the inputs and every loss; --plot - sketches the bins', async () => {
    const r = await run(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--plot', '-', '--bins', '10']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(''); // and no progress bar: stderr is not a terminal
    expect(r.stdout).toContain('logits.npy  float32 [1000, 7] (npy 1.0)');
    expect(r.stdout).toMatch(/^sigmoid-focal +\d\.\d+/m);
    expect(r.stdout).toMatch(/^softmax-focal +– +skipped: the labels include background \(7\)/m);
    const spark = r.stdout.split('\n').find((l) => l.startsWith('negatives '))!;
    expect(spark.slice(14, 24)).toMatch(/^[ ▁▂▃▄▅▆▇█]{10}$/);
  });

  it('a progress bar on a terminal (script(1) gives the command one), none when piped', async () => {
    await writeSampleOnce();
    // Shown once the work has run FOCAL_GHM_PROGRESS_AFTER_MS (default 1 s; 0 here: at once).
    const cmd = `FOCAL_GHM_PROGRESS_AFTER_MS=0 ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} score --logits ${f('sample/logits.npy')} --targets ${f('sample/labels.npy')} --chunk 400 --json > /dev/null`;
    const out = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    expect(out).toMatch(/scoring [█░]{40} \d+% \| \d+\/2000 rows/);
    const piped = await run(['score', '--logits', f('sample/logits.npy'), '--targets', f('sample/labels.npy'), '--chunk', '400', '--json'], { FOCAL_GHM_PROGRESS_AFTER_MS: '0' });
    expect(piped.stderr).toBe('');
  });

  it('--help, --version; no command prints the usage on stderr', async () => {
    for (const args of [['--help'], ['score', '--help'], ['sample', '-h']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^focal-ghm: focal and GHM losses/);
    }
    const v = await run(['--version']);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'cli', 'package.json'), 'utf8')).version);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^focal-ghm: focal and GHM losses/);
  });

  it('--plot writes an SVG with one bar per bin and class, and a PNG', async () => {
    const svg = f('plot.svg');
    const png = f('plot.png');
    const r = await run(['score', '--logits', f('logits.npy'), '--targets', f('dense_u8.npy'), '--json', '--plot', svg, '--plot', png]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`focal-ghm: wrote ${svg}\nfocal-ghm: wrote ${png}\n`);
    const j = JSON.parse(r.stdout);
    const text = readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);
    // Balanced tags (a cheap well-formedness check).
    expect((text.match(/<g\b/g) ?? []).length).toBe((text.match(/<\/g>/g) ?? []).length);
    const bars = /class="mark-rect role-mark bars_marks"[^>]*>(.*?)<\/g>/s.exec(text)![1]!;
    const labels = [...bars.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]!);
    const want = j.ghm.negatives.flatMap((n: number, i: number) => (n > 0 ? [`negatives ${i} ${n}`] : [])).concat(j.ghm.positives.flatMap((p: number, i: number) => (p > 0 ? [`positives ${i} ${p}`] : [])));
    const got = labels.map((l) => {
      const [, series, bin, count] = /series: (\w+); bin: (\d+); count: ([\d,]+)/.exec(l)!;
      return `${series} ${bin} ${Number(count!.replace(/,/g, ''))}`;
    });
    expect(got.sort()).toEqual(want.sort());
    expect(got.length).toBeGreaterThan(30); // both classes in most of the 30 bins
    for (const title of ['gradient norm g = |p − t|', 'elements (log scale)', 'GHM-C weight (log scale)', 'share of the loss', 'probability of the true class p_t']) {
      expect(text).toContain(title);
    }
    const head = readFileSync(png).subarray(0, 24);
    expect(head.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(head.readUInt32BE(16)).toBeGreaterThan(1000); // width: the figure at twice its size
  });
});

withNumpy('score: errors', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['no targets', ['score', '--logits', 'x.npy'], 2, /^focal-ghm: score needs --targets FILE$/],
    ['unknown option', ['score', '--logits', 'a', '--targets', 'b', '--gama', '2'], 2, /^focal-ghm: Unknown option '--gama'$/],
    ['bad number', ['score', '--logits', 'a', '--targets', 'b', '--gamma', 'two'], 2, /^focal-ghm: --gamma must be a number, got 'two'$/],
    ['γ out of range', ['score', '--logits', 'a', '--targets', 'b', '--gamma', '40'], 2, /^focal-ghm: --gamma must be in \[0, 32\], got 40/],
    ['unknown loss', ['score', '--logits', 'a', '--targets', 'b', '--loss', 'ghmr'], 2, /^focal-ghm: --loss: unknown loss 'ghmr'/],
    ['plot format', ['score', '--logits', 'a', '--targets', 'b', '--plot', 'x.pdf'], 2, /^focal-ghm: --plot x\.pdf: give a \.svg or \.png file/],
    ['unknown command', ['scores'], 2, /^focal-ghm: unknown command 'scores'/],
    ['bad --targets-dtype, before any file is read', ['score', '--logits', 'nope.npy', '--targets', 'b', '--targets-dtype', 'bogus'], 2, /^focal-ghm: --targets-dtype 'bogus' is not a dtype/],
    ['bad --targets-shape', ['score', '--logits', 'nope.npy', '--targets', 'b', '--targets-shape', '3;4'], 2, /^focal-ghm: --targets-shape must be sizes separated by commas/],
    ['--targets-kind', ['score', '--logits', 'a', '--targets', 'b', '--targets-kind', 'labels'], 2, /^focal-ghm: --targets-kind must be per-logit or class-indices, got 'labels'$/],
    ['plot folder missing, before the pass', ['score', '--logits', 'a', '--targets', 'b', '--plot', '/nonexistent-dir/x.svg'], 2, /^focal-ghm: --plot \/nonexistent-dir\/x\.svg: the folder \/nonexistent-dir does not exist$/],
    ['--chunk too large', ['score', '--logits', 'a', '--targets', 'b', '--chunk', '1e9'], 2, /^focal-ghm: --chunk must be in \[1, 67108864\]/],
    ['avg-factor with sum', ['score', '--logits', 'a', '--targets', 'b', '--avg-factor', '3', '--reduction', 'sum'], 2, /^focal-ghm: --avg-factor cannot be used with reduction 'sum'$/],
    ['negative value', ['score', '--logits', 'a', '--targets', 'b', '--avg-factor', '-3'], 2, /^focal-ghm: Option '--avg-factor' argument is ambiguous\. \(values starting with - go as --option=-1\)$/],
  ];
  for (const [what, args, code, message] of cases) {
    it(`usage: ${what} (exit ${code})`, async () => {
      const r = await run(args);
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim()).toMatch(message);
    });
  }

  const data: [string, () => string[], RegExp][] = [
    ['missing file', () => ['--logits', f('nope.npy'), '--targets', f('labels.npy')], /nope\.npy: cannot read \(no such file\)$/],
    ['not .npy, no dtype', () => ['--logits', f('manifest.json'), '--targets', f('labels.npy')], /manifest\.json: not a \.npy file .* give its dtype and shape$/],
    ['truncated', () => ['--logits', f('truncated.npy'), '--targets', f('truncated.npy')], /truncated\.npy: truncated: shape \[100\] of float32 needs 400 bytes/],
    ['integer logits', () => ['--logits', f('labels.npy'), '--targets', f('labels.npy')], /labels\.npy: logits are int32; expected float16, float32 or float64$/],
    ['shapes disagree', () => ['--logits', f('logits.npy'), '--targets', f('targets_wrong_shape.npy')], /targets_wrong_shape\.npy: shape \[999, 7\] does not fit logits \[1000, 7\]: expected \[1000, 7\] \(a target per logit\) or \[1000\] of integer class indices$/],
    ['label out of range', () => ['--logits', f('logits.npy'), '--targets', f('labels_bad.npy')], /labels_bad\.npy: label 9 at row 123 is outside \[0, 7\] \(7 = background\)$/],
    ['soft target out of range', () => ['--logits', f('logits.npy'), '--targets', f('soft_bad.npy')], /soft_bad\.npy: element 4567 is 1\.5; soft targets must be in \[0, 1\]$/],
    ['softmax with background', () => ['--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--loss', 'softmax-focal'], /softmax-focal: the labels include background \(7\)/],
    ['a directory', () => ['--logits', dir, '--targets', f('labels.npy')], /: cannot read \(is a directory\)$/],
    ['a .npz archive', () => ['--logits', f('arrays.npz'), '--targets', f('labels.npy')], /arrays\.npz: a \.npz archive \(zip\), not an array/],
    ['an empty file', () => ['--logits', f('empty.npy'), '--targets', f('labels.npy')], /empty\.npy: empty file$/],
    ['--dtype for a .npy file', () => ['--logits', f('logits.npy'), '--dtype', 'f4', '--targets', f('labels.npy')], /logits\.npy: a \.npy file has its own dtype and shape/],
    ['transposed targets of the right size', () => ['--logits', f('logits.npy'), '--targets', f('targets_transposed.npy')], /targets_transposed\.npy: shape \[7, 1000\] does not fit logits \[1000, 7\]/],
    ['float class indices', () => ['--logits', f('logits.npy'), '--targets', f('soft.npy'), '--targets-kind', 'class-indices'], /soft\.npy: dtype float32 is not class indices for logits \[1000, 7\]/],
    ['a label beyond int32', () => ['--logits', f('logits.npy'), '--targets', f('labels_huge.npy')], /labels_huge\.npy: element 5 is 1099511627776, beyond any label or 0\/1 target/],
    ['big-endian', () => ['--logits', f('big_endian.npy'), '--targets', f('big_endian.npy')], /big-endian data/],
    ['Fortran order', () => ['--logits', f('fortran.npy'), '--targets', f('fortran.npy')], /Fortran-ordered array/],
    ['raw size', () => ['--logits', f('bytes7000.bin'), '--dtype', 'f8', '--shape', '3,3', '--targets', f('labels.npy')], /bytes7000\.bin: shape \[3, 3\] of float64 needs 72 bytes, the file has 7000$/],
  ];
  for (const [what, args, message] of data) {
    it(`data: ${what} (exit 1, one line, no stack)`, async () => {
      const r = await run(['score', ...args()]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(/^focal-ghm: /);
      expect(r.stderr.trim()).toMatch(message);
    });
  }
});

let sampleWritten: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
/** `focal-ghm sample` into the test folder: 2000 anchors × 20 classes. */
function writeSampleOnce() {
  sampleWritten ??= run(['sample', f('sample'), '--anchors', '2000', '--classes', '20']);
  return sampleWritten;
}

withNumpy('sample', () => {
  it('writes a detector-like batch that NumPy loads and score reads', async () => {
    const out = f('sample');
    const r = await writeSampleOnce();
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^focal-ghm: wrote .*logits\.npy \(float32 \[2000, 20\]\) and .*labels\.npy \(int64 \[2000\], 20 = background\)\n$/);
    const py = execFileSync('python3', ['-c', `import numpy as np; x = np.load('${out}/logits.npy'); y = np.load('${out}/labels.npy'); print(x.dtype, x.shape, y.dtype, y.shape, int(y.min()) >= 0, int(y.max()) <= 20, float((y < 20).mean()))`]);
    const [xd, xs0, xs1, yd, ys, lo, hi, rate] = String(py).trim().split(' ');
    expect([xd, xs0, xs1, yd, ys, lo, hi]).toEqual(['float32', '(2000,', '20)', 'int64', '(2000,)', 'True', 'True']);
    expect(Number(rate)).toBeGreaterThan(0.002);
    expect(Number(rate)).toBeLessThan(0.03);
    const j = await json(['score', '--logits', `${out}/logits.npy`, '--targets', `${out}/labels.npy`]);
    // Most negatives easy: the first bin holds most elements, and BCE's share there is large.
    expect(j.ghm.counts[0] / j.elements).toBeGreaterThan(0.9);
  });
});

// 2^27 logits (512 MiB) and their targets stream from disk: resident memory stays bounded.
describe('memory', () => {
  it('a file of 2^27 logits is scored with resident memory under 256 MB', async () => {
    const n = 2 ** 27;
    const rows = n / 64;
    const logitsPath = f('huge_logits.npy');
    const targetsPath = f('huge_targets.npy');
    await writeInPieces(logitsPath, npyBytes(new Float32Array(0), [rows, 64]), n, 4, (buf, first) => {
      const x = new Float32Array(buf.buffer);
      for (let i = 0; i < x.length; i++) x[i] = (((first + i) * 2654435761) % 1000) / 100 - 8;
    });
    await writeInPieces(targetsPath, npyBytes(new Uint8Array(0), [rows, 64]), n, 1, (buf, first) => {
      for (let i = 0; i < buf.length; i++) buf[i] = (first + i) % 97 === 0 ? 1 : 0;
    });
    const code = `process.on('exit', () => process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS * 1024 + '\\n'));
      process.argv = [process.argv[0], 'focal-ghm', 'score', '--logits', ${JSON.stringify(logitsPath)}, '--targets', ${JSON.stringify(targetsPath)}, '--json'];
      await import(${JSON.stringify(new URL('../cli/bin/focal-ghm.js', import.meta.url).href)});`;
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (c) => (c === 0 ? resolve({ stdout, stderr }) : reject(new Error(`exit ${c}: ${stderr}`))));
    });
    const j = JSON.parse(r.stdout);
    expect(j.elements).toBe(n);
    expect(j.ghm.counts.reduce((a: number, b: number) => a + b, 0)).toBe(n);
    const rss = Number(/maxRSS (\d+)/.exec(r.stderr)![1]);
    console.log(`2^27 logits: ${j.seconds.toFixed(1)} s, max RSS ${(rss / 2 ** 20).toFixed(0)} MiB`);
    expect(rss).toBeLessThan(256e6);
  });
});

/** Writes a header, then `n` elements of `bytesPer` bytes in 16 MiB pieces filled by `fill`. */
async function writeInPieces(path: string, header: Uint8Array, n: number, bytesPer: number, fill: (buf: Uint8Array, first: number) => void): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.write(header);
    const piece = (16 << 20) / bytesPer;
    for (let first = 0; first < n; first += piece) {
      const buf = new Uint8Array(Math.min(piece, n - first) * bytesPer);
      fill(buf, first);
      await fh.write(buf);
    }
  } finally {
    await fh.close();
  }
}

describe('the package focal-ghm-cli', () => {
  it('packs its executable, the bundle and docs; the bundle imports only its dependencies and Node built-ins', async () => {
    const cliDir = join(ROOT, 'cli');
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: cliDir, encoding: 'utf8' }))[0];
    const files: string[] = packed.files.map((x: { path: string }) => x.path).sort();
    expect(files).toContain('bin/focal-ghm.js');
    expect(files).toContain('dist/cli.js');
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    expect(files.filter((p) => p.startsWith('src/') || p.includes('tsup'))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ 'focal-ghm': './bin/focal-ghm.js' });
    const deps = Object.keys(pkg.dependencies);
    expect(deps).not.toContain('focal-ghm'); // bundled: the same build as the package's dist/
    const bare = new Set<string>();
    for (const file of files.filter((p) => p.startsWith('dist/') && p.endsWith('.js'))) {
      const code = readFileSync(join(cliDir, file), 'utf8');
      // Static imports start a line; dynamic ones are import("…") calls (messages quoting an
      // import statement are neither).
      for (const m of code.matchAll(/^\s*(?:import|export)\s[^'"`;]*?from\s*["']([^"'./][^"']*)["']|\bimport\(\s*["']([^"'./][^"']*)["']\s*\)/gm)) bare.add((m[1] ?? m[2])!);
    }
    const packageOf = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
    const { builtinModules } = await import('node:module');
    const unknown = [...bare].filter((s) => !s.startsWith('node:') && !builtinModules.includes(s) && !deps.includes(packageOf(s)));
    expect(unknown).toEqual([]);
    expect([...bare].map(packageOf)).toEqual(expect.arrayContaining(['vega', 'vega-lite', '@resvg/resvg-js', 'cli-progress']));
  });
});
