//! Quality Focal Loss, docs/SPEC.md §7 (Li et al. 2020, "Generalized Focal Loss"; mmdetection
//! `quality_focal_loss`), with its gradient, in one pass.
//!
//! Rows of an `[N, C]` logit matrix; row i's target is the soft one-hot `y_ij = scores_i` where
//! `j = labels_i` and 0 elsewhere (all 0 on background rows). Per element
//! `bce(x, y)·|y − σ|^β`, from the sigmoid x-terms staged per tile ([`Tiles`]) and [`Sided`]'s
//! cancellation-free pieces; the modulating factor is differentiated (not detached).
//!
//! Numerics: `|σ − y|^β` for β < 2 is ill-conditioned where σ ≈ y (its derivative, unbounded for
//! β < 1, has the sign of `σ − y`), and f32's σ alone (a few ulp) gives the gradient there
//! errors far beyond SPEC §5. Blocks with a lane where `σ − y` cancels to below [`NEAR`] of its
//! terms recompute `σ − y` in f64 ([`exact_p_minus_t`]): a cold path, in the β = 1 and general-β
//! variants only (β = 0 and 2 need none).

use crate::focal::sigmoid::Summary;
use crate::focal::{with_focusing, Focusing, Gamma0, Gamma1, Gamma2, GammaAny};
use crate::simd::{F32x4, I32x4, SumF64};
use crate::source::{first_lanes, RangeTracker};
use crate::xterms::{nan_where_nan, Sided, Staged, Tiles, XTerms, TILE};

/// Which [`Focusing`] paths need `σ − y` beyond f32 where it cancels: the gradient's β-term
/// `β·m^(β−1)·sign(σ − y)` has the sign of `σ − y`, and for β < 2 its size near m = 0 is beyond
/// SPEC §5 from f32's m (at β = 1.5 and m of a few ulp, ~1e-4 off), unbounded for β < 1.
trait Cancels: Focusing {
    #[inline(always)]
    fn cancels(self) -> bool {
        false
    }
}
impl Cancels for Gamma0 {}
impl Cancels for Gamma2 {}
impl Cancels for Gamma1 {
    #[inline(always)]
    fn cancels(self) -> bool {
        true
    }
}
impl Cancels for GammaAny {
    #[inline(always)]
    fn cancels(self) -> bool {
        self.0 < 2.0
    }
}

/// `σ − y = (u − e·v)/d` ([`Sided`]) is recomputed in f64 where `|u − e·v| < NEAR·(u + e·v)`:
/// outside, its f32 relative error is below ~2e-6 (e to 3 ulp, two roundings, over NEAR).
const NEAR: f32 = 0.125;

/// `σ(x) − t` per lane, computed in f64 and rounded once: the correctly rounded f32 difference
/// (to within 1e-15 relative before rounding) however close σ(x) is to t. NaN x gives NaN.
#[cold]
#[inline(never)]
fn exact_p_minus_t(x: F32x4, t: F32x4) -> F32x4 {
    let (x, t) = (x.to_array(), t.to_array());
    let mut d = [0.0f32; 4];
    for k in 0..4 {
        let xk = x[k] as f64;
        // |x| (core has no f64 `abs` on Rust 1.63); NaN stays NaN.
        let e = exp_neg_f64(if xk < 0.0 { -xk } else { xk });
        // As `Sided`: 1/(1+e) for x ≥ 0, e/(1+e) for x < 0 (and NaN), no cancellation.
        let p = if xk >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
        d[k] = (p - t[k] as f64) as f32;
    }
    F32x4::from_array(d)
}

