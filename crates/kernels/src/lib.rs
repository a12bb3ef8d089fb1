//! The compute core of focal-ghm: focal loss and GHM loss kernels for WebAssembly SIMD.
//!
//! Layers, bottom up:
//! - [`simd`]: four-lane vector types (wasm SIMD128, or a portable array backend);
//! - [`math`]: vectorized `exp`, `ln`, `log1p` with stated error bounds;
//! - [`source`]: targets and weights in their layouts, walked four lanes at a time;
//! - `xterms`: the sigmoid's x-only terms, staged per tile, and the pieces built on them, which
//!   the sigmoid focal loss and GHM-C share;
//! - [`focal`] and [`ghm`]: the losses of docs/SPEC.md §1–4 over raw slices;
//! - `ffi` (wasm only): `extern "C"` exports the TypeScript loader calls with pointers into
//!   linear memory.
//!
//! The SIMD wasm build is `no_std` (the shared-memory build needs it: a std built without atomics
//! cannot link into shared memory). The portable backend uses std for `sqrt`, which core lacks
//! on Rust 1.63; it serves the scalar wasm build and host tests, where std is always there.

#![cfg_attr(target_feature = "simd128", no_std)]

pub mod focal;
pub mod ghm;
pub mod math;
pub mod simd;
pub mod source;
mod xterms;

#[cfg(target_arch = "wasm32")]
mod ffi;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
