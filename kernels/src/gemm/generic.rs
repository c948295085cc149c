//! The generic GEMM backend (`f64`, and any `Float` without a fast path): `matrixmultiply`,
//! with large products split by rows of `C` across rayon.

use crate::Float;

const PARALLEL_MIN_WORK: usize = 1 << 21;
const PARALLEL_MIN_ROWS: usize = 32;

/// `C = alpha·A·B + beta·C` for strided `A` (`m×k`) and `B` (`k×n`) and row-major `C`; bounds
/// already checked by [`super::gemm`].
pub(crate) fn gemm_generic<F: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: F,
    a: &[F],
    rsa: usize,
    csa: usize,
    b: &[F],
    rsb: usize,
    csb: usize,
    beta: F,
    c: &mut [F],
    ldc: usize,
) {
    let parallel = m * n * k >= PARALLEL_MIN_WORK && m >= 2 * PARALLEL_MIN_ROWS && rayon::current_num_threads() > 1;
    if !parallel {
        // SAFETY: `super::gemm` checked that every index of A, B and C reached by these shapes
        // and strides is inside its slice, and `ldc >= n` makes C's indices distinct; the row
        // blocks made below keep both properties.
        unsafe { F::gemm_strided_unchecked(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc, 1) };
        return;
    }
    let top = (m / 2).div_ceil(8) * 8;
    let (c_top, c_bottom) = c.split_at_mut(top * ldc);
    let a_bottom = &a[top * rsa..];
    rayon::join(
        || gemm_generic(top, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c_top, ldc),
        || gemm_generic(m - top, k, n, alpha, a_bottom, rsa, csa, b, rsb, csb, beta, c_bottom, ldc),
    );
}
