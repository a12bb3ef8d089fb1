//! Varifocal Loss, docs/SPEC.md §8 (Zhang et al. 2021, "VarifocalNet"; mmdetection
//! `varifocal_loss`), with its gradient, in one pass.
//!
//! Per element, with q the IoU-aware target: `bce(x, q)·w`, the focal weight `w` being q (or 1)
//! where q > 0 and `α·|σ − q|^γ` where q ≤ 0, not detached (its derivative is in the gradient).
//! The x-terms are staged per tile and combined with q by [`Sided`], as in the sigmoid focal
//! loss; where it matters (q ≤ 0, in practice q = 0) `|σ − q|` is σ itself, accurate to a few
//! ulp, so no extended precision is needed (unlike the Quality Focal Loss).

use crate::extras::quality::out_ptr;
use crate::focal::sigmoid::{Outputs, Summary};
use crate::focal::{with_focusing, Focusing};
use crate::simd::{F32x4, I32x4, M32x4, SumF64};
use crate::source::{target_range, walk, Block, TargetLanes, Targets, Weights};
use crate::xterms::{nan_where_nan, Sided, Staged, Tiles, XTerms, TILE};

/// `(loss, d loss/dx)` per lane, unscaled, for targets `q` and element weights `w`; `floor` 0
/// when the positives' weight is q, 1 when it is 1 (as `max(q, floor)`, q in [0, 1]: one `maxps`
/// where a select is three instructions; a q above 1, refused by the caller, would weigh q).
#[inline(always)]
fn lanes<G: Focusing, const GRAD: bool>(x: F32x4, xt: XTerms, q: F32x4, w: F32x4, alpha: F32x4, floor: F32x4, g: G) -> (F32x4, F32x4) {
    let s = Sided::with(x, q, F32x4::ONE - q, xt);
    let bce = s.bce();
    // p − t and (for the gradient) σ(1 − σ) from one division; the forward computes p − t the
    // same way, so that its loss is the gradient call's bit for bit.
    let (pmt, pq) = if G::FOCUSES { s.p_minus_t_pq() } else { (s.p_minus_t(), F32x4::ZERO) };
    let m = pmt.abs();
    let (pw, dpw) = g.factors(m);
    let positive = q.gt(F32x4::ZERO);
    let fw = M32x4::select(positive, q.pmax(floor), alpha * pw);
    let loss = bce * fw * w;
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let grad = if G::FOCUSES {
        // dw/dx = α·γ·m^(γ−1)·sign(σ − q)·σ(1 − σ) where q ≤ 0, 0 where m = 0 (as SPEC §7's;
        // `factors` gives 0 there but for γ = 1). Where q > 0 it is a zero, not masked out of
        // `bce·dw`: at an infinite logit the product is NaN, as autograd's 0·bce through
        // mmdetection's `(target <= 0)` factor. (A NaN q, refused by the caller, keeps its dw.)
        let sign = pmt.to_bits().and(I32x4::splat(i32::MIN));
        let mut sdpw = F32x4::from_bits(dpw.to_bits().xor(sign));
        if G::UNIT_SLOPE_AT_0 {
            sdpw = sdpw.keep(m.gt(F32x4::ZERO));
        }
        let dw = (alpha * sdpw * pq).keep(positive.not());
        w * (pmt * fw + bce * dw)
    } else {
        // γ = 0: w is constant (`pow`'s backward is 0 for exponent 0); NaN x must make the
        // gradient NaN by itself.
        w * nan_where_nan(x, pmt * fw)
    };
    (loss, grad)
}

/// The outputs as pointers (null: not wanted), for [`run`], which may write them twice.
#[derive(Clone, Copy)]
struct Out {
    loss: *mut f32,
    loss_scale: f32,
    grad: *mut f32,
    grad_scale: f32,
}

/// The parameters of a call.
#[derive(Clone, Copy)]
struct Params {
    alpha: f32,
    iou_weighted: bool,
}

