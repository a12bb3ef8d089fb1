//! The `extern "C"` surface of the extras module (feature `extras`): the focal family (SPEC §6–9)
//! and the soft-target softmax focal loss. The module imports the core module's memory, so these
//! take pointers into the same heap as `ffi`'s exports; conventions (codes, null outputs, `info`
//! arrays of f64) are `ffi`'s.

#[allow(unused_imports)]
use crate::ffi_common::{sl, sl_mut, targets, weights, write_range};

use crate::extras::{quality, varifocal};
use crate::focal::sigmoid::{self, Alpha, Outputs};
use crate::focal::softmax;
use crate::source::{target_range, Targets};

/// Quality Focal Loss (SPEC §7) of `rows` rows of `num_classes`: `labels` (C = background) and
/// `scores` per row, row weights `rw` (null: none), row losses into `loss_out` and the gradient
/// into `grad_out`. `info` receives `[Σ loss, min score, max score]`, the range over rows whose
/// label is in [0, C) (NaN if a score there is NaN; +∞, −∞ if there is none).
#[no_mangle]
pub unsafe extern "C" fn fg_quality_focal(
    x: *const f32,
    rows: usize,
    num_classes: usize,
    labels: *const i32,
    scores: *const f32,
    rw: *const f32,
    beta: f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let n = rows * num_classes;
    let s = quality::quality_focal(
        sl(x, n),
        num_classes,
        sl(labels, rows),
        sl(scores, rows),
        if rw.is_null() { None } else { Some(sl(rw, rows)) },
        beta,
        sl_mut(loss_out, rows).map(|s| (s, loss_scale)),
        sl_mut(grad_out, n).map(|s| (s, grad_scale)),
    );
    *info = s.sum;
    write_range(info.add(1), s.targets);
}

/// Varifocal Loss (SPEC §8) of `n` elements against targets `q`, weights per element `w` (null:
/// none), `iou_weighted` 0 or 1. `info` receives `[Σ loss, min q, max q]`.
#[no_mangle]
pub unsafe extern "C" fn fg_varifocal(
    x: *const f32,
    n: usize,
    q: *const f32,
    w: *const f32,
    alpha: f32,
    gamma: f32,
    iou_weighted: u32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let s = varifocal::varifocal(
        sl(x, n),
        sl(q, n),
        weights(if w.is_null() { 0 } else { 1 }, w, n, 1),
        alpha,
        gamma,
        iou_weighted != 0,
        Outputs { loss: sl_mut(loss_out, n).map(|s| (s, loss_scale)), grad: sl_mut(grad_out, n).map(|s| (s, grad_scale)) },
    );
    *info = s.sum;
    write_range(info.add(1), s.targets);
}

/// Softmax focal loss with soft targets (SPEC §2, soft targets) of `rows` rows of `num_classes`.
/// Targets by `tkind`: `0` probability rows, f32 `[rows·C]`; `1` class labels, i32 `[rows]`,
/// smoothed by `eps`, rows labelled `ignore_index` (or outside [0, C)) skipped; `2` two-hot
/// targets y, f32 `[rows]` (C = n + 1 bins, 0 ≤ y < n; others are clamped). `alpha`: null (1 for
/// every class) or C values; `rw`: null or one weight per row. `info` receives `[Σ loss, counted
/// rows]`, and for two-hot targets `[Σ loss, min y, max y]` (NaN if a y is NaN), from which the
/// caller checks them after the pass: a scan of y before it cost a tenth of a DFL call.
#[no_mangle]
pub unsafe extern "C" fn fg_softmax_focal_soft(
    x: *const f32,
    rows: usize,
    num_classes: usize,
    tkind: u32,
    t: *const u8,
    eps: f32,
    ignore_index: i32,
    alpha: *const f32,
    gamma: f32,
    rw: *const f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    use crate::extras::soft::{softmax_focal_soft, SoftRows};
    let n = rows * num_classes;
    let targets = match tkind {
        0 => SoftRows::Dense(sl(t as *const f32, n)),
        1 => SoftRows::Smoothed { labels: sl(t as *const i32, rows), eps, ignore_index },
        _ => SoftRows::TwoHot(sl(t as *const f32, rows)),
    };
    let s = softmax_focal_soft(
        sl(x, n),
        num_classes,
        targets,
        sl(alpha, num_classes),
        gamma,
        if rw.is_null() { None } else { Some(sl(rw, rows)) },
        sl_mut(loss_out, rows).map(|s| (s, loss_scale)),
        sl_mut(grad_out, n).map(|s| (s, grad_scale)),
    );
    *info = s.sum;
    match targets {
        SoftRows::TwoHot(y) => write_range(info.add(1), target_range(rows, Targets::Soft(y))),
        _ => *info.add(1) = s.rows as f64,
    }
}

/// Poly-1 sigmoid focal loss (SPEC §6): `fg_sigmoid_focal`'s parameters with `eps` (ε) after
/// `gamma`, and its `info`: `[Σ loss, min target, max target]`. ε = 0 gives `fg_sigmoid_focal`'s
/// results bit for bit. α 'auto' counts with the core module's `fg_count_pos_neg`.
#[no_mangle]
pub unsafe extern "C" fn fg_sigmoid_focal_poly(
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
    eps: f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let s = sigmoid::sigmoid_focal_poly(
        sl(x, n),
        targets(tkind, t, n, num_classes),
        weights(wkind, w, n, num_classes),
        Alpha { pos: alpha_pos, neg: alpha_neg },
        gamma,
        eps,
        Outputs { loss: sl_mut(loss_out, n).map(|s| (s, loss_scale)), grad: sl_mut(grad_out, n).map(|s| (s, grad_scale)) },
    );
    *info = s.sum;
    write_range(info.add(1), s.targets);
}

/// Poly-1 softmax focal loss (SPEC §6): `fg_softmax_focal`'s parameters with `eps` (ε) after
/// `ignore_index`, and its `info`: `[Σ loss, counted rows]`. ε = 0 gives `fg_softmax_focal`'s
/// results bit for bit.
#[no_mangle]
pub unsafe extern "C" fn fg_softmax_focal_poly(
    x: *const f32,
    rows: usize,
    num_classes: usize,
    labels: *const i32,
    alpha: *const f32,
    gamma: f32,
    ignore_index: i32,
    eps: f32,
    loss_out: *mut f32,
    loss_scale: f32,
    grad_out: *mut f32,
    grad_scale: f32,
    info: *mut f64,
) {
    let n = rows * num_classes;
    let p = softmax::Params { num_classes, alpha: sl(alpha, num_classes), gamma, ignore_index };
    let s = softmax::softmax_focal_poly(
        sl(x, n),
        sl(labels, rows),
        &p,
        eps,
        sl_mut(loss_out, rows).map(|s| (s, loss_scale)),
        sl_mut(grad_out, n).map(|s| (s, grad_scale)),
    );
    *info = s.sum;
    *info.add(1) = s.rows as f64;
}
