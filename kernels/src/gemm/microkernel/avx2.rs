//! AVX2+FMA kernel, 6×16: 12 ymm accumulators (of 16 registers), two `B` vectors per `k`, `A`
//! broadcast. Two 256-bit FMA pipes with latency 4 need at least 8 independent accumulators.

use std::arch::x86_64::*;

use super::{a_at, APanel, KernelId, MicroKernel};

pub(crate) struct Avx2;

impl MicroKernel for Avx2 {
    const ID: KernelId = KernelId::Avx2;

    super::packing_for!(Avx2, "avx2,fma");

    #[inline]
    unsafe fn tile(kc: usize, a: APanel, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        // SAFETY: forwarded contract (features present, pointers valid for the stated ranges).
        unsafe { super::tile_for_panel!(tile_6x16(kc, a, b, c, ldc, alpha, beta)) }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16<const IN_PLACE: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = 6;
    // SAFETY: (for the whole body) the caller guarantees AVX2+FMA and that `A` is readable for 6 rows of
    // `kc` values (packed, or in place with row stride `lda`), `b` has kc·16 readable floats and
    // `c` 6 rows of 16 writable floats at stride `ldc`; every offset below stays inside those
    // ranges (p < kc, i < 6).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let mut bp = b;
        for p in 0..kc {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*a_at::<MR, IN_PLACE>(a, lda, i, p));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            bp = bp.add(16);
        }
        let va = _mm256_set1_ps(alpha);
        if beta == 0.0 {
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * ldc);
                _mm256_storeu_ps(cr, _mm256_mul_ps(va, row[0]));
                _mm256_storeu_ps(cr.add(8), _mm256_mul_ps(va, row[1]));
            }
        } else {
            let vb = _mm256_set1_ps(beta);
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * ldc);
                let c0 = _mm256_mul_ps(vb, _mm256_loadu_ps(cr));
                let c1 = _mm256_mul_ps(vb, _mm256_loadu_ps(cr.add(8)));
                _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, row[0], c0));
                _mm256_storeu_ps(cr.add(8), _mm256_fmadd_ps(va, row[1], c1));
            }
        }
    }
}
