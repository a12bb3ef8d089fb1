//! Four-lane f32 vectors and the few companions the kernels need (masks, i32 lanes, f64 pairs).
//!
//! Two backends with one interface, in the manner of the `wide` crate:
//! - `wasm`: `core::arch::wasm32` SIMD128, chosen when the crate is compiled with `+simd128`;
//! - `portable`: plain `[f32; 4]` arrays, used by the scalar wasm build (for engines without
//!   SIMD) and by host `cargo test`, so the math and the kernels are exercised on the host through
//!   exactly the algorithms the wasm build runs.
//!
//! The portable backend reproduces WebAssembly's lane semantics where they differ from Rust's
//! scalar ones: `min`/`max` propagate NaN (IEEE 754-2019 minimum/maximum), float-to-int
//! conversion saturates and maps NaN to 0.

#[cfg(target_feature = "simd128")]
mod wasm;
#[cfg(target_feature = "simd128")]
pub use wasm::{F32x4, F64x2, I32x4, M32x4};

#[cfg(not(target_feature = "simd128"))]
mod portable;
#[cfg(not(target_feature = "simd128"))]
pub use portable::{F32x4, F64x2, I32x4, M32x4};

use core::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! forward_binop {
    ($ty:ty, $trait:ident, $method:ident, $inherent:ident) => {
        impl $trait for $ty {
            type Output = $ty;
            #[inline(always)]
            fn $method(self, rhs: $ty) -> $ty {
                <$ty>::$inherent(self, rhs)
            }
        }
    };
}
forward_binop!(F32x4, Add, add, add);
forward_binop!(F32x4, Sub, sub, sub);
forward_binop!(F32x4, Mul, mul, mul);
forward_binop!(F32x4, Div, div, div);
forward_binop!(I32x4, Add, add, add);
forward_binop!(I32x4, Sub, sub, sub);
forward_binop!(F64x2, Add, add, add);

impl Neg for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn neg(self) -> F32x4 {
        F32x4::neg(self)
    }
}

/// Lane ops every backend shares, written once over the backend primitives.
impl F32x4 {
    pub const ONE: F32x4 = F32x4::const_splat(1.0);
    pub const ZERO: F32x4 = F32x4::const_splat(0.0);

    /// `x` where the lane of `m` is set, else 0.
    ///
    /// An unsigned minimum of the bits with the mask (all ones or zero): one instruction on x64,
    /// where a select is three in V8, and so is an `and`, which LLVM turns into a select.
    #[inline(always)]
    pub fn keep(self, m: M32x4) -> F32x4 {
        F32x4::from_bits(self.to_bits().min_u(I32x4::from_mask(m)))
    }

    /// Lane k: `v[k]`'s four lanes combined by `f` (a sum, a max), for four rows at once: a 4×4
    /// transpose folded into the reduction, six shuffles and three `f`s for all four.
    #[inline(always)]
    pub fn across4(v: [F32x4; 4], f: impl Fn(F32x4, F32x4) -> F32x4) -> F32x4 {
        // [v0₀ v1₀ v0₁ v1₁] with [v0₂ v1₂ v0₃ v1₃], then the halves of the two pairs.
        let a = f(v[0].shuffle::<0, 4, 1, 5>(v[1]), v[0].shuffle::<2, 6, 3, 7>(v[1]));
        let b = f(v[2].shuffle::<0, 4, 1, 5>(v[3]), v[2].shuffle::<2, 6, 3, 7>(v[3]));
        f(a.shuffle::<0, 1, 4, 5>(b), a.shuffle::<2, 3, 6, 7>(b))
    }

    /// Lane `K` in every lane.
    #[inline(always)]
    pub fn lane_splat<const K: usize>(self) -> F32x4 {
        self.shuffle::<K, K, K, K>(self)
    }

    /// Loads the first `len` (0..=4) lanes from `p` and fills the others with `fill`.
    ///
    /// # Safety
    /// `p..p+len` must be readable.
    #[inline(always)]
    pub unsafe fn load_partial(p: *const f32, len: usize, fill: f32) -> F32x4 {
        if len >= 4 {
            return F32x4::load(p);
        }
        let mut a = [fill; 4];
        let mut i = 0;
        while i < len {
            a[i] = *p.add(i);
            i += 1;
        }
        F32x4::from_array(a)
    }

    /// Stores the first `len` (0..=4) lanes to `p`.
    ///
    /// # Safety
    /// `p..p+len` must be writable.
    #[inline(always)]
    pub unsafe fn store_partial(self, p: *mut f32, len: usize) {
        if len >= 4 {
            return self.store(p);
        }
        let a = self.to_array();
        let mut i = 0;
        while i < len {
            *p.add(i) = a[i];
            i += 1;
        }
    }

    /// The lanes `[k, k+1, k+2, k+3]` as floats.
    #[inline(always)]
    pub fn iota_from(k: f32) -> F32x4 {
        F32x4::from_array([k, k + 1.0, k + 2.0, k + 3.0])
    }
}

/// Lane-wise sums of f32 values that do not drift: SPEC §5 asks for 1e-5 relative at N = 10^8,
/// which an f32 running sum cannot give. Values are first added in f32 over blocks of
/// [`SumF64::BLOCK`] vectors (a block's rounding error is at most BLOCK·2^-24 ≈ 1e-6 of its
/// magnitude), then each block goes into f64 lanes; the f64 promotion per vector costs more than
/// the rest of a cheap kernel, so it is paid once per block.
#[derive(Clone, Copy)]
pub struct SumF64 {
    lo: F64x2,
    hi: F64x2,
    block: F32x4,
    n: u32,
}

impl SumF64 {
    pub const BLOCK: u32 = 16;

    #[inline(always)]
    pub fn new() -> SumF64 {
        SumF64 { lo: F64x2::ZERO, hi: F64x2::ZERO, block: F32x4::ZERO, n: 0 }
    }
    #[inline(always)]
    pub fn add(&mut self, v: F32x4) {
        self.block = self.block + v;
        self.n += 1;
        if self.n == Self::BLOCK {
            self.flush();
        }
    }
    /// [`SumF64::add`] for the block of elements from `offset`, when blocks come at consecutive
    /// multiples of 4: the block ends every [`SumF64::BLOCK`] vectors by the offset alone, with
    /// no counter to keep (two instructions fewer per vector in a kernel's hot loop).
    #[inline(always)]
    pub fn add_at(&mut self, v: F32x4, offset: usize) {
        self.block = self.block + v;
        if offset & (4 * Self::BLOCK as usize - 4) == 4 * Self::BLOCK as usize - 4 {
            self.flush();
        }
    }
    #[inline(always)]
    fn flush(&mut self) {
        self.lo = self.lo + F64x2::promote_low(self.block);
        self.hi = self.hi + F64x2::promote_high(self.block);
        self.block = F32x4::ZERO;
        self.n = 0;
    }
    /// The total, added in a fixed lane order so that results are reproducible.
    #[inline(always)]
    pub fn total(&self) -> f64 {
        let mut s = *self;
        s.flush();
        let a = s.lo.to_array();
        let b = s.hi.to_array();
        (a[0] + a[1]) + (b[0] + b[1])
    }
}

impl Default for SumF64 {
    fn default() -> Self {
        SumF64::new()
    }
}

impl M32x4 {
    /// How many lanes are set.
    #[inline(always)]
    pub fn count(self) -> u32 {
        let a = I32x4::from_mask(self).to_array();
        (a[0] & 1) as u32 + (a[1] & 1) as u32 + (a[2] & 1) as u32 + (a[3] & 1) as u32
    }
}
