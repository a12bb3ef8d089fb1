//! Sigmoid focal loss, docs/SPEC.md §1 (mmdetection `py_sigmoid_focal_loss`, torchvision
//! `sigmoid_focal_loss`), with its gradient, in one pass.
//!
//! Numerics: see [`Sided`].
//!
//! With a [`Poly1`] focusing, the same kernels give the Poly-1 focal loss of §6
//! ([`sigmoid_focal_poly`]).

use super::{with_focusing, Focusing, Poly1};
use crate::simd::{F32x4, I32x4, SumF64};
use crate::source::{target_range, with_layout, Block, Layout, TargetLanes, TargetRange, Targets, Weights};
use crate::xterms::{nan_where_nan, Binary, Sided, Staged, Tiles, XTerms, TILE};

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

    /// Each lane's class weight for soft targets `t` (`omt` = 1 - t): `pos·t + neg·(1-t)`, two
    /// non-negative terms, so no cancellation when α is near 0 or 1.
    #[inline(always)]
    pub(super) fn weight(self, t: F32x4, omt: F32x4) -> F32x4 {
        F32x4::splat(self.pos) * t + F32x4::splat(self.neg) * omt
    }

    /// [`Alpha::weight`] for 0/1 targets, given their sign bits `tsign` (set where t = 1): `pos`
    /// or `neg` picked by bits, one instruction fewer than the products. The same bits: with t
    /// exactly 0 or 1, one product is exactly the weight and the other exactly 0.
    #[inline(always)]
    fn weight_binary(self, tsign: I32x4) -> F32x4 {
        let (pos, neg) = (self.pos.to_bits() as i32, self.neg.to_bits() as i32);
        F32x4::from_bits(I32x4::splat(neg).xor(tsign.shr(31).and(I32x4::splat(pos ^ neg))))
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


/// A Poly-1 term, negated, as +0 where ε = 0: the kernels subtract it, and `v - (+0)` is `v`
/// bit for bit, so ε = 0 gives the plain loss (see [`Poly1`]). The splat and the compare are
/// loop-invariant.
#[inline(always)]
fn poly_off_zero<G: Focusing>(g: G, neg_term: F32x4) -> F32x4 {
    neg_term.keep(F32x4::splat(g.eps()).ne(F32x4::ZERO))
}

/// `(loss, dloss/dx)` per lane, unscaled, for targets `t` and weights `w`.
///
/// Poly-1 (`G::POLY`): `+ w·ε·pt^(γ+1)` (α_t on the focal term only), and its derivative
/// `w·ε(γ+1)·pt^γ·p(1-p)·(1-2t)`.
#[inline(always)]
fn lanes<G: Focusing, const GRAD: bool>(x: F32x4, xt: XTerms, t: F32x4, w: F32x4, a: Alpha, g: G) -> (F32x4, F32x4) {
    let omt = F32x4::ONE - t;
    let s = Sided::with(x, t, omt, xt);
    let bce = s.bce();
    let aw = a.weight(t, omt);
    let pt = s.pt();
    let (pw, dpw) = g.factors(pt);
    let aww = aw * w;
    let mut loss = aww * pw * bce;
    if G::POLY {
        loss = loss - poly_off_zero(g, w * F32x4::splat(-g.eps()) * (pw * pt));
    }
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let slope = pw * s.p_minus_t();
    // Without the BCE (γ = 0), NaN x must make the gradient NaN by itself.
    let mut grad = if G::FOCUSES { aww * (dpw * s.pq() * (omt - t) * bce + slope) } else { aww * nan_where_nan(x, slope) };
    if G::POLY {
        // 1 - 2t last, as `lanes_binary` applies its sign: the two agree bit for bit.
        grad = grad - poly_off_zero(g, w * F32x4::splat(-g.eps_g1()) * (pw * s.pq()) * (omt - t));
    }
    (loss, grad)
}

/// [`lanes`] for 0/1 targets through [`Binary`], with the same results bit for bit: `p - t` and
/// `1 - 2t` are ±pt and ±1 with the sign of t, so the gradient is `±aww·(dpw·pq·bce + pw·pt)`.
#[inline(always)]
fn lanes_binary<G: Focusing, const GRAD: bool>(x: F32x4, xt: XTerms, tsign: I32x4, w: F32x4, a: Alpha, g: G) -> (F32x4, F32x4) {
    let Binary { pt, bce, tsign } = Binary::with(x, tsign, xt);
    let aw = a.weight_binary(tsign);
    let (pw, dpw) = g.factors(pt);
    let aww = aw * w;
    let mut loss = aww * pw * bce;
    if G::POLY {
        loss = loss - poly_off_zero(g, w * F32x4::splat(-g.eps()) * (pw * pt));
    }
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let grad = if G::FOCUSES {
        let r = F32x4::ONE / xt.d;
        aww * (dpw * (xt.e * (r * r)) * bce + pw * pt)
    } else {
        aww * nan_where_nan(x, pw * pt)
    };
    let mut grad = F32x4::from_bits(grad.to_bits().xor(tsign));
    if G::POLY {
        // The term's 1 - 2t is ±1, the sign of t, applied to the term before the difference (as
        // `lanes` multiplies by it), so that a zero difference has `lanes`' sign too.
        let r = F32x4::ONE / xt.d;
        let neg_term = w * F32x4::splat(-g.eps_g1()) * (pw * (xt.e * (r * r)));
        grad = grad - poly_off_zero(g, F32x4::from_bits(neg_term.to_bits().xor(tsign)));
    }
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
    let sum = with_focusing!(gamma, g => with_layout!(targets, l => run_outputs(x, l, weights, alpha, g, out)));
    Summary { sum, targets: target_range(x.len(), targets) }
}

/// Poly-1 sigmoid focal loss, docs/SPEC.md §6: [`sigmoid_focal`]'s loss plus `w·ε·pt^(γ+1)` per
/// element (α on the focal term only; the element weight `w` on the whole loss, as mmdetection's
/// `weight_reduce_loss` applies it), and its gradient. ε = 0 gives [`sigmoid_focal`]'s results
/// bit for bit.
///
/// At an infinite logit (the second pass, see `run_outputs`) pt is 1 - t at x = +∞ and t at
/// x = -∞ (so 0 or 1 for 0/1 targets): the term `ε·pt^(γ+1)` is finite and its derivative 0
/// (`p(1-p)` is 0 there), so the loss is the focal loss there (+∞ or NaN) plus a finite number,
/// and the gradient the focal gradient, as autograd gives both.
pub fn sigmoid_focal_poly(
    x: &[f32],
    targets: Targets,
    weights: Weights,
    alpha: Alpha,
    gamma: f32,
    eps: f32,
    out: Outputs,
) -> Summary {
    let sum = with_focusing!(gamma, g => with_layout!(targets, l => run_outputs(x, l, weights, alpha, Poly1::new(g, gamma, eps), out)));
    Summary { sum, targets: target_range(x.len(), targets) }
}

/// A variant of [`run`].
type Kernel<G, L> = fn(&[f32], L, Weights, Alpha, G, Out, bool) -> f64;

/// [`Outputs`] as pointers, for [`run`], which may write them twice.
#[derive(Clone, Copy)]
struct Out {
    loss: *mut f32,
    loss_scale: f32,
    grad: *mut f32,
    grad_scale: f32,
}

/// [`run`] for the outputs `out` asks for, called through a function pointer picked from a table.
/// With no direct call, the variants stay functions of their own whatever an inliner's
/// heuristics: wasm-opt inlines any function with a single direct caller, whatever its size,
/// and would merge all of them into their dispatcher (scripts/lib/wasm.mjs fails the build if
/// a module ever has such a function).
#[inline(always)]
fn run_outputs<G: Focusing, L: Layout>(x: &[f32], targets: L, weights: Weights, alpha: Alpha, g: G, out: Outputs) -> f64 {
    let kernels: [Kernel<G, L>; 4] = [run::<G, L, false, false>, run::<G, L, false, true>, run::<G, L, true, false>, run::<G, L, true, true>];
    let kernel = kernels[2 * out.loss.is_some() as usize + out.grad.is_some() as usize];
    let ptr = |o: Option<(&mut [f32], f32)>| o.map_or((core::ptr::null_mut(), 0.0), |(s, k)| (s.as_mut_ptr(), k));
    let ((loss, loss_scale), (grad, grad_scale)) = (ptr(out.loss), ptr(out.grad));
    let out = Out { loss, loss_scale, grad, grad_scale };
    let sum = kernel(x, targets, weights, alpha, g, out, false);
    // A second pass, with PyTorch's terms at infinite logits, only where the first one's sum
    // says there may be some (see `Staged::infinities`); it writes every output again.
    if sum.is_finite() {
        sum
    } else {
        kernel(x, targets, weights, alpha, g, out, true)
    }
}

struct SigmoidBlock<G, const LOSS: bool, const GRAD: bool> {
    tiles: Tiles,
    alpha: Alpha,
    g: G,
    sum: SumF64,
    loss_out: *mut f32,
    loss_scale: F32x4,
    grad_out: *mut f32,
    grad_scale: F32x4,
}

impl<G: Focusing, const LOSS: bool, const GRAD: bool> SigmoidBlock<G, LOSS, GRAD> {
    #[inline(always)]
    fn lanes_out<const ROWS: bool, T: TargetLanes>(&mut self, i: usize, len: usize, xt: XTerms, t: T, w: F32x4) {
        // Padded lanes read x = 0: finite, and w = 0 there zeroes their loss.
        let xv = unsafe { self.tiles.x(i, len) };
        let (l, d) = if T::BINARY {
            lanes_binary::<G, GRAD>(xv, xt, t.one_bits(), w, self.alpha, self.g)
        } else {
            lanes::<G, GRAD>(xv, xt, t.float(), w, self.alpha, self.g)
        };
        // Row walks count their blocks: with C not a multiple of 4, their offsets are not.
        if ROWS {
            self.sum.add(l);
        } else {
            self.sum.add_at(l, i);
        }
        unsafe {
            if LOSS {
                (l * self.loss_scale).store_partial(self.loss_out.add(i), len);
            }
            if GRAD {
                (d * self.grad_scale).store_partial(self.grad_out.add(i), len);
            }
        }
    }
}

impl<G: Focusing, const LOSS: bool, const GRAD: bool> Block for SigmoidBlock<G, LOSS, GRAD> {
    const TILE: usize = TILE;
    #[inline(always)]
    fn tile(&mut self, start: usize, _end: usize) {
        unsafe { self.tiles.fill(start) };
    }
    #[inline(always)]
    fn block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        let xt = unsafe { self.tiles.get(i) };
        self.lanes_out::<false, T>(i, len, xt, t, w);
    }
    #[inline(always)]
    fn row_block<T: TargetLanes>(&mut self, i: usize, len: usize, t: T, w: F32x4) {
        let xt = unsafe { self.tiles.at(i, len) };
        self.lanes_out::<true, T>(i, len, xt, t, w);
    }
}

