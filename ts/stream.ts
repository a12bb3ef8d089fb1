// Streams: a batch that arrives in pieces is scored as one batch. Each push runs the kernels on
// that piece (in bounded chunks, like any call) and keeps only sums, so memory does not grow
// with the stream; finish() turns the sums into the loss of the whole batch.

import { describeValue, expectArray, expectFinite, expectInRange, expectOneOf, expectOptions, expectPositive } from './errors';
import { alphaOf, countPosNeg, resolveGamma, resolvePoly1, SIGMOID_INPUTS, sigmoidPass, type SigmoidFocalOptions } from './focal';
import { getExtras } from './loader';
import { GHMC, GHMR, type GHMStreamResult } from './ghm';
import { layoutTargets, layoutWeights, softLayout, type Targets } from './inputs';
import { workspace } from './workspace';

/** What {@link SigmoidFocalStream.finish} gives. */
export interface SigmoidFocalStreamResult {
  /** The loss of the whole stream (reduced: streams have no `'none'`). */
  loss: number;
  /** The α used: the option's value, or what `'auto'` resolved to over the whole stream; `null` when disabled. */
  alpha: number | null;
  /** Elements pushed. */
  length: number;
}

export interface SigmoidFocalStream {
  /** Adds a piece of the batch (any length, including 0). Throws on bad input, keeping the sums so far. */
  push(logits: Float32Array, targets: Targets, weight?: Float32Array): void;
  /** Elements pushed so far. */
  readonly length: number;
  /** The loss of everything pushed, as one `sigmoidFocalLoss` call over it all would give. */
  finish(): SigmoidFocalStreamResult;
}

/** Options of {@link sigmoidFocalStream}: those of {@link SigmoidFocalOptions} that apply to a stream. */
// The class options (classWeight, posWeight, shape/classAxis) are options of the call only: a
// stream refuses them at run time, so its type leaves them out too.
export type SigmoidFocalStreamOptions = Omit<SigmoidFocalOptions, 'grad' | 'out' | 'weight' | 'reduction' | 'classWeight' | 'posWeight' | 'shape' | 'classAxis'> & {
  /** Default `'mean'`. */
  reduction?: 'mean' | 'sum';
};

const STREAM_OPTIONS = ['alpha', 'gamma', 'reduction', 'avgFactor', 'lossWeight', 'input', 'labelSmoothing', 'poly1'] as const;

/**
 * A stream of the sigmoid focal loss: push pieces, then `finish()`. Reductions `'mean'` and
 * `'sum'`; α `'auto'` works too (the loss is kept as separate positive and negative sums and
 * combined with the α of the whole stream at the end).
 *
 * @example
 * ```ts
 * const s = sigmoidFocalLoss.stream({ gamma: 2, alpha: 0.25 });
 * for await (const { logits, targets } of pieces) s.push(logits, targets);
 * const { loss } = s.finish();
 * ```
 */
