//! Vectorized `exp`, `ln` and `log1p` for f32 lanes, after Cephes' `expf`/`logf` (S. Moshier).
//!
//! Error bounds, measured by the host tests in this file against f64 references (run
//! `cargo test -p focal-ghm-kernels math -- --nocapture` to print the sweep):
//! - `exp(x)`: ≤ 3 ulp relative for results in the normal range (x in [-87.3, 88.7]); results in
//!   the subnormal range (x down to -103.9) are off by at most one subnormal step (1.4e-45)
//!   beyond that; exp(x) = 0 for x ≤ -104, +inf for x ≥ 88.73, NaN for NaN.
//! - `ln(x)`: ≤ 2 ulp relative for every positive x, subnormals included; ln(0) = -inf,
//!   ln(x<0) = NaN, ln(inf) = inf.
//! - `log1p(y)`: ≤ 3 ulp relative for y in [-1, ∞) (including tiny y, where it returns y
//!   to within an ulp); log1p(-1) = -inf.
//! - `exp_neg(a)` (≤ 3 ulp), `log1p_unit(y)` (≤ 5 ulp): the sigmoid's fast paths (e^-a for a ≥ 0, y in [0, 1]);
//!   see their docs for the domain limits.
//!
//! Only adds, multiplies, one division in `log1p`, and bit manipulation: no tables, no gathers,
//! so the same code runs as 4-lane SIMD and, through the portable backend, as scalar code.

use crate::simd::{F32x4, I32x4, M32x4};

/// 1.5 · 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to the nearest
/// integer (ties to even), with no float-to-int conversion.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `x` rounded to the nearest integer, for |x| < 2^22.
#[inline(always)]
pub fn round_small(x: F32x4) -> F32x4 {
    let m = F32x4::splat(ROUND_MAGIC);
    (x + m) - m
}

/// 2^n for integer lanes n in [-126, 127], built directly in the exponent field.
#[inline(always)]
fn pow2i(n: I32x4) -> F32x4 {
    F32x4::from_bits((n + I32x4::splat(127)).shl(23))
}

/// e^r for |r| ≤ ln2/2 as `1 + r + r²·P(r)`, P a cubic fitted (Lawson's minimax iteration,
/// relative error of e^r weighted) to `(e^r - 1 - r)/r²`: approximation error 1.1e-7 relative
/// with the coefficients rounded to f32, under one ulp, for ≤ 3 ulp after rounding (2.6 measured).
/// Cephes' classic expansion takes two more terms to get to 2 ulp: not worth their cost here,
/// where every loss has a 1e-5 budget (SPEC §5). Estrin's scheme rather than
/// Horner's halves the dependency chain: the losses are latency-bound.
#[inline(always)]
fn exp_poly(r: F32x4) -> F32x4 {
    let c = |v: f32| F32x4::splat(v);
    let r2 = r * r;
    let p = (c(0.499_992_3) + c(0.166_671_14) * r) + r2 * (c(0.041_890_115) + c(0.008_312_525) * r);
    r2 * p + (r + F32x4::ONE)
}

/// e^x, lane-wise. See the module docs for the error bound.
#[inline(always)]
pub fn exp(x: F32x4) -> F32x4 {
    // Past these bounds the result is 0 or inf anyway; clamping keeps 2^n representable.
    // min/max propagate NaN, so NaN stays NaN through the polynomial.
    let x = x.min(F32x4::splat(89.0)).max(F32x4::splat(-105.0));
    let fx = round_small(x * F32x4::splat(core::f32::consts::LOG2_E));
    // Cody–Waite: ln 2 split so that fx·C1 is exact.
    let r = x - fx * F32x4::splat(0.693_359_375) - fx * F32x4::splat(-2.121_944_4e-4);
    let y = exp_poly(r);
    // 2^n in two factors so that n down to -151 (subnormal results) and up to 128 (overflow to
    // inf) need no special case: each half stays a normal power of two.
    let n = fx.trunc_i32();
    let n1 = n.shr(1);
    let n2 = n - n1;
    y * pow2i(n1) * pow2i(n2)
}

