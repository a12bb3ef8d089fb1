// GHM-C and GHM-R (docs/SPEC.md §3–4): the EMA state, the step from per-bin statistics to bin
// weights and loss, and the public classes. The kernels only collect statistics and apply
// per-bin factors; everything with state happens here, in float64, and only after the inputs
// have been fully checked, so a call that throws leaves the state untouched.

import { describeValue, expectArray, expectBoolean, expectFinite, expectInRange, expectInteger, expectOneOf, expectOptions, expectPositive } from './errors';
import { layoutTargets, layoutWeights, TargetKind, TargetRange, WeightKind, type Layout, type Targets } from './inputs';
import { runChunked, type ChunkInput } from './memory';
import { sigmoidPass, unitsPerChunk, type LossFor, type LossResult } from './focal';
import { workspace, type Workspace } from './workspace';

/** The kernels keep per-lane histograms on the stack, sized for this many bins. */
export const MAX_BINS = 1024;

/**
 * Per-bin sufficient statistics of a batch: element counts and loss sums per bin. They add:
 * chunks of a stream, blocks of a thread pool, or shards on data-parallel replicas merge into the
 * statistics of the whole batch with {@link GHMStats.add}, and one EMA step on the merged value
 * gives exactly the loss of the whole batch.
 */
export class GHMStats {
  /** Valid elements per bin. */
  readonly counts: Float64Array;
  /** Σ loss term (BCE for GHM-C, authentic smooth L1 for GHM-R) per bin. */
  readonly sums: Float64Array;
  /** Valid elements whose gradient norm is NaN (NaN inputs): counted in `tot`, in no bin. */
  nanCount = 0;
  nanSum = 0;
  /** Σ label weights over all elements (GHM-R's `tot`). */
  weightSum = 0;

  constructor(readonly bins: number) {
    expectInteger('GHMStats', 'bins', bins, 1, MAX_BINS);
    this.counts = new Float64Array(bins);
    this.sums = new Float64Array(bins);
  }

  /** Adds `other` into this (same bins); returns this. */
  add(other: GHMStats): this {
    if (!(other instanceof GHMStats)) throw new TypeError('GHMStats.add: other must be a GHMStats');
    if (other.bins !== this.bins) throw new RangeError(`GHMStats.add: other has ${other.bins} bins, expected ${this.bins}`);
    for (let i = 0; i < this.bins; i++) {
      this.counts[i]! += other.counts[i]!;
      this.sums[i]! += other.sums[i]!;
    }
    this.nanCount += other.nanCount;
    this.nanSum += other.nanSum;
    this.weightSum += other.weightSum;
    return this;
  }

  /** Number of valid elements. */
  get valid(): number {
    let s = this.nanCount;
    for (let i = 0; i < this.bins; i++) s += this.counts[i]!;
    return s;
  }

  /** Plain JSON (to send to another replica or worker). */
  toJSON(): { bins: number; counts: number[]; sums: number[]; nanCount: number; nanSum: number; weightSum: number } {
    return {
      bins: this.bins,
      counts: Array.from(this.counts),
      sums: Array.from(this.sums),
      nanCount: this.nanCount,
      nanSum: this.nanSum,
      weightSum: this.weightSum,
    };
  }

  /**
   * The inverse of {@link GHMStats.toJSON}, for statistics from another replica or worker: every
   * count a whole number ≥ 0, every sum a finite number ≥ 0 (`nanSum`: any number, or `null`,
   * JSON's NaN), so that a step on them keeps the EMA state finite.
   */
  static fromJSON(j: ReturnType<GHMStats['toJSON']>): GHMStats {
    const fn = 'GHMStats.fromJSON';
    const o = expectOptions(fn, j, ['bins', 'counts', 'sums', 'nanCount', 'nanSum', 'weightSum'] as const, 'json');
    const bins = expectInteger(fn, 'json.bins', o.bins, 1, MAX_BINS);
    const s = new GHMStats(bins);
    const counts = expectDense(fn, 'json.counts', o.counts, bins, true);
    const sums = expectDense(fn, 'json.sums', o.sums, bins, false);
    const nanCount = expectStat(fn, 'json.nanCount', o.nanCount, true);
    const weightSum = expectStat(fn, 'json.weightSum', o.weightSum, false);
    if (o.nanSum !== null && typeof o.nanSum !== 'number') throw new TypeError(`${fn}: json.nanSum must be a number or null, got ${describeValue(o.nanSum)}`);
    s.counts.set(counts);
    s.sums.set(sums);
    s.nanCount = nanCount;
    s.nanSum = o.nanSum === null ? NaN : o.nanSum;
    s.weightSum = weightSum;
    return s;
  }

