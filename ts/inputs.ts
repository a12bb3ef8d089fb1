// Validation and layout of loss inputs: which kernel code a targets/weights argument maps to,
// how it is cut into chunks, and the checks that name the offending argument.

import { describeValue, expectArray, expectInteger, expectLength, expectOptions } from './errors';
import type { ChunkInput } from './memory';

/** Targets of the elementwise losses: binary bytes, soft floats, or one class index per row. */
export type Targets = Uint8Array | Float32Array | ClassTargets;

/** Class-index targets for an `[N, numClasses]` logit matrix: `labels[i]` in `[0, numClasses]`, `numClasses` = background. */
export interface ClassTargets {
  labels: Int32Array;
  numClasses: number;
  /** Rows with this label add nothing to the loss, the gradient or the mean's count (sigmoid focal loss only; outside [0, numClasses]). */
  ignoreIndex?: number;
}

export enum TargetKind {
  Binary = 0,
  Soft = 1,
  Labels = 2,
}

export enum WeightKind {
  None = 0,
  Elements = 1,
  Rows = 2,
}

/** How an elementwise batch is laid out: `units` chunkable units of `perUnit` elements each. */
export interface Layout {
  n: number;
  tkind: TargetKind;
  targets: ChunkInput;
  numClasses: number;
  units: number;
  perUnit: number;
  /** Class indices only, when `ignoreIndex` was given: it, and how many rows have it. */
  ignoreIndex?: number;
  ignored?: number;
}

const CLASS_TARGET_KEYS = ['labels', 'numClasses'] as const;
const CLASS_TARGET_KEYS_IGNORING = ['labels', 'numClasses', 'ignoreIndex'] as const;

export function layoutTargets(fn: string, n: number, targets: unknown, name = 'targets', ignoring = false): Layout {
  if (targets instanceof Uint8Array || targets instanceof Float32Array) {
    const binary = targets instanceof Uint8Array;
    const t = binary ? expectArray(fn, name, targets, Uint8Array) : expectArray(fn, name, targets, Float32Array);
    expectLength(fn, name, t.length, n, 'one target per logit');
    return { n, tkind: binary ? TargetKind.Binary : TargetKind.Soft, targets: { array: t, perUnit: 1 }, numClasses: 1, units: n, perUnit: 1 };
  }
  if (typeof targets === 'object' && targets !== null && !ArrayBuffer.isView(targets) && 'labels' in targets) {
    // Every key checked: `{ labels, numClasses, ignoreIndex }` must not pass for something it is not.
    const t = expectOptions(fn, targets, ignoring ? CLASS_TARGET_KEYS_IGNORING : CLASS_TARGET_KEYS, name);
    const labels = expectArray(fn, `${name}.labels`, t.labels, Int32Array);
    const c = expectInteger(fn, `${name}.numClasses`, t.numClasses, 1);
    if (n % c !== 0) {
      throw new RangeError(`${fn}: ${name}.numClasses (${c}) does not divide the logits length ${n}`);
    }
    const rows = n / c;
    expectLength(fn, `${name}.labels`, labels.length, rows, `one label per row of ${c} logits`);
    const ig = ignoring ? (t as { ignoreIndex?: unknown }).ignoreIndex : undefined;
    if (ig === undefined) {
      checkLabels(fn, `${name}.labels`, labels, 0, c, null);
      return { n, tkind: TargetKind.Labels, targets: { array: labels, perUnit: 1 }, numClasses: c, units: rows, perUnit: c };
    }
    const ignoreIndex = expectInteger(fn, `${name}.ignoreIndex`, ig, -(2 ** 31), 2 ** 31 - 1);
    if (ignoreIndex >= 0 && ignoreIndex <= c) {
      throw new RangeError(`${fn}: ${name}.ignoreIndex is ${ignoreIndex}, a class or the background label; it must be outside [0, ${c}]`);
    }
    checkLabels(fn, `${name}.labels`, labels, 0, c, ignoreIndex);
    let ignored = 0;
    for (let i = 0; i < rows; i++) if (labels[i] === ignoreIndex) ignored++;
    return { n, tkind: TargetKind.Labels, targets: { array: labels, perUnit: 1 }, numClasses: c, units: rows, perUnit: c, ignoreIndex, ignored };
  }
  throw new TypeError(
    `${fn}: ${name} must be a Uint8Array (binary), a Float32Array (soft) or { labels: Int32Array, numClasses }, got ${describeValue(targets)}`,
  );
}