/// e^(-a) for a ≥ 0 (the sigmoid's `exp(-|x|)`), cheaper than [`exp`]: one 2^n factor, since
/// results below f32's normal range are not needed there. Error ≤ 3 ulp for a in [0, 86.5]; for
/// a > 86.5 (and a = +inf) the result is e^-86.5 ≈ 2.7e-38 instead of a subnormal or 0, an
/// absolute error below 2.8e-38, which no loss or gradient can see. (86.5 rather than f32's
/// limit, 87.3, keeps every result normal, so the scale is applied as an exponent add.)
///
/// A positive NaN gives that same tiny value, not NaN: the clamp is a signed integer minimum on
/// the bit patterns (non-negative floats order like their bits, +NaN above +inf, and -0 is the
/// smallest), one instruction on x64, where every float min/max form costs several in V8.
/// Callers that must see NaN carry it some other way (the losses through their BCE term, GHM
/// through an explicit check).
#[inline(always)]
pub fn exp_neg(a: F32x4) -> F32x4 {
    let (r, scale) = exp_neg_reduce(a);
    exp_neg_finish(r, scale)
}

/// [`exp_neg`] in two halves, for callers that run them in separate loops (a long dependency
/// chain per block limits how many blocks the out-of-order core overlaps): the range reduction,
/// giving the reduced argument and the scale 2^n as `n << 23`, the exponent to add…
#[inline(always)]
pub fn exp_neg_reduce(a: F32x4) -> (F32x4, I32x4) {
    let a = F32x4::from_bits(a.to_bits().min(F32x4::splat(86.5).to_bits()));
    // Round to an integer by the magic add, and read the integer straight from the sum's low
    // mantissa bits: no float-to-int conversion (a long sequence on x64 for saturating wasm).
    let m = F32x4::splat(ROUND_MAGIC);
    let t = a * F32x4::splat(-core::f32::consts::LOG2_E) + m;
    let fx = t - m;
    // Cody–Waite as in `exp`, with x = -a: x - fx·C1 computed as fx·(-C1) - a, the same value.
    let r = fx * F32x4::splat(-0.693_359_375) - a - fx * F32x4::splat(-2.121_944_4e-4);
    (r, (t.to_bits() - m.to_bits()).shl(23))
}

/// …and the polynomial times the scale, as an integer add to its exponent field: exact, since
/// the polynomial is in [0.7, 1.5] and n ≥ -125 keeps the product normal, and an integer op
/// rather than a float multiply (the float multipliers are the staging loops' busiest units;
/// 1.2% off the forward, 2% off GHM-C's stats).
#[inline(always)]
pub fn exp_neg_finish(r: F32x4, scale: I32x4) -> F32x4 {
    F32x4::from_bits(exp_poly(r).to_bits() + scale)
}

/// e^(-a) for a ≥ 0 as the terms of a softmax's sum need it, where a term's error counts in
/// proportion to the term: cheaper than [`exp_neg`] by reducing 2^(-a·log2 e) straight from the
/// rounded product, no Cody–Waite split (three instructions of its 21 per vector). That rounding
/// (and f32's log2 e) costs up to a·7.5e-8 relative on top of the polynomial's 2e-7: 9.5e-7 at
/// a = 10 (a term of 4.5e-5), 1.7e-6 at a = 20, 6.7e-6 at the clamp (a = 86.6). A sum of such
/// terms, and a sum less its exact 1s (`s − 1` of a confident row), is as accurate as its
/// largest terms: about 2.6e-6 relative for rows whose other terms sit 20–40 below the max; a
/// term over the sum (a softmax probability) keeps 5e-8 absolute. For a·log2 e > 125 (and +inf,
/// and +NaN, by the clamp of [`exp_neg`]) the result is 2^-125·2^f, under 3.4e-38; a −NaN
/// passes the clamp and gives no reliable NaN.
#[inline(always)]
pub fn exp_neg_term(a: F32x4) -> F32x4 {
    let u = a * F32x4::splat(core::f32::consts::LOG2_E);
    let u = F32x4::from_bits(u.to_bits().min(F32x4::splat(125.0).to_bits()));
    // n = round(u) by the magic add (see `exp_neg_reduce`), f = n − u in [-1/2, 1/2] exactly.
    let m = F32x4::splat(ROUND_MAGIC);
    let t = u + m;
    let f = (t - m) - u;
    // 2^f = 1 + c₁f + f²·P(f), P a cubic fitted like `exp_poly`'s (relative error 9.2e-8; 2e-7
    // evaluated in f32).
    let c = |v: f32| F32x4::splat(v);
    let f2 = f * f;
    let p = (c(0.240_222_42) + c(0.055_507_336) * f) + f2 * (c(0.009_671_511) + c(0.001_326_471_3) * f);
    let y = f2 * p + (c(0.693_147) * f + F32x4::ONE);
    // × 2^-n, as an add to the exponent field (y in [0.7, 1.5], n ≤ 125: the result stays normal).
    F32x4::from_bits(y.to_bits() + (m.to_bits() - t.to_bits()).shl(23))
}