/// e^(−a) in f64 for a ≥ 0 (core has no f64 `exp`), to about 1e-15 relative; a > 700 is taken as
/// 700 (e^−700 ≈ 1e−304: σ is then 1 or below any f32), NaN stays NaN.
fn exp_neg_f64(a: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // 0x3fe62e42fee00000, 32 significant bits: k·LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10; // ln 2 − LN2_HI
    // 1/n! for n = 11 down to 0: Taylor's remainder at |r| ≤ ln2/2 is 6e-15 relative.
    const C: [f64; 12] = [
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let a = if a > 700.0 { 700.0 } else { a };
    // Nearest integer to a/ln2 (a ≥ 0; NaN converts to 0).
    let k = (a * core::f64::consts::LOG2_E + 0.5) as i32;
    let kf = k as f64;
    // e^−a = 2^−k · e^r, r = k·ln2 − a in [−ln2/2, ln2/2] (Cody–Waite).
    let r = (kf * LN2_HI - a) + kf * LN2_LO;
    let mut p = C[0];
    for &c in &C[1..] {
        p = p * r + c;
    }
    // k ≤ 1010: 2^−k is a normal f64.
    p * f64::from_bits(((1023 - k) as u64) << 52)
}

/// `(loss, d loss/dx)` per lane for soft targets `t` (unweighted).
#[inline(always)]
fn lanes<G: Cancels, const GRAD: bool>(x: F32x4, xt: XTerms, t: F32x4, g: G) -> (F32x4, F32x4) {
    let s = Sided::with(x, t, F32x4::ONE - t, xt);
    let bce = s.bce();
    // p − t and (for the gradient) σ(1 − σ) from one division; the forward computes p − t the
    // same way, so that its loss is the gradient call's bit for bit.
    let (mut pmt, pq) = if G::FOCUSES { s.p_minus_t_pq() } else { (s.p_minus_t(), F32x4::ZERO) };
    if g.cancels() {
        let (a, b) = (s.u, s.e * s.v);
        if (a - b).abs().lt((a + b) * F32x4::splat(NEAR)).any() {
            pmt = exact_p_minus_t(x, t);
        }
    }
    let m = pmt.abs();
    let (pw, dpw) = g.factors(m);
    let loss = bce * pw;
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let grad = if G::FOCUSES {
        // β·m^(β−1)·sign(σ − y), 0 where m = 0 (SPEC §7; `factors` gives 0 there but for β = 1).
        let sign = pmt.to_bits().and(I32x4::splat(i32::MIN));
        let mut sdpw = F32x4::from_bits(dpw.to_bits().xor(sign));
        if G::UNIT_SLOPE_AT_0 {
            sdpw = sdpw.keep(m.gt(F32x4::ZERO));
        }
        pmt * pw + bce * sdpw * pq
    } else {
        // β = 0: PyTorch's `pow` backward is 0 for exponent 0 (no 0·∞ at infinite x); NaN x
        // must make the gradient NaN by itself.
        nan_where_nan(x, pmt)
    };
    (loss, grad)
}

/// The inputs of [`run`].
#[derive(Clone, Copy)]
struct Problem<'a> {
    x: &'a [f32],
    c: usize,
    labels: &'a [i32],
    scores: &'a [f32],
    weights: Option<&'a [f32]>,
}

/// The outputs as pointers (null: not wanted), for [`run`], which may write them twice.
#[derive(Clone, Copy)]
struct Out {
    loss: *mut f32,
    loss_scale: f32,
    grad: *mut f32,
    grad_scale: f32,
}