export function sigmoidFocalStream(options?: SigmoidFocalStreamOptions): SigmoidFocalStream {
  const fn = 'sigmoidFocalLoss.stream';
  workspace(fn);
  const o = expectOptions(fn, options, STREAM_OPTIONS);
  const probs = o.input !== undefined && expectOneOf(fn, 'options.input', o.input, SIGMOID_INPUTS) === 'probabilities';
  const smoothing = o.labelSmoothing === undefined ? 0 : expectInRange(fn, 'options.labelSmoothing', o.labelSmoothing, 0, 1);
  const alphaOpt = o.alpha === undefined ? 0.25 : o.alpha;
  if (alphaOpt !== null && alphaOpt !== 'auto') expectInRange(fn, 'options.alpha', alphaOpt, 0, 1);
  const gamma = resolveGamma(fn, o.gamma);
  const poly1 = o.poly1 === undefined ? 0 : resolvePoly1(fn, o.poly1, probs ? "options.input 'probabilities'" : undefined);
  if (poly1 !== 0) getExtras(fn);
  const reduce = streamReduction(fn, o);
  // Σ aw·rest = α·Σ t·rest + (1-α)·Σ (1-t)·rest: two sums cover every α, including 'auto'.
  // (Poly-1's term carries no α: each of the two sums holds it once, and α + (1 − α) = 1.)
  const split = alphaOpt === 'auto';
  let sumPos = 0;
  let sumNeg = 0;
  let sum = 0;
  let pos = 0;
  let neg = 0;
  let length = 0;
  let done = false;
  return {
    push(logits, targets, weight) {
      const pfn = `${fn}.push`;
      if (done) throw new Error(`${pfn}: the stream has finished`);
      const ws = workspace(pfn);
      const x = expectArray(pfn, 'logits', logits, Float32Array);
      let lay = layoutTargets(pfn, x.length, targets);
      let { wkind, input: w } = layoutWeights(pfn, 'weight', weight, lay);
      // As in the call (parseSigmoidCall): probabilities and smoothed targets go as soft floats.
      if (probs || smoothing > 0) ({ lay, wkind, w } = softLayout(pfn, 'targets', lay, wkind, w, smoothing));
      // All passes first, state after: a throwing push leaves the sums as they were.
      if (split) {
        const sp = sigmoidPass(ws, pfn, x, lay, wkind, w, 1, 0, gamma, undefined, 1, undefined, 1, probs, poly1);
        const sn = sigmoidPass(ws, pfn, x, lay, wkind, w, 0, 1, gamma, undefined, 1, undefined, 1, probs, poly1);
        const [p, f] = countPosNeg(ws, lay, wkind, w);
        sumPos += sp;
        sumNeg += sn;
        pos += p;
        neg += f;
      } else {
        const a = alphaOpt as number | null;
        sum += sigmoidPass(ws, pfn, x, lay, wkind, w, a === null ? 1 : a, a === null ? 1 : 1 - a, gamma, undefined, 1, undefined, 1, probs, poly1);
      }
      length += x.length;
    },
    get length() {
      return length;
    },
    finish() {
      if (done) throw new Error(`${fn}.finish: the stream has already finished`);
      done = true;
      let alpha: number | null = alphaOpt as number | null;
      let total = sum;
      if (split) {
        alpha = alphaOf(pos, neg);
        total = alpha * sumPos + (1 - alpha) * sumNeg;
      }
      return { loss: reduce(total, length), alpha, length };
    },
  };
}

/**
 * A stream's reduction options (`reduction` 'mean' or 'sum', `avgFactor`, `lossWeight`), checked
 * when the stream is made; gives the loss of a finished stream from its Σ and length.
 */
export function streamReduction(fn: string, o: { reduction?: unknown; lossWeight?: unknown; avgFactor?: unknown }): (sum: number, length: number) => number {
  const reduction = expectOneOf(fn, 'options.reduction', o.reduction ?? 'mean', ['mean', 'sum'] as const);
  const lossWeight = expectFinite(fn, 'options.lossWeight', o.lossWeight ?? 1);
  const avgFactor = o.avgFactor === undefined ? undefined : expectPositive(fn, 'options.avgFactor', o.avgFactor);
  if (avgFactor !== undefined && reduction === 'sum') throw new RangeError(`${fn}: options.avgFactor cannot be used with reduction 'sum'`);
  return (sum, length) => (lossWeight * sum) / (reduction === 'mean' ? (avgFactor ?? length) : 1);
}

/** One piece of a scored stream. */
export interface StreamChunk {
  logits: Float32Array;
  targets: Targets | Float32Array;
  weight?: Float32Array;
}

/** The losses {@link scoreStream} can compute. */
export type ScoreLoss = 'sigmoidFocal' | GHMC | GHMR;

export interface ScoreSpec<L extends ScoreLoss = ScoreLoss> {
  /** `'sigmoidFocal'` (with its options below), or a GHMC/GHMR object (one EMA step for the stream). */
  loss: L;
  options?: SigmoidFocalStreamOptions;
  /** Called after each piece with the running totals. */
  onProgress?: (p: { chunks: number; elements: number }) => void;
}

/**
 * What {@link scoreStream} resolves to; `ghm` (the finished GHM stream, for gradients) is there
 * when `spec.loss` is a GHMC or GHMR, and absent for `'sigmoidFocal'`.
 */
export type ScoreResult<L extends ScoreLoss = ScoreLoss> = {
  loss: number;
  /** Elements scored. */
  elements: number;
  /** Pieces scored. */
  chunks: number;
} & (L extends 'sigmoidFocal'
  ? { ghm?: undefined }
  : {
      /** The finished GHM stream: its statistics, step, and `gradient(piece)`. */
      ghm: GHMStreamResult;
    });

