// A thread pool for the losses (issue #4): the same calls as the single-thread API, run by
// workers over one shared wasm memory, with results bitwise independent of the thread count.
//
// How a call runs: validate exactly as the single-thread function does (same messages), then
// run "passes". A pass cuts the batch into fixed blocks of `unitsPerChunk(perUnit)` units (the
// single-thread API's chunk size, never dependent on the thread count); workers claim blocks and
// write each block's partial sums to the block's own slot; the main thread adds the slots in
// block order. Inputs that are ordinary arrays are copied into the shared heap in bounded steps
// ("chunkElements" per step, two steps in flight so the copy of one overlaps the computation of
// the other) and freed afterwards; arrays of `pool.createBatch` are used in place.
// Threads and the worker protocol are in pool-threads.ts, the worker program in pool-worker.ts.

import { checkBatchOptions, createBatch, Batch, type BatchOptions } from './batch';
import { checkBatchView } from './views';
import { describeValue, expectArray, expectBoolean, expectInteger, expectOptions, expectPositive } from './errors';
import {
  parseSigmoidCall,
  sigmoidFocalLoss,
  unitsPerChunk,
  type GradWanted,
  type LossFor,
  type LossResult,
  type OutputBuffers,
  type Reduction,
  type SigmoidFocalOptions,
  type SigmoidFocalResult,
} from './focal';
import { GHMC, GHMR, GHMStats, type GHMForwardOptions, type GHMStep } from './ghm';
import { layoutTargets, layoutWeights, TargetKind, TargetRange, type Layout, type Targets } from './inputs';
import { initRuntime } from './loader';
import { copyIn, elementBytes, type Typed } from './memory';
import { hardwareThreads, loadSharedBuild, Threads, threadsUnavailable, WorkersBlocked } from './pool-threads';
import type { PoolOp } from './pool-worker';

export interface PoolOptions {
  /** Worker threads, 1..256. Default: the number of logical processors. */
  threads?: number;
  /** Use the single-thread API even where threads are available (what runtimes without SharedArrayBuffer get). */
  forceFallback?: boolean;
  /**
   * Elements of ordinary (non-shared) input arrays copied into shared memory per step; bounds the
   * pool's memory (two steps are in flight). Rounded to whole blocks. Default 2^21.
   */
  chunkElements?: number;
  /** Milliseconds to wait for the workers to start before rejecting. Default 30000. */
  startTimeout?: number;
}

const POOL_OPTIONS = ['threads', 'forceFallback', 'chunkElements', 'startTimeout'] as const;
const FORWARD_OPTIONS = ['grad'] as const;

/**
 * Creates a pool of worker threads that compute the losses in parallel over one shared
 * WebAssembly memory. Results are bitwise identical for any thread count.
 *
 * Where threads cannot work (no `SharedArrayBuffer`, a page that is not cross-origin isolated
 * or whose Content-Security-Policy blocks workers from `blob:` URLs, no worker API, no shared
 * wasm memory), the pool still works: it reports `threads === 1`, says why in `reason`, and runs
 * the single-thread API (initializing it with `init()` if needed).
 *
 * @example
 * ```ts
 * import { createPool } from 'focal-ghm';
 * const pool = await createPool({ threads: 4 });
 * if (pool.reason) console.warn(`focal-ghm: single-threaded: ${pool.reason}`);
 * const { loss, grad } = await pool.sigmoidFocalLoss(logits, targets, { gamma: 2, grad: true });
 * await pool.close();
 * ```
 * @throws (rejects) RangeError/TypeError for bad options; Error when the workers fail to start.
 */
