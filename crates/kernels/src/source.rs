//! Where a kernel's per-element targets and weights come from, delivered four lanes at a time.
//!
//! The losses are elementwise over a flat logit array of length `n`; targets arrive in three
//! layouts (binary bytes, soft floats, or one class index per row of an `[N, C]` matrix, the
//! mmcv CUDA layout that never builds the one-hot matrix) and weights in three (none, one per
//! element, one per row). [`for_each_block`] walks all of them the same way and hands the kernel
//! `(offset, len, t, w)` blocks (see [`Block`]): `len` ≤ 4 lanes starting at element `offset`, with the lanes past
//! `len` padded by `t = 0, w = 0` so that they contribute nothing to any sum.
//!
//! Rows of a label matrix are walked one at a time (blocks never straddle rows), so that the
//! target of a lane is just `column == label`, with no division per element.

use crate::simd::{F32x4, M32x4};

/// Per-element targets.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// 0/1 bytes (other values are reported through the target range, see [`TargetRange`]).
    Binary(&'a [u8]),
    /// Soft targets in [0, 1].
    Soft(&'a [f32]),
    /// One class index per row: `labels[r]` in `[0, num_classes]`; `num_classes` means background.
    Labels { labels: &'a [i32], num_classes: usize },
}

/// Per-element weights.
#[derive(Clone, Copy)]
pub enum Weights<'a> {
    Ones,
    Elements(&'a [f32]),
    /// One weight per row; only meaningful with [`Targets::Labels`].
    Rows(&'a [f32]),
}

/// The smallest and largest target seen (NaN if any target was NaN), so the caller can reject
/// targets outside [0, 1] after the fact without a separate validation pass over the data.
#[derive(Clone, Copy)]
pub struct TargetRange {
    pub min: f32,
    pub max: f32,
}

/// A mask of the first `len` lanes.
#[inline(always)]
pub fn first_lanes(len: usize) -> M32x4 {
    F32x4::iota_from(0.0).lt(F32x4::splat(len as f32))
}

/// A kernel's work on one block: `len` lanes from element `offset`, targets `t`, weights `w`.
///
/// A trait rather than a closure so that implementations can be `#[inline(always)]`: the walk
/// below calls the kernel from several loops (one per layout), and LLVM declines to inline a big
/// closure body into more than one call site, which would leave a call per block in the hot loop.
pub trait Block {
    fn block(&mut self, offset: usize, len: usize, t: F32x4, w: F32x4);
}

/// Calls `k.block(offset, len, t, w)` for every block of up to four elements of an `n`-element batch.
///
/// Callers guarantee the slices are long enough: `n` elements of targets and element weights,
/// `n / num_classes` labels and row weights. Labels out of range make a row all-negative (the
/// TypeScript layer rejects them before calling).
#[inline(always)]
pub fn for_each_block<K: Block>(n: usize, targets: Targets, weights: Weights, f: &mut K) {
    match targets {
        Targets::Binary(t) => linear(n, |i, len| unsafe { F32x4::load_u8_partial(t.as_ptr().add(i), len) }, weights, f),
        Targets::Soft(t) => linear(n, |i, len| unsafe { F32x4::load_partial(t.as_ptr().add(i), len, 0.0) }, weights, f),
        Targets::Labels { labels, num_classes } => rows(n, labels, num_classes, weights, f),
    }
}

#[inline(always)]
fn linear<T, K>(n: usize, load_t: T, weights: Weights, f: &mut K)
where
    T: Fn(usize, usize) -> F32x4,
    K: Block,
{
    // One loop for both weight layouts: the branch is loop-invariant and predicted, and a second
    // copy of every inlined kernel would double the code size for no measurable speed.
    // The tail takes the padded loads on a branch that is predictable too (taken once).
    let wp = match weights {
        Weights::Elements(w) => w.as_ptr(),
        _ => core::ptr::null(),
    };
    let mut i = 0;
    while i < n {
        let len = if n - i >= 4 { 4 } else { n - i };
        let wv = if !wp.is_null() {
            if len == 4 {
                unsafe { F32x4::load(wp.add(i)) }
            } else {
                unsafe { F32x4::load_partial(wp.add(i), len, 0.0) }
            }
        } else if len == 4 {
            F32x4::ONE
        } else {
            F32x4::ONE.keep(first_lanes(len))
        };
        f.block(i, len, load_t(i, len), wv);
        i += 4;
    }
}

#[inline(always)]
fn rows<K: Block>(n: usize, labels: &[i32], num_classes: usize, weights: Weights, f: &mut K) {
    if num_classes == 0 {
        return;
    }
    let c = num_classes;
    let nrows = n / c;
    let iota = F32x4::iota_from(0.0);
    for r in 0..nrows {
        // As a float: class indices are far below 2^24, so the comparison is exact.
        let label = F32x4::splat(labels[r] as f32);
        let base = r * c;
        let row_w = match weights {
            Weights::Rows(w) => F32x4::splat(w[r]),
            _ => F32x4::ONE,
        };
        let mut j = 0;
        while j < c {
            let len = if c - j >= 4 { 4 } else { c - j };
            let col = iota + F32x4::splat(j as f32);
            let t = F32x4::ONE.keep(col.eq(label));
            let w = match weights {
                Weights::Elements(w) => unsafe { F32x4::load_partial(w.as_ptr().add(base + j), len, 0.0) },
                _ => row_w.keep(first_lanes(len)),
            };
            f.block(base + j, len, t.keep(first_lanes(len)), w);
            j += 4;
        }
    }
}

/// Tracks [`TargetRange`] over blocks; padded lanes hold 0, which is in range, so they are harmless.
#[derive(Clone, Copy)]
pub struct RangeTracker {
    lo: F32x4,
    hi: F32x4,
    nan: M32x4,
}

impl RangeTracker {
    #[inline(always)]
    pub fn new() -> RangeTracker {
        let z = F32x4::ZERO;
        RangeTracker { lo: F32x4::splat(f32::INFINITY), hi: F32x4::splat(f32::NEG_INFINITY), nan: z.lt(z) }
    }
    /// Pseudo-min/max (one instruction each on x64) plus a sticky NaN mask, rather than wasm's
    /// NaN-propagating min/max, which cost several instructions each.
    #[inline(always)]
    pub fn add(&mut self, t: F32x4) {
        self.lo = self.lo.pmin(t);
        self.hi = self.hi.pmax(t);
        self.nan = self.nan.or(t.eq(t).not());
    }
    pub fn range(&self) -> TargetRange {
        let lo = self.lo.to_array();
        let hi = self.hi.to_array();
        if self.nan.any() {
            return TargetRange { min: f32::NAN, max: f32::NAN };
        }
        TargetRange { min: fold_nan(lo, f32::min), max: fold_nan(hi, f32::max) }
    }
}

impl Default for RangeTracker {
    fn default() -> Self {
        RangeTracker::new()
    }
}

/// Folds the lanes with `pick`, but NaN if any lane is NaN (scalar f32::min/max would drop it).
fn fold_nan(a: [f32; 4], pick: fn(f32, f32) -> f32) -> f32 {
    if a.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    pick(pick(a[0], a[1]), pick(a[2], a[3]))
}
