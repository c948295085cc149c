//! Reductions and small vector operations over flat buffers.

use rayon::prelude::*;

use crate::chunked::{CHUNK, PARALLEL_MIN};
use crate::dispatch::CpuLevel;
use crate::kernel::{FastKernel, Kernel};
use crate::Float;

mod fused;

crate::kernel_args! {
    /// `Σ x²`, accumulated in `f64` (for the global gradient norm). In the `f32` fast path each
    /// square is exact in `f64` and summed in `f64` lanes; chunks of 32 Ki elements are summed in
    /// parallel (from 64 Ki elements on) and their partials combined in a fixed binary tree over chunk
    /// indices, so the result is bit-identical for any number of threads (for a given level).
    pub struct SumSquares<'a, F> {
        pub x: slice,
    }
}

impl<F: Float> Kernel for SumSquares<'_, F> {
    type Output = f64;

    fn check(&self) {
        // Any length is valid.
    }

    unsafe fn plain(self) -> f64 {
        let SumSquares { x } = self;
        x.iter()
            .map(|&v| {
                let v = v.to_f64();
                v * v
            })
            .sum()
    }
}

impl FastKernel for SumSquares<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) -> f64 {
        let leaf = |c: &[f32]| crate::simd::run(level, fused::SumSquares { x: c });
        crate::chunked::tree_sum(self.x, self.x.len() >= PARALLEL_MIN, &leaf)
    }
}

crate::kernel_args! {
    /// `x *= s`; the `f32` fast path is threaded over fixed chunks like [`SumSquares`].
    pub struct Scale<'a, F> {
        pub x: slice_mut,
        pub s: value,
    }
}

impl<F: Float> Kernel for Scale<'_, F> {
    type Output = ();

    fn check(&self) {
        // Any length is valid.
    }

    unsafe fn plain(self) {
        let Scale { x, s } = self;
        for v in x {
            *v *= s;
        }
    }
}

impl FastKernel for Scale<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) {
        let Scale { x, s } = self;
        if x.len() < PARALLEL_MIN {
            crate::simd::run(level, fused::Scale { x, k: s });
        } else {
            x.par_chunks_mut(CHUNK).for_each(|c| crate::simd::run(level, fused::Scale { x: c, k: s }));
        }
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
        for level in crate::dispatch::available_f32_levels() {
            for n in [0usize, 1, 3, 17, 65, 127, 129, 1000, CHUNK + 1, 3 * CHUNK + 17] {
                let x = random(n, n as u64);
                let want = SumSquares { x: &x }.run_plain();
                let got = SumSquares { x: &x }.run_at(level);
                let tol = 2.0 * n as f64 * f64::EPSILON * want;
                assert!((got - want).abs() <= tol, "{level:?} n={n}: {got} vs {want}");
                let (mut a, mut b) = (x.clone(), x.clone());
                Scale { x: &mut a, s: 0.3 }.run_at(level);
                Scale { x: &mut b, s: 0.3 }.run_plain();
                assert!(a == b, "{level:?} n={n}: scale");
            }
        }
    }

    /// The threaded squared norm is bit-identical for 1, 2 and 3 threads, and equal to the
    /// single-threaded tree.
    #[test]
    fn sum_squares_is_deterministic_across_thread_counts() {
        let x = random(7 * crate::chunked::CHUNK + 1234, 99);
        for level in crate::dispatch::available_f32_levels() {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| SumSquares { x: &x }.run_at(level))
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
        assert_eq!(SumSquares { x: &x }.run(), 25.0);
        Scale { x: &mut x, s: 0.5 }.run();
        assert_eq!(x, [1.5, -2.0]);
        let mut y = [1.0f32, 1.0];
        add_assign(&mut y, &x);
        assert_eq!(y, [2.5, -1.0]);
    }
}