export async function createPool(options?: PoolOptions): Promise<Pool> {
  const fn = 'createPool';
  const o = expectOptions(fn, options, POOL_OPTIONS);
  const threads = o.threads === undefined ? Math.min(256, await hardwareThreads()) : expectInteger(fn, 'options.threads', o.threads, 1, 256);
  const force = expectBoolean(fn, 'options.forceFallback', o.forceFallback ?? false);
  const chunkElements = expectInteger(fn, 'options.chunkElements', o.chunkElements ?? 1 << 21, 1, 2 ** 30);
  const startTimeout = expectPositive(fn, 'options.startTimeout', o.startTimeout ?? 30000);
  let reason = force ? 'forceFallback: true was passed to createPool' : threadsUnavailable();
  if (!reason) {
    const build = await loadSharedBuild();
    if ('reason' in build) reason = build.reason;
    else {
      try {
        return Pool.create(await Threads.start(build, { threads, startTimeout }), undefined, chunkElements);
      } catch (e) {
        if (!(e instanceof WorkersBlocked)) throw e;
        reason = e.message;
      }
    }
  }
  await initRuntime();
  return Pool.create(undefined, reason, chunkElements);
}

/** One input stream of a pass: `perUnit` elements of `array` per unit (element or row). */
interface PassInput {
  array: Typed | undefined;
  perUnit: number;
}

/** A kernel run over a whole batch; see the top of this file. */
interface Pass {
  op: PoolOp;
  units: number;
  perUnit: number;
  tkind: number;
  numClasses: number;
  wkind: number;
  /** logits (or GHM-R pred), targets, weights. */
  inputs: [PassInput, PassInput, PassInput];
  /** Elementwise loss and gradient, `perUnit` floats per unit. */
  outputs: [Float32Array | undefined, Float32Array | undefined];
  slotLen: number;
  a: number[];
  /** Receives the slots of consecutive blocks, in block order. */
  collect?(slots: Float64Array, blocks: number): void;
}

/**
 * A pool of worker threads; see {@link createPool}. Calls return promises and may overlap
 * (each gets its own shared memory); a GHM object's EMA steps happen in completion order.
 *
 * @example
 * ```ts
 * const pool = await createPool({ threads: 2 });
 * const ghmc = new GHMC({ bins: 30, momentum: 0.75 });
 * const [focal, ghm] = await Promise.all([
 *   pool.sigmoidFocalLoss(logits, targets, { grad: true }),
 *   pool.ghmc(ghmc, logits, targets),
 * ]);
 * await pool.close();
 * ```
 */
export class Pool {
  /** Worker threads computing the losses; 1 in the single-thread fallback. */
  readonly threads: number;
  private closedFallback = false;

  /** @internal The constructor for {@link createPool}. */
  static create(pool: Threads | undefined, reason: string | undefined, chunkElements: number): Pool {
    return new Pool(pool, reason, chunkElements);
  }

  /** Use {@link createPool}. */
  private constructor(
    private readonly pool: Threads | undefined,
    /** Why the pool runs single-threaded (`undefined` when it has workers). */
    readonly reason: string | undefined,
    private readonly chunkElements: number,
  ) {
    this.threads = pool ? pool.size : 1;
  }

  /**
   * Whether the pool is closed: by {@link close}, or because a worker died (then every call that
   * was running rejected, and later calls reject too; create a new pool).
   * @example
   * ```ts
   * if (pool.closed) pool = await createPool({ threads: 4 });
   * ```
   */
  get closed(): boolean {
    return this.pool ? this.pool.closedReason !== undefined : this.closedFallback;
  }

  /**
   * Bytes of the pool's shared heap in use (worker stacks, batches, buffers of running calls);
   * 0 in the fallback. A diagnostic: between calls it returns to the same value.
   * @example
   * ```ts
   * const before = pool.memoryInUse;
   * await pool.sigmoidFocalLoss(logits, targets);
   * console.assert(pool.memoryInUse === before);
   * ```
   */
  get memoryInUse(): number {
    return this.pool ? this.pool.heap.allocated : 0;
  }

  private open(fn: string): Threads | undefined {
    if (this.pool?.closedReason) throw this.pool.closedError(fn);
    if (!this.pool && this.closedFallback) throw new Error(`${fn}: the pool is closed (close() was called); create a new one with createPool()`);
    return this.pool;
  }