  /** @internal Adds a kernel statistics array (layout in crates/kernels/src/ghm.rs). */
  addRaw(raw: Float64Array): void {
    const b = this.bins;
    for (let i = 0; i < b; i++) {
      this.counts[i]! += raw[i]!;
      this.sums[i]! += raw[b + 1 + i]!;
    }
    this.nanCount += raw[b]!;
    this.nanSum += raw[2 * b + 1]!;
    this.weightSum += raw[2 * b + 2]!;
  }
}

/** A count (a whole number) or a sum of statistics: finite and ≥ 0. */
function expectStat(fn: string, name: string, v: unknown, whole: boolean): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number, got ${describeValue(v)}`);
  if (!(v >= 0 && Number.isFinite(v)) || (whole && !Number.isInteger(v))) {
    throw new RangeError(`${fn}: ${name} must be a finite ${whole ? 'whole number' : 'number'} ≥ 0, got ${v}`);
  }
  return v;
}

/** An array of `length` stats, every index present (a sparse array's holes would become NaN). */
function expectDense(fn: string, name: string, v: unknown, length: number, whole: boolean): number[] {
  if (!Array.isArray(v)) throw new TypeError(`${fn}: ${name} must be an array, got ${describeValue(v)}`);
  if (v.length !== length) throw new RangeError(`${fn}: ${name} has length ${v.length}, expected ${length} (one per bin)`);
  for (let i = 0; i < length; i++) expectStat(fn, `${name}[${i}]`, v[i], whole);
  return v as number[];
}

/** The outcome of one EMA step: the loss, and per-slot gradient factors for the kernels. */
export interface GHMStep {
  loss: number;
  /** `lossWeight · weight_bin / tot` per bin, then 0 for the NaN and discard slots. */
  factors: Float32Array;
}

/** JSON-serializable EMA state of a GHM loss. */
export interface GHMState {
  kind: 'ghmc' | 'ghmr';
  bins: number;
  momentum: number;
  accSum: number[];
}

/** What a finished GHM stream gives: the loss of the whole stream and its gradient, piece by piece. */
export interface GHMStreamResult {
  loss: number;
  /** The per-bin statistics of the whole stream. */
  stats: GHMStats;
  step: GHMStep;
  /** d loss / d input for a piece given again (the arrays pushed, or any part of the batch). */
  gradient(input: Float32Array, target: Targets | Float32Array, labelWeight?: Float32Array): Float32Array;
}

/** A batch pushed in pieces; see {@link GHMC.stream}. */
export interface GHMStream {
  /** Adds a piece (no EMA step yet). Throws on bad input, keeping what was pushed before. */
  push(input: Float32Array, target: Targets | Float32Array, labelWeight?: Float32Array): void;
  /** One EMA step for the whole stream; the loss comes from the merged per-bin statistics. */
  finish(): GHMStreamResult;
}

abstract class GHMBase {
  readonly bins: number;
  readonly momentum: number;
  readonly lossWeight: number;
  protected acc: Float64Array;
  protected abstract readonly kind: 'ghmc' | 'ghmr';

  constructor(fn: string, o: Partial<Record<string, unknown>>) {
    this.bins = expectInteger(fn, 'options.bins', o.bins ?? 10, 1, MAX_BINS);
    this.momentum = expectInRange(fn, 'options.momentum', o.momentum ?? 0, 0, 1, true);
    this.lossWeight = expectFinite(fn, 'options.lossWeight', o.lossWeight ?? 1);
    this.acc = new Float64Array(this.bins);
  }

  /** The EMA state ("acc_sum" in mmdetection): a copy, one entry per bin. */
  get accSum(): Float64Array {
    return this.acc.slice();
  }

  /**
   * The EMA state as plain JSON, to save and {@link loadState} after a restart.
   * @example
   * ```ts
   * localStorage.setItem('ghm', JSON.stringify(ghmc.state()));
   * ghmc.loadState(JSON.parse(localStorage.getItem('ghm')!));
   * ```
   */
  state(): GHMState {
    return { kind: this.kind, bins: this.bins, momentum: this.momentum, accSum: Array.from(this.acc) };
  }

  /**
   * Restores a state saved by {@link state}; it must come from the same kind, bin count and
   * momentum. Nothing changes when it throws.
   */
  loadState(s: GHMState): void {
    const fn = `${this.constructor.name}.loadState`;
    const o = expectOptions(fn, s, ['kind', 'bins', 'momentum', 'accSum'] as const, 'state');
    if (s === undefined) throw new TypeError(`${fn}: state must be an object from state(), got undefined`);
    if (o.kind !== this.kind) throw new RangeError(`${fn}: state.kind is ${describeValue(o.kind)}, expected '${this.kind}'`);
    if (o.bins !== this.bins) throw new RangeError(`${fn}: state.bins is ${describeValue(o.bins)}, expected ${this.bins}`);
    if (o.momentum !== this.momentum) {
      throw new RangeError(`${fn}: state.momentum is ${describeValue(o.momentum)}, but this ${this.constructor.name} has momentum ${this.momentum} (create it with the state's momentum)`);
    }
    this.acc = Float64Array.from(expectDense(fn, 'state.accSum', o.accSum, this.bins, false));
  }

  /** Zeroes the EMA state. */
  reset(): void {
    this.acc = new Float64Array(this.bins);
  }

  abstract collect(input: Float32Array, target: Targets | Float32Array, labelWeight?: Float32Array): GHMStats;
  abstract gradient(step: GHMStep, input: Float32Array, target: Targets | Float32Array, labelWeight?: Float32Array): Float32Array;

  /**
   * A stream: the whole stream is one batch, so `finish()` makes one EMA step. Gradients need a
   * second look at the data: `finish()` returns `gradient(piece)` for pieces given again.
   * @example
   * ```ts
   * const s = ghmc.stream();
   * s.push(logitsA, targetsA);
   * s.push(logitsB, targetsB);
   * const r = s.finish();                       // r.loss: as one forward over A and B
   * const gradA = r.gradient(logitsA, targetsA);
   * ```
   */
  stream(): GHMStream {
    let stats = new GHMStats(this.bins);
    let done = false;
    const name = this.constructor.name;
    return {
      push: (input, target, labelWeight) => {
        if (done) throw new Error(`${name} stream push: the stream has finished`);
        stats = stats.add(this.collect(input, target, labelWeight));
      },
      finish: () => {
        if (done) throw new Error(`${name} stream finish: the stream has already finished`);
        done = true;
        const step = this.step(stats);
        return { loss: step.loss, stats, step, gradient: (i, t, w) => this.gradient(step, i, t, w) };
      },
    };
  }

  /** `step` as {@link step} returned it for this loss's bins: for the gradient pass. */
  protected expectStep(fn: string, step: unknown): GHMStep {
    const factors = (step as { factors?: unknown } | null | undefined)?.factors;
    if (typeof step !== 'object' || step === null || !(factors instanceof Float32Array)) {
      throw new TypeError(`${fn}: step must be what step() returned, { loss, factors: Float32Array }, got ${describeValue(step)}`);
    }
    if (factors.length !== this.bins + 2) throw new RangeError(`${fn}: step.factors has length ${factors.length}, expected ${this.bins + 2}`);
    return step as GHMStep;
  }

  /** GHM-C's `tot` is a count of valid elements, GHM-R's a sum of label weights. */
  protected abstract tot(stats: GHMStats): number;

  /**
   * One EMA step from the statistics of a whole batch: updates the state and returns the loss
   * and the gradient factors. A batch with no valid element changes nothing and has loss 0.
   */
  step(stats: GHMStats): GHMStep {
    return this.advance(stats, this.acc);
  }

  /** The state before the last {@link checkpoint}; reused, so that a forward allocates nothing for it. */
  private backup: Float64Array | undefined;

  /** Keeps a copy of the EMA state for {@link rollback} (with momentum 0 a step leaves it as it is). */
  protected checkpoint(): void {
    if (this.momentum > 0) (this.backup ??= new Float64Array(this.bins)).set(this.acc);
  }

  /** Puts back the state of the last {@link checkpoint}: a call that failed after its step. */
  protected rollback(): void {
    if (this.momentum > 0) this.acc.set(this.backup!);
  }

  /**
   * @internal The step on a copy of the state, which `commit()` makes the state: for the thread
   * pool, whose calls can still fail after the step (in the workers' gradient pass) and wait
   * in between, so that other calls may run.
   */
  pendingStep(stats: GHMStats): { step: GHMStep; commit(): void } {
    const acc = this.acc.slice();
    const step = this.advance(stats, acc);
    return { step, commit: () => void (this.acc = acc) };
  }

  /** {@link step} with the EMA state in `acc`, updated in place. */
  private advance(stats: GHMStats, acc: Float64Array): GHMStep {
    // Kept lean (no per-call name strings or scratch arrays): it runs on every forward, and
    // small batches (one image's anchors) pay it in full.
    if (!(stats instanceof GHMStats)) throw new TypeError(`${this.constructor.name}.step: stats must be a GHMStats`);
    if (stats.bins !== this.bins) throw new RangeError(`${this.constructor.name}.step: stats has ${stats.bins} bins, expected ${this.bins}`);
    const b = this.bins;
    const { counts, sums } = stats;
    const factors = new Float32Array(b + 2);
    if (stats.valid === 0) return { loss: 0, factors };
    const tot = Math.max(this.tot(stats), 1);
    const m = this.momentum;
    let n = 0;
    for (let i = 0; i < b; i++) if (counts[i]! > 0) n++;
    // Nothing below can throw, so the EMA state is updated in place.
    let loss = 0;
    for (let i = 0; i < b; i++) {
      const num = counts[i]!;
      if (num > 0) {
        let w: number;
        if (m > 0) {
          // This exact expression: the golden EMA states are bit-exact to it.
          acc[i] = m * acc[i]! + (1 - m) * num;
          w = tot / acc[i]!;
        } else {
          w = tot / num;
        }
        w /= n;
        loss += w * sums[i]!;
        factors[i] = (this.lossWeight * w) / tot;
      }
    }
    // NaN inputs weigh 0 but, as 0·NaN in PyTorch, still make the loss NaN.
    if (stats.nanCount > 0) loss += 0 * stats.nanSum * NaN;
    return { loss: (this.lossWeight * loss) / tot, factors };
  }
}