/// Quality Focal Loss over `x` (`[N, C]` row-major, N = `labels.len()`, C = `num_classes`).
///
/// - `labels[i]` in `[0, C]`, C meaning background; any other value is taken as background
///   (the TypeScript layer rejects them before calling). `scores[i]` is the quality of row i's
///   labelled class, ignored on background rows; it should lie in [0, 1] (the caller checks
///   [`Summary::targets`]).
/// - `row_weight` (length N) multiplies each row's loss and its gradient row.
/// - `loss_out`: the N row losses `w_i·Σ_j loss_ij`, times its scale; `grad_out`: the N·C
///   gradient elements, times its scale.
/// - `beta` ≥ 0: β = 0, 1 and 2 take [`Focusing`]'s cheap paths.
///
/// Returns Σ of the weighted row losses (unscaled, in f64) and, as `targets`, the range of the
/// scores over rows with a label in `[0, C)` (NaN if one is NaN; `[+∞, −∞]` if there is none).
///
/// Infinite logits give what PyTorch's autograd gives for mmdetection's formula: the BCE is
/// `(1−y)·x − logsigmoid(x)` (+∞ at x = +∞ with y < 1, NaN at x = +∞ with y = 1 and at x = −∞),
/// σ is exactly 0 or 1, the loss is that BCE times `|y − σ|^β`; the gradient is NaN for β > 0
/// (autograd multiplies a non-finite BCE by σ's derivative, 0) and `σ − y` for β = 0 (`pow`'s
/// backward is 0 for exponent 0). NaN logits make their loss and gradient NaN. Where `|y − σ|`
/// is 0 at a finite logit, the gradient's β-term is 0 (SPEC §7), where PyTorch's is NaN for
/// β < 1 (0·∞).
#[allow(clippy::too_many_arguments)]
// `#[inline]`: a non-generic pub fn of the rlib would be compiled into the core module too, where
// the linker drops it but the core's functions come out in another order; the core module must
// stay byte for byte the same.
#[inline]
pub fn quality_focal(
    x: &[f32],
    num_classes: usize,
    labels: &[i32],
    scores: &[f32],
    row_weight: Option<&[f32]>,
    beta: f32,
    loss_out: Option<(&mut [f32], f32)>,
    grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    let (rows, c) = (labels.len(), num_classes);
    let n = rows * c;
    // Every length up front: the kernel writes through pointers.
    let p = Problem { x: &x[..n], c, labels, scores: &scores[..rows], weights: row_weight.map(|w| &w[..rows]) };
    let (loss, loss_scale) = out_ptr(loss_out, rows);
    let (grad, grad_scale) = out_ptr(grad_out, n);
    let out = Out { loss, loss_scale, grad, grad_scale };
    let sum = with_focusing!(beta, g => run_outputs(p, g, out));
    let mut range = RangeTracker::new();
    for (r, &label) in labels.iter().enumerate() {
        if label >= 0 && (label as usize) < c {
            range.add(F32x4::splat(p.scores[r]));
        }
    }
    Summary { sum, targets: range.range() }
}

/// The first `len` elements of an output slice as a pointer and its scale (null: not wanted).
pub(crate) fn out_ptr(o: Option<(&mut [f32], f32)>, len: usize) -> (*mut f32, f32) {
    o.map_or((core::ptr::null_mut(), 0.0), |(s, k)| (s[..len].as_mut_ptr(), k))
}

/// A variant of [`run`].
type Kernel<G> = fn(Problem, G, Out, bool) -> f64;

/// [`run`] with or without the gradient, through a function pointer (see `sigmoid::run_outputs`:
/// with no direct call, wasm-opt keeps each variant a function of its own), and a second pass
/// with PyTorch's terms at infinite logits where the first one's sum is not finite.
#[inline(always)]
fn run_outputs<G: Cancels>(p: Problem, g: G, out: Out) -> f64 {
    let kernels: [Kernel<G>; 2] = [run::<G, false>, run::<G, true>];
    let kernel = kernels[!out.grad.is_null() as usize];
    let sum = kernel(p, g, out, false);
    if sum.is_finite() {
        sum
    } else {
        kernel(p, g, out, true)
    }
}

/// The `len` (1..=3) floats from `p`, the other lanes 0, by fixed-size reads: the loop of
/// `F32x4::load_partial` becomes a `memcpy` call, for every row when C is small (V8 spills every
/// vector register around a call in a loop): twice the time at C = 3.
///
/// # Safety
/// `p..p+len` must be readable.
#[inline(always)]
unsafe fn load_tail(p: *const f32, len: usize) -> F32x4 {
    let a1 = if len > 1 { *p.add(1) } else { 0.0 };
    let a2 = if len > 2 { *p.add(2) } else { 0.0 };
    F32x4::from_array([*p, a1, a2, 0.0])
}

