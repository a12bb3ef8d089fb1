//! Softmax (multi-class) focal loss, docs/SPEC.md §2 (kornia `focal_loss`), with its gradient.
//!
//! Rows of an `[N, C]` logit matrix, lanes across the classes. Numerics, per row:
//! - `s = Σ_j exp(x_j - m)` with `m` the row max, summed in f64; the max's own term is exactly 1,
//!   so `log p_y = (x_y - m) - log1p(s - 1)` keeps full relative accuracy as p_y → 1;
//! - `1 - p_y = (s - e_y) / s`, again without forming `1 - p_y` by cancellation, because the
//!   modulating factor `(1 - p_y)^γ` needs it accurate exactly where it is small.
//! With a gradient asked for, the first pass parks `exp(x_j - m)` in the gradient row and the
//! second pass scales it in place, so no exp is computed twice.

use super::{with_focusing, Focusing, Poly1};
use crate::math;
use crate::simd::{F32x4, I32x4, SumF64};

pub struct Params<'a> {
    pub num_classes: usize,
    /// Per-class α, length `num_classes` (a single α or none are expanded by the caller).
    pub alpha: &'a [f32],
    pub gamma: f32,
    pub ignore_index: i32,
}

pub struct Summary {
    /// Σ of the unscaled per-row losses, in f64.
    pub sum: f64,
    /// Rows that count towards the mean (label not ignored).
    pub rows: u64,
}

/// Softmax focal loss over `x` (`[N, C]` row-major, N = labels.len()).
///
/// `loss_out` (per row, reduction `none`) and `grad_out` (per element) with their scales.
/// Labels outside `[0, C)` other than `ignore_index` are skipped like ignored ones (the
/// TypeScript layer rejects them before calling).
pub fn softmax_focal(
    x: &[f32],
    labels: &[i32],
    p: &Params,
    loss_out: Option<(&mut [f32], f32)>,
    grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    with_focusing!(p.gamma, g => run(x, labels, p, g, loss_out, grad_out))
}

#[inline(always)]
pub(crate) fn lane0(v: F32x4) -> f32 {
    v.to_array()[0]
}

#[inline(always)]
pub(crate) fn row_max(row: &[f32]) -> f32 {
    let c = row.len();
    let mut m = F32x4::splat(f32::NEG_INFINITY);
    let mut j = 0;
    while j < c {
        let len = (c - j).min(4);
        m = m.max(unsafe { F32x4::load_partial(row.as_ptr().add(j), len, f32::NEG_INFINITY) });
        j += 4;
    }
    let a = m.to_array();
    if a.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    a[0].max(a[1]).max(a[2].max(a[3]))
}

/// Σ_j exp(x_j - m), in f64; optionally leaves the exps in `park`.
///
/// The terms at the max (d = 0, each exactly 1) are counted apart from the rest: added into the
/// same f32 lane as 1, the small terms of a confident row lost their low bits, and `s − 1`, all
/// that `log p_y` and `1 − p_y` depend on there, was off by up to 1% (x = [12, 0.5, 0, 0, 0]).
#[inline(always)]
pub(crate) fn row_exp_sum(row: &[f32], m: f32, park: Option<&mut [f32]>) -> f64 {
    let (at_max, rest) = row_exp_sum_parts(row, m, park);
    at_max + rest
}

/// [`row_exp_sum`] as the count of terms at the max and the sum of the rest, for callers that
/// need `s − 1` to keep its relative accuracy past f64's (a row whose terms besides the max are
/// all below 1e-11).
#[inline(always)]
pub(crate) fn row_exp_sum_parts(row: &[f32], m: f32, park: Option<&mut [f32]>) -> (f64, f64) {
    let c = row.len();
    let mv = F32x4::splat(m);
    let mut s = SumF64::new();
    // Minus the count of terms at the max, per lane (a mask is -1 where set): two integer ops
    // per vector, cheaper than selects.
    let mut at_max = I32x4::splat(0);
    let park = park.map(|p| p.as_mut_ptr());
    let mut j = 0;
    while j < c {
        let len = (c - j).min(4);
        // Padding -inf gives exp(-inf) = 0: no contribution.
        let xv = unsafe { F32x4::load_partial(row.as_ptr().add(j), len, f32::NEG_INFINITY) };
        let d = xv - mv;
        let e = math::exp(d);
        let top = I32x4::from_mask(d.eq(F32x4::ZERO));
        s.add(F32x4::from_bits(e.to_bits().and_not(top)));
        at_max = at_max.add(top);
        if let Some(pp) = park {
            unsafe { e.store_partial(pp.add(j), len) };
        }
        j += 4;
    }
    let t = at_max.to_array();
    (-((t[0] + t[1]) + (t[2] + t[3])) as f64, s.total())
}