// Not inlined (see `run_outputs`): each (γ path, target layout, outputs) variant stays its own
// wasm function, so an engine optimizes just the variants in use, and each quickly (V8 tiers up
// per function; one function holding every variant takes its optimizing compiler seconds, and
// compiles the loops markedly slower: 5.0 vs 3.0 ns per element, forward). The layout is a type
// and the outputs are const parameters so that a variant holds only its own layout's walk, and
// its hot loop no test or pointer for an output it lacks.
#[inline(never)]
fn run<G: Focusing, L: Layout, const LOSS: bool, const GRAD: bool>(
    x: &[f32],
    targets: L,
    weights: Weights,
    alpha: Alpha,
    g: G,
    out: Out,
    infinities: bool,
) -> f64 {
    let mut staged = Staged::new(infinities);
    let mut k = SigmoidBlock::<G, LOSS, GRAD> {
        tiles: Tiles::new(x, &mut staged),
        alpha,
        g,
        sum: SumF64::new(),
        loss_out: out.loss,
        loss_scale: F32x4::splat(out.loss_scale),
        grad_out: out.grad,
        grad_scale: F32x4::splat(out.grad_scale),
    };
    targets.for_each_block(x.len(), weights, &mut k);
    k.sum.total()
}

struct CountBlock {
    pos: u64,
    all: u64,
}

