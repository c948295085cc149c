//! Vector bodies of the flat-buffer reductions, generic over the SIMD level.

use crate::simd::{Simd, SimdKernel};

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
        let n = x.len();
        let mut acc = s.d_zero();
        let mut j = 0;
        while j + S::LANES <= n {
            acc = s.d_add_squares(acc, s.load(&x[j..]));
            j += S::LANES;
        }
        if j < n {
            acc = s.d_add_squares(acc, s.load_tail(&x[j..], 0.0));
        }
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
        let n = x.len();
        let k = s.splat(self.k);
        let mut j = 0;
        while j + S::LANES <= n {
            let v = s.load(&x[j..]);
            s.store(&mut x[j..], s.mul(v, k));
            j += S::LANES;
        }
        if j < n {
            let v = s.load_tail(&x[j..], 0.0);
            s.store_tail(&mut x[j..], s.mul(v, k));
        }
    }
}
