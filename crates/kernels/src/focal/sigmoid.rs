//! Sigmoid focal loss, SPEC.md §1 (mmdetection `py_sigmoid_focal_loss`, torchvision
//! `sigmoid_focal_loss`), with its gradient, in one pass.
//!
//! Numerics, per lane, from `e = exp(-|x|)` and `r = 1/(1+e)`:
//! - `p = σ(x)` and `q = 1-p = σ(-x)` are `r` and `e·r` picked by the sign of x, so neither is
//!   formed as `1 - something` (no cancellation for large |x|);
//! - `bce = max(x,0)·(1-t) + max(-x,0)·t + log1p(e)`: every term ≥ 0 for t in [0,1], so the sum
//!   has no cancellation either (SPEC's `softplus(x) - x·t` rearranged);
//! - `p - t = p·(1-t) - q·t`, exact where p ≈ t ≈ 1.

use super::{with_focusing, Focusing};
use crate::math;
use crate::simd::{F32x4, M32x4, SumF64};
use crate::source::{for_each_block, Block, RangeTracker, TargetRange, Targets, Weights};

/// α as the two class weights: positives get `pos`, negatives `neg`; `None` (alpha disabled)
/// is `pos = neg = 1`.
#[derive(Clone, Copy)]
pub struct Alpha {
    pub pos: f32,
    pub neg: f32,
}

impl Alpha {
    /// From α as f64: `1 - α` is formed before rounding to f32, so that α near 1 keeps its
    /// negatives' weight accurate (f32 `1 - α` would lose it to cancellation).
    pub fn new(alpha: Option<f64>) -> Alpha {
        match alpha {
            Some(a) => Alpha { pos: a as f32, neg: (1.0 - a) as f32 },
            None => Alpha { pos: 1.0, neg: 1.0 },
        }
    }
}

