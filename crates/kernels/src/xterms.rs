//! The sigmoid's terms of the logits alone and the pieces the losses build from them, shared by
//! the sigmoid focal loss ([`crate::focal::sigmoid`]) and GHM-C ([`crate::ghm`]).
//!
//! [`Staged`] computes the x-only terms ([`XTerms`]: `exp(-|x|)` and its `log1p`) for a tile of
//! elements ahead of a kernel's block loop, and [`Tiles`] walks them; [`Sided`] (any target in
//! [0, 1]) and [`Binary`] (targets exactly 0 or 1) combine them with targets into `pt`, the BCE,
//! `p - t` and `p·q` without catastrophic cancellation.

use core::mem::MaybeUninit;

use crate::math;
use crate::simd::{F32x4, I32x4};

/// The terms that depend on x alone: `e = exp(-|x|)`, `d = 1 + e`, `log1p(e)` (at infinite x,
/// PyTorch's values rather than those: see [`Staged::infinite_terms`]).
///
/// The sigmoid's values are quotients by `d`, each one division: `σ(z)` is `1/d` or `e/d`, not
/// `e·(1/d)`. A forward pass needs only that one quotient; the multiply by `1/d` cost an
/// instruction more per block (a forward loss loop is ~36 of them), and rounded twice.
#[derive(Clone, Copy)]
pub(crate) struct XTerms {
    pub e: F32x4,
    pub d: F32x4,
    pub l1p: F32x4,
}

/// Elements per tile of [`Staged`] x-only terms.
pub(crate) const TILE: usize = 256;

/// [`XTerms`] for a tile of consecutive elements, computed ahead of the loss loop: `e` and
/// `log1p(e)`; the division by `d = 1 + e` is left to the loss loop (see [`Tiles::get`]).
///
/// Why: in one loop, exp, log1p and the loss need more constants and temporaries than x64 has
/// vector registers, and V8 then spends a third of the loop's instructions on stack traffic; the
/// long dependency chain also exceeds what the out-of-order window overlaps. Short loops (exp's
/// range reduction; its polynomial; log1p; the loss) each fit in registers and pipeline well,
/// and the tile's 3 KiB of terms and scratch stays in L1.
///
/// Each array has four lanes beyond the tile: a block of a label row may start in the last
/// three lanes of the tile and read past its end in its padded lanes. Those must be finite
/// (their zero weight cancels a finite term, not NaN), so [`Staged::fill`] writes zeros into
/// the block after the tile's last.
///
/// The arrays start uninitialized, and are only read where `fill` has written: zeroing them
/// was a 3 KiB memset per call, a fifth of a 16-element call's time.
#[repr(C, align(16))]
pub(crate) struct Staged {
    // `e` and `l1p` back to back: [`Tiles::get`] addresses `l1p` from `e`.
    e: MaybeUninit<[f32; TILE + 4]>,
    l1p: MaybeUninit<[f32; TILE + 4]>,
    /// exp's reduced argument, between its two loops.
    red: MaybeUninit<[f32; TILE + 4]>,
    /// Whether `fill` gives infinite logits PyTorch's terms ([`Staged::infinite_terms`]).
    ///
    /// Only a pass that met a non-finite loss sum sets it, for a second try: every infinite
    /// logit makes its loss ±∞ or NaN, with these terms or without, so a finite sum rules them
    /// out. Looking for them in every tile (an integer max per block) cost the focal kernels
    /// 1–1.5%.
    pub infinities: bool,
}

impl Staged {
    /// Empty tiles; see [`Staged::infinities`].
    #[cfg(not(test))]
    pub fn new(infinities: bool) -> Staged {
        Staged { e: MaybeUninit::uninit(), l1p: MaybeUninit::uninit(), red: MaybeUninit::uninit(), infinities }
    }
    /// In tests, NaN everywhere: a lane read before `fill` wrote it makes a NaN loss.
    #[cfg(test)]
    pub fn new(infinities: bool) -> Staged {
        let nan = MaybeUninit::new([f32::NAN; TILE + 4]);
        Staged { e: nan, l1p: nan, red: nan, infinities }
    }

