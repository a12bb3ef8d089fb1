//! GHM-C and GHM-R (docs/SPEC.md §3–4; mmdetection `GHMC`, `GHMR`) as two passes over the data.
//!
//! The stats pass computes each element's gradient norm `g`, its bin, and its loss term (BCE
//! for GHM-C, authentic smooth L1 for GHM-R), and adds per-bin counts and loss sums into a
//! caller-owned [`Stats`] array of f64. Those statistics are all the loss needs, and they add:
//! chunks of a stream, blocks of a thread pool and data-parallel replicas merge by adding them.
//! The caller (TypeScript) turns merged statistics into bin weights, the EMA step and the loss;
//! the grad pass then applies one factor per bin.
//!
//! Bins are found arithmetically and land exactly where mmdetection's comparisons against the
//! float32 edges `fl(i/bins)` land: `k = trunc(g·bins)` can be off by one from rounding, so it is
//! corrected against the two edges around it, which are recomputed as the same correctly
//! rounded f32 division the edges were built with.
//!
//! Stats layout for `bins` bins (length `stats_len(bins)`):
//! `[count_0 .. count_{bins-1}, count_nan, sum_0 .. sum_{bins-1}, sum_nan, label_weight_sum]`.
//! The NaN slot holds valid elements whose `g` is NaN (NaN logits): they count towards GHM-C's
//! `tot` and make the loss NaN, as in PyTorch, but belong to no bin.

use crate::simd::{F32x4, F64x2, I32x4, M32x4};
use crate::source::{target_range, weight_sum, with_layout, Block, Layout, SoftTargets, TargetLanes, TargetRange, Targets, Weights};
use crate::xterms::{nan_where_nan, Binary, Sided, Staged, Tiles, TILE};

/// The largest bin count the kernels accept (per-lane histograms live on the stack). TypeScript
/// checks `bins` against its own `MAX_BINS` (ts/ghm.ts), which must be this (a test checks).
pub const MAX_BINS: usize = 1024;

/// mmdetection's last edges: GHM-C nudges 1 up by 1e-6 (in f32), GHM-R sets 1e3.
pub const GHMC_LAST_EDGE: f32 = 1.000_001;
pub const GHMR_LAST_EDGE: f32 = 1.0e3;

pub const fn stats_len(bins: usize) -> usize {
    2 * (bins + 1) + 1
}

/// Bin slot per lane: `0..bins` for a bin, `bins` where `nan` is NaN (see [`special`]),
/// `bins + 1` for invalid elements.
#[inline(always)]
fn slots(g: F32x4, nan: F32x4, valid: M32x4, bins: usize) -> I32x4 {
    let b = F32x4::splat(bins as f32);
    let (mut k, dist) = floor_bins(g, b);
    if dist.lt(edge_margin(b)).any() {
        k = exact_bins(g, k, b);
    }
    regular_or(k, special(nan, valid, bins), bins)
}

/// `floor(g·bins)` per lane, and how far `g·bins` is from the nearest integer: where that is
/// below [`edge_margin`], `floor` may not be the bin the float32 edges give, and
/// [`exact_bins`] must settle it.
///
/// Integer lane ops where possible (one instruction each in V8 on x64, where float selects and
/// min/max cost three to ten).
#[inline(always)]
fn floor_bins(g: F32x4, b: F32x4) -> (I32x4, F32x4) {
    // floor(g·bins), as a float and, from the magic add's low bits, as an integer (no
    // float-to-int conversion): round, then step down where rounding went up.
    let m = F32x4::splat(12_582_912.0);
    let t = g * b;
    let rm = t + m;
    let r = rm - m;
    let k = (rm.to_bits() - m.to_bits()) + I32x4::from_mask(t.lt(r));
    (k, (t - r).abs())
}

/// For g in [0, 1], t = fl(g·bins) and each edge times bins, fl(i/bins)·bins, are both within
/// bins·2^-24 of the exact g·bins and i: unless t is within twice that of an integer i, floor(t)
/// is the bin the edge comparisons give. Data is almost never that near an edge (g below about
/// 2^-22, at the exact edge 0, included).
#[inline(always)]
fn edge_margin(b: F32x4) -> F32x4 {
    b * F32x4::splat(1.0 / 4_194_304.0) // bins·2^-22
}

/// Bins `k` (from [`floor_bins`] and, where needed, [`exact_bins`]) clamped to `0..bins`, where
/// `special` (see [`special`]) is 0; else `special`.
#[inline(always)]
fn regular_or(k: I32x4, special: I32x4, bins: usize) -> I32x4 {
    clamp_bins(k, bins).max(special)
}

/// Bin estimates clamped to `0..bins` (g = 1 may estimate `bins`; see [`exact_bins`]).
#[inline(always)]
fn clamp_bins(k: I32x4, bins: usize) -> I32x4 {
    k.max(I32x4::splat(0)).min(I32x4::splat(bins as i32 - 1))
}

/// The special slot of each lane, 0 where there is none: `bins` where `nan` is NaN (g, or an
/// input whose NaN makes g NaN), `bins + 1` where the lane is invalid. Every bin is below those
/// two slots, so an integer maximum with a bin puts a lane in its special slot.
#[inline(always)]
fn special(nan: F32x4, valid: M32x4, bins: usize) -> I32x4 {
    // A float compare, one instruction in V8. An integer test on the bits (`inf - |bits|` < 0)
    // fared worse: LLVM turns it into an unsigned compare, which V8 spells in four, plus a select.
    // Unsigned min and max rather than `and` and a signed max: LLVM turns an `and` with a compare
    // mask into a select (three instructions in V8, one for `min_u` of the all-ones mask), and
    // only an unsigned max with 0 folds away where every lane is valid (2% off GHM-C's passes).
    let is_nan = I32x4::from_mask(nan.ne(nan));
    is_nan.min_u(I32x4::splat(bins as i32)).max_u(I32x4::splat(bins as i32 + 1).and_not(I32x4::from_mask(valid)))
}

