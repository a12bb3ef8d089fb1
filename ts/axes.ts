// Logits laid out with the classes on an axis other than the last (PyTorch's [B, C, d1, …]):
// the kernels take class-last rows, so chunks of rows are gathered into that layout through a
// fixed scratch region, and elementwise outputs scattered back; no transposed copy of the input.

import { describeValue, expectInteger } from './errors';
import { runChunked, type ChunkInput, type ChunkOutput } from './memory';
import { liveView } from './views';
import type { Workspace } from './workspace';

/** The logits as `[outer, c, inner]`: `c` classes on the class axis, `inner` positions after it. */
export interface ClassAxis {
  outer: number;
  c: number;
  inner: number;
}

/**
 * `options.shape` and `options.classAxis` for logits of length `n`; undefined when neither is
 * given. `shape` alone puts the classes on its last axis.
 */
export function parseClassAxis(fn: string, shape: unknown, classAxis: unknown, n: number): ClassAxis | undefined {
  if (shape === undefined) {
    if (classAxis !== undefined) throw new RangeError(`${fn}: options.classAxis needs options.shape (the logits' dimensions)`);
    return undefined;
  }
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new TypeError(`${fn}: options.shape must be a non-empty array of dimensions, got ${describeValue(shape)}`);
  }
  const dims = shape.map((d, i) => expectInteger(fn, `options.shape[${i}]`, d, 1, 2 ** 32));
  const axis = classAxis === undefined ? dims.length - 1 : expectInteger(fn, 'options.classAxis', classAxis, 0, dims.length - 1);
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= dims[i]!;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const c = dims[axis]!;
  if (outer * c * inner !== n) {
    throw new RangeError(`${fn}: options.shape [${dims.join(', ')}] has ${outer * c * inner} elements, but logits has length ${n}`);
  }
  return { outer, c, inner };
}

/** The class axis' length must be the one the targets or options give. */
export function expectAxisClasses(fn: string, ax: ClassAxis, c: number, what: string): void {
  if (ax.c !== c) throw new RangeError(`${fn}: options.shape has ${ax.c} classes on options.classAxis, but ${what} is ${c}`);
}

/**
 * Rows `[r0, r0 + u)` of the class-last matrix of `x` (`[outer, c, inner]`) into `f32` at
 * element `dst` (`transpose` false), or the other way round from `f32` into `x`. Runs of a row
 * range within one `outer` index read (write) `x` contiguously for each class.
 */
function moveRows(f32: Float32Array, dst: number, x: Float32Array, r0: number, u: number, ax: ClassAxis, back: boolean): void {
  const { c, inner } = ax;
  const end = r0 + u;
  let r = r0;
  let d = dst;
  while (r < end) {
    const o = Math.floor(r / inner);
    const i0 = r - o * inner;
    const len = Math.min(inner - i0, end - r);
    const s0 = o * c * inner + i0;
    for (let j = 0; j < c; j++) {
      const s = s0 + j * inner;
      let dd = d + j;
      if (back) for (let k = 0; k < len; k++, dd += c) x[s + k] = f32[dd]!;
      else for (let k = 0; k < len; k++, dd += c) f32[dd] = x[s + k]!;
    }
    d += len * c;
    r += len;
  }
}

/**
 * {@link runChunked} over the `outer·inner` rows of `x` laid out as `ax`: `rowInputs` and
 * `rowOutputs` are per-row streams (labels, weights, per-row losses) as usual; each chunk's
 * logits are gathered class-last into `ws.axes`, and `elemOutputs` (gradient, elementwise
 * losses, in `x`'s layout) are written by the kernel there and scattered back. `kernel(u, xPtr,
 * ins, outs, elemPtrs)` gets 0 for absent element outputs.
 */
export function runClassAxis(
  ws: Workspace,
  ax: ClassAxis,
  chunkRows: number,
  x: Float32Array,
  rowInputs: ChunkInput[],
  rowOutputs: ChunkOutput[],
  elemOutputs: Array<Float32Array | undefined>,
  kernel: (u: number, xPtr: number, ins: number[], outs: number[], elemPtrs: number[]) => void,
): void {
  const rows = ax.outer * ax.inner;
  const block = Math.ceil((Math.min(rows, chunkRows) * ax.c * 4) / 16) * 16;
  const base = ws.axes.reserve(block * (1 + elemOutputs.length));
  const elemPtrs = elemOutputs.map((a, k) => (a ? base + block * (k + 1) : 0));
  let r0 = 0;
  runChunked(ws.heap, ws.scratch, rows, chunkRows, rowInputs, rowOutputs, (u, ins, outs) => {
    // Batch views as inputs or outputs: re-derived, in case reserving scratch grew the memory.
    const buffer = ws.heap.buffer;
    moveRows(ws.heap.views().f32, base / 4, liveView(x, buffer), r0, u, ax, false);
    kernel(u, base, ins, outs, elemPtrs);
    const f32 = ws.heap.views().f32;
    for (let k = 0; k < elemOutputs.length; k++) {
      const a = elemOutputs[k];
      if (a) moveRows(f32, elemPtrs[k]! / 4, liveView(a, buffer), r0, u, ax, true);
    }
    r0 += u;
  });
}
