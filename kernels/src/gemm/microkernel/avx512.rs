//! AVX-512F kernels. Zen 4 executes one 512-bit FMA per cycle per core (32 flop/cycle) with a
//! latency of 4: the kernels keep 14–20 independent zmm accumulators.
//!
//! - 10×32: two `B` vectors per `k`, ten broadcasts of `A`. Ten rows divide the batch (50) and
//!   `T·B` (2500) of our shapes.
//! - 5×64: four `B` vectors per `k`, five broadcasts (fewer loads per FMA). Five rows divide
//!   the half batch (25) that each of two threads takes in the recurrence, where 10-row tiles
//!   would compute 30 rows for 25.
//! - 14×16: one `B` vector and fourteen broadcasts per `k`, for narrow results (the output
//!   layer's 65 columns: four full panels and one column).
//!
//! A last panel of at most [`avx512_columns::EDGE_COLUMNS`] valid columns (65 = 64 + 1) is
//! computed column by column ([`avx512_columns`]) rather than as a padded full tile.

use std::arch::x86_64::*;

use super::{a_at, avx512_columns, APanel, KernelId, MicroKernel};

/// Prefetches the `rows×cols` tile of `C` at `c` (stride `ldc`) into L1 for writing, at the
/// start of a kernel: the tile is read (`beta != 0`) or written only after the `k` loop, and a
/// result too large for the caches (`[T·B, 4H]` is 5 MB) would otherwise stall on every row.
///
/// # Safety
/// None needed for the prefetch itself (it never faults); `c + i·ldc + j` is only formed for
/// rows and columns inside the caller's tile, so the pointer arithmetic stays in bounds.
#[inline(always)]
unsafe fn prefetch_c<const ROWS: usize, const COLS: usize>(c: *mut f32, ldc: usize) {
    for i in 0..ROWS {
        for j in (0..COLS).step_by(16) {
            // SAFETY: see the function's contract: the offset is inside the tile.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + j) as *const i8) };
        }
    }
}

/// A kernel type: its tile function (packed or in-place `A`) and the few-column edge path.
macro_rules! avx512_kernel {
    ($name:ident, $id:ident, $tile:ident) => {
        pub(crate) struct $name;

        impl MicroKernel for $name {
            const ID: KernelId = KernelId::$id;

            super::packing_for!($name, "avx512f");

            #[inline]
            unsafe fn tile(kc: usize, a: APanel, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
                // SAFETY: forwarded contract (feature present, pointers valid for the stated ranges).
                unsafe { super::tile_for_panel!($tile(kc, a, b, c, ldc, alpha, beta)) }
            }

            const EDGE_COLUMNS: usize = avx512_columns::EDGE_COLUMNS;

            #[inline]
            unsafe fn columns(
                kc: usize,
                a: *const f32,
                b: *const f32,
                c: *mut f32,
                ldc: usize,
                rows: usize,
                cols: usize,
                alpha: f32,
                beta: f32,
            ) {
                // SAFETY: forwarded contract (feature present, pointers valid, rows ≤ MR ≤ 16,
                // cols ≤ EDGE_COLUMNS ≤ NR).
                unsafe {
                    avx512_columns::columns::<{ <$name as MicroKernel>::MR }, { <$name as MicroKernel>::NR }>(
                        kc, a, b, c, ldc, rows, cols, alpha, beta,
                    )
                }
            }
        }
    };
}

avx512_kernel!(Avx512, Avx512Tall, tile_10x32);
avx512_kernel!(Avx512Wide, Avx512Wide, tile_5x64);
avx512_kernel!(Avx512Narrow, Avx512Narrow, tile_14x16);