/// Bins the stage: `slots` hold each lane's [`special`] slot on entry and its slot on return.
/// Returns whether a lane lies near an edge (see [`floor_bins`]), where [`settle_stage`] must
/// recompute the bins. Its own loop, apart from the terms' (see [`StatsBlock::add`]).
#[inline(always)]
fn bin_stage(stage: &mut Stage, len: usize, bins: usize) -> bool {
    let b = F32x4::splat(bins as f32);
    // Non-negative floats order like their bits (NaN above all, so it never counts): an
    // integer minimum, one instruction, where an `or` of masks became a select.
    let mut nearest = I32x4::splat(i32::MAX);
    let mut j = 0;
    while j < len {
        unsafe {
            let sp = stage.slots.as_mut_ptr().add(j);
            let (k, dist) = floor_bins(F32x4::load(stage.gs.as_ptr().add(j)), b);
            nearest = nearest.min(dist.to_bits());
            regular_or(k, I32x4::load(sp), bins).store(sp);
        }
        j += 4;
    }
    F32x4::from_bits(nearest).lt(edge_margin(b)).any()
}

/// The stage's slots after [`floor_bins`] flagged a lane near an edge somewhere in it: every
/// regular bin recomputed against the edges (cheap enough for how rarely this runs).
#[inline(never)]
fn settle_stage(stage: &mut Stage, len: usize, bins: usize) {
    let b = F32x4::splat(bins as f32);
    let mut j = 0;
    while j < len {
        unsafe {
            let sp = stage.slots.as_mut_ptr().add(j);
            let k = I32x4::load(sp);
            let g = F32x4::load(stage.gs.as_ptr().add(j));
            let exact = clamp_bins(exact_bins(g, k, b), bins);
            M32x4::i32_lt(k, I32x4::splat(bins as i32)).select_i(exact, k).store(sp);
        }
        j += 4;
    }
}

/// The bins of `g` from estimates `k` within one of them, by comparing against the edges as
/// mmdetection builds them, fl(i / bins): one step down or up where `g` is beyond one.
///
/// The top edge is really GHMC_LAST_EDGE or GHMR_LAST_EDGE (> 1 ≥ g): using fl(bins/bins) = 1
/// instead may step g = 1 up to `bins`, which the caller's clamp takes back to the last bin, as
/// the true edge would have kept it.
#[inline(always)]
fn exact_bins(g: F32x4, k: I32x4, b: F32x4) -> I32x4 {
    let kf = k.to_f32();
    let lo = kf / b;
    let hi = (kf + F32x4::ONE) / b;
    k + I32x4::from_mask(g.lt(lo)) - I32x4::from_mask(g.ge(hi))
}

/// [`LANES`] interleaved histograms (element `j` of a run goes to `j % LANES`), so that runs of
/// equal bins (most of a detector's g sit in a few low bins) do not serialise on one memory
/// cell: each add to memory waits for the previous add to the same cell. Histogram `l` keeps
/// slot `k` at `pairs[l·stride + k]`, `stride = bins + 2`, as one `(count, loss sum)` pair of
/// f64: one vector add per element updates both (two scalar read-modify-writes cost V8 twice the
/// instructions). Counts stay exact: they are integers far below 2^53.
#[derive(Clone, Copy)]
struct LaneHist {
    pairs: *mut F64x2,
    stride: usize,
}

/// Slots and loss terms are staged for this many elements, then scattered in one scalar loop:
/// kept apart, the latency-bound vector math and the throughput-bound scatter each run at their
/// own pace, instead of one crowding the other out of the out-of-order window.
const STAGE: usize = 256;

/// Interleaved histograms of [`LaneHist`]; [`LaneHist::merge_into`] adds exactly four.
const LANES: usize = 4;

/// Staged `(slot, value)` pairs, kept apart from the [`StatsBlock`] so that its scalar fields
/// stay in registers (an array inside it would put the whole struct in memory, and every field
/// access in the hot loop would become a load).
struct Stage {
    /// Each lane's [`special`] slot as staged, its slot once [`bin_stage`] has run.
    slots: [i32; STAGE],
    vals: [f32; STAGE],
    /// The g behind each slot, for [`settle_stage`].
    gs: [f32; STAGE],
}

impl LaneHist {
    /// Adds `len` ≤ [`STAGE`] staged `(slot, value)` pairs, `len` a multiple of four (blocks
    /// stage four lanes at a time); slots are in 0..=bins+1 by construction.
    #[inline(never)]
    fn scatter(&self, stage: &Stage, len: usize) {
        let (slots, vals) = (stage.slots.as_ptr(), stage.vals.as_ptr());
        let s = self.stride;
        let add = |l: usize, j: usize| unsafe {
            let p = self.pairs.add(l * s + *slots.add(j) as usize) as *mut f64;
            F64x2::load(p).add(F64x2::new(1.0, *vals.add(j) as f64)).store(p);
        };
        let mut j = 0;
        while j + LANES <= len {
            for l in 0..LANES {
                add(l, j + l);
            }
            j += LANES;
        }
    }