/**
 * The part of a WHATWG `ReadableStream` that {@link scoreStream} reads, declared here so that the
 * types need no DOM or Node typings: pass a `ReadableStream` (a real one: other objects of this
 * shape are not read).
 */
export interface ReadableStreamLike<T> {
  getReader(): {
    read(): Promise<{ done: false; value: T } | { done: true; value?: unknown }>;
    releaseLock(): void;
  };
}

/**
 * Scores a stream of pieces (an iterable, an async iterable or a WHATWG `ReadableStream`) as one
 * batch. With a GHMC or GHMR as `spec.loss`, the result has `ghm`, the finished GHM stream.
 *
 * @example
 * ```ts
 * const { loss, elements } = await scoreStream(readPieces(), {
 *   loss: 'sigmoidFocal', options: { gamma: 2 }, onProgress: ({ elements }) => console.log(elements),
 * });
 * const { ghm } = await scoreStream(readPieces(), { loss: ghmc });
 * const gradA = ghm.gradient(logitsA, targetsA);
 * ```
 */
export function scoreStream<L extends ScoreLoss = ScoreLoss>(
  source: AsyncIterable<StreamChunk> | Iterable<StreamChunk> | ReadableStreamLike<StreamChunk>,
  spec: ScoreSpec<L>,
): Promise<ScoreResult<L>>;
export async function scoreStream(
  source: AsyncIterable<StreamChunk> | Iterable<StreamChunk> | ReadableStreamLike<StreamChunk>,
  spec: ScoreSpec,
): Promise<ScoreResult> {
  const fn = 'scoreStream';
  const s = expectOptions(fn, spec, ['loss', 'options', 'onProgress'] as const, 'spec');
  if (spec === undefined) throw new TypeError(`${fn}: spec must be an object, got undefined`);
  const isGhm = s.loss instanceof GHMC || s.loss instanceof GHMR;
  if (s.loss !== 'sigmoidFocal' && !isGhm) throw new TypeError(`${fn}: spec.loss must be 'sigmoidFocal', a GHMC or a GHMR, got ${describeValue(s.loss)}`);
  // A GHM loss takes its options from its constructor: options here would be silently unused.
  if (isGhm && s.options !== undefined) throw new TypeError(`${fn}: spec.options is for 'sigmoidFocal'; a ${describeValue(s.loss)} has its options from its constructor`);
  if (s.onProgress !== undefined && typeof s.onProgress !== 'function') throw new TypeError(`${fn}: spec.onProgress must be a function, got ${describeValue(s.onProgress)}`);
  if (!isIterable(source)) {
    throw new TypeError(`${fn}: source must be an iterable, an async iterable or a ReadableStream of { logits, targets, weight? }, got ${describeValue(source)}`);
  }
  const focal = s.loss === 'sigmoidFocal' ? sigmoidFocalStream(s.options as SigmoidFocalStreamOptions | undefined) : undefined;
  const ghm = isGhm ? (s.loss as GHMC | GHMR).stream() : undefined;
  let chunks = 0;
  let elements = 0;
  for await (const c of iterate(source)) {
    if (typeof c !== 'object' || c === null) throw new TypeError(`${fn}: chunk ${chunks} must be { logits, targets, weight? }`);
    if (focal) focal.push(c.logits, c.targets as Targets, c.weight);
    else ghm!.push(c.logits, c.targets, c.weight);
    chunks++;
    elements += c.logits.length;
    spec.onProgress?.({ chunks, elements });
  }
  if (focal) return { loss: focal.finish().loss, elements, chunks };
  const r = ghm!.finish();
  return { loss: r.loss, elements, chunks, ghm: r };
}

function isIterable(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<symbol | string, unknown>;
  return typeof o[Symbol.asyncIterator] === 'function' || typeof o[Symbol.iterator] === 'function' || (typeof ReadableStream !== 'undefined' && v instanceof ReadableStream);
}

async function* iterate<T>(source: AsyncIterable<T> | Iterable<T> | ReadableStreamLike<T>): AsyncGenerator<T> {
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) {
    // Not every engine makes ReadableStream async-iterable (Safari); the reader works everywhere.
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    yield* source as AsyncIterable<T>;
  }
}
