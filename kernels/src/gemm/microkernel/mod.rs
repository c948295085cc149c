//! Micro-kernels: one `MR×NR` tile of `C` from a packed `A` panel (`kc×MR`, `MR` values per
//! `k`) and a packed `B` panel (`kc×NR`, `NR` values per `k`), accumulated in registers over
//! the whole `kc` and written once as `C = alpha·AB + beta·C`.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;

use super::pack::Strided;
#[cfg(doc)]
use super::pack::{pack_a, pack_b};

/// The largest `MR·NR` of any kernel (the size of the edge-tile buffer).
pub(crate) const MAX_TILE: usize = 512;

/// A register-blocked `MR×NR` kernel.
pub(crate) trait MicroKernel {
    /// Rows of a tile.
    const MR: usize;
    /// Columns of a tile.
    const NR: usize;

    /// `C[0..MR, 0..NR] = alpha · Ap·Bp + beta · C` (C is not read when `beta == 0`).
    ///
    /// # Safety
    /// The CPU supports the kernel's target features; `a` points to `kc·MR` readable `f32`,
    /// `b` to `kc·NR`, and `c` to `MR` rows of `NR` writable `f32` with row stride `ldc`
    /// (non-overlapping rows: `ldc >= NR`).
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32);

    /// [`pack_a`] with this kernel's `MR`.
    fn pack_a(a: Strided<'_>, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [f32]) -> usize;

    /// [`pack_b`] with this kernel's `NR`.
    fn pack_b(b: Strided<'_>, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) -> usize;
}

/// Implements the packing methods of [`MicroKernel`] for a kernel with the given `MR`, `NR`
/// (const generics cannot take `Self::MR` yet).
macro_rules! packing_for {
    ($mr:literal, $nr:literal) => {
        fn pack_a(
            a: $crate::gemm::pack::Strided<'_>,
            i0: usize,
            mc: usize,
            p0: usize,
            kc: usize,
            out: &mut [f32],
        ) -> usize {
            $crate::gemm::pack::pack_a::<$mr>(a, i0, mc, p0, kc, out)
        }
        fn pack_b(
            b: $crate::gemm::pack::Strided<'_>,
            p0: usize,
            kc: usize,
            j0: usize,
            nc: usize,
            out: &mut [f32],
        ) -> usize {
            $crate::gemm::pack::pack_b::<$nr>(b, p0, kc, j0, nc, out)
        }
    };
}
pub(crate) use packing_for;