const GHMC_OPTIONS = ['bins', 'momentum', 'lossWeight'] as const;

/** Options of `forward` ({@link GHMC.forward}, {@link GHMR.forward}, and the pool's). */
export interface GHMForwardOptions<G extends boolean = boolean> {
  /** Also return the gradient (`grad` in the result). Default false. */
  grad?: G;
}

/** A GHM forward's reduction: `'mean'` (the loss, as mmdetection's) or `'none'` (its terms). */
export type GHMReduction = 'mean' | 'none';

/**
 * Options of {@link GHMC.forward}: {@link GHMForwardOptions} and the reduction. `'none'` makes
 * `loss` the per-element terms `lossWeight · weight_bin · bce / tot` whose sum is the loss
 * (0 for elements with label weight ≤ 0): what a user plots or masks.
 */
export interface GHMCForwardOptions<R extends GHMReduction = GHMReduction, G extends boolean = boolean> extends GHMForwardOptions<G> {
  /** Default `'mean'`; `'none'` gives the per-element terms (a `Float32Array`). */
  reduction?: R;
}

/**
 * Options of {@link GHMR.forward}: those of GHM-C, and `avgFactor`, which mmdetection's
 * `GHMR.forward` takes and does not use (its mean divides by `tot`); accepted (a number > 0) so
 * that ported calls run, with mmdetection's effect: none (docs/SPEC.md §10).
 */
