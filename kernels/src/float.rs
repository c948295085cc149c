//! The element type the kernels are generic over.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use crate::dispatch::cpu_level;
use crate::gemm::{PackedB, PackedLayout};

/// A floating-point element type: `f32` for training, `f64` for gradient checks.
///
/// The GEMM entry point is part of the trait because each type has its own backend
/// (`matrixmultiply::sgemm` / `dgemm`).
pub trait Float:
    num_traits::Float + AddAssign + SubAssign + MulAssign + DivAssign + Sum + Default + Debug + Send + Sync + 'static
{
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Widens (or copies) to `f64`.
    fn to_f64(self) -> f64;
    /// Strided `C = alpha * A·B + beta * C` with `A: m×k`, `B: k×n`, `C: m×n`, where element
    /// `(i, j)` of a matrix `X` lives at `x[i * rs_x + j * cs_x]`. When `beta == 0`, `C` is
    /// not read (NaN in `C` does not propagate). Bounds are checked by the caller
    /// ([`crate::gemm`]); implementations may assume every index is in range.
    ///
    /// # Safety
    /// Every index `i * rs + j * cs` for `i < rows`, `j < cols` of each matrix must lie within
    /// its slice, and `C`'s indices must not alias each other.
    unsafe fn gemm_strided_unchecked(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        rsc: usize,
        csc: usize,
    );

    /// Hook behind [`crate::gemm::gemm`], after its bounds checks: `C = alpha·A·B + beta·C`
    /// for strided `A` (`m×k`), `B` (`k×n`) and row-major `C` (leading dimension `ldc`).
    fn gemm_checked(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    ) {
        crate::gemm::generic::gemm_generic(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc)
    }

    /// Hook behind [`crate::gemm::PackedB::pack`]: packs the strided `k×n` operand into `out`
    /// and says how. The default keeps a plain row-major copy.
    fn pack_b(
        k: usize,
        n: usize,
        rows_hint: usize,
        b: &[Self],
        rs: usize,
        cs: usize,
        out: &mut [Self],
    ) -> PackedLayout {
        let _ = rows_hint;
        for (p, row) in out[..k * n].chunks_exact_mut(n.max(1)).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = b[p * rs + j * cs];
            }
        }
        PackedLayout::Plain
    }

    /// Hook behind [`crate::gemm::gemm_packed`], after its bounds checks.
    fn gemm_packed_checked(
        m: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &PackedB<Self>,
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    ) {
        let (k, n) = (b.k(), b.n());
        crate::gemm::generic::gemm_generic(m, k, n, alpha, a, rsa, csa, b.data(), n, 1, beta, c, ldc)
    }
}

impl Float for f32 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    unsafe fn gemm_strided_unchecked(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        rsc: usize,
        csc: usize,
    ) {
        // SAFETY: the caller guarantees (and `gemm::check_bounds` verifies) that every index
        // reached through these strides lies inside the slices, and that C's indices are
        // distinct; strides fit in isize because they index in-bounds slice elements.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                beta,
                c.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            )
        }
    }

    fn gemm_checked(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        rsa: usize,
        csa: usize,
        b: &[f32],
        rsb: usize,
        csb: usize,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        crate::gemm::f32_path::gemm(cpu_level(), m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc)
    }

    fn pack_b(k: usize, n: usize, rows_hint: usize, b: &[f32], rs: usize, cs: usize, out: &mut [f32]) -> PackedLayout {
        let kernel = crate::gemm::KernelId::choose(cpu_level(), rows_hint, n);
        crate::gemm::f32_path::pack_b(kernel, k, n, b, rs, cs, out)
    }

    fn gemm_packed_checked(
        m: usize,
        alpha: f32,
        a: &[f32],
        rsa: usize,
        csa: usize,
        b: &PackedB<f32>,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        crate::gemm::f32_path::gemm_packed(m, alpha, a, rsa, csa, b, beta, c, ldc)
    }
}

impl Float for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    unsafe fn gemm_strided_unchecked(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        rsc: usize,
        csc: usize,
    ) {
        // SAFETY: as for f32 above: the caller guarantees in-bounds, non-aliasing indices.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                beta,
                c.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            )
        }
    }
}
