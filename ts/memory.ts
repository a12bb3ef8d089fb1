// Memory management over the kernels' linear memory: a small first-fit allocator for the heap
// above `__heap_base`, and the chunked runner that feeds ordinary JS arrays through a bounded
// scratch region so that wasm memory never grows with the batch size.
//
// Views rule: a typed array over wasm memory is invalidated when the memory grows (its buffer
// is detached). Never cache one across an allocation; take it from `heap.views()` (or derive
// it from `heap.buffer`) when needed.

import type { Kernels } from './loader';
import { batchByteOffset, checkBatchView, detachedBatchView } from './views';

const ALIGN = 16;
const PAGE = 65536;
/**
 * Where the heap starts, at the lowest: the extras module (imported into the same memory, see
 * ts/extras-loader.ts) keeps its stack top and data below this address, as scripts/lib/wasm.mjs
 * links it (EXTRAS_END there); so the heap never holds what its instantiation writes.
 */
export const HEAP_START = 18 * 65536;
/** Free bytes above the heap's start when a heap is made. */
const HEAP_SLACK = 4 * 65536;
/** wasm32 addresses: no memory grows past 4 GiB. */
const MAX_MEMORY = 2 ** 32;

/** `n` rounded up to the alignment, in float arithmetic: sizes may exceed int32 (`|`/`&` wrap). */
function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** Views of the whole wasm memory, one per element type the kernels read and write. */
export interface Views {
  /** The memory's buffer they view (`memory.buffer` and `view.buffer` are getters that cost ~20 ns each). */
  buffer: ArrayBuffer;
  u8: Uint8Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
}

/** A first-fit allocator with coalescing free list. Blocks are 16-byte aligned (v128 loads). */
export class Heap {
  readonly memory: WebAssembly.Memory;
  private top: number;
  /** Free blocks sorted by address: [ptr, size]. */
  private free_: Array<[number, number]> = [];
  private sizes = new Map<number, number>();
  private views_: Views | undefined;

  constructor(k: Kernels) {
    this.memory = k.memory;
    this.top = alignUp(Math.max(k.__heap_base.value as number, HEAP_START));
    // Room for a call's small first allocations (parameters, scratch) from the start, as the
    // module's own layout had before HEAP_START: a call that grows the memory detaches the batch
    // views it was given (planStreams re-derives them, but fewer growths are cheaper).
    const want = Math.ceil((this.top + HEAP_SLACK) / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (have < want) this.memory.grow(want - have);
  }

  get buffer(): ArrayBuffer {
    return this.memory.buffer as ArrayBuffer;
  }

  /**
   * Views of the whole memory, kept between calls: every call needs a few, and making them
   * (or reading `memory.buffer`) costs more than a small batch's kernel. Valid until the next
   * allocation, like any view (see the views rule above).
   */
  views(): Views {
    const v = this.views_;
    // Dropped by `alloc` when it grows the memory; a growth from elsewhere detaches the views
    // (a shared memory's old views stay valid, over the memory as it was). A detached view has
    // length 0; `length` is the one view getter V8 inlines (`byteLength` is a 13 ns call).
    if (v !== undefined && v.u8.length !== 0) return v;
    const b = this.buffer;
    return (this.views_ = { buffer: b, u8: new Uint8Array(b), i32: new Int32Array(b), f32: new Float32Array(b), f64: new Float64Array(b) });
  }

  /** Bytes currently handed out. */
  get allocated(): number {
    let s = 0;
    for (const v of this.sizes.values()) s += v;
    return s;
  }

  alloc(bytes: number): number {
    const size = alignUp(Math.max(bytes, ALIGN));
    for (let i = 0; i < this.free_.length; i++) {
      const [p, s] = this.free_[i]!;
      if (s >= size) {
        if (s === size) this.free_.splice(i, 1);
        else this.free_[i] = [p + size, s - size];
        this.sizes.set(p, size);
        return p;
      }
    }
    const p = this.top;
    const end = p + size;
    const have = this.memory.buffer.byteLength;
    // Nothing changes until the memory holds the block: a failed request leaves the heap as it was.
    if (end > MAX_MEMORY) {
      throw new RangeError(`cannot allocate ${bytes} bytes of wasm memory: ${p} bytes are in use and wasm32 memory ends at 4 GiB`);
    }
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
        this.views_ = undefined;
      } catch {
        throw new RangeError(`cannot allocate ${bytes} bytes of wasm memory (it has ${have} bytes and cannot grow to ${end})`);
      }
    }
    this.top = end;
    this.sizes.set(p, size);
    return p;
  }

  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`focal-ghm: internal error: double free at ${ptr}`);
    this.sizes.delete(ptr);
    // Insert sorted, then merge with neighbours; a block ending at `top` shrinks the heap.
    let i = 0;
    while (i < this.free_.length && this.free_[i]![0] < ptr) i++;
    this.free_.splice(i, 0, [ptr, size]);
    if (i + 1 < this.free_.length && ptr + size === this.free_[i + 1]![0]) {
      this.free_[i]![1] += this.free_[i + 1]![1];
      this.free_.splice(i + 1, 1);
    }
    if (i > 0 && this.free_[i - 1]![0] + this.free_[i - 1]![1] === ptr) {
      this.free_[i - 1]![1] += this.free_[i]![1];
      this.free_.splice(i, 1);
      i--;
    }
    const last = this.free_[this.free_.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.free_.pop();
    }
  }

  /** Whether `a` is a view into this heap's memory (then kernels can read it in place). */
  owns(a: ArrayBufferView): boolean {
    return a.buffer === this.views().buffer;
  }
}

