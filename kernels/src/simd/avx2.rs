//! AVX2+FMA level: 8 `f32` lanes in a `__m256`, `vmaskmovps` for tails.

use std::arch::x86_64::*;

use super::Simd;

/// Token for the AVX2+FMA level; a value proves the CPU supports AVX2 and FMA.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by [`super::run`] before it builds one).
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx2(())
    }
}

/// All-ones in the first `min(n, 8)` 32-bit lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn first_lanes(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    // SAFETY: the caller guarantees AVX2.
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
}

/// Sum of the four lanes of `s`, as `(s0 + s2) + (s1 + s3)`.
///
/// # Safety
/// The CPU must support SSE (always true on x86-64).
#[inline(always)]
unsafe fn hsum4(s: __m128) -> f32 {
    // SAFETY: SSE is part of the x86-64 baseline.
    unsafe {
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }
}

impl Simd for Avx2 {
    // `LANES`, the types, `load`, `store`, `d_zero` and the operations that are one intrinsic:
    // the table in `x86_ops.rs`.
    super::x86_ops::x86_shared_ops!(avx2);

    #[inline(always)]
    fn load_tail(self, src: &[f32], fill: f32) -> __m256 {
        // SAFETY: AVX2 is present (`self`); vmaskmovps reads only the lanes whose mask bit is
        // set, the first min(len, 8), which lie inside `src` (masked-out lanes do not fault).
        unsafe {
            let mask = first_lanes(src.len());
            let v = _mm256_maskload_ps(src.as_ptr(), mask);
            _mm256_blendv_ps(_mm256_set1_ps(fill), v, _mm256_castsi256_ps(mask))
        }
    }
    #[inline(always)]
    fn store_tail(self, dst: &mut [f32], v: __m256) {
        // SAFETY: AVX2 is present (`self`); vmaskmovps writes only the lanes whose mask bit
        // is set, the first min(len, 8), which lie inside `dst`.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), first_lanes(dst.len()), v) }
    }

    #[inline(always)]
    fn clamp(self, x: __m256, lo: __m256, hi: __m256) -> __m256 {
        // vmaxps/vminps return their second operand when either is NaN, so a NaN `x` passes
        // through both.
        // SAFETY: AVX2 is present (`self`).
        unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, x)) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: AVX2 is present (`self`).
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }
    #[inline(always)]
    fn with_sign_of(self, mag: __m256, sign: __m256) -> __m256 {
        // SAFETY: AVX2 is present (`self`).
        unsafe { _mm256_or_ps(mag, _mm256_and_ps(sign, _mm256_set1_ps(-0.0))) }
    }
    #[inline(always)]
    fn mul_pow2(self, p: __m256, n: __m256) -> __m256 {
        // 2^n as 2^(n>>1) · 2^(n - (n>>1)): both exponents stay in [-75, 65], so each factor is
        // a normal float built from its bits; p·2^a is exact and the last product rounds once.
        // SAFETY: AVX2 is present (`self`); the casts only reinterpret bits.
        unsafe {
            let ni = _mm256_cvtps_epi32(n);
            let n1 = _mm256_srai_epi32::<1>(ni);
            let n2 = _mm256_sub_epi32(ni, n1);
            let bias = _mm256_set1_epi32(127);
            let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
            let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
            _mm256_mul_ps(_mm256_mul_ps(p, s1), s2)
        }
    }

    #[inline(always)]
    fn select(self, m: __m256, if_true: __m256, if_false: __m256) -> __m256 {
        // SAFETY: AVX2 is present (`self`).
        unsafe { _mm256_blendv_ps(if_false, if_true, m) }
    }

    #[inline(always)]
    fn reduce_add(self, v: __m256) -> f32 {
        // SAFETY: AVX2 is present (`self`).
        unsafe { hsum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v))) }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m256) -> f32 {
        // SAFETY: AVX2 is present (`self`).
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps::<1>(s, s)))
        }
    }

    #[inline(always)]
    fn d_add_squares(self, acc: (__m256d, __m256d), v: __m256) -> (__m256d, __m256d) {
        // SAFETY: AVX2 and FMA are present (`self`).
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
            (_mm256_fmadd_pd(lo, lo, acc.0), _mm256_fmadd_pd(hi, hi, acc.1))
        }
    }
    #[inline(always)]
    fn d_reduce(self, acc: (__m256d, __m256d)) -> f64 {
        // SAFETY: AVX2 is present (`self`).
        unsafe {
            let a = _mm256_add_pd(acc.0, acc.1);
            let s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd::<1>(a));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
}
