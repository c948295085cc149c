//! Vector bodies of the vanilla RNN cell activations, generic over the SIMD level.

use crate::math::tanh;
use crate::simd::{Simd, SimdKernel};

impl SimdKernel for super::RnnForward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let n = self.pre.len();
        let mut j = 0;
        while j + S::LANES <= n {
            s.store(&mut self.h[j..], tanh(s, s.load(&self.pre[j..])));
            j += S::LANES;
        }
        if j < n {
            s.store_tail(&mut self.h[j..], tanh(s, s.load_tail(&self.pre[j..], 0.0)));
        }
    }
}

#[inline(always)]
fn backward_lanes<S: Simd>(s: S, h: S::V, dh: S::V) -> S::V {
    s.mul(dh, s.neg_mul_add(h, h, s.splat(1.0)))
}

impl SimdKernel for super::RnnBackward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let n = self.h.len();
        let mut j = 0;
        while j + S::LANES <= n {
            let d = backward_lanes(s, s.load(&self.h[j..]), s.load(&self.dh[j..]));
            s.store(&mut self.dpre[j..], d);
            j += S::LANES;
        }
        if j < n {
            let d = backward_lanes(s, s.load_tail(&self.h[j..], 0.0), s.load_tail(&self.dh[j..], 0.0));
            s.store_tail(&mut self.dpre[j..], d);
        }
    }
}
