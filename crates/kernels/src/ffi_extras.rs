//! The `extern "C"` surface of the extras module (feature `extras`): the focal family (SPEC §6–9)
//! and the soft-target softmax focal loss. The module imports the core module's memory, so these
//! take pointers into the same heap as `ffi`'s exports; conventions (codes, null outputs, `info`
//! arrays of f64) are `ffi`'s.

#[allow(unused_imports)]
use crate::ffi_common::{sl, sl_mut, targets, weights, write_range};

/// Softmax focal loss with soft targets (SPEC §2, soft targets) of `rows` rows of `num_classes`.
/// Targets by `tkind`: `0` probability rows, f32 `[rows·C]`; `1` class labels, i32 `[rows]`,
/// smoothed by `eps`, rows labelled `ignore_index` (or outside [0, C)) skipped; `2` two-hot
/// targets y, f32 `[rows]` (C = n + 1 bins, 0 ≤ y < n). `alpha`: null (1 for every class) or C
/// values; `rw`: null or one weight per row. `info` receives `[Σ loss, counted rows]`.
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
    *info.add(1) = s.rows as f64;
}