/** Every label in `[lo, hi]`, or equal to `except`. */
export function checkLabels(fn: string, name: string, labels: Int32Array, lo: number, hi: number, except: number | null): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if ((l < lo || l > hi) && l !== except) {
      const also = except === null ? '' : ` or ${except}`;
      throw new RangeError(`${fn}: ${name}[${i}] is ${l}, expected an integer in [${lo}, ${hi}]${also}`);
    }
  }
}

/** Weights per element, or per row with class-index targets. */
export function layoutWeights(fn: string, name: string, w: unknown, lay: Layout): { wkind: WeightKind; input: ChunkInput } {
  if (w === undefined || w === null) return { wkind: WeightKind.None, input: { array: undefined, perUnit: 0 } };
  const a = expectArray(fn, name, w, Float32Array);
  if (a.length === lay.n) return { wkind: WeightKind.Elements, input: { array: a, perUnit: lay.perUnit } };
  if (lay.tkind === TargetKind.Labels && a.length === lay.units) {
    return { wkind: WeightKind.Rows, input: { array: a, perUnit: 1 } };
  }
  const rows = lay.tkind === TargetKind.Labels ? ` or ${lay.units} (one per row)` : '';
  throw new RangeError(`${fn}: ${name} has length ${a.length}, expected ${lay.n} (one per logit)${rows}`);
}

/** Running min/max of targets over chunks, NaN-sticky, and the check that they are in [0, 1]. */
export class TargetRange {
  min = Infinity;
  max = -Infinity;
  nan = false;

  add(info: Float64Array, at: number): void {
    const lo = info[at]!;
    const hi = info[at + 1]!;
    if (Number.isNaN(lo) || Number.isNaN(hi)) this.nan = true;
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
  }

  /** The check of probabilities (`input: 'probabilities'`): in [0, 1], as PyTorch's `binary_cross_entropy` requires. */
  checkProbabilities(fn: string, name: string): void {
    if (this.nan) throw new RangeError(`${fn}: ${name} contains NaN; with options.input 'probabilities' it must be in [0, 1]`);
    if (this.min < 0 || this.max > 1) {
      throw new RangeError(`${fn}: ${name} has values in [${this.min}, ${this.max}]; with options.input 'probabilities' it must be in [0, 1]`);
    }
  }

  check(fn: string, name: string, kind: TargetKind): void {
    if (kind === TargetKind.Labels) return;
    if (this.nan) throw new RangeError(`${fn}: ${name} contains NaN; targets must be in [0, 1]`);
    if (this.min < 0 || this.max > 1) {
      const what = kind === TargetKind.Binary ? 'binary targets must be 0 or 1' : 'soft targets must be in [0, 1]';
      throw new RangeError(`${fn}: ${name} has values in [${this.min}, ${this.max}]; ${what}`);
    }
  }
}

/**
 * The targets as soft floats, smoothed to `t·(1 − ε) + ε/2` (Keras' label smoothing; ε = 0 keeps
 * them), each formed in float64 and rounded to float32 once, with row weights expanded to
 * elements: the form in which the kernels take label smoothing and probabilities. Targets that
 * are converted are range-checked here (once smoothed, one out of range could land in [0, 1], and
 * bytes must be reported as bytes); soft ones kept as they are, by the kernel, as in any call.
 */