// Not inlined: each (γ path, gradient) variant stays its own wasm function, so an engine
// optimizes just the variants in use, and each quickly (V8 tiers up per function, and one
// function holding every variant takes its optimizing compiler seconds).
#[inline(never)]
fn run<G: Focusing>(
    x: &[f32],
    labels: &[i32],
    p: &Params,
    g: G,
    mut loss_out: Option<(&mut [f32], f32)>,
    mut grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    let c = p.num_classes;
    let mut sum = 0.0f64;
    let mut rows = 0u64;
    if c == 0 {
        return Summary { sum, rows };
    }
    for (r, &y) in labels.iter().enumerate() {
        let row = &x[r * c..(r + 1) * c];
        let skip = y == p.ignore_index || y < 0 || y as usize >= c;
        if skip {
            if let Some((go, _)) = grad_out.as_mut() {
                go[r * c..(r + 1) * c].iter_mut().for_each(|v| *v = 0.0);
            }
            if let Some((lo, _)) = loss_out.as_mut() {
                lo[r] = 0.0;
            }
            continue;
        }
        rows += 1;
        let y = y as usize;
        let m = row_max(row);
        let park = grad_out.as_mut().map(|(go, _)| &mut go[r * c..(r + 1) * c]);
        let s = row_exp_sum(row, m, park);
        let d = F32x4::splat(row[y] - m);
        let e_y = lane0(math::exp(d)) as f64;
        let log_p = lane0(d - math::log1p(F32x4::splat((s - 1.0) as f32)));
        let omp = ((s - e_y) / s) as f32;
        let p_y = (e_y / s) as f32;
        let (pw, dpw) = g.factors(F32x4::splat(omp));
        let (pw, dpw) = (lane0(pw), lane0(dpw));
        let a_y = p.alpha[y];
        let loss = poly_add(g, -a_y * pw * log_p, g.eps(), pw * omp);
        sum += loss as f64;
        if let Some((lo, k)) = loss_out.as_mut() {
            lo[r] = loss * *k;
        }
        if let Some((go, k)) = grad_out.as_mut() {
            // d loss/dx_j = a_y·K·(p_j - δ_jy), K = (1-p_y)^γ - γ(1-p_y)^(γ-1)·p_y·log p_y.
            let kk = poly_add(g, a_y * (pw - dpw * p_y * log_p), g.eps_g1() * pw, p_y) * *k;
            let scale = F32x4::splat(kk * (1.0 / s) as f32);
            let gr = &mut go[r * c..(r + 1) * c];
            let mut j = 0;
            while j < c {
                let len = (c - j).min(4);
                unsafe {
                    let e = F32x4::load_partial(gr.as_ptr().add(j), len, 0.0);
                    (e * scale).store_partial(gr.as_mut_ptr().add(j), len);
                }
                j += 4;
            }
            // p_y - 1 = -(1 - p_y), taken from the accurate form rather than e_y/s - 1.
            gr[y] = -kk * omp;
        }
    }
    Summary { sum, rows }
}

/// `v + k·term` with Poly-1 (`G::POLY`), `v` itself otherwise and where ε = 0 (where the sum
/// could turn a -0 loss, at p_y = 1, into +0): so ε = 0 gives the plain loss bit for bit.
///
/// `run` calls this on the lines that had the plain expressions, adding none: its bounds checks'
/// panic locations (line and column, in the module's data) and so the core module stay the same.
/// In `run`: the loss gains `ε·(1-p_y)^(γ+1)`, and the gradient's coefficient of `p_j - δ_jy`
/// gains `ε(γ+1)·(1-p_y)^γ·p_y` (SPEC §6: `-ε(γ+1)·q^γ·p_y·(δ_jy - p_j)`).
#[inline(always)]
fn poly_add<G: Focusing>(g: G, v: f32, k: f32, term: f32) -> f32 {
    if G::POLY && g.eps() != 0.0 {
        v + k * term
    } else {
        v
    }
}

