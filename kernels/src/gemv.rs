//! Matrix-vector product `y += xᵀ·W` for one row `x`: the products of a batch-1 forward step
//! (sampling one stream), where a GEMM's tiles would compute rows that do not exist and its
//! packing would copy the weights at every step.
//!
//! `W` is read where it lies, row-major (`k×n`, leading dimension `ldw`), copied once, not
//! packed: a [`crate::prepared::PreparedMatrix`] prepared for one row holds its operand so,
//! stored or transposed. The fast path (`gemv/fused.rs`) walks
//! blocks of columns and, in each, every row of `W` once, with one accumulator per vector of
//! the block: each `y[j]` is `y[j] + (Σₚ x[p]·W[p, j])`, the sum taken in order of `p` from
//! zero, exactly as a GEMM micro-kernel sums one element of `C` (so the batch-1 path and a
//! batched one agree bit for bit where both run on the same level).

use std::ops::Range;

use crate::kernel::{simd_fast_path, Kernel};
use crate::Float;

pub mod bf16_pairs;
mod fused;

crate::kernel_args! {
    /// `y[j] += Σₚ x[p]·w[p·ldw + j]` for `j < n`, `p < k`; the sum over each depth block of
    /// `p` ([`depth_blocks`]) is formed first, in order, then added to `y`.
    pub struct Gemv<'a, F> {
        pub k: plain<usize>,
        pub n: plain<usize>,
        pub x: slice,
        pub w: slice,
        pub ldw: plain<usize>,
        pub y: slice_mut,
    }
}

impl<F: Float> Kernel for Gemv<'_, F> {
    type Output = ();

    fn check(&self) {
        let Gemv { k, n, ldw, .. } = *self;
        assert!(self.x.len() >= k, "Gemv: x has {} elements, k is {k}", self.x.len());
        assert!(self.y.len() >= n, "Gemv: y has {} elements, n is {n}", self.y.len());
        if k > 0 && n > 0 {
            assert!(ldw >= n, "Gemv: leading dimension {ldw} < {n} columns");
            let needed = (k - 1) * ldw + n;
            assert!(
                self.w.len() >= needed,
                "Gemv: W ({k}×{n}, ld {ldw}) needs {needed} elements, has {}",
                self.w.len()
            );
        }
    }

    unsafe fn plain(self) {
        let Gemv { k, n, x, w, ldw, y } = self;
        for block in depth_blocks(k) {
            for (j, yj) in y[..n].iter_mut().enumerate() {
                let mut acc = F::zero();
                for p in block.clone() {
                    acc = x[p].mul_add(w[p * ldw + j], acc);
                }
                *yj += acc;
            }
        }
    }
}

/// The blocks of `0..k` a GEMM over a pre-packed `B` of depth `k` sums separately (one for
/// every `k` of the products sampling runs).
pub(crate) fn depth_blocks(k: usize) -> impl Iterator<Item = Range<usize>> {
    let depth = crate::gemm::driver::depth_block(k, 0);
    (0..k).step_by(depth.max(1)).map(move |p0| p0..(p0 + depth).min(k))
}

simd_fast_path!(Gemv, unless_zero: k, n);

