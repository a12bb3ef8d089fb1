// A thread pool for the losses (issue #4): the same calls as the single-thread API, run by
// workers over one shared wasm memory, with results bitwise independent of the thread count.
//
// How a call runs: the single-thread API's own checks (parseSigmoidCall, parseFamilyCall,
// GHMC/GHMR `inputs`: same messages), then "passes". A pass cuts the batch into the
// single-thread API's chunks ("blocks", never dependent on the thread count); workers claim
// blocks and write each block's partial sums to the block's own slot; the main thread adds the
// slots in block order. Arrays in the pool's memory (`pool.createBatch`) are used in place; the
// main thread copies ordinary arrays in, in steps of `chunkElements` with RING steps in flight
// (see runPass). At most MAX_PASSES passes run at once and the others wait their turn, so the
// pool's memory is what a few passes need however many calls are in flight.
// Threads and the worker protocol are in pool-threads.ts, the worker program in pool-worker.ts.
// The extras losses (the focal family, poly1) run the same way on the extras module's kernels,
// which a pool created with `extras` loads in every worker.

import { checkBatchOptions, createBatch, Batch, type BatchOptions } from './batch';
import { describeValue, expectBoolean, expectInteger, expectOptions, expectPositive } from './errors';
import {
  alphaOf,
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
import {
  distribution,
  distributionFocalLoss,
  FamilySums,
  parseFamilyCall,
  quality,
  qualityFocalLoss,
  varifocal,
  varifocalLoss,
  type DistributionFocalOptions,
  type FamilyLoss,
  type QualityFocalOptions,
  type QualityTargets,
  type VarifocalOptions,
} from './family';
import { forwardOptions, GHMC, GHMR, GHMStats, type GHMForwardOptions } from './ghm';
import { TargetRange, type Layout, type Targets } from './inputs';
import { expectExtras, initRuntime, type Extras } from './loader';
import { copyIn, elementBytes, planStreams, type ChunkInput, type ChunkOutput } from './memory';
import { hardwareThreads, loadSharedBuild, loadSharedExtras, Threads, threadsUnavailable, WorkersBlocked } from './pool-threads';
import type { PoolOp } from './pool-worker';

export interface PoolOptions {
  /** Worker threads, 1..256. Default: the number of logical processors. */
  threads?: number;
  /** Use the single-thread API even where threads are available (what runtimes without SharedArrayBuffer get). */
  forceFallback?: boolean;
  /**
   * Elements of ordinary (non-shared) input arrays copied into shared memory per step; bounds the
   * pool's memory (four steps per pass, two passes at a time). Rounded to whole blocks. Default 2^20.
   */
  chunkElements?: number;
  /** Milliseconds to wait for the workers to start before rejecting. Default 30000. */
  startTimeout?: number;
  /**
   * The extras module, as for `init({ extras })`: pass `extras` from `focal-ghm/extras` to run
   * the focal family (`pool.qualityFocalLoss`, `pool.varifocalLoss`,
   * `pool.distributionFocalLoss`) and `poly1` on the pool. Its shared-memory build is loaded
   * into every worker; a pool without it refuses those calls. Default: none.
   */
  extras?: Extras;
}

const POOL_OPTIONS = ['threads', 'forceFallback', 'chunkElements', 'startTimeout', 'extras'] as const;

/**
 * Steps of a pass in flight: the copy runs up to RING - 1 steps ahead of the workers, so they
 * keep busy while the main thread waits for a core (see docs/PERFORMANCE.md, Threads).
 */
const RING = 4;
/** Passes running at once; more would only hold more staging memory (the workers are shared). */
const MAX_PASSES = 2;
/** Bound of a step's slots (1024-bin GHM statistics take 16 KiB per block). */
const SLOT_BYTES = 1 << 22;

/**
 * Creates a pool of worker threads that compute the losses in parallel over one shared
 * WebAssembly memory. Results are bitwise identical for any thread count.
 *
 * Where threads cannot work (no `SharedArrayBuffer`, a page that is not cross-origin isolated
 * or whose Content-Security-Policy blocks workers from `blob:` URLs, no worker API, no shared
 * wasm memory), the pool still works: it reports `threads === 1`, says why in `reason`, and runs
 * the single-thread API (initializing it with `init()` if needed).
 *
 * Extras: the focal family and `poly1` run on a pool created with `extras` (the object
 * `init({ extras })` takes, from `focal-ghm/extras`), whether or not `init` loaded them: the pool
 * loads the extras module's shared-memory build (a chunk of its own) into every worker, over the
 * same memory, and a single-thread fallback passes `extras` to `init`. A pool created without
 * them refuses those calls, with or without threads; when the extras' shared build cannot be
 * used (a package built without it, an entry point without one), the whole pool runs
 * single-threaded and says why in `reason`.
 *
 * @example
 * ```ts
 * import { createPool } from 'focal-ghm';
 * const pool = await createPool({ threads: 4 });
 * if (pool.reason) console.warn(`focal-ghm: single-threaded: ${pool.reason}`);
 * const { loss, grad } = await pool.sigmoidFocalLoss(logits, targets, { gamma: 2, grad: true });
 * await pool.close();
 * ```
 * @example
 * ```ts
 * import { createPool } from 'focal-ghm';
 * import { threadedExtras } from 'focal-ghm/extras';
 * const pool = await createPool({ threads: 4, extras: threadedExtras });
 * const { loss } = await pool.qualityFocalLoss(logits, { labels, scores, numClasses: 80 });
 * ```
 * @throws (rejects) RangeError/TypeError for bad options; Error when the workers fail to start.
 */
export async function createPool(options?: PoolOptions): Promise<Pool> {
  const fn = 'createPool';
  const o = expectOptions(fn, options, POOL_OPTIONS);
  const threads = o.threads === undefined ? Math.min(256, await hardwareThreads()) : expectInteger(fn, 'options.threads', o.threads, 1, 256);
  const force = expectBoolean(fn, 'options.forceFallback', o.forceFallback ?? false);
  const chunkElements = expectInteger(fn, 'options.chunkElements', o.chunkElements ?? 1 << 20, 1, 2 ** 30);
  const startTimeout = expectPositive(fn, 'options.startTimeout', o.startTimeout ?? 30000);
  const extras = o.extras === undefined ? undefined : expectExtras(fn, o.extras);
  let reason = force ? 'forceFallback: true was passed to createPool' : threadsUnavailable();
  if (!reason) {
    const build = await loadSharedBuild();
    const xbuild = extras && !('reason' in build) ? await loadSharedExtras(extras) : undefined;
    if ('reason' in build) reason = build.reason;
    else if (xbuild && 'reason' in xbuild) reason = xbuild.reason;
    else {
      try {
        return Pool.create(await Threads.start(build, { threads, startTimeout, extras: xbuild }), undefined, chunkElements, extras !== undefined);
      } catch (e) {
        if (!(e instanceof WorkersBlocked)) throw e;
        reason = e.message;
      }
    }
  }
  await initRuntime(extras ? { extras } : {});
  return Pool.create(undefined, reason, chunkElements, extras !== undefined);
}

/** What a pass runs over: units of `perUnit` logits (blocks of unitsPerChunk(perUnit) units), and the core kernels' target and weight kinds. */
interface Shape {
  units: number;
  perUnit: number;
  tkind: number;
  numClasses: number;
  wkind: number;
}

/** The shape of a core call. */
function shapeOf(lay: Layout, wkind: number): Shape {
  return { units: lay.units, perUnit: lay.perUnit, tkind: lay.tkind, numClasses: lay.numClasses, wkind };
}

/** A kernel run over a whole batch; see the top of this file. */
interface Pass extends Shape {
  /** The pool method, for errors about the pool (closed during the call, a kernel failed). */
  name: string;
  op: PoolOp;
  /** The op's input streams, in its order (see JobMessage in ts/pool-worker.ts). */
  inputs: ChunkInput[];
  /** Its output streams, after the inputs (core ops: loss, gradient). */
  outputs?: ChunkOutput[];
  slotLen: number;
  a: number[];
  /** Copied into shared memory for the pass, its address appended to `a` (GHM factors). */
  table?: Float32Array;
  /** Receives each block's slot (`slotLen` floats of `f64` from `at`), in block order. */
  collect?(f64: Float64Array, at: number): void;
}

const ABSENT: ChunkInput = { array: undefined, perUnit: 0 };

/** The error of an extras call on a pool created without extras. */
function noExtras(name: string, what = ''): Error {
  return new Error(`${name}: ${what}the pool was created without extras; createPool({ extras: threadedExtras }) with \`import { threadedExtras } from 'focal-ghm/extras'\``);
}

/** At most `free` holders at a time; the others wait, in call order. */
class Turns {
  private waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async enter(): Promise<void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Per GHM object, when its last pool call settles: calls on one object run one after another,
 * in call order, so that each steps the state the previous one left (the state changes only
 * when a call succeeds, at its end).
 */
const ghmCalls = new WeakMap<GHMC | GHMR, Promise<void>>();

/**
 * A pool of worker threads; see {@link createPool}. Calls return promises and may overlap; a GHM
 * object's calls run in call order, and each makes its EMA step when it succeeds.
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
  private readonly passes = new Turns(MAX_PASSES);

  /** @internal The constructor for {@link createPool}. */
  static create(pool: Threads | undefined, reason: string | undefined, chunkElements: number, extras: boolean): Pool {
    return new Pool(pool, reason, chunkElements, extras);
  }

  /** Use {@link createPool}. */
  private constructor(
    private readonly pool: Threads | undefined,
    /** Why the pool runs single-threaded (`undefined` when it has workers). */
    readonly reason: string | undefined,
    private readonly chunkElements: number,
    /** Whether the pool was created with extras (see {@link PoolOptions.extras}). */
    readonly extras: boolean,
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
   * `poly1` ≠ 0 needs a pool created with `extras` (see {@link createPool}).
   *
   * @example
   * ```ts
   * const pool = await createPool({ threads: 2 });
   * const { loss, grad, alpha } = await pool.sigmoidFocalLoss(logits, targets, { alpha: 'auto', grad: true });
   * //      ^ number  ^ Float32Array
   * ```
   * @throws (rejects) TypeError/RangeError as {@link sigmoidFocalLoss}; Error when the pool is or gets closed, or for `poly1` ≠ 0 on a pool without extras.
   */
  sigmoidFocalLoss<R extends Reduction = 'mean', G extends boolean = false, Out extends OutputBuffers = {}>(
    logits: Float32Array,
    targets: Targets,
    options?: SigmoidFocalOptions<R, G, Out>,
  ): Promise<SigmoidFocalResult<LossFor<R>, GradWanted<G, Out>>>;
  async sigmoidFocalLoss(logits: Float32Array, targets: Targets, options?: SigmoidFocalOptions): Promise<SigmoidFocalResult> {
    const name = 'pool.sigmoidFocalLoss';
    const pool = this.open(name);
    const fn = 'sigmoidFocalLoss';
    if (!pool) {
      // The threaded path's checks and refusal, in its order; a poly1 of 0 needs no extras.
      const eps = typeof options === 'object' && options !== null ? (options as { poly1?: unknown }).poly1 : undefined;
      if (!this.extras && eps !== undefined && eps !== 0 && parseSigmoidCall(fn, logits, targets, options).poly1 !== 0) {
        throw noExtras(name, 'options.poly1 needs the extras kernels: ');
      }
      return sigmoidFocalLoss(logits, targets, options);
    }
    const { x, lay, wkind, w, alphaOpt, gamma, reduction, lossWeight, wantGrad, denom, gradScale, out, probs, ax, poly1 } = parseSigmoidCall(fn, logits, targets, options);
    if (poly1 !== 0 && !pool.extras) throw noExtras(name, 'options.poly1 needs the extras kernels: ');
    if (ax) throw new RangeError(`pool.sigmoidFocalLoss: options.shape with class-index targets and a class axis before the last runs on the calling thread only; call sigmoidFocalLoss`);
    let alpha = alphaOpt as number | null;
    if (alphaOpt === 'auto') {
      let pos = 0;
      let neg = 0;
      const collect = (s: Float64Array, at: number) => {
        pos += s[at]!;
        neg += s[at + 1]!;
      };
      await this.runPass(pool, { name, op: 'count', ...shapeOf(lay, wkind), inputs: [ABSENT, lay.targets, w], slotLen: 2, a: [], collect });
      alpha = alphaOf(pos, neg);
    }
    const lossArr = reduction === 'none' ? (out.loss ?? new Float32Array(x.length)) : undefined;
    const gradArr = wantGrad || out.grad ? (out.grad ?? new Float32Array(x.length)) : undefined;
    const [aPos, aNeg] = alpha === null ? [1, 1] : [alpha, 1 - alpha];
    let sum = 0;
    const range = new TargetRange();
    const pRange = new TargetRange();
    const collect = (s: Float64Array, at: number) => {
      sum += s[at]!;
      range.add(s, at + 1);
      if (probs) pRange.add(s, at + 3);
    };
    // Poly-1 is the extras module's kernel (ε = 0 is the core's plain loss), as in sigmoidPass.
    const a = poly1 !== 0 ? [aPos, aNeg, gamma, lossWeight, gradScale, poly1] : [aPos, aNeg, gamma, lossWeight, gradScale];
    const op = probs ? 'focalProb' : poly1 !== 0 ? 'focalPoly' : 'focal';
    const outputs = [{ array: lossArr, perUnit: lay.perUnit }, { array: gradArr, perUnit: lay.perUnit }];
    await this.runPass(pool, { name, op, ...shapeOf(lay, wkind), inputs: [{ array: x, perUnit: lay.perUnit }, lay.targets, w], outputs, slotLen: probs ? 5 : 3, a, collect });
    range.check(fn, 'targets', lay.tkind);
    if (probs) pRange.checkProbabilities(fn, 'logits');
    const loss = lossArr ?? (lossWeight * sum) / denom;
    return gradArr ? { loss, grad: gradArr, alpha } : { loss, alpha };
  }

  /**
   * {@link qualityFocalLoss} on the pool's threads: same arguments, options, validation messages
   * and result; bitwise the same result for any thread count. Needs a pool created with `extras`.
   *
   * @example
   * ```ts
   * import { threadedExtras } from 'focal-ghm/extras';
   * const pool = await createPool({ threads: 4, extras: threadedExtras });
   * const { loss, grad } = await pool.qualityFocalLoss(logits, { labels, scores, numClasses: 80 }, { grad: true });
   * ```
   * @throws (rejects) as {@link qualityFocalLoss}; Error when the pool was created without extras, or is or gets closed.
   */
  qualityFocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
    logits: Float32Array,
    targets: QualityTargets,
    options?: QualityFocalOptions<R, G>,
  ): Promise<LossResult<LossFor<R>, G>>;
  qualityFocalLoss(logits: Float32Array, targets: QualityTargets, options?: QualityFocalOptions): Promise<LossResult> {
    return this.family('pool.qualityFocalLoss', 'qualityFocalLoss', quality, qualityFocalLoss, logits, targets, options);
  }

  /**
   * {@link varifocalLoss} on the pool's threads (see {@link Pool.qualityFocalLoss}).
   *
   * @example
   * ```ts
   * const { loss } = await pool.varifocalLoss(logits, iouTargets, { alpha: 0.75, gamma: 2 });
   * ```
   * @throws (rejects) as {@link varifocalLoss}; Error when the pool was created without extras, or is or gets closed.
   */
  varifocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
    logits: Float32Array,
    targets: Float32Array,
    options?: VarifocalOptions<R, G>,
  ): Promise<LossResult<LossFor<R>, G>>;
  varifocalLoss(logits: Float32Array, targets: Float32Array, options?: VarifocalOptions): Promise<LossResult> {
    return this.family('pool.varifocalLoss', 'varifocalLoss', varifocal, varifocalLoss, logits, targets, options);
  }

  /**
   * {@link distributionFocalLoss} on the pool's threads (see {@link Pool.qualityFocalLoss}).
   *
   * @example
   * ```ts
   * const { loss, grad } = await pool.distributionFocalLoss(logits, sideTargets, { bins: 16, grad: true });
   * ```
   * @throws (rejects) as {@link distributionFocalLoss}; Error when the pool was created without extras, or is or gets closed.
   */
  distributionFocalLoss<R extends Reduction = 'mean', G extends boolean = false>(
    logits: Float32Array,
    targets: Float32Array,
    options?: DistributionFocalOptions<R, G>,
  ): Promise<LossResult<LossFor<R>, G>>;
  distributionFocalLoss(logits: Float32Array, targets: Float32Array, options?: DistributionFocalOptions): Promise<LossResult> {
    return this.family('pool.distributionFocalLoss', 'distributionFocalLoss', distribution, distributionFocalLoss, logits, targets, options);
  }

  /**
   * A call of the focal family: the single-thread parse (parseFamilyCall, same messages), one
   * pass, then the single-thread reduction (Σ of the blocks in block order, as familyPass adds
   * its chunks) and the range check after the pass.
   */
  private async family<Opts, T, O>(
    name: string,
    fn: string,
    loss: FamilyLoss<Opts>,
    single: (logits: Float32Array, targets: T, options?: O) => LossResult,
    logits: Float32Array,
    targets: T,
    options: O | undefined,
  ): Promise<LossResult> {
    const pool = this.open(name);
    if (!this.extras) throw noExtras(name);
    if (!pool) return single(logits, targets, options);
    const { x, call, out, reduction, lossWeight, wantGrad, denom, gradScale } = parseFamilyCall(fn, loss, logits, targets, options);
    const lossArr = reduction === 'none' ? (out.loss ?? new Float32Array(call.units)) : undefined;
    const gradArr = wantGrad ? (out.grad ?? new Float32Array(x.length)) : undefined;
    const sums = new FamilySums();
    await this.runPass(pool, {
      name,
      op: call.op,
      units: call.units,
      perUnit: call.perUnit,
      tkind: 0,
      numClasses: 0,
      wkind: 0,
      inputs: [{ array: x, perUnit: call.perUnit }, ...call.inputs],
      outputs: [{ array: lossArr, perUnit: 1 }, { array: gradArr, perUnit: call.perUnit }],
      slotLen: 3,
      a: [...call.a, lossWeight, gradScale],
      collect: (s, at) => sums.add(s, at),
    });
    sums.check(call);
    const l = lossArr ?? (lossWeight * sums.sum) / denom;
    return gradArr ? { loss: l, grad: gradArr } : { loss: l };
  }

  /**
   * `ghmc.forward(logits, targets, labelWeight, options)` on the pool's threads: the per-bin
   * statistics of fixed blocks are added in block order and make the one EMA step, so loss,
   * gradient and EMA state are the same as the single-thread call's, for any thread count. The
   * state steps when the call succeeds (a call that rejects leaves it as it was); calls on one
   * GHMC run in call order.
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
    const wantGrad = poolForward(fn, 'pool.ghmc', options, false);
    const { x, lay, wkind, w } = ghmc.inputs(fn, logits, targets, labelWeight);
    return this.ghm(pool, fn, ghmc, wantGrad, { name: 'pool.ghmc', ...shapeOf(lay, wkind), inputs: [{ array: x, perUnit: lay.perUnit }, lay.targets, w] }, 'ghmcStats', 'ghmcGrad', []);
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
    const wantGrad = poolForward(fn, 'pool.ghmr', options, true);
    const { pred: p, lay, wkind, w } = ghmr.inputs(fn, pred, target, labelWeight);
    return this.ghm(pool, fn, ghmr, wantGrad, { name: 'pool.ghmr', ...shapeOf(lay, wkind), inputs: [{ array: p, perUnit: 1 }, lay.targets, w] }, 'ghmrStats', 'ghmrGrad', [ghmr.mu]);
  }

  /**
   * A GHM forward: the statistics pass, the step, the gradient pass, then the step becomes the
   * state. GHM-C slots start with the targets' range (GHM-R targets are any real number).
   */
  private ghm(
    pool: Threads,
    fn: string,
    ghm: GHMC | GHMR,
    wantGrad: boolean,
    pass: Pick<Pass, 'name' | 'inputs' | keyof Shape>,
    statsOp: PoolOp,
    gradOp: PoolOp,
    a: number[],
  ): Promise<LossResult<number>> {
    const run = async (): Promise<LossResult<number>> => {
      const b = ghm.bins;
      const len = pool.kernels.fg_ghm_stats_len(b);
      const head = ghm instanceof GHMC ? 2 : 0;
      const stats = new GHMStats(b);
      const range = new TargetRange();
      const collect = (s: Float64Array, at: number) => {
        if (head) range.add(s, at);
        stats.addRaw(s.subarray(at + head, at + head + len));
      };
      await this.runPass(pool, { ...pass, op: statsOp, slotLen: head + len, a: [...a, b, len], collect });
      range.check(fn, 'targets', pass.tkind);
      const { step, commit } = ghm.pendingStep(stats);
      let grad: Float32Array | undefined;
      if (wantGrad) {
        grad = new Float32Array(pass.units * pass.perUnit);
        const outputs = [{ array: undefined, perUnit: pass.perUnit }, { array: grad, perUnit: pass.perUnit }];
        await this.runPass(pool, { ...pass, op: gradOp, outputs, slotLen: 0, a: [...a, b], table: step.factors });
      }
      commit();
      return grad ? { loss: step.loss, grad } : { loss: step.loss };
    };
    const call = (ghmCalls.get(ghm) ?? Promise.resolve()).then(run);
    // The next call's turn comes when this one settles, however; the chain holds no result (a gradient).
    ghmCalls.set(ghm, call.then(() => undefined, () => undefined));
    return call;
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
   * Stops the workers. Calls still running or waiting reject; later calls reject. Idempotent.
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

  /**
   * Runs a pass in steps of whole blocks, RING in flight: while the workers compute the oldest
   * steps, the main thread copies in the inputs of the next one and copies out the outputs of
   * finished ones. Ordinary arrays bound a step to `chunkElements`; with nothing to copy, a step
   * is bounded only by its slots. Slots reach `collect` in block order. Everything allocated is
   * freed before returning, and only once no job that may use it is still running.
   */
  private async runPass(pool: Threads, pass: Pass): Promise<void> {
    const { units, perUnit } = pass;
    const upb = unitsPerChunk(perUnit);
    const blocks = Math.ceil(units / upb);
    if (blocks === 0) return;
    await this.passes.enter();
    const heap = pool.heap;
    const allocated: number[] = [];
    const alloc = (bytes: number) => {
      const p = heap.alloc(bytes);
      allocated.push(p);
      return p;
    };
    const inFlight: Array<{ job: Promise<void>; scratch: number; slots: number; u0: number; u: number; nb: number }> = [];
    try {
      if (pool.closedReason) throw pool.closedDuringCall(pass.name);
      // Inputs, then outputs: the op's streams (JobMessage in ts/pool-worker.ts).
      const nIn = pass.inputs.length;
      const streams: ChunkInput[] = [...pass.inputs, ...(pass.outputs ?? [])];
      const maxBlocks = Math.max(1, Math.floor(SLOT_BYTES / (8 * Math.max(1, pass.slotLen))));
      const stagedBlocks = Math.min(maxBlocks, Math.max(1, Math.floor(this.chunkElements / (upb * perUnit))));
      // Before any allocation: the plan holds addresses of arrays used in place.
      const plan: number[] = [];
      const need = planStreams(streams, Math.min(units, stagedBlocks * upb), heap.views().buffer, (a) => heap.owns(a), plan, 0);
      const perStep = need > 0 ? stagedBlocks : Math.min(blocks, maxBlocks);
      const steps = Math.ceil(blocks / perStep);
      const unitBytes = streams.map((c) => (c.array ? c.perUnit * elementBytes(c.array) : 0));
      const ring = Array.from({ length: Math.min(RING, steps) }, () => ({ scratch: need > 0 ? alloc(need) : 0, slots: alloc(16 + perStep * pass.slotLen * 8) }));
      let a = pass.a;
      if (pass.table) {
        const t = alloc(pass.table.length * 4);
        heap.views().f32.set(pass.table, t / 4);
        a = [...a, t];
      }
      const finishOldest = async () => {
        const st = inFlight.shift()!;
        await st.job;
        const v = heap.views();
        for (let i = nIn; i < streams.length; i++) {
          if (plan[i]! >= 0) continue;
          const at = (st.scratch - 1 - plan[i]!) / 4;
          const per = streams[i]!.perUnit;
          (streams[i]!.array as Float32Array).set(v.f32.subarray(at, at + st.u * per), st.u0 * per);
        }
        if (pass.collect) for (let b = 0; b < st.nb; b++) pass.collect(v.f64, (st.slots + 16) / 8 + b * pass.slotLen);
      };
      for (let s = 0; s < steps; s++) {
        if (inFlight.length === ring.length) await finishOldest();
        const { scratch, slots } = ring[s % ring.length]!;
        const u0 = s * perStep * upb;
        const u = Math.min(perStep * upb, units - u0);
        const nb = Math.ceil(u / upb);
        const v = heap.views();
        const at = plan.map((p, i) => {
          if (p >= 0) return p && p + u0 * unitBytes[i]!;
          const array = streams[i]!.array!;
          if (i < nIn) copyIn(v, array, u0 * streams[i]!.perUnit, u * streams[i]!.perUnit, scratch - 1 - p);
          return scratch - 1 - p;
        });
        const { op, tkind, numClasses, wkind, slotLen } = pass;
        const job = pool.run(pass.name, { op, blocks: nb, units: u, unitsPerBlock: upb, perUnit, tkind, numClasses, wkind, at, unitBytes, slotRegion: slots, slotLen, a }, nb);
        job.catch(() => {}); // awaited in order; this only keeps an early rejection from being "unhandled"
        inFlight.push({ job, scratch, slots, u0, u, nb });
      }
      while (inFlight.length) await finishOldest();
    } finally {
      // A job taken out of inFlight has settled: it was awaited.
      await Promise.allSettled(inFlight.map((st) => st.job));
      for (const p of allocated) heap.free(p);
      this.passes.leave();
    }
  }
}

/**
 * A pool GHM call's option checks: the single-thread call's (same messages). Reduction 'none' is
 * not on the pool's threads (its per-element terms take passes of their own, see ts/ghm.ts): a
 * RangeError saying so, before any work.
 */
function poolForward(fn: string, name: string, options: unknown, regression: boolean): boolean {
  const { wantGrad, none } = forwardOptions(fn, options, regression);
  if (none) throw new RangeError(`${name}: options.reduction 'none' runs on the calling thread only; call forward() on the GHM object`);
  return wantGrad;
}
