//! Softmax (multi-class) focal loss, docs/SPEC.md §2 (kornia `focal_loss`), with its gradient.
//!
//! Rows of an `[N, C]` logit matrix, lanes across the classes. Numerics, per row:
//! - `s = Σ_j exp(x_j - m)` with `m` the row max, summed in f64; the max's own term is exactly 1,
//!   so `log p_y = (x_y - m) - log1p(s - 1)` keeps full relative accuracy as p_y → 1;
//! - `1 - p_y = (s - e_y) / s`, again without forming `1 - p_y` by cancellation, because the
//!   modulating factor `(1 - p_y)^γ` needs it accurate exactly where it is small.
//! With a gradient asked for, the first pass parks `exp(x_j - m)` in the gradient row and the
//! second pass scales it in place, so no exp is computed twice.

use super::{with_focusing, Focusing};
use crate::math;
use crate::simd::{F32x4, SumF64};

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
#[inline(always)]
pub(crate) fn row_exp_sum(row: &[f32], m: f32, park: Option<&mut [f32]>) -> f64 {
    let c = row.len();
    let mv = F32x4::splat(m);
    let mut s = SumF64::new();
    let park = park.map(|p| p.as_mut_ptr());
    let mut j = 0;
    while j < c {
        let len = (c - j).min(4);
        // Padding -inf gives exp(-inf) = 0: no contribution.
        let xv = unsafe { F32x4::load_partial(row.as_ptr().add(j), len, f32::NEG_INFINITY) };
        let e = math::exp(xv - mv);
        s.add(e);
        if let Some(pp) = park {
            unsafe { e.store_partial(pp.add(j), len) };
        }
        j += 4;
    }
    s.total()
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
        let loss = -a_y * pw * log_p;
        sum += loss as f64;
        if let Some((lo, k)) = loss_out.as_mut() {
            lo[r] = loss * *k;
        }
        if let Some((go, k)) = grad_out.as_mut() {
            // d loss/dx_j = a_y·K·(p_j - δ_jy), K = (1-p_y)^γ - γ(1-p_y)^(γ-1)·p_y·log p_y.
            let kk = a_y * (pw - dpw * p_y * log_p) * *k;
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