/// ln(1 + y) for y in [0, 1] (the sigmoid's `log1p(exp(-|x|))`), cheaper than [`log1p`]: with
/// s = y / (2 + y) in [0, 1/3], ln(1 + y) = 2·atanh(s) = 2s·(1 + z·Q(z)), z = s² in [0, 1/9],
/// where Q, a quadratic fitted like [`exp_poly`]'s, replaces the series 1/3 + z/5 + z²/7 + … to
/// 1.9e-7 relative. A cubic would reach 5e-9 (2 ulp in all), but this spends a little of SPEC's
/// 1e-5 budget to save three instructions per vector, 2.7% of the forward kernel (measured).
/// Error ≤ 5 ulp over [0, 1], full relative accuracy for tiny y (no `1 + y` is ever rounded).
/// NaN stays NaN.
#[inline(always)]
pub fn log1p_unit(y: F32x4) -> F32x4 {
    let s = y / (F32x4::splat(2.0) + y);
    let z = s * s;
    let c = |v: f32| F32x4::splat(v);
    let q = c(0.333_367_4) + z * (c(0.198_179_83) + c(0.169_917_93) * z);
    let s2 = s + s;
    s2 + s2 * z * q
}

/// ln(1 + y) for y ≥ 0 (a softmax row's sum less its max's exact 1), cheaper than [`log1p`]:
/// no subnormal or negative cases, musl's integer-only reduction u = 1 + y = 2^k·(1 + f) with
/// 1 + f in [√½, √2), ln(1 + f) = 2·atanh(s), s = f/(2 + f), by a fitted quadratic (8e-10
/// relative), and u's rounding corrected to first order by (y − (u − 1))/u: full relative
/// accuracy for tiny y. Error ≤ 3 ulp over [0, 2^24] (2.4 measured); NaN stays NaN, +inf gives NaN.
#[inline(always)]
pub fn log1p_nonneg(y: F32x4) -> F32x4 {
    let u = y + F32x4::ONE;
    let ix = u.to_bits() + I32x4::splat(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix.shr(23) - I32x4::splat(127)).to_f32();
    let f = F32x4::from_bits(ix.and(I32x4::splat(0x007f_ffff)) + I32x4::splat(0x3f35_04f3)) - F32x4::ONE;
    let c = (y - (u - F32x4::ONE)) / u;
    let s = f / (F32x4::splat(2.0) + f);
    let z = s * s;
    let q = F32x4::splat(0.333_333_88) + z * (F32x4::splat(0.199_887_89) + z * F32x4::splat(0.149_354_16));
    let s2 = s + s;
    let r = s2 + s2 * z * q;
    // k·ln 2 in two parts (Cody–Waite, as `ln`): k·0.693359375 is exact.
    k * F32x4::splat(0.693_359_375) + (r + (c + k * F32x4::splat(-2.121_944_4e-4)))
}

/// Natural logarithm, lane-wise. See the module docs for the error bound.
#[inline(always)]
pub fn ln(x: F32x4) -> F32x4 {
    // Subnormals: scale into the normal range first and correct the exponent below.
    let tiny = x.lt(F32x4::splat(f32::MIN_POSITIVE));
    let xs = M32x4::select(tiny, x * F32x4::splat(8_388_608.0), x); // 2^23
    let bias = M32x4::select(tiny, F32x4::splat(23.0), F32x4::ZERO);

    let bits = xs.to_bits();
    let e = (bits.shr(23).and(I32x4::splat(0xff)) - I32x4::splat(126)).to_f32() - bias;
    // Mantissa in [0.5, 1).
    let m = F32x4::from_bits(bits.and(I32x4::splat(0x007f_ffff)).or(I32x4::splat(0x3f00_0000)));
    // Re-centre on 1: m in [sqrt(1/2), sqrt(2)) keeps the polynomial's argument small.
    let small = m.lt(F32x4::splat(core::f32::consts::FRAC_1_SQRT_2));
    let e = M32x4::select(small, e - F32x4::ONE, e);
    let m = M32x4::select(small, m + m, m) - F32x4::ONE;

    let z = m * m;
    // Cephes' degree-8 polynomial by Estrin's scheme (see `exp_poly`).
    let c = |v: f32| F32x4::splat(v);
    let z4 = z * z;
    let q0 = (c(3.333_333e-1) + c(-2.499_999_4e-1) * m) + z * (c(2.000_071_5e-1) + c(-1.666_805_8e-1) * m);
    let q1 = (c(1.424_932_3e-1) + c(-1.242_014_1e-1) * m) + z * (c(1.167_699_9e-1) + c(-1.151_461_1e-1) * m);
    let p = q0 + z4 * (q1 + z4 * c(7.037_683_6e-2));
    let mut y = p * m * z;
    y = y + e * F32x4::splat(-2.121_944_4e-4);
    y = y - F32x4::splat(0.5) * z;
    let r = m + y + e * F32x4::splat(0.693_359_375);

    // Edge cases: ln(0) = -inf, ln(<0) = NaN, ln(inf) = inf; NaN is already NaN.
    let r = M32x4::select(x.eq(F32x4::ZERO), F32x4::splat(f32::NEG_INFINITY), r);
    let r = M32x4::select(x.lt(F32x4::ZERO), F32x4::splat(f32::NAN), r);
    M32x4::select(x.eq(F32x4::splat(f32::INFINITY)), x, r)
}