/** Elements per chunk: big enough to amortise a call, small enough that scratch stays in cache. */
export const CHUNK_ELEMENTS = 1 << 15;

export type Typed = Float32Array | Uint8Array | Int32Array | Float64Array;

/** An input stream of a chunked call: `perUnit` elements of `array` per unit (row or element). */
export interface ChunkInput {
  array: Typed | undefined;
  perUnit: number;
}

/** An output of a chunked call, written by the kernel and copied out unless it lives in wasm. */
export interface ChunkOutput {
  array: Float32Array | undefined;
  perUnit: number;
}

/** A reusable allocation that only grows: scratch for chunks, and small parameter tables. */
export class Region {
  private ptr = 0;
  private bytes = 0;

  constructor(private heap: Heap) {}

  /** At least `bytes` of wasm memory; may grow the memory (re-derive views afterwards). */
  reserve(bytes: number): number {
    if (bytes <= this.bytes) return this.ptr;
    if (this.bytes) this.heap.free(this.ptr);
    this.bytes = alignUp(Math.max(bytes, this.bytes * 2));
    this.ptr = this.heap.alloc(this.bytes);
    return this.ptr;
  }
}

/**
 * Copies elements `[start, start + len)` of `a` to byte address `ptr` of the memory `v` views,
 * through the whole-memory view of `a`'s element type, so that the copy is a plain memory move
 * (and the whole array when it is one chunk: no subarray view to make).
 */
export function copyIn(v: Views, a: Typed, start: number, len: number, ptr: number): void {
  const to = a instanceof Float32Array ? v.f32 : a instanceof Uint8Array ? v.u8 : a instanceof Int32Array ? v.i32 : v.f64;
  to.set((len === a.length ? a : a.subarray(start, start + len)) as never, ptr / elementBytes(a));
}

/** `a.BYTES_PER_ELEMENT`, without the getter call it costs in V8 (5 ns against 2). */
export function elementBytes(a: Typed): number {
  return a instanceof Uint8Array ? 1 : a instanceof Float64Array ? 8 : 4;
}

/**
 * Where each stream of a chunked call is, appended to `plan`: its address when it is in wasm
 * memory (used in place, once checked to be a live batch's view), -1 - its offset in a chunk's
 * scratch when it is copied through, 0 when absent. Returns `need` plus the scratch bytes these
 * streams take per chunk of `chunkUnits` units. `memory` is the memory's buffer, so that the test
 * is one comparison (`heap.owns` per stream cost 1–2% on 16-element batch calls); `owns`, for a
 * shared memory, also accepts views made before it grew. Shared by runChunked and the thread pool.
 */