/// Varifocal Loss over `x` (length n) against targets `q` (length n, in [0, 1]: the IoU-aware
/// score of a positive, 0 for a negative), writing the requested outputs (slices of n
/// elements, each times its scale) and returning Σ of the unscaled elementwise losses (f64) and
/// the range of q (NaN if one is NaN), for the caller's check.
///
/// `weights`: [`Weights::Ones`] or [`Weights::Elements`] (per-row weights mean none here).
/// `iou_weighted`: the positives' focal weight is q, else 1. γ = 0, 1 and 2 take [`Focusing`]'s
/// cheap paths.
///
/// Infinite logits give what PyTorch's autograd gives for mmdetection's formula: the BCE is
/// `(1−q)·x − logsigmoid(x)` (+∞ at x = +∞ with q < 1, NaN at x = +∞ with q = 1 and at x = −∞),
/// σ is exactly 0 or 1, and the loss is that BCE times the focal weight; the gradient is NaN
/// for γ > 0 whatever q (autograd multiplies the non-finite BCE by the weight's derivative, a
/// product with σ's derivative, 0, or with the factor `(q ≤ 0)`, 0), and `(σ − q)·w` for γ = 0.
/// NaN logits make their loss and gradient NaN. Where `|σ − q|` is 0 at a finite logit, the
/// weight's derivative is 0 (PyTorch's is NaN for γ < 1, 0·∞).
// `#[inline]`: a non-generic pub fn of the rlib would be compiled into the core module too, where
// the linker drops it but the core's functions come out in another order; the core module must
// stay byte for byte the same.
#[inline]
pub fn varifocal(x: &[f32], q: &[f32], weights: Weights, alpha: f32, gamma: f32, iou_weighted: bool, out: Outputs) -> Summary {
    let n = x.len();
    let q = &q[..n];
    let weights = match weights {
        Weights::Elements(w) => Weights::Elements(&w[..n]),
        _ => Weights::Ones,
    };
    let (loss, loss_scale) = out_ptr(out.loss, n);
    let (grad, grad_scale) = out_ptr(out.grad, n);
    let out = Out { loss, loss_scale, grad, grad_scale };
    let p = Params { alpha, iou_weighted };
    let sum = with_focusing!(gamma, g => run_outputs(x, q, weights, p, g, out));
    Summary { sum, targets: target_range(n, Targets::Soft(q)) }
}

/// A variant of [`run`].
type Kernel<G> = fn(&[f32], &[f32], Weights, Params, G, Out, bool) -> f64;

/// [`run`] with or without the gradient, through a function pointer (see `sigmoid::run_outputs`:
/// with no direct call, wasm-opt keeps each variant a function of its own), and a second pass
/// with PyTorch's terms at infinite logits where the first one's sum is not finite.
#[inline(always)]
fn run_outputs<G: Focusing>(x: &[f32], q: &[f32], weights: Weights, p: Params, g: G, out: Out) -> f64 {
    let kernels: [Kernel<G>; 2] = [run::<G, false>, run::<G, true>];
    let kernel = kernels[!out.grad.is_null() as usize];
    let sum = kernel(x, q, weights, p, g, out, false);
    if sum.is_finite() {
        sum
    } else {
        kernel(x, q, weights, p, g, out, true)
    }
}

struct VarifocalBlock<G, const GRAD: bool> {
    tiles: Tiles,
    g: G,
    alpha: F32x4,
    floor: F32x4,
    sum: SumF64,
    out: Out,
    loss_scale: F32x4,
    grad_scale: F32x4,
}

impl<G: Focusing, const GRAD: bool> Block for VarifocalBlock<G, GRAD> {
    const TILE: usize = TILE;
    #[inline(always)]
    fn tile(&mut self, start: usize, _end: usize) {
        // SAFETY: the walk's tiles start below n.
        unsafe { self.tiles.fill(start) };
    }
    #[inline(always)]
    fn block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        // SAFETY: the walk's blocks lie in the current tile, i + len ≤ n; outputs hold n.
        // Padded lanes read x = 0 (finite), and w = 0 there zeroes their loss.
        let (xt, xv) = unsafe { (self.tiles.get(i), self.tiles.x(i, len)) };
        let (l, d) = lanes::<G, GRAD>(xv, xt, t.float(), w, self.alpha, self.floor, self.g);
        self.sum.add_at(l, i);
        unsafe {
            if !self.out.loss.is_null() {
                (l * self.loss_scale).store_partial(self.out.loss.add(i), len);
            }
            if GRAD {
                (d * self.grad_scale).store_partial(self.out.grad.add(i), len);
            }
        }
    }
}

