// Zero-copy batches: buffers that live in the kernels' wasm memory. The caller fills them and
// passes them to any loss; the chunked runner sees that they are views into wasm memory and hands
// the kernels their addresses, so nothing is copied in or out.
//
// The views rule: growing the wasm memory (any allocation may) detaches every view of the old
// memory buffer. So a batch never hands out a cached view: each property read derives a fresh
// one. Read `batch.logits` again after creating another batch or calling a loss on ordinary
// arrays; do not keep a view across such calls. Every view is recorded with its batch
// (ts/views.ts): calls refuse views of freed batches, and a kept view keeps its batch alive.

import { expectBoolean, expectInteger, expectOptions } from './errors';
import type { ClassTargets } from './inputs';
import type { Heap } from './memory';
import { batchView } from './views';
import { workspace } from './workspace';

export interface BatchOptions {
  /** Number of logits (N, or N × numClasses with class-index targets). */
  length: number;
  /** Target storage: `'u8'` binary, `'f32'` soft, `{ numClasses }` one Int32 label per row. Default `'u8'`. */
  targets?: 'u8' | 'f32' | { numClasses: number };
  /** Allocate a weight buffer: `true` per element, `'rows'` per row (class-index targets). */
  weight?: boolean | 'rows';
  /** Allocate a gradient buffer (pass it as `out: { grad: batch.grad }`). */
  grad?: boolean;
}

type Region = { ptr: number; bytes: number };

/** Bytes zeroed per view when a batch is created. */
const ZERO_STEP = 1 << 30;

/** Frees batches that were garbage-collected without `free()`: a safety net, not a substitute. */
const registry =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<{ heap: Heap; regions: Region[]; live: { v: boolean } }>((h) => {
        if (h.live.v) {
          h.live.v = false;
          for (const r of h.regions) h.heap.free(r.ptr);
        }
      })
    : undefined;

/**
 * A batch whose buffers live in wasm memory; see {@link createBatch}.
 */
export class Batch {
  readonly length: number;
  readonly numClasses: number | undefined;
  private readonly heap: Heap;
  private readonly regions: Record<'logits' | 'targets' | 'weight' | 'grad', Region | undefined>;
  private readonly kind: 'u8' | 'f32' | 'labels';
  private readonly live = { v: true };

  /** @internal The constructor for {@link createBatch} and the pool's `createBatch`. */
  static create(heap: Heap, o: Required<Pick<BatchOptions, 'length'>> & BatchOptions): Batch {
    return new Batch(heap, o);
  }

  /** Use {@link createBatch} (or a pool's `createBatch`). */
  private constructor(heap: Heap, o: Required<Pick<BatchOptions, 'length'>> & BatchOptions) {
    this.heap = heap;
    this.length = o.length;
    const t = o.targets ?? 'u8';
    this.kind = typeof t === 'object' ? 'labels' : t;
    this.numClasses = typeof t === 'object' ? t.numClasses : undefined;
    const rows = this.numClasses ? this.length / this.numClasses : this.length;
    const alloc = (bytes: number): Region => ({ ptr: heap.alloc(bytes), bytes });
    const regions: Region[] = [];
    const take = (bytes: number) => {
      const r = alloc(bytes);
      regions.push(r);
      return r;
    };
    try {
      this.regions = {
        logits: take(this.length * 4),
        targets: take(this.kind === 'u8' ? this.length : this.kind === 'f32' ? this.length * 4 : rows * 4),
        weight: o.weight ? take((o.weight === 'rows' ? rows : this.length) * 4) : undefined,
        grad: o.grad ? take(this.length * 4) : undefined,
      };
      // Zeroed like a new typed array: reused heap memory holds an earlier batch's data. In
      // pieces: one view may not exceed the engine's typed-array length limit (2^31 - 1 in V8).
      for (const r of regions) {
        for (let at = 0; at < r.bytes; at += ZERO_STEP) new Uint8Array(heap.buffer, r.ptr + at, Math.min(ZERO_STEP, r.bytes - at)).fill(0);
      }
    } catch (e) {
      for (const r of regions) heap.free(r.ptr);
      throw e instanceof RangeError ? new RangeError(`createBatch: options.length ${o.length} does not fit: ${e.message}`, { cause: e }) : e;
    }
    registry?.register(this, { heap, regions, live: this.live }, this);
  }