impl Block for CountBlock {
    #[inline(always)]
    fn block<T: TargetLanes>(&mut self, _: usize, _: usize, t: T, w: F32x4) {
        let valid = w.gt(F32x4::ZERO);
        self.pos += valid.and(t.float().ge(F32x4::splat(0.5))).count() as u64;
        self.all += valid.count() as u64;
    }
}

/// The counts behind α = 'auto': (positives, negatives) among elements with weight > 0, a
/// positive being t ≥ 0.5 (SPEC §1). Exact: counts are kept as integers.
pub fn count_pos_neg(n: usize, targets: Targets, weights: Weights) -> (u64, u64) {
    let mut k = CountBlock { pos: 0, all: 0 };
    with_layout!(targets, l => l.for_each_block(n, weights, &mut k));
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

    fn labels_match_one_hot(c: usize, labels: &[i32], rw: &[f32]) {
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
        let a = run(Targets::Labels { labels, num_classes: c }, Weights::Rows(rw), &mut g1);
        let b = run(Targets::Binary(&onehot), Weights::Elements(&ew), &mut g2);
        // Blocks of four differ (rows are walked separately), so sums agree to rounding only.
        assert!((a - b).abs() <= 1e-6 * b.abs(), "C={c}: {a} vs {b}");
        assert_eq!(g1, g2, "C={c}");
    }

    /// Bitwise equal, NaN matching any NaN.
    fn same_bits(a: &[f32], b: &[f32], what: &str) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{what}[{i}]: {x} vs {y}");
        }
    }

    #[test]
    fn binary_path_equals_the_soft_path_bit_for_bit() {
        let n = 1001;
        let mut finite: Vec<f32> = (0..n).map(|i| ((i * 7919 % 409) as f32 - 204.0) * 0.11).collect();
        finite[..6].copy_from_slice(&[0.0, -0.0, 88.0, -88.0, 1e4, -1e4]);
        let mut special = finite.clone();
        special[..4].copy_from_slice(&[f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let tb: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let ts: Vec<f32> = tb.iter().map(|&v| v as f32).collect();
        let w: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.5).collect();
        for (xs, &gamma) in [&finite, &special].iter().flat_map(|xs| [0.0f32, 1.0, 2.0, 1.5].iter().map(move |g| (*xs, g))) {
            for alpha in [Some(0.25), None] {
                for weights in [Weights::Ones, Weights::Elements(&w)] {
                    let run = |t: Targets| {
                        let (mut l, mut g) = (vec![0.0f32; n], vec![0.0f32; n]);
                        let s = sigmoid_focal(xs, t, weights, Alpha::new(alpha), gamma, Outputs { loss: Some((&mut l, 1.0)), grad: Some((&mut g, 1.0)) });
                        (s.sum, l, g)
                    };
                    let (sb, lb, gb) = run(Targets::Binary(&tb));
                    let (ss, ls, gs) = run(Targets::Soft(&ts));
                    same_bits(&lb, &ls, "loss");
                    same_bits(&gb, &gs, "grad");
                    assert!(sb.to_bits() == ss.to_bits() || (sb.is_nan() && ss.is_nan()), "sum {sb} vs {ss}");
                }
            }
        }
    }

    /// torchvision's `sigmoid_focal_loss` and its autograd gradient, op by op in f64: BCE as
    /// ATen's `(1-t)·x - logsigmoid(x)`, `pow`'s backward 0 for exponent 0 (test/edges.test.ts
    /// has the same in TypeScript).
    fn torch(x: f64, t: f64, alpha: Option<f64>, gamma: f64) -> (f64, f64) {
        let p = 1.0 / (1.0 + (-x).exp());
        let ce = (1.0 - t) * x - (x.min(0.0) - (-x.abs()).exp().ln_1p());
        let pt = p * t + (1.0 - p) * (1.0 - t);
        let m = (1.0 - pt).powf(gamma);
        let at = alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
        let gbase = if gamma == 0.0 { 0.0 } else { at * ce * gamma * (1.0 - pt).powf(gamma - 1.0) };
        let gp = -gbase * t + gbase * (1.0 - t);
        (at * (ce * m), at * m * (p - t) + gp * (1.0 - p) * p)
    }

    #[test]
    fn infinite_logits_as_pytorch() {
        let same = |got: f32, want: f64| if want.is_finite() { (got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0) } else { got.is_nan() && want.is_nan() || got as f64 == want };
        for &gamma in &[0.0f32, 0.5, 1.0, 1.5, 2.0] {
            for alpha in [Some(0.25), None] {
                for &t in &[0.0f32, 1.0, 0.3, 0.5] {
                    for &inf in &[f32::INFINITY, f32::NEG_INFINITY] {
                        // In a block with finite logits, which must keep their values.
                        let xs = [1.5, inf, -0.5, 0.0, inf, 3.0];
                        let ts = [t; 6];
                        let tb = [t as u8; 6];
                        let mut targets = vec![Targets::Soft(&ts)];
                        if t == 0.0 || t == 1.0 {
                            targets.push(Targets::Binary(&tb));
                        }
                        for tg in targets {
                            let (mut l, mut g) = ([0.0f32; 6], [0.0f32; 6]);
                            sigmoid_focal(&xs, tg, Weights::Ones, Alpha::new(alpha), gamma, Outputs { loss: Some((&mut l, 1.0)), grad: Some((&mut g, 1.0)) });
                            for i in 0..6 {
                                let (wl, wg) = torch(xs[i] as f64, t as f64, alpha, gamma as f64);
                                assert!(same(l[i], wl) && same(g[i], wg), "x={} t={t} γ={gamma} α={alpha:?}: ({}, {}) vs torch ({wl}, {wg})", xs[i], l[i], g[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn labels_equal_the_one_hot_matrix() {
        let labels = [0i32, 4, 5, 2, 5, 1, 3];
        let rw = [1.0f32, 0.5, 2.0, 0.0, 1.0, 1.0, 3.0];
        labels_match_one_hot(5, &labels, &rw);
        assert_eq!(count_pos_neg(35, Targets::Labels { labels: &labels, num_classes: 5 }, Weights::Rows(&rw)), (4, 26));
        // Many rows of odd widths: row blocks straddle the staged tiles' ends (see `Staged`).
        for c in [3usize, 7, 13, 80] {
            let rows = 3 * TILE / c + 5;
            let labels: Vec<i32> = (0..rows).map(|r| ((r * 31 + 7) % (c + 1)) as i32).collect();
            let rw: Vec<f32> = (0..rows).map(|r| (r % 5) as f32 * 0.5).collect();
            labels_match_one_hot(c, &labels, &rw);
        }
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

/// Poly-1 (docs/SPEC.md §6): ε = 0 against the plain kernel bit for bit, ε ≠ 0 against a float64
/// reference and finite differences, in every target layout, weight kind and γ path.
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
        fn pick<T: Copy>(&mut self, v: &[T]) -> T {
            v[(self.next() * v.len() as f64) as usize % v.len()]
        }
    }

    const GAMMAS: [f32; 4] = [0.0, 1.0, 2.0, 1.5];

    /// One batch: logits, the three target layouts' data and both weight arrays.
    struct Batch {
        x: Vec<f32>,
        soft: Vec<f32>,
        bytes: Vec<u8>,
        labels: Vec<i32>,
        c: usize,
        ew: Vec<f32>,
        rw: Vec<f32>,
    }

    /// `n` elements (rounded down to whole rows of `c` for the labels), logits in [-12, 12] with
    /// some large ones, and with `special` NaN, ±∞, ±0 and weights that are 0, negative or ∞.
    fn batch(rng: &mut Rng, n: usize, c: usize, special: bool) -> Batch {
        let mut x: Vec<f32> = (0..n).map(|_| (rng.next() * 24.0 - 12.0) as f32).collect();
        let mut ew: Vec<f32> = (0..n).map(|_| rng.pick(&[1.0f32, 0.5, 2.5, 0.0, -1.5, 0.25])).collect();
        let big = [30.0f32, -30.0, 88.0, -88.0, 1e4, -1e4, 0.0, -0.0];
        let spec = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
        for i in 0..n {
            let r = rng.next();
            if r < 0.1 {
                x[i] = rng.pick(&big);
            } else if special && r < 0.25 {
                x[i] = rng.pick(&spec);
            }
            if special && rng.next() < 0.05 {
                ew[i] = rng.pick(&[f32::INFINITY, -0.0, f32::NEG_INFINITY]);
            }
        }
        // Exact 0, 1 and 0.5, and uniform ones (-1 stands for those).
        let soft = (0..n)
            .map(|_| {
                let t = rng.pick(&[0.0f32, 1.0, 0.5, -1.0, 0.75, 0.01, 0.999]);
                if t < 0.0 {
                    rng.next() as f32
                } else {
                    t
                }
            })
            .collect();
        let bytes = (0..n).map(|_| (rng.next() < 0.3) as u8).collect();
        let rows = n / c;
        let labels = (0..rows).map(|_| (rng.next() * (c + 1) as f64) as i32).collect();
        let rw = (0..rows).map(|_| rng.pick(&[1.0f32, 0.5, 0.0, -2.0, 3.0])).collect();
        Batch { x, soft, bytes, labels, c, ew, rw }
    }

    impl Batch {
        /// Every (targets, weights) combination the kernels take.
        fn cases(&self) -> Vec<(&'static str, usize, Targets<'_>, Weights<'_>)> {
            let n = self.x.len();
            let m = n / self.c * self.c;
            let mut v = Vec::new();
            for (wn, w) in [("ones", Weights::Ones), ("elements", Weights::Elements(&self.ew))] {
                v.push((wn, n, Targets::Soft(&self.soft), w));
                v.push((wn, n, Targets::Binary(&self.bytes), w));
                v.push((wn, m, Targets::Labels { labels: &self.labels, num_classes: self.c }, w));
            }
            v.push(("rows", m, Targets::Labels { labels: &self.labels, num_classes: self.c }, Weights::Rows(&self.rw)));
            v
        }
    }

    /// (Σ, loss, grad) of one call; `eps` None is the plain kernel. `outs`: bit 1 loss, bit 0 grad.
    fn call(x: &[f32], t: Targets, w: Weights, alpha: Option<f64>, gamma: f32, eps: Option<f32>, outs: usize) -> (f64, Vec<f32>, Vec<f32>) {
        let n = x.len();
        let (mut l, mut g) = (vec![7.0f32; n], vec![7.0f32; n]);
        let out = Outputs { loss: if outs & 2 != 0 { Some((&mut l[..], 0.5)) } else { None }, grad: if outs & 1 != 0 { Some((&mut g[..], 2.0)) } else { None } };
        let s = match eps {
            None => sigmoid_focal(x, t, w, Alpha::new(alpha), gamma, out),
            Some(e) => sigmoid_focal_poly(x, t, w, Alpha::new(alpha), gamma, e, out),
        };
        (s.sum, l, g)
    }

    fn w_at(w: Weights, i: usize) -> f32 {
        match w { Weights::Elements(e) => e[i], _ => 1.0 }
    }

    fn same_bits(a: &[f32], b: &[f32], what: &str) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{what}[{i}]: {x:e} vs {y:e}");
        }
    }

    /// Sizes 1..=70 (every tail), and some past a tile (TILE = 256) for the tiles' seams.
    fn sizes() -> Vec<usize> {
        let mut v: Vec<usize> = (1..=70).collect();
        v.extend_from_slice(&[255, 257, 333, 600]);
        v
    }

    #[test]
    fn eps_zero_is_the_plain_kernel_bit_for_bit() {
        let mut rng = Rng(1);
        let mut calls = 0;
        for n in sizes() {
            for special in [false, true] {
                let c = rng.pick(&[1usize, 3, 4, 5, 8, 13, 20]).min(n);
                let b = batch(&mut rng, n, c, special);
                for (wn, m, t, w) in b.cases() {
                    let x = &b.x[..m];
                    for gamma in GAMMAS {
                        for alpha in [Some(0.25), None] {
                            for outs in 0..4 {
                                let (s0, l0, g0) = call(x, t, w, alpha, gamma, None, outs);
                                for eps in [0.0f32, -0.0] {
                                    let (s1, l1, g1) = call(x, t, w, alpha, gamma, Some(eps), outs);
                                    let what = format!("n={n} C={c} {wn} γ={gamma} α={alpha:?} outs={outs} ε={eps}");
                                    assert!(s0.to_bits() == s1.to_bits() || (s0.is_nan() && s1.is_nan()), "{what}: Σ {s0:e} vs {s1:e}");
                                    same_bits(&l0, &l1, &format!("{what} loss"));
                                    same_bits(&g0, &g1, &format!("{what} grad"));
                                    calls += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(calls > 40_000, "{calls}");
    }

    /// §6 in f64 for one element: (loss, d loss/dx), the weight on the whole loss.
    fn reference(x: f64, t: f64, w: f64, alpha: Option<f64>, gamma: f64, eps: f64) -> (f64, f64) {
        let sig = |z: f64| if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
        let (p, omp) = (sig(x), sig(-x));
        let bce = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        // q = p + t - 2pt, formed without cancellation.
        let q = omp * t + p * (1.0 - t);
        let aw = alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
        let loss = w * (aw * q.powf(gamma) * bce + eps * q.powf(gamma + 1.0));
        let pq = p * omp;
        let first = if q == 0.0 && gamma < 1.0 { 0.0 } else { gamma * q.powf(gamma - 1.0) * pq * (1.0 - 2.0 * t) * bce };
        let grad = w * (aw * (first + q.powf(gamma) * (p - t)) + eps * (gamma + 1.0) * q.powf(gamma) * (1.0 - 2.0 * t) * pq);
        (loss, grad)
    }

    /// SPEC §5's per-element bound.
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-5 * want.abs().max(1.0)
    }

    #[test]
    fn eps_matches_the_f64_reference() {
        let mut rng = Rng(2);
        let mut checked = 0u64;
        for n in sizes() {
            let c = rng.pick(&[1usize, 3, 4, 5, 8, 13, 20]).min(n);
            let b = batch(&mut rng, n, c, false);
            for (wn, m, t, w) in b.cases() {
                let x = &b.x[..m];
                // Each element's target and weight, as the layouts give them.
                let (tt, ww): (Vec<f64>, Vec<f64>) = (0..m)
                    .map(|i| {
                        let ti = match t {
                            Targets::Soft(s) => s[i] as f64,
                            Targets::Binary(s) => s[i] as f64,
                            Targets::Labels { labels, num_classes } => (labels[i / num_classes] == (i % num_classes) as i32) as u8 as f64,
                        };
                        let wi = match w {
                            Weights::Ones => 1.0,
                            Weights::Elements(e) => e[i] as f64,
                            Weights::Rows(r) => r[i / c] as f64,
                        };
                        (ti, wi)
                    })
                    .unzip();
                for gamma in [0.0f32, 1.0, 2.0, 1.5, 0.5, 3.0] {
                    for alpha in [Some(0.25), None] {
                        for eps in [-1.0f32, 0.5, 2.0, 1e3] {
                            let (s, l, g) = call(x, t, w, alpha, gamma, Some(eps), 3);
                            let (mut want_sum, mut abs_sum) = (0.0, 0.0);
                            for i in 0..m {
                                let (rl, rg) = reference(x[i] as f64, tt[i], ww[i], alpha, gamma as f64, eps as f64);
                                want_sum += rl;
                                abs_sum += rl.abs();
                                let what = format!("n={n} {wn} x={} t={} w={} γ={gamma} α={alpha:?} ε={eps}", x[i], tt[i], ww[i]);
                                assert!(close(l[i] as f64 / 0.5, rl), "{what}: loss {} vs {rl}", l[i] / 0.5);
                                assert!(close(g[i] as f64 / 2.0, rg), "{what}: grad {} vs {rg}", g[i] / 2.0);
                                checked += 1;
                            }
                            assert!((s - want_sum).abs() <= 1e-5 * abs_sum.max(1.0), "n={n} {wn} γ={gamma} ε={eps}: Σ {s} vs {want_sum}");
                        }
                    }
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    /// The reference's gradient, and the kernel's, against central differences of the
    /// reference's loss.
    #[test]
    fn gradient_is_the_finite_difference_of_the_reference() {
        let mut rng = Rng(3);
        let mut checked = 0;
        for _ in 0..4000 {
            let x = rng.next() * 24.0 - 12.0;
            let x = x as f32;
            let u = rng.next() as f32;
            let t = rng.pick(&[0.0f32, 1.0, 0.5, u]);
            let w = rng.pick(&[1.0f32, 0.5, -2.0]);
            let gamma = rng.pick(&[0.0f32, 1.0, 2.0, 1.5, 0.5]);
            let eps = rng.pick(&[-1.0f32, 0.5, 2.0, 1e3]);
            let alpha = rng.pick(&[Some(0.25), None]);
            let (xf, tf, wf, gf, ef) = (x as f64, t as f64, w as f64, gamma as f64, eps as f64);
            let h = 1e-5 * xf.abs().max(1.0);
            let fd = (reference(xf + h, tf, wf, alpha, gf, ef).0 - reference(xf - h, tf, wf, alpha, gf, ef).0) / (2.0 * h);
            let (_, rg) = reference(xf, tf, wf, alpha, gf, ef);
            // Central differences: O(h²) truncation and the loss's rounding over 2h.
            let tol = 1e-5 * fd.abs().max(1.0);
            assert!((rg - fd).abs() <= tol, "x={x} t={t} γ={gamma} ε={eps}: reference {rg} vs fd {fd}");
            let (_, _, g) = call(&[x], Targets::Soft(&[t]), Weights::Elements(&[w]), alpha, gamma, Some(eps), 1);
            assert!((g[0] as f64 / 2.0 - fd).abs() <= tol, "x={x} t={t} γ={gamma} ε={eps}: kernel {} vs fd {fd}", g[0] / 2.0);
            checked += 1;
        }
        assert_eq!(checked, 4000);
    }

    /// The binary path and the soft one agree bit for bit with ε ≠ 0 too (special values
    /// included), and class indices equal their one-hot matrix.
    #[test]
    fn layouts_agree_with_eps() {
        let mut rng = Rng(4);
        for n in sizes() {
            let b = batch(&mut rng, n, 1, true);
            let ts: Vec<f32> = b.bytes.iter().map(|&v| v as f32).collect();
            for gamma in GAMMAS {
                for eps in [-1.0f32, 0.5, 2.0, 1e3] {
                    for w in [Weights::Ones, Weights::Elements(&b.ew)] {
                        let (sb, lb, gb) = call(&b.x, Targets::Binary(&b.bytes), w, Some(0.25), gamma, Some(eps), 3);
                        let (ss, ls, gs) = call(&b.x, Targets::Soft(&ts), w, Some(0.25), gamma, Some(eps), 3);
                        let what = format!("n={n} γ={gamma} ε={eps}");
                        same_bits(&lb, &ls, &format!("{what} loss"));
                        // `Binary` differs from `Sided` in the sign of a zero p - t at infinite x
                        // (γ = 0 gradients there), as without the term.
                        for i in 0..n {
                            let zeros = gb[i] == 0.0 && gs[i] == 0.0 && b.x[i].is_infinite();
                            assert!(zeros || gb[i].to_bits() == gs[i].to_bits() || (gb[i].is_nan() && gs[i].is_nan()), "{what} grad[{i}]: {} vs {} x={} t={} w={:?}", gb[i], gs[i], b.x[i], ts[i], w_at(w, i));
                        }
                        assert!(sb.to_bits() == ss.to_bits() || (sb.is_nan() && ss.is_nan()), "{what}: Σ {sb} vs {ss}");
                    }
                }
            }
        }
        for c in [3usize, 4, 7, 80] {
            let b = batch(&mut rng, 700 / c * c, c, false);
            let (m, labels) = (b.x.len(), &b.labels);
            let onehot: Vec<u8> = (0..m).map(|i| (labels[i / c] == (i % c) as i32) as u8).collect();
            let ew: Vec<f32> = (0..m).map(|i| b.rw[i / c]).collect();
            for gamma in GAMMAS {
                let (_, l1, g1) = call(&b.x, Targets::Labels { labels, num_classes: c }, Weights::Rows(&b.rw), Some(0.25), gamma, Some(0.5), 3);
                let (_, l2, g2) = call(&b.x, Targets::Binary(&onehot), Weights::Elements(&ew), Some(0.25), gamma, Some(0.5), 3);
                same_bits(&l1, &l2, &format!("C={c} γ={gamma} loss"));
                same_bits(&g1, &g2, &format!("C={c} γ={gamma} grad"));
            }
        }
    }

    /// At infinite logits: the focal loss's value there (PyTorch's, see `infinite_logits_as_pytorch`)
    /// plus the finite `ε·q^(γ+1)`, q = 1 - t at +∞ and t at -∞; the gradient is the plain one (the
    /// term's derivative has the factor p(1-p) = 0).
    #[test]
    fn infinite_logits() {
        for gamma in [0.0f32, 0.5, 1.0, 1.5, 2.0] {
            for &t in &[0.0f32, 1.0, 0.3, 0.5] {
                for &inf in &[f32::INFINITY, f32::NEG_INFINITY] {
                    for eps in [-1.0f32, 2.0] {
                        let xs = [1.5, inf, -0.5, 0.0, inf, 3.0];
                        let ts = [t; 6];
                        let tb = [t as u8; 6];
                        let mut targets = vec![Targets::Soft(&ts)];
                        if t == 0.0 || t == 1.0 {
                            targets.push(Targets::Binary(&tb));
                        }
                        for tg in targets {
                            let (_, l0, g0) = call(&xs, tg, Weights::Ones, Some(0.25), gamma, None, 3);
                            let (s, l, g) = call(&xs, tg, Weights::Ones, Some(0.25), gamma, Some(eps), 3);
                            let q = if inf > 0.0 { 1.0 - t as f64 } else { t as f64 };
                            let term = eps as f64 * q.powf(gamma as f64 + 1.0);
                            for i in [1, 4] {
                                let (want, got) = (l0[i] as f64 / 0.5 + term, l[i] as f64 / 0.5);
                                assert!(got == want || (got.is_nan() && want.is_nan()), "x={inf} t={t} γ={gamma} ε={eps}: loss {got} vs {want}");
                                assert!(g[i] == g0[i] || (g[i].is_nan() && g0[i].is_nan()), "x={inf} t={t} γ={gamma}: grad {} vs {}", g[i], g0[i]);
                            }
                            // The finite logits keep their values (the second pass rewrites every one).
                            for i in [0, 2, 3, 5] {
                                let (rl, rg) = reference(xs[i] as f64, t as f64, 1.0, Some(0.25), gamma as f64, eps as f64);
                                assert!(close(l[i] as f64 / 0.5, rl) && close(g[i] as f64 / 2.0, rg), "x={} t={t} γ={gamma}", xs[i]);
                            }
                            assert!(!s.is_finite());
                        }
                    }
                }
            }
        }
    }
}
