// The command's focal family (the extras module): `focal-ghm score --loss quality-focal,
// varifocal`, `--loss distribution-focal`, `--scores` and `--poly1`, on files NumPy wrote: each
// loss equals the library's call on the same arrays; the default output is unchanged; usage
// errors exit 2 and data errors 1, with one line. NumPy as in test/cli.test.ts (Debian's
// python3-numpy; without it these tests skip locally and fail in CI).

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extras } from '../ts/extras';
import { distributionFocalLoss, init, qualityFocalLoss, sigmoidFocalLoss, softmaxFocalLoss, varifocalLoss } from '../ts/index';
import { expectReducedClose } from './helpers/golden';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'cli', 'bin', 'focal-ghm.js');
const REQUIRE_ALL = process.env.FOCAL_GHM_RUNTIMES === 'all';
/** The command's streams against one library call on the whole array: only the float64 sums' order differs. */
const REL = 1e-6;

function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const numpy = hasNumpy();
if (!numpy && !REQUIRE_ALL) console.warn('test/cli-family.test.ts: python3 with numpy not found (apt-get install -y python3-numpy); skipping');
const withNumpy = numpy || REQUIRE_ALL ? describe : describe.skip;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
let manifest: Record<string, { dtype: string; shape: number[]; values: number[] }>;

