//! General matrix multiply, row-major, BLAS-style: `C = alpha * op(A)·op(B) + beta * C`.
//!
//! For now the backend is `matrixmultiply` (through [`Float::gemm_strided_unchecked`]); large
//! products are split by rows of `C` across the rayon pool. Splitting by output rows keeps
//! every element of `C` computed by exactly one call over the full `k`, so the result does not
//! depend on the number of threads.

use crate::Float;

/// Whether an operand is used as stored (`N`) or transposed (`T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use the transpose of the stored matrix.
    T,
}

/// Below this many multiply-adds a product runs on the calling thread: splitting costs more
/// than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 21;
/// Row blocks handed to a thread are at least this tall, so each keeps full micro-tiles.
const PARALLEL_MIN_ROWS: usize = 32;

/// `C[m×n] = alpha * op(A)·op(B) + beta * C`, all row-major.
///
/// `op(A)` is `m×k`: stored `m×k` with leading dimension `lda` for [`Op::N`], stored `k×m` for
/// [`Op::T`]. `op(B)` is `k×n`: stored `k×n` (`N`) or `n×k` (`T`) with leading dimension `ldb`.
/// `C` is `m×n` with leading dimension `ldc`. With `beta == 0`, `C` is only written.
///
/// # Panics
/// If a leading dimension is smaller than its row or a slice is too short for its shape.
/// Shapes come from the program, never from user input, so this is a programming error.
#[allow(clippy::too_many_arguments)]
pub fn gemm<F: Float>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: F,
    a: &[F],
    lda: usize,
    b: &[F],
    ldb: usize,
    beta: F,
    c: &mut [F],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = strides(op_a, lda);
    let (rsb, csb) = strides(op_b, ldb);
    let (a_rows, a_cols) = stored_shape(op_a, m, k);
    let (b_rows, b_cols) = stored_shape(op_b, k, n);
    check_matrix("A", a.len(), a_rows, a_cols, lda);
    check_matrix("B", b.len(), b_rows, b_cols, ldb);
    check_matrix("C", c.len(), m, n, ldc);
    gemm_split_rows(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc);
}

/// Recursively halves the rows of `C` (and of `op(A)`) across rayon while the work is large.
#[allow(clippy::too_many_arguments)]
fn gemm_split_rows<F: Float>(
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
    let parallel = m * n * k >= PARALLEL_MIN_WORK
        && m >= 2 * PARALLEL_MIN_ROWS
        && rayon::current_num_threads() > 1;
    if k == 0 {
        scale_only(m, n, beta, c, ldc);
        return;
    }
    if !parallel {
        // SAFETY: `gemm` checked that every index of A, B and C reached by these shapes and
        // strides is inside its slice, and `ldc >= n` makes C's indices distinct. Sub-blocks
        // made below keep both properties (they are row ranges of the checked matrices).
        unsafe {
            F::gemm_strided_unchecked(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc, 1)
        };
        return;
    }
    let top = (m / 2).div_ceil(8) * 8;
    let (c_top, c_bottom) = c.split_at_mut(top * ldc);
    let a_bottom = &a[top * rsa..];
    rayon::join(
        || gemm_split_rows(top, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c_top, ldc),
        || {
            gemm_split_rows(
                m - top,
                k,
                n,
                alpha,
                a_bottom,
                rsa,
                csa,
                b,
                rsb,
                csb,
                beta,
                c_bottom,
                ldc,
            )
        },
    );
}

/// A product over an empty inner dimension is zero: `C = beta * C` (only written when
/// `beta == 0`), without calling the backend.
fn scale_only<F: Float>(m: usize, n: usize, beta: F, c: &mut [F], ldc: usize) {
    for row in c.chunks_mut(ldc).take(m) {
        for x in &mut row[..n] {
            *x = if beta == F::zero() {
                F::zero()
            } else {
                *x * beta
            };
        }
    }
}

/// (row stride, column stride) of the *logical* operand for a stored row-major matrix.
fn strides(op: Op, ld: usize) -> (usize, usize) {
    match op {
        Op::N => (ld, 1),
        Op::T => (1, ld),
    }
}

/// Shape as stored in memory of an operand whose logical shape is `rows×cols`.
fn stored_shape(op: Op, rows: usize, cols: usize) -> (usize, usize) {
    match op {
        Op::N => (rows, cols),
        Op::T => (cols, rows),
    }
}

fn check_matrix(name: &str, len: usize, rows: usize, cols: usize, ld: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ld >= cols,
        "gemm: {name} has leading dimension {ld} < {cols} columns"
    );
    let needed = (rows - 1) * ld + cols;
    assert!(
        len >= needed,
        "gemm: {name} ({rows}×{cols}, ld {ld}) needs {needed} elements, slice has {len}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn check(op_a: Op, op_b: Op, m: usize, n: usize, k: usize, pad: usize, beta: f32) {
        let mut rng = ChaCha8Rng::seed_from_u64((m * 1000 + n * 10 + k) as u64);
        let (ar, ac) = stored_shape(op_a, m, k);
        let (br, bc) = stored_shape(op_b, k, n);
        let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
        let a = random(&mut rng, ar * lda);
        let b = random(&mut rng, br * ldb);
        let c0 = random(&mut rng, m * ldc);
        let mut c = c0.clone();
        let mut c_ref = c0.clone();
        gemm(
            op_a, op_b, m, n, k, 0.7, &a, lda, &b, ldb, beta, &mut c, ldc,
        );
        reference::gemm(
            op_a, op_b, m, n, k, 0.7, &a, lda, &b, ldb, beta, &mut c_ref, ldc,
        );
        for i in 0..m {
            for j in 0..ldc {
                let (x, y) = (c[i * ldc + j], c_ref[i * ldc + j]);
                if j >= n {
                    assert_eq!(x, c0[i * ldc + j], "padding written at ({i},{j})");
                } else {
                    let tol = 1e-5 * (k as f32).sqrt().max(1.0) * 4.0;
                    assert!(
                        (x - y).abs() <= tol,
                        "{op_a:?}{op_b:?} m{m} n{n} k{k}: ({i},{j}) {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_reference_on_odd_shapes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 5),
            (17, 3, 65),
            (65, 127, 3),
            (129, 33, 17),
            (2, 129, 1),
        ] {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    check(op_a, op_b, m, n, k, 0, 0.0);
                    check(op_a, op_b, m, n, k, 3, 0.5);
                }
            }
        }
    }

    #[test]
    fn large_products_split_across_threads_match_reference() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            check(Op::N, Op::N, 200, 256, 64, 1, 1.0);
            check(Op::T, Op::N, 130, 100, 300, 0, 0.0);
        });
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (m, n, k) = (301, 128, 96);
        let a = random(&mut rng, m * k);
        let b = random(&mut rng, k * n);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0.0f32; m * n];
            pool.install(|| gemm(Op::N, Op::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut c, n));
            c
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32, 4.0];
        let mut c = [f32::NAN];
        gemm(Op::N, Op::N, 1, 1, 2, 1.0, &a, 2, &b, 1, 0.0, &mut c, 1);
        assert_eq!(c[0], 11.0);
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = [2.0f32, 4.0];
        gemm(Op::N, Op::N, 1, 2, 0, 1.0, &[], 1, &[], 2, 0.5, &mut c, 2);
        assert_eq!(c, [1.0, 2.0]);
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn short_slice_panics() {
        let mut c = [0.0f32; 4];
        gemm(
            Op::N,
            Op::N,
            2,
            2,
            2,
            1.0,
            &[0.0; 3],
            2,
            &[0.0; 4],
            2,
            0.0,
            &mut c,
            2,
        );
    }
}
