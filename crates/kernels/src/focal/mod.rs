//! Focal losses (docs/SPEC.md §1–2): sigmoid (binary, soft or class-index targets) and softmax,
//! and their Poly-1 form (§6, see [`Poly1`]).

pub mod prob;
pub mod sigmoid;
pub mod softmax;

use crate::math;
use crate::simd::F32x4;

/// The focal modulating factor `m^γ` and its derivative factor `γ·m^(γ-1)`, specialised for the
/// common γ so that they cost a multiply or nothing, while giving the same numbers as the
/// general path (which needs an `exp` and a `ln`).
pub trait Focusing: Copy {
    /// False for γ = 0, whose factor is constant: the gradient then has no `γ·m^(γ-1)` term at
    /// all, rather than one of 0·…, which is NaN where the BCE is infinite (PyTorch's `pow`
    /// backward returns zeros for exponent 0, so its γ = 0 gradient stays finite there).
    const FOCUSES: bool = true;
    /// Whether the loss has §6's Poly-1 term `ε·m^(γ+1)` (see [`Poly1`]). Every use of the term in
    /// a kernel is behind this constant, so the plain losses compile as if it did not exist.
    const POLY: bool = false;
    /// Whether `factors`' second value may be nonzero where m = 0: γ = 1's slope, 1 everywhere
    /// (callers that need 0 there mask it; the others may skip the mask).
    const UNIT_SLOPE_AT_0: bool = true;
    /// `(m^γ, γ·m^(γ-1))` for `m` in [0, 1]; the second is 0 where m = 0 and γ ≠ 1
    /// (SPEC §1: the term vanishes where pt = 0 and γ < 1; for γ > 1 it is 0 anyway).
    fn factors(self, m: F32x4) -> (F32x4, F32x4);
    /// The Poly-1 term's ε (read only where [`Focusing::POLY`]).
    #[inline(always)]
    fn eps(self) -> f32 {
        0.0
    }
    /// ε·(γ+1), the factor of `m^γ` in the term's derivative by m (read only where `POLY`).
    #[inline(always)]
    fn eps_g1(self) -> f32 {
        0.0
    }
}

#[derive(Clone, Copy)]
pub struct Gamma0;
#[derive(Clone, Copy)]
pub struct Gamma1;
#[derive(Clone, Copy)]
pub struct Gamma2;
#[derive(Clone, Copy)]
pub struct GammaAny(pub f32);

impl Focusing for Gamma0 {
    const FOCUSES: bool = false;
    const UNIT_SLOPE_AT_0: bool = false;
    #[inline(always)]
    fn factors(self, _m: F32x4) -> (F32x4, F32x4) {
        (F32x4::ONE, F32x4::ZERO)
    }
}
impl Focusing for Gamma1 {
    #[inline(always)]
    fn factors(self, m: F32x4) -> (F32x4, F32x4) {
        (m, F32x4::ONE)
    }
}
impl Focusing for Gamma2 {
    const UNIT_SLOPE_AT_0: bool = false;
    #[inline(always)]
    fn factors(self, m: F32x4) -> (F32x4, F32x4) {
        (m * m, m + m)
    }
}
impl Focusing for GammaAny {
    const UNIT_SLOPE_AT_0: bool = false;
    #[inline(always)]
    fn factors(self, m: F32x4) -> (F32x4, F32x4) {
        // m^γ = exp(-(-γ·ln m)) with -γ·ln m ≥ 0 (m ≤ 1), so the cheap exp applies; its floor of
        // 2.7e-38 for tiny m^γ is an absolute error no loss can see. The derivative
        // factor γ·m^γ/m costs one division, and only when a gradient is asked for (the kernels
        // drop the unused value).
        let g = F32x4::splat(self.0);
        let pos = m.gt(F32x4::ZERO);
        let pw = math::exp_neg(F32x4::splat(-self.0) * math::ln(m)).keep(pos);
        (pw, (g * pw / m).keep(pos))
    }
}

/// The focusing `G` with docs/SPEC.md §6's Poly-1 term `ε·m^(γ+1)` added to the loss (the extras
/// module's `*_poly` kernels), where `m^γ` is `G`'s factor: the term costs a few multiplies.
///
/// A wrapper of the focusing rather than a type parameter of its own, so that the plain kernels'
/// instances keep their type arguments, and so their symbol names: rustc orders a generic
/// function's instances by symbol name, and with a separate parameter the scalar core module came
/// out with the same functions in another order (same code, not the same bytes). Wrapped, the
/// core module stays byte for byte what it was.
///
/// ε = 0 gives the plain loss bit for bit: the kernels subtract the term's negation, masked to +0
/// where ε = 0 (`v - (+0)` is `v` for every `v`, -0 and infinities included, where adding a `w·0`
/// could turn a -0 into +0, or make `∞·0 = NaN` for an infinite weight).
#[derive(Clone, Copy)]
pub struct Poly1<G> {
    g: G,
    eps: f32,
    eps_g1: f32,
}

impl<G: Focusing> Poly1<G> {
    /// `g` (the specialised focusing for γ) with the term `ε·m^(γ+1)`; ε·(γ+1) is formed in f64
    /// and rounded once.
    #[inline(always)]
    pub fn new(g: G, gamma: f32, eps: f32) -> Poly1<G> {
        Poly1 { g, eps, eps_g1: (eps as f64 * (gamma as f64 + 1.0)) as f32 }
    }
}

impl<G: Focusing> Focusing for Poly1<G> {
    const FOCUSES: bool = G::FOCUSES;
    const POLY: bool = true;
    const UNIT_SLOPE_AT_0: bool = G::UNIT_SLOPE_AT_0;
    #[inline(always)]
    fn factors(self, m: F32x4) -> (F32x4, F32x4) {
        self.g.factors(m)
    }
    #[inline(always)]
    fn eps(self) -> f32 {
        self.eps
    }
    #[inline(always)]
    fn eps_g1(self) -> f32 {
        self.eps_g1
    }
}

/// Runs `$body` with `$g` bound to the specialised [`Focusing`] for `$gamma`.
macro_rules! with_focusing {
    ($gamma:expr, $g:ident => $body:expr) => {{
        let gamma: f32 = $gamma;
        if gamma == 0.0 {
            let $g = $crate::focal::Gamma0;
            $body
        } else if gamma == 1.0 {
            let $g = $crate::focal::Gamma1;
            $body
        } else if gamma == 2.0 {
            let $g = $crate::focal::Gamma2;
            $body
        } else {
            let $g = $crate::focal::GammaAny(gamma);
            $body
        }
    }};
}
pub(crate) use with_focusing;