#[target_feature(enable = "avx512f")]
unsafe fn tile_14x16<const IN_PLACE: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = 14;
    // SAFETY: (for the whole body) the caller guarantees AVX-512F and that `A` is readable for 14 rows
    // of `kc` values (packed, or in place with row stride `lda`), `b` has kc·16 readable floats
    // and `c` 14 rows of 16 writable floats at stride `ldc`; every offset below stays inside
    // those ranges (p < kc, i < 14).
    unsafe {
        prefetch_c::<MR, 16>(c, ldc);
        let mut acc = [_mm512_setzero_ps(); MR];
        let mut bp = b;
        for p in 0..kc {
            let b0 = _mm512_loadu_ps(bp);
            for (i, r) in acc.iter_mut().enumerate() {
                *r = _mm512_fmadd_ps(_mm512_set1_ps(*a_at::<MR, IN_PLACE>(a, lda, i, p)), b0, *r);
            }
            bp = bp.add(16);
        }
        let va = _mm512_set1_ps(alpha);
        let vb = _mm512_set1_ps(beta);
        for (i, &r) in acc.iter().enumerate() {
            let cr = c.add(i * ldc);
            let out = if beta == 0.0 {
                _mm512_mul_ps(va, r)
            } else {
                _mm512_fmadd_ps(va, r, _mm512_mul_ps(vb, _mm512_loadu_ps(cr)))
            };
            _mm512_storeu_ps(cr, out);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile_5x64<const IN_PLACE: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = 5;
    // SAFETY: (for the whole body) the caller guarantees AVX-512F and that `A` is readable for 5 rows
    // of `kc` values (packed, or in place with row stride `lda`), `b` has kc·64 readable floats
    // and `c` 5 rows of 64 writable floats at stride `ldc`; every offset below stays inside
    // those ranges (p < kc, i < 5, column offsets 0, 16, 32, 48 of 64).
    unsafe {
        prefetch_c::<MR, 64>(c, ldc);
        let mut acc = [[_mm512_setzero_ps(); 4]; MR];
        let mut bp = b;
        for p in 0..kc {
            let bv = [
                _mm512_loadu_ps(bp),
                _mm512_loadu_ps(bp.add(16)),
                _mm512_loadu_ps(bp.add(32)),
                _mm512_loadu_ps(bp.add(48)),
            ];
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a_at::<MR, IN_PLACE>(a, lda, i, p));
                for (r, &bj) in row.iter_mut().zip(&bv) {
                    *r = _mm512_fmadd_ps(ai, bj, *r);
                }
            }
            bp = bp.add(64);
        }
        let va = _mm512_set1_ps(alpha);
        let vb = _mm512_set1_ps(beta);
        for (i, row) in acc.iter().enumerate() {
            let cr = c.add(i * ldc);
            for (j, &r) in row.iter().enumerate() {
                let cj = cr.add(16 * j);
                let out = if beta == 0.0 {
                    _mm512_mul_ps(va, r)
                } else {
                    _mm512_fmadd_ps(va, r, _mm512_mul_ps(vb, _mm512_loadu_ps(cj)))
                };
                _mm512_storeu_ps(cj, out);
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile_10x32<const IN_PLACE: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = 10;
    // SAFETY: (for the whole body) the caller guarantees AVX-512F and that `A` is readable for 10 rows
    // of `kc` values (packed, or in place with row stride `lda`), `b` has kc·32 readable floats
    // and `c` 10 rows of 32 writable floats at stride `ldc`; every offset below stays inside
    // those ranges (p < kc, i < 10, column offsets 0 and 16 of 32).
    unsafe {
        prefetch_c::<MR, 32>(c, ldc);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let mut bp = b;
        for p in 0..kc {
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a_at::<MR, IN_PLACE>(a, lda, i, p));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
            bp = bp.add(32);
        }
        let va = _mm512_set1_ps(alpha);
        if beta == 0.0 {
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * ldc);
                _mm512_storeu_ps(cr, _mm512_mul_ps(va, row[0]));
                _mm512_storeu_ps(cr.add(16), _mm512_mul_ps(va, row[1]));
            }
        } else {
            let vb = _mm512_set1_ps(beta);
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * ldc);
                let c0 = _mm512_mul_ps(vb, _mm512_loadu_ps(cr));
                let c1 = _mm512_mul_ps(vb, _mm512_loadu_ps(cr.add(16)));
                _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, row[0], c0));
                _mm512_storeu_ps(cr.add(16), _mm512_fmadd_ps(va, row[1], c1));
            }
        }
    }
}
