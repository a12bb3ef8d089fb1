//! SIMD128 backend: every method is one or two wasm instructions.

use core::arch::wasm32::*;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F32x4(v128);
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct I32x4(v128);
/// A lane mask: all bits set or all clear per lane, as comparisons produce.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct M32x4(v128);
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F64x2(v128);

impl F32x4 {
    #[inline(always)]
    pub const fn const_splat(x: f32) -> F32x4 {
        F32x4(f32x4(x, x, x, x))
    }
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        F32x4(f32x4_splat(x))
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> F32x4 {
        F32x4(f32x4(a[0], a[1], a[2], a[3]))
    }
    #[inline(always)]
    pub fn to_array(self) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(self.0),
            f32x4_extract_lane::<1>(self.0),
            f32x4_extract_lane::<2>(self.0),
            f32x4_extract_lane::<3>(self.0),
        ]
    }
    /// # Safety
    /// `p..p+4` must be readable; no alignment is required.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F32x4 {
        F32x4(core::ptr::read_unaligned(p as *const v128))
    }
    /// # Safety
    /// `p..p+4` must be writable; no alignment is required.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        core::ptr::write_unaligned(p as *mut v128, self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sub(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_sub(self.0, o.0))
    }
    #[inline(always)]
    pub fn mul(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_mul(self.0, o.0))
    }
    #[inline(always)]
    pub fn div(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_div(self.0, o.0))
    }
    #[inline(always)]
    pub fn neg(self) -> F32x4 {
        F32x4(f32x4_neg(self.0))
    }
    #[inline(always)]
    pub fn abs(self) -> F32x4 {
        // An `and` with the mask as a constant: V8 keeps the constant in a register, where its
        // `f32x4.abs` rebuilds the mask every time (three instructions on x64).
        F32x4(v128_and(self.0, u32x4_splat(0x7fff_ffff)))
    }
    /// NaN-propagating minimum.
    #[inline(always)]
    pub fn min(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_min(self.0, o.0))
    }
    /// NaN-propagating maximum.
    #[inline(always)]
    pub fn max(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_max(self.0, o.0))
    }
    /// `o < self ? o : self`, wasm's pseudo-minimum: one `minps` on x64, where the
    /// NaN-propagating `min` costs half a dozen instructions. NaN in `self` is kept.
    #[inline(always)]
    pub fn pmin(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_pmin(self.0, o.0))
    }
    /// Lanes picked from `self` (0–3) and `o` (4–7), as wasm's `i32x4.shuffle`: one `shufps`,
    /// `unpcklps` or the like on x64 for the patterns [`F32x4::across4`] uses.
    #[inline(always)]
    pub fn shuffle<const A: usize, const B: usize, const C: usize, const D: usize>(self, o: F32x4) -> F32x4 {
        F32x4(i32x4_shuffle::<A, B, C, D>(self.0, o.0))
    }
    /// `self < o ? o : self`, wasm's pseudo-maximum (see `pmin`). NaN in `self` is kept.
    #[inline(always)]
    pub fn pmax(self, o: F32x4) -> F32x4 {
        F32x4(f32x4_pmax(self.0, o.0))
    }
    #[inline(always)]
    pub fn sqrt(self) -> F32x4 {
        F32x4(f32x4_sqrt(self.0))
    }
    #[inline(always)]
    pub fn lt(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_lt(self.0, o.0))
    }
    #[inline(always)]
    pub fn le(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_le(self.0, o.0))
    }
    #[inline(always)]
    pub fn gt(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_gt(self.0, o.0))
    }
    #[inline(always)]
    pub fn ge(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_ge(self.0, o.0))
    }
    #[inline(always)]
    pub fn eq(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_eq(self.0, o.0))
    }
    /// Not equal; true for NaN lanes (so `v.ne(v)` is "v is NaN").
    #[inline(always)]
    pub fn ne(self, o: F32x4) -> M32x4 {
        M32x4(f32x4_ne(self.0, o.0))
    }
    #[inline(always)]
    pub fn to_bits(self) -> I32x4 {
        I32x4(self.0)
    }
    #[inline(always)]
    pub fn from_bits(b: I32x4) -> F32x4 {
        F32x4(b.0)
    }
    /// Truncation toward zero, saturating, NaN to 0.
    #[inline(always)]
    pub fn trunc_i32(self) -> I32x4 {
        I32x4(i32x4_trunc_sat_f32x4(self.0))
    }
}

