//! Where a kernel's per-element targets and weights come from, delivered four lanes at a time.
//!
//! The losses are elementwise over a flat logit array of length `n`; targets arrive in three
//! layouts (binary bytes, soft floats, or one class index per row of an `[N, C]` matrix, the
//! mmcv CUDA layout that never builds the one-hot matrix) and weights in three (none, one per
//! element, one per row). [`Layout::for_each_block`] walks all of them the same way and hands the
//! kernel `(offset, len, t, w)` blocks (see [`Block`]): `len` ≤ 4 lanes starting at element
//! `offset`, with the lanes past `len` padded by `t = 0, w = 0` so that they contribute nothing to
//! any sum. Targets come as [`TargetLanes`]: floats, or binary bytes left as bits for kernels that
//! only ask which are 1.
//!
//! [`Targets`] names the target layout at run time; each layout is also a type (see [`Layout`]),
//! so that a kernel generic over it holds only the walk of its own layout.
//!
//! Rows of a label matrix are walked one at a time (blocks never straddle rows), so that the
//! target of a lane is just `column == label`, with no division per element.

use crate::simd::{F32x4, I32x4, M32x4, SumF64};

/// A block's targets, as a walk loads them.
pub trait TargetLanes: Copy {
    /// Whether the targets are exactly 0 or 1 (binary bytes by the caller's contract, one-hot
    /// rows by construction), so that kernels may take [`TargetLanes::one_bits`] instead of the
    /// floats. Other byte values are caught by [`target_range`], after the fact.
    const BINARY: bool;
    /// The targets as floats.
    fn float(self) -> F32x4;
    /// The sign bit set where the target is 1, for targets that are 0 or 1.
    fn one_bits(self) -> I32x4;
}

/// Soft targets.
impl TargetLanes for F32x4 {
    const BINARY: bool = false;
    #[inline(always)]
    fn float(self) -> F32x4 {
        self
    }
    #[inline(always)]
    fn one_bits(self) -> I32x4 {
        // 1.0 is 0x3f80_0000: its lowest exponent bit, shifted to the top, is the sign bit.
        self.to_bits().shl(8)
    }
}

/// Binary target bytes, each in the top byte of its lane (`b << 24`). The binary kernels need
/// only [`TargetLanes::one_bits`], one shift from here; turning the bytes into floats first, and
/// that into bits, took four more instructions per block and two more constant registers, which
/// in the focal loss loop made V8 spill (4.3% of the forward kernel, measured).
#[derive(Clone, Copy)]
pub struct ByteLanes(I32x4);

impl ByteLanes {
    /// The `len` (0..=4) bytes from `p`, padded with 0.
    ///
    /// # Safety
    /// `p..p+len` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const u8, len: usize) -> ByteLanes {
        if len >= 4 {
            return ByteLanes(I32x4::load_u8_high(p));
        }
        let mut a = [0u8; 4];
        let mut i = 0;
        while i < len {
            a[i] = *p.add(i);
            i += 1;
        }
        ByteLanes(I32x4::load_u8_high(a.as_ptr()))
    }
}

impl TargetLanes for ByteLanes {
    const BINARY: bool = true;
    #[inline(always)]
    fn float(self) -> F32x4 {
        // 2^23 + b has the bits 0x4b00_0000 | b, so an OR and a subtract make b a float (a
        // conversion instruction is worse: LLVM splits the unsigned one into scalar lanes).
        F32x4::from_bits(self.0.shr_u(24).or(I32x4::splat(0x4b00_0000))) - F32x4::splat(8_388_608.0)
    }
    #[inline(always)]
    fn one_bits(self) -> I32x4 {
        self.0.shl(7)
    }
}

/// The targets of a class-index row: 1 in the label's column, 0 elsewhere (and in padded lanes).
#[derive(Clone, Copy)]
pub struct OneHot(F32x4);

impl TargetLanes for OneHot {
    const BINARY: bool = true;
    #[inline(always)]
    fn float(self) -> F32x4 {
        self.0
    }
    #[inline(always)]
    fn one_bits(self) -> I32x4 {
        self.0.one_bits()
    }
}

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

/// A target layout as a type: a kernel generic over it is compiled with only that layout's walk.
/// Made from [`Targets`] by [`with_layout!`].
///
/// Why: with the layout a run-time value, each kernel variant inlined the block loops of every
/// layout (about 13 copies of its loop body), of which only those of one layout could run for
/// soft targets, or of two for 0/1 ones; that was four fifths of the SIMD module.
pub trait Layout: Copy {
    /// Calls `f.block(offset, len, t, w)` for every block of up to four elements of an
    /// `n`-element batch (`f.row_block` for rows that do not line up with tiles; see [`Block`]).
    ///
    /// Callers guarantee the slices are long enough: `n` elements of targets and element weights,
    /// `n / num_classes` labels and row weights. Labels out of range make a row all-negative (the
    /// TypeScript layer rejects them before calling). Row weights count only with class labels;
    /// elsewhere they mean none.
    fn for_each_block<K: Block>(self, n: usize, weights: Weights, f: &mut K);
}

