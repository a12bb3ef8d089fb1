//! Softmax focal loss with soft target rows, docs/SPEC.md §2 "Soft targets", with its gradient:
//! probability rows (PyTorch `cross_entropy` with a probability target), smoothed labels
//! (`label_smoothing`) and two-hot rows (the Distribution Focal Loss of §9, at γ = 0, α = 1).
//!
//! Numerics, per row, as in [`crate::focal::softmax`] (whose helpers it reuses):
//! - `s = Σ_j exp(x_j - m)` with `m` the row max, summed in f64;
//! - `log p_j = (x_j - m) - log1p(s - 1)`: two terms of one sign, so no cancellation, and full
//!   relative accuracy as p_j → 1;
//! - `1 - p_j`: at a row max (x_j = m, e_j exactly 1) it is `(s - 1)/s` from f64, as the one-hot
//!   kernel forms it; any other class has e_j ≤ 1 ≤ s - e_j, so p_j ≤ 1/2, and `1 - p_j` in f32
//!   does not cancel;
//! - the gradient `p_k·Σ_j u_j - u_k` as `p_k·(U - u_k) - (1 - p_k)·u_k`, which does not
//!   cancel at a p_k near 1.
//!
//! Terms with t_j = 0 are masked to 0, so a class at x_j = -inf adds nothing unless targeted.
//!
//! Passes per row: the max; the exps, summed and (with a gradient asked for) parked in the
//! gradient row; the loss and the u_j, which replace the parked exps; the gradient, with the exps
//! computed again. One function per γ path serves the three target sources: a row's targets are
//! a dense row or the same value everywhere but at two classes (smoothed: one; two-hot: base 0),
//! see `RowTargets`.

use crate::focal::softmax::{lane0, row_exp_sum, row_max};
pub use crate::focal::softmax::Summary;
use crate::focal::{Focusing, Gamma0, GammaAny};
use crate::math;
use crate::simd::{F32x4, I32x4, M32x4, SumF64};

