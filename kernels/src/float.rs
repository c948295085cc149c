//! The element type the kernels are generic over.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// `matrixmultiply`'s strided GEMM routine for one element type (`sgemm` / `dgemm`):
/// `(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)`.
pub type MatrixMultiply<F> =
    unsafe fn(usize, usize, usize, F, *const F, isize, isize, *const F, isize, isize, F, *mut F, isize, isize);

/// A floating-point element type: `f32` for training, `f64` for gradient checks.
///
/// Only the numeric part: conversions, and the `matrixmultiply` routine of the type, which is
/// the plain body of [`crate::gemm::Gemm`] (`sgemm` / `dgemm`). Which kernels have a fast path
/// is decided by [`crate::kernel`], not here.
pub trait Float:
    num_traits::Float + AddAssign + SubAssign + MulAssign + DivAssign + Sum + Default + Debug + Send + Sync + 'static
{
    /// The type's `matrixmultiply` routine, behind [`Float::gemm_strided_unchecked`].
    const MATRIXMULTIPLY: MatrixMultiply<Self>;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Widens (or copies) to `f64`.
    fn to_f64(self) -> f64;
    /// Strided `C = alpha * A·B + beta * C` with `A: m×k`, `B: k×n`, `C: m×n`, where element
    /// `(i, j)` of a matrix `X` lives at `x[i * rs_x + j * cs_x]`. When `beta == 0`, `C` is
    /// not read (NaN in `C` does not propagate). Bounds are checked by the caller
    /// ([`crate::gemm`]); this only converts the slices and strides for [`Float::MATRIXMULTIPLY`].
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
    ) {
        // SAFETY: the caller guarantees (this function's contract; `gemm::generic::gemm_generic`
        // asserts it before calling) that every index reached through these strides lies
        // inside the slices and that C's indices are distinct; the strides fit in isize because
        // they index in-bounds slice elements.
        unsafe {
            Self::MATRIXMULTIPLY(
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

impl Float for f32 {
    const MATRIXMULTIPLY: MatrixMultiply<f32> = matrixmultiply::sgemm;

    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const MATRIXMULTIPLY: MatrixMultiply<f64> = matrixmultiply::dgemm;

    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}