const PYTHON = String.raw`
import json, sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(11)
manifest = {}
def save(name, a):
    np.save(f'{out}/{name}', a)
    manifest[name] = {'dtype': str(a.dtype), 'shape': list(a.shape), 'values': a.astype(np.float64).ravel().tolist()}
x = (rng.standard_normal((500, 6)) * 3 - 1).astype('f4')
save('logits.npy', x)
labels = rng.integers(0, 7, 500)            # 6 = background
save('labels_bg.npy', labels.astype('i8'))
save('labels.npy', (labels % 6).astype('i4'))
scores = rng.random(500).astype('f4')
save('scores.npy', scores)
save('scores_f64.npy', scores.astype('f8'))
q = np.zeros((500, 6), 'f4')
pos = labels < 6
q[np.arange(500)[pos], labels[pos]] = scores[pos]
save('iou.npy', q)                          # VFNet's targets: the IoU at the label's column
bad = q.copy(); bad.flat[777] = 1.5
save('iou_bad.npy', bad)
save('dense_u8.npy', (rng.random((500, 6)) < 0.1).astype('u1'))
save('scores_bad.npy', np.where(np.arange(500) == 77, 1.5, scores).astype('f4'))
save('scores_short.npy', scores[:499].copy())
save('scores_int.npy', (scores * 10).astype('i4'))
d = (rng.standard_normal((400, 17)) * 2).astype('f4')
save('dfl_logits.npy', d)
y = (rng.random(400) * 16 * 0.9999).astype('f4')
save('dfl_targets.npy', y)
save('dfl_targets_col.npy', y.reshape(400, 1))
save('dfl_targets_int.npy', np.floor(y).astype('i8'))
save('dfl_targets_bad.npy', np.where(np.arange(400) == 33, 16.0, y).astype('f4'))
save('dfl_targets_wrong.npy', y[:399].copy())
save('dfl_logits_1.npy', d[:, :1].copy())
json.dump(manifest, open(f'{out}/manifest.json', 'w'))
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'focal-ghm-cli-family-'));
  await init({ extras });
  if (!numpy) return;
  execFileSync('python3', ['-c', PYTHON, dir]);
  manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f = (name: string): string => join(dir, name);
const floats = (name: string) => Float32Array.from(manifest[name]!.values);
const ints = (name: string) => Int32Array.from(manifest[name]!.values);

withNumpy('score --loss quality-focal, varifocal, distribution-focal: the library’s numbers', () => {
  it('requires NumPy in CI', () => expect(numpy).toBe(true));

  it('quality-focal: class indices with --scores (background rows included) as qualityFocalLoss', async () => {
    const x = floats('logits.npy');
    const t = { labels: ints('labels_bg.npy'), scores: floats('scores.npy'), numClasses: 6 };
    const j = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores.npy'), '--loss', 'quality-focal']);
    expect(Object.keys(j.losses)).toEqual(['quality-focal']);
    expectReducedClose(j.losses['quality-focal'], qualityFocalLoss(x, t).loss, REL, 'defaults');
    expect(j.options.beta).toBe(2);
    expect(j.inputs.map((a: { path: string }) => a.path)).toEqual([f('logits.npy'), f('labels_bg.npy'), f('scores.npy')]);
    // β, the sum, RetinaNet's normalisation (rows not background), float64 scores; in pieces.
    const positives = t.labels.filter((l) => l < 6).length;
    const retina = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores_f64.npy'), '--loss', 'quality-focal,sigmoid-focal', '--beta', '1.5', '--avg-factor', 'positives', '--chunk', '600']);
    expect(retina.options.avgFactor).toBe(positives);
    expectReducedClose(retina.losses['quality-focal'], qualityFocalLoss(x, t, { beta: 1.5, avgFactor: positives }).loss, REL, 'β 1.5, positives');
    expectReducedClose(retina.losses['sigmoid-focal'], sigmoidFocalLoss(x, { labels: t.labels, numClasses: 6 }, { avgFactor: positives }).loss, REL, 'sigmoid beside it');
    const sum = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores.npy'), '--loss', 'quality-focal', '--reduction', 'sum']);
    expectReducedClose(sum.losses['quality-focal'], qualityFocalLoss(x, t, { reduction: 'sum' }).loss, REL, 'sum');
  });

  it('varifocal: IoU-aware targets per logit, 0/1 targets, or class indices with --scores (the same targets)', async () => {
    const x = floats('logits.npy');
    const q = floats('iou.npy');
    const perLogit = await json(['score', '--logits', f('logits.npy'), '--targets', f('iou.npy'), '--loss', 'varifocal']);
    expectReducedClose(perLogit.losses.varifocal, varifocalLoss(x, q).loss, REL, 'per logit');
    expect(perLogit.options.vflAlpha).toBe(0.75);
    const fromLabels = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores.npy'), '--loss', 'varifocal,quality-focal', '--chunk', '77']);
    expectReducedClose(fromLabels.losses.varifocal, perLogit.losses.varifocal, REL, 'from labels and scores');
    const o = ['--vfl-alpha', '0.5', '--gamma', '1.5', '--reduction', 'sum'];
    const opts = await json(['score', '--logits', f('logits.npy'), '--targets', f('iou.npy'), '--loss', 'varifocal,sigmoid-focal', ...o]);
    expectReducedClose(opts.losses.varifocal, varifocalLoss(x, q, { alpha: 0.5, gamma: 1.5, reduction: 'sum' }).loss, REL, 'α 0.5, γ 1.5, sum');
    expectReducedClose(opts.losses['sigmoid-focal'], sigmoidFocalLoss(x, q, { gamma: 1.5, reduction: 'sum' }).loss, REL, 'the sigmoid focal loss keeps --alpha');
    const binary = await json(['score', '--logits', f('logits.npy'), '--targets', f('dense_u8.npy'), '--loss', 'varifocal', '--avg-factor', '25']);
    expectReducedClose(binary.losses.varifocal, varifocalLoss(x, Float32Array.from(manifest['dense_u8.npy']!.values), { avgFactor: 25 }).loss, REL, '0/1 targets');
  });

  it('distribution-focal: logits [N, n + 1] and targets [N] (float, [N, 1], integer), in pieces; no bins', async () => {
    const x = floats('dfl_logits.npy');
    const y = floats('dfl_targets.npy');
    const j = await json(['score', '--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal']);
    expect(j.losses).toEqual({ 'distribution-focal': expect.any(Number) });
    expectReducedClose(j.losses['distribution-focal'], distributionFocalLoss(x, y).loss, REL, 'defaults');
    expect([j.elements, j.rows, j.classes, j.targets, j.positives, j.ghm]).toEqual([400 * 17, 400, 17, 'per-row', null, null]);
    for (const extra of [['--chunk', '170'], ['--targets', f('dfl_targets_col.npy')]]) {
      const k = await json(['score', '--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal', ...extra]);
      expectReducedClose(k.losses['distribution-focal'], j.losses['distribution-focal'], REL, extra.join(' '));
    }
    const ints_ = await json(['score', '--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets_int.npy'), '--loss', 'distribution-focal', '--reduction', 'sum']);
    expectReducedClose(ints_.losses['distribution-focal'], distributionFocalLoss(x, Float32Array.from(manifest['dfl_targets_int.npy']!.values), { reduction: 'sum' }).loss, REL, 'integer targets, sum');
    const avg = await json(['score', '--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal', '--avg-factor', '100']);
    expectReducedClose(avg.losses['distribution-focal'], distributionFocalLoss(x, y, { avgFactor: 100 }).loss, REL, 'avgFactor');
    // The table: the loss, the targets' layout, and no bins.
    const r = await run(['score', '--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^targets .*, one position in \[0, 16\) per row$/m);
    expect(r.stdout).toMatch(/^distribution-focal +\d\.\d{6}   over 0…16, mean over rows$/m);
    expect(r.stdout).not.toMatch(/by bin/);
  });

  it('--poly1: sigmoid-focal and softmax-focal as the library’s Poly-1 losses; bins and threads as without it', async () => {
    const x = floats('logits.npy');
    const labels = ints('labels.npy');
    const base = ['score', '--logits', f('logits.npy'), '--targets', f('labels.npy'), '--poly1', '1.5'];
    const j = await json(base);
    expectReducedClose(j.losses['sigmoid-focal'], sigmoidFocalLoss(x, { labels, numClasses: 6 }, { poly1: 1.5 }).loss, REL, 'sigmoid');
    expectReducedClose(j.losses['softmax-focal'], softmaxFocalLoss(x, labels, { numClasses: 6, poly1: 1.5 }).loss, REL, 'softmax');
    expect(j.options.poly1).toBe(1.5);
    // The focal loss's parts per bin are the Poly-1 loss's: they add up to it.
    expectReducedClose(j.ghm.lossByBin['sigmoid-focal'].reduce((a: number, b: number) => a + b, 0) / 3000, j.losses['sigmoid-focal'], 1e-5, 'by bin');
    const threads = await json([...base, '--threads', '2', '--chunk', '900']);
    expect(threads.ghm.counts).toEqual(j.ghm.counts);
    for (const k of ['sigmoid-focal', 'softmax-focal', 'ghmc']) expectReducedClose(threads.losses[k], j.losses[k], REL, `${k}, 2 threads`);
    threads.ghm.lossByBin['sigmoid-focal'].forEach((v: number, i: number) => expectReducedClose(v, j.ghm.lossByBin['sigmoid-focal'][i], REL, `bin ${i}`));
    const soft = await json(['score', '--logits', f('logits.npy'), '--targets', f('iou.npy'), '--poly1=-0.5', '--alpha', 'none']);
    expectReducedClose(soft.losses['sigmoid-focal'], sigmoidFocalLoss(x, floats('iou.npy'), { alpha: null, poly1: -0.5 }).loss, REL, 'soft targets');
    const table = await run(base);
    expect(table.stdout).toMatch(/^sigmoid-focal +\d\.\d+   α 0\.25, γ 2, poly-1 ε 1\.5, mean over elements$/m);
  });

  it('without --loss naming them: the default losses, the default options, no new keys', async () => {
    const j = await json(['score', '--logits', f('logits.npy'), '--targets', f('labels.npy')]);
    expect(Object.keys(j.losses)).toEqual(['sigmoid-focal', 'ghmc', 'softmax-focal']);
    expect(Object.keys(j.options)).toEqual(['alpha', 'gamma', 'bins', 'momentum', 'reduction', 'avgFactor']);
    expect(j.targets).toBe('class-indices');
  });
});

withNumpy('score: the family’s errors', () => {
  const usage: [string, () => string[], RegExp][] = [
    ['--scores without a loss that reads them', () => ['--logits', f('logits.npy'), '--targets', f('labels.npy'), '--scores', f('scores.npy')], /^focal-ghm: --scores is for --loss quality-focal or varifocal$/],
    ['quality-focal without --scores', () => ['--logits', f('logits.npy'), '--targets', f('labels.npy'), '--loss', 'quality-focal'], /^focal-ghm: --loss quality-focal needs --scores FILE/],
    ['distribution-focal with another loss', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal,ghmc'], /^focal-ghm: --loss distribution-focal takes one target per row .*; score it alone$/],
    ['distribution-focal with --plot', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal', '--plot', '-'], /^focal-ghm: --plot draws the bins of the sigmoid losses; distribution-focal has none$/],
    ['distribution-focal with --avg-factor positives', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal', '--avg-factor', 'positives'], /^focal-ghm: --avg-factor positives: distribution-focal/],
    ['distribution-focal with --targets-kind', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal', '--targets-kind', 'per-logit'], /^focal-ghm: --targets-kind does not apply to distribution-focal/],
    ['β out of range, before any file is read', () => ['--logits', 'nope.npy', '--targets', 'b', '--loss', 'quality-focal', '--scores', 's', '--beta', '40'], /^focal-ghm: --beta must be in \[0, 32\], got 40/],
    ['--poly1 not a number', () => ['--logits', 'a', '--targets', 'b', '--poly1', 'x'], /^focal-ghm: --poly1 must be a number, got 'x'$/],
    ['--vfl-alpha not a number', () => ['--logits', 'a', '--targets', 'b', '--vfl-alpha', ''], /^focal-ghm: --vfl-alpha must be a number, got ''$/],
    ['an unknown loss lists the family', () => ['--logits', 'a', '--targets', 'b', '--loss', 'qfl'], /^focal-ghm: --loss: unknown loss 'qfl' \(sigmoid-focal, ghmc, softmax-focal, quality-focal, varifocal, distribution-focal\)$/],
  ];
  for (const [what, args, message] of usage) {
    it(`usage: ${what} (exit 2, one line)`, async () => {
      const r = await run(['score', ...args()]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
    });
  }

  const data: [string, () => string[], RegExp][] = [
    ['a score out of range', () => ['--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores_bad.npy'), '--loss', 'quality-focal'], /scores_bad\.npy: row 77 is 1\.5; quality scores must be in \[0, 1\]$/],
    ['scores of the wrong length', () => ['--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores_short.npy'), '--loss', 'quality-focal'], /scores_short\.npy: shape \[499\] is not one score per row of targets \[500\]$/],
    ['integer scores', () => ['--logits', f('logits.npy'), '--targets', f('labels_bg.npy'), '--scores', f('scores_int.npy'), '--loss', 'quality-focal'], /scores_int\.npy: scores are int32; expected float16, float32 or float64 in \[0, 1\]$/],
    ['scores beside targets per logit', () => ['--logits', f('logits.npy'), '--targets', f('iou.npy'), '--scores', f('scores.npy'), '--loss', 'quality-focal'], /scores\.npy: --scores go with class-index targets \(one label per row\), but .*iou\.npy holds a target per logit$/],
    ['varifocal with class indices and no scores', () => ['--logits', f('logits.npy'), '--targets', f('labels.npy'), '--loss', 'varifocal'], /^focal-ghm: varifocal: with class-index targets it needs --scores/],
    ['varifocal targets out of range', () => ['--logits', f('logits.npy'), '--targets', f('iou_bad.npy'), '--loss', 'varifocal'], /iou_bad\.npy: element 777 is 1\.5; soft targets must be in \[0, 1\]$/],
    ['a distribution-focal target out of range', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets_bad.npy'), '--loss', 'distribution-focal'], /dfl_targets_bad\.npy: row 33 is 16; distribution-focal targets must be in \[0, 16\) for rows of 17 logits$/],
    ['distribution-focal targets of the wrong shape', () => ['--logits', f('dfl_logits.npy'), '--targets', f('dfl_targets_wrong.npy'), '--loss', 'distribution-focal'], /dfl_targets_wrong\.npy: shape \[399\] is not one target per row of logits \[400, 17\] \(expected \[400\]\)$/],
    ['distribution-focal over one logit', () => ['--logits', f('dfl_logits_1.npy'), '--targets', f('dfl_targets.npy'), '--loss', 'distribution-focal'], /dfl_logits_1\.npy: rows of 1 logit; distribution-focal needs rows of n \+ 1 ≥ 2 logits/],
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