  /**
   * {@link sigmoidFocalLoss} on the pool's threads: same arguments, options, validation
   * messages and result (and result type); bitwise the same result for any thread count.
   *
   * @example
   * ```ts
   * const pool = await createPool({ threads: 2 });
   * const { loss, grad, alpha } = await pool.sigmoidFocalLoss(logits, targets, { alpha: 'auto', grad: true });
   * //      ^ number  ^ Float32Array
   * ```
   * @throws (rejects) TypeError/RangeError as {@link sigmoidFocalLoss}; Error when the pool is or gets closed.
   */
  sigmoidFocalLoss<R extends Reduction = 'mean', G extends boolean = false, Out extends OutputBuffers = {}>(
    logits: Float32Array,
    targets: Targets,
    options?: SigmoidFocalOptions<R, G, Out>,
  ): Promise<SigmoidFocalResult<LossFor<R>, GradWanted<G, Out>>>;
  async sigmoidFocalLoss(logits: Float32Array, targets: Targets, options?: SigmoidFocalOptions): Promise<SigmoidFocalResult> {
    const pool = this.open('pool.sigmoidFocalLoss');
    if (!pool) return sigmoidFocalLoss(logits, targets, options);
    const fn = 'sigmoidFocalLoss';
    const { x, lay, wkind, w, alphaOpt, gamma, reduction, lossWeight, wantGrad, denom, gradScale, out } = parseSigmoidCall(fn, logits, targets, options);
    this.checkViews(pool, [x, lay.targets.array, w.array, out.loss, out.grad]);
    const base = { units: lay.units, perUnit: lay.perUnit, tkind: lay.tkind, numClasses: lay.numClasses, wkind };
    const xin: PassInput = { array: x, perUnit: lay.perUnit };

    let alpha: number | null;
    if (alphaOpt === 'auto') {
      // α = F / (P + F) over elements of weight > 0, as the single-thread autoAlpha counts them.
      let pos = 0;
      let neg = 0;
      await this.runPass(pool, 'pool.sigmoidFocalLoss', {
        ...base, op: 'count', inputs: [{ array: undefined, perUnit: 0 }, lay.targets, w], outputs: [undefined, undefined], slotLen: 2, a: [],
        collect: (s, blocks) => {
          for (let b = 0; b < blocks; b++) {
            pos += s[2 * b]!;
            neg += s[2 * b + 1]!;
          }
        },
      });
      alpha = pos + neg > 0 ? neg / (pos + neg) : 0.5;
    } else alpha = alphaOpt as number | null;

    const lossArr = reduction === 'none' ? (out.loss ?? new Float32Array(x.length)) : undefined;
    const gradArr = wantGrad || out.grad ? (out.grad ?? new Float32Array(x.length)) : undefined;
    const [aPos, aNeg] = alpha === null ? [1, 1] : [alpha, 1 - alpha];
    let sum = 0;
    const range = new TargetRange();
    await this.runPass(pool, 'pool.sigmoidFocalLoss', {
      ...base, op: 'focal', inputs: [xin, lay.targets, w], outputs: [lossArr, gradArr], slotLen: 3,
      a: [aPos, aNeg, gamma, lossWeight, gradScale],
      collect: (s, blocks) => {
        for (let b = 0; b < blocks; b++) {
          sum += s[3 * b]!;
          range.add(s, 3 * b + 1);
        }
      },
    });
    range.check(fn, 'targets', lay.tkind);
    const loss = lossArr ?? (lossWeight * sum) / denom;
    return gradArr ? { loss, grad: gradArr, alpha } : { loss, alpha };
  }

