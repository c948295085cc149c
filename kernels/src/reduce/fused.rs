//! Vector bodies of the flat-buffer reductions, generic over the SIMD level.

use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

/// `Σ x²` over one chunk, each square exact in `f64` and summed in `f64` lanes, then the
/// lanes in a fixed order.
pub(super) struct SumSquares<'a> {
    pub x: &'a [f32],
}

impl SimdKernel for SumSquares<'_> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let x = self.x;
        let mut acc = s.d_zero();
        for_each_vector!(S, x.len(), |at| {
            acc = s.d_add_squares(acc, at.load(s, x));
        });
        s.d_reduce(acc)
    }
}

/// `x *= k` over one chunk.
pub(super) struct Scale<'a> {
    pub x: &'a mut [f32],
    pub k: f32,
}

impl SimdKernel for Scale<'_> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let x = self.x;
        let k = s.splat(self.k);
        for_each_vector!(S, x.len(), |at| {
            let v = at.load(s, x);
            at.store(s, x, s.mul(v, k));
        });
    }
}
