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
}

export function layoutTargets(fn: string, n: number, targets: unknown, name = 'targets'): Layout {
  if (targets instanceof Uint8Array || targets instanceof Float32Array) {
    const binary = targets instanceof Uint8Array;
    const t = binary ? expectArray(fn, name, targets, Uint8Array) : expectArray(fn, name, targets, Float32Array);
    expectLength(fn, name, t.length, n, 'one target per logit');
    return { n, tkind: binary ? TargetKind.Binary : TargetKind.Soft, targets: { array: t, perUnit: 1 }, numClasses: 1, units: n, perUnit: 1 };
  }
  if (typeof targets === 'object' && targets !== null && !ArrayBuffer.isView(targets) && 'labels' in targets) {
    // Every key checked: `{ labels, numClasses, ignoreIndex }` must not pass for something it is not.
    const t = expectOptions(fn, targets, ['labels', 'numClasses'] as const, name);
    const labels = expectArray(fn, `${name}.labels`, t.labels, Int32Array);
    const c = expectInteger(fn, `${name}.numClasses`, t.numClasses, 1);
    if (n % c !== 0) {
      throw new RangeError(`${fn}: ${name}.numClasses (${c}) does not divide the logits length ${n}`);
    }
    const rows = n / c;
    expectLength(fn, `${name}.labels`, labels.length, rows, `one label per row of ${c} logits`);
    checkLabels(fn, `${name}.labels`, labels, 0, c, null);
    return { n, tkind: TargetKind.Labels, targets: { array: labels, perUnit: 1 }, numClasses: c, units: rows, perUnit: c };
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
