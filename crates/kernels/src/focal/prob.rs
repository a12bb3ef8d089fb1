//! Sigmoid focal loss on probabilities (docs/SPEC.md §1, `input: 'probabilities'`): mmdetection's
//! `py_focal_loss_with_prob`, whose BCE is PyTorch's `binary_cross_entropy` (each log clamped
//! at -100), with the gradient with respect to the probabilities.
//!
//! A kernel of its own rather than a branch in the logit kernel, whose hot loop must not slow.
//! It is kept small (the wasm size budget): one function per target layout, γ and the outputs
//! decided at run time. Inputs are checked to lie in [0, 1] (by the caller, from the range this
//! reports), so every term is finite and no second pass for infinities is needed.

use super::sigmoid::{Alpha, Outputs, Summary};
use crate::math;
use crate::simd::{F32x4, M32x4, SumF64};
use crate::source::{target_range, Block, Layout, SoftTargets, TargetLanes, TargetRange, Targets, Weights};

/// The floor PyTorch's `binary_cross_entropy` puts under each log.
const LOG_FLOOR: f32 = -100.0;
/// The floor of `p(1 - p)` in PyTorch's `binary_cross_entropy` backward (`EPSILON`).
const GRAD_EPS: f32 = 1e-12;

/// `(pt^γ, γ·pt^(γ-1))` for γ known only at run time: `exp(γ·ln pt)` and its quotient by pt,
/// then pt = 0 set exactly (SPEC §1: 0^0 = 1, and the derivative factor is 1 for γ = 1 and 0
/// otherwise). `exp_neg` needs a non-negative argument: -γ·ln pt ≥ 0 for pt ≤ 1.
#[inline(always)]
fn factors(gamma: f32, m: F32x4) -> (F32x4, F32x4) {
    let zero = m.le(F32x4::ZERO);
    let pw = math::exp_neg(F32x4::splat(-gamma) * math::ln(m));
    let dpw = F32x4::splat(gamma) * pw / m;
    let at0 = |v: bool| F32x4::splat(if v { 1.0 } else { 0.0 });
    (M32x4::select(zero, at0(gamma == 0.0), pw), M32x4::select(zero, at0(gamma == 1.0), dpw))
}

struct ProbBlock {
    p: *const f32,
    alpha: Alpha,
    gamma: f32,
    sum: SumF64,
    loss_out: *mut f32,
    loss_scale: F32x4,
    grad_out: *mut f32,
    grad_scale: F32x4,
}

/// `(loss, d loss/dp)` per lane, unscaled. Not inlined, one function for both outputs (`grad`
/// at run time): inlined at the walk's two call sites it put the SIMD module 6 KiB over its
/// budget. Its logs are inlined: through a function of their own (a call per log, vectors
/// passed through memory) the kernel took 25 ns an element instead of 12.
#[inline(never)]
fn terms(p: F32x4, t: F32x4, w: F32x4, alpha: Alpha, gamma: f32, grad: bool) -> (F32x4, F32x4) {
    let omt = F32x4::ONE - t;
    let omp = F32x4::ONE - p;
    let floor = F32x4::splat(LOG_FLOOR);
    // PyTorch: (t - 1)·max(log1p(-p), -100) - t·max(log p, -100).
    let log_p = math::ln(p).max(floor);
    let log_omp = log1p_neg(p, omp).max(floor);
    let bce = -(t * log_p + omt * log_omp);
    let pt = omp * t + p * omt;
    let (pw, dpw) = factors(gamma, pt);
    let aww = alpha.weight(t, omt) * w;
    let l = aww * pw * bce;
    if !grad {
        return (l, F32x4::ZERO);
    }
    // d pt/dp = 1 - 2t; d bce/dp as PyTorch's backward: (p - t) / max(p(1 - p), ε).
    let dbce = (p - t) / (p * omp).max(F32x4::splat(GRAD_EPS));
    (l, aww * (dpw * (omt - t) * bce + pw * dbce))
}

/// ln(1 - p) for p in [0, 1], given `omp` = 1 - p rounded: [`math::log1p`]'s correction of that
/// rounding (Kahan), without its branch for infinite arguments.
#[inline(always)]
fn log1p_neg(p: F32x4, omp: F32x4) -> F32x4 {
    let d = omp - F32x4::ONE;
    let r = math::ln(omp) * (-p / d);
    M32x4::select(omp.eq(F32x4::ONE), -p, r)
}

impl ProbBlock {
    #[inline(always)]
    fn lanes<const ROWS: bool, T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        // Padded lanes read p = 0.5 (finite terms) and have w = 0.
        let p = unsafe { F32x4::load_partial(self.p.add(i), len, 0.5) };
        let grad = !self.grad_out.is_null();
        let (l, d) = terms(p, t.float(), w, self.alpha, self.gamma, grad);
        if ROWS {
            self.sum.add(l);
        } else {
            self.sum.add_at(l, i);
        }
        unsafe {
            if !self.loss_out.is_null() {
                (l * self.loss_scale).store_partial(self.loss_out.add(i), len);
            }
            if grad {
                (d * self.grad_scale).store_partial(self.grad_out.add(i), len);
            }
        }
    }
}

