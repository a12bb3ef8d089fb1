//! Distribution Focal Loss (docs/SPEC.md §9), the fast path of [`super::soft`]'s two-hot rows at
//! γ = 0 without α: a row's loss is `ln Σ_j e^(x_j − m) − (w_l·d_l + w_r·d_r)` with `d = x − m`,
//! so the forward needs only the row's log-sum-exp (no per-class focal terms), and the gradient
//! is `p_j` less the two weights. The general soft kernel computes the same numbers with a
//! per-class focal factor it does not need here: 3–4× the time at the usual 17 bins.
//!
//! Rows of up to 64 classes go four at a time ([`four_rows`]), their terms by
//! [`math::exp_neg_term`] (a row's `s − 1` to about 2.6e-6 relative, 6.7e-6 at worst; the other
//! rows by `row_exp_sum_parts`'s `exp`, 3 ulp): within SPEC §5's 1e-5, for half the time.

use crate::focal::softmax::{lane0, row_exp_sum_parts, row_max, Summary};
use crate::math;
use crate::simd::{F32x4, F64x2, I32x4};

/// DFL over `x` (`[rows, n + 1]`, `c = n + 1`) with targets `y` (`[rows]`, in [0, n): clamped;
/// TypeScript rejects the rest from the range `fg_softmax_focal_soft` reports). `row_weight`
/// multiplies each row's loss and gradient row; `loss_out` gets the rows' losses and `grad_out`
/// the gradient, each times its scale. The summary has Σ of the unscaled weighted row losses
/// (f64) and the row count.
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
    if let Some(w) = row_weight {
        assert!(w.len() >= rows);
    }
    if let Some((lo, _)) = loss_out.as_ref() {
        assert!(lo.len() >= rows);
    }
    if let Some((g, _)) = grad_out.as_ref() {
        assert!(g.len() >= rows * c);
    }
    let mut r = 0;
    let mut sums = F64x2::ZERO;
    while c <= MAX_BLOCK_CLASSES && r + 4 <= rows {
        // SAFETY: rows r..r + 4 of x, y, the weights and both outputs are in bounds (asserted).
        sums = sums + unsafe { four_rows(x.as_ptr().add(r * c), c, y.as_ptr().add(r), row_weight.map(|w| w.as_ptr().add(r)), &mut loss_out, &mut grad_out, r) };
        r += 4;
    }
    let s = sums.to_array();
    sum += s[0] + s[1];
    for r in r..rows {
        let row = &x[r * c..(r + 1) * c];
        let m = row_max(row);
        let mut grad = grad_out.as_mut().map(|(g, k)| (&mut g[r * c..(r + 1) * c], *k));
        let (at_max, rest) = row_exp_sum_parts(row, m, grad.as_mut().map(|(g, _)| &mut **g));
        let s = at_max + rest;
        // ln s from log1p(s − 1), s − 1 summed without the 1s: accurate as the row's max p → 1.
        let ln_s = lane0(math::log1p(F32x4::splat(((at_max - 1.0) + rest) as f32)));
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

/// Rows of at most this many classes go four at a time through [`four_rows`] (DFL's usual row
/// is 17: `reg_max` 16), longer ones one at a time: its f32 lane sums hold up to c/4 terms, 16
/// here (≤ 1e-6 relative), and the one-row path sums in f64.
const MAX_BLOCK_CLASSES: usize = 64;

/// Rows `r..r + 4` at `x` (`[4, c]`), each read in whole vectors along the row, the last `c % 4`
/// columns gathered across the four rows; per-row results meet in lanes (row k in lane k) by
/// [`F32x4::across4`]. One-row-at-a-time code pays a horizontal sum and a partial load per row,
/// and rows gathered into lanes column by column pay four loads and three inserts per vector and
/// a scalar store per gradient element: both cost more than the exp itself at 17 classes.
/// Returns the rows' weighted losses summed in f64 lanes; writes their outputs.
///
/// # Safety
/// `x..x + 4c`, `y..y + 4` and `w..w + 4` readable; rows `r..r + 4` of the outputs in bounds.
#[inline(always)]
unsafe fn four_rows(
    x: *const f32, c: usize, y: *const f32, w: Option<*const f32>,
    loss_out: &mut Option<(&mut [f32], f32)>, grad_out: &mut Option<(&mut [f32], f32)>, r: usize,
) -> F64x2 {
    let whole = c & !3;
    let row = |k: usize| x.add(k * c);
    let column = |j: usize| F32x4::from_array([*row(0).add(j), *row(1).add(j), *row(2).add(j), *row(3).add(j)]);
    // Each row's max by `pmax` alone (one `maxps` on x64; wasm's NaN-propagating max is half a
    // dozen instructions, and the exps wait on this max: it is the block's critical path), NaN
    // ignored by it and counted apart (a mask is -1: a count is negative, its sign bit set).
    let mut mk = [F32x4::splat(f32::NEG_INFINITY); 4];
    let mut nans = [F32x4::ZERO; 4];
    for k in 0..4 {
        let (mut a, mut b) = (F32x4::splat(f32::NEG_INFINITY), F32x4::splat(f32::NEG_INFINITY));
        let mut nan = I32x4::splat(0);
        let mut j = 0;
        while j + 8 <= whole {
            let (u, v) = (F32x4::load(row(k).add(j)), F32x4::load(row(k).add(j + 4)));
            a = a.pmax(u);
            b = b.pmax(v);
            nan = nan + I32x4::from_mask(u.ne(u)) + I32x4::from_mask(v.ne(v));
            j += 8;
        }
        if j < whole {
            let u = F32x4::load(row(k).add(j));
            a = a.pmax(u);
            nan = nan + I32x4::from_mask(u.ne(u));
        }
        mk[k] = a.pmax(b);
        nans[k] = F32x4::from_bits(nan);
    }
    let or = |a: F32x4, b: F32x4| F32x4::from_bits(a.to_bits().or(b.to_bits()));
    let mut m = F32x4::across4(mk, F32x4::pmax);
    let mut nan = F32x4::across4(nans, or);
    let mut tail = [F32x4::ZERO; 3];
    for (t, j) in tail.iter_mut().zip(whole..c) {
        let v = column(j);
        *t = v;
        m = m.pmax(v);
        nan = or(nan, F32x4::from_bits(I32x4::from_mask(v.ne(v))));
    }
    // A row with a NaN: its max (for everything after the exps) is NaN.
    let m_nan = or(m, F32x4::from_bits(nan.to_bits().shr(31)));
    // Σ_j e^(x_j − m) per row, the terms at the max (exactly 1) counted apart (see
    // `row_exp_sum`): `s − 1` stays accurate for a confident row. With a gradient, the terms are
    // parked in it. e^(x − m) as exp_neg_term(m − x), m − x ≥ 0 (see its bound).
    let mut grad = grad_out.as_mut().map(|(g, k)| (g.as_mut_ptr().add(r * c), *k));
    let ms = [m.lane_splat::<0>(), m.lane_splat::<1>(), m.lane_splat::<2>(), m.lane_splat::<3>()];
    // `below`: minus the count of terms under the max (a mask is -1), from the mask that keeps
    // them out of `rest`; the count at the max is c less theirs.
    let mut rest = [F32x4::ZERO; 4];
    let mut below = [F32x4::ZERO; 4];
    for k in 0..4 {
        let (mut sum, mut count) = (F32x4::ZERO, I32x4::splat(0));
        let mut j = 0;
        while j < whole {
            let a = ms[k] - F32x4::load(row(k).add(j));
            let e = math::exp_neg_term(a);
            let under = I32x4::from_mask(a.ne(F32x4::ZERO));
            sum = sum + F32x4::from_bits(e.to_bits().and(under));
            count = count + under;
            if let Some((g, _)) = grad.as_mut() {
                e.store(g.add(k * c + j));
            }
            j += 4;
        }
        rest[k] = sum;
        below[k] = count.to_f32();
    }
    // Row k in lane k from here on.
    let mut rest = F32x4::across4(rest, F32x4::add);
    let mut below = F32x4::across4(below, F32x4::add);
    for t in tail.iter_mut().take(c - whole) {
        let a = m - *t;
        let e = math::exp_neg_term(a);
        let under = I32x4::from_mask(a.ne(F32x4::ZERO));
        rest = rest + F32x4::from_bits(e.to_bits().and(under));
        below = below + under.to_f32();
        *t = e;
    }
    // exp_neg_term gives a +NaN argument its floor and a −NaN one no reliable NaN: m − m carries
    // a NaN or infinite max (a NaN logit, +inf, or a row of -inf) into s, so that the row's loss
    // and gradient are NaN.
    let m = m_nan;
    let nan = m - m;
    let count = F32x4::splat(c as f32) + below;
    let s = count + rest + nan;
    // ln s from log1p(s − 1), s − 1 summed without the 1s: accurate as a row's max p → 1.
    let ln_s = math::log1p_nonneg((count - F32x4::ONE) + rest + nan);

    // The targets' two bins and weights, per lane (as `finish_row`).
    let n = (c - 1) as f32;
    let yv = F32x4::load(y);
    let yc = yv.min(F32x4::splat(n)).max(F32x4::ZERO);
    let li = yc.trunc_i32().min(I32x4::splat(c as i32 - 2));
    let lf = li.to_f32();
    let hl = (lf + F32x4::ONE) - yc;
    let hr = yc - lf;
    let l = li.to_array();
    let xl = F32x4::from_array([*row(0).add(l[0] as usize), *row(1).add(l[1] as usize), *row(2).add(l[2] as usize), *row(3).add(l[3] as usize)]);
    let xr = F32x4::from_array([*row(0).add(l[0] as usize + 1), *row(1).add(l[1] as usize + 1), *row(2).add(l[2] as usize + 1), *row(3).add(l[3] as usize + 1)]);
    // −log p_j = ln s − (x_j − m): both terms ≥ 0, so f32 keeps the loss to a few ulp.
    let wv = match w {
        Some(w) => F32x4::load(w),
        None => F32x4::ONE,
    };
    let loss = (hl * (ln_s - (xl - m)) + hr * (ln_s - (xr - m))) * wv;
    if let Some((lo, k)) = loss_out.as_mut() {
        (loss * F32x4::splat(*k)).store(lo.as_mut_ptr().add(r));
    }
    if let Some((g, k)) = grad.as_mut() {
        // p_j·w·k = e_j · (w·k / s), less the targets' weights.
        let wk = wv * F32x4::splat(*k);
        let scale = wk / s;
        let sc = [scale.lane_splat::<0>(), scale.lane_splat::<1>(), scale.lane_splat::<2>(), scale.lane_splat::<3>()];
        for k in 0..4 {
            let gk = g.add(k * c);
            let mut j = 0;
            while j < whole {
                (F32x4::load(gk.add(j)) * sc[k]).store(gk.add(j));
                j += 4;
            }
        }
        for (t, j) in tail.iter().zip(whole..c) {
            let p = (*t * scale).to_array();
            for (k, pk) in p.iter().enumerate() {
                *g.add(k * c + j) = *pk;
            }
        }
        let (dl, dr) = ((hl * wk).to_array(), (hr * wk).to_array());
        for k in 0..4 {
            let at = g.add(k * c + l[k] as usize);
            *at -= dl[k];
            *at.add(1) -= dr[k];
        }
    }
    F64x2::promote_low(loss) + F64x2::promote_high(loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extras::soft::{softmax_focal_soft, SoftRows};
    use crate::test_rng::Rng;

    /// The fast path equals the general soft kernel's two-hot rows (γ = 0, no α) within f32
    /// rounding, for every row length, weight and output combination.
    #[test]
    fn equals_the_soft_kernel() {
        let mut rng = Rng(0x2545f4914f6cdd1d);
        let mut next = || rng.unif();
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

    /// A confident row's loss (its target the max, the others `gap` below: the loss is about
    /// `(c − 1)·e^-gap`) keeps SPEC §5's 1e-5 relative to float64, through the four-row blocks
    /// (exp_neg_term's error where the terms are tiny) and the one-row tail alike.
    #[test]
    fn confident_rows_keep_relative_accuracy() {
        // Long rows too: summed in f32 lanes four rows at a time, c = 16385 lost 1e-5.
        for (gap, c) in [0.5f32, 3.0, 9.0, 17.0, 30.0, 60.0, 85.0].iter().flat_map(|&g| [(g, 17), (g, 64), (g, 65), (g, 16385)]) {
            let rows = 7;
            let mut x = vec![0f32; rows * c];
            let mut y = vec![0f32; rows];
            for r in 0..rows {
                let l = (r * 5) % (c - 1);
                y[r] = l as f32;
                for j in 0..c {
                    x[r * c + j] = if j == l { 4.0 } else { 4.0 - gap - (j % 3 * (r % 2)) as f32 * 0.25 };
                }
            }
            let mut lo = vec![0f32; rows];
            distribution_focal(&x, c, &y, None, Some((&mut lo, 1.0)), None);
            for r in 0..rows {
                let row = &x[r * c..(r + 1) * c];
                let l = y[r] as usize;
                let s1: f64 = (0..c).filter(|&j| j != l).map(|j| ((row[j] - row[l]) as f64).exp()).sum();
                let want = s1.ln_1p();
                let err = ((lo[r] as f64) - want).abs() / want;
                assert!(err <= 1e-5, "c {c} gap {gap} row {r}: {} vs {want} ({err:e})", lo[r]);
            }
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
