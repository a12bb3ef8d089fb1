//! The `extern "C"` surface the TypeScript loader calls: pointers into linear memory, lengths,
//! and small enums as integers. No allocation happens here: TypeScript owns the heap above
//! `__heap_base` and passes every buffer in, so the same exports serve one-shot calls, zero-copy
//! batches and worker threads over one shared memory.
//!
//! Codes: targets `0` binary u8, `1` soft f32, `2` class labels i32 (one per row of
//! `num_classes`); weights `0` none, `1` per element, `2` per row. A null output pointer means
//! "not wanted". Results too large for a return value go to an `info` array of f64.

use crate::focal::prob;
use crate::focal::sigmoid::{self, Alpha, Outputs};
use crate::focal::softmax;
use crate::ghm;
use crate::ffi_common::{sl, sl_mut, targets, weights, write_range};
use core::slice;

/// Sigmoid focal loss of `n` elements, positives weighted `alpha_pos` and negatives `alpha_neg`
/// (both 1 when α is disabled). `info` receives `[Σ loss, min target, max target]`.
#[no_mangle]
pub unsafe extern "C" fn fg_sigmoid_focal(
    x: *const f32,
    n: usize,
    tkind: u32,
    t: *const u8,
    num_classes: usize,
    wkind: u32,
    w: *const f32,
    alpha_pos: f32,
    alpha_neg: f32,
    gamma: f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let s = sigmoid::sigmoid_focal(
        sl(x, n),
        targets(tkind, t, n, num_classes),
        weights(wkind, w, n, num_classes),
        Alpha { pos: alpha_pos, neg: alpha_neg },
        gamma,
        Outputs { loss: sl_mut(loss_out, n).map(|s| (s, loss_scale)), grad: sl_mut(grad_out, n).map(|s| (s, grad_scale)) },
    );
    *info = s.sum;
    write_range(info.add(1), s.targets);
}

/// [`fg_sigmoid_focal`] with probabilities `p` in place of logits (`input: 'probabilities'`),
/// soft targets `t` only, and weights per element or none. `info` receives
/// `[Σ loss, min target, max target, min p, max p]`.
#[no_mangle]
pub unsafe extern "C" fn fg_sigmoid_focal_prob(
    p: *const f32,
    n: usize,
    t: *const f32,
    wkind: u32,
    w: *const f32,
    alpha_pos: f32,
    alpha_neg: f32,
    gamma: f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let s = prob::sigmoid_focal_prob(
        sl(p, n),
        sl(t, n),
        weights(wkind, w, n, 1),
        Alpha { pos: alpha_pos, neg: alpha_neg },
        gamma,
        Outputs { loss: sl_mut(loss_out, n).map(|s| (s, loss_scale)), grad: sl_mut(grad_out, n).map(|s| (s, grad_scale)) },
    );
    *info = s.focal.sum;
    write_range(info.add(1), s.focal.targets);
    write_range(info.add(3), s.probs);
}

/// The positive and negative counts behind α = 'auto', into `out[0..2]`.
#[no_mangle]
pub unsafe extern "C" fn fg_count_pos_neg(n: usize, tkind: u32, t: *const u8, num_classes: usize, wkind: u32, w: *const f32, out: *mut f64) {
    let (p, f) = sigmoid::count_pos_neg(n, targets(tkind, t, n, num_classes), weights(wkind, w, n, num_classes));
    *out = p as f64;
    *out.add(1) = f as f64;
}

/// Softmax focal loss of `rows` rows of `num_classes`. `info` receives `[Σ loss, counted rows]`.
#[no_mangle]
pub unsafe extern "C" fn fg_softmax_focal(
    x: *const f32,
    rows: usize,
    num_classes: usize,
    labels: *const i32,
    alpha: *const f32,
    gamma: f32,
    ignore_index: i32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let n = rows * num_classes;
    let p = softmax::Params { num_classes, alpha: sl(alpha, num_classes), gamma, ignore_index };
    let s = softmax::softmax_focal(
        sl(x, n),
        sl(labels, rows),
        &p,
        sl_mut(loss_out, rows).map(|s| (s, loss_scale)),
        sl_mut(grad_out, n).map(|s| (s, grad_scale)),
    );
    *info = s.sum;
    *info.add(1) = s.rows as f64;
}

/// Length of a GHM statistics array for `bins` bins.
#[no_mangle]
pub extern "C" fn fg_ghm_stats_len(bins: usize) -> usize {
    ghm::stats_len(bins)
}

/// Adds GHM-C statistics of `n` elements into `stats`; `info` receives `[min target, max target]`.
#[no_mangle]
pub unsafe extern "C" fn fg_ghmc_stats(
    x: *const f32,
    n: usize,
    tkind: u32,
    t: *const u8,
    num_classes: usize,
    wkind: u32,
    w: *const f32,
    bins: usize,
    stats: *mut f64,
    info: *mut f64,
) {
    let stats = slice::from_raw_parts_mut(stats, ghm::stats_len(bins));
    let r = ghm::ghmc_stats(sl(x, n), targets(tkind, t, n, num_classes), weights(wkind, w, n, num_classes), bins, stats);
    write_range(info, r);
}

#[no_mangle]
pub unsafe extern "C" fn fg_ghmc_grad(
    x: *const f32,
    n: usize,
    tkind: u32,
    t: *const u8,
    num_classes: usize,
    wkind: u32,
    w: *const f32,
    bins: usize,
    factor: *const f32,
    grad: *mut f32,
) {
    let grad = sl_mut(grad, n).unwrap_or(&mut []);
    ghm::ghmc_grad(sl(x, n), targets(tkind, t, n, num_classes), weights(wkind, w, n, num_classes), bins, sl(factor, bins + 2), grad);
}

#[no_mangle]
pub unsafe extern "C" fn fg_ghmr_stats(pred: *const f32, target: *const f32, n: usize, wkind: u32, w: *const f32, mu: f32, bins: usize, stats: *mut f64) {
    let stats = slice::from_raw_parts_mut(stats, ghm::stats_len(bins));
    ghm::ghmr_stats(sl(pred, n), sl(target, n), weights(wkind, w, n, 1), mu, bins, stats);
}

#[no_mangle]
pub unsafe extern "C" fn fg_ghmr_grad(
    pred: *const f32,
    target: *const f32,
    n: usize,
    wkind: u32,
    w: *const f32,
    mu: f32,
    bins: usize,
    factor: *const f32,
    grad: *mut f32,
) {
    let grad = sl_mut(grad, n).unwrap_or(&mut []);
    ghm::ghmr_grad(sl(pred, n), sl(target, n), weights(wkind, w, n, 1), mu, bins, sl(factor, bins + 2), grad);
}