  /**
   * `ghmc.forward(logits, targets, labelWeight, options)` on the pool's threads: the per-bin
   * statistics of fixed blocks are added in block order and `ghmc.step` makes the one EMA step,
   * so loss, gradient and EMA state are the same as the single-thread call's, for any thread count.
   *
   * @example
   * ```ts
   * const ghmc = new GHMC({ bins: 30, momentum: 0.75 });
   * const { loss, grad } = await pool.ghmc(ghmc, logits, targets, labelWeight, { grad: true });
   * //      ^ number  ^ Float32Array
   * ```
   * @throws (rejects) as {@link GHMC.forward}; TypeError when `ghmc` is not a GHMC.
   */
  ghmc<G extends boolean = false>(ghmc: GHMC, logits: Float32Array, targets: Targets, labelWeight?: Float32Array, options?: GHMForwardOptions<G>): Promise<LossResult<number, G>>;
  async ghmc(ghmc: GHMC, logits: Float32Array, targets: Targets, labelWeight?: Float32Array, options?: GHMForwardOptions): Promise<LossResult<number>> {
    if (!(ghmc instanceof GHMC)) throw new TypeError(`pool.ghmc: ghmc must be a GHMC, got ${describeValue(ghmc)}`);
    const pool = this.open('pool.ghmc');
    if (!pool) return ghmc.forward(logits, targets, labelWeight, options);
    const fn = 'GHMC.forward';
    const o = expectOptions(fn, options, FORWARD_OPTIONS);
    const wantGrad = expectBoolean(fn, 'options.grad', o.grad ?? false);
    const x = expectArray(fn, 'logits', logits, Float32Array);
    const lay = layoutTargets(fn, x.length, targets);
    const { wkind, input: w } = layoutWeights(fn, 'labelWeight', labelWeight, lay);
    this.checkViews(pool, [x, lay.targets.array, w.array]);
    const b = ghmc.bins;
    const len = pool.kernels.fg_ghm_stats_len(b);
    const stats = new GHMStats(b);
    const range = new TargetRange();
    const base = { units: lay.units, perUnit: lay.perUnit, tkind: lay.tkind, numClasses: lay.numClasses, wkind };
    const inputs: Pass['inputs'] = [{ array: x, perUnit: lay.perUnit }, lay.targets, w];
    await this.runPass(pool, 'pool.ghmc', {
      ...base, op: 'ghmcStats', inputs, outputs: [undefined, undefined], slotLen: 2 + len, a: [b, len],
      collect: (s, blocks) => {
        for (let k = 0; k < blocks; k++) {
          const at = k * (2 + len);
          range.add(s, at);
          stats.addRaw(s.subarray(at + 2, at + 2 + len));
        }
      },
    });
    range.check(fn, 'targets', lay.tkind);
    const step = ghmc.step(stats);
    if (!wantGrad) return { loss: step.loss };
    return { loss: step.loss, grad: await this.gradPass(pool, 'pool.ghmc', step, { ...base, op: 'ghmcGrad', inputs, outputs: [undefined, undefined], slotLen: 0, a: [b] }) };
  }

  /**
   * `ghmr.forward(pred, target, labelWeight, options)` on the pool's threads (see {@link Pool.ghmc}).
   *
   * @example
   * ```ts
   * const ghmr = new GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
   * const { loss, grad } = await pool.ghmr(ghmr, pred, target, undefined, { grad: true });
   * ```
   * @throws (rejects) as {@link GHMR.forward}; TypeError when `ghmr` is not a GHMR.
   */
  ghmr<G extends boolean = false>(ghmr: GHMR, pred: Float32Array, target: Float32Array, labelWeight?: Float32Array, options?: GHMForwardOptions<G>): Promise<LossResult<number, G>>;
  async ghmr(ghmr: GHMR, pred: Float32Array, target: Float32Array, labelWeight?: Float32Array, options?: GHMForwardOptions): Promise<LossResult<number>> {
    if (!(ghmr instanceof GHMR)) throw new TypeError(`pool.ghmr: ghmr must be a GHMR, got ${describeValue(ghmr)}`);
    const pool = this.open('pool.ghmr');
    if (!pool) return ghmr.forward(pred, target, labelWeight, options);
    const fn = 'GHMR.forward';
    const o = expectOptions(fn, options, FORWARD_OPTIONS);
    const wantGrad = expectBoolean(fn, 'options.grad', o.grad ?? false);
    const p = expectArray(fn, 'pred', pred, Float32Array);
    const t = expectArray(fn, 'target', target, Float32Array);
    if (t.length !== p.length) throw new RangeError(`${fn}: target has length ${t.length}, expected ${p.length} (one per pred)`);
    const lay: Layout = { n: p.length, tkind: TargetKind.Soft, targets: { array: t, perUnit: 1 }, numClasses: 1, units: p.length, perUnit: 1 };
    const { wkind, input: w } = layoutWeights(fn, 'labelWeight', labelWeight, lay);
    this.checkViews(pool, [p, t, w.array]);
    const b = ghmr.bins;
    const len = pool.kernels.fg_ghm_stats_len(b);
    const stats = new GHMStats(b);
    const base = { units: p.length, perUnit: 1, tkind: TargetKind.Soft, numClasses: 1, wkind };
    const inputs: Pass['inputs'] = [{ array: p, perUnit: 1 }, lay.targets, w];
    await this.runPass(pool, 'pool.ghmr', {
      ...base, op: 'ghmrStats', inputs, outputs: [undefined, undefined], slotLen: len, a: [ghmr.mu, b, len],
      collect: (s, blocks) => {
        for (let k = 0; k < blocks; k++) stats.addRaw(s.subarray(k * len, (k + 1) * len));
      },
    });
    const step = ghmr.step(stats);
    if (!wantGrad) return { loss: step.loss };
    return { loss: step.loss, grad: await this.gradPass(pool, 'pool.ghmr', step, { ...base, op: 'ghmrGrad', inputs, outputs: [undefined, undefined], slotLen: 0, a: [ghmr.mu, b] }) };
  }

