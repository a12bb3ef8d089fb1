//! The losses of the extras wasm module, loaded on demand (`init({ extras })`): docs/SPEC.md
//! §6–9 (Poly-1, Quality Focal, Varifocal, Distribution Focal) and §2's soft targets (probability
//! rows, label smoothing). They build on the core's layers (simd, math, xterms, focal) and are
//! compiled into the core module too, where nothing exports them and the linker drops them.
//!
//! Poly-1 (§6) lives with the focal kernels it modifies: they take a [`crate::focal::Poly1`]
//! focusing (`focal::sigmoid::sigmoid_focal_poly`, `focal::softmax::softmax_focal_poly`).

pub mod distribution;
pub mod quality;
pub mod varifocal;
pub mod soft;
