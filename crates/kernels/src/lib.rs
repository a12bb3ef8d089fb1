//! The compute core of focal-ghm: focal loss and GHM loss kernels for WebAssembly SIMD.
//!
//! Layers, bottom up:
//! - [`simd`]: four-lane vector types (wasm SIMD128, or a portable array backend);
//! - [`math`]: vectorized `exp`, `ln`, `log1p` with stated error bounds;
//! - [`source`]: targets and weights in their layouts, walked four lanes at a time;
//! - `xterms`: the sigmoid's x-only terms, staged per tile, and the pieces built on them, which
//!   the sigmoid focal loss and GHM-C share;
//! - [`focal`] and [`ghm`]: the losses of docs/SPEC.md §1–4 over raw slices;
//! - [`extras`]: the losses of the second wasm module (SPEC §6–9 and the soft-target softmax);
//! - `ffi` (wasm only): `extern "C"` exports the TypeScript loader calls with pointers into
//!   linear memory; `ffi_extras` instead in the extras module (feature `extras`), which imports
//!   the core module's memory.
//!
//! The SIMD wasm build is `no_std` (the shared-memory build needs it: a std built without atomics
//! cannot link into shared memory). The portable backend uses std for `sqrt`, which core lacks
//! on Rust 1.63; it serves the scalar wasm build and host tests, where std is always there.

#![cfg_attr(target_feature = "simd128", no_std)]

pub mod extras;
pub mod focal;
pub mod ghm;
pub mod math;
pub mod simd;
pub mod source;
mod xterms;
#[cfg(test)]
mod test_rng;

#[cfg(target_arch = "wasm32")]
mod ffi_common;
#[cfg(all(target_arch = "wasm32", not(feature = "extras")))]
mod ffi;
#[cfg(all(target_arch = "wasm32", feature = "extras"))]
mod ffi_extras;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