/// What the tests of both matrix-vector products share.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::dispatch::CpuLevel;
    use crate::gemm::{Gemm, Op};
    use crate::kernel::FastKernel;
    use crate::Precision;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    /// `len` values uniform in `[-1, 1)`.
    pub(crate) fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// `c0 + a·W` by the GEMM at `level` in `precision`, `a` `m×k`, `W` `k×n` with leading
    /// dimension `ldw`: the batched product a row of the matrix-vector one must equal.
    pub(crate) fn gemm_rows(
        level: CpuLevel,
        precision: Precision,
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        w: &[f32],
        ldw: usize,
        c0: &[f32],
    ) -> Vec<f32> {
        let mut c = c0.to_vec();
        let (op_a, op_b, alpha, beta) = (Op::N, Op::N, 1.0, 1.0);
        Gemm { op_a, op_b, m, n, k, alpha, a, lda: k, b: w, ldb: ldw, beta, c: &mut c, ldc: n, precision }
            .run_at(level);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{gemm_rows, random};
    use super::*;
    use crate::dispatch::{available_f32_levels, CpuLevel};
    use crate::kernel::FastKernel;
    use crate::Precision;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Every level, on odd sizes (tails of every length, column blocks cut short, a leading
    /// dimension wider than the row, more than one depth block), equals the plain twin (bit
    /// for bit where the level has a fused multiply-add), and the f64 body within rounding.
    #[test]
    fn every_level_matches_the_plain_twin_on_odd_sizes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (k, n) in [(1, 1), (3, 5), (7, 17), (16, 16), (33, 65), (128, 512), (129, 200), (256, 131), (1100, 40)] {
            let ldw = n + 3;
            let (x, w, y0) = (random(k, &mut rng), random(k * ldw, &mut rng), random(n, &mut rng));
            let mut plain = y0.clone();
            Gemv { k, n, x: &x, w: &w, ldw, y: &mut plain }.run_plain();
            let (x64, w64): (Vec<f64>, Vec<f64>) =
                (x.iter().map(|&v| v as f64).collect(), w.iter().map(|&v| v as f64).collect());
            let mut exact: Vec<f64> = y0.iter().map(|&v| v as f64).collect();
            Gemv { k, n, x: &x64, w: &w64, ldw, y: &mut exact }.run_plain();
            for (a, e) in plain.iter().zip(&exact) {
                assert!((*a as f64 - e).abs() <= 1e-5 * (k as f64).sqrt() * (1.0 + e.abs()), "{k}×{n}: {a} vs {e}");
            }
            for level in available_f32_levels() {
                let mut fast = y0.clone();
                Gemv { k, n, x: &x, w: &w, ldw, y: &mut fast }.run_at(level);
                if level == CpuLevel::Portable {
                    // SSE2 has no fused multiply-add: each product rounds before the sum.
                    for (a, p) in fast.iter().zip(&plain) {
                        assert!((a - p).abs() <= 1e-5 * (k as f32).sqrt() * (1.0 + p.abs()), "{k}×{n}: {a} vs {p}");
                    }
                } else {
                    assert_eq!(fast, plain, "{k}×{n} at {}", level.name());
                }
            }
        }
    }

    /// The batch-1 product equals row `i` of the GEMM over a batch holding it (the sampling
    /// paths for one stream and for many give the same stream), at every level.
    #[test]
    fn equals_a_row_of_the_gemm() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (m, k, n) in [(5, 128, 512), (8, 256, 512), (3, 128, 65), (64, 37, 19), (2, 700, 33), (1, 9, 4)] {
            let (a, b, c0) = (random(m * k, &mut rng), random(k * n, &mut rng), random(m * n, &mut rng));
            for level in available_f32_levels() {
                let c = gemm_rows(level, Precision::F32, (m, k, n), &a, &b, n, &c0);
                for i in 0..m {
                    let mut y = c0[i * n..(i + 1) * n].to_vec();
                    Gemv { k, n, x: &a[i * k..(i + 1) * k], w: &b, ldw: n, y: &mut y }.run_at(level);
                    assert_eq!(y, c[i * n..(i + 1) * n], "row {i} of {m}×{k}×{n} at {}", level.name());
                }
            }
        }
    }

    #[test]
    fn empty_products_leave_y_alone() {
        let mut y = vec![1.5f32; 4];
        Gemv { k: 0, n: 4, x: &[], w: &[], ldw: 4, y: &mut y }.run();
        assert_eq!(y, [1.5; 4]);
        Gemv { k: 3, n: 0, x: &[1.0; 3], w: &[], ldw: 0, y: &mut y }.run();
        assert_eq!(y, [1.5; 4]);
    }
}