  private view<K extends 'f32' | 'u8' | 'i32'>(name: 'logits' | 'targets' | 'weight' | 'grad', kind: K, n?: number) {
    if (!this.live.v) throw new Error(`Batch.${name}: this batch has been freed`);
    const r = this.regions[name];
    if (!r) throw new Error(`Batch.${name}: this batch was created without a ${name} buffer`);
    return batchView(kind, this.heap.buffer, r.ptr, n ?? r.bytes / (kind === 'u8' ? 1 : 4), this);
  }

  private get rows(): number {
    return this.numClasses ? this.length / this.numClasses : this.length;
  }

  /** The logits, a fresh view into wasm memory (see the views rule above). */
  get logits(): Float32Array {
    return this.view('logits', 'f32', this.length);
  }

  /** The targets in the form the losses take: a byte or float view, or `{ labels, numClasses }`. */
  get targets(): Uint8Array | Float32Array | ClassTargets {
    if (this.kind === 'u8') return this.view('targets', 'u8', this.length);
    if (this.kind === 'f32') return this.view('targets', 'f32', this.length);
    return { labels: this.labels, numClasses: this.numClasses! };
  }

  /** The label view (class-index batches only). */
  get labels(): Int32Array {
    if (this.kind !== 'labels') throw new Error('Batch.labels: this batch has no class-index targets');
    return this.view('targets', 'i32', this.rows);
  }

  /** The weights (per element, or per row when created with `weight: 'rows'`). */
  get weight(): Float32Array {
    return this.view('weight', 'f32');
  }

  /** The gradient buffer; pass as `out: { grad: batch.grad }`. */
  get grad(): Float32Array {
    return this.view('grad', 'f32', this.length);
  }

  /** Whether {@link free} has been called. */
  get freed(): boolean {
    return !this.live.v;
  }

  /** Returns the buffers to the allocator; the batch throws when used afterwards. Idempotent. */
  free(): void {
    if (!this.live.v) return;
    this.live.v = false;
    registry?.unregister(this);
    for (const r of Object.values(this.regions)) if (r) this.heap.free(r.ptr);
  }
}

/**
 * Allocates a batch in wasm memory, zero-filled: fill its views, then pass them to any loss; the kernels read
 * them in place (no copy). Free it with `free()` when done.
 *
 * @example
 * ```ts
 * import { init, createBatch, sigmoidFocalLoss } from 'focal-ghm';
 * await init();
 * const b = createBatch({ length: 1 << 20, targets: 'u8', grad: true });
 * b.logits.set(myLogits);
 * b.targets.set(myTargets);                      // Uint8Array view
 * const { loss } = sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
 * use(b.grad);                                   // re-derived view, valid now
 * b.free();
 * ```
 */
export function createBatch(options: BatchOptions): Batch {
  const fn = 'createBatch';
  const ws = workspace(fn);
  return Batch.create(ws.heap, checkBatchOptions(fn, options));
}

/** The option checks of {@link createBatch} (shared with the pool's batches). */
export function checkBatchOptions(fn: string, options: unknown): BatchOptions {
  const o = expectOptions(fn, options, ['length', 'targets', 'weight', 'grad'] as const);
  const length = expectInteger(fn, 'options.length', o.length, 0, 2 ** 30);
  if (o.targets === null) throw new TypeError(`${fn}: options.targets must be 'u8', 'f32' or { numClasses }, got null`);
  if (o.grad !== undefined) expectBoolean(fn, 'options.grad', o.grad);
  const t = o.targets ?? 'u8';
  if (typeof t === 'object') {
    const c = expectInteger(fn, 'options.targets.numClasses', expectOptions(fn, t, ['numClasses'] as const, 'options.targets').numClasses, 1);
    if (length % c !== 0) throw new RangeError(`${fn}: options.targets.numClasses (${c}) does not divide options.length ${length}`);
  } else if (t !== 'u8' && t !== 'f32') {
    throw new RangeError(`${fn}: options.targets must be 'u8', 'f32' or { numClasses }, got ${String(t)}`);
  }
  if (o.weight !== undefined && o.weight !== true && o.weight !== false && o.weight !== 'rows') {
    throw new RangeError(`${fn}: options.weight must be true, false or 'rows', got ${String(o.weight)}`);
  }
  if (o.weight === 'rows' && typeof t !== 'object') throw new RangeError(`${fn}: options.weight 'rows' needs class-index targets`);
  return { ...(o as BatchOptions), length };
}