    /// `(count, sum)` of slot `k` in histogram `lane`.
    fn at(&self, lane: usize, k: usize) -> [f64; 2] {
        unsafe { (*self.pairs.add(lane * self.stride + k)).to_array() }
    }

    /// Whether the loss sums of the bins (not the NaN or discard slot) are all finite.
    fn sums_finite(&self, bins: usize) -> bool {
        (0..LANES).all(|l| (0..bins).all(|k| self.at(l, k)[1].is_finite()))
    }

    /// Adds bins and the NaN slot (not the discard slot) into `stats`, lanes in a fixed order.
    fn merge_into(&self, bins: usize, stats: &mut [f64]) {
        let lane = |k: usize, l: usize, i: usize| self.at(l, k)[i] + self.at(l + 1, k)[i];
        for k in 0..=bins {
            for (i, base) in [(0, 0), (1, bins + 1)] {
                stats[base + k] += lane(k, 0, i) + lane(k, 2, i);
            }
        }
    }
}

/// Runs `f` with a zeroed histogram, then merges it and the label-weight sum `f` returns into
/// `stats`, unless `f` also returns false.
#[inline(always)]
fn with_hist<F: FnOnce(LaneHist) -> (f64, bool)>(bins: usize, stats: &mut [f64], f: F) -> bool {
    // Stack storage sized for MAX_BINS, but only the slots in use are zeroed (and ever read),
    // so small calls stay cheap.
    let mut pairs = core::mem::MaybeUninit::<[F64x2; LANES * (MAX_BINS + 2)]>::uninit();
    let stride = bins + 2;
    let hist = LaneHist { pairs: pairs.as_mut_ptr() as *mut F64x2, stride };
    unsafe { core::ptr::write_bytes(hist.pairs, 0, LANES * stride) };
    let (wsum, keep) = f(hist);
    if keep {
        hist.merge_into(bins, stats);
        stats[2 * (bins + 1)] += wsum;
    }
    keep
}

fn check(bins: usize, n: usize, others: &[usize]) {
    assert!(bins >= 1 && bins <= MAX_BINS && others.iter().all(|&l| l >= n));
}

/// Where a pass gets each block's `(g, value, nan)`: the value is the loss term in the stats pass
/// and the derivative before the bin factor in the grad pass; `nan` is NaN exactly where g is
/// undefined (g itself, or the input that makes it so: the binary GHM-C stats pass saves making
/// its g NaN). Closures serve terms computed block by block; GHM-C's passes stage the x-only
/// sigmoid terms per tile (see [`Block::tile`]).
trait Terms {
    /// Elements per tile; by default one [`Stage`], so that the stage is flushed between tiles.
    const TILE: usize = STAGE;
    #[inline(always)]
    fn tile(&mut self, _start: usize) {}
    /// `tiled`: the block lies in the tile last announced (linear walks), else in no known tile.
    fn terms<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, tiled: bool) -> (F32x4, F32x4, F32x4);
    /// After a pass: whether every block's terms were right, given whether the bins' loss sums
    /// are finite (stats pass; true in the grad pass). A stats pass whose were not leaves `stats`
    /// as it was, and the caller redoes it another way (see [`GhmcTerms`], [`GhmrTerms`]).
    fn complete(&self, _sums_finite: bool) -> bool {
        true
    }
}

impl<V: Fn(usize, usize, F32x4) -> (F32x4, F32x4)> Terms for V {
    #[inline(always)]
    fn terms<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, _: bool) -> (F32x4, F32x4, F32x4) {
        let (g, v) = self(i, len, t.float());
        (g, v, g)
    }
}

/// The stats pass: bin and loss term per element, staged, then into the lane histograms.
struct StatsBlock<V> {
    hist: LaneHist,
    stage: *mut Stage,
    staged: usize,
    bins: usize,
    /// `(g, loss term, nan)` of a block.
    terms: V,
}

impl<V> StatsBlock<V> {
    #[inline(always)]
    fn flush(&mut self) {
        let stage = unsafe { &mut *self.stage };
        if bin_stage(stage, self.staged, self.bins) {
            settle_stage(stage, self.staged, self.bins);
        }
        self.hist.scatter(stage, self.staged);
        self.staged = 0;
    }
}

impl<V: Terms> StatsBlock<V> {
    #[inline(always)]
    fn add<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4, tiled: bool) {
        let (g, v, nan) = self.terms.terms(i, len, t, tiled);
        // Only the special slots here; the bins come at the flush, in their own loop over the
        // stage (`bin_stage`): split, each loop's dependency chain is short enough for the
        // out-of-order core to overlap several blocks. Lanes near an edge are settled there too,
        // once per stage: a test and branch per block cost more than the whole bin arithmetic.
        // Padded lanes are invalid (w = 0): they land in the discard slot.
        let s = special(nan, w.gt(F32x4::ZERO), self.bins);
        unsafe {
            s.store((*self.stage).slots.as_mut_ptr().add(self.staged));
            v.store((*self.stage).vals.as_mut_ptr().add(self.staged));
            g.store((*self.stage).gs.as_mut_ptr().add(self.staged));
        }
        self.staged += 4;
        // Linear walks flush between tiles (no call in their hot loop): a tile fills at most
        // one stage. Row walks announce no tiles, so they check.
        if (!tiled || V::TILE > STAGE) && self.staged == STAGE {
            self.flush();
        }
    }
}

impl<V: Terms> Pass for StatsBlock<V> {
    type T = V;
    #[inline(always)]
    fn terms(&mut self) -> &mut V {
        &mut self.terms
    }
    #[inline(always)]
    fn before_tile(&mut self) {
        if self.staged > 0 {
            self.flush();
        }
    }
    #[inline(always)]
    fn add<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4, tiled: bool) {
        StatsBlock::add(self, i, len, t, w, tiled)
    }
}