export function planStreams(
  streams: ChunkInput[],
  chunkUnits: number,
  memory: ArrayBufferLike,
  owns: ((a: Typed) => boolean) | undefined,
  plan: number[],
  need: number,
): number {
  for (let i = 0; i < streams.length; i++) {
    const a = streams[i]!.array;
    let p = 0;
    if (a === undefined) {
      // absent: the kernel gets 0
    } else if (a.buffer === memory || (owns !== undefined && owns(a))) {
      checkBatchView('focal-ghm', a);
      p = a.byteOffset;
    } else if (a.length === 0 && detachedBatchView(a)) {
      // A batch view the call itself detached, by growing the memory for its own parameters
      // after checking its arguments: still the batch's, at the place it was made for.
      checkBatchView('focal-ghm', a);
      p = batchByteOffset(a);
    } else {
      p = -1 - need;
      need += alignUp(chunkUnits * streams[i]!.perUnit * elementBytes(a));
    }
    plan.push(p);
  }
  return need;
}

/**
 * Runs `kernel` over `units` units (elements, or rows of a matrix) in chunks of at most
 * `unitsPerChunk`. Inputs that live in wasm memory are passed in place; others are copied through
 * scratch, and outputs likewise copied out. `kernel(units, inPtrs, outPtrs)` gets 0 for absent
 * arrays. `units === 0` still calls the kernel once (with empty slices), so that per-call
 * results like sums are always produced.
 *
 * Plain loops and the heap's cached views: this runs on every call, and with closures, mapped
 * arrays and fresh views per chunk, a 4-element focal call took 1.8 µs instead of 1.35 (the
 * difference is about 200 elements' kernel time) and a 1000-element one 16% longer. Typed-array
 * getters other than `length` (`buffer`, `byteOffset`, `BYTES_PER_ELEMENT`) are calls in V8,
 * 5–20 ns each, so each is read once per stream: with that, and one map lookup for a batch's
 * array, a 16-element call went from 0.86 to 0.63 µs (1.02 to 0.77 on a batch).
 */
export function runChunked(
  heap: Heap,
  scratch: Region,
  units: number,
  unitsPerChunk: number,
  inputs: ChunkInput[],
  outputs: ChunkOutput[],
  kernel: (units: number, ins: number[], outs: number[]) => void,
): void {
  const nIn = inputs.length;
  const nOut = outputs.length;
  const chunk = Math.min(units, unitsPerChunk);
  // In-place addresses are taken before reserving scratch, which may grow the memory and detach views.
  const memory = heap.views().buffer;
  const ins: number[] = [];
  const outs: number[] = [];
  const need = planStreams(outputs, chunk, memory, undefined, outs, planStreams(inputs, chunk, memory, undefined, ins, 0));
  const base = need > 0 ? scratch.reserve(need) : 0;
  // `at*`: where each stream is this chunk; the kernel gets these arrays (copies: they are not
  // the per-stream plan above).
  const atIn = ins.slice();
  const atOut = outs.slice();
  let u0 = 0;
  do {
    const u = Math.min(unitsPerChunk, units - u0);
    const v = heap.views();
    for (let i = 0; i < nIn; i++) {
      const a = inputs[i]!.array;
      const p = ins[i]!;
      if (a === undefined) continue;
      const per = inputs[i]!.perUnit;
      if (p < 0) {
        atIn[i] = base - 1 - p;
        copyIn(v, a, u0 * per, u * per, atIn[i]!);
      } else {
        atIn[i] = p + u0 * per * elementBytes(a);
      }
    }
    for (let k = 0; k < nOut; k++) {
      const p = outs[k]!;
      atOut[k] = p < 0 ? base - 1 - p : p === 0 ? 0 : p + u0 * outputs[k]!.perUnit * 4;
    }
    kernel(u, atIn, atOut);
    for (let k = 0; k < nOut; k++) {
      const p = outs[k]!;
      if (p >= 0) continue;
      const per = outputs[k]!.perUnit;
      const at = atOut[k]! / 4;
      outputs[k]!.array!.set(heap.views().f32.subarray(at, at + u * per), u0 * per);
    }
    u0 += u;
  } while (u0 < units);
}
