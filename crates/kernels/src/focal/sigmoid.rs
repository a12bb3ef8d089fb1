//! Sigmoid focal loss, docs/SPEC.md §1 (mmdetection `py_sigmoid_focal_loss`, torchvision
//! `sigmoid_focal_loss`), with its gradient, in one pass.
//!
//! Numerics: see [`Sided`].

use super::{with_focusing, Focusing};
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


/// `(loss, dloss/dx)` per lane, unscaled, for targets `t` and weights `w`.
#[inline(always)]
fn lanes<G: Focusing, const GRAD: bool>(x: F32x4, xt: XTerms, t: F32x4, w: F32x4, a: Alpha, g: G) -> (F32x4, F32x4) {
    let omt = F32x4::ONE - t;
    let s = Sided::with(x, t, omt, xt);
    let bce = s.bce();
    let aw = a.weight(t, omt);
    let (pw, dpw) = g.factors(s.pt());
    let aww = aw * w;
    let loss = aww * pw * bce;
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let slope = pw * s.p_minus_t();
    // Without the BCE (γ = 0), NaN x must make the gradient NaN by itself.
    let grad = if G::FOCUSES { aww * (dpw * s.pq() * (omt - t) * bce + slope) } else { aww * nan_where_nan(x, slope) };
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
    let loss = aww * pw * bce;
    if !GRAD {
        return (loss, F32x4::ZERO);
    }
    let grad = if G::FOCUSES {
        let r = F32x4::ONE / xt.d;
        aww * (dpw * (xt.e * (r * r)) * bce + pw * pt)
    } else {
        aww * nan_where_nan(x, pw * pt)
    };
    (loss, F32x4::from_bits(grad.to_bits().xor(tsign)))
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
