//! Few-column edge tiles for the AVX-512 kernels. A result whose width is one more than a
//! multiple of `NR` (the output layer's 65 = 64 + 1) leaves a last panel of `B` with one valid
//! column; a full tile there spends `MR·NR/16` vector multiply-adds per `k` (14 for 14×16) on
//! it. Here the `MR` values of the packed `A` panel at one `k` are one masked vector (`MR ≤ 16`)
//! and each valid column is a broadcast of `B`: one multiply-add per column per `k`.

use std::arch::x86_64::*;

use super::CTile;

/// Most valid columns a few-column tile takes.
pub(crate) const EDGE_COLUMNS: usize = 4;

/// `C[0..rows, 0..cols] = alpha · Ap·Bp[.., 0..cols] + beta · C` for a packed `A` panel of
/// `MR` values per `k` and a packed `B` panel of `NR` values per `k` (`C` not read when
/// `beta == 0`).
///
/// # Safety
/// AVX-512F is present; `a` points to `kc·MR` readable floats, `b` to `kc·NR`, and `c.ptr` to
/// `rows` rows of `cols` writable floats at stride `c.ldc`, with `rows ≤ MR ≤ 16` and
/// `1 ≤ cols ≤ min(EDGE_COLUMNS, NR)`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn columns<const MR: usize, const NR: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: CTile,
    rows: usize,
    cols: usize,
) {
    // SAFETY: forwarded contract; `cols` selects the instance with that many columns.
    unsafe {
        match cols {
            1 => columns_n::<MR, NR, 1>(kc, a, b, c, rows),
            2 => columns_n::<MR, NR, 2>(kc, a, b, c, rows),
            3 => columns_n::<MR, NR, 3>(kc, a, b, c, rows),
            4 => columns_n::<MR, NR, 4>(kc, a, b, c, rows),
            _ => unreachable!("few-column tile of {cols} columns"),
        }
    }
}

/// [`columns`] for exactly `COLS` columns.
///
/// # Safety
/// The contract of [`columns`], with `cols == COLS`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn columns_n<const MR: usize, const NR: usize, const COLS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: CTile,
    rows: usize,
) {
    const { assert!(MR <= 16 && COLS <= NR && COLS <= EDGE_COLUMNS) };
    debug_assert!(rows <= MR);
    let CTile { ptr: c, ldc, alpha, beta } = c;
    // Lanes 0..MR: one `k` of the `A` panel; the masked load reads nothing past it.
    let rows_mask = ((1u32 << MR) - 1) as __mmask16;
    // One sum per column, over `k` in order, as every full tile forms each element of `C`:
    // so an element's value does not depend on which tile computes it, and the batch-1
    // sampling path (`crate::gemv`) gives the same sums as a batched one. Several chains would
    // hide the multiply-add latency, but on a product's one or few edge columns it costs
    // little (the output layer's 65th column: 4 cycles per `k` per 16 rows).
    let mut acc = [_mm512_setzero_ps(); COLS];
    // SAFETY: (for the whole body) AVX-512F is present (caller); every `A` read is a masked load of the
    // MR values at `a + p·MR` with p < kc, every `B` read is `b + p·NR + j` with p < kc and
    // j < COLS ≤ NR, and every `C` access is `c + i·ldc + j` with i < rows and j < COLS, all
    // inside the ranges the caller guarantees.
    unsafe {
        for p in 0..kc {
            let av = _mm512_maskz_loadu_ps(rows_mask, a.add(p * MR));
            let bp = b.add(p * NR);
            for (j, sum) in acc.iter_mut().enumerate() {
                *sum = _mm512_fmadd_ps(av, _mm512_set1_ps(*bp.add(j)), *sum);
            }
        }
        let va = _mm512_set1_ps(alpha);
        let vb = _mm512_set1_ps(beta);
        for (j, &sum) in acc.iter().enumerate() {
            // The column goes through a local vector, so `alpha`/`beta` round as in full tiles.
            let mut column = [0.0f32; 16];
            if beta != 0.0 {
                for (i, x) in column.iter_mut().enumerate().take(rows) {
                    *x = *c.add(i * ldc + j);
                }
            }
            let out = if beta == 0.0 {
                _mm512_mul_ps(va, sum)
            } else {
                _mm512_fmadd_ps(va, sum, _mm512_mul_ps(vb, _mm512_loadu_ps(column.as_ptr())))
            };
            _mm512_storeu_ps(column.as_mut_ptr(), out);
            for (i, &x) in column.iter().enumerate().take(rows) {
                *c.add(i * ldc + j) = x;
            }
        }
    }
}