/// [`Targets::Binary`] as a [`Layout`].
#[derive(Clone, Copy)]
pub struct BinaryTargets<'a>(pub &'a [u8]);

/// [`Targets::Soft`] as a [`Layout`].
#[derive(Clone, Copy)]
pub struct SoftTargets<'a>(pub &'a [f32]);

/// [`Targets::Labels`] as a [`Layout`].
#[derive(Clone, Copy)]
pub struct LabelTargets<'a> {
    pub labels: &'a [i32],
    pub num_classes: usize,
}

/// Runs `$body` with `$l` bound to the [`Layout`] of `$targets` (a [`Targets`]): `$body` is
/// compiled once per layout.
macro_rules! with_layout {
    ($targets:expr, $l:ident => $body:expr) => {{
        match $targets {
            $crate::source::Targets::Binary(t) => {
                let $l = $crate::source::BinaryTargets(t);
                $body
            }
            $crate::source::Targets::Soft(t) => {
                let $l = $crate::source::SoftTargets(t);
                $body
            }
            $crate::source::Targets::Labels { labels, num_classes } => {
                let $l = $crate::source::LabelTargets { labels, num_classes };
                $body
            }
        }
    }};
}
pub(crate) use with_layout;

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
///
/// Linear walks (binary and soft targets) go tile by tile: [`Block::tile`] comes before the
/// blocks of each run of [`Block::TILE`] elements, so that a kernel can compute terms for the
/// whole tile ahead in loops of their own, and its block loop holds no call (a call in a hot
/// loop makes V8 spill and reload every vector register around it). Row walks (class-index
/// targets) do not line up with tiles; their blocks come through [`Block::row_block`].
pub trait Block {
    /// Elements per tile, a multiple of 4 (the default: the whole batch is one tile).
    const TILE: usize = usize::MAX;
    /// Called before the blocks of elements `[start, end)` of a linear walk.
    #[inline(always)]
    fn tile(&mut self, _start: usize, _end: usize) {}
    fn block<T: TargetLanes>(&mut self, offset: usize, len: usize, t: T, w: F32x4);
    /// A block of a row walk, with no [`Block::tile`] call before it.
    #[inline(always)]
    fn row_block<T: TargetLanes>(&mut self, offset: usize, len: usize, t: T, w: F32x4) {
        self.block(offset, len, t, w)
    }
}

impl Layout for BinaryTargets<'_> {
    #[inline(always)]
    fn for_each_block<K: Block>(self, n: usize, weights: Weights, f: &mut K) {
        let t = self.0;
        linear(n, |i, len| unsafe { ByteLanes::load(t.as_ptr().add(i), len) }, weights, f)
    }
}

impl Layout for SoftTargets<'_> {
    #[inline(always)]
    fn for_each_block<K: Block>(self, n: usize, weights: Weights, f: &mut K) {
        let t = self.0;
        linear(n, |i, len| unsafe { F32x4::load_partial(t.as_ptr().add(i), len, 0.0) }, weights, f)
    }
}

impl Layout for LabelTargets<'_> {
    #[inline(always)]
    fn for_each_block<K: Block>(self, n: usize, weights: Weights, f: &mut K) {
        let c = self.num_classes;
        if K::TILE != usize::MAX && c > 0 && c % 4 == 0 && c <= K::TILE {
            tiled_rows(n, self.labels, c, weights, f)
        } else {
            rows(n, self.labels, c, weights, f)
        }
    }
}

#[inline(always)]
fn linear<T, L, K>(n: usize, load_t: T, weights: Weights, f: &mut K)
where
    T: Fn(usize, usize) -> L,
    L: TargetLanes,
    K: Block,
{
    // One loop per weight layout: with no weights the kernel's `· w` folds away, and the hot loop
    // carries no branch or pointer for them.
    match weights {
        Weights::Elements(w) => walk(n, load_t, |i, len| unsafe { F32x4::load_partial(w.as_ptr().add(i), len, 0.0) }, f),
        _ => walk(n, load_t, |_, len| keep_first(F32x4::ONE, len), f),
    }
}

