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
//!
//! The vector accumulators (10×2, 5×4, 14×1) are the shared [`super::tile::register_tile`].

use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};

use super::tile::{micro_kernel, F32Step, TileLevel};
use super::{avx512_columns, CTile, MicroKernel};
use crate::simd::avx512::Avx512 as Zmm;

impl TileLevel for Zmm {
    /// Each vector of the tile of `C` is brought into L1 for writing at the start of a kernel:
    /// the tile is read (`beta != 0`) or written only after the `k` loop, and a result too
    /// large for the caches (`[T·B, 4H]` is 5 MB) would otherwise stall on every row.
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        // SAFETY: SSE is part of the x86-64 baseline, and a prefetch never faults, whatever
        // the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
}

/// A kernel type on AVX-512F with the few-column edge path.
macro_rules! avx512_kernel {
    ($name:ident = $id:ident) => {
        micro_kernel!($name = $id on Zmm, step F32Step, token Zmm::new_unchecked(), features "avx512f";
            const EDGE_COLUMNS: usize = avx512_columns::EDGE_COLUMNS;

            #[inline]
            unsafe fn columns(kc: usize, a: *const f32, b: *const f32, c: CTile, rows: usize, cols: usize) {
                const MR: usize = <$name as MicroKernel>::MR;
                const NR: usize = <$name as MicroKernel>::NR;
                // SAFETY: forwarded contract (feature present, pointers valid, rows ≤ MR ≤ 16,
                // cols ≤ EDGE_COLUMNS ≤ NR).
                unsafe { avx512_columns::columns::<MR, NR>(kc, a, b, c, rows, cols) }
            }
        );
    };
}

avx512_kernel!(Avx512 = Avx512Tall);
avx512_kernel!(Avx512Wide = Avx512Wide);
avx512_kernel!(Avx512Narrow = Avx512Narrow);