export interface GHMRForwardOptions<R extends GHMReduction = GHMReduction, G extends boolean = boolean> extends GHMCForwardOptions<R, G> {
  avgFactor?: number;
}

/** A GHM forward's options, checked: whether to compute the gradient, and the reduction. */
export function forwardOptions(fn: string, options: unknown, regression: boolean): { wantGrad: boolean; none: boolean } {
  const o = expectOptions(fn, options, regression ? GHMR_FORWARD_OPTIONS : GHMC_FORWARD_OPTIONS) as Partial<Record<string, unknown>>;
  const wantGrad = expectBoolean(fn, 'options.grad', o.grad ?? false);
  const none = o.reduction !== undefined && expectOneOf(fn, 'options.reduction', o.reduction, GHM_REDUCTIONS) === 'none';
  if (o.avgFactor !== undefined) expectPositive(fn, 'options.avgFactor', o.avgFactor);
  return { wantGrad, none };
}
const GHM_REDUCTIONS: readonly GHMReduction[] = ['mean', 'none'];
const GHMC_FORWARD_OPTIONS = ['grad', 'reduction'] as const;
const GHMR_FORWARD_OPTIONS = ['grad', 'reduction', 'avgFactor'] as const;

/**
 * The bin factor of each element, as the gradient kernels apply it: two gradient passes, one with
 * factor 1 in every bin (giving d, the derivative before the factor) and one with factor k + 1 in
 * bin k, so that the bin is their ratio minus 1 (exact: float32 products of d by integers up to
 * 1025). Where d = 0, g = 0: bin 0. Elements with label weight ≤ 0 get 0. No kernel of its own:
 * the wasm modules have no room left in their size budget for one.
 */