/// A GHM pass over blocks, each with its [`Terms`]; `tiled`: the block lies in the tile last
/// announced (linear walks and tiles of rows), else in no known tile.
trait Pass {
    type T: Terms;
    fn terms(&mut self) -> &mut Self::T;
    #[inline(always)]
    fn before_tile(&mut self) {}
    fn add<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4, tiled: bool);
}

impl<P: Pass> Block for P {
    const TILE: usize = P::T::TILE;
    #[inline(always)]
    fn tile(&mut self, start: usize, _end: usize) {
        self.before_tile();
        self.terms().tile(start);
    }
    #[inline(always)]
    fn block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        self.add(i, len, t, w, true);
    }
    #[inline(always)]
    fn row_block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        self.add(i, len, t, w, false);
    }
}

/// The grad pass: one factor per slot times the per-element derivative.
struct GradBlock<V> {
    grad: *mut f32,
    factor: *const f32,
    bins: usize,
    /// `(g, d loss_i / d input before the bin factor, nan)` of a block.
    terms: V,
}

impl<V: Terms> Pass for GradBlock<V> {
    type T = V;
    #[inline(always)]
    fn terms(&mut self) -> &mut V {
        &mut self.terms
    }
    #[inline(always)]
    fn add<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4, tiled: bool) {
        let (g, d, nan) = self.terms.terms(i, len, t, tiled);
        let s = slots(g, nan, w.gt(F32x4::ZERO), self.bins).to_array();
        let f = unsafe { F32x4::from_array([*self.factor.add(s[0] as usize), *self.factor.add(s[1] as usize), *self.factor.add(s[2] as usize), *self.factor.add(s[3] as usize)]) };
        unsafe { (f * d).store_partial(self.grad.add(i), len) };
    }
}

/// The stats pass over `n` elements, adding into `stats`; `wsum` is the label weights' sum
/// ([`weight_sum`]), for the last slot. Returns [`Terms::complete`]: if false, `stats` is as it
/// was.
// Not inlined by LLVM, as the focal kernels' `run`: one function per pass and target layout.
// (wasm-opt then merges them into their single caller; unlike the focal kernels, the GHM passes
// measured no slower merged.)
#[inline(never)]
fn stats_pass<L: Layout, V: Terms>(
    n: usize,
    targets: L,
    weights: Weights,
    wsum: f64,
    bins: usize,
    stats: &mut [f64],
    terms: V,
) -> bool {
    with_hist(bins, stats, |hist| {
        let mut stage = Stage { slots: [0; STAGE], vals: [0.0; STAGE], gs: [0.0; STAGE] };
        let mut k = StatsBlock { hist, stage: &mut stage, staged: 0, bins, terms };
        targets.for_each_block(n, weights, &mut k);
        k.flush();
        (wsum, k.terms.complete(hist.sums_finite(bins)))
    })
}

/// GHM-C statistics of one chunk, added into `stats`. `weights` are the label weights.
pub fn ghmc_stats(x: &[f32], targets: Targets, weights: Weights, bins: usize, stats: &mut [f64]) -> TargetRange {
    check(bins, stats_len(bins), &[stats.len()]);
    // The x-only terms (exp, log1p) are staged per tile, as in the focal kernel (see `Staged`).
    let wsum = weight_sum(x.len(), targets, weights);
    // A second pass, with PyTorch's terms at infinite logits, only if the first one's bins have
    // a non-finite loss sum (see `Staged::infinities`).
    for infinities in [false, true] {
        let mut staged = Staged::new(infinities);
        if with_layout!(targets, l => stats_pass(x.len(), l, weights, wsum, bins, stats, GhmcTerms::<false>::new(x, &mut staged))) {
            break;
        }
    }
    target_range(x.len(), targets)
}

/// GHM-C's `(g, BCE)` (stats pass) or `(g, p - t)` (`GRAD`, the grad pass), from x-only terms
/// staged per tile; targets that are exactly 0 or 1 ([`TargetLanes::BINARY`]) go through
/// [`Binary`].
///
/// The grad pass never needs PyTorch's terms at infinite logits (`Staged::infinities`): without
/// them, `p - t` there is off by e^-86.5 at most, and g lands in the same bin.
struct GhmcTerms<const GRAD: bool> {
    tiles: Tiles,
    infinities: bool,
}

impl<const GRAD: bool> GhmcTerms<GRAD> {
    fn new(x: &[f32], staged: &mut Staged) -> Self {
        let infinities = staged.infinities;
        GhmcTerms { tiles: Tiles::new(x, staged), infinities }
    }
}