  /**
   * A batch whose buffers live in the pool's shared memory: calls read them in place (no copy
   * into shared memory), and `out: { grad: batch.grad }` is written in place. Same options as
   * {@link createBatch}; in the fallback it is an ordinary single-thread batch. Free it with
   * `free()`. Views of shared memory never detach, but do not change a batch while a call
   * that uses it is running.
   *
   * @example
   * ```ts
   * const b = pool.createBatch({ length: n, targets: 'u8', grad: true });
   * b.logits.set(logits);
   * b.targets.set(targets as Uint8Array);
   * const { loss } = await pool.sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
   * b.free();
   * ```
   */
  createBatch(options: BatchOptions): Batch {
    const pool = this.open('pool.createBatch');
    if (!pool) return createBatch(options);
    const o = checkBatchOptions('pool.createBatch', options);
    return Batch.create(pool.heap, o);
  }

  /**
   * Stops the workers. Calls still running reject; later calls reject. Idempotent.
   * @example
   * ```ts
   * const pool = await createPool();
   * try { await pool.sigmoidFocalLoss(logits, targets); } finally { await pool.close(); }
   * ```
   */
  async close(): Promise<void> {
    if (this.pool) this.pool.fail('close() was called');
    else this.closedFallback = true;
  }

  /** @internal Test hook: makes worker `index` crash (`'throw'`), exit (`'exit'`) or be terminated. */
  _killWorker(index: number, how: 'throw' | 'exit' | 'terminate' = 'terminate'): void {
    this.pool?.kill(index, how);
  }

  /** Views into the pool's memory must be a live batch's (not a freed one's). */
  private checkViews(pool: Threads, arrays: Array<Typed | undefined>): void {
    for (const a of arrays) if (a && pool.heap.owns(a)) checkBatchView('focal-ghm pool', a);
  }

  /** The gradient pass of a GHM step: the factors go to shared memory for the workers. */
  private async gradPass(pool: Threads, fn: string, step: GHMStep, pass: Pass): Promise<Float32Array> {
    const grad = new Float32Array(pass.units * pass.perUnit);
    const factors = pool.heap.alloc(step.factors.length * 4);
    try {
      new Float32Array(pool.heap.buffer, factors, step.factors.length).set(step.factors);
      await this.runPass(pool, fn, { ...pass, outputs: [undefined, grad], a: [...pass.a, factors] });
    } finally {
      pool.heap.free(factors);
    }
    return grad;
  }

