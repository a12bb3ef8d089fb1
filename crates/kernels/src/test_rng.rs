//! Reproducible random cases for the host tests of the focal family's kernels: one xorshift
//! generator, and the logit mix their f64-reference sweeps draw from.

/// xorshift64 (13, 7, 17); the seed must not be 0.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1), 24 bits (every value an exact f32).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [0, 1), 53 bits.
    pub fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

/// A logit: mostly moderate (|x| < 6), one in twenty up to |x| < 30, one in twenty extreme
/// (±20, ±88, ±1e4, ±0).
pub(crate) fn logit(rng: &mut Rng) -> f32 {
    match rng.below(20) {
        0 => rng.pick(&[20.0, -20.0, 88.0, -88.0, 1e4, -1e4, 0.0, -0.0]),
        1 => (rng.unit() - 0.5) * 60.0,
        _ => (rng.unit() - 0.5) * 12.0,
    }
}
