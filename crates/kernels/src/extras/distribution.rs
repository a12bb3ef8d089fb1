//! Distribution Focal Loss (docs/SPEC.md §9), the fast path of [`super::soft`]'s two-hot rows at
//! γ = 0 without α: a row's loss is `ln Σ_j e^(x_j − m) − (w_l·d_l + w_r·d_r)` with `d = x − m`,
//! so the forward needs only the row's log-sum-exp (no per-class focal terms), and the gradient
//! is `p_j` less the two weights. The general soft kernel computes the same numbers with a
//! per-class focal factor it does not need here: 3–4× the time at the usual 17 bins.

use crate::focal::softmax::{lane0, row_exp_sum, row_max, Summary};
use crate::math;
use crate::simd::{F32x4, M32x4};

/// Rows of at most this many classes go four at a time through [`four_rows`] (DFL's usual row
/// is 17: `reg_max` 16); longer ones one at a time.
const MAX_BLOCK_CLASSES: usize = 32;

/// DFL over `x` (`[rows, n + 1]`, `c = n + 1`) with targets `y` (`[rows]`, in [0, n): clamped,
/// TypeScript rejects the rest). `row_weight` multiplies each row's loss and gradient row;
/// `loss_out` gets the rows' losses and `grad_out` the gradient, each times its scale. The
/// summary has Σ of the unscaled weighted row losses (f64) and the row count.
#[inline]
pub fn distribution_focal(
    x: &[f32],
    c: usize,
    y: &[f32],
    row_weight: Option<&[f32]>,
    mut loss_out: Option<(&mut [f32], f32)>,
    mut grad_out: Option<(&mut [f32], f32)>,
) -> Summary {
    let mut sum = 0.0f64;
    if c < 2 {
        return Summary { sum, rows: 0 };
    }
    let rows = y.len();
    assert!(x.len() >= rows * c);
    let mut r = 0;
    // The blocks' lanes, made once (zeroing 512 bytes per block cost more than it holds).
    let mut v = [F32x4::ZERO; MAX_BLOCK_CLASSES];
    if c <= MAX_BLOCK_CLASSES {
        while r + 4 <= rows {
            let grad = grad_out.as_mut().map(|(g, k)| (&mut g[r * c..(r + 4) * c], *k));
            let (ln_s, m) = four_rows(&x[r * c..(r + 4) * c], c, &mut v, grad, row_weight.map(|w| &w[r..r + 4]));
            for k in 0..4 {
                sum += finish_row(x, c, y, r + k, ln_s[k] as f64, m[k], row_weight, &mut loss_out, &mut grad_out);
            }
            r += 4;
        }
    }
    for r in r..rows {
        let row = &x[r * c..(r + 1) * c];
        let m = row_max(row);
        let mut grad = grad_out.as_mut().map(|(g, k)| (&mut g[r * c..(r + 1) * c], *k));
        let s = row_exp_sum(row, m, grad.as_mut().map(|(g, _)| &mut **g));
        // ln s from log1p(s − 1): s ≥ 1 (the max's own term), accurate as the row's max p → 1.
        let ln_s = lane0(math::log1p(F32x4::splat((s - 1.0) as f32)));
        if let Some((g, k)) = grad {
            let wk = row_weight.map_or(1.0, |rw| rw[r]) * k;
            let scale = F32x4::splat((1.0 / s) as f32 * wk);
            let mut j = 0;
            while j < c {
                let len = (c - j).min(4);
                unsafe { (F32x4::load_partial(g.as_ptr().add(j), len, 0.0) * scale).store_partial(g.as_mut_ptr().add(j), len) };
                j += 4;
            }
        }
        sum += finish_row(x, c, y, r, ln_s as f64, m, row_weight, &mut loss_out, &mut grad_out);
    }
    Summary { sum, rows: rows as u64 }
}

/// Row `r`'s loss from its max `m` and `ln s` (`s = Σ_j e^(x_j − m)`), weighted: written to `loss_out`,
/// returned; and the two targets' weights taken off its gradient row (which holds `p_j·w·k`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn finish_row(
    x: &[f32], c: usize, y: &[f32], r: usize, ln_s: f64, m: f32, row_weight: Option<&[f32]>,
    loss_out: &mut Option<(&mut [f32], f32)>, grad_out: &mut Option<(&mut [f32], f32)>,
) -> f64 {
    let n = c - 1;
    let row = &x[r * c..(r + 1) * c];
    let yr = y[r];
    // NaN fails both comparisons and stays NaN: its weights make the row NaN.
    let yc = if yr > n as f32 { n as f32 } else if yr < 0.0 { 0.0 } else { yr };
    let l = if yc >= 0.0 { (yc as usize).min(n - 1) } else { 0 };
    let (hl, hr) = ((l as f32 + 1.0) - yc, yc - l as f32);
    let w = row_weight.map_or(1.0, |rw| rw[r]);
    // -log p_j = ln s − (x_j − m).
    let (dl, dr) = ((row[l] - m) as f64, (row[l + 1] - m) as f64);
    let loss = (hl as f64 * (ln_s - dl) + hr as f64 * (ln_s - dr)) * w as f64;
    if let Some((lo, k)) = loss_out.as_mut() {
        lo[r] = loss as f32 * *k;
    }
    if let Some((g, k)) = grad_out.as_mut() {
        let wk = w * *k;
        g[r * c + l] -= hl * wk;
        g[r * c + l + 1] -= hr * wk;
    }
    loss
}