function binFactors(step: GHMStep, bins: number, wkind: WeightKind, w: ChunkInput, perUnit: number, grad: (factors: Float32Array) => Float32Array): Float32Array {
  const ones = new Float32Array(bins + 2);
  const ids = new Float32Array(bins + 2);
  for (let k = 0; k < bins; k++) {
    ones[k] = 1;
    ids[k] = k + 1;
  }
  const f = grad(ones); // d, overwritten in place by the factors
  const kd = grad(ids);
  const factors = step.factors;
  const f0 = factors[0]!;
  // One tight loop (no per-element closure; it is most of the call's time), then the invalid
  // elements zeroed by weight layout.
  for (let i = 0; i < f.length; i++) {
    const di = f[i]!;
    // NaN d: a NaN input, whose term is NaN (as its share of the loss).
    f[i] = di !== di ? NaN : di === 0 ? f0 : factors[Math.round(kd[i]! / di) - 1]!;
  }
  const a = w.array as Float32Array | undefined;
  if (a && wkind === WeightKind.Elements) {
    for (let i = 0; i < f.length; i++) if (!(a[i]! > 0)) f[i] = 0;
  } else if (a && wkind === WeightKind.Rows) {
    for (let r = 0; r < a.length; r++) if (!(a[r]! > 0)) f.fill(0, r * perUnit, (r + 1) * perUnit);
  }
  return f;
}

export interface GHMCOptions {
  /** Number of gradient-norm bins, 1..1024. Default 10. */
  bins?: number;
  /** EMA momentum in [0, 1); 0 disables the EMA. Default 0. */
  momentum?: number;
  /** Multiplies the loss and gradient. Default 1. */
  lossWeight?: number;
}

interface GHMCInputs {
  x: Float32Array;
  lay: Layout;
  wkind: number;
  w: ChunkInput;
}

/**
 * GHM-C loss (Li et al. 2019; mmdetection `GHMC`, docs/SPEC.md §3): BCE with each element weighted by
 * the inverse density of its gradient norm `|σ(x) - t|`, counted in bins and smoothed over calls
 * by an EMA. Each {@link GHMC.forward} is one EMA step.
 *
 * @example
 * ```ts
 * import { init, GHMC } from 'focal-ghm';
 * await init();
 * const ghmc = new GHMC({ bins: 30, momentum: 0.75 });
 * const { loss, grad } = ghmc.forward(logits, targets, undefined, { grad: true });
 * const saved = ghmc.state();   // JSON; ghmc.loadState(saved) after a restart
 * ```
 */
export class GHMC extends GHMBase {
  protected readonly kind = 'ghmc' as const;

  constructor(options: GHMCOptions = {}) {
    super('GHMC', expectOptions('GHMC', options, GHMC_OPTIONS));
  }

  protected tot(stats: GHMStats): number {
    return stats.valid;
  }

  /** @internal Every check of a call's arrays (shared with the thread pool), and their layout. */
  inputs(fn: string, logits: unknown, targets: unknown, labelWeight: unknown): GHMCInputs {
    const x = expectArray(fn, 'logits', logits, Float32Array);
    const lay = layoutTargets(fn, x.length, targets);
    const { wkind, input: w } = layoutWeights(fn, 'labelWeight', labelWeight, lay);
    return { x, lay, wkind, w };
  }