/// Where the elementwise results go; each is scaled as the reduction scales the loss.
pub struct Outputs<'a> {
    /// Elementwise loss (reduction `none`) and its scale (lossWeight).
    pub loss: Option<(&'a mut [f32], f32)>,
    /// d loss / d x and its scale (lossWeight / the mean's divisor).
    pub grad: Option<(&'a mut [f32], f32)>,
}

pub struct Summary {
    /// Σ of the unscaled elementwise losses, accumulated in f64.
    pub sum: f64,
    pub targets: TargetRange,
}

/// The logistic function's pieces for one vector of logits.
#[derive(Clone, Copy)]
pub(crate) struct Logistic {
    /// `σ(x)`
    pub p: F32x4,
    /// `1 - σ(x) = σ(-x)`
    pub q: F32x4,
    /// `exp(-|x|)` (finite even for NaN x; NaN reaches the results through `abs`)
    pub e: F32x4,
    /// `|x|`
    pub abs: F32x4,
    /// `x ≥ 0` (false for NaN)
    pub nonneg: M32x4,
}

#[inline(always)]
pub(crate) fn logistic(x: F32x4) -> Logistic {
    let abs = x.abs();
    let e = math::exp_neg(abs);
    let r = F32x4::ONE / (F32x4::ONE + e);
    let er = e * r;
    let nonneg = x.ge(F32x4::ZERO);
    Logistic { p: nonneg.select(r, er), q: nonneg.select(er, r), e, abs, nonneg }
}

/// Binary cross-entropy with logits for targets `t` (`omt = 1 - t`).
#[inline(always)]
pub(crate) fn bce(l: &Logistic, t: F32x4, omt: F32x4) -> F32x4 {
    // max(x,0)·(1-t) + max(-x,0)·t as |x| times one of the two; NaN x keeps NaN through |x|.
    l.abs * l.nonneg.select(omt, t) + math::log1p_unit(l.e)
}

/// `(loss, dloss/dx)` per lane, unscaled, for targets `t` and weights `w`.
#[inline(always)]
fn lanes<G: Focusing, const GRAD: bool>(x: F32x4, t: F32x4, w: F32x4, a: Alpha, g: G) -> (F32x4, F32x4) {
    let l = logistic(x);
    let (p, q) = (l.p, l.q);
    let omt = F32x4::ONE - t;
    let zero = F32x4::ZERO;
    let bce = bce(&l, t, omt);
    let pt = q * t + p * omt;
    // Two non-negative terms: no cancellation when α is near 0 or 1.
    let aw = F32x4::splat(a.pos) * t + F32x4::splat(a.neg) * omt;
    let (pw, dpw) = g.factors(pt);
    let aww = aw * w;
    let loss = aww * pw * bce;
    if !GRAD {
        return (loss, zero);
    }
    let one_m_2t = omt - t;
    let grad = aww * (dpw * (p * q) * one_m_2t * bce + pw * (p * omt - q * t));
    (loss, grad)
}

/// Sigmoid focal loss over `x` (length n), writing the requested outputs and returning Σ loss.
///
/// Slices in `out` must hold n elements.
pub fn sigmoid_focal(
    x: &[f32],
    targets: Targets,
    weights: Weights,
    alpha: Alpha,
    gamma: f32,
    out: Outputs,
) -> Summary {
    with_focusing!(gamma, g => {
        if out.grad.is_some() {
            run::<_, true>(x, targets, weights, alpha, g, out)
        } else {
            run::<_, false>(x, targets, weights, alpha, g, out)
        }
    })
}

struct SigmoidBlock<G, const GRAD: bool> {
    x: *const f32,
    alpha: Alpha,
    g: G,
    sum: SumF64,
    range: RangeTracker,
    loss_out: *mut f32,
    loss_scale: F32x4,
    grad_out: *mut f32,
    grad_scale: F32x4,
}

impl<G: Focusing, const GRAD: bool> Block for SigmoidBlock<G, GRAD> {
    #[inline(always)]
    fn block(&mut self, i: usize, len: usize, t: F32x4, w: F32x4) {
        // Padded lanes read x = 0: finite, and w = 0 there zeroes their loss.
        let xv = unsafe { F32x4::load_partial(self.x.add(i), len, 0.0) };
        let (l, d) = lanes::<G, GRAD>(xv, t, w, self.alpha, self.g);
        self.sum.add(l);
        self.range.add(t);
        unsafe {
            if !self.loss_out.is_null() {
                (l * self.loss_scale).store_partial(self.loss_out.add(i), len);
            }
            if GRAD {
                (d * self.grad_scale).store_partial(self.grad_out.add(i), len);
            }
        }
    }
}

// Not inlined: each (γ path, gradient) variant stays its own wasm function, so an engine
// optimizes just the variants in use, and each quickly (V8 tiers up per function, and one
// function holding every variant takes its optimizing compiler seconds).
#[inline(never)]
fn run<G: Focusing, const GRAD: bool>(
    x: &[f32],
    targets: Targets,
    weights: Weights,
    alpha: Alpha,
    g: G,
    out: Outputs,
) -> Summary {
    let (loss_out, loss_scale) = match out.loss {
        Some((s, k)) => (s.as_mut_ptr(), k),
        None => (core::ptr::null_mut(), 0.0),
    };
    let (grad_out, grad_scale) = match out.grad {
        Some((s, k)) => (s.as_mut_ptr(), k),
        None => (core::ptr::null_mut(), 0.0),
    };
    let mut k = SigmoidBlock::<G, GRAD> {
        x: x.as_ptr(),
        alpha,
        g,
        sum: SumF64::new(),
        range: RangeTracker::new(),
        loss_out,
        loss_scale: F32x4::splat(loss_scale),
        grad_out,
        grad_scale: F32x4::splat(grad_scale),
    };
    for_each_block(x.len(), targets, weights, &mut k);
    Summary { sum: k.sum.total(), targets: k.range.range() }
}

struct CountBlock {
    pos: u64,
    all: u64,
}

impl Block for CountBlock {
    #[inline(always)]
    fn block(&mut self, _: usize, _: usize, t: F32x4, w: F32x4) {
        let valid = w.gt(F32x4::ZERO);
        self.pos += valid.and(t.ge(F32x4::splat(0.5))).count() as u64;
        self.all += valid.count() as u64;
    }
}

/// The counts behind α = 'auto': (positives, negatives) among elements with weight > 0, a
/// positive being t ≥ 0.5 (SPEC §1). Exact: counts are kept as integers.
pub fn count_pos_neg(n: usize, targets: Targets, weights: Weights) -> (u64, u64) {
    let mut k = CountBlock { pos: 0, all: 0 };
    for_each_block(n, targets, weights, &mut k);
    (k.pos, k.all - k.pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 reference straight from SPEC §1, for one element.
    fn reference(x: f64, t: f64, w: f64, alpha: Option<f64>, gamma: f64) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-x).exp());
        let bce = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        let pt = (1.0 - p) * t + p * (1.0 - t);
        let aw = alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
        let loss = aw * pt.powf(gamma) * bce * w;
        let first = if pt == 0.0 && gamma < 1.0 { 0.0 } else { gamma * pt.powf(gamma - 1.0) * p * (1.0 - p) * (1.0 - 2.0 * t) * bce };
        let grad = aw * w * (first + pt.powf(gamma) * (p - t));
        (loss, grad)
    }

    fn check(gamma: f32, alpha: Option<f64>) {
        let mut xs = Vec::new();
        let mut ts = Vec::new();
        let mut k = 0u32;
        for i in -400..=400 {
            xs.push(i as f32 * 0.05);
            ts.push([0.0f32, 1.0, 0.3, 0.75][(k % 4) as usize]);
            k += 1;
        }
        xs.extend_from_slice(&[88.0, -88.0, 1e4, -1e4, 1e-40, -1e-40, 0.0]);
        ts.extend_from_slice(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let n = xs.len();
        let mut loss = vec![0.0f32; n];
        let mut grad = vec![0.0f32; n];
        let s = sigmoid_focal(
            &xs,
            Targets::Soft(&ts),
            Weights::Ones,
            Alpha::new(alpha),
            gamma,
            Outputs { loss: Some((&mut loss, 1.0)), grad: Some((&mut grad, 1.0)) },
        );
        let mut want_sum = 0.0;
        for i in 0..n {
            let (l, g) = reference(xs[i] as f64, ts[i] as f64, 1.0, alpha, gamma as f64);
            want_sum += l;
            assert!((loss[i] as f64 - l).abs() <= 2e-6 * l.abs().max(1.0), "loss x={} t={} γ={gamma}: {} vs {l}", xs[i], ts[i], loss[i]);
            assert!((grad[i] as f64 - g).abs() <= 2e-6 * g.abs().max(1.0), "grad x={} t={} γ={gamma}: {} vs {g}", xs[i], ts[i], grad[i]);
        }
        assert!((s.sum - want_sum).abs() <= 1e-6 * want_sum.abs());
    }

    #[test]
    fn matches_f64_reference_for_every_gamma_path() {
        for &g in &[0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0] {
            check(g, Some(0.25));
            check(g, None);
        }
    }

    #[test]
    fn labels_equal_the_one_hot_matrix() {
        let c = 5;
        let labels = [0i32, 4, 5, 2, 5, 1, 3];
        let rw = [1.0f32, 0.5, 2.0, 0.0, 1.0, 1.0, 3.0];
        let n = labels.len() * c;
        let xs: Vec<f32> = (0..n).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.4).collect();
        let mut onehot = vec![0u8; n];
        let mut ew = vec![0.0f32; n];
        for r in 0..labels.len() {
            for j in 0..c {
                onehot[r * c + j] = (labels[r] == j as i32) as u8;
                ew[r * c + j] = rw[r];
            }
        }
        let run = |t: Targets, w: Weights, g: &mut [f32]| sigmoid_focal(&xs, t, w, Alpha::new(Some(0.25)), 2.0, Outputs { loss: None, grad: Some((g, 1.0)) }).sum;
        let (mut g1, mut g2) = (vec![0.0; n], vec![0.0; n]);
        let a = run(Targets::Labels { labels: &labels, num_classes: c }, Weights::Rows(&rw), &mut g1);
        let b = run(Targets::Binary(&onehot), Weights::Elements(&ew), &mut g2);
        // Blocks of four differ (rows are walked separately), so sums agree to rounding only.
        assert!((a - b).abs() <= 1e-6 * b.abs());
        assert_eq!(g1, g2);
        assert_eq!(count_pos_neg(n, Targets::Labels { labels: &labels, num_classes: c }, Weights::Rows(&rw)), (4, 26));
    }

    #[test]
    fn target_range_reports_nan_and_out_of_range() {
        let xs = [0.0f32; 6];
        let r = |ts: &[f32]| sigmoid_focal(&xs[..ts.len()], Targets::Soft(ts), Weights::Ones, Alpha::new(None), 2.0, Outputs { loss: None, grad: None }).targets;
        let a = r(&[0.0, 0.5, 1.0, 0.25, 0.75]);
        assert_eq!((a.min, a.max), (0.0, 1.0));
        assert!(r(&[0.0, f32::NAN, 1.0]).max.is_nan());
        assert_eq!(r(&[0.0, 1.5]).max, 1.5);
    }
}