/// Poly-1 softmax focal loss, docs/SPEC.md §6 (the extras module): [`softmax_focal`]'s row loss
/// plus `ε·(1 - p_y)^(γ+1)` (α_y on the focal term only), and its gradient, row j gaining
/// `ε(γ+1)·(1 - p_y)^γ·p_y·(p_j - δ_jy)`. Ignored rows stay 0, loss and gradient; a caller's row
/// weights multiply the whole row loss, as for [`softmax_focal`]. ε = 0 gives [`softmax_focal`]'s
/// results bit for bit.
pub fn softmax_focal_poly(
    x: &[f32],
    labels: &[i32],
    p: &Params,
    eps: f32,
    loss_out: Option<(&mut [f32], f32)>,
    grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    with_focusing!(p.gamma, g => run(x, labels, p, Poly1::new(g, p.gamma, eps), loss_out, grad_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(row: &[f64], y: usize, a: f64, gamma: f64) -> (f64, Vec<f64>) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        let p: Vec<f64> = row.iter().map(|v| (v - m).exp() / s).collect();
        let logp = (row[y] - m) - s.ln();
        let omp = 1.0 - p[y];
        let loss = -a * omp.powf(gamma) * logp;
        let k = omp.powf(gamma) - if omp == 0.0 { 0.0 } else { gamma * omp.powf(gamma - 1.0) * p[y] * logp };
        let grad = (0..row.len()).map(|j| a * k * (p[j] - if j == y { 1.0 } else { 0.0 })).collect();
        (loss, grad)
    }

    /// A confident row: its loss is tiny and depends on `s − 1` only. Before the max's terms were
    /// counted apart (`row_exp_sum`), the small terms sharing the max's f32 lane lost their low
    /// bits: 1.9e-3 relative error at C = 5.
    #[test]
    fn confident_rows_keep_relative_accuracy() {
        for c in 2..=21usize {
            for &top in &[8.0f32, 12.0, 16.0] {
                for &gamma in &[0.0f32, 1.0, 2.0, 1.5] {
                    let mut row = vec![0f32; c];
                    row[0] = top;
                    row[1 % c] = if c > 1 { 0.5 } else { top };
                    for y in [0, c - 1] {
                        let p = Params { num_classes: c, alpha: &[0.25f32; 21][..c], gamma, ignore_index: -100 };
                        let (mut l, mut g) = (vec![0f32; 1], vec![0f32; c]);
                        let sm = softmax_focal(&row, &[y as i32], &p, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
                        let r64: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                        let (want, wg) = reference(&r64, y, 0.25, gamma as f64);
                        assert!((sm.sum - want).abs() <= 1e-5 * want.abs(), "c {c} top {top} γ {gamma} y {y}: {} vs {want}", sm.sum);
                        for (a, b) in g.iter().zip(&wg) {
                            assert!((*a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0), "grad {a} vs {b}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn matches_f64_reference() {
        for &c in &[1usize, 2, 3, 4, 5, 7, 8, 9, 21] {
            for &gamma in &[0.0f32, 0.5, 1.0, 2.0, 3.3] {
                let n = 13;
                let x: Vec<f32> = (0..n * c).map(|i| (((i * 7919) % 61) as f32 - 30.0) * 0.37).collect();
                let labels: Vec<i32> = (0..n).map(|r| if r == 5 { -100 } else { ((r * 3) % c) as i32 }).collect();
                let alpha: Vec<f32> = (0..c).map(|j| 0.1 + 0.8 * j as f32 / c as f32).collect();
                let mut loss = vec![0.0f32; n];
                let mut grad = vec![9.0f32; n * c];
                let p = Params { num_classes: c, alpha: &alpha, gamma, ignore_index: -100 };
                let s = softmax_focal(&x, &labels, &p, Some((&mut loss, 1.0)), Some((&mut grad, 1.0)));
                assert_eq!(s.rows, (n - 1) as u64);
                for r in 0..n {
                    if labels[r] < 0 {
                        assert_eq!(loss[r], 0.0);
                        assert!(grad[r * c..(r + 1) * c].iter().all(|&v| v == 0.0));
                        continue;
                    }
                    let row: Vec<f64> = x[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
                    let y = labels[r] as usize;
                    let (l, gr) = reference(&row, y, alpha[y] as f64, gamma as f64);
                    assert!((loss[r] as f64 - l).abs() <= 2e-6 * l.abs().max(1.0), "c={c} γ={gamma} row {r}: {} vs {l}", loss[r]);
                    for j in 0..c {
                        let got = grad[r * c + j] as f64;
                        assert!((got - gr[j]).abs() <= 2e-6 * gr[j].abs().max(1.0), "grad c={c} γ={gamma} ({r},{j}): {got} vs {}", gr[j]);
                    }
                }
            }
        }
    }
}

/// Poly-1 (docs/SPEC.md §6): ε = 0 against the plain kernel bit for bit, ε ≠ 0 against a float64
/// reference and finite differences; ignored rows, per-class α, every γ path.
#[cfg(test)]
mod poly_tests {
    use super::*;

    /// A small deterministic generator (an LCG's high bits), uniform in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `rows` rows of `c` logits in [-8, 8], labels with ignored (-100) and out-of-range ones, and
    /// rows where the label's logit dominates (p_y = 1 exactly: a -0 loss); with `special`, some
    /// logits -∞, +∞ or NaN.
    fn batch(rng: &mut Rng, rows: usize, c: usize, special: bool) -> (Vec<f32>, Vec<i32>, Vec<f32>) {
        let mut x: Vec<f32> = (0..rows * c).map(|_| (rng.next() * 16.0 - 8.0) as f32).collect();
        let labels: Vec<i32> = (0..rows)
            .map(|_| {
                let r = rng.next();
                if r < 0.15 {
                    -100
                } else if r < 0.2 {
                    c as i32
                } else {
                    (rng.next() * c as f64) as i32
                }
            })
            .collect();
        for r in 0..rows {
            if labels[r] >= 0 && (labels[r] as usize) < c && rng.next() < 0.2 {
                x[r * c + labels[r] as usize] = 200.0;
            }
        }
        if special {
            for v in x.iter_mut() {
                if rng.next() < 0.05 {
                    *v = [f32::NEG_INFINITY, f32::INFINITY, f32::NAN][(rng.next() * 3.0) as usize];
                }
            }
        }
        let alpha = (0..c).map(|j| 0.1 + 0.8 * j as f32 / c as f32).collect();
        (x, labels, alpha)
    }

    /// (Σ, rows, loss, grad); `eps` None is the plain kernel. `outs`: bit 1 loss, bit 0 grad.
    fn call(x: &[f32], labels: &[i32], alpha: &[f32], gamma: f32, eps: Option<f32>, outs: usize) -> (f64, u64, Vec<f32>, Vec<f32>) {
        let c = alpha.len();
        let (mut l, mut g) = (vec![7.0f32; labels.len()], vec![7.0f32; labels.len() * c]);
        let p = Params { num_classes: c, alpha, gamma, ignore_index: -100 };
        let lo = if outs & 2 != 0 { Some((&mut l[..], 0.5)) } else { None };
        let go = if outs & 1 != 0 { Some((&mut g[..], 2.0)) } else { None };
        let s = match eps {
            None => softmax_focal(x, labels, &p, lo, go),
            Some(e) => softmax_focal_poly(x, labels, &p, e, lo, go),
        };
        (s.sum, s.rows, l, g)
    }

    fn same_bits(a: &[f32], b: &[f32], what: &str) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{what}[{i}]: {x:e} vs {y:e}");
        }
    }

    const CLASSES: [usize; 10] = [1, 2, 3, 4, 5, 7, 8, 9, 21, 80];

    #[test]
    fn eps_zero_is_the_plain_kernel_bit_for_bit() {
        let mut rng = Rng(11);
        let mut calls = 0;
        for c in CLASSES {
            for rows in 1..=12 {
                for special in [false, true] {
                    let (x, labels, alpha) = batch(&mut rng, rows, c, special);
                    for gamma in [0.0f32, 1.0, 2.0, 1.5] {
                        for outs in 0..4 {
                            let (s0, n0, l0, g0) = call(&x, &labels, &alpha, gamma, None, outs);
                            for eps in [0.0f32, -0.0] {
                                let (s1, n1, l1, g1) = call(&x, &labels, &alpha, gamma, Some(eps), outs);
                                let what = format!("C={c} rows={rows} γ={gamma} outs={outs} ε={eps}");
                                assert!(s0.to_bits() == s1.to_bits() || (s0.is_nan() && s1.is_nan()), "{what}: Σ {s0:e} vs {s1:e}");
                                assert_eq!(n0, n1);
                                same_bits(&l0, &l1, &format!("{what} loss"));
                                same_bits(&g0, &g1, &format!("{what} grad"));
                                calls += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(calls, 10 * 12 * 2 * 4 * 4 * 2);
    }

    /// §6 in f64 for one row: (loss, d loss/dx_j).
    fn reference(row: &[f64], y: usize, a: f64, gamma: f64, eps: f64) -> (f64, Vec<f64>) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / s).collect();
        let logp = (row[y] - m) - s.ln();
        // 1 - p_y without cancellation.
        let q = (s - e[y]) / s;
        let loss = -a * q.powf(gamma) * logp + eps * q.powf(gamma + 1.0);
        let k = q.powf(gamma) - if q == 0.0 { 0.0 } else { gamma * q.powf(gamma - 1.0) * p[y] * logp };
        let kp = eps * (gamma + 1.0) * q.powf(gamma) * p[y];
        let grad = (0..row.len()).map(|j| (a * k + kp) * (p[j] - if j == y { 1.0 } else { 0.0 })).collect();
        (loss, grad)
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-5 * want.abs().max(1.0)
    }

    #[test]
    fn eps_matches_the_f64_reference() {
        let mut rng = Rng(12);
        let mut checked = 0u64;
        for c in CLASSES {
            for rows in [1usize, 2, 3, 5, 13, 40] {
                let (x, labels, alpha) = batch(&mut rng, rows, c, false);
                for gamma in [0.0f32, 1.0, 2.0, 1.5, 0.5, 3.3] {
                    for eps in [-1.0f32, 0.5, 2.0, 1e3] {
                        let (s, n, l, g) = call(&x, &labels, &alpha, gamma, Some(eps), 3);
                        let (mut want, mut abs, mut counted) = (0.0, 0.0, 0);
                        for r in 0..rows {
                            let what = format!("C={c} row {r} γ={gamma} ε={eps}");
                            let y = labels[r];
                            if y < 0 || y as usize >= c {
                                assert_eq!(l[r], 0.0, "{what}");
                                assert!(g[r * c..(r + 1) * c].iter().all(|&v| v == 0.0), "{what}");
                                continue;
                            }
                            counted += 1;
                            let row: Vec<f64> = x[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
                            let (rl, rg) = reference(&row, y as usize, alpha[y as usize] as f64, gamma as f64, eps as f64);
                            want += rl;
                            abs += rl.abs();
                            assert!(close(l[r] as f64 / 0.5, rl), "{what}: loss {} vs {rl}", l[r] / 0.5);
                            for j in 0..c {
                                let got = g[r * c + j] as f64 / 2.0;
                                assert!(close(got, rg[j]), "{what} class {j}: grad {got} vs {}", rg[j]);
                                checked += 1;
                            }
                        }
                        assert_eq!(n, counted);
                        assert!((s - want).abs() <= 1e-5 * abs.max(1.0), "C={c} γ={gamma} ε={eps}: Σ {s} vs {want}");
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    /// The reference's gradient, and the kernel's, against central differences of the
    /// reference's loss, logit by logit.
    #[test]
    fn gradient_is_the_finite_difference_of_the_reference() {
        let mut rng = Rng(13);
        let mut checked = 0;
        for c in [1usize, 2, 3, 5, 8] {
            for k in 0..60 {
                let (x, _, alpha) = batch(&mut rng, 1, c, false);
                let y = k % c;
                let gamma = [0.0f32, 1.0, 2.0, 1.5, 0.5][k % 5];
                let eps = [-1.0f32, 0.5, 2.0, 1e3][k % 4];
                let row: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let (a, gf, ef) = (alpha[y] as f64, gamma as f64, eps as f64);
                let (_, rg) = reference(&row, y, a, gf, ef);
                let (_, _, _, g) = call(&x, &[y as i32], &alpha, gamma, Some(eps), 1);
                for j in 0..c {
                    let h = 1e-5 * row[j].abs().max(1.0);
                    let at = |d: f64| {
                        let mut r = row.clone();
                        r[j] += d;
                        reference(&r, y, a, gf, ef).0
                    };
                    let fd = (at(h) - at(-h)) / (2.0 * h);
                    let tol = 1e-5 * fd.abs().max(1.0);
                    assert!((rg[j] - fd).abs() <= tol, "C={c} y={y} j={j} γ={gamma} ε={eps}: reference {} vs fd {fd}", rg[j]);
                    assert!((g[j] as f64 / 2.0 - fd).abs() <= tol, "C={c} y={y} j={j} γ={gamma} ε={eps}: kernel {} vs fd {fd}", g[j] / 2.0);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 60 * (1 + 2 + 3 + 5 + 8));
    }
}
