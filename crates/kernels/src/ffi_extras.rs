//! The `extern "C"` surface of the extras module (feature `extras`): the focal family (SPEC §6–9)
//! and the soft-target softmax focal loss. The module imports the core module's memory, so these
//! take pointers into the same heap as `ffi`'s exports; conventions (codes, null outputs, `info`
//! arrays of f64) are `ffi`'s.

#[allow(unused_imports)]
use crate::ffi_common::{sl, sl_mut, targets, weights, write_range};
use crate::focal::sigmoid::{self, Alpha, Outputs};
use crate::focal::softmax;

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