    /// Stages the tile of elements `[i, min(i + TILE, n))` of `x` (length `n`); returns how many
    /// that is.
    ///
    /// # Safety
    /// `x` must hold `n` elements and `i < n`.
    #[inline(never)]
    unsafe fn fill(&mut self, x: *const f32, n: usize, i: usize) -> usize {
        let m = if n - i > TILE { TILE } else { n - i };
        let x = x.add(i);
        let e = self.e.as_mut_ptr() as *mut f32;
        // exp(-|x|) in two loops, through `red` and `l1p` as scratch (the reduced argument, and
        // the 2^n scale as bits): each half's dependency chain is short enough that the
        // out-of-order core overlaps several blocks; with the whole chain (~50 cycles) in one
        // loop, V8's x64 code waited on it, and the split is 9% faster overall (forward kernel).
        // Two blocks per iteration: V8 spends about ten instructions per loop iteration on the
        // interrupt check, constant reloads and the counter, which the unrolling halves.
        let (red, l1p) = (self.red.as_mut_ptr() as *mut f32, self.l1p.as_mut_ptr() as *mut f32);
        let scale = l1p as *mut i32;
        let reduce = |k: usize, v: F32x4| {
            let (r, s) = math::exp_neg_reduce(v.abs());
            r.store(red.add(k));
            s.store(scale.add(k));
        };
        let full = m & !7;
        let mut k = 0;
        while k < full {
            reduce(k, F32x4::load(x.add(k)));
            reduce(k + 4, F32x4::load(x.add(k + 4)));
            k += 8;
        }
        while k < m {
            reduce(k, F32x4::load_partial(x.add(k), m - k, 0.0));
            k += 4;
        }
        // Only the blocks reduced above: past them, `scale` holds log1p values, not scales.
        let finish = |k: usize| math::exp_neg_finish(F32x4::load(red.add(k)), I32x4::load(scale.add(k))).store(e.add(k));
        let mut k = 0;
        while k < full {
            finish(k);
            finish(k + 4);
            k += 8;
        }
        while k < m {
            finish(k);
            k += 4;
        }
        // The block after the last: zeros, finite for the padded lanes that may read it (see
        // above), and for the loop below, which runs up to a block past `m` when m is not a
        // multiple of 8.
        let pad = (m + 3) & !3;
        F32x4::ZERO.store(e.add(pad));
        F32x4::ZERO.store(l1p.add(pad));
        let mut k = 0;
        while k < m {
            math::log1p_unit(F32x4::load(e.add(k))).store(l1p.add(k));
            math::log1p_unit(F32x4::load(e.add(k + 4))).store(l1p.add(k + 4));
            k += 8;
        }
        if self.infinities {
            self.infinite_terms(x, m);
        }
        m
    }

    /// The terms of infinite logits among the `m` from `x`, which `exp_neg`'s clamp leaves at
    /// e = e^-86.5: PyTorch's are e = 0, so that `p·q = e/d²` is 0 and the focal gradient's
    /// `γ·pt^(γ-1)·p·q·(1-2t)·bce` is 0·∞ = NaN, as autograd makes it (`∞·tiny` would be ±∞);
    /// and at x = -∞, `log1p(e) = -∞`, so that the BCE `|x|·u + log1p(e)` is NaN for every t, as
    /// PyTorch's `(1-t)·x - logsigmoid(x)` is (-∞ + ∞, or 0·-∞ at t = 1). At x = +∞ the BCE
    /// stays `∞·(1-t)`: +∞, or NaN at t = 1, as PyTorch's. See docs/SPEC.md §10.
    #[cold]
    #[inline(never)]
    unsafe fn infinite_terms(&mut self, x: *const f32, m: usize) {
        let (e, l1p) = (self.e.as_mut_ptr() as *mut f32, self.l1p.as_mut_ptr() as *mut f32);
        for k in 0..m {
            let xk = *x.add(k);
            if xk.is_infinite() {
                *e.add(k) = 0.0;
                *l1p.add(k) = if xk < 0.0 { f32::NEG_INFINITY } else { 0.0 };
            }
        }
    }
}

/// The [`Staged`] tiles of `x` as a cursor: the x-only terms of any element, staging a tile when
/// needed. The current tile's address and end live here, in the loop's registers once inlined:
/// read from the `Staged` in memory, they were reloaded after every gradient store, which the
/// compiler could not rule out hit them.
#[derive(Clone, Copy)]
pub(crate) struct Tiles {
    x: *const f32,
    n: usize,
    staged: *mut Staged,
    /// Where element 0's `e` would be if the tile began at element 0: element i's is at `base + i`.
    base: *const f32,
    /// End of the current tile (exclusive).
    end: usize,
}

