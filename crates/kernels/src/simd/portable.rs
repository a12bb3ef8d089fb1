//! Array backend with WebAssembly lane semantics, for the scalar wasm build and host tests.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F32x4([f32; 4]);
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct I32x4([i32; 4]);
/// A lane mask, stored as booleans; `select` reads it lane by lane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct M32x4([bool; 4]);
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F64x2([f64; 2]);

#[inline(always)]
fn map<T: Copy, U: Copy + Default>(a: [T; 4], f: impl Fn(T) -> U) -> [U; 4] {
    [f(a[0]), f(a[1]), f(a[2]), f(a[3])]
}
#[inline(always)]
fn zip<T: Copy, U: Copy + Default>(a: [T; 4], b: [T; 4], f: impl Fn(T, T) -> U) -> [U; 4] {
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])]
}

/// wasm `f32.min`: NaN if either operand is NaN, and -0 < +0.
#[inline(always)]
fn wasm_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        f32::from_bits(a.to_bits() | b.to_bits())
    } else if a < b {
        a
    } else {
        b
    }
}
/// wasm `f32.max`: NaN if either operand is NaN, and +0 > -0.
#[inline(always)]
fn wasm_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        f32::from_bits(a.to_bits() & b.to_bits())
    } else if a > b {
        a
    } else {
        b
    }
}

impl F32x4 {
    #[inline(always)]
    pub const fn const_splat(x: f32) -> F32x4 {
        F32x4([x; 4])
    }
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        F32x4([x; 4])
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> F32x4 {
        F32x4(a)
    }
    #[inline(always)]
    pub fn to_array(self) -> [f32; 4] {
        self.0
    }
    /// # Safety
    /// `p..p+4` must be readable; no alignment is required.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F32x4 {
        F32x4(core::ptr::read_unaligned(p as *const [f32; 4]))
    }
    /// # Safety
    /// `p..p+4` must be writable; no alignment is required.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        core::ptr::write_unaligned(p as *mut [f32; 4], self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| a + b))
    }
    #[inline(always)]
    pub fn sub(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| a - b))
    }
    #[inline(always)]
    pub fn mul(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| a * b))
    }
    #[inline(always)]
    pub fn div(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| a / b))
    }
    #[inline(always)]
    pub fn neg(self) -> F32x4 {
        F32x4(map(self.0, |a| -a))
    }
    #[inline(always)]
    pub fn abs(self) -> F32x4 {
        F32x4(map(self.0, |a| f32::from_bits(a.to_bits() & 0x7fff_ffff)))
    }
    #[inline(always)]
    pub fn min(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, wasm_min))
    }
    #[inline(always)]
    pub fn max(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, wasm_max))
    }
    /// wasm `f32x4.pmin`: `o < self ? o : self`.
    #[inline(always)]
    pub fn pmin(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| if b < a { b } else { a }))
    }
    /// wasm `i32x4.shuffle`: lanes 0–3 from `self`, 4–7 from `o`.
    #[inline(always)]
    pub fn shuffle<const A: usize, const B: usize, const C: usize, const D: usize>(self, o: F32x4) -> F32x4 {
        let ab = [self.0[0], self.0[1], self.0[2], self.0[3], o.0[0], o.0[1], o.0[2], o.0[3]];
        F32x4([ab[A], ab[B], ab[C], ab[D]])
    }
    /// wasm `f32x4.pmax`: `self < o ? o : self`.
    #[inline(always)]
    pub fn pmax(self, o: F32x4) -> F32x4 {
        F32x4(zip(self.0, o.0, |a, b| if a < b { b } else { a }))
    }
    #[inline(always)]
    pub fn sqrt(self) -> F32x4 {
        // The portable backend always has std (see lib.rs): f32::sqrt is the correctly rounded
        // square root, as wasm's f32x4.sqrt is.
        F32x4(map(self.0, |a| a.sqrt()))
    }
    #[inline(always)]
    pub fn lt(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a < b))
    }
    #[inline(always)]
    pub fn le(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a <= b))
    }
    #[inline(always)]
    pub fn gt(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a > b))
    }
    #[inline(always)]
    pub fn ge(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a >= b))
    }
    #[inline(always)]
    pub fn eq(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a == b))
    }
    /// Not equal; true for NaN lanes (so `v.ne(v)` is "v is NaN").
    #[inline(always)]
    pub fn ne(self, o: F32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a != b))
    }
    #[inline(always)]
    pub fn to_bits(self) -> I32x4 {
        I32x4(map(self.0, |a| a.to_bits() as i32))
    }
    #[inline(always)]
    pub fn from_bits(b: I32x4) -> F32x4 {
        F32x4(map(b.0, |v| f32::from_bits(v as u32)))
    }
    /// Truncation toward zero, saturating, NaN to 0 (Rust's `as` has exactly these semantics).
    #[inline(always)]
    pub fn trunc_i32(self) -> I32x4 {
        I32x4(map(self.0, |a| a as i32))
    }
}

