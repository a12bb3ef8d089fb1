//! Helpers of both wasm modules' `extern "C"` surfaces (`ffi`, `ffi_extras`): slices from
//! pointers, and the target and weight codes (see `ffi`).

use crate::source::{TargetRange, Targets, Weights};
use core::slice;

pub unsafe fn sl<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if len == 0 || p.is_null() {
        &[]
    } else {
        slice::from_raw_parts(p, len)
    }
}

pub unsafe fn sl_mut<'a, T>(p: *mut T, len: usize) -> Option<&'a mut [T]> {
    if p.is_null() {
        None
    } else if len == 0 {
        Some(&mut [])
    } else {
        Some(slice::from_raw_parts_mut(p, len))
    }
}

pub unsafe fn targets<'a>(kind: u32, t: *const u8, n: usize, num_classes: usize) -> Targets<'a> {
    match kind {
        0 => Targets::Binary(sl(t, n)),
        1 => Targets::Soft(sl(t as *const f32, n)),
        _ => Targets::Labels { labels: sl(t as *const i32, if num_classes == 0 { 0 } else { n / num_classes }), num_classes },
    }
}

pub unsafe fn weights<'a>(kind: u32, w: *const f32, n: usize, num_classes: usize) -> Weights<'a> {
    match kind {
        1 => Weights::Elements(sl(w, n)),
        2 => Weights::Rows(sl(w, if num_classes == 0 { 0 } else { n / num_classes })),
        _ => Weights::Ones,
    }
}

pub unsafe fn write_range(info: *mut f64, r: TargetRange) {
    *info = r.min as f64;
    *info.add(1) = r.max as f64;
}