#[inline(always)]
pub(crate) fn walk<T, L, W, K>(n: usize, load_t: T, load_w: W, f: &mut K)
where
    T: Fn(usize, usize) -> L,
    L: TargetLanes,
    W: Fn(usize, usize) -> F32x4,
    K: Block,
{
    // Full blocks with the literal length 4, so that every `*_partial` load and store in the
    // inlined kernel folds to one plain vector access; the padded tail is a second call site.
    // With `len` a loop variable instead, LLVM keeps the lane-by-lane fallbacks in the hot loop
    // and V8 turns them into a few hundred instructions per block.
    let mut start = 0;
    while start < n {
        let end = if n - start > K::TILE { start + K::TILE } else { n };
        f.tile(start, end);
        let full = end & !3;
        let mut i = start;
        while i < full {
            f.block(i, 4, load_t(i, 4), load_w(i, 4));
            i += 4;
        }
        if i < end {
            f.block(i, end - i, load_t(i, end - i), load_w(i, end - i));
        }
        start = end;
    }
}

/// `v` with the lanes from `len` on set to 0.
#[inline(always)]
fn keep_first(v: F32x4, len: usize) -> F32x4 {
    if len >= 4 {
        v
    } else {
        v.keep(first_lanes(len))
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
    let full = c & !3;
    for r in 0..nrows {
        // As a float: class indices are far below 2^24, so the comparison is exact.
        let label = F32x4::splat(labels[r] as f32);
        let base = r * c;
        let row_w = match weights {
            Weights::Rows(w) => F32x4::splat(w[r]),
            _ => F32x4::ONE,
        };
        let block = |f: &mut K, j: usize, len: usize| {
            let col = iota + F32x4::splat(j as f32);
            let t = F32x4::ONE.keep(col.eq(label));
            let w = match weights {
                Weights::Elements(w) => unsafe { F32x4::load_partial(w.as_ptr().add(base + j), len, 0.0) },
                _ => keep_first(row_w, len),
            };
            f.row_block(base + j, len, OneHot(keep_first(t, len)), w);
        };
        // Full blocks with a literal length, then the row's tail (see `linear`).
        let mut j = 0;
        while j < full {
            block(f, j, 4);
            j += 4;
        }
        if j < c {
            block(f, j, c - j);
        }
    }
}

/// [`rows`] for kernels with tiles, when every row is whole blocks (C a multiple of 4, as COCO's
/// 80 and VOC's 20) and fits in a tile: tiles of whole rows are announced like a linear walk's,
/// and the blocks come through [`Block::block`], with no per-block check for the tile's end (the
/// call behind such a check makes V8 spill every vector register in the loop).
#[inline(always)]
fn tiled_rows<K: Block>(n: usize, labels: &[i32], c: usize, weights: Weights, f: &mut K) {
    // One loop per weight layout, as in `linear`: LLVM does not take the match out of the loop.
    match weights {
        Weights::Elements(w) => tiled_rows_with(n, labels, c, f, |_, i| unsafe { F32x4::load(w.as_ptr().add(i)) }),
        Weights::Rows(w) => tiled_rows_with(n, labels, c, f, |r, _| F32x4::splat(w[r])),
        Weights::Ones => tiled_rows_with(n, labels, c, f, |_, _| F32x4::ONE),
    }
}

/// [`tiled_rows`] with `load_w(row, element)` giving a block's weights.
#[inline(always)]
fn tiled_rows_with<K: Block, W: Fn(usize, usize) -> F32x4>(n: usize, labels: &[i32], c: usize, f: &mut K, load_w: W) {
    let nrows = n / c;
    let rows_per_tile = K::TILE / c;
    let mut r0 = 0;
    while r0 < nrows {
        let r1 = if nrows - r0 > rows_per_tile { r0 + rows_per_tile } else { nrows };
        f.tile(r0 * c, r1 * c);
        for r in r0..r1 {
            // The label relative to the block's first column: one subtraction per block, where
            // the column as a float would cost a conversion.
            let mut label = F32x4::splat(labels[r] as f32);
            let base = r * c;
            let mut j = 0;
            while j < c {
                let t = F32x4::ONE.keep(F32x4::iota_from(0.0).eq(label));
                f.block(base + j, 4, OneHot(t), load_w(r, base + j));
                label = label - F32x4::splat(4.0);
                j += 4;
            }
        }
        r0 = r1;
    }
}

/// `f` on each vector of `a`, the last one padded with `pad`.
#[inline(always)]
fn for_each_vector<F: FnMut(F32x4)>(a: &[f32], pad: f32, mut f: F) {
    let (n, p) = (a.len(), a.as_ptr());
    let full = n & !3;
    let mut i = 0;
    while i < full {
        f(unsafe { F32x4::load(p.add(i)) });
        i += 4;
    }
    if i < n {
        f(unsafe { F32x4::load_partial(p.add(i), n - i, pad) });
    }
}

/// Σ of the weights over all `n` elements (a row's weight counts once per element of the row):
/// a pass of its own, for the same reason as [`target_range`].
pub fn weight_sum(n: usize, targets: Targets, weights: Weights) -> f64 {
    match (weights, targets) {
        (Weights::Elements(w), _) => {
            let mut s = SumF64::new();
            for_each_vector(&w[..n], 0.0, |v| s.add(v));
            s.total()
        }
        (Weights::Rows(w), Targets::Labels { num_classes, .. }) if num_classes > 0 => {
            w[..n / num_classes].iter().map(|&v| v as f64).sum::<f64>() * num_classes as f64
        }
        // Walks cover whole rows only (none without classes); elsewhere row weights mean none.
        (_, Targets::Labels { num_classes, .. }) => (n / num_classes.max(1) * num_classes) as f64,
        _ => n as f64,
    }
}

/// The range of the targets: a pass of its own, much cheaper than the loss loops it stays out of
/// (there it would hold three more registers and cost a few instructions per block). Class-index
/// targets are 0 and 1 by construction.
pub fn target_range(n: usize, targets: Targets) -> TargetRange {
    if n == 0 {
        return RangeTracker::new().range();
    }
    match targets {
        Targets::Binary(t) => {
            // Every byte is 0 or 1 exactly when their OR is (`bytes_are_bits`): one OR per 16
            // bytes in place of a min and a max. Only a bad batch pays for the exact range; a good
            // one reports [0, 1] whatever it holds (the range only decides whether a call throws).
            let t = &t[..n];
            if bytes_are_bits(t) {
                return TargetRange { min: 0.0, max: 1.0 };
            }
            let (lo, hi) = t.iter().fold((u8::MAX, 0u8), |(lo, hi), &b| (lo.min(b), hi.max(b)));
            TargetRange { min: lo as f32, max: hi as f32 }
        }
        Targets::Soft(t) => {
            let mut r = RangeTracker::new();
            // Pad with a value that is there anyway, so the padding cannot widen the range.
            for_each_vector(&t[..n], t[0], |v| r.add(v));
            r.range()
        }
        Targets::Labels { .. } => TargetRange { min: 0.0, max: 1.0 },
    }
}

/// Whether every byte is 0 or 1: their OR has no bit above the lowest. Four 16-byte ORs per
/// iteration, which is as fast as the loads issue (LLVM's own loop does one).
fn bytes_are_bits(t: &[u8]) -> bool {
    let (n, p) = (t.len(), t.as_ptr());
    let full = n & !63;
    let zero = I32x4::splat(0);
    let (mut a, mut b, mut c, mut d) = (zero, zero, zero, zero);
    let mut i = 0;
    while i < full {
        // SAFETY: i + 64 <= n.
        unsafe {
            a = a.or(I32x4::load(p.add(i) as *const i32));
            b = b.or(I32x4::load(p.add(i + 16) as *const i32));
            c = c.or(I32x4::load(p.add(i + 32) as *const i32));
            d = d.or(I32x4::load(p.add(i + 48) as *const i32));
        }
        i += 64;
    }
    let high = a.or(b).or(c.or(d)).and(I32x4::splat(0xFEFE_FEFEu32 as i32));
    !M32x4::from_i32_nonzero(high).any() && t[full..].iter().fold(0u8, |acc, &b| acc | b) <= 1
}

/// Tracks [`TargetRange`] over vectors.
///
/// On the bit patterns as integers, three single-instruction lane ops per block instead of float
/// min/max (several instructions each in V8 on x64, and a NaN mask on top). Non-negative floats
/// order like their bits; negative ones have the sign bit set and order reversed. So, over the
/// values seen: the unsigned maximum is the most negative value if there is a negative one; the
/// signed maximum is the largest non-negative value if there is one; and the unsigned minimum is
/// the smallest non-negative value, or with none the negative value closest to zero. A NaN's bits
/// lie beyond infinity's in its sign class, so a +NaN becomes the maximum and a -NaN the minimum.
#[derive(Clone, Copy)]
pub struct RangeTracker {
    max_s: I32x4,
    max_u: I32x4,
    min_u: I32x4,
}

impl RangeTracker {
    #[inline(always)]
    pub fn new() -> RangeTracker {
        RangeTracker { max_s: I32x4::splat(i32::MIN), max_u: I32x4::splat(0), min_u: I32x4::splat(-1) }
    }
    #[inline(always)]
    pub fn add(&mut self, t: F32x4) {
        let b = t.to_bits();
        self.max_s = self.max_s.max(b);
        self.max_u = self.max_u.max_u(b);
        self.min_u = self.min_u.min_u(b);
    }
    pub fn range(&self) -> TargetRange {
        let max_s = self.max_s.to_array().iter().copied().fold(i32::MIN, i32::max);
        let max_u = self.max_u.to_array().iter().map(|&v| v as u32).fold(0, u32::max);
        let min_u = self.min_u.to_array().iter().map(|&v| v as u32).fold(u32::MAX, u32::min);
        // Every value seen raises max_u above 0 or (if it is +0) lowers min_u below u32::MAX.
        if max_u == 0 && min_u == u32::MAX {
            return TargetRange { min: f32::INFINITY, max: f32::NEG_INFINITY };
        }
        let any_negative = max_u >> 31 == 1;
        let any_non_negative = max_s >= 0;
        let min = f32::from_bits(if any_negative { max_u } else { min_u });
        let max = f32::from_bits(if any_non_negative { max_s as u32 } else { min_u });
        if min.is_nan() || max.is_nan() {
            return TargetRange { min: f32::NAN, max: f32::NAN };
        }
        TargetRange { min, max }
    }
}

impl Default for RangeTracker {
    fn default() -> Self {
        RangeTracker::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_of(v: &[f32]) -> (f32, f32) {
        let mut r = RangeTracker::new();
        for c in v.chunks(4) {
            let mut a = [0.0f32; 4];
            a[..c.len()].copy_from_slice(c);
            // Pad with a copy of the first value rather than 0, so padding cannot hide the result.
            for k in c.len()..4 {
                a[k] = c[0];
            }
            r.add(F32x4::from_array(a));
        }
        let t = r.range();
        (t.min, t.max)
    }

    #[test]
    fn byte_lanes_are_the_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        for (k, c) in bytes.chunks(4).enumerate() {
            for len in 0..=4 {
                let t = unsafe { ByteLanes::load(c.as_ptr(), len) };
                let want: Vec<f32> = (0..4).map(|j| if j < len { c[j] as f32 } else { 0.0 }).collect();
                assert_eq!(t.float().to_array().to_vec(), want, "bytes {k}.., len {len}");
            }
        }
        let t = unsafe { ByteLanes::load([1u8, 0, 0, 1].as_ptr(), 4) };
        assert_eq!(t.one_bits().to_array(), [i32::MIN, 0, 0, i32::MIN]);
        assert_eq!(t.one_bits().to_array(), F32x4::from_array([1.0, 0.0, 0.0, 1.0]).one_bits().to_array());
    }

    #[test]
    fn byte_range_finds_any_byte_that_is_not_a_bit() {
        for n in [1usize, 15, 63, 64, 65, 127, 128, 200] {
            let bits: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
            let r = target_range(n, Targets::Binary(&bits));
            assert_eq!((r.min, r.max), (0.0, 1.0), "n {n}");
            for at in 0..n {
                for bad in [2u8, 3, 0x80, 0xFF] {
                    let mut t = bits.clone();
                    t[at] = bad;
                    let r = target_range(n, Targets::Binary(&t));
                    let lo = if n == 1 { bad } else { 0 };
                    assert_eq!((r.min, r.max), (lo as f32, bad as f32), "n {n}, byte {bad} at {at}");
                }
            }
        }
    }

    #[test]
    fn range_is_the_float_min_and_max() {
        let cases: &[&[f32]] = &[
            &[0.5],
            &[0.0, 1.0, 0.25],
            &[-0.5, -2.0, -0.25],
            &[-3.0, 0.5, 7.0, -0.0, 1.0],
            &[f32::INFINITY, 0.0],
            &[f32::NEG_INFINITY, -1.0, 2.0],
            &[1e-45, 3e38, -1e-45],
            &[-0.0],
        ];
        for v in cases {
            let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let (a, b) = range_of(v);
            assert!(a == lo && b == hi, "{v:?}: got [{a}, {b}], want [{lo}, {hi}]");
        }
        for v in [&[0.0, f32::NAN][..], &[-f32::NAN, 0.5], &[-1.0, f32::NAN, 2.0], &[-f32::NAN]] {
            let (a, b) = range_of(v);
            assert!(a.is_nan() && b.is_nan(), "{v:?}");
        }
        let empty = RangeTracker::new().range();
        assert_eq!((empty.min, empty.max), (f32::INFINITY, f32::NEG_INFINITY));
    }
}