  private collectInputs(fn: string, ws: Workspace, a: GHMCInputs): GHMStats {
    const { x, lay, wkind, w } = a;
    const b = this.bins;
    const len = ws.k.fg_ghm_stats_len(b);
    const params = ws.params.reserve(16 + len * 8);
    const stats = new GHMStats(b);
    const range = new TargetRange();
    runChunked(ws.heap, ws.scratch, lay.units, unitsPerChunk(lay.perUnit), [{ array: x, perUnit: lay.perUnit }, lay.targets, w], [], (u, [xp, tp, wp]) => {
      // Kernels never allocate, so one view serves before and after the call.
      const f64 = ws.heap.views().f64;
      const at = (params + 16) / 8;
      f64.fill(0, at, at + len);
      ws.k.fg_ghmc_stats(xp!, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!, b, params + 16, params);
      stats.addRaw(f64.subarray(at, at + len));
      range.add(f64, params / 8);
    });
    range.check(fn, 'targets', lay.tkind);
    return stats;
  }

  /**
   * The per-bin statistics of a batch, without an EMA step (the state is not touched).
   * Merge several with {@link GHMStats.add} and apply them with {@link GHMC.step}.
   * @example
   * ```ts
   * const s = ghmc.collect(logitsA, targetsA).add(ghmc.collect(logitsB, targetsB));
   * const { loss } = ghmc.step(s);  // same as one forward over A and B together
   * ```
   */
  collect(logits: Float32Array, targets: Targets | Float32Array, labelWeight?: Float32Array): GHMStats {
    const fn = 'GHMC.collect';
    const ws = workspace(fn);
    return this.collectInputs(fn, ws, this.inputs(fn, logits, targets, labelWeight));
  }

  /**
   * d loss / d logits of a batch for a step's factors (a second pass over the data).
   * @example
   * ```ts
   * const step = ghmc.step(ghmc.collect(logits, targets));
   * const grad = ghmc.gradient(step, logits, targets);
   * ```
   */
  gradient(step: GHMStep, logits: Float32Array, targets: Targets | Float32Array, labelWeight?: Float32Array): Float32Array {
    const fn = 'GHMC.gradient';
    const ws = workspace(fn);
    return this.gradInputs(ws, this.expectStep(fn, step), this.inputs(fn, logits, targets, labelWeight));
  }

  private gradInputs(ws: Workspace, step: GHMStep, a: GHMCInputs): Float32Array {
    const { x, lay, wkind, w } = a;
    const b = this.bins;
    const grad = new Float32Array(x.length);
    const params = ws.params.reserve((b + 2) * 4);
    runChunked(ws.heap, ws.scratch, lay.units, unitsPerChunk(lay.perUnit), [{ array: x, perUnit: lay.perUnit }, lay.targets, w], [{ array: grad, perUnit: lay.perUnit }], (u, [xp, tp, wp], [gp]) => {
      ws.heap.views().f32.set(step.factors, params / 4);
      ws.k.fg_ghmc_grad(xp!, u * lay.perUnit, lay.tkind, tp!, lay.numClasses, wkind, wp!, b, params, gp!);
    });
    return grad;
  }

