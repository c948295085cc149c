//! Reductions and small vector operations over flat buffers.

use crate::Float;

mod fused;

/// `Σ x²`, accumulated in `f64` (for the global gradient norm).
pub fn sum_squares<F: Float>(x: &[F]) -> f64 {
    F::sum_squares(x)
}

/// The plain generic implementation of [`sum_squares`] (used for `f64`, and as the portable twin).
pub fn sum_squares_generic<F: Float>(x: &[F]) -> f64 {
    x.iter()
        .map(|&v| {
            let v = v.to_f64();
            v * v
        })
        .sum()
}

/// `x *= s`.
pub fn scale<F: Float>(x: &mut [F], s: F) {
    F::scale(x, s)
}

/// The plain generic implementation of [`scale`] (used for `f64`, and as the portable twin).
pub fn scale_generic<F: Float>(x: &mut [F], s: F) {
    for v in x {
        *v *= s;
    }
}

/// `out[j] += Σ_r x[r·cols + j]`: column sums of a `[rows, cols]` matrix (bias gradients).
pub fn col_sums_accumulate<F: Float>(rows: usize, cols: usize, x: &[F], out: &mut [F]) {
    assert!(x.len() >= rows * cols && out.len() >= cols);
    for row in x.chunks_exact(cols).take(rows) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Sets every row of a `[rows, cols]` matrix to `bias` (before a GEMM accumulates onto it).
pub fn broadcast_rows<F: Float>(rows: usize, cols: usize, bias: &[F], out: &mut [F]) {
    assert!(out.len() >= rows * cols && bias.len() == cols);
    for row in out.chunks_exact_mut(cols).take(rows) {
        row.copy_from_slice(bias);
    }
}

/// Sets every row of a `[rows, cols]` matrix to `a + b` (two biases summed on the fly).
pub fn broadcast_rows_sum<F: Float>(rows: usize, cols: usize, a: &[F], b: &[F], out: &mut [F]) {
    assert!(out.len() >= rows * cols && a.len() == cols && b.len() == cols);
    for row in out.chunks_exact_mut(cols).take(rows) {
        for ((o, &x), &y) in row.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }
}

/// `out[j] += x[j]`.
pub fn add_assign<F: Float>(out: &mut [F], x: &[F]) {
    assert_eq!(out.len(), x.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o += v;
    }
}

/// [`sum_squares`] for `f32` at SIMD level `level`. Each square is exact in `f64` and summed
/// in `f64` lanes; chunks of 32 Ki elements are summed in parallel (from 64 Ki elements on)
/// and their partials combined in a fixed binary tree over chunk indices,
/// so the result is bit-identical for any number of threads (for a given level).
///
/// `level` must be one this CPU supports (from [`crate::dispatch::cpu_level`] or
/// [`crate::dispatch::available_levels`]); otherwise this panics.
pub fn sum_squares_f32(level: crate::dispatch::CpuLevel, x: &[f32]) -> f64 {
    let leaf = |c: &[f32]| crate::simd::run(level, fused::SumSquares { x: c });
    crate::chunked::tree_sum(x, x.len() >= crate::chunked::PARALLEL_MIN, &leaf)
}

/// [`scale`] for `f32` at SIMD level `level` (which must be one this CPU supports), threaded
/// over fixed chunks like [`sum_squares_f32`].
pub fn scale_f32(level: crate::dispatch::CpuLevel, x: &mut [f32], s: f32) {
    use crate::chunked::{CHUNK, PARALLEL_MIN};
    use rayon::prelude::*;

    if x.len() < PARALLEL_MIN {
        crate::simd::run(level, fused::Scale { x, k: s });
    } else {
        x.par_chunks_mut(CHUNK).for_each(|c| crate::simd::run(level, fused::Scale { x: c, k: s }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col_sums_and_broadcast() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [1.0f32, 1.0, 1.0];
        col_sums_accumulate(2, 3, &x, &mut out);
        assert_eq!(out, [6.0, 8.0, 10.0]);
        let mut m = [0.0f32; 6];
        broadcast_rows(2, 3, &[7.0, 8.0, 9.0], &mut m);
        assert_eq!(m, [7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
        broadcast_rows_sum(2, 3, &[1.0, 2.0, 3.0], &[0.5, 0.5, 1.0], &mut m);
        assert_eq!(m, [1.5, 2.5, 4.0, 1.5, 2.5, 4.0]);
    }

    fn random(len: usize, seed: u64) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-3.0f32..3.0)).collect()
    }

    /// Every SIMD level against the scalar twin (an `f64` sum of exact `f64` squares):
    /// `sum_squares` within `2n·ε` relative (only the order of the `f64` additions differs),
    /// `scale` bit-identical (one rounding per element either way).
    #[test]
    fn every_level_matches_the_scalar_twin() {
        use crate::chunked::CHUNK;
        for level in crate::dispatch::available_levels() {
            for n in [0usize, 1, 3, 17, 65, 127, 129, 1000, CHUNK + 1, 3 * CHUNK + 17] {
                let x = random(n, n as u64);
                let want = sum_squares_generic(&x);
                let got = sum_squares_f32(level, &x);
                let tol = 2.0 * n as f64 * f64::EPSILON * want;
                assert!((got - want).abs() <= tol, "{level:?} n={n}: {got} vs {want}");
                let (mut a, mut b) = (x.clone(), x.clone());
                scale_f32(level, &mut a, 0.3);
                scale_generic(&mut b, 0.3);
                assert!(a == b, "{level:?} n={n}: scale");
            }
        }
    }

    /// The threaded squared norm is bit-identical for 1, 2 and 3 threads, and equal to the
    /// single-threaded tree.
    #[test]
    fn sum_squares_is_deterministic_across_thread_counts() {
        let x = random(7 * crate::chunked::CHUNK + 1234, 99);
        for level in crate::dispatch::available_levels() {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| sum_squares_f32(level, &x))
            };
            let one = run(1);
            let leaf = |c: &[f32]| crate::simd::run(level, fused::SumSquares { x: c });
            let sequential = crate::chunked::tree_sum(&x, false, &leaf);
            for threads in [2, 3] {
                assert_eq!(run(threads).to_bits(), one.to_bits(), "{level:?} {threads} threads");
            }
            assert_eq!(sequential.to_bits(), one.to_bits(), "{level:?} sequential");
        }
    }

    #[test]
    fn sum_squares_and_scale() {
        let mut x = [3.0f32, -4.0];
        assert_eq!(sum_squares(&x), 25.0);
        scale(&mut x, 0.5);
        assert_eq!(x, [1.5, -2.0]);
        let mut y = [1.0f32, 1.0];
        add_assign(&mut y, &x);
        assert_eq!(y, [2.5, -1.0]);
    }
}