impl<const GRAD: bool> Terms for GhmcTerms<GRAD> {
    const TILE: usize = TILE;
    /// Every valid infinite logit makes its bin's BCE sum ±∞ or NaN.
    fn complete(&self, sums_finite: bool) -> bool {
        sums_finite || self.infinities
    }
    #[inline(always)]
    fn tile(&mut self, start: usize) {
        unsafe { self.tiles.fill(start) };
    }
    #[inline(always)]
    fn terms<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, tiled: bool) -> (F32x4, F32x4, F32x4) {
        // Safety: the staged tiles outlive the pass, and nothing else borrows them.
        let xv = unsafe { self.tiles.x(i, len) };
        let xt = unsafe { if tiled { self.tiles.get(i) } else { self.tiles.at(i, len) } };
        if T::BINARY {
            let b = Binary::with(xv, t.one_bits(), xt);
            if GRAD {
                // p - t is pt with the sign of t (see `Binary`), and must be NaN for NaN x.
                let g = nan_where_nan(xv, b.pt);
                (g, F32x4::from_bits(g.to_bits().xor(b.tsign)), g)
            } else {
                // The loss term is NaN for NaN x already (see `Binary`), and x marks the NaN
                // slot: pt may stay finite there.
                (b.pt, b.bce, xv)
            }
        } else {
            let t = t.float();
            let s = Sided::with(xv, t, F32x4::ONE - t, xt);
            // mmdetection's g, |σ(x) - t| in float32, so that a g on an edge (x = 0, t = 0.1:
            // 0.5 - 0.1 = edges[4] of 10) lands in its bin; `|p - t|` from `Sided`, rounded
            // otherwise, may fall an ulp short. The gradient keeps `Sided`'s `p - t`, accurate
            // where it is tiny, and equal to the binary path's.
            let g = nan_where_nan(xv, (s.p() - t).abs());
            (g, if GRAD { nan_where_nan(xv, s.p_minus_t()) } else { s.bce() }, g)
        }
    }
}

/// GHM-C gradient of one chunk: `factor[slot] · (p - t)`, with `factor` of length `bins + 2`
/// (the NaN and discard slots included, normally 0).
pub fn ghmc_grad(x: &[f32], targets: Targets, weights: Weights, bins: usize, factor: &[f32], grad: &mut [f32]) {
    check(bins, x.len(), &[grad.len()]);
    assert!(factor.len() >= bins + 2);
    let mut staged = Staged::new(false);
    let (grad, factor) = (grad.as_mut_ptr(), factor.as_ptr());
    let k = GradBlock { grad, factor, bins, terms: GhmcTerms::<true>::new(x, &mut staged) };
    with_layout!(targets, l => grad_pass(x.len(), l, weights, k));
}

// Not inlined by LLVM, as `stats_pass`.
#[inline(never)]
fn grad_pass<L: Layout, V: Terms>(n: usize, targets: L, weights: Weights, mut k: GradBlock<V>) {
    targets.for_each_block(n, weights, &mut k);
}

/// GHM-R's `(g, loss term)` (stats pass) or `(g, d/s)` (`GRAD`), with `d = pred - target` and
/// `s = sqrt(d² + μ²)` in f32.
///
/// This holds for μ in [2^-60, 2^60] and d² ≤ 2^120: past those `μ²` underflows (0/0 at d = 0 for
/// μ < 1e-23) or `d²` overflows (from |d| ≈ 1.8e19). A pass runs it when μ allows and keeps the
/// largest d²; if that was past 2^120 (or NaN), the caller redoes the chunk in f64 instead
/// ([`ghmr_f64`]). The check is one integer max per block, 3% of the grad pass; scaling d and μ
/// in every block, to need no f64, cost it 30%.
struct GhmrTerms<const GRAD: bool> {
    pred: *const f32,
    target: *const f32,
    mu: F32x4,
    mu2: F32x4,
    /// The largest d² so far, as bits (NaN above +inf).
    top: I32x4,
}

/// Whether [`GhmrTerms`] may run for this μ: μ in [2^-60, 2^60].
fn plain_mu(mu: f32) -> bool {
    const LIMIT: f32 = 1_152_921_504_606_846_976.0;
    (1.0 / LIMIT..=LIMIT).contains(&mu)
}

impl<const GRAD: bool> GhmrTerms<GRAD> {
    fn new(pred: &[f32], target: &[f32], mu: f32) -> Self {
        let (mu, mu2) = (F32x4::splat(mu), F32x4::splat(mu * mu));
        GhmrTerms { pred: pred.as_ptr(), target: target.as_ptr(), mu, mu2, top: I32x4::splat(0) }
    }
}

impl<const GRAD: bool> Terms for GhmrTerms<GRAD> {
    #[inline(always)]
    fn terms<T: TargetLanes>(&mut self, i: usize, len: usize, _: T, _: bool) -> (F32x4, F32x4, F32x4) {
        let (pv, tv) = unsafe { (F32x4::load_partial(self.pred.add(i), len, 0.0), F32x4::load_partial(self.target.add(i), len, 0.0)) };
        let d = pv - tv;
        let d2 = d * d;
        self.top = self.top.max(d2.to_bits());
        let s = (d2 + self.mu2).sqrt();
        if GRAD {
            let u = d / s;
            (u.abs(), u, u)
        } else {
            // s - μ as d²/(s + μ): no cancellation for small d.
            let g = d.abs() / s;
            (g, d2 / (s + self.mu), g)
        }
    }
    fn complete(&self, _sums_finite: bool) -> bool {
        const D2_LIMIT: f32 = 1.329_228e36; // 2^120
        !M32x4::i32_lt(I32x4::splat(D2_LIMIT.to_bits() as i32), self.top).any()
    }
}

/// GHM-R statistics of one chunk, added into `stats`.
pub fn ghmr_stats(pred: &[f32], target: &[f32], weights: Weights, mu: f32, bins: usize, stats: &mut [f64]) {
    check(bins, pred.len(), &[target.len()]);
    assert!(stats.len() >= stats_len(bins));
    // The target array doubles as the "targets" that carry the weights through the walk.
    let wsum = weight_sum(pred.len(), Targets::Soft(target), weights);
    let terms = GhmrTerms::<false>::new(pred, target, mu);
    if !(plain_mu(mu) && stats_pass(pred.len(), SoftTargets(target), weights, wsum, bins, stats, terms)) {
        for i in 0..pred.len() {
            let (slot, _, asl1) = ghmr_f64(pred, target, weights, mu, bins, i);
            if slot <= bins {
                stats[slot] += 1.0;
                stats[bins + 1 + slot] += asl1;
            }
        }
        stats[2 * (bins + 1)] += wsum;
    }
}