/// Where each row's target distribution comes from (rows of `num_classes` = C).
#[derive(Clone, Copy)]
pub enum SoftRows<'a> {
    /// Probability rows, `[rows·C]` (non-negative, summing to 1; not checked here).
    Dense(&'a [f32]),
    /// Class labels smoothed by ε: t = (1 - ε)·onehot(label) + ε/C. Rows whose label is
    /// `ignore_index` or outside [0, C) are skipped: loss 0, gradient 0, not counted.
    Smoothed { labels: &'a [i32], eps: f32, ignore_index: i32 },
    /// Two-hot targets y, 0 ≤ y < n = C - 1: weight r - y on l = floor(y), y - l on r = l + 1.
    /// y is clamped to [0, n] (y = n is all on class n); a NaN y makes the row NaN.
    TwoHot(&'a [f32]),
}

impl SoftRows<'_> {
    /// The number of rows these targets describe.
    pub fn rows(&self, num_classes: usize) -> usize {
        match *self {
            // Not `/`: its panic message, shared with the core's code, would move in the core
            // module's data (which must stay byte-identical) though this code is not in it.
            SoftRows::Dense(t) => t.len().checked_div(num_classes).unwrap_or(0),
            SoftRows::Smoothed { labels, .. } => labels.len(),
            SoftRows::TwoHot(y) => y.len(),
        }
    }

    /// Row `r`'s targets, or `None` for a row that does not count. `c` ≥ 1.
    #[inline(always)]
    fn row(&self, r: usize, c: usize) -> Option<RowTargets> {
        match *self {
            SoftRows::Dense(t) => {
                let row = &t[r * c..(r + 1) * c];
                Some(RowTargets { dense: row.as_ptr(), dmask: usize::MAX, base: 0.0, i1: -1.0, h1: 0.0, i2: -1.0, h2: 0.0 })
            }
            SoftRows::Smoothed { labels, eps, ignore_index } => {
                let y = labels[r];
                if y == ignore_index || y < 0 || y as usize >= c {
                    return None;
                }
                // Formed in f64 and rounded once (SPEC §10, label smoothing).
                let (e, b) = (eps as f64, eps as f64 / c as f64);
                let hot = ((1.0 - e) + b) as f32;
                Some(RowTargets { dense: ZEROS.as_ptr(), dmask: 0, base: b as f32, i1: y as f32, h1: hot, i2: -1.0, h2: 0.0 })
            }
            SoftRows::TwoHot(ys) => {
                let n = c - 1;
                let y = ys[r];
                // Comparisons are false for NaN, which stays NaN (and `as usize` makes it 0).
                let y = if y > n as f32 {
                    n as f32
                } else if y < 0.0 {
                    0.0
                } else {
                    y
                };
                let l = (y as usize).min(n.saturating_sub(1)) as f32;
                // r - y and y - l, each exact before its one rounding (l + 1 is exact).
                Some(RowTargets { dense: ZEROS.as_ptr(), dmask: 0, base: 0.0, i1: l, h1: (l + 1.0) - y, i2: l + 1.0, h2: y - l })
            }
        }
    }
}

/// Four lanes of 0 and of 1: what a sparse row's `dense` part and absent α read.
static ZEROS: [f32; 4] = [0.0; 4];
static ONES: [f32; 4] = [1.0; 4];

/// One row's targets, the sum of two parts: a dense row at `dense` (read at class `j & dmask`:
/// a sparse row reads [`ZEROS`] with `dmask` 0), and `base` at every class but `i1` and `i2`
/// (class indices as floats; -1 for none), which hold `h1` and `h2` (a dense row has all three
/// 0). No branch on the source in the loop: a 4-lane add and select cost less than the code a
/// loop per source would (the wasm size budget).
#[derive(Clone, Copy)]
struct RowTargets {
    dense: *const f32,
    dmask: usize,
    base: f32,
    i1: f32,
    h1: f32,
    i2: f32,
    h2: f32,
}

impl RowTargets {
    /// t for classes `j..j+len`, 0 in lanes past the row's end (`c` = C in every lane).
    ///
    /// # Safety
    /// `dense + (j & dmask) ..` must have `len` readable values.
    #[inline(always)]
    unsafe fn lanes(&self, j: usize, len: usize, c: F32x4) -> F32x4 {
        let k = F32x4::iota_from(j as f32);
        let t = M32x4::select(k.eq(F32x4::splat(self.i2)), F32x4::splat(self.h2), F32x4::splat(self.base));
        let t = M32x4::select(k.eq(F32x4::splat(self.i1)), F32x4::splat(self.h1), t).keep(k.lt(c));
        F32x4::load_partial(self.dense.add(j & self.dmask), len, 0.0) + t
    }
}

/// Softmax focal loss with soft targets over `x` (`[rows, C]` row-major, rows from `targets`).
///
/// `alpha`: C per-class weights, or empty for 1. `row_weight`: one per row, multiplying the row's
/// loss and gradient row. `loss_out` (one per row, reduction `none`) and `grad_out` (`[rows, C]`)
/// with their scales; skipped rows get 0 in both. The summary has Σ of the unscaled weighted row
/// losses (f64) and the number of counted rows.
#[allow(clippy::too_many_arguments)]
pub fn softmax_focal_soft(
    x: &[f32],
    num_classes: usize,
    targets: SoftRows,
    alpha: &[f32],
    gamma: f32,
    row_weight: Option<&[f32]>,
    loss_out: Option<(&mut [f32], f32)>,
    grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    // The lanes read α unchecked.
    assert!(alpha.is_empty() || alpha.len() >= num_classes);
    // Distribution Focal Loss (two-hot rows, γ = 0, no α) needs no per-class focal terms.
    if let SoftRows::TwoHot(y) = targets {
        if gamma == 0.0 && alpha.is_empty() {
            return super::distribution::distribution_focal(x, num_classes, y, row_weight, loss_out, grad_out);
        }
    }
    // Three γ paths, not `with_focusing!`'s four: each is a 6–8 KiB function in the SIMD module.
    // γ = 1 does not take the general path, slower, and less accurate for small m: exp(γ·ln m)
    // is off by about |γ·ln m|·2^-24 relative (1.1e-6 from the one-hot kernel, measured).
    // Called through a table, so that wasm-opt does not merge them into one function (see
    // `focal::sigmoid::run_outputs`): merged, they made one of 28 KiB in the scalar module, near
    // the build's 32 KiB limit per function.
    let kernels: [Kernel; 3] = [run::<Gamma0>, run::<Gamma12>, run::<GammaAny>];
    let path = if gamma == 0.0 {
        0
    } else if gamma == 1.0 || gamma == 2.0 {
        1
    } else {
        2
    };
    kernels[path](x, num_classes, targets, alpha, gamma, row_weight, loss_out, grad_out)
}

/// A variant of [`run`].
type Kernel =
    fn(&[f32], usize, SoftRows, &[f32], f32, Option<&[f32]>, Option<(&mut [f32], f32)>, Option<(&mut [f32], f32)>) -> Summary;

/// A [`Focusing`] made from γ, for the paths [`softmax_focal_soft`] picks.
trait Path: Focusing {
    fn new(gamma: f32) -> Self;
}

impl Path for Gamma0 {
    #[inline(always)]
    fn new(_: f32) -> Self {
        Gamma0
    }
}

impl Path for GammaAny {
    #[inline(always)]
    fn new(gamma: f32) -> Self {
        GammaAny(gamma)
    }
}

/// γ = 1 and γ = 2 in one function: the factors of [`Gamma1`](crate::focal::Gamma1) or
/// [`Gamma2`](crate::focal::Gamma2), bit for bit, picked by a mask set for γ = 2 (two selects a
/// vector, where a function of its own would add 6 KiB to the SIMD module).
#[derive(Clone, Copy)]
struct Gamma12(M32x4);

impl Focusing for Gamma12 {
    #[inline(always)]
    fn factors(self, m: F32x4) -> (F32x4, F32x4) {
        (M32x4::select(self.0, m * m, m), M32x4::select(self.0, m + m, F32x4::ONE))
    }
}

impl Path for Gamma12 {
    #[inline(always)]
    fn new(gamma: f32) -> Self {
        Gamma12(M32x4::from_i32_nonzero(I32x4::splat((gamma == 2.0) as i32)))
    }
}

// Not inlined: one function per γ path (see `focal::softmax::run`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn run<G: Path>(
    x: &[f32],
    c: usize,
    targets: SoftRows,
    alpha: &[f32],
    gamma: f32,
    row_weight: Option<&[f32]>,
    mut loss_out: Option<(&mut [f32], f32)>,
    mut grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    let g = G::new(gamma);
    let mut sum = 0.0f64;
    let mut rows = 0u64;
    if c == 0 {
        return Summary { sum, rows };
    }
    for r in 0..targets.rows(c) {
        let grad = grad_out.as_mut().map(|(go, k)| (&mut go[r * c..(r + 1) * c], *k));
        let t = match targets.row(r, c) {
            Some(t) => t,
            None => {
                if let Some((gr, _)) = grad {
                    gr.iter_mut().for_each(|v| *v = 0.0);
                }
                if let Some((lo, _)) = loss_out.as_mut() {
                    lo[r] = 0.0;
                }
                continue;
            }
        };
        rows += 1;
        let w = row_weight.map_or(1.0, |rw| rw[r]);
        let loss = row_loss(&x[r * c..(r + 1) * c], t, alpha, g, w, grad) * w as f64;
        sum += loss;
        if let Some((lo, k)) = loss_out.as_mut() {
            lo[r] = loss as f32 * *k;
        }
    }
    Summary { sum, rows }
}

