//! The `extern "C"` surface of the extras module (feature `extras`): the focal family (SPEC §6–9)
//! and the soft-target softmax focal loss. The module imports the core module's memory, so these
//! take pointers into the same heap as `ffi`'s exports; conventions (codes, null outputs, `info`
//! arrays of f64) are `ffi`'s.

#[allow(unused_imports)]
use crate::ffi_common::{sl, sl_mut, targets, weights, write_range};