  /**
   * Runs a pass in steps of at most `chunkElements` (whole blocks), two in flight: while the
   * workers compute step s, the main thread copies in the inputs of step s + 1 and copies out
   * the outputs of step s - 1. Slots are handed to `collect` in block order. Every allocation is
   * freed before returning, and only once no job that may use it is still running.
   */
  private async runPass(pool: Threads, fn: string, pass: Pass): Promise<void> {
    const upb = unitsPerChunk(pass.perUnit);
    const blocks = Math.ceil(pass.units / upb);
    if (blocks === 0) return;
    const heap = pool.heap;
    const bytesPer = (i: PassInput) => (i.array ? i.perUnit * elementBytes(i.array) : 0);
    // In-place addresses are read before any allocation (which may grow the memory).
    const inPlace = (a: Typed | undefined) => (a && heap.owns(a) ? a.byteOffset : 0);
    const inBase = pass.inputs.map((i) => inPlace(i.array));
    const outBase = pass.outputs.map(inPlace);
    // Steps bound the staging memory; with nothing to stage, big steps (bounded only so that the
    // slots of 1024-bin GHM statistics stay at 16 MiB) avoid round trips.
    const staged = pass.inputs.some((i, k) => i.array && !inBase[k]) || pass.outputs.some((a, k) => a && !outBase[k]);
    const perStep = staged ? Math.max(1, Math.floor(this.chunkElements / (upb * pass.perUnit))) : Math.min(blocks, 1024);
    const steps = Math.ceil(blocks / perStep);
    const stepUnits = Math.min(pass.units, perStep * upb);
    const allocated: number[] = [];
    const alloc = (bytes: number) => {
      const p = heap.alloc(bytes);
      allocated.push(p);
      return p;
    };
    const running: Promise<void>[] = [];
    try {
      const bufs = Array.from({ length: Math.min(2, steps) }, () => ({
        ins: pass.inputs.map((i, k) => (i.array && !inBase[k] ? alloc(stepUnits * bytesPer(i)) : 0)),
        outs: pass.outputs.map((a, k) => (a && !outBase[k] ? alloc(stepUnits * pass.perUnit * 4) : 0)),
        slots: alloc(16 + perStep * pass.slotLen * 8),
      }));
      const finish = (st: { buf: (typeof bufs)[0]; u0: number; u: number; nb: number }) => {
        pass.outputs.forEach((a, k) => {
          if (a && st.buf.outs[k]) a.set(new Float32Array(heap.buffer, st.buf.outs[k]!, st.u * pass.perUnit), st.u0 * pass.perUnit);
        });
        pass.collect?.(new Float64Array(heap.buffer, st.buf.slots + 16, st.nb * pass.slotLen), st.nb);
      };
      let prev: { job: Promise<void>; buf: (typeof bufs)[0]; u0: number; u: number; nb: number } | undefined;
      for (let s = 0; s < steps; s++) {
        const buf = bufs[s % 2]!;
        const u0 = s * perStep * upb;
        const u = Math.min(stepUnits, pass.units - u0);
        const nb = Math.ceil(u / upb);
        const v = heap.views();
        const ptr = pass.inputs.map((inp, k) => {
          const a = inp.array;
          if (!a) return 0;
          if (inBase[k]) return inBase[k]! + u0 * bytesPer(inp);
          copyIn(v, a, u0 * inp.perUnit, u * inp.perUnit, buf.ins[k]!);
          return buf.ins[k]!;
        });
        const optr = pass.outputs.map((a, k) => (!a ? 0 : buf.outs[k] || outBase[k]! + u0 * pass.perUnit * 4));
        const job = pool.run(
          fn,
          {
            op: pass.op, blocks: nb, units: u, unitsPerBlock: upb, perUnit: pass.perUnit,
            tkind: pass.tkind, numClasses: pass.numClasses, wkind: pass.wkind,
            x: ptr[0]!, xb: bytesPer(pass.inputs[0]), t: ptr[1]!, tb: bytesPer(pass.inputs[1]), w: ptr[2]!, wb: bytesPer(pass.inputs[2]),
            loss: optr[0]!, grad: optr[1]!, slotRegion: buf.slots, slotLen: pass.slotLen, a: pass.a,
          },
          nb,
        );
        running.push(job);
        job.catch(() => {}); // awaited below; this only keeps a rejection that arrives early from being "unhandled"
        if (prev) {
          await prev.job;
          finish(prev);
        }
        prev = { job, buf, u0, u, nb };
      }
      await prev!.job;
      finish(prev!);
    } finally {
      await Promise.allSettled(running);
      for (const p of allocated) heap.free(p);
    }
  }
}
