// Pairs a logits file with a targets file: which layout the targets have (one per logit, one
// class index per row of logits [N, C], or one position per row for distribution-focal), and
// reads them in pieces of whole rows, with the quality scores of --scores when given.

import type { FileHandle } from 'node:fs/promises';
import { DataError, isFloat, isInteger, openForReading, readElements, type ArrayFile } from './npy.js';

export interface Inputs {
  logits: ArrayFile;
  targets: ArrayFile;
  /**
   * 'dense': a target per logit (0/1 or soft); 'labels': a class index per row, `classes` =
   * background; 'positions': a number in [0, classes - 1) per row (distribution-focal's targets).
   */
  mode: 'dense' | 'labels' | 'positions';
  rows: number;
  /** Logits per row: the last axis, or `--num-classes`. */
  classes: number;
  /** Quality scores in [0, 1], one per row (`--scores`, with class indices). */
  scores?: ArrayFile | undefined;
}

const shapeText = (s: number[]): string => `[${s.join(', ')}]`;

/** `--targets-kind`'s, and 'per-row': one number per row (distribution-focal's targets). */
export type TargetsKind = 'per-logit' | 'class-indices' | 'per-row';

const squeeze = (s: number[]): number[] => s.filter((d) => d !== 1);
const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Which targets these are. Per-logit: the logits' shape (axes of length 1 aside). Class indices:
 * integers, the logits' shape without the class axis. Logits [N, 1] with integer targets [N] are
 * both (mmdetection's one-class labels, 0 = object and 1 = background, or 0/1 targets), so
 * `kind` must say which. A raw file given no shape matches by size alone.
 */
export function pairInputs(logits: ArrayFile, targets: ArrayFile, numClasses: number | undefined, kind?: TargetsKind): Inputs {
  if (!isFloat(logits.dtype)) throw new DataError(`${logits.path}: logits are ${logits.dtype}; expected float16, float32 or float64`);
  let classes: number;
  let rowShape: number[];
  if (numClasses !== undefined) {
    const last = logits.shape.length >= 2 ? logits.shape[logits.shape.length - 1]! : undefined;
    if (last !== undefined && last !== numClasses) {
      throw new DataError(`${logits.path}: shape ${shapeText(logits.shape)} has ${last} classes on its last axis, but --num-classes is ${numClasses}`);
    }
    if (logits.size % numClasses !== 0) throw new DataError(`${logits.path}: ${logits.size} logits are not whole rows of --num-classes ${numClasses}`);
    classes = numClasses;
    rowShape = last !== undefined ? logits.shape.slice(0, -1) : [logits.size / numClasses];
  } else {
    classes = logits.shape.length >= 2 ? logits.shape[logits.shape.length - 1]! : 1;
    rowShape = logits.shape.length >= 2 ? logits.shape.slice(0, -1) : logits.shape;
  }
  const rows = classes === 0 ? 0 : logits.size / classes;
  const unknown = !targets.shapeKnown || !logits.shapeKnown;
  const perLogit = unknown ? targets.size === logits.size : sameShape(squeeze(targets.shape), squeeze(logits.shape));
  const indices = isInteger(targets.dtype) && (unknown ? targets.size === rows : sameShape(targets.shape, rowShape) || sameShape(squeeze(targets.shape), squeeze(rowShape)));
  const expected =
    `expected ${shapeText(logits.shape)} (a target per logit) or ${shapeText(rowShape)} of integer class indices` +
    (logits.shape.length < 2 && numClasses === undefined ? ' (give --num-classes for flat logits)' : '');
  if (kind === 'per-row') {
    const perRow = unknown ? targets.size === rows : sameShape(targets.shape, rowShape) || sameShape(squeeze(targets.shape), squeeze(rowShape));
    if (!perRow) throw new DataError(`${targets.path}: shape ${shapeText(targets.shape)} is not one target per row of logits ${shapeText(logits.shape)} (expected ${shapeText(rowShape)})`);
    if (classes < 2) throw new DataError(`${logits.path}: rows of ${classes} logit; distribution-focal needs rows of n + 1 ≥ 2 logits (a distribution over 0…n)`);
    return { logits, targets, mode: 'positions', rows, classes };
  }
  if (kind === 'per-logit') {
    if (!perLogit) throw new DataError(`${targets.path}: shape ${shapeText(targets.shape)} is not a target per logit of ${shapeText(logits.shape)}`);
    return { logits, targets, mode: 'dense', rows, classes };
  }
  if (kind === 'class-indices') {
    if (!indices) {
      const why = isInteger(targets.dtype) ? `shape ${shapeText(targets.shape)}` : `dtype ${targets.dtype}`;
      throw new DataError(`${targets.path}: ${why} is not class indices for logits ${shapeText(logits.shape)} (expected integers of shape ${shapeText(rowShape)})`);
    }
    return { logits, targets, mode: 'labels', rows, classes };
  }
  if (perLogit && indices && classes === 1) {
    throw new DataError(
      `${targets.path}: integer targets ${shapeText(targets.shape)} for logits ${shapeText(logits.shape)} are either class indices of one class ` +
        `(mmdetection: 0 = object, 1 = background) or 0/1 targets (1 = positive): say which with --targets-kind class-indices or per-logit`,
    );
  }
  if (indices && classes > 1) return { logits, targets, mode: 'labels', rows, classes };
  if (perLogit) return { logits, targets, mode: 'dense', rows, classes };
  if (!isInteger(targets.dtype) && (sameShape(targets.shape, rowShape) || (unknown && targets.size === rows))) {
    throw new DataError(`${targets.path}: ${targets.dtype} targets of shape ${shapeText(targets.shape)} look like class indices, which must be integers; ${expected}`);
  }
  throw new DataError(`${targets.path}: shape ${shapeText(targets.shape)} does not fit logits ${shapeText(logits.shape)}: ${expected}`);
}

/** Quality scores (`--scores`) beside class-index targets: float, one per row. */
export function pairScores(inputs: Inputs, scores: ArrayFile): Inputs {
  if (inputs.mode !== 'labels') {
    throw new DataError(`${scores.path}: --scores go with class-index targets (one label per row), but ${inputs.targets.path} holds ${inputs.mode === 'dense' ? 'a target per logit' : 'positions'}`);
  }
  if (!isFloat(scores.dtype)) throw new DataError(`${scores.path}: scores are ${scores.dtype}; expected float16, float32 or float64 in [0, 1]`);
  if (scores.size !== inputs.rows || (scores.shapeKnown && inputs.targets.shapeKnown && !sameShape(squeeze(scores.shape), squeeze(inputs.targets.shape)))) {
    throw new DataError(`${scores.path}: shape ${shapeText(scores.shape)} is not one score per row of targets ${shapeText(inputs.targets.shape)}`);
  }
  return { ...inputs, scores };
}

/** Targets as the library takes them; positions (mode 'positions') are a `Float32Array` of one per row. */
export type ChunkTargets = Uint8Array | Float32Array | { labels: Int32Array; numClasses: number };

export interface Chunk {
  /** First row, and rows in this piece. */
  row: number;
  rowCount: number;
  logits: Float32Array;
  targets: ChunkTargets;
  /** The rows' quality scores, with `--scores`. */
  scores?: Float32Array | undefined;
}

/**
 * Pieces of whole rows, about `elements` logits each, read one ahead of the caller (the next
 * piece's read overlaps the caller's work on this one). Dense targets are checked here, with the
 * element's index in the file: 0/1 for integers and booleans, [0, 1] for floats.
 */
export async function* readChunks(inputs: Inputs, elements: number): AsyncGenerator<Chunk> {
  const { logits, targets, classes, rows } = inputs;
  const perChunk = Math.max(1, Math.floor(elements / Math.max(classes, 1)));
  const lf = await openForReading(logits);
  let tf: FileHandle | undefined;
  let sf: FileHandle | undefined;
  try {
    tf = await openForReading(targets);
    if (inputs.scores) sf = await openForReading(inputs.scores);
    const read = (row: number): Promise<Chunk> => readChunk(inputs, lf, tf!, sf, row, Math.min(perChunk, rows - row));
    let next = rows > 0 ? read(0) : undefined;
    for (let row = 0; next !== undefined; row += perChunk) {
      const chunk = await next;
      next = row + perChunk < rows ? read(row + perChunk) : undefined;
      // A rejected read-ahead is awaited (and thrown) on the next turn; mark it handled meanwhile.
      next?.catch(() => undefined);
      yield chunk;
    }
  } finally {
    await lf.close();
    await tf?.close();
    await sf?.close();
  }
}

async function readChunk(inputs: Inputs, lf: FileHandle, tf: FileHandle, sf: FileHandle | undefined, row: number, rowCount: number): Promise<Chunk> {
  const { logits, targets, classes, mode, scores } = inputs;
  const perLogit = mode === 'dense';
  const [x, t, s] = await Promise.all([
    readElements(lf, logits, row * classes, rowCount * classes),
    perLogit ? readElements(tf, targets, row * classes, rowCount * classes) : readElements(tf, targets, row, rowCount),
    sf && scores ? readElements(sf, scores, row, rowCount) : undefined,
  ]);
  const first = perLogit ? row * classes : row;
  const chunk: Chunk = {
    row,
    rowCount,
    logits: x as Float32Array,
    targets: mode === 'labels' ? { labels: toLabels(targets, t, first, classes), numClasses: classes } : mode === 'positions' ? toPositions(targets, t, row, classes - 1) : toDense(targets, t, first),
  };
  if (s) chunk.scores = toScores(scores!, s as Float32Array, row);
  return chunk;
}

/** distribution-focal's targets: numbers in [0, n). */
function toPositions(a: ArrayFile, t: Uint8Array | Float32Array | Int32Array, first: number, n: number): Float32Array {
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (!(v >= 0 && v < n)) throw new DataError(`${a.path}: row ${first + i} is ${v}; distribution-focal targets must be in [0, ${n}) for rows of ${n + 1} logits`);
  }
  return t instanceof Float32Array ? t : Float32Array.from(t);
}