impl Block for ProbBlock {
    #[inline(always)]
    fn block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        self.lanes::<false, T>(i, len, t, w);
    }
    #[inline(always)]
    fn row_block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        self.lanes::<true, T>(i, len, t, w);
    }
}

/// What [`sigmoid_focal_prob`] returns: the loss sum and targets' range as [`Summary`], and the
/// probabilities' range (NaN if one is NaN), for the caller's check that they are in [0, 1].
pub struct ProbSummary {
    pub focal: Summary,
    pub probs: TargetRange,
}

/// Sigmoid focal loss over probabilities `p` (length n), writing the requested outputs
/// (slices of n elements) and returning Σ loss. Values outside [0, 1] give meaningless
/// results; the caller rejects them from [`ProbSummary::probs`].
///
/// Soft targets only (the caller lays 0/1 bytes and class indices out as floats): one walk
/// instead of three keeps the wasm modules within their size budget.
pub fn sigmoid_focal_prob(p: &[f32], targets: &[f32], weights: Weights, alpha: Alpha, gamma: f32, out: Outputs) -> ProbSummary {
    let ptr = |o: Option<(&mut [f32], f32)>| o.map_or((core::ptr::null_mut(), 0.0), |(s, k)| (s.as_mut_ptr(), k));
    let ((loss_out, loss_scale), (grad_out, grad_scale)) = (ptr(out.loss), ptr(out.grad));
    let k = ProbBlock {
        sum: SumF64::new(),
        p: p.as_ptr(),
        alpha,
        gamma,
        loss_out,
        loss_scale: F32x4::splat(loss_scale),
        grad_out,
        grad_scale: F32x4::splat(grad_scale),
    };
    let n = p.len();
    let mut k = k;
    SoftTargets(targets).for_each_block(n, weights, &mut k);
    let sum = k.sum.total();
    ProbSummary { focal: Summary { sum, targets: target_range(n, Targets::Soft(targets)) }, probs: target_range(n, Targets::Soft(p)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 reference from SPEC §1 (probabilities), for one element.
    fn reference(p: f64, t: f64, alpha: f64, gamma: f64) -> (f64, f64) {
        let bce = -(t * p.ln().max(-100.0) + (1.0 - t) * (-p).ln_1p().max(-100.0));
        let pt = (1.0 - p) * t + p * (1.0 - t);
        let aw = alpha * t + (1.0 - alpha) * (1.0 - t);
        let pw = pt.powf(gamma);
        let dpw = if pt == 0.0 { if gamma == 1.0 { 1.0 } else { 0.0 } } else { gamma * pt.powf(gamma - 1.0) };
        let dbce = (p - t) / (p * (1.0 - p)).max(1e-12);
        (aw * pw * bce, aw * (dpw * (1.0 - 2.0 * t) * bce + pw * dbce))
    }

    #[test]
    fn matches_f64_reference() {
        let mut ps: Vec<f32> = (0..=400).map(|i| i as f32 / 400.0).collect();
        ps.extend_from_slice(&[1e-30, 1e-45, 1e-7, 1.0 - 1e-7, 0.999_999_9, 1e-4]);
        let ts = [0.0f32, 1.0, 0.3, 0.75];
        for &gamma in &[0.0f32, 0.5, 1.0, 2.0, 2.5] {
            for &tv in &ts {
                let tt = vec![tv; ps.len()];
                let (mut l, mut g) = (vec![0.0f32; ps.len()], vec![0.0f32; ps.len()]);
                let s = sigmoid_focal_prob(&ps, &tt, Weights::Ones, Alpha::new(Some(0.25)), gamma, Outputs { loss: Some((&mut l, 1.0)), grad: Some((&mut g, 1.0)) });
                let mut want = 0.0;
                for i in 0..ps.len() {
                    let (wl, wg) = reference(ps[i] as f64, tv as f64, 0.25, gamma as f64);
                    want += wl;
                    assert!((l[i] as f64 - wl).abs() <= 2e-6 * wl.abs().max(1.0), "loss p={} t={tv} γ={gamma}: {} vs {wl}", ps[i], l[i]);
                    assert!((g[i] as f64 - wg).abs() <= 2e-6 * wg.abs().max(1.0), "grad p={} t={tv} γ={gamma}: {} vs {wg}", ps[i], g[i]);
                }
                assert!((s.focal.sum - want).abs() <= 1e-6 * want.abs().max(1e-30));
            }
        }
    }

    #[test]
    fn reports_the_probabilities_range() {
        let t = [0.0f32; 3];
        let r = |p: &[f32]| sigmoid_focal_prob(p, &t[..p.len()], Weights::Ones, Alpha::new(None), 2.0, Outputs { loss: None, grad: None }).probs;
        assert_eq!((r(&[0.0, 0.5, 1.0]).min, r(&[0.0, 0.5, 1.0]).max), (0.0, 1.0));
        assert!(r(&[0.5, f32::NAN]).max.is_nan());
        assert_eq!(r(&[-0.5, 0.2]).min, -0.5);
    }
}