/// ln(1 + y), lane-wise, accurate for tiny y. See the module docs for the error bound.
#[inline(always)]
pub fn log1p(y: F32x4) -> F32x4 {
    // Kahan's trick: u = 1 + y is rounded, but ln(u) · y / (u - 1) cancels that rounding to first
    // order, since u - 1 is exact for u in [0.5, 2] and the ratio is smooth elsewhere.
    let u = y + F32x4::ONE;
    let d = u - F32x4::ONE;
    let r = ln(u) * (y / d);
    // u == 1: y is below half an ulp of 1 and ln(1 + y) = y to within an ulp.
    // u == inf: y = inf or the sum overflowed; ln(u) is then right and y/d is inf/inf.
    let r = M32x4::select(u.eq(F32x4::ONE), y, r);
    M32x4::select(u.eq(F32x4::splat(f32::INFINITY)), ln(y), r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulp_err(got: f32, want: f64) -> f64 {
        if want == 0.0 || !want.is_finite() {
            return if (got as f64) == want { 0.0 } else { f64::INFINITY };
        }
        let w = want as f32;
        // One ulp at the f32 nearest the true value.
        let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
        ((got as f64) - want).abs() / ulp
    }

    fn sweep(lo: f32, hi: f32, steps: u32, mut f: impl FnMut(f32)) {
        // Uniform in the bit pattern, so every binade in the range is sampled equally.
        let (a, b) = (lo.to_bits() as i64, hi.to_bits() as i64);
        let (lo_b, hi_b) = if lo < 0.0 && hi <= 0.0 { (b, a) } else { (a, b) };
        let n = (hi_b - lo_b).max(1);
        let step = (n / steps as i64).max(1);
        let mut k = lo_b;
        while k <= hi_b {
            f(f32::from_bits(k as u32));
            k += step;
        }
    }

    fn lane0(f: fn(F32x4) -> F32x4, x: f32) -> f32 {
        f(F32x4::splat(x)).to_array()[0]
    }

    #[test]
    fn exp_within_3_ulp_over_normal_results() {
        let mut worst = 0.0f64;
        for (lo, hi) in [(0.0f32, 88.72f32), (-87.33f32, -0.0f32)] {
            sweep(lo, hi, 2_000_000, |x| {
                let e = ulp_err(lane0(exp, x), (x as f64).exp());
                if e > worst {
                    worst = e;
                }
            });
        }
        println!("exp worst error over normal results: {worst:.3} ulp");
        assert!(worst <= 3.0, "exp error {worst} ulp");
    }

    #[test]
    fn exp_subnormal_and_edges() {
        let mut x = -87.4f32;
        while x > -110.0 {
            let got = lane0(exp, x) as f64;
            let want = (x as f64).exp();
            assert!((got - want).abs() <= 1.5 * 1.401_298_5e-45, "exp({x}) = {got}, want {want}");
            x -= 0.01;
        }
        assert_eq!(lane0(exp, 89.0), f32::INFINITY);
        assert_eq!(lane0(exp, f32::INFINITY), f32::INFINITY);
        assert_eq!(lane0(exp, f32::NEG_INFINITY), 0.0);
        assert_eq!(lane0(exp, 0.0), 1.0);
        assert!(lane0(exp, f32::NAN).is_nan());
    }

    #[test]
    fn ln_within_2_ulp() {
        let mut worst = 0.0f64;
        sweep(1.0e-45, 3.0e38, 4_000_000, |x| {
            let e = ulp_err(lane0(ln, x), (x as f64).ln());
            if e > worst {
                worst = e;
            }
        });
        println!("ln worst error: {worst:.3} ulp");
        assert!(worst <= 2.0, "ln error {worst}");
        assert_eq!(lane0(ln, 0.0), f32::NEG_INFINITY);
        assert!(lane0(ln, -1.0).is_nan());
        assert_eq!(lane0(ln, f32::INFINITY), f32::INFINITY);
        assert_eq!(lane0(ln, 1.0), 0.0);
    }

    #[test]
    fn log1p_within_3_ulp() {
        let mut worst = 0.0f64;
        let mut check = |y: f32| {
            let want = libm_log1p(y as f64);
            let e = ulp_err(lane0(log1p, y), want);
            if e > worst {
                worst = e;
            }
        };
        sweep(1.0e-45, 3.0e38, 4_000_000, &mut check);
        sweep(-0.999_999_94, -1.0e-45, 2_000_000, &mut check);
        println!("log1p worst error: {worst:.3} ulp");
        assert!(worst <= 3.0, "log1p error {worst} ulp");
        assert_eq!(lane0(log1p, -1.0), f32::NEG_INFINITY);
        assert_eq!(lane0(log1p, 0.0), 0.0);
        assert_eq!(lane0(log1p, f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn exp_neg_within_3_ulp() {
        let mut worst = 0.0f64;
        sweep(0.0, 86.5, 2_000_000, |a| {
            let e = ulp_err(lane0(exp_neg, a), (-a as f64).exp());
            if e > worst {
                worst = e;
            }
        });
        println!("exp_neg worst error: {worst:.3} ulp");
        assert!(worst <= 3.0, "exp_neg error {worst} ulp");
        assert_eq!(lane0(exp_neg, 0.0), 1.0);
        assert_eq!(lane0(exp_neg, -0.0), 1.0);
        for big in [1e4, f32::INFINITY, f32::NAN] {
            let e = lane0(exp_neg, big);
            assert!(e > 0.0 && e <= 2.72e-38, "exp_neg({big}) = {e}");
        }
    }

    #[test]
    fn exp_neg_term_within_its_bound() {
        let mut worst = 0.0f64;
        sweep(0.0, 86.0, 2_000_000, |a| {
            let rel = ((lane0(exp_neg_term, a) as f64) / (-a as f64).exp() - 1.0).abs();
            let bound = 2.1e-7 + a as f64 * 7.5e-8;
            if rel / bound > worst {
                worst = rel / bound;
            }
        });
        println!("exp_neg_term worst error: {worst:.3} of its bound");
        assert!(worst <= 1.0, "exp_neg_term error {worst} of its bound");
        assert_eq!(lane0(exp_neg_term, 0.0), 1.0);
        assert_eq!(lane0(exp_neg_term, -0.0), 1.0);
        for big in [87.0, 1e4, f32::INFINITY, f32::NAN] {
            let e = lane0(exp_neg_term, big);
            assert!(e >= f32::MIN_POSITIVE && e <= 3.4e-38, "exp_neg_term({big}) = {e}");
        }
    }

    #[test]
    fn log1p_nonneg_within_3_ulp() {
        let mut worst = 0.0f64;
        sweep(1.0e-45, 16_777_216.0, 4_000_000, |y| {
            let e = ulp_err(lane0(log1p_nonneg, y), (y as f64).ln_1p());
            if e > worst {
                worst = e;
            }
        });
        println!("log1p_nonneg worst error: {worst:.3} ulp");
        assert!(worst <= 3.0, "log1p_nonneg error {worst} ulp");
        assert_eq!(lane0(log1p_nonneg, 0.0), 0.0);
        assert!(lane0(log1p_nonneg, f32::NAN).is_nan());
    }

    #[test]
    fn log1p_unit_within_5_ulp() {
        let mut worst = 0.0f64;
        sweep(1.0e-45, 1.0, 4_000_000, |y| {
            let e = ulp_err(lane0(log1p_unit, y), (y as f64).ln_1p());
            if e > worst {
                worst = e;
            }
        });
        println!("log1p_unit worst error: {worst:.3} ulp");
        assert!(worst <= 5.0, "log1p_unit error {worst} ulp");
        assert_eq!(lane0(log1p_unit, 0.0), 0.0);
        assert!(lane0(log1p_unit, f32::NAN).is_nan());
    }

    /// f64 log1p with ~1e-16 relative accuracy (std's ln_1p).
    fn libm_log1p(y: f64) -> f64 {
        y.ln_1p()
    }
}
