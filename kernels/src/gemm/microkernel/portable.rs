//! Portable kernel, 4×16, on `wide::f32x8` (SSE2 on baseline x86-64, NEON on aarch64): the
//! fallback for CPUs without AVX2, and the path that compiles everywhere.

use super::tile::{micro_kernel, F32Step, TileLevel};
use crate::simd::portable::Portable as Wide;
use crate::simd::Simd;

impl TileLevel for Wide {
    /// A multiply, then an add (two roundings), as this kernel's scalar write-back did and
    /// whether or not the target fuses `mul_add`.
    #[inline(always)]
    fn scale_add(self, alpha: Self::V, ab: Self::V, beta_c: Self::V) -> Self::V {
        self.add(self.mul(alpha, ab), beta_c)
    }
}

micro_kernel!(Portable = Portable on Wide, step F32Step, token Wide);