// Not inlined (see `run_outputs`): one function per (γ path, gradient) variant; the loss output
// is a run-time test, to keep the module small.
#[inline(never)]
fn run<G: Focusing, const GRAD: bool>(x: &[f32], q: &[f32], weights: Weights, p: Params, g: G, out: Out, infinities: bool) -> f64 {
    let mut staged = Staged::new(infinities);
    let mut k = VarifocalBlock::<G, GRAD> {
        tiles: Tiles::new(x, &mut staged),
        g,
        alpha: F32x4::splat(p.alpha),
        floor: if p.iou_weighted { F32x4::ZERO } else { F32x4::ONE },
        sum: SumF64::new(),
        out,
        loss_scale: F32x4::splat(out.loss_scale),
        grad_scale: F32x4::splat(out.grad_scale),
    };
    // One walk for both weight layouts (`source::linear` has one each), to keep the module
    // small: no weights read four ones, again and again, padded with zeros like any weights.
    static ONES: [f32; 4] = [1.0; 4];
    let (w, step) = match weights {
        Weights::Elements(w) => (w.as_ptr(), usize::MAX),
        _ => (ONES.as_ptr(), 0),
    };
    let q = q.as_ptr();
    // SAFETY: the walk's blocks have i + len ≤ n; q and the element weights hold n.
    walk(x.len(), |i, len| unsafe { F32x4::load_partial(q.add(i), len, 0.0) }, |i, len| unsafe { F32x4::load_partial(w.add(i & step), len, 0.0) }, &mut k);
    k.sum.total()
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

    fn pow(m: f64, g: f64) -> f64 {
        if g == 0.0 {
            1.0
        } else {
            m.powf(g)
        }
    }

    /// f64 reference from SPEC §8, for one element: `(loss, d loss/dx)`, unweighted.
    fn reference(x: f64, q: f64, alpha: f64, gamma: f64, iou: bool) -> (f64, f64) {
        let p = sigmoid(x);
        let bce = x.max(0.0) - x * q + (-x.abs()).exp().ln_1p();
        let m = (p - q).abs();
        let (w, dw) = if q > 0.0 {
            (if iou { q } else { 1.0 }, 0.0)
        } else {
            let sign = if p > q { 1.0 } else if p < q { -1.0 } else { 0.0 };
            let dw = if m == 0.0 || gamma == 0.0 { 0.0 } else { alpha * gamma * m.powf(gamma - 1.0) * sign * p * (1.0 - p) };
            (alpha * pow(m, gamma), dw)
        };
        (bce * w, (p - q) * w + bce * dw)
    }

    /// Half negatives (q = 0), the rest positives, 1 among them.
    fn target(rng: &mut Rng) -> f32 {
        match rng.below(8) {
            0..=3 => 0.0,
            4 => 1.0,
            _ => rng.unit().max(1e-6),
        }
    }

    const GAMMAS: [f32; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];

    fn check(x: &[f32], q: &[f32], w: Option<&[f32]>, alpha: f32, gamma: f32, iou: bool) -> f64 {
        let n = x.len();
        let (ls, gs) = (0.5f32, 2.0f32);
        let mut loss = vec![f32::NAN; n];
        let mut grad = vec![f32::NAN; n];
        let weights = w.map_or(Weights::Ones, Weights::Elements);
        let s = varifocal(x, q, weights, alpha, gamma, iou, Outputs { loss: Some((&mut loss, ls)), grad: Some((&mut grad, gs)) });
        let mut want_sum = 0.0;
        let mut worst = 0.0f64;
        for i in 0..n {
            let wi = w.map_or(1.0, |w| w[i] as f64);
            let (l, g) = reference(x[i] as f64, q[i] as f64, alpha as f64, gamma as f64, iou);
            let (l, g) = (l * wi, g * wi);
            want_sum += l;
            let el = (loss[i] as f64 - l * ls as f64).abs() / (l * ls as f64).abs().max(1.0);
            let eg = (grad[i] as f64 - g * gs as f64).abs() / (g * gs as f64).abs().max(1.0);
            worst = worst.max(el).max(eg);
            let what = format!("n={n} γ={gamma} α={alpha} iou={iou} x={} q={}", x[i], q[i]);
            assert!(el <= 1e-5, "{what}: loss {} vs {}", loss[i], l * ls as f64);
            assert!(eg <= 1e-5, "{what}: grad {} vs {}", grad[i], g * gs as f64);
        }
        assert!((s.sum - want_sum).abs() <= 1e-5 * want_sum.abs(), "n={n} γ={gamma}: sum {} vs {want_sum}", s.sum);
        worst
    }

    #[test]
    fn matches_f64_reference_at_every_size() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut worst = 0.0f64;
        let mut cases = 0;
        let mut sizes: Vec<usize> = (1..=70).collect();
        sizes.extend_from_slice(&[255, 256, 257, 263, 512, 777, 1031]);
        for &n in &sizes {
            let x: Vec<f32> = (0..n).map(|_| logit(&mut rng)).collect();
            let q: Vec<f32> = (0..n).map(|_| target(&mut rng)).collect();
            let w: Vec<f32> = (0..n).map(|_| rng.unit() * 2.0).collect();
            for &gamma in &GAMMAS {
                for &(alpha, iou) in &[(0.75f32, true), (0.75, false), (0.25, true)] {
                    let w = if rng.below(2) == 0 { Some(&w[..]) } else { None };
                    worst = worst.max(check(&x, &q, w, alpha, gamma, iou));
                    cases += 1;
                }
            }
        }
        println!("varifocal: {cases} cases, worst error {worst:.2e} of max(1, |ref|)");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let points = [(-3.0f64, 0.0f64), (-0.7, 0.0), (0.3, 0.35), (1.25, 0.9), (2.5, 1.0), (4.0, 0.0), (0.0, 0.0), (-1.5, 0.2)];
        for &gamma in &GAMMAS {
            for &iou in &[true, false] {
                for &(x, q) in &points {
                    let f = |x: f64| reference(x, q, 0.75, gamma as f64, iou).0;
                    let h = 1e-5;
                    let fd = (f(x + h) - f(x - h)) / (2.0 * h);
                    let (_, g) = reference(x, q, 0.75, gamma as f64, iou);
                    assert!((fd - g).abs() <= 1e-6 * g.abs().max(1.0), "γ={gamma} x={x} q={q}: fd {fd} vs {g}");
                    let mut out = [0.0f32; 1];
                    varifocal(&[x as f32], &[q as f32], Weights::Ones, 0.75, gamma, iou, Outputs { loss: None, grad: Some((&mut out, 1.0)) });
                    let (_, g32) = reference(x as f32 as f64, q as f32 as f64, 0.75, gamma as f64, iou);
                    assert!((out[0] as f64 - g32).abs() <= 1e-5 * g32.abs().max(1.0), "γ={gamma} x={x} q={q}: kernel {} vs {g32}", out[0]);
                }
            }
        }
    }

    /// mmdetection's `varifocal_loss` under PyTorch's autograd, op by op in f64 (one element):
    /// `focal_weight = q·(q > 0) + α·|σ − q|^γ·(q ≤ 0)` (iouWeighted), BCE as ATen's
    /// `(1−q)·x − logsigmoid(x)`, `pow`'s backward 0 for exponent 0, σ' = σ(1 − σ).
    fn torch(x: f64, q: f64, alpha: f64, gamma: f64, iou: bool) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-x).exp());
        let bce = (1.0 - q) * x - (x.min(0.0) - (-x.abs()).exp().ln_1p());
        let (pos, neg) = if q > 0.0 { (1.0, 0.0) } else { (0.0, 1.0) };
        let m = (p - q).abs();
        let fw = (if iou { q } else { 1.0 }) * pos + alpha * pow(m, gamma) * neg;
        // d loss/d pow = bce·α·neg; through pow, abs (sign(σ − q)), σ − q, σ.
        let via_w = if gamma == 0.0 {
            0.0
        } else {
            let sign = if p > q { 1.0 } else if p < q { -1.0 } else { 0.0 };
            bce * alpha * neg * gamma * m.powf(gamma - 1.0) * sign * (p * (1.0 - p))
        };
        (bce * fw, fw * (p - q) + via_w)
    }

    #[test]
    fn infinite_and_nan_logits_as_pytorch() {
        let same = |got: f32, want: f64| {
            if want.is_nan() {
                got.is_nan()
            } else if want.is_infinite() {
                got as f64 == want
            } else {
                (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0)
            }
        };
        for &gamma in &GAMMAS {
            for &iou in &[true, false] {
                for &alpha in &[0.75f32, 0.0] {
                    for &q in &[0.0f32, 0.3, 0.5, 1.0] {
                        for &inf in &[f32::INFINITY, f32::NEG_INFINITY] {
                            let x = [1.5, inf, -0.5, 0.0, inf, 3.0];
                            let qs = [q; 6];
                            let (mut l, mut g) = ([0.0f32; 6], [0.0f32; 6]);
                            let s = varifocal(&x, &qs, Weights::Ones, alpha, gamma, iou, Outputs { loss: Some((&mut l, 1.0)), grad: Some((&mut g, 1.0)) });
                            assert!(!s.sum.is_finite());
                            for i in 0..6 {
                                // Finite logits: SPEC §8 (x = 0, q = 0.5 is σ = q, where
                                // PyTorch's γ < 1 gradient is 0·∞ = NaN and SPEC's is finite).
                                let f = if x[i].is_finite() { reference } else { torch };
                                let (wl, wg) = f(x[i] as f64, q as f64, alpha as f64, gamma as f64, iou);
                                assert!(same(l[i], wl) && same(g[i], wg), "x={} q={q} γ={gamma} α={alpha} iou={iou}: ({}, {}) vs torch ({wl}, {wg})", x[i], l[i], g[i]);
                            }
                        }
                    }
                }
            }
        }
        for &gamma in &GAMMAS {
            let x = [0.5f32, f32::NAN, -1.0, f32::NAN, 2.0];
            let q = [0.0f32, 0.0, 0.7, 0.7, 0.0];
            let (mut l, mut g) = ([0.0f32; 5], [0.0f32; 5]);
            let s = varifocal(&x, &q, Weights::Ones, 0.75, gamma, true, Outputs { loss: Some((&mut l, 1.0)), grad: Some((&mut g, 1.0)) });
            assert!(s.sum.is_nan());
            for i in 0..5 {
                assert_eq!((l[i].is_nan(), g[i].is_nan()), (x[i].is_nan(), x[i].is_nan()), "γ={gamma} [{i}]: {} {}", l[i], g[i]);
            }
        }
    }

    #[test]
    fn outputs_on_demand_and_target_range() {
        let mut rng = Rng(99);
        let n = 3 * TILE + 7;
        let x: Vec<f32> = (0..n).map(|_| logit(&mut rng)).collect();
        let q: Vec<f32> = (0..n).map(|_| target(&mut rng)).collect();
        let w: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
        for &gamma in &[0.5f32, 2.0] {
            let run = |loss: Option<&mut [f32]>, grad: Option<&mut [f32]>| {
                varifocal(&x, &q, Weights::Elements(&w), 0.75, gamma, true, Outputs { loss: loss.map(|s| (s, 1.0)), grad: grad.map(|s| (s, 1.0)) }).sum
            };
            let (mut l1, mut g1, mut l2, mut g2) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            let all = run(Some(&mut l1), Some(&mut g1));
            let loss_only = run(Some(&mut l2), None);
            let grad_only = run(None, Some(&mut g2));
            assert!(all == loss_only && all == grad_only && all == run(None, None));
            assert_eq!((l1, g1), (l2, g2));
        }
        let r = |q: &[f32]| varifocal(&vec![0.0; q.len()], q, Weights::Ones, 0.75, 2.0, true, Outputs { loss: None, grad: None }).targets;
        assert_eq!((r(&[0.0, 0.5, 1.0, 0.25, 0.75]).min, r(&[0.0, 0.5, 1.0, 0.25, 0.75]).max), (0.0, 1.0));
        assert!(r(&[0.0, 0.3, f32::NAN, 1.0, 0.0]).max.is_nan());
        assert_eq!(r(&[0.0, 1.5]).max, 1.5);
        assert_eq!(varifocal(&[], &[], Weights::Ones, 0.75, 2.0, true, Outputs { loss: None, grad: None }).sum, 0.0);
    }
}