function toScores(a: ArrayFile, s: Float32Array, first: number): Float32Array {
  for (let i = 0; i < s.length; i++) {
    const v = s[i]!;
    if (!(v >= 0 && v <= 1)) throw new DataError(`${a.path}: row ${first + i} is ${v}; quality scores must be in [0, 1]`);
  }
  return s;
}

function toDense(a: ArrayFile, t: Uint8Array | Float32Array | Int32Array, first: number): Uint8Array | Float32Array {
  if (t instanceof Float32Array) {
    for (let i = 0; i < t.length; i++) {
      const v = t[i]!;
      if (!(v >= 0 && v <= 1)) throw new DataError(`${a.path}: element ${first + i} is ${v}; soft targets must be in [0, 1]`);
    }
    return t;
  }
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (v !== 0 && v !== 1) throw new DataError(`${a.path}: element ${first + i} is ${v}; integer targets per logit must be 0 or 1`);
  }
  return t instanceof Uint8Array ? t : Uint8Array.from(t);
}

function toLabels(a: ArrayFile, t: Uint8Array | Float32Array | Int32Array, first: number, classes: number): Int32Array {
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (!(v >= 0 && v <= classes)) throw new DataError(`${a.path}: label ${v} at row ${first + i} is outside [0, ${classes}] (${classes} = background)`);
  }
  return t instanceof Int32Array ? t : Int32Array.from(t);
}

/** What a pass over the targets alone tells (and checks, before the long pass over the logits). */
export interface TargetScan {
  /** Elements with target ≥ 0.5: per-logit targets ≥ 0.5, or (class indices) rows not background. */
  positives: number;
  /** Class indices only: whether any row is background (label = classes). */
  background: boolean;
}

/** Reads only the targets, in pieces of about `elements`, checking each value. */
export async function scanTargets(inputs: Inputs, elements: number): Promise<TargetScan> {
  const { targets, classes, mode } = inputs;
  const fh = await openForReading(targets);
  let positives = 0;
  let background = false;
  try {
    for (let first = 0; first < targets.size; first += elements) {
      const raw = await readElements(fh, targets, first, Math.min(elements, targets.size - first));
      if (mode === 'labels') {
        const t = toLabels(targets, raw, first, classes);
        for (let i = 0; i < t.length; i++) {
          if (t[i]! < classes) positives++;
          else background = true;
        }
      } else {
        const t = toDense(targets, raw, first);
        for (let i = 0; i < t.length; i++) if (t[i]! >= 0.5) positives++;
      }
    }
    return { positives, background };
  } finally {
    await fh.close();
  }
}
