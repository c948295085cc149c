//! Vector bodies of the vanilla RNN cell activations, generic over the SIMD level.

use crate::math::tanh;
use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

impl SimdKernel for super::RnnForward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        for_each_vector!(S, self.pre.len(), |at| {
            at.store(s, self.h, tanh(s, at.load(s, self.pre)));
        });
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
        for_each_vector!(S, self.h.len(), |at| {
            at.store(s, self.dpre, backward_lanes(s, at.load(s, self.h), at.load(s, self.dh)));
        });
    }
}