impl Tiles {
    /// Tiles of `x`, staged in `staged`; none staged yet.
    pub fn new(x: &[f32], staged: &mut Staged) -> Tiles {
        let staged: *mut Staged = staged;
        Tiles { x: x.as_ptr(), n: x.len(), staged, base: staged as *const f32, end: 0 }
    }

    /// The four logits from `i` (fewer when `len` < 4; padded with 0).
    ///
    /// # Safety
    /// `i + len ≤ n`.
    #[inline(always)]
    pub unsafe fn x(&self, i: usize, len: usize) -> F32x4 {
        F32x4::load_partial(self.x.add(i), len, 0.0)
    }

    /// Stages the tile of elements `[i, min(i + TILE, n))`.
    ///
    /// # Safety
    /// `i < n`.
    #[inline(always)]
    pub unsafe fn fill(&mut self, i: usize) {
        let m = (*self.staged).fill(self.x, self.n, i);
        self.base = (self.staged as *const f32).wrapping_sub(i);
        self.end = i + m;
    }

    /// The terms of the four elements from `i`, which the current tile must hold.
    ///
    /// The sigmoid's division by `d` is left to the loss loop, rather than staged: a staging loop
    /// with both divisions (the sigmoid's and log1p's) ran at the divider's pace, while there the
    /// division overlaps the loss arithmetic. 4.5% off the forward kernel, 5% off GHM-C's stats
    /// (measured).
    ///
    /// # Safety
    /// A tile holding element `i` was staged.
    #[inline(always)]
    pub unsafe fn get(&self, i: usize) -> XTerms {
        let p = self.base.wrapping_add(i);
        let e = F32x4::load(p);
        XTerms { e, d: F32x4::ONE + e, l1p: F32x4::load(p.add(TILE + 4)) }
    }

    /// The terms of the `len` ≤ 4 elements from `i`, staging a new tile starting at `i` when they
    /// are not all in the current one.
    ///
    /// # Safety
    /// `i + len ≤ n`.
    #[inline(always)]
    pub unsafe fn at(&mut self, i: usize, len: usize) -> XTerms {
        if i + len > self.end {
            self.fill(i);
        }
        self.get(i)
    }
}

/// The sigmoid pieces for logits `x` against targets `t`, arranged around the sign of x.
///
/// With `e = exp(-|x|)` and `d = 1 + e`, one of `p = σ(x)` and `q = 1-p` is `1/d` and the other
/// `e/d`, depending on the sign of x. Rather than select p and q (and then again the
/// BCE's side), the targets are swapped once: `u` is the target weight on x's "own" side and
/// `v` the other, and everything the losses need follows without further selects:
/// - `pt = q·t + p·(1-t) = (u + e·v)/d`,
/// - `bce = max(x,0)·(1-t) + max(-x,0)·t + log1p(e) = |x|·u + log1p(e)`,
/// - `p - t = p·(1-t) - q·t = ±(u - e·v)/d`, the sign of x,
/// - `p·q = e/d²` (as `e·r²`, `r = 1/d`).
///
/// Each is a sum of non-negative terms or a difference that vanishes only where the result does,
/// so none cancels catastrophically (SPEC's `softplus(x) - x·t` would, for large |x|).
/// The side is x's sign bit, so -0 takes the negative side; at x = ±0 both sides agree.
#[derive(Clone, Copy)]
pub(crate) struct Sided {
    /// `exp(-|x|)`: finite even for NaN x (NaN reaches the results through `abs`).
    pub e: F32x4,
    /// `1 + e`, the sigmoid's denominator
    pub d: F32x4,
    /// `log1p(e)`
    pub l1p: F32x4,
    /// `|x|`
    pub abs: F32x4,
    /// `1-t` where x ≥ 0, `t` where x < 0
    pub u: F32x4,
    /// `t` where x ≥ 0, `1-t` where x < 0
    pub v: F32x4,
    /// x's sign bit alone, to give `p - t` its sign.
    sign: I32x4,
}