/// One row: returns its unweighted loss, and writes its gradient times `w·k` to `grad`.
#[inline(always)]
fn row_loss<G: Focusing>(row: &[f32], t: RowTargets, alpha: &[f32], g: G, w: f32, mut grad: Option<(&mut [f32], f32)>) -> f64 {
    let c = row.len();
    let m = row_max(row);
    let s = row_exp_sum(row, m, grad.as_mut().map(|(gr, _)| &mut **gr));
    let mv = F32x4::splat(m);
    let ln_s = F32x4::splat(lane0(math::log1p(F32x4::splat((s - 1.0) as f32))));
    let inv_s = F32x4::splat((1.0 / s) as f32);
    let omp_max = F32x4::splat(((s - 1.0) / s) as f32);
    let cv = F32x4::splat(c as f32);
    // p_j and 1 - p_j from e_j = exp(d_j), d_j = x_j - m (see the module docs).
    let probs = |d: F32x4, e: F32x4| {
        let p = e * inv_s;
        (p, M32x4::select(d.eq(F32x4::ZERO), omp_max, F32x4::ONE - p))
    };
    let park = grad.as_mut().map(|(gr, _)| gr.as_mut_ptr());
    // α read as the targets' dense part: no α reads [`ONES`] at every block.
    let (ap, amask) = if alpha.is_empty() { (ONES.as_ptr(), 0) } else { (alpha.as_ptr(), usize::MAX) };

    let mut loss = SumF64::new();
    let mut us = SumF64::new();
    let mut j = 0;
    while j < c {
        let len = (c - j).min(4);
        // Padded lanes: x = 0 and t = 0, masked below.
        let d = unsafe { F32x4::load_partial(row.as_ptr().add(j), len, 0.0) } - mv;
        let e = match park {
            Some(pp) => unsafe { F32x4::load_partial(pp.add(j), len, 0.0) },
            None => math::exp(d),
        };
        let (p, omp) = probs(d, e);
        let tv = unsafe { t.lanes(j, len, cv) };
        let a = unsafe { F32x4::load_partial(ap.add(j & amask), len, 0.0) };
        let at = a * tv;
        let on = tv.ne(F32x4::ZERO);
        let (pw, dpw) = g.factors(omp);
        // -log p_j = ln s - d_j, both terms ≥ 0.
        let nlogp = ln_s - d;
        loss.add((at * pw * nlogp).keep(on));
        if let Some(pp) = park {
            // u_j = α_j·t_j·((1-p_j)^γ - γ(1-p_j)^(γ-1)·p_j·log p_j); none of the γ-term at γ = 0
            // (see `Focusing::FOCUSES`).
            let u = if G::FOCUSES { at * (pw + dpw * p * nlogp) } else { at * pw };
            let u = u.keep(on);
            us.add(u);
            unsafe { u.store_partial(pp.add(j), len) };
        }
        j += 4;
    }

    if let Some((gr, k)) = grad {
        let uu = F32x4::splat(us.total() as f32);
        let wk = F32x4::splat(w * k);
        let mut j = 0;
        while j < c {
            let len = (c - j).min(4);
            unsafe {
                let d = F32x4::load_partial(row.as_ptr().add(j), len, 0.0) - mv;
                let (p, omp) = probs(d, math::exp(d));
                let u = F32x4::load_partial(gr.as_ptr().add(j), len, 0.0);
                ((p * (uu - u) - omp * u) * wk).store_partial(gr.as_mut_ptr().add(j), len);
            }
            j += 4;
        }
    }
    loss.total()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use crate::focal::softmax::{softmax_focal, Params};

    /// The f64 loss of one row, and its gradient from SPEC's formula.
    fn reference(x: &[f32], t: &[f64], a: &[f64], gamma: f64) -> (f64, Vec<f64>) {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let c = x.len();
        let mut loss = 0.0;
        let mut u = vec![0.0; c];
        for j in 0..c {
            if t[j] == 0.0 {
                continue;
            }
            let logp = (x[j] - m) - s.ln();
            let p = e[j] / s;
            let omp = (s - e[j]) / s;
            loss -= a[j] * t[j] * omp.powf(gamma) * logp;
            let gterm = if omp == 0.0 || gamma == 0.0 { 0.0 } else { gamma * omp.powf(gamma - 1.0) * p * logp };
            u[j] = a[j] * t[j] * (omp.powf(gamma) - gterm);
        }
        let uu: f64 = u.iter().sum();
        let grad = (0..c).map(|k| e[k] / s * uu - u[k]).collect();
        (loss, grad)
    }

    /// The f64 loss alone, for finite differences (x in f64).
    fn ref_loss(x: &[f64], t: &[f64], a: &[f64], gamma: f64) -> f64 {
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
        (0..x.len())
            .filter(|&j| t[j] != 0.0)
            .map(|j| {
                let logp = (x[j] - m) - s.ln();
                -a[j] * t[j] * (-logp.exp_m1()).powf(gamma) * logp
            })
            .sum()
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Dense,
        Smoothed,
        TwoHot,
    }

    struct Case {
        rows: usize,
        c: usize,
        x: Vec<f32>,
        kind: Kind,
        dense: Vec<f32>,
        labels: Vec<i32>,
        eps: f32,
        y: Vec<f32>,
        alpha: Vec<f32>,
        gamma: f32,
        rw: Option<Vec<f32>>,
    }

    const IGNORE: i32 = -100;

    impl Case {
        fn targets(&self) -> SoftRows<'_> {
            match self.kind {
                Kind::Dense => SoftRows::Dense(&self.dense),
                Kind::Smoothed => SoftRows::Smoothed { labels: &self.labels, eps: self.eps, ignore_index: IGNORE },
                Kind::TwoHot => SoftRows::TwoHot(&self.y),
            }
        }
        /// Row r's f64 targets, None for a skipped row.
        fn t64(&self, r: usize) -> Option<Vec<f64>> {
            let c = self.c;
            match self.kind {
                Kind::Dense => Some(self.dense[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect()),
                Kind::Smoothed => {
                    let y = self.labels[r];
                    if y < 0 || y as usize >= c {
                        return None;
                    }
                    let e = self.eps as f64;
                    Some((0..c).map(|j| if j == y as usize { 1.0 - e } else { 0.0 } + e / c as f64).collect())
                }
                Kind::TwoHot => {
                    let y = self.y[r] as f64;
                    let l = y.floor();
                    let mut t = vec![0.0; c];
                    t[l as usize] += l + 1.0 - y;
                    if y > l {
                        t[l as usize + 1] += y - l;
                    }
                    Some(t)
                }
            }
        }
        fn a64(&self) -> Vec<f64> {
            if self.alpha.is_empty() {
                vec![1.0; self.c]
            } else {
                self.alpha.iter().map(|&v| v as f64).collect()
            }
        }
        fn w(&self, r: usize) -> f64 {
            self.rw.as_ref().map_or(1.0, |w| w[r] as f64)
        }
        fn run(&self, loss: Option<(&mut [f32], f32)>, grad: Option<(&mut [f32], f32)>) -> Summary {
            softmax_focal_soft(&self.x, self.c, self.targets(), &self.alpha, self.gamma, self.rw.as_deref(), loss, grad)
        }
    }

    fn logit(rng: &mut Rng, extreme: bool) -> f32 {
        if extreme && rng.below(3) == 0 {
            let v = rng.pick(&[30.0f32, 88.0, 1e4]);
            if rng.below(2) == 0 {
                v
            } else {
                -v
            }
        } else {
            ((rng.unif() - 0.5) * 12.0) as f32
        }
    }

    fn random_case(rng: &mut Rng, kind: Kind) -> Case {
        let rows = 1 + rng.below(40);
        let c = match kind {
            Kind::TwoHot => 2 + rng.below(12),
            _ => 1 + rng.below(13),
        };
        let extreme = rng.below(3) == 0;
        let x: Vec<f32> = (0..rows * c).map(|_| logit(rng, extreme)).collect();
        let mut dense = vec![0.0f32; rows * c];
        for r in 0..rows {
            let raw: Vec<f64> = (0..c).map(|_| if rng.below(3) == 0 { 0.0 } else { rng.unif() }).collect();
            let tot: f64 = raw.iter().sum();
            for j in 0..c {
                dense[r * c + j] = if tot == 0.0 { (j == 0) as u8 as f32 } else { (raw[j] / tot) as f32 };
            }
        }
        let labels = (0..rows)
            .map(|_| match rng.below(8) {
                0 => IGNORE,
                1 => rng.pick(&[-1, c as i32, c as i32 + 3, i32::MIN, i32::MAX]),
                _ => rng.below(c) as i32,
            })
            .collect();
        let n = c - 1;
        let y = (0..rows)
            .map(|_| match rng.below(5) {
                0 => 0.0,
                1 => (n.min(1)) as f32,
                2 => (n.max(1) - 1) as f32,
                _ => {
                    let v = (rng.unif() * n as f64) as f32;
                    if v >= n as f32 {
                        0.5
                    } else {
                        v
                    }
                }
            })
            .collect();
        let alpha = if rng.below(2) == 0 { vec![] } else { (0..c).map(|_| (0.05 + rng.unif()) as f32).collect() };
        let rw = if rng.below(2) == 0 { None } else { Some((0..rows).map(|_| (rng.unif() * 2.0) as f32).collect()) };
        Case {
            rows,
            c,
            x,
            kind,
            dense,
            labels,
            eps: rng.pick(&[0.0f32, 0.1, 1.0]),
            y,
            alpha,
            gamma: rng.pick(&[0.0f32, 0.5, 1.0, 2.0, 3.0]),
            rw,
        }
    }

    /// |got - want| / max(1, |want|).
    fn err(got: f32, want: f64) -> f64 {
        ((got as f64) - want).abs() / want.abs().max(1.0)
    }

    #[test]
    fn matches_f64_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut worst_loss, mut worst_grad, mut worst_sum) = (0.0f64, 0.0f64, 0.0f64);
        let mut checked = 0usize;
        for trial in 0..3000 {
            let kind = [Kind::Dense, Kind::Smoothed, Kind::TwoHot][trial % 3];
            let cs = random_case(&mut rng, kind);
            let (rows, c) = (cs.rows, cs.c);
            let (ls, gs) = (0.5f32, 0.25f32);
            let mut loss = vec![7.0f32; rows];
            let mut grad = vec![7.0f32; rows * c];
            let s = cs.run(Some((&mut loss, ls)), Some((&mut grad, gs)));
            let a = cs.a64();
            let mut want_sum = 0.0;
            let mut counted = 0;
            for r in 0..rows {
                let t = match cs.t64(r) {
                    Some(t) => t,
                    None => {
                        assert_eq!(loss[r], 0.0);
                        assert!(grad[r * c..(r + 1) * c].iter().all(|&v| v == 0.0));
                        continue;
                    }
                };
                counted += 1;
                let (l, gr) = reference(&cs.x[r * c..(r + 1) * c], &t, &a, cs.gamma as f64);
                let w = cs.w(r);
                want_sum += w * l;
                let el = err(loss[r], l * w * ls as f64);
                worst_loss = worst_loss.max(el);
                assert!(el <= 1e-5, "{:?} c={c} γ={} ε={} row {r}: {} vs {}", cs.kind, cs.gamma, cs.eps, loss[r], l * w * ls as f64);
                for j in 0..c {
                    let want = gr[j] * w * gs as f64;
                    let e = err(grad[r * c + j], want);
                    worst_grad = worst_grad.max(e);
                    assert!(e <= 1e-5, "{:?} c={c} γ={} ε={} grad ({r},{j}): {} vs {want}", cs.kind, cs.gamma, cs.eps, grad[r * c + j]);
                }
                checked += 1;
            }
            assert_eq!(s.rows, counted);
            let es = if want_sum == 0.0 { s.sum.abs() } else { (s.sum - want_sum).abs() / want_sum.abs() };
            worst_sum = worst_sum.max(es);
            assert!(es <= 1e-5, "sum {} vs {want_sum}", s.sum);
        }
        println!("soft: {checked} rows; worst error / max(1,|ref|): loss {worst_loss:.2e}, grad {worst_grad:.2e}; sum rel {worst_sum:.2e}");
    }

    #[test]
    fn outputs_are_independent() {
        let mut rng = Rng(12345);
        for trial in 0..300 {
            let cs = random_case(&mut rng, [Kind::Dense, Kind::Smoothed, Kind::TwoHot][trial % 3]);
            let (rows, c) = (cs.rows, cs.c);
            let mut l1 = vec![0.0f32; rows];
            let mut g1 = vec![0.0f32; rows * c];
            let s1 = cs.run(Some((&mut l1, 1.0)), Some((&mut g1, 1.0)));
            let mut l2 = vec![0.0f32; rows];
            let s2 = cs.run(Some((&mut l2, 1.0)), None);
            let mut g3 = vec![0.0f32; rows * c];
            let s3 = cs.run(None, Some((&mut g3, 1.0)));
            let s4 = cs.run(None, None);
            assert_eq!(l1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), l2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            assert_eq!(g1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), g3.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            for s in [&s2, &s3, &s4] {
                assert_eq!(s.sum.to_bits(), s1.sum.to_bits());
                assert_eq!(s.rows, s1.rows);
            }
        }
    }

    #[test]
    fn gradient_by_finite_differences() {
        let mut rng = Rng(777);
        let mut worst_ref = 0.0f64;
        let mut worst_kernel = 0.0f64;
        let mut n = 0;
        for trial in 0..600 {
            let mut cs = random_case(&mut rng, [Kind::Dense, Kind::Smoothed, Kind::TwoHot][trial % 3]);
            // Moderate logits: finite differences need a smooth neighbourhood (no p_j at 1).
            for v in cs.x.iter_mut() {
                *v = ((rng.unif() - 0.5) * 6.0) as f32;
            }
            let (rows, c) = (cs.rows, cs.c);
            let mut grad = vec![0.0f32; rows * c];
            cs.run(None, Some((&mut grad, 1.0)));
            let a = cs.a64();
            for r in 0..rows {
                let t = match cs.t64(r) {
                    Some(t) => t,
                    None => continue,
                };
                let w = cs.w(r);
                let xr = &cs.x[r * c..(r + 1) * c];
                let (_, gr) = reference(xr, &t, &a, cs.gamma as f64);
                let mut x64: Vec<f64> = xr.iter().map(|&v| v as f64).collect();
                for k in 0..c {
                    let h = 1e-5;
                    let x0 = x64[k];
                    x64[k] = x0 + h;
                    let lp = ref_loss(&x64, &t, &a, cs.gamma as f64);
                    x64[k] = x0 - h;
                    let lm = ref_loss(&x64, &t, &a, cs.gamma as f64);
                    x64[k] = x0;
                    let fd = (lp - lm) / (2.0 * h);
                    let er = (gr[k] - fd).abs() / fd.abs().max(1.0);
                    worst_ref = worst_ref.max(er);
                    assert!(er <= 1e-7, "reference vs fd: {:?} γ={} ({r},{k}): {} vs {fd}", cs.kind, cs.gamma, gr[k]);
                    let ek = err(grad[r * c + k], fd * w);
                    worst_kernel = worst_kernel.max(ek);
                    assert!(ek <= 1e-5, "kernel vs fd: {:?} γ={} ({r},{k}): {} vs {}", cs.kind, cs.gamma, grad[r * c + k], fd * w);
                    n += 1;
                }
            }
        }
        println!("fd: {n} partials; worst reference-vs-fd {worst_ref:.2e}, kernel-vs-fd {worst_kernel:.2e}");
    }

    /// Smoothed with ε = 0 is the one-hot kernel of focal::softmax, within 1e-6 relative.
    #[test]
    fn eps_zero_is_the_one_hot_kernel() {
        let mut rng = Rng(4242);
        let mut worst = 0.0f64;
        for _ in 0..1500 {
            let mut cs = random_case(&mut rng, Kind::Smoothed);
            cs.eps = 0.0;
            cs.rw = None;
            let (rows, c) = (cs.rows, cs.c);
            let alpha = if cs.alpha.is_empty() { vec![1.0; c] } else { cs.alpha.clone() };
            let (mut l1, mut g1) = (vec![0.0f32; rows], vec![0.0f32; rows * c]);
            let (mut l2, mut g2) = (vec![0.0f32; rows], vec![0.0f32; rows * c]);
            let s1 = cs.run(Some((&mut l1, 0.5)), Some((&mut g1, 0.25)));
            let p = Params { num_classes: c, alpha: &alpha, gamma: cs.gamma, ignore_index: IGNORE };
            let s2 = softmax_focal(&cs.x, &cs.labels, &p, Some((&mut l2, 0.5)), Some((&mut g2, 0.25)));
            assert_eq!(s1.rows, s2.rows);
            let rel = |a: f32, b: f32| {
                let d = (a as f64 - b as f64).abs();
                if d <= 1e-37 {
                    0.0
                } else {
                    d / (a.abs().max(b.abs()) as f64)
                }
            };
            for (a, b) in l1.iter().zip(&l2).chain(g1.iter().zip(&g2)) {
                let e = rel(*a, *b);
                worst = worst.max(e);
                assert!(e <= 1e-6, "γ={} c={c}: {a} vs {b}", cs.gamma);
            }
            assert!((s1.sum - s2.sum).abs() <= 1e-6 * s2.sum.abs());
        }
        println!("ε = 0 vs softmax_focal: worst relative difference {worst:.2e}");
    }

    /// A dense one-hot row and a label with ε = 0 give the same bits.
    #[test]
    fn dense_one_hot_is_smoothed_eps_zero() {
        let mut rng = Rng(99);
        for _ in 0..300 {
            let mut cs = random_case(&mut rng, Kind::Smoothed);
            cs.eps = 0.0;
            let (rows, c) = (cs.rows, cs.c);
            for r in 0..rows {
                let y = cs.labels[r];
                if y < 0 || y as usize >= c {
                    cs.labels[r] = 0;
                }
                for j in 0..c {
                    cs.dense[r * c + j] = (j as i32 == cs.labels[r]) as u8 as f32;
                }
            }
            let (mut l1, mut g1) = (vec![0.0f32; rows], vec![0.0f32; rows * c]);
            let s1 = cs.run(Some((&mut l1, 1.0)), Some((&mut g1, 1.0)));
            cs.kind = Kind::Dense;
            let (mut l2, mut g2) = (vec![0.0f32; rows], vec![0.0f32; rows * c]);
            let s2 = cs.run(Some((&mut l2, 1.0)), Some((&mut g2, 1.0)));
            assert_eq!(s1.sum.to_bits(), s2.sum.to_bits());
            assert!(l1.iter().zip(&l2).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// Two-hot at γ = 0, α = 1 is SPEC §9's Distribution Focal Loss.
    #[test]
    fn two_hot_gamma_zero_is_dfl() {
        let mut rng = Rng(2024);
        let mut worst = 0.0f64;
        for _ in 0..1500 {
            let mut cs = random_case(&mut rng, Kind::TwoHot);
            cs.gamma = 0.0;
            cs.alpha.clear();
            let (rows, c) = (cs.rows, cs.c);
            let (mut loss, mut grad) = (vec![0.0f32; rows], vec![0.0f32; rows * c]);
            let s = cs.run(Some((&mut loss, 1.0)), Some((&mut grad, 1.0)));
            assert_eq!(s.rows, rows as u64);
            let mut want_sum = 0.0;
            for r in 0..rows {
                let x: Vec<f64> = cs.x[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
                let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                // ln Σ e^(x − m) as log1p of the terms but one at the max: a confident row's
                // loss of 1e-26 is not 0 (1 + 1e-26 is 1 in f64, so `ln` of the sum was).
                let top = x.iter().position(|&v| v == m).unwrap();
                let ls = x.iter().enumerate().filter(|&(j, _)| j != top).map(|(_, v)| (v - m).exp()).sum::<f64>().ln_1p();
                let ce = |k: usize| ls - (x[k] - m);
                let y = cs.y[r] as f64;
                let l = y.floor() as usize;
                let (wl, wr) = (l as f64 + 1.0 - y, y - l as f64);
                let want = wl * ce(l) + if wr > 0.0 { wr * ce(l + 1) } else { 0.0 };
                let w = cs.w(r);
                want_sum += w * want;
                let e = err(loss[r], w * want);
                worst = worst.max(e);
                assert!(e <= 1e-5, "c={c} y={y}: {} vs {want}", loss[r]);
                for j in 0..c {
                    let p = (x[j] - m - ls).exp();
                    let g = w * (p - if j == l { wl } else { 0.0 } - if j == l + 1 { wr } else { 0.0 });
                    let e = err(grad[r * c + j], g);
                    worst = worst.max(e);
                    assert!(e <= 1e-5, "c={c} y={y} grad {j}: {} vs {g}", grad[r * c + j]);
                }
            }
            // Relative, down to f32's normal range (a row loss of 1e-51, a term e^-117, is 0 in f32).
            assert!((s.sum - want_sum).abs() <= 1e-5 * want_sum.abs() + f32::MIN_POSITIVE as f64, "rows {rows} c {c}: sum {} vs {want_sum}", s.sum);
        }
        println!("two-hot γ = 0 vs DFL: worst error {worst:.2e}");
    }

    #[test]
    fn nan_rows_and_out_of_range_targets() {
        let c = 6;
        let mut x: Vec<f32> = (0..4 * c).map(|i| (i % 5) as f32 - 2.0).collect();
        x[c + 2] = f32::NAN; // row 1
        let alpha: Vec<f32> = vec![];
        let run = |t: SoftRows, x: &[f32]| {
            let (mut l, mut g) = (vec![0.0f32; 4], vec![0.0f32; 4 * c]);
            let s = softmax_focal_soft(x, c, t, &alpha, 2.0, None, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
            (s, l, g)
        };
        let finite_row = |l: &[f32], g: &[f32], r: usize| l[r].is_finite() && g[r * c..(r + 1) * c].iter().all(|v| v.is_finite());
        let nan_row = |l: &[f32], g: &[f32], r: usize| l[r].is_nan() && g[r * c..(r + 1) * c].iter().all(|v| v.is_nan());

        let dense = vec![1.0 / c as f32; 4 * c];
        let (s, l, g) = run(SoftRows::Dense(&dense), &x);
        assert!(s.sum.is_nan() && s.rows == 4);
        assert!(nan_row(&l, &g, 1) && finite_row(&l, &g, 0) && finite_row(&l, &g, 2) && finite_row(&l, &g, 3));

        // Ignored and out-of-range labels: 0 even where the logits are NaN; not counted.
        for bad in [IGNORE, -1, c as i32, i32::MAX] {
            let labels = [0, bad, 3, bad];
            let (s, l, g) = run(SoftRows::Smoothed { labels: &labels, eps: 0.1, ignore_index: IGNORE }, &x);
            assert_eq!(s.rows, 2);
            assert!(s.sum.is_finite() && finite_row(&l, &g, 0) && finite_row(&l, &g, 2));
            for r in [1, 3] {
                assert_eq!(l[r], 0.0);
                assert!(g[r * c..(r + 1) * c].iter().all(|&v| v == 0.0));
            }
        }

        // Two-hot: y outside [0, n) is clamped, NaN makes its row NaN, nothing out of bounds.
        let xf: Vec<f32> = (0..4 * c).map(|i| (i % 5) as f32 - 2.0).collect();
        let n = (c - 1) as f32;
        let (_, l_end, g_end) = run(SoftRows::TwoHot(&[n, n, n, n]), &xf);
        for ys in [[-1.0, 1e9, f32::INFINITY, n + 0.5], [f32::NEG_INFINITY, n, -0.0, 1e30]] {
            let (s, l, g) = run(SoftRows::TwoHot(&ys), &xf);
            assert_eq!(s.rows, 4);
            for r in 0..4 {
                assert!(finite_row(&l, &g, r));
                if ys[r] >= n {
                    assert_eq!(l[r], l_end[r]);
                    assert_eq!(&g[r * c..(r + 1) * c], &g_end[r * c..(r + 1) * c]);
                }
            }
        }
        let (s, l, g) = run(SoftRows::TwoHot(&[0.5, f32::NAN, 1.0, 2.5]), &xf);
        assert!(s.sum.is_nan() && nan_row(&l, &g, 1) && finite_row(&l, &g, 0) && finite_row(&l, &g, 3));

        // One class: loss 0 and gradient 0 for every source; two-hot clamps into the row.
        let x1 = [3.0f32, -1e4, 88.0];
        for t in [SoftRows::Dense(&[1.0, 1.0, 1.0]), SoftRows::TwoHot(&[0.0, 0.7, -2.0])] {
            let (mut l, mut g) = (vec![9.0f32; 3], vec![9.0f32; 3]);
            let s = softmax_focal_soft(&x1, 1, t, &[], 0.5, None, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
            assert_eq!((s.sum, s.rows), (0.0, 3));
            assert!(l.iter().chain(&g).all(|&v| v == 0.0));
        }
        // No classes: nothing to do.
        let s = softmax_focal_soft(&[], 0, SoftRows::TwoHot(&[0.5]), &[], 2.0, None, None, None);
        assert_eq!((s.sum, s.rows), (0.0, 0));
    }

    /// A class at -inf: no term unless it is targeted (0·log 0 is 0 here, as in PyTorch).
    #[test]
    fn untargeted_minus_infinity() {
        let x = [1.0f32, f32::NEG_INFINITY, -2.0, 0.5, f32::NEG_INFINITY];
        let t = [0.25f32, 0.0, 0.5, 0.25, 0.0];
        for gamma in [0.0f32, 0.5, 1.0, 2.0, 3.0] {
            let (mut l, mut g) = ([0.0f32], [0.0f32; 5]);
            let s = softmax_focal_soft(&x, 5, SoftRows::Dense(&t), &[], gamma, None, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
            let (want, wg) = reference(&x, &t.map(|v| v as f64), &[1.0; 5], gamma as f64);
            assert!(err(l[0], want) <= 1e-6 && (s.sum - want).abs() <= 1e-6 * want);
            for j in 0..5 {
                assert!(err(g[j], wg[j]) <= 1e-6, "γ={gamma} {j}: {} vs {}", g[j], wg[j]);
            }
            assert_eq!((g[1], g[4]), (0.0, 0.0));
        }
    }
}