/// Four rows of `c` ≤ [`MAX_BLOCK_CLASSES`] classes, one per lane: no partial loads and no
/// horizontal sums per row, which dominate one-row-at-a-time code at 17 classes. Returns each
/// row's `ln s` and max; with `grad`, writes `p_j·w·k` to it.
#[inline(always)]
fn four_rows(x: &[f32], c: usize, v: &mut [F32x4; MAX_BLOCK_CLASSES], grad: Option<(&mut [f32], f32)>, w: Option<&[f32]>) -> ([f32; 4], [f32; 4]) {
    let mut m = F32x4::splat(f32::NEG_INFINITY);
    let x = &x[..4 * c];
    let (x0, x1, x2, x3) = (&x[..c], &x[c..2 * c], &x[2 * c..3 * c], &x[3 * c..]);
    for j in 0..c {
        let xj = F32x4::from_array([x0[j], x1[j], x2[j], x3[j]]);
        v[j] = xj;
        m = m.max(xj);
    }
    // Σ in f32 of at most 32 terms in [0, 1], those at the max (exactly 1) counted apart (see
    // `row_exp_sum`): `s − 1` stays accurate for a confident row.
    let mut rest = F32x4::ZERO;
    let mut at_max = F32x4::ZERO;
    for e in v.iter_mut().take(c) {
        // e^(x − m) as exp_neg(m − x), m − x ≥ 0: the cheaper exp (its floor of 2.7e-38 for
        // m − x > 86.5 is nothing next to the max's 1).
        let a = m - *e;
        *e = math::exp_neg(a);
        let top = a.eq(F32x4::ZERO);
        rest = rest + M32x4::select(top, F32x4::ZERO, *e);
        at_max = at_max + M32x4::select(top, F32x4::ONE, F32x4::ZERO);
    }
    // exp_neg gives NaN arguments its floor, not NaN: m − m carries a NaN or infinite max (a NaN
    // logit, +inf, or a row of -inf) into s, so that the row's loss and gradient are NaN.
    let s = at_max + rest + (m - m);
    if let Some((g, k)) = grad {
        let wk = match w {
            Some(w) => F32x4::from_array([w[0], w[1], w[2], w[3]]) * F32x4::splat(k),
            None => F32x4::splat(k),
        };
        let scale = wk / s;
        for (j, e) in v.iter().enumerate().take(c) {
            let p = (*e * scale).to_array();
            g[j] = p[0];
            g[c + j] = p[1];
            g[2 * c + j] = p[2];
            g[3 * c + j] = p[3];
        }
    }
    (math::log1p((at_max - F32x4::ONE) + rest + (m - m)).to_array(), m.to_array())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extras::soft::{softmax_focal_soft, SoftRows};

    /// The fast path equals the general soft kernel's two-hot rows (γ = 0, no α) within f32
    /// rounding, for every row length, weight and output combination.
    #[test]
    fn equals_the_soft_kernel() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for trial in 0..2000 {
            let c = 2 + trial % 20;
            let rows = 1 + (trial * 7) % 13;
            let scale = [1.0, 5.0, 30.0][trial % 3];
            let x: Vec<f32> = (0..rows * c).map(|_| ((next() - 0.5) * 2.0 * scale) as f32).collect();
            let y: Vec<f32> = (0..rows)
                .map(|r| if r % 5 == 0 { (r % (c - 1)) as f32 } else { (next() * (c - 1) as f64) as f32 * 0.9999 })
                .collect();
            let w: Vec<f32> = (0..rows).map(|_| next() as f32 * 2.0).collect();
            let rw = if trial % 2 == 0 { Some(&w[..]) } else { None };
            let (mut l1, mut g1) = (vec![0f32; rows], vec![0f32; rows * c]);
            let (mut l2, mut g2) = (vec![0f32; rows], vec![0f32; rows * c]);
            let a = distribution_focal(&x, c, &y, rw, Some((&mut l1, 0.5)), Some((&mut g1, 0.25)));
            // α of ones: the general path (empty α takes this fast path).
            let ones = vec![1f32; c];
            let b = softmax_focal_soft(&x, c, SoftRows::TwoHot(&y), &ones, 0.0, rw, Some((&mut l2, 0.5)), Some((&mut g2, 0.25)));
            assert_eq!(a.rows, b.rows);
            assert!((a.sum - b.sum).abs() <= 2e-6 * b.sum.abs().max(1.0), "sum {} vs {}", a.sum, b.sum);
            for (u, v) in l1.iter().zip(&l2).chain(g1.iter().zip(&g2)) {
                assert!((u - v).abs() <= 2e-6 * v.abs().max(1.0), "trial {trial}: {u} vs {v}");
            }
            let fwd = distribution_focal(&x, c, &y, rw, None, None);
            assert_eq!(fwd.sum, a.sum, "the outputs do not change the sum");
        }
    }

    /// A NaN or infinite logit makes its row's loss and every gradient element NaN (PyTorch's
    /// cross entropy), in the four-row blocks and the one-row tail alike; other rows are finite.
    #[test]
    fn nan_and_infinite_rows() {
        for &bad in &[f32::NAN, f32::INFINITY] {
            for &row_bad in &[1usize, 5] {
                let (c, rows) = (17, 6);
                let mut x: Vec<f32> = (0..rows * c).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.5).collect();
                x[row_bad * c + 4] = bad;
                let y: Vec<f32> = (0..rows).map(|r| r as f32 * 2.5).collect();
                let (mut l, mut g) = (vec![0f32; rows], vec![0f32; rows * c]);
                distribution_focal(&x, c, &y, None, Some((&mut l, 1.0)), Some((&mut g, 1.0)));
                for r in 0..rows {
                    let row = &g[r * c..(r + 1) * c];
                    if r == row_bad {
                        assert!(l[r].is_nan() && row.iter().all(|v| v.is_nan()), "row {r}: {} {:?}", l[r], row);
                    } else {
                        assert!(l[r].is_finite() && row.iter().all(|v| v.is_finite()), "row {r}");
                    }
                }
            }
        }
    }
}