impl Sided {
    /// From the x-only terms computed ahead (see [`XTerms`]).
    #[inline(always)]
    pub fn with(x: F32x4, t: F32x4, omt: F32x4, xt: XTerms) -> Sided {
        let XTerms { e, d, l1p } = xt;
        let abs = x.abs();
        let bits = x.to_bits();
        // Swap t and 1-t where x is negative, by xor: three bit operations, where two selects
        // would cost six instructions in V8 on x64.
        let swap = t.to_bits().xor(omt.to_bits()).and(bits.shr(31));
        let u = F32x4::from_bits(omt.to_bits().xor(swap));
        let v = F32x4::from_bits(t.to_bits().xor(swap));
        Sided { e, d, l1p, abs, u, v, sign: bits.and(I32x4::splat(i32::MIN)) }
    }
    /// `pt = q·t + p·(1-t)`, the probability of the wrong answer.
    #[inline(always)]
    pub fn pt(&self) -> F32x4 {
        (self.u + self.e * self.v) / self.d
    }
    /// Binary cross-entropy with logits.
    #[inline(always)]
    pub fn bce(&self) -> F32x4 {
        self.abs * self.u + self.l1p
    }
    /// `p - t`, the BCE's derivative.
    #[inline(always)]
    pub fn p_minus_t(&self) -> F32x4 {
        let m = (self.u - self.e * self.v) / self.d;
        F32x4::from_bits(m.to_bits().xor(self.sign))
    }
    /// `p = σ(x)` itself, one quotient: `1/d` where x ≥ 0, `e/d` where x < 0.
    #[inline(always)]
    pub fn p(&self) -> F32x4 {
        let one = F32x4::ONE.to_bits();
        F32x4::from_bits(one.xor(self.sign.shr(31).and(one.xor(self.e.to_bits())))) / self.d
    }
    /// `p·(1-p)`, the sigmoid's derivative.
    #[inline(always)]
    pub fn pq(&self) -> F32x4 {
        let r = F32x4::ONE / self.d;
        self.e * (r * r)
    }
    /// [`Self::p_minus_t`] and [`Self::pq`] from one division (`r = 1/d`; p − t as `(u − e·v)·r`,
    /// one more rounding than the quotient): for gradients that need both, where the divisions
    /// were the costliest instructions.
    #[inline(always)]
    pub fn p_minus_t_pq(&self) -> (F32x4, F32x4) {
        let r = F32x4::ONE / self.d;
        let m = (self.u - self.e * self.v) * r;
        (F32x4::from_bits(m.to_bits().xor(self.sign)), self.e * (r * r))
    }
}

/// The sigmoid pieces for targets that are exactly 0 or 1 (binary bytes, class indices): what
/// [`Sided`] gives, bit for bit (but for the sign of a zero `p - t`, at infinite x), in fewer
/// instructions. With `z = -x` where t = 1 and `z = x` where t = 0, the wrong answer's
/// probability is `pt = σ(z)` (1/d where z ≥ 0, e/d where z < 0) and the BCE is
/// `softplus(z) = |x|·[z ≥ 0] + log1p(e)`; `p - t` is ±pt with the sign of t.
#[derive(Clone, Copy)]
pub(crate) struct Binary {
    /// `pt`, which is also GHM-C's `g = |p - t|`.
    pub pt: F32x4,
    pub bce: F32x4,
    /// The sign bit where t = 1.
    pub tsign: I32x4,
}

impl Binary {
    /// `tsign`: the targets' [`TargetLanes::one_bits`].
    #[inline(always)]
    pub fn with(x: F32x4, tsign: I32x4, xt: XTerms) -> Binary {
        let XTerms { e, d, l1p } = xt;
        let zneg = x.to_bits().xor(tsign).shr(31);
        let one = F32x4::ONE.to_bits();
        let pt = F32x4::from_bits(one.xor(zneg.and(one.xor(e.to_bits())))) / d;
        // `|x|·(0 or 1)` rather than a mask on |x|, so that NaN x stays NaN (NaN·0 is NaN).
        let bce = x.abs() * F32x4::from_bits(F32x4::ONE.to_bits().and_not(zneg)) + l1p;
        Binary { pt, bce, tsign }
    }
}

/// `v` with x's NaN lanes made NaN: NaN x gives NaN g and p - t (as PyTorch would), which the
/// sigmoid pieces alone do not (the BCE does, through |x|). ORing NaN's bits into any float
/// gives a NaN (all exponent bits, a mantissa bit): two instructions after the compare, where a
/// select takes three.
#[inline(always)]
pub(crate) fn nan_where_nan(x: F32x4, v: F32x4) -> F32x4 {
    F32x4::from_bits(v.to_bits().or(x.keep(x.ne(x)).to_bits()))
}