impl I32x4 {
    #[inline(always)]
    pub fn splat(x: i32) -> I32x4 {
        I32x4([x; 4])
    }
    /// # Safety
    /// `p..p+4` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const i32) -> I32x4 {
        I32x4(core::ptr::read_unaligned(p as *const [i32; 4]))
    }
    /// # Safety
    /// `p..p+4` must be writable.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut i32) {
        core::ptr::write_unaligned(p as *mut [i32; 4], self.0)
    }
    #[inline(always)]
    pub fn to_array(self) -> [i32; 4] {
        self.0
    }
    #[inline(always)]
    pub fn add(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a.wrapping_add(b)))
    }
    #[inline(always)]
    pub fn sub(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a.wrapping_sub(b)))
    }
    #[inline(always)]
    pub fn shl(self, n: u32) -> I32x4 {
        I32x4(map(self.0, |a| a.wrapping_shl(n)))
    }
    #[inline(always)]
    pub fn shr(self, n: u32) -> I32x4 {
        I32x4(map(self.0, |a| a.wrapping_shr(n)))
    }
    #[inline(always)]
    pub fn shr_u(self, n: u32) -> I32x4 {
        I32x4(map(self.0, |a| (a as u32).wrapping_shr(n) as i32))
    }
    /// Four bytes, each in the top byte of its lane (`b << 24`).
    ///
    /// # Safety
    /// `p..p+4` must be readable.
    #[inline(always)]
    pub unsafe fn load_u8_high(p: *const u8) -> I32x4 {
        let b = core::ptr::read_unaligned(p as *const [u8; 4]);
        I32x4(map(b, |v| ((v as u32) << 24) as i32))
    }
    #[inline(always)]
    pub fn and(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a & b))
    }
    #[inline(always)]
    pub fn or(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a | b))
    }
    #[inline(always)]
    pub fn xor(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a ^ b))
    }
    /// `self & !o`
    #[inline(always)]
    pub fn and_not(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a & !b))
    }
    #[inline(always)]
    pub fn min(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a.min(b)))
    }
    #[inline(always)]
    pub fn max(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| a.max(b)))
    }
    /// Minimum of the lanes read as unsigned.
    #[inline(always)]
    pub fn min_u(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| (a as u32).min(b as u32) as i32))
    }
    /// Maximum of the lanes read as unsigned.
    #[inline(always)]
    pub fn max_u(self, o: I32x4) -> I32x4 {
        I32x4(zip(self.0, o.0, |a, b| (a as u32).max(b as u32) as i32))
    }
    #[inline(always)]
    pub fn to_f32(self) -> F32x4 {
        F32x4(map(self.0, |a| a as f32))
    }
    #[inline(always)]
    pub fn from_mask(m: M32x4) -> I32x4 {
        I32x4(map(m.0, |b| if b { -1 } else { 0 }))
    }
}

impl M32x4 {
    #[inline(always)]
    pub fn select(self, a: F32x4, b: F32x4) -> F32x4 {
        F32x4([
            if self.0[0] { a.0[0] } else { b.0[0] },
            if self.0[1] { a.0[1] } else { b.0[1] },
            if self.0[2] { a.0[2] } else { b.0[2] },
            if self.0[3] { a.0[3] } else { b.0[3] },
        ])
    }
    #[inline(always)]
    pub fn select_i(self, a: I32x4, b: I32x4) -> I32x4 {
        I32x4([
            if self.0[0] { a.0[0] } else { b.0[0] },
            if self.0[1] { a.0[1] } else { b.0[1] },
            if self.0[2] { a.0[2] } else { b.0[2] },
            if self.0[3] { a.0[3] } else { b.0[3] },
        ])
    }
    #[inline(always)]
    pub fn and(self, o: M32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a & b))
    }
    #[inline(always)]
    pub fn or(self, o: M32x4) -> M32x4 {
        M32x4(zip(self.0, o.0, |a, b| a | b))
    }
    #[inline(always)]
    pub fn not(self) -> M32x4 {
        M32x4(map(self.0, |a| !a))
    }
    #[inline(always)]
    pub fn any(self) -> bool {
        self.0[0] | self.0[1] | self.0[2] | self.0[3]
    }
    #[inline(always)]
    pub fn from_i32_nonzero(v: I32x4) -> M32x4 {
        M32x4(map(v.0, |a| a != 0))
    }
    #[inline(always)]
    pub fn i32_eq(a: I32x4, b: I32x4) -> M32x4 {
        M32x4(zip(a.0, b.0, |x, y| x == y))
    }
    #[inline(always)]
    pub fn i32_lt(a: I32x4, b: I32x4) -> M32x4 {
        M32x4(zip(a.0, b.0, |x, y| x < y))
    }
}

impl F64x2 {
    pub const ZERO: F64x2 = F64x2([0.0, 0.0]);
    #[inline(always)]
    pub fn new(a: f64, b: f64) -> F64x2 {
        F64x2([a, b])
    }
    /// # Safety
    /// `p` must be valid for reading two f64.
    #[inline(always)]
    pub unsafe fn load(p: *const f64) -> F64x2 {
        F64x2([p.read_unaligned(), p.add(1).read_unaligned()])
    }
    /// # Safety
    /// `p` must be valid for writing two f64.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f64) {
        p.write_unaligned(self.0[0]);
        p.add(1).write_unaligned(self.0[1]);
    }
    #[inline(always)]
    pub fn add(self, o: F64x2) -> F64x2 {
        F64x2([self.0[0] + o.0[0], self.0[1] + o.0[1]])
    }
    #[inline(always)]
    pub fn sqrt(self) -> F64x2 {
        F64x2([self.0[0].sqrt(), self.0[1].sqrt()])
    }
    #[inline(always)]
    pub fn promote_low(v: F32x4) -> F64x2 {
        F64x2([v.0[0] as f64, v.0[1] as f64])
    }
    #[inline(always)]
    pub fn promote_high(v: F32x4) -> F64x2 {
        F64x2([v.0[2] as f64, v.0[3] as f64])
    }
    #[inline(always)]
    pub fn to_array(self) -> [f64; 2] {
        self.0
    }
}
