// Views of wasm memory that batches hand out, and the check every call makes of a view it is
// given. Addresses alone cannot tell a live batch's view from a stale one: once a batch is freed,
// the next allocation may reuse its memory, and a view kept from the freed batch then lies
// inside the new one. So every view a batch hands out is recorded with its batch, including
// the views its `subarray()` makes, and a call accepts a view of wasm memory only when it is
// recorded and its batch is live.
//
// The record holds the batch strongly (a WeakMap keeps its values alive while the key is): a
// caller who keeps only `b.logits` keeps `b` alive, so the FinalizationRegistry that frees
// forgotten batches never frees memory a view still shows.

/** What a view of wasm memory belongs to: a batch, as far as this module is concerned. */
export interface ViewOwner {
  readonly freed: boolean;
}

interface Home {
  owner: ViewOwner;
  /** Where the view starts and how many elements it has, as made (a detached view reads 0). */
  byteOffset: number;
  length: number;
}

const homes = new WeakMap<ArrayBufferView, Home>();

type View = ArrayBufferView & { length: number; subarray(begin?: number, end?: number): View };

/**
 * Records `view` as `owner`'s, and gives it an own `subarray` that records its results too (a
 * subarray of a batch view is a batch view). An own property rather than a subclass: batch
 * views stay plain typed arrays (same prototype and constructor), so deep-equality checks and
 * `instanceof` treat them as users expect.
 */
function record<T extends View>(view: T, owner: ViewOwner): T {
  homes.set(view, { owner, byteOffset: view.byteOffset, length: view.length });
  const base = Object.getPrototypeOf(view) as { subarray(this: T, begin?: number, end?: number): T };
  Object.defineProperty(view, 'subarray', {
    value: function subarray(this: T, begin?: number, end?: number): T {
      return record(base.subarray.call(this, begin, end), owner);
    },
    configurable: true,
    writable: true,
  });
  return view;
}

const CTORS = { f32: Float32Array, u8: Uint8Array, i32: Int32Array };
type Kind = keyof typeof CTORS;
type ViewOf<K extends Kind> = K extends 'f32' ? Float32Array : K extends 'u8' ? Uint8Array : Int32Array;

/** A view of `length` elements of `buffer` from `byteOffset`, recorded as `owner`'s. */
export function batchView<K extends Kind>(kind: K, buffer: ArrayBufferLike, byteOffset: number, length: number, owner: ViewOwner): ViewOf<K> {
  return record(new CTORS[kind](buffer as ArrayBuffer, byteOffset, length) as unknown as View, owner) as unknown as ViewOf<K>;
}

/**
 * Throws unless `a`, a view of wasm memory, is a live batch's: a view of a freed batch, or one
 * no batch handed out, would read or write whatever now lives at its address.
 */
export function checkBatchView(fn: string, a: ArrayBufferView): void {
  const h = homes.get(a);
  if (!h) {
    throw new RangeError(
      `${fn}: an array is a view of focal-ghm's wasm memory that no batch handed out; use the views a batch gives (batch.logits, batch.grad, … and their subarray())`,
    );
  }
  if (h.owner.freed) throw new RangeError(`${fn}: an array is a view of a freed batch (its memory is not allocated any more)`);
}

/**
 * `a` as it can be used now: a batch view that the memory's growth detached is made afresh over
 * `buffer` (same place, same length, same batch); anything else is returned as is. What a call
 * returns must be valid when it returns, and the call itself may have grown the memory.
 */
export function liveView<T extends Float32Array>(a: T, buffer: ArrayBufferLike): T {
  const h = homes.get(a);
  if (!h || a.length === h.length) return a;
  return record(new Float32Array(buffer as ArrayBuffer, h.byteOffset, h.length) as unknown as View, h.owner) as unknown as T;
}

/** Whether `a` is a batch view that wasm memory growth detached (it reads as empty). */
export function detachedBatchView(a: ArrayBufferView & { length: number }): boolean {
  const h = homes.get(a);
  return h !== undefined && h.length !== a.length;
}

/** Where batch view `a` was made in wasm memory (its byte offset then; a detached view reads 0). */
export function batchByteOffset(a: ArrayBufferView): number {
  return homes.get(a)!.byteOffset;
}