/// The first `len` (1..=3) lanes of `v` to `p` (see [`load_tail`]).
///
/// # Safety
/// `p..p+len` must be writable.
#[inline(always)]
unsafe fn store_tail(v: F32x4, p: *mut f32, len: usize) {
    let a = v.to_array();
    *p = a[0];
    if len > 1 {
        *p.add(1) = a[1];
    }
    if len > 2 {
        *p.add(2) = a[2];
    }
}

/// The row walk. Tiles of x-terms start at a row (several whole rows, or a row's first TILE
/// elements, then its next, when C > TILE), checked for once per row (or chunk): the blocks'
/// loop has no call in it (V8 spills every vector register around one). A row's last block is
/// padded and its padded lanes left out of the row's sum.
#[inline(never)]
fn run<G: Cancels, const GRAD: bool>(p: Problem, g: G, out: Out, infinities: bool) -> f64 {
    let c = p.c;
    let mut staged = Staged::new(infinities);
    let mut tiles = Tiles::new(p.x, &mut staged);
    let iota = F32x4::iota_from(0.0);
    let x = p.x.as_ptr();
    let mut sum = 0.0f64;
    for (r, &label) in p.labels.iter().enumerate() {
        let positive = label >= 0 && (label as usize) < c;
        // Background rows (and labels out of range): score 0 makes every target 0.
        let score = F32x4::splat(if positive { p.scores[r] } else { 0.0 });
        let label = if positive { label as usize } else { 0 };
        let w = p.weights.map_or(1.0, |w| w[r]);
        let grad_scale = F32x4::splat(w * out.grad_scale);
        let base = r * c;
        let block = |tiles: &Tiles, j: usize, len: usize| {
            let i = base + j;
            // SAFETY: the current tile holds i (its four lanes staged, padding included);
            // i + len ≤ n = x.len(), and the gradient slice holds n elements.
            let (xt, xv) = unsafe { (tiles.get(i), if len == 4 { F32x4::load(x.add(i)) } else { load_tail(x.add(i), len) }) };
            // The label's column relative to the block, as a float: exact where it matters (a
            // difference below 4), and never 0..3 where rounded.
            let t = score.keep(iota.eq(F32x4::splat((label as isize - j as isize) as f32)));
            let (l, d) = lanes::<G, GRAD>(xv, xt, t, g);
            if GRAD {
                let d = d * grad_scale;
                unsafe { if len == 4 { d.store(out.grad.add(i)) } else { store_tail(d, out.grad.add(i), len) } };
            }
            l
        };
        let mut row = SumF64::new();
        let mut j = 0;
        while j < c {
            let end = if c - j > TILE { j + TILE } else { c };
            // SAFETY: base + end ≤ n; a tile is staged from base + j unless it already holds
            // the chunk.
            unsafe { tiles.at(base + j, end - j) };
            // Full blocks with a literal length (every load and store one vector access).
            let full = end & !3;
            while j < full {
                row.add_at(block(&tiles, j, 4), j);
                j += 4;
            }
            if j < end {
                // Padded lanes (x = 0, and maybe the label's column past the row) are left out.
                row.add_at(block(&tiles, j, end - j).keep(first_lanes(end - j)), j);
                j = end;
            }
        }
        let total = row.total() * w as f64;
        sum += total;
        if !out.loss.is_null() {
            // SAFETY: r < rows, the length of the loss slice.
            unsafe { *out.loss.add(r) = (total * out.loss_scale as f64) as f32 };
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::{logit, Rng};

    fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }

    /// `m^β` with 0^0 = 1.
    fn pow(m: f64, b: f64) -> f64 {
        if b == 0.0 {
            1.0
        } else {
            m.powf(b)
        }
    }

    /// f64 reference from SPEC §7, for one element (target y): `(loss, d loss/dx)`.
    fn reference(x: f64, y: f64, b: f64) -> (f64, f64) {
        let p = sigmoid(x);
        let bce = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
        let m = (y - p).abs();
        let loss = bce * pow(m, b);
        let sign = if p > y { 1.0 } else if p < y { -1.0 } else { 0.0 };
        let second = if m == 0.0 || b == 0.0 { 0.0 } else { bce * b * m.powf(b - 1.0) * sign * p * (1.0 - p) };
        (loss, (p - y) * pow(m, b) + second)
    }

    /// The reference over rows: `(row losses, gradient)`, weighted.
    fn reference_rows(x: &[f32], c: usize, labels: &[i32], scores: &[f32], rw: Option<&[f32]>, b: f64) -> (Vec<f64>, Vec<f64>) {
        let mut rows = vec![0.0; labels.len()];
        let mut grad = vec![0.0; x.len()];
        for r in 0..labels.len() {
            let w = rw.map_or(1.0, |w| w[r] as f64);
            for j in 0..c {
                let y = if labels[r] == j as i32 { scores[r] as f64 } else { 0.0 };
                let (l, g) = reference(x[r * c + j] as f64, y, b);
                rows[r] += w * l;
                grad[r * c + j] = w * g;
            }
        }
        (rows, grad)
    }

    fn score(rng: &mut Rng) -> f32 {
        match rng.below(8) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.unit(),
        }
    }

    const BETAS: [f32; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];

    fn within(got: f32, want: f64, tol: f64) -> bool {
        (got as f64 - want).abs() <= tol * want.abs().max(1.0)
    }

    /// Runs the kernel with every output and checks it against the reference (SPEC §5);
    /// returns the worst elementwise error relative to max(1, |ref|).
    fn check(x: &[f32], c: usize, labels: &[i32], scores: &[f32], rw: Option<&[f32]>, beta: f32, what: &str) -> f64 {
        let rows = labels.len();
        let (ls, gs) = (0.5f32, 0.25f32);
        let mut loss = vec![f32::NAN; rows];
        let mut grad = vec![f32::NAN; rows * c];
        let s = quality_focal(x, c, labels, scores, rw, beta, Some((&mut loss, ls)), Some((&mut grad, gs)));
        let (want_rows, want_grad) = reference_rows(x, c, labels, scores, rw, beta as f64);
        let mut worst = 0.0f64;
        for r in 0..rows {
            let want = want_rows[r] * ls as f64;
            let e = (loss[r] as f64 - want).abs() / want.abs().max(1.0);
            worst = worst.max(e);
            assert!(e <= 1e-5, "{what}: β={beta} row {r} loss {} vs {want}", loss[r]);
        }
        for i in 0..rows * c {
            let want = want_grad[i] * gs as f64;
            let e = (grad[i] as f64 - want).abs() / want.abs().max(1.0);
            worst = worst.max(e);
            assert!(e <= 1e-5, "{what}: β={beta} grad[{i}] (x={}, row label {}) {} vs {want}", x[i], labels[i / c], grad[i]);
        }
        let want_sum: f64 = want_rows.iter().sum();
        assert!((s.sum - want_sum).abs() <= 1e-5 * want_sum.abs(), "{what}: β={beta} sum {} vs {want_sum}", s.sum);
        worst
    }

    #[test]
    fn matches_f64_reference_at_every_size() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut worst = 0.0f64;
        let mut cases = 0;
        for rows in 1..=70usize {
            for c in 1..=9usize {
                let n = rows * c;
                let x: Vec<f32> = (0..n).map(|_| logit(&mut rng)).collect();
                let labels: Vec<i32> = (0..rows).map(|_| rng.below(c + 1) as i32).collect();
                let scores: Vec<f32> = (0..rows).map(|_| score(&mut rng)).collect();
                let rw: Vec<f32> = (0..rows).map(|_| rng.unit() * 2.0).collect();
                for &beta in &BETAS {
                    let rw = if rng.below(2) == 0 { Some(&rw[..]) } else { None };
                    worst = worst.max(check(&x, c, &labels, &scores, rw, beta, &format!("{rows}×{c}")));
                    cases += 1;
                }
            }
        }
        println!("quality focal: {cases} cases, worst error {worst:.2e} of max(1, |ref|)");
    }

    /// σ(x) within a few f32 ulps of the score (the scores as f32 σ of the logits, and nearby):
    /// where β < 1's gradient factor m^(β−1) is largest and β = 1's sign flips.
    #[test]
    fn accurate_where_sigmoid_meets_the_score() {
        let mut rng = Rng(12345);
        let mut worst = 0.0f64;
        for &beta in &[0.25f32, 0.5, 0.9, 1.0, 1.5] {
            let rows = 400;
            let c = 3;
            let mut x = vec![0.0f32; rows * c];
            let mut labels = vec![0i32; rows];
            let mut scores = vec![0.0f32; rows];
            for r in 0..rows {
                for j in 0..c {
                    x[r * c + j] = logit(&mut rng);
                }
                labels[r] = rng.below(c) as i32;
                let xl = (rng.unit() - 0.5) * 24.0;
                x[r * c + labels[r] as usize] = xl;
                let s = sigmoid(xl as f64) as f32;
                // The rounded σ itself, a few ulps away, or up to 1e-4 away.
                let k = rng.below(3);
                scores[r] = match k {
                    0 => s,
                    1 => f32::from_bits((s.to_bits() as i64 + rng.below(9) as i64 - 4) as u32),
                    _ => (s as f64 + (rng.unit() as f64 - 0.5) * 2e-4 * s as f64) as f32,
                }
                .min(1.0);
            }
            worst = worst.max(check(&x, c, &labels, &scores, None, beta, "σ ≈ y"));
        }
        println!("quality focal where σ ≈ y: worst error {worst:.2e}");
    }

    /// The reference's gradient is the derivative of its loss (central differences), and the
    /// kernel's agrees with both.
    #[test]
    fn gradient_matches_finite_differences() {
        let points = [(-3.0f64, 0.0f64), (-0.7, 0.8), (0.3, 0.35), (1.25, 0.9), (2.5, 1.0), (-1.5, 0.2), (4.0, 0.1), (0.0, 0.5)];
        for &beta in &BETAS {
            for &(x, y) in &points {
                let f = |x: f64| reference(x, y, beta as f64).0;
                let h = 1e-5;
                let fd = (f(x + h) - f(x - h)) / (2.0 * h);
                let (_, g) = reference(x, y, beta as f64);
                // x = 0, y = 0.5 is σ = y, where the β < 1 loss has no derivative: skip its FD.
                if !(x == 0.0 && y == 0.5 && beta < 1.0 && beta > 0.0) {
                    assert!((fd - g).abs() <= 1e-6 * g.abs().max(1.0), "β={beta} x={x} y={y}: fd {fd} vs {g}");
                }
                let mut out = [0.0f32; 2];
                let xs = [x as f32, 0.5];
                quality_focal(&xs, 2, &[0], &[y as f32], None, beta, None, Some((&mut out, 1.0)));
                let (_, g32) = reference(x as f32 as f64, y as f32 as f64, beta as f64);
                assert!(within(out[0], g32, 1e-5), "β={beta} x={x} y={y}: kernel {} vs {g32}", out[0]);
            }
        }
    }

    /// mmdetection's `quality_focal_loss` under PyTorch's autograd, op by op in f64 (one element
    /// with target y): BCE as ATen's `(1−y)·x − logsigmoid(x)`, `pow`'s backward 0 for exponent 0,
    /// σ' = σ(1 − σ).
    fn torch(x: f64, y: f64, b: f64) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-x).exp());
        let logsig = x.min(0.0) - (-x.abs()).exp().ln_1p();
        let bce = (1.0 - y) * x - logsig;
        let m = (y - p).abs();
        let loss = bce * pow(m, b);
        // d loss/d m = bce; through pow, abs (sign(y − σ)), y − σ (−1), σ.
        let dm = if b == 0.0 { 0.0 } else { bce * b * m.powf(b - 1.0) };
        let sign = if y > p { 1.0 } else if y < p { -1.0 } else { 0.0 };
        let via_m = if b == 0.0 { 0.0 } else { dm * sign * -1.0 * (p * (1.0 - p)) };
        (loss, pow(m, b) * (p - y) + via_m)
    }

    fn same(got: f32, want: f64) -> bool {
        if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            got as f64 == want
        } else {
            within(got, want, 1e-5)
        }
    }

    #[test]
    fn infinite_and_nan_logits_as_pytorch() {
        let inf = f32::INFINITY;
        for &beta in &BETAS {
            for &score in &[0.0f32, 0.3, 0.5, 1.0] {
                for &(c, label) in &[(6usize, 1i32), (6, 4), (3, 3), (5, 2)] {
                    // Infinite logits among finite ones in each row, at the label's column too.
                    let rows = 4;
                    let mut x: Vec<f32> = (0..rows * c).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
                    x[1] = inf;
                    x[c + 4 % c] = -inf;
                    x[2 * c + label.min(c as i32 - 1) as usize] = inf;
                    x[3 * c + label.min(c as i32 - 1) as usize] = -inf;
                    let labels = vec![label; rows];
                    let scores = vec![score; rows];
                    let mut loss = vec![0.0f32; rows];
                    let mut grad = vec![0.0f32; rows * c];
                    quality_focal(&x, c, &labels, &scores, None, beta, Some((&mut loss, 1.0)), Some((&mut grad, 1.0)));
                    for r in 0..rows {
                        let mut row = 0.0;
                        for j in 0..c {
                            let y = if label == j as i32 { score as f64 } else { 0.0 };
                            let (wl, wg) = torch(x[r * c + j] as f64, y, beta as f64);
                            row += wl;
                            let got = grad[r * c + j];
                            assert!(same(got, wg), "β={beta} s={score} C={c} label {label} x={}: grad {got} vs torch {wg}", x[r * c + j]);
                        }
                        assert!(same(loss[r], row), "β={beta} s={score} C={c} label {label} row {r}: {} vs torch {row}", loss[r]);
                    }
                }
            }
        }
        // NaN logits: NaN loss and gradient, the rest of the row as without it.
        for &beta in &BETAS {
            let x = [0.5f32, f32::NAN, -1.0, 2.0, f32::NAN, -0.25];
            let mut loss = [0.0f32; 2];
            let mut grad = [0.0f32; 6];
            let s = quality_focal(&x, 3, &[1, 0], &[0.7, 0.2], None, beta, Some((&mut loss, 1.0)), Some((&mut grad, 1.0)));
            assert!(s.sum.is_nan() && loss[0].is_nan() && loss[1].is_nan());
            for i in 0..6 {
                assert_eq!(grad[i].is_nan(), x[i].is_nan(), "β={beta} grad[{i}] = {}", grad[i]);
            }
        }
    }

    #[test]
    fn rows_across_tiles_and_outputs_on_demand() {
        let mut rng = Rng(777);
        for &c in &[4usize, 7, 80, 300, 513] {
            let rows = 3 * TILE / c + 5;
            let n = rows * c;
            let x: Vec<f32> = (0..n).map(|_| logit(&mut rng)).collect();
            let labels: Vec<i32> = (0..rows).map(|_| rng.below(c + 1) as i32).collect();
            let scores: Vec<f32> = (0..rows).map(|_| score(&mut rng)).collect();
            let rw: Vec<f32> = (0..rows).map(|_| rng.unit()).collect();
            for &beta in &[0.5f32, 2.0] {
                check(&x, c, &labels, &scores, Some(&rw), beta, &format!("tiles C={c}"));
                let mut l1 = vec![0.0f32; rows];
                let mut g1 = vec![0.0f32; n];
                let all = quality_focal(&x, c, &labels, &scores, Some(&rw), beta, Some((&mut l1, 1.0)), Some((&mut g1, 1.0))).sum;
                let mut l2 = vec![0.0f32; rows];
                let loss_only = quality_focal(&x, c, &labels, &scores, Some(&rw), beta, Some((&mut l2, 1.0)), None).sum;
                let mut g2 = vec![0.0f32; n];
                let grad_only = quality_focal(&x, c, &labels, &scores, Some(&rw), beta, None, Some((&mut g2, 1.0))).sum;
                let none = quality_focal(&x, c, &labels, &scores, Some(&rw), beta, None, None).sum;
                assert_eq!(l1, l2);
                assert_eq!(g1, g2);
                assert!(all == loss_only && all == grad_only && all == none);
            }
        }
    }

    #[test]
    fn labels_out_of_range_are_background_and_scores_range() {
        let x: Vec<f32> = (0..15).map(|i| (i as f32 - 7.0) * 0.6).collect();
        let run = |labels: &[i32], scores: &[f32]| {
            let mut l = [0.0f32; 5];
            let mut g = [0.0f32; 15];
            let s = quality_focal(&x, 3, labels, scores, None, 2.0, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
            (s, l, g)
        };
        let (a, la, ga) = run(&[3, 0, 3, 2, 3], &[0.9, 0.6, 0.9, 0.1, 0.9]);
        let (b, lb, gb) = run(&[-1, 0, 7, 2, i32::MIN], &[0.9, 0.6, 0.9, 0.1, 0.9]);
        assert_eq!((la, ga), (lb, gb));
        assert_eq!(a.sum, b.sum);
        assert_eq!((a.targets.min, a.targets.max), (0.1, 0.6));
        // A NaN score shows on a positive row only.
        let (s, ..) = run(&[3, 0, 3, 2, 3], &[f32::NAN, 0.6, 0.9, 0.1, 0.9]);
        assert_eq!((s.targets.min, s.targets.max), (0.1, 0.6));
        let (s, ..) = run(&[3, 0, 3, 2, 3], &[0.9, f32::NAN, 0.9, 0.1, 0.9]);
        assert!(s.targets.min.is_nan() && s.targets.max.is_nan());
        let (s, ..) = run(&[3, 3, 3, 3, 3], &[0.9, 0.6, 0.9, 0.1, 0.9]);
        assert!(s.targets.min > s.targets.max);
        // No classes, no rows.
        let mut l = [1.0f32; 2];
        assert_eq!(quality_focal(&[], 0, &[0, 0], &[0.5, 0.5], None, 2.0, Some((&mut l, 1.0)), None).sum, 0.0);
        assert_eq!(l, [0.0, 0.0]);
        assert_eq!(quality_focal(&[], 4, &[], &[], None, 2.0, None, None).sum, 0.0);
    }

    #[test]
    fn exp_neg_f64_is_accurate() {
        let mut worst = 0.0f64;
        let mut a = 0.0f64;
        while a < 700.0 {
            let e = exp_neg_f64(a);
            worst = worst.max((e - (-a).exp()).abs() / (-a).exp());
            a += 0.0137;
        }
        assert!(worst < 1e-14, "{worst}");
        assert!(exp_neg_f64(f64::NAN).is_nan());
        assert!(exp_neg_f64(f64::INFINITY) > 0.0 && exp_neg_f64(f64::INFINITY) < 1e-300);
    }
}
