//! The generic GEMM backend (`f64`, and any `Float` without a fast path): `matrixmultiply`,
//! with large products split by rows of `C` across rayon.

use crate::Float;

const PARALLEL_MIN_WORK: usize = 1 << 21;
const PARALLEL_MIN_ROWS: usize = 32;

/// `C = alpha·A·B + beta·C` for strided `A` (`m×k`) and `B` (`k×n`) and row-major `C`.
///
/// # Panics
/// If an index reached by the shapes and strides lies outside its slice, or `ldc < n`: the
/// bounds are asserted here, where the pointers for `matrixmultiply` are made, whatever the
/// caller checked.
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
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "gemm_generic: ldc {ldc} < n {n}");
    assert!(last_index(m, n, ldc, 1) < c.len(), "gemm_generic: C too short");
    if k > 0 {
        assert!(last_index(m, k, rsa, csa) < a.len(), "gemm_generic: A too short");
        assert!(last_index(k, n, rsb, csb) < b.len(), "gemm_generic: B too short");
    }
    let parallel = m * n * k >= PARALLEL_MIN_WORK && m >= 2 * PARALLEL_MIN_ROWS && rayon::current_num_threads() > 1;
    if !parallel {
        // SAFETY: asserted above: the last, and so every, index of C reached by the shapes
        // and strides is inside C (indices grow with `i` and `j`), and so are A's and B's when
        // `k > 0` (with `k == 0` matrixmultiply reads neither); `ldc >= n` makes C's indices
        // distinct. The row blocks made below keep these properties, and are asserted anew.
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

/// The largest index `i·rs + j·cs` of a `rows × cols` matrix at these strides (`rows`, `cols`
/// non-zero), saturating so that an overflow fails the bound instead of wrapping.
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1).saturating_mul(rs).saturating_add((cols - 1).saturating_mul(cs))
}