/// GHM-R gradient of one chunk: `factor[slot] · d / sqrt(d² + μ²)`.
pub fn ghmr_grad(pred: &[f32], target: &[f32], weights: Weights, mu: f32, bins: usize, factor: &[f32], grad: &mut [f32]) {
    check(bins, pred.len(), &[target.len(), grad.len()]);
    assert!(factor.len() >= bins + 2);
    let terms = GhmrTerms::<true>::new(pred, target, mu);
    let mut k = GradBlock { grad: grad.as_mut_ptr(), factor: factor.as_ptr(), bins, terms };
    if plain_mu(mu) {
        SoftTargets(target).for_each_block(pred.len(), weights, &mut k);
        if k.terms.complete(true) {
            return;
        }
    }
    for i in 0..pred.len() {
        let (slot, u, _) = ghmr_f64(pred, target, weights, mu, bins, i);
        grad[i] = factor[slot] * u;
    }
}

/// Element `i` of GHM-R in f64, for chunks [`GhmrTerms`] cannot hold, where `d²` and `μ²` are
/// in range for every finite input: `(slot, d/s, s - μ)`, `s = sqrt(d² + μ²)`. The slot is
/// [`slots`]' for g rounded to f32, as the SIMD passes bin it.
#[inline(never)]
fn ghmr_f64(pred: &[f32], target: &[f32], weights: Weights, mu: f32, bins: usize, i: usize) -> (usize, f32, f64) {
    let (d, mu) = (pred[i] as f64 - target[i] as f64, mu as f64);
    // (f64 has no sqrt in core on Rust 1.63; F64x2 has.)
    let s = F64x2::new(d * d + mu * mu, 0.0).sqrt().to_array()[0];
    let u = (d / s) as f32;
    let g = F32x4::splat(u).abs();
    // As the walks read weights for soft targets (row weights mean none there).
    let w = if let Weights::Elements(w) = weights { w[i] } else { 1.0 };
    let slot = slots(g, g, F32x4::splat(w).gt(F32x4::ZERO), bins).to_array()[0] as usize;
    (slot, u, d * d / (s + mu))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bin by linear search against the f32 edges, as mmdetection compares.
    fn slow_bin(g: f32, bins: usize, last: f32) -> usize {
        let edge = |i: usize| if i == bins { last } else { i as f32 / bins as f32 };
        (0..bins).find(|&i| edge(i) <= g && g < edge(i + 1)).unwrap()
    }

    /// g values for `bins`: edges and their f32 neighbours (the exact path), spread values and
    /// tiny ones near the exact edge 0 (the division-free one).
    fn edge_gs(bins: usize) -> Vec<f32> {
        let mut gs: Vec<f32> = vec![0.0, 1.0, 0.5, 1e-30, 1e-45, 1e-8, 3e-7, 1.0 - 6e-8];
        let mut u = 12_345u32;
        for _ in 0..500 {
            u = u.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            gs.push((u >> 8) as f32 / 16_777_216.0);
        }
        for i in 0..=bins {
            let e = i as f32 / bins as f32;
            gs.extend_from_slice(&[e, f32::from_bits(e.to_bits().wrapping_sub(1)), f32::from_bits(e.to_bits() + 1)]);
        }
        gs.retain(|g| (0.0..=1.0).contains(g));
        gs
    }

    /// `g` padded to four lanes (the padding invalid) and its validity mask.
    fn lanes(g: &[f32]) -> (F32x4, M32x4) {
        let mut a = [0.0f32; 4];
        a[..g.len()].copy_from_slice(g);
        (F32x4::from_array(a), F32x4::iota_from(0.0).lt(F32x4::splat(g.len() as f32)))
    }

    #[test]
    fn arithmetic_bins_equal_edge_comparison() {
        for bins in 1..=256usize {
            for g in edge_gs(bins).chunks(4) {
                let (gv, valid) = lanes(g);
                let s = slots(gv, gv, valid, bins).to_array();
                for (j, &gj) in g.iter().enumerate() {
                    assert_eq!(s[j] as usize, slow_bin(gj, bins, GHMC_LAST_EDGE), "bins={bins} g={gj}");
                }
            }
            // NaN g goes to the NaN slot and invalid lanes to the discard slot, whatever their g.
            let g = F32x4::from_array([f32::NAN, 0.5, 1.0, f32::NAN]);
            let valid = F32x4::from_array([1.0, 0.0, 1.0, 0.0]).gt(F32x4::ZERO);
            assert_eq!(slots(g, g, valid, bins).to_array(), [bins as i32, bins as i32 + 1, bins as i32 - 1, bins as i32 + 1]);
        }
    }

    /// The stats pass's way: estimates staged, settled at the flush when any lane was near an edge.
    #[test]
    fn settled_stage_equals_edge_comparison() {
        for bins in 1..=256usize {
            let gs = edge_gs(bins);
            for part in gs.chunks(STAGE) {
                // As the stats pass stages and bins them (`StatsBlock::add`, `flush`).
                let mut stage = Stage { slots: [0; STAGE], vals: [0.0; STAGE], gs: [0.0; STAGE] };
                let len = (part.len() + 3) & !3;
                for (j, g) in part.chunks(4).enumerate() {
                    let (gv, valid) = lanes(g);
                    unsafe {
                        special(gv, valid, bins).store(stage.slots.as_mut_ptr().add(4 * j));
                        gv.store(stage.gs.as_mut_ptr().add(4 * j));
                    }
                }
                if bin_stage(&mut stage, len, bins) {
                    settle_stage(&mut stage, len, bins);
                }
                for (j, &g) in part.iter().enumerate() {
                    assert_eq!(stage.slots[j] as usize, slow_bin(g, bins, GHMC_LAST_EDGE), "bins={bins} g={g}");
                }
                if part.len() % 4 != 0 {
                    assert_eq!(stage.slots[part.len()], bins as i32 + 1, "padding stays in the discard slot");
                }
            }
        }
    }

    /// The whole stats pass on g values at and beside the float32 edges: its bin counts are
    /// the edge comparisons' (the settle step included, which only runs near an edge).
    #[test]
    fn stats_pass_counts_equal_edge_comparison() {
        for bins in [1usize, 3, 7, 10, 30, 100, 256, MAX_BINS] {
            let gs = edge_gs(bins);
            let n = gs.len();
            let soft = vec![0.0f32; n];
            let mut stats = vec![0.0f64; stats_len(bins)];
            let terms = |i: usize, len: usize, _: F32x4| {
                let (g, _) = lanes(&gs[i..i + len]);
                (g, F32x4::ONE)
            };
            stats_pass(n, SoftTargets(&soft), Weights::Ones, n as f64, bins, &mut stats, terms);
            let mut want = vec![0.0f64; bins];
            for &g in &gs {
                want[slow_bin(g, bins, GHMC_LAST_EDGE)] += 1.0;
            }
            assert_eq!(&stats[..bins], &want[..], "bins={bins}: counts");
            assert_eq!(&stats[bins + 1..2 * bins + 1], &want[..], "bins={bins}: sums of 1");
            assert_eq!(stats[bins], 0.0, "bins={bins}: no NaN");
        }
    }

    #[test]
    fn binary_stats_equal_soft_stats() {
        let n = 1003;
        let mut x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 409) as f32 - 204.0) * 0.11).collect();
        x[..6].copy_from_slice(&[0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e4]);
        let tb: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let ts: Vec<f32> = tb.iter().map(|&v| v as f32).collect();
        let w: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.5).collect();
        for bins in [1usize, 7, 30] {
            for weights in [Weights::Ones, Weights::Elements(&w)] {
                let (mut a, mut b) = (vec![0.0; stats_len(bins)], vec![0.0; stats_len(bins)]);
                ghmc_stats(&x, Targets::Binary(&tb), weights, bins, &mut a);
                ghmc_stats(&x, Targets::Soft(&ts), weights, bins, &mut b);
                for (k, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()), "bins={bins} stats[{k}]: {p} vs {q}");
                }
                assert_eq!(a[bins], 1.0, "the NaN logit is counted in the NaN slot");
                let factor: Vec<f32> = (0..bins + 2).map(|k| 0.25 + k as f32 * 0.125).collect();
                let (mut ga, mut gb) = (vec![0.0f32; n], vec![0.0f32; n]);
                ghmc_grad(&x, Targets::Binary(&tb), weights, bins, &factor, &mut ga);
                ghmc_grad(&x, Targets::Soft(&ts), weights, bins, &factor, &mut gb);
                for (i, (p, q)) in ga.iter().zip(&gb).enumerate() {
                    // -0 vs 0 at x = +inf, t = 1 (`Binary` gives p - t the sign of t).
                    assert!(p.to_bits() == q.to_bits() || p.is_nan() && q.is_nan() || *p == 0.0 && *q == 0.0, "bins={bins} grad[{i}]: {p} vs {q}");
                }
                assert!(ga[2].is_nan(), "NaN logit, NaN gradient");
            }
        }
    }

    #[test]
    fn labels_equal_the_one_hot_matrix() {
        // C = 80 and 8 walk tiles of whole rows; C = 5 walks rows with a per-block tile check.
        for c in [80usize, 8, 5] {
            let rows = 3 * TILE / c + 7;
            let n = rows * c;
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 409) as f32 - 204.0) * 0.05).collect();
            let labels: Vec<i32> = (0..rows).map(|r| ((r * 31 + 7) % (c + 1)) as i32).collect();
            let rw: Vec<f32> = (0..rows).map(|r| (r % 4) as f32 * 0.5).collect();
            let mut onehot = vec![0u8; n];
            let mut ew = vec![0.0f32; n];
            for r in 0..rows {
                for j in 0..c {
                    onehot[r * c + j] = (labels[r] == j as i32) as u8;
                    ew[r * c + j] = rw[r];
                }
            }
            let bins = 30;
            let (mut a, mut b) = (vec![0.0; stats_len(bins)], vec![0.0; stats_len(bins)]);
            ghmc_stats(&x, Targets::Labels { labels: &labels, num_classes: c }, Weights::Rows(&rw), bins, &mut a);
            ghmc_stats(&x, Targets::Binary(&onehot), Weights::Elements(&ew), bins, &mut b);
            assert_eq!(&a[..=bins], &b[..=bins], "C={c}: counts");
            let factor: Vec<f32> = (0..bins + 2).map(|k| 1.0 + k as f32 * 0.5).collect();
            let (mut ga, mut gb) = (vec![0.0f32; n], vec![0.0f32; n]);
            ghmc_grad(&x, Targets::Labels { labels: &labels, num_classes: c }, Weights::Rows(&rw), bins, &factor, &mut ga);
            ghmc_grad(&x, Targets::Binary(&onehot), Weights::Elements(&ew), bins, &factor, &mut gb);
            assert_eq!(ga, gb, "C={c}: gradients");
            for k in bins + 1..stats_len(bins) {
                assert!((a[k] - b[k]).abs() <= 1e-12 * b[k].abs().max(1.0), "C={c}: stats[{k}] {} vs {}", a[k], b[k]);
            }
        }
    }

    /// Soft targets: g is mmdetection's |σ(x) - t| in f32, so g on an edge lands in its bin
    /// (x = 0, t = 0.1: 0.5 - 0.1 is edges[4] of 10, not an ulp below), where σ is exact in f32.
    #[test]
    fn soft_g_on_an_edge_is_mmdetections() {
        for bins in 2..=40usize {
            for k in 1..40 {
                let t = k as f32 / 40.0 + [0.0, 0.01][k % 2];
                for (x, p) in [(0.0f32, 0.5f32), (-0.0, 0.5), (30.0, 1.0)] {
                    let mut stats = vec![0.0; stats_len(bins)];
                    ghmc_stats(&[x], Targets::Soft(&[t]), Weights::Ones, bins, &mut stats);
                    let want = slow_bin((p - t).abs(), bins, GHMC_LAST_EDGE);
                    assert_eq!(stats[want], 1.0, "bins={bins} x={x} t={t}: {:?}", &stats[..bins]);
                }
            }
        }
    }

    /// GHM-R where `d²` overflows f32 (and d itself) or `μ²` underflows: SPEC's f64 values, and
    /// the bins of f64 g (g → 1 in the last bin), whether the f32 pass or the f64 redo runs.
    #[test]
    fn ghmr_beyond_f32_squares_is_f64s() {
        let bins = 10;
        let edge = |i: usize| if i == bins { GHMR_LAST_EDGE as f64 } else { (i as f32 / bins as f32) as f64 };
        for &mu in &[0.02f32, 1e-37, 1e-30, 1e-19, 1e-12, 3.0, 1e19, 1e30, 1e37] {
            let p: Vec<f32> = vec![0.0, mu, -mu, 3.0 * mu, 0.25 * mu, 0.5, -1e-3, 1e20, -2e19, 3e38, -3.4e38, 1e30, 7.0];
            let t: Vec<f32> = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3e38, 3.4e38, -1e30, 7.5];
            for parts in [&p[..6], &p[..]] {
                let n = parts.len();
                let mut stats = vec![0.0; stats_len(bins)];
                ghmr_stats(parts, &t[..n], Weights::Ones, mu, bins, &mut stats);
                let mut grad = vec![0.0f32; n];
                ghmr_grad(parts, &t[..n], Weights::Ones, mu, bins, &[1.0; 12], &mut grad);
                let (mut counts, mut sums) = (vec![0.0; bins], vec![0.0; bins]);
                let m = mu as f64;
                for i in 0..n {
                    let d = parts[i] as f64 - t[i] as f64;
                    let s = (d * d + m * m).sqrt();
                    let g = d.abs() / s;
                    let b = (0..bins).find(|&b| edge(b) <= g && g < edge(b + 1)).unwrap();
                    counts[b] += 1.0;
                    sums[b] += d * d / (s + m);
                    assert!((grad[i] as f64 - d / s).abs() <= 1e-6, "μ={mu} d={d}: grad {} vs {}", grad[i], d / s);
                }
                assert_eq!(&stats[..bins], &counts[..], "μ={mu} n={n}: counts");
                for b in 0..bins {
                    assert!((stats[bins + 1 + b] - sums[b]).abs() <= 1e-6 * sums[b], "μ={mu} n={n} bin {b}: sum {} vs {}", stats[bins + 1 + b], sums[b]);
                }
            }
        }
    }

    /// TypeScript refuses bin counts above its own copy of the limit (no export reports it), so
    /// that no call reaches `check`'s assertion: the two must agree.
    #[test]
    fn typescript_has_the_same_max_bins() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ts/ghm.ts");
        let ts = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let line = format!("export const MAX_BINS = {MAX_BINS};");
        assert!(ts.lines().any(|l| l.trim() == line), "{path} should have `{line}`");
    }

    #[test]
    fn chunks_add_up_to_the_whole() {
        let n = 1001;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 211) as f32 - 105.0) * 0.09).collect();
        let t: Vec<u8> = (0..n).map(|i| (i % 7 == 0) as u8).collect();
        let w: Vec<f32> = (0..n).map(|i| if i % 11 == 0 { 0.0 } else { 1.0 }).collect();
        let bins = 13;
        let mut whole = vec![0.0; stats_len(bins)];
        ghmc_stats(&x, Targets::Binary(&t), Weights::Elements(&w), bins, &mut whole);
        let mut parts = vec![0.0; stats_len(bins)];
        for (a, b) in [(0, 1), (1, 1), (1, 300), (300, 303), (303, n)] {
            ghmc_stats(&x[a..b], Targets::Binary(&t[a..b]), Weights::Elements(&w[a..b]), bins, &mut parts);
        }
        let valid = w.iter().filter(|&&v| v > 0.0).count() as f64;
        assert_eq!(whole[..=bins].iter().sum::<f64>(), valid);
        assert_eq!(&whole[..=bins], &parts[..=bins]);
        for k in bins + 1..stats_len(bins) {
            assert!((whole[k] - parts[k]).abs() <= 1e-12 * whole[k].abs().max(1.0));
        }
    }
}
