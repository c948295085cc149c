//! AVX-512F level: 16 `f32` lanes in a `__m512`, masked loads and stores for tails.
//!
//! Only AVX-512F instructions are used (no DQ/BW/VL), so any AVX-512 CPU runs this level.

use std::arch::x86_64::*;

use super::Simd;

/// Token for the AVX-512F level; a value proves the CPU supports AVX-512F.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F (checked by [`super::run`] before it builds one).
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx512(())
    }
}

/// Mask of the first `min(n, 16)` lanes.
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

// Every `unsafe` block below calls AVX-512F intrinsics. SAFETY (common to all of them): a
// value of `Avx512` exists only after AVX-512F was detected (see `new_unchecked`), and the
// methods take `self`; pointer arguments are justified where they occur.
impl Simd for Avx512 {
    // `LANES`, the types, `load`, `store`, `d_zero` and the operations that are one intrinsic:
    // the table in `x86_ops.rs`.
    super::x86_ops::x86_shared_ops!(avx512);

    #[inline(always)]
    fn load_tail(self, src: &[f32], fill: f32) -> __m512 {
        let k = first_lanes(src.len());
        // SAFETY: AVX-512F is present (`self`); only the first min(len, 16) lanes, which lie
        // inside `src`, are read: masked-out lanes are neither read nor fault.
        unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), k, src.as_ptr()) }
    }
    #[inline(always)]
    fn store_tail(self, dst: &mut [f32], v: __m512) {
        let k = first_lanes(dst.len());
        // SAFETY: AVX-512F is present (`self`); only the first min(len, 16) lanes, which lie
        // inside `dst`, are written: masked-out lanes are untouched and do not fault.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), k, v) }
    }

    #[inline(always)]
    fn clamp(self, x: __m512, lo: __m512, hi: __m512) -> __m512 {
        // vmaxps/vminps return their second operand when either is NaN, so a NaN `x` passes
        // through both.
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_min_ps(hi, _mm512_max_ps(lo, x)) }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_abs_ps(a) }
    }
    #[inline(always)]
    fn with_sign_of(self, mag: __m512, sign: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (`self`); the casts only reinterpret bits.
        unsafe {
            let sign_bit = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(i32::MIN));
            _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag), sign_bit))
        }
    }
    #[inline(always)]
    fn mul_pow2(self, p: __m512, n: __m512) -> __m512 {
        // vscalefps computes p·2^floor(n) with IEEE overflow and gradual underflow.
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_scalef_ps(p, n) }
    }

    #[inline(always)]
    fn select(self, m: __mmask16, if_true: __m512, if_false: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_mask_blend_ps(m, if_false, if_true) }
    }

    #[inline(always)]
    fn reduce_add(self, v: __m512) -> f32 {
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m512) -> f32 {
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_reduce_max_ps(v) }
    }

    #[inline(always)]
    fn d_add_squares(self, acc: (__m512d, __m512d), v: __m512) -> (__m512d, __m512d) {
        // SAFETY: AVX-512F is present (`self`); the casts only reinterpret bits.
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))));
            (_mm512_fmadd_pd(lo, lo, acc.0), _mm512_fmadd_pd(hi, hi, acc.1))
        }
    }
    #[inline(always)]
    fn d_reduce(self, acc: (__m512d, __m512d)) -> f64 {
        // SAFETY: AVX-512F is present (`self`).
        unsafe { _mm512_reduce_add_pd(_mm512_add_pd(acc.0, acc.1)) }
    }
}