impl I32x4 {
    #[inline(always)]
    pub fn splat(x: i32) -> I32x4 {
        I32x4(i32x4_splat(x))
    }
    /// # Safety
    /// `p..p+4` must be readable; no alignment is required.
    #[inline(always)]
    pub unsafe fn load(p: *const i32) -> I32x4 {
        I32x4(core::ptr::read_unaligned(p as *const v128))
    }
    /// # Safety
    /// `p..p+4` must be writable; no alignment is required.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut i32) {
        core::ptr::write_unaligned(p as *mut v128, self.0)
    }
    #[inline(always)]
    pub fn to_array(self) -> [i32; 4] {
        [
            i32x4_extract_lane::<0>(self.0),
            i32x4_extract_lane::<1>(self.0),
            i32x4_extract_lane::<2>(self.0),
            i32x4_extract_lane::<3>(self.0),
        ]
    }
    #[inline(always)]
    pub fn add(self, o: I32x4) -> I32x4 {
        I32x4(i32x4_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sub(self, o: I32x4) -> I32x4 {
        I32x4(i32x4_sub(self.0, o.0))
    }
    #[inline(always)]
    pub fn shl(self, n: u32) -> I32x4 {
        I32x4(i32x4_shl(self.0, n))
    }
    #[inline(always)]
    pub fn shr(self, n: u32) -> I32x4 {
        I32x4(i32x4_shr(self.0, n))
    }
    #[inline(always)]
    pub fn shr_u(self, n: u32) -> I32x4 {
        I32x4(u32x4_shr(self.0, n))
    }
    /// Four bytes, each in the top byte of its lane (`b << 24`).
    ///
    /// # Safety
    /// `p..p+4` must be readable.
    #[inline(always)]
    pub unsafe fn load_u8_high(p: *const u8) -> I32x4 {
        let b = v128_load32_zero(p as *const u32);
        // One byte shuffle (V8 emits a lone pshufb for constant indices; 0x80 gives a zero
        // byte), where widening twice takes two instructions.
        const Z: i8 = -128;
        I32x4(i8x16_swizzle(b, i8x16(Z, Z, Z, 0, Z, Z, Z, 1, Z, Z, Z, 2, Z, Z, Z, 3)))
    }
    #[inline(always)]
    pub fn and(self, o: I32x4) -> I32x4 {
        I32x4(v128_and(self.0, o.0))
    }
    #[inline(always)]
    pub fn or(self, o: I32x4) -> I32x4 {
        I32x4(v128_or(self.0, o.0))
    }
    #[inline(always)]
    pub fn xor(self, o: I32x4) -> I32x4 {
        I32x4(v128_xor(self.0, o.0))
    }
    /// `self & !o`
    #[inline(always)]
    pub fn and_not(self, o: I32x4) -> I32x4 {
        I32x4(v128_andnot(self.0, o.0))
    }
    #[inline(always)]
    pub fn min(self, o: I32x4) -> I32x4 {
        I32x4(i32x4_min(self.0, o.0))
    }
    #[inline(always)]
    pub fn max(self, o: I32x4) -> I32x4 {
        I32x4(i32x4_max(self.0, o.0))
    }
    /// Minimum of the lanes read as unsigned.
    #[inline(always)]
    pub fn min_u(self, o: I32x4) -> I32x4 {
        I32x4(u32x4_min(self.0, o.0))
    }
    /// Maximum of the lanes read as unsigned.
    #[inline(always)]
    pub fn max_u(self, o: I32x4) -> I32x4 {
        I32x4(u32x4_max(self.0, o.0))
    }
    #[inline(always)]
    pub fn to_f32(self) -> F32x4 {
        F32x4(f32x4_convert_i32x4(self.0))
    }
    /// The lanes read as booleans (any nonzero bit is true), for masks kept as integers.
    #[inline(always)]
    pub fn from_mask(m: M32x4) -> I32x4 {
        I32x4(m.0)
    }
}

impl M32x4 {
    #[inline(always)]
    pub fn select(self, a: F32x4, b: F32x4) -> F32x4 {
        F32x4(v128_bitselect(a.0, b.0, self.0))
    }
    #[inline(always)]
    pub fn select_i(self, a: I32x4, b: I32x4) -> I32x4 {
        I32x4(v128_bitselect(a.0, b.0, self.0))
    }
    #[inline(always)]
    pub fn and(self, o: M32x4) -> M32x4 {
        M32x4(v128_and(self.0, o.0))
    }
    #[inline(always)]
    pub fn or(self, o: M32x4) -> M32x4 {
        M32x4(v128_or(self.0, o.0))
    }
    #[inline(always)]
    pub fn not(self) -> M32x4 {
        M32x4(v128_not(self.0))
    }
    #[inline(always)]
    pub fn any(self) -> bool {
        v128_any_true(self.0)
    }
    #[inline(always)]
    pub fn from_i32_nonzero(v: I32x4) -> M32x4 {
        M32x4(v128_not(i32x4_eq(v.0, i32x4_splat(0))))
    }
    #[inline(always)]
    pub fn i32_eq(a: I32x4, b: I32x4) -> M32x4 {
        M32x4(i32x4_eq(a.0, b.0))
    }
    #[inline(always)]
    pub fn i32_lt(a: I32x4, b: I32x4) -> M32x4 {
        M32x4(i32x4_lt(a.0, b.0))
    }
}

impl F64x2 {
    pub const ZERO: F64x2 = F64x2(f64x2(0.0, 0.0));
    #[inline(always)]
    pub fn new(a: f64, b: f64) -> F64x2 {
        F64x2(f64x2(a, b))
    }
    /// # Safety
    /// `p` must be valid for reading two f64 (any alignment).
    #[inline(always)]
    pub unsafe fn load(p: *const f64) -> F64x2 {
        F64x2(v128_load(p as *const v128))
    }
    /// # Safety
    /// `p` must be valid for writing two f64 (any alignment).
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f64) {
        v128_store(p as *mut v128, self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F64x2) -> F64x2 {
        F64x2(f64x2_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sqrt(self) -> F64x2 {
        F64x2(f64x2_sqrt(self.0))
    }
    #[inline(always)]
    pub fn promote_low(v: F32x4) -> F64x2 {
        F64x2(f64x2_promote_low_f32x4(v.0))
    }
    #[inline(always)]
    pub fn promote_high(v: F32x4) -> F64x2 {
        F64x2(f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 0, 1>(v.0, v.0)))
    }
    #[inline(always)]
    pub fn to_array(self) -> [f64; 2] {
        [f64x2_extract_lane::<0>(self.0), f64x2_extract_lane::<1>(self.0)]
    }
}
