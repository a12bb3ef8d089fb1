// The command line: parses arguments (node:util parseArgs), runs a subcommand, and turns every
// expected failure into one line on stderr and an exit code (2: usage, 1: data), never a stack.

import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { init, GHMC, qualityFocalLoss, sigmoidFocalLoss } from 'focal-ghm';
import { pairInputs, pairScores } from './inputs.js';
import { DataError, DTYPE_NAMES, openArray, parseDType, type DType } from './npy.js';
import { renderPng, renderSvg } from './plots.js';
import { figureSpec } from './specs.js';
import { startProgress } from './progress.js';
import { terminalPlot, toJson, toTable } from './report.js';
import { SAMPLE_DEFAULTS, writeSample } from './sample.js';
import { EXTRAS_LOSSES, LOSSES, score, ScoreError, type LossName, type ScoreOptions } from './score.js';

/** The largest --chunk: 2^26 logits, a few hundred MB of pieces and outputs in flight. */
const MAX_CHUNK = 1 << 26;

/** Injected by cli/tsup.config.ts from cli/package.json. */
declare const __CLI_VERSION__: string;
const VERSION = typeof __CLI_VERSION__ === 'string' ? __CLI_VERSION__ : 'dev';

/** A plot's folder must exist before the pass (not discovered after minutes of scoring). */
async function expectWritableDir(file: string): Promise<void> {
  const dir = dirname(resolve(file));
  try {
    await access(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--plot ${file}: ${code === 'ENOENT' ? `the folder ${dir} does not exist` : `cannot write in ${dir} (${code ?? (e as Error).message})`}`);
  }
}

async function availableCores(): Promise<number> {
  const os = await import('node:os');
  return os.availableParallelism?.() ?? os.cpus().length;
}

/** Bad arguments (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `focal-ghm: focal and GHM losses of a model's saved outputs

usage:
  focal-ghm score --logits L.npy --targets T.npy [options]
  focal-ghm sample DIR        write a detector-like batch (100k anchors × 80 classes) to try it on

score options:
  --logits FILE         logits: .npy (float16/32/64), or raw little-endian with --dtype/--shape
  --targets FILE        a target per logit (bool/uint8 0/1, or float soft targets in [0, 1]),
                        or integer class indices [N] for logits [N, C] (C = background)
  --num-classes C       classes per row, for flat logits (default: the logits' last axis)
  --loss LIST           comma-separated: sigmoid-focal, ghmc, softmax-focal (default: all
                        that the inputs allow); only when named: quality-focal (class indices
                        and --scores), varifocal (IoU-aware scores per logit, or class indices
                        and --scores), distribution-focal (logits [N, n+1], targets [N] in
                        [0, n); alone)
  --scores FILE         quality scores (e.g. IoU) in [0, 1], one per row beside class indices
  --alpha A             α in [0, 1], or none (default 0.25)
  --gamma G             γ in [0, 32] (default 2; varifocal's too)
  --poly1 EPS           Poly-1 ε added to sigmoid-focal and softmax-focal (default 0)
  --beta B              quality-focal's β in [0, 32] (default 2)
  --vfl-alpha A         varifocal's weight of negatives (default 0.75)
  --bins B              GHM-C bins (default 30)
  --momentum M          GHM-C EMA momentum in [0, 1) (default 0)
  --reduction R         mean or sum (default mean)
  --avg-factor F        the focal losses' mean divides by F instead of the count; positives:
                        by the number of positives (RetinaNet, mmdetection's avg_factor)
  --threads N           worker threads for the elementwise passes (default 1)
  --json                one JSON object on stdout instead of the table
  --plot FILE           the figure as .svg or .png, or - for a terminal sketch (on stderr
                        with --json); repeatable
  --dtype T, --shape S  raw logits: dtype (${DTYPE_NAMES}; or f4, u1, …) and shape (e.g. 1000,80)
  --targets-dtype T, --targets-shape S   the same for raw targets
  --targets-kind K      per-logit or class-indices, where the shapes leave it open (logits
                        [N, 1] with integer targets [N])
  --chunk N             logits read per piece (default 1048576); memory stays bounded by it

focal-ghm sample DIR [--anchors 100000] [--classes 80] [--seed 42]

exit codes: 0 done, 1 bad data (files, shapes, values), 2 bad usage`;

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress bars only there). */
  stderrIsTTY: boolean;
}

export async function main(argv: string[], io: Io): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === '--help' || command === '-h' || command === 'help' || (rest.some((a) => a === '--help' || a === '-h') && ['score', 'sample'].includes(command!))) {
      io.stdout(USAGE);
      return 0;
    }
    if (command === '--version' || command === '-v') {
      io.stdout(VERSION);
      return 0;
    }
    if (command === undefined) {
      io.stderr(USAGE);
      return 2;
    }
    if (command === 'score') return await scoreCommand(rest, io);
    if (command === 'sample') return await sampleCommand(rest, io);
    throw new UsageError(`unknown command '${command}' (commands: score, sample; --help for usage)`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`focal-ghm: ${e.message}`);
      return 2;
    }
    if (e instanceof DataError || e instanceof ScoreError) {
      io.stderr(`focal-ghm: ${e.message}`);
      return 1;
    }
    // The library's own errors (TypeError/RangeError naming the argument) and anything else: one
    // line; FOCAL_GHM_DEBUG=1 shows the stack.
    io.stderr(`focal-ghm: ${process.env.FOCAL_GHM_DEBUG ? (e as Error).stack : (e as Error).message ?? String(e)}`);
    return 1;
  }
}

function parse(args: string[], options: NonNullable<Parameters<typeof parseArgs>[0]>['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs explains over several lines; one is enough (plus the fix for values starting with -).
    const first = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    throw new UsageError(/ambiguous/.test(first) ? `${first} (values starting with - go as --option=-1)` : first);
  }
}

function numberArg(name: string, v: unknown, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'a whole number' : 'a number'}, got '${String(v)}'`);
  }
  return n;
}

function shapeArg(name: string, v: unknown): number[] | undefined {
  if (v === undefined) return undefined;
  const dims = String(v).split(/[,x×]/).map((s) => s.trim());
  if (dims.some((d) => !/^\d+$/.test(d))) throw new UsageError(`--${name} must be sizes separated by commas (e.g. 1000,80), got '${String(v)}'`);
  return dims.map(Number);
}

function dtypeArg(name: string, v: unknown): DType | undefined {
  if (v === undefined) return undefined;
  const d = parseDType(String(v));
  if (d === undefined) throw new UsageError(`--${name} '${String(v)}' is not a dtype (${DTYPE_NAMES})`);
  return d;
}

async function scoreCommand(args: string[], io: Io): Promise<number> {
  const { values: v, positionals } = parse(args, {
    logits: { type: 'string' },
    targets: { type: 'string' },
    'num-classes': { type: 'string' },
    loss: { type: 'string' },
    alpha: { type: 'string' },
    gamma: { type: 'string' },
    bins: { type: 'string' },
    momentum: { type: 'string' },
    reduction: { type: 'string' },
    'avg-factor': { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
    plot: { type: 'string', multiple: true },
    dtype: { type: 'string' },
    shape: { type: 'string' },
    'targets-dtype': { type: 'string' },
    'targets-shape': { type: 'string' },
    'targets-kind': { type: 'string' },
    chunk: { type: 'string' },
    scores: { type: 'string' },
    poly1: { type: 'string' },
    beta: { type: 'string' },
    'vfl-alpha': { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`score takes no positional arguments, got '${positionals[0]}' (--help for usage)`);
  if (typeof v.logits !== 'string') throw new UsageError('score needs --logits FILE');
  if (typeof v.targets !== 'string') throw new UsageError('score needs --targets FILE');
  const losses =
    v.loss === undefined
      ? undefined
      : String(v.loss)
          .split(',')
          .map((s) => s.trim())
          .map((s) => {
            if (!(LOSSES as readonly string[]).includes(s)) throw new UsageError(`--loss: unknown loss '${s}' (${LOSSES.join(', ')})`);
            return s as LossName;
          });
  const reduction = v.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') throw new UsageError(`--reduction must be mean or sum, got '${String(reduction)}'`);
  const plots = (v.plot ?? []) as string[];
  for (const p of plots) {
    if (p !== '-' && !['.svg', '.png'].includes(extname(p).toLowerCase())) throw new UsageError(`--plot ${p}: give a .svg or .png file, or - for the terminal`);
  }
  const options: ScoreOptions = {
    losses,
    alpha: v.alpha === 'none' ? null : numberArg('alpha', v.alpha, 0.25),
    gamma: numberArg('gamma', v.gamma, 2),
    poly1: numberArg('poly1', v.poly1, 0),
    beta: numberArg('beta', v.beta, 2),
    vflAlpha: numberArg('vfl-alpha', v['vfl-alpha'], 0.75),
    bins: numberArg('bins', v.bins, 30, true),
    momentum: numberArg('momentum', v.momentum, 0),
    reduction,
    avgFactor: v['avg-factor'] === 'positives' ? 'positives' : v['avg-factor'] === undefined ? undefined : numberArg('avg-factor', v['avg-factor'], 0),
    threads: numberArg('threads', v.threads, 1, true),
    chunkElements: numberArg('chunk', v.chunk, 1 << 20, true),
  };
  if (options.threads < 1 || options.threads > 64) throw new UsageError(`--threads must be in [1, 64], got ${options.threads}`);
  if (options.chunkElements < 1 || options.chunkElements > MAX_CHUNK) throw new UsageError(`--chunk must be in [1, ${MAX_CHUNK}] (memory grows with it), got ${options.chunkElements}`);
  const numClasses = v['num-classes'] === undefined ? undefined : numberArg('num-classes', v['num-classes'], 0, true);
  if (numClasses !== undefined && numClasses < 1) throw new UsageError(`--num-classes must be at least 1, got ${numClasses}`);

  const named = (l: LossName): boolean => losses?.includes(l) ?? false;
  const scoresFile = typeof v.scores === 'string' ? v.scores : undefined;
  if (scoresFile !== undefined && !named('quality-focal') && !named('varifocal')) throw new UsageError('--scores is for --loss quality-focal or varifocal');
  if (named('quality-focal') && scoresFile === undefined) throw new UsageError('--loss quality-focal needs --scores FILE (a quality score in [0, 1] per row, beside class-index targets)');
  const positions = named('distribution-focal');
  if (positions) {
    // Its targets are positions, one per row: none of the other losses reads them.
    if (losses!.length > 1) throw new UsageError('--loss distribution-focal takes one target per row (a position in [0, n)); score it alone');
    if (plots.length > 0) throw new UsageError('--plot draws the bins of the sigmoid losses; distribution-focal has none');
    if (options.avgFactor === 'positives') throw new UsageError('--avg-factor positives: distribution-focal has no negatives to tell apart; give a number');
    if (v['targets-kind'] !== undefined) throw new UsageError('--targets-kind does not apply to distribution-focal (its targets are one per row)');
  }

  // The extras module only when a loss needs it.
  if (losses?.some((l) => (EXTRAS_LOSSES as readonly string[]).includes(l)) || options.poly1 !== 0) {
    const { extras } = await import('focal-ghm/extras');
    await init({ extras });
  } else {
    await init();
  }
  // The library checks the options' ranges (γ, α, bins, momentum, β, ε) with its own messages:
  // ask it before reading any file.
  try {
    const avgFactor = options.avgFactor === 'positives' ? 1 : options.avgFactor;
    sigmoidFocalLoss.stream({ alpha: options.alpha, gamma: options.gamma, reduction: options.reduction, avgFactor, ...(options.poly1 !== 0 ? { poly1: options.poly1 } : {}) });
    new GHMC({ bins: options.bins, momentum: options.momentum });
    if (named('quality-focal')) qualityFocalLoss.stream({ beta: options.beta, reduction: options.reduction, avgFactor });
  } catch (e) {
    throw new UsageError(String((e as Error).message).replace(/^[\w.]+: options\.(\w+)/, (_m, k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`));
  }

  // Every argument is checked before any file is read.
  const rawLogits = { dtype: dtypeArg('dtype', v.dtype), shape: shapeArg('shape', v.shape) };
  const rawTargets = { dtype: dtypeArg('targets-dtype', v['targets-dtype']), shape: shapeArg('targets-shape', v['targets-shape']) };
  const kind = v['targets-kind'];
  if (kind !== undefined && kind !== 'per-logit' && kind !== 'class-indices') throw new UsageError(`--targets-kind must be per-logit or class-indices, got '${String(kind)}'`);
  for (const p of plots) if (p !== '-') await expectWritableDir(p);
  const cores = await availableCores();
  if (options.threads > cores) io.stderr(`focal-ghm: --threads ${options.threads} on ${cores} cores: more threads than cores only adds overhead`);

  const logits = await openArray(v.logits, rawLogits);
  const targets = await openArray(v.targets, rawTargets);
  let inputs = pairInputs(logits, targets, numClasses, positions ? 'per-row' : kind);
  if (scoresFile !== undefined) inputs = pairScores(inputs, await openArray(scoresFile));
  const progress = startProgress(io.stderrIsTTY, inputs.rows);
  options.onProgress = progress.update;
  options.onWarning = (m) => io.stderr(`focal-ghm: ${m}`);
  const t0 = performance.now();
  let result;
  try {
    result = await score(inputs, options);
  } finally {
    progress.stop();
  }
  const context = { inputs, options, seconds: (performance.now() - t0) / 1000 };
  io.stdout(v.json ? JSON.stringify(toJson(result, context)) : toTable(result, context));

  const files = plots.filter((p) => p !== '-');
  if (plots.includes('-')) (v.json ? io.stderr : io.stdout)(`\n${terminalPlot(result, context)}`);
  if (files.length > 0) {
    const spec = figureSpec(result, { title: `${basename(logits.path)} · ${basename(targets.path)}`, gamma: options.gamma, alpha: options.alpha });
    const svg = await renderSvg(spec);
    for (const f of files) {
      await writeFile(f, extname(f).toLowerCase() === '.png' ? await renderPng(svg) : svg).catch((e: Error) => {
        throw new DataError(`${f}: cannot write the plot (${e.message})`);
      });
      io.stderr(`focal-ghm: wrote ${f}`);
    }
  }
  return 0;
}

async function sampleCommand(args: string[], io: Io): Promise<number> {
  const { values: v, positionals } = parse(args, { anchors: { type: 'string' }, classes: { type: 'string' }, seed: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('sample needs one directory: focal-ghm sample DIR');
  const o = {
    ...SAMPLE_DEFAULTS,
    anchors: numberArg('anchors', v.anchors, SAMPLE_DEFAULTS.anchors, true),
    classes: numberArg('classes', v.classes, SAMPLE_DEFAULTS.classes, true),
    seed: numberArg('seed', v.seed, SAMPLE_DEFAULTS.seed, true),
  };
  if (o.anchors < 1 || o.classes < 1) throw new UsageError('--anchors and --classes must be at least 1');
  const paths = await writeSample(positionals[0]!, o);
  io.stderr(`focal-ghm: wrote ${paths.logits} (float32 [${o.anchors}, ${o.classes}]) and ${paths.labels} (int64 [${o.anchors}], ${o.classes} = background)`);
  return 0;
}