export function softLayout(fn: string, name: string, lay: Layout, wkind: WeightKind, w: ChunkInput, eps: number): { lay: Layout; wkind: WeightKind; w: ChunkInput } {
  const n = lay.n;
  const a = 1 - eps;
  const b = eps / 2;
  let t: Float32Array;
  const src = lay.targets.array!;
  if (lay.tkind === TargetKind.Labels) {
    const labels = src as Int32Array;
    const c = lay.numClasses;
    t = new Float32Array(n);
    if (b !== 0) t.fill(b);
    for (let r = 0; r < labels.length; r++) if (labels[r]! < c) t[r * c + labels[r]!] = a + b;
  } else if (eps === 0 && src instanceof Float32Array) {
    t = src;
  } else {
    // One monomorphic loop per array type (a loop over either type ran at 10 ns an element).
    const range = new TargetRange();
    let lo = Infinity;
    let hi = -Infinity;
    if (src instanceof Uint8Array) {
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      t = new Float32Array(src);
    } else {
      const f = src as Float32Array;
      t = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = f[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (v !== v) range.nan = true;
        t[i] = v;
      }
    }
    if (eps > 0) for (let i = 0; i < n; i++) t[i] = t[i]! * a + b;
    range.min = lo;
    range.max = hi;
    range.check(fn, name, lay.tkind);
  }
  let wOut = w;
  let wk = wkind;
  if (wkind === WeightKind.Rows) {
    const rw = w.array as Float32Array;
    const c = lay.numClasses;
    const ew = new Float32Array(n);
    for (let r = 0; r < rw.length; r++) ew.fill(rw[r]!, r * c, r * c + c);
    wOut = { array: ew, perUnit: 1 };
    wk = WeightKind.Elements;
  } else if (wkind === WeightKind.Elements) {
    wOut = { array: w.array, perUnit: 1 };
  }
  return { lay: { n, tkind: TargetKind.Soft, targets: { array: t, perUnit: 1 }, numClasses: 1, units: n, perUnit: 1 }, wkind: wk, w: wOut };
}

/** A class's weights: a `Float32Array` of the class count, or absent. */
export interface ClassWeights {
  classWeight: Float32Array | undefined;
  posWeight: Float32Array | undefined;
}

/**
 * Per-class weights and ignored rows (docs/SPEC.md §1) folded into the weights the kernels take,
 * exactly: element weights `w · v_c · (q_c where t = 1)` (formed in float64, rounded once), or,
 * for ignored rows alone, row weights with 0 on those rows. Ignored rows' labels become the
 * background, and their logits 0 in a copy if any is infinite or NaN, so that they add exactly
 * 0. `ax`: the logits' class axis (elements' classes, and with class indices the class-last
 * order of rows that the weights are built in). Returns the mean's element count too.
 */