  /**
   * The loss of a batch, one EMA step, and optionally the gradient (`grad` is in the result's
   * type with `grad: true`). `labelWeight`: per element, or per row with class-index targets;
   * elements with weight ≤ 0 are ignored (mmdetection's `valid`).
   * @example
   * ```ts
   * const ghmc = new GHMC({ bins: 30, momentum: 0.75 });
   * const { loss, grad } = ghmc.forward(logits, new Uint8Array(targets), labelWeight, { grad: true });
   * //      ^ number  ^ Float32Array
   * ```
   */
  forward<R extends GHMReduction = 'mean', G extends boolean = false>(
    logits: Float32Array, targets: Targets, labelWeight?: Float32Array, options?: GHMCForwardOptions<R, G>,
  ): LossResult<LossFor<R>, G>;
  forward(logits: Float32Array, targets: Targets, labelWeight?: Float32Array, options?: GHMCForwardOptions): LossResult {
    const fn = 'GHMC.forward';
    const ws = workspace(fn);
    const { wantGrad, none } = forwardOptions(fn, options, false);
    const a = this.inputs(fn, logits, targets, labelWeight);
    const stats = this.collectInputs(fn, ws, a);
    // The passes after the step allocate and can fail: the state then goes back to what it was.
    this.checkpoint();
    const step = this.step(stats);
    try {
      const loss = none ? this.terms(fn, ws, step, a) : step.loss;
      return wantGrad ? { loss, grad: this.gradInputs(ws, step, a) } : { loss };
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  /** Reduction 'none': each element's `factor_bin · bce` (docs/SPEC.md §3), the BCE from the focal kernel (γ = 0, no α). */
  private terms(fn: string, ws: Workspace, step: GHMStep, a: GHMCInputs): Float32Array {
    const n = a.x.length;
    const bce = new Float32Array(n);
    sigmoidPass(ws, fn, a.x, a.lay, WeightKind.None, { array: undefined, perUnit: 0 }, 1, 1, 0, bce, 1, undefined, 0);
    const f = binFactors(step, this.bins, a.wkind, a.w, a.lay.perUnit, (factors) => this.gradInputs(ws, { loss: 0, factors }, a));
    for (let i = 0; i < n; i++) f[i] = f[i] === 0 ? 0 : f[i]! * bce[i]!;
    return f;
  }
}

export interface GHMROptions extends GHMCOptions {
  /** The authentic smooth L1's μ, in [1e-37, 1e37]. Default 0.02. */
  mu?: number;
}

const GHMR_OPTIONS = ['mu', 'bins', 'momentum', 'lossWeight'] as const;

interface GHMRInputs {
  pred: Float32Array;
  target: Float32Array;
  lay: Layout;
  wkind: number;
  w: ChunkInput;
}

/**
 * GHM-R loss (Li et al. 2019; mmdetection `GHMR`, docs/SPEC.md §4): authentic smooth L1
 * `sqrt(d² + μ²) - μ` weighted by the inverse density of its gradient norm, with the EMA.
 *
 * @example
 * ```ts
 * import { init, GHMR } from 'focal-ghm';
 * await init();
 * const ghmr = new GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
 * const { loss, grad } = ghmr.forward(pred, target, labelWeight, { grad: true });
 * ```
 */
export class GHMR extends GHMBase {
  protected readonly kind = 'ghmr' as const;
  readonly mu: number;

  constructor(options: GHMROptions = {}) {
    const o = expectOptions('GHMR', options, GHMR_OPTIONS);
    super('GHMR', o);
    const mu = expectPositive('GHMR', 'options.mu', o.mu ?? 0.02);
    // The kernels take μ as a float32 (docs/SPEC.md §10): past float32's normal range it would
    // lose its precision or overflow; the bounds keep a margin.
    if (!(mu >= 1e-37 && mu <= 1e37)) throw new RangeError(`GHMR: options.mu must be in [1e-37, 1e37], got ${mu}`);
    this.mu = mu;
  }

  protected tot(stats: GHMStats): number {
    return stats.weightSum;
  }

  /** @internal Every check of a call's arrays (shared with the thread pool), and their layout. */
  inputs(fn: string, pred: unknown, target: unknown, labelWeight: unknown): GHMRInputs {
    const p = expectArray(fn, 'pred', pred, Float32Array);
    const t = expectArray(fn, 'target', target, Float32Array);
    if (t.length !== p.length) throw new RangeError(`${fn}: target has length ${t.length}, expected ${p.length} (one per pred)`);
    const lay: Layout = { n: p.length, tkind: TargetKind.Soft, targets: { array: t, perUnit: 1 }, numClasses: 1, units: p.length, perUnit: 1 };
    const { wkind, input: w } = layoutWeights(fn, 'labelWeight', labelWeight, lay);
    return { pred: p, target: t, lay, wkind, w };
  }

  private collectInputs(ws: Workspace, a: GHMRInputs): GHMStats {
    const b = this.bins;
    const len = ws.k.fg_ghm_stats_len(b);
    const params = ws.params.reserve(len * 8);
    const stats = new GHMStats(b);
    runChunked(ws.heap, ws.scratch, a.lay.units, unitsPerChunk(1), [{ array: a.pred, perUnit: 1 }, a.lay.targets, a.w], [], (u, [pp, tp, wp]) => {
      const f64 = ws.heap.views().f64;
      const at = params / 8;
      f64.fill(0, at, at + len);
      ws.k.fg_ghmr_stats(pp!, tp!, u, a.wkind, wp!, this.mu, b, params);
      stats.addRaw(f64.subarray(at, at + len));
    });
    return stats;
  }

  private gradInputs(ws: Workspace, step: GHMStep, a: GHMRInputs): Float32Array {
    const b = this.bins;
    const grad = new Float32Array(a.pred.length);
    const params = ws.params.reserve((b + 2) * 4);
    runChunked(ws.heap, ws.scratch, a.lay.units, unitsPerChunk(1), [{ array: a.pred, perUnit: 1 }, a.lay.targets, a.w], [{ array: grad, perUnit: 1 }], (u, [pp, tp, wp], [gp]) => {
      ws.heap.views().f32.set(step.factors, params / 4);
      ws.k.fg_ghmr_grad(pp!, tp!, u, a.wkind, wp!, this.mu, b, params, gp!);
    });
    return grad;
  }

  /**
   * Per-bin statistics of a batch without an EMA step; see {@link GHMC.collect}.
   * @example
   * ```ts
   * const { loss } = ghmr.step(ghmr.collect(predA, targetA).add(ghmr.collect(predB, targetB)));
   * ```
   */
  collect(pred: Float32Array, target: Float32Array | Targets, labelWeight?: Float32Array): GHMStats {
    const fn = 'GHMR.collect';
    const ws = workspace(fn);
    return this.collectInputs(ws, this.inputs(fn, pred, target, labelWeight));
  }

  /**
   * d loss / d pred for a step's factors.
   * @example
   * ```ts
   * const grad = ghmr.gradient(ghmr.step(ghmr.collect(pred, target)), pred, target);
   * ```
   */
  gradient(step: GHMStep, pred: Float32Array, target: Float32Array | Targets, labelWeight?: Float32Array): Float32Array {
    const fn = 'GHMR.gradient';
    const ws = workspace(fn);
    return this.gradInputs(ws, this.expectStep(fn, step), this.inputs(fn, pred, target, labelWeight));
  }

  /**
   * The loss of a batch, one EMA step, and optionally d loss / d pred (`grad` is in the
   * result's type with `grad: true`).
   * @example
   * ```ts
   * const ghmr = new GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
   * const { loss } = ghmr.forward(pred, target);
   * const { grad } = ghmr.forward(pred, target, undefined, { grad: true }); // Float32Array
   * ```
   */
  forward<R extends GHMReduction = 'mean', G extends boolean = false>(
    pred: Float32Array, target: Float32Array, labelWeight?: Float32Array, options?: GHMRForwardOptions<R, G>,
  ): LossResult<LossFor<R>, G>;
  forward(pred: Float32Array, target: Float32Array, labelWeight?: Float32Array, options?: GHMRForwardOptions): LossResult {
    const fn = 'GHMR.forward';
    const ws = workspace(fn);
    const { wantGrad, none } = forwardOptions(fn, options, true);
    const a = this.inputs(fn, pred, target, labelWeight);
    const stats = this.collectInputs(ws, a);
    this.checkpoint(); // as in GHMC.forward
    const step = this.step(stats);
    try {
      const loss = none ? this.terms(ws, step, a) : step.loss;
      return wantGrad ? { loss, grad: this.gradInputs(ws, step, a) } : { loss };
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  /** Reduction 'none': each element's `factor_bin · (sqrt(d² + μ²) − μ)` (docs/SPEC.md §4), the latter in float64. */
  private terms(ws: Workspace, step: GHMStep, a: GHMRInputs): Float32Array {
    const f = binFactors(step, this.bins, a.wkind, a.w, 1, (factors) => this.gradInputs(ws, { loss: 0, factors }, a));
    const mu = this.mu;
    for (let i = 0; i < f.length; i++) {
      if (f[i] === 0) continue;
      const d = a.pred[i]! - a.target[i]!;
      // s − μ as d²/(s + μ): no cancellation for small d.
      f[i] = (f[i]! * (d * d)) / (Math.sqrt(d * d + mu * mu) + mu);
    }
    return f;
  }
}
