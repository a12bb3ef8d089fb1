// Memory management over the kernels' linear memory: a small first-fit allocator for the heap
// above `__heap_base`, and the chunked runner that feeds ordinary JS arrays through a bounded
// scratch region so that wasm memory never grows with the batch size.
//
// Views rule: a typed array over wasm memory is invalidated when the memory grows (its buffer
// is detached). Never cache one across an allocation; derive it from `heap.buffer` when needed.

import type { Kernels } from './loader';

const ALIGN = 16;
const PAGE = 65536;

function alignUp(n: number): number {
  return (n + ALIGN - 1) & ~(ALIGN - 1);
}

/** A first-fit allocator with coalescing free list. Blocks are 16-byte aligned (v128 loads). */
export class Heap {
  readonly memory: WebAssembly.Memory;
  private top: number;
  /** Free blocks sorted by address: [ptr, size]. */
  private free_: Array<[number, number]> = [];
  private sizes = new Map<number, number>();

  constructor(k: Kernels) {
    this.memory = k.memory;
    this.top = alignUp(k.__heap_base.value as number);
  }

  get buffer(): ArrayBuffer {
    return this.memory.buffer as ArrayBuffer;
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
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch {
        throw new RangeError(`focal-ghm: cannot allocate ${bytes} bytes of wasm memory (have ${have}, limit reached)`);
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

  /** Whether `[ptr, ptr + bytes)` lies inside one live allocation. */
  contains(ptr: number, bytes: number): boolean {
    for (const [p, size] of this.sizes) if (ptr >= p && ptr + bytes <= p + size) return true;
    return false;
  }

  /** Whether `a` is a view into this heap's memory (then kernels can read it in place). */
  owns(a: ArrayBufferView): boolean {
    return a.buffer === this.memory.buffer;
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
 * Runs `kernel` over `units` units (elements, or rows of a matrix) in chunks of at most
 * `unitsPerChunk`. Inputs that live in wasm memory are passed in place; others are copied through
 * scratch, and outputs likewise copied out. `kernel(units, inPtrs, outPtrs)` gets 0 for absent
 * arrays. `units === 0` still calls the kernel once (with empty slices), so that per-call
 * results like sums are always produced.
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
  const slot = (a: Typed | undefined, perUnit: number) =>
    a && !heap.owns(a) ? alignUp(Math.min(units, unitsPerChunk) * perUnit * a.BYTES_PER_ELEMENT) : 0;
  // Addresses of in-place arrays are taken before any growth could detach their views.
  const inPlace = (a: Typed | undefined) => {
    if (!a || !heap.owns(a)) return 0;
    // A view into wasm memory outside every live allocation is a stale view of a freed batch:
    // reading or writing it would touch someone else's buffer.
    if (!heap.contains(a.byteOffset, a.byteLength)) {
      throw new Error('focal-ghm: an array is a view of wasm memory that is not allocated (a freed batch?)');
    }
    return a.byteOffset;
  };
  const inBase = inputs.map((c) => inPlace(c.array));
  const outBase = outputs.map((c) => inPlace(c.array));
  const needIn = inputs.map((c) => slot(c.array, c.perUnit));
  const needOut = outputs.map((c) => slot(c.array, c.perUnit));
  let off = scratch.reserve([...needIn, ...needOut].reduce((a, b) => a + b, 0));
  const place = (b: number) => {
    const p = b ? off : 0;
    off += b;
    return p;
  };
  const inSlot = needIn.map(place);
  const outSlot = needOut.map(place);
  let u0 = 0;
  do {
    const u = Math.min(unitsPerChunk, units - u0);
    const buf = heap.buffer;
    const ins = inputs.map((c, i) => {
      const a = c.array;
      if (!a) return 0;
      const start = u0 * c.perUnit;
      if (!inSlot[i]) return inBase[i]! + start * a.BYTES_PER_ELEMENT;
      const ctor = a.constructor as new (b: ArrayBuffer, o: number, l: number) => Typed;
      new ctor(buf, inSlot[i]!, u * c.perUnit).set(a.subarray(start, start + u * c.perUnit) as never);
      return inSlot[i]!;
    });
    const outs = outputs.map((c, i) => (c.array ? outSlot[i] || outBase[i]! + u0 * c.perUnit * 4 : 0));
    kernel(u, ins, outs);
    outputs.forEach((c, i) => {
      if (c.array && outSlot[i]) c.array.set(new Float32Array(heap.buffer, outSlot[i]!, u * c.perUnit), u0 * c.perUnit);
    });
    u0 += u;
  } while (u0 < units);
}