export function foldClassWeights(
  fn: string, x: Float32Array, lay: Layout, wkind: WeightKind, w: ChunkInput, cw: ClassWeights, ax: ClassAxisLike | undefined,
): { x: Float32Array; lay: Layout; wkind: WeightKind; w: ChunkInput; count: number } {
  const n = lay.n;
  const { classWeight: v, posWeight: q } = cw;
  const labelsIn = lay.tkind === TargetKind.Labels ? (lay.targets.array as Int32Array) : undefined;
  // The class count C, and how each element finds its class.
  let c: number;
  let inner = 1;
  if (labelsIn) {
    c = lay.numClasses;
    for (const [name, a] of [['options.classWeight', v], ['options.posWeight', q]] as const) {
      if (a && a.length !== c) throw new RangeError(`${fn}: ${name} has length ${a.length}, expected targets.numClasses = ${c}`);
    }
  } else {
    c = ax ? ax.c : (v ?? q)!.length;
    if (ax) inner = ax.inner;
    for (const [name, a] of [['options.classWeight', v], ['options.posWeight', q]] as const) {
      if (!a) continue;
      if (ax && a.length !== c) throw new RangeError(`${fn}: ${name} has length ${a.length}, expected ${c} (options.shape on options.classAxis)`);
      if (a.length !== c) throw new RangeError(`${fn}: ${name} has length ${a.length}, expected ${c} (options.classWeight's length)`);
      if (n % c !== 0) throw new RangeError(`${fn}: ${name} has length ${c}, which does not divide the logits length ${n} (targets [N, C], class last)`);
    }
  }
  const transposed = labelsIn !== undefined && ax !== undefined && ax.inner > 1;
  // Where logit (row r, class j) of the class-last matrix is in `x` (transposed class axis).
  const at = transposed ? (r: number, j: number) => (Math.floor(r / ax!.inner) * c + j) * ax!.inner + (r % ax!.inner) : (r: number, j: number) => r * c + j;
  const ignoreIndex = lay.ignoreIndex;
  const ignoring = labelsIn !== undefined && (lay.ignored ?? 0) > 0;
  let xOut = x;
  let labels = labelsIn;
  if (ignoring) {
    labels = Int32Array.from(labelsIn!, (l) => (l === ignoreIndex ? c : l));
    for (let r = 0; r < labelsIn!.length; r++) {
      if (labelsIn![r] !== ignoreIndex) continue;
      for (let j = 0; j < c; j++) {
        const e = at(r, j);
        if (!Number.isFinite(xOut[e]!)) {
          if (xOut === x) xOut = new Float32Array(x);
          xOut[e] = 0;
        }
      }
    }
  }
  const count = ignoring ? n - lay.ignored! * c : n;
  const lay2: Layout = labels === labelsIn ? lay : { ...lay, targets: { array: labels!, perUnit: 1 } };
  const rowsOnly = !v && !q && wkind !== WeightKind.Elements;
  if (rowsOnly) {
    // Ignored rows alone: row weights (given, or 1) with 0 there.
    const rw = wkind === WeightKind.Rows ? Float32Array.from(w.array as Float32Array) : new Float32Array(lay.units).fill(1);
    for (let r = 0; r < rw.length; r++) if (labelsIn![r] === ignoreIndex) rw[r] = 0;
    return { x: xOut, lay: lay2, wkind: WeightKind.Rows, w: { array: rw, perUnit: 1 }, count };
  }
  const ew = new Float32Array(n);
  const we = wkind === WeightKind.Elements ? (w.array as Float32Array) : undefined;
  const rwIn = wkind === WeightKind.Rows ? (w.array as Float32Array) : undefined;
  if (labelsIn) {
    for (let r = 0; r < labelsIn.length; r++) {
      const l = labelsIn[r]!;
      if (ignoring && l === ignoreIndex) continue;
      const base = rwIn ? rwIn[r]! : 1;
      for (let j = 0, e = r * c; j < c; j++, e++) {
        let f = we ? we[at(r, j)]! : base;
        if (v) f *= v[j]!;
        if (q && l === j) f *= q[j]!;
        ew[e] = f;
      }
    }
  } else {
    // Each class's factor for t = 0 (kv) and t = 1 (kq), in float64.
    const kv = Float64Array.from({ length: c }, (_, j) => (v ? v[j]! : 1));
    const kq = Float64Array.from({ length: c }, (_, j) => kv[j]! * (q ? q[j]! : 1));
    // Only posWeight needs the targets, and then they are bytes (checked by the caller).
    const t = q ? (lay.targets.array as Uint8Array) : undefined;
    if (inner === 1) {
      // Class last: rows of c (a loop per run of 1 element cost 10 ns an element).
      for (let r = 0; r < n; r += c) {
        for (let j = 0, e = r; j < c; j++, e++) ew[e] = (we ? we[e]! : 1) * (t && t[e] === 1 ? kq[j]! : kv[j]!);
      }
      return { x, lay, wkind: WeightKind.Elements, w: { array: ew, perUnit: lay.perUnit }, count: n };
    }
    // Runs of `inner` elements of one class, classes in turn.
    for (let e = 0, j = 0; e < n; j = j + 1 === c ? 0 : j + 1) {
      const a = kv[j]!;
      const b = kq[j]!;
      const end = e + inner;
      if (t && we) for (; e < end; e++) ew[e] = we[e]! * (t[e] === 1 ? b : a);
      else if (t) for (; e < end; e++) ew[e] = t[e] === 1 ? b : a;
      else if (we) for (; e < end; e++) ew[e] = we[e]! * a;
      else ew.fill(a, e, (e = end));
    }
  }
  return { x: xOut, lay: lay2, wkind: WeightKind.Elements, w: { array: ew, perUnit: lay.perUnit }, count };
}

/** The part of ts/axes.ts' ClassAxis the fold needs (no import cycle). */
interface ClassAxisLike {
  c: number;
  inner: number;
}
