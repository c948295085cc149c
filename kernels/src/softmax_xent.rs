//! Fused softmax + cross-entropy over the rows of a `[rows, vocab]` logit matrix.

use crate::dispatch::CpuLevel;
use crate::kernel::{FastKernel, Kernel};
use crate::simd::SimdKernel;
use crate::Float;

mod fused;

crate::kernel_args! {
    /// Returns `Σ_r (logsumexp(logits_r) - logits_r[target_r])` (the summed negative
    /// log-likelihood, accumulated in `f64`) and writes `dlogits_r = scale · (softmax(logits_r) -
    /// onehot(target_r))`. Numerically stable: the row maximum is subtracted before `exp`. The `f32`
    /// fast path makes two passes over each row's logits (maximum; `exp` + sum, storing the
    /// exponentials into `dlogits`) and one scaling pass over the just-written (cache-hot) output row.
    ///
    /// # Panics
    /// If a target is not below `vocab` (targets come from our own tokenizer).
    pub struct SoftmaxXent<'a, F> {
        pub rows: plain<usize>,
        pub vocab: plain<usize>,
        pub logits: slice,
        pub targets: plain<&'a [u32]>,
        pub scale: value,
        pub dlogits: slice_mut,
    }
}

impl<F: Float> Kernel for SoftmaxXent<'_, F> {
    type Output = f64;

    fn check(&self) {
        let n = self.rows * self.vocab;
        assert!(
            self.logits.len() >= n && self.dlogits.len() >= n && self.targets.len() >= self.rows,
            "SoftmaxXent: logits, dlogits or targets too short"
        );
    }

    unsafe fn plain(self) -> f64 {
        let SoftmaxXent { rows, vocab, logits, targets, scale, dlogits } = self;
        let mut total = 0.0f64;
        for r in 0..rows {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let out = &mut dlogits[r * vocab..(r + 1) * vocab];
            let target = targets[r] as usize;
            assert!(target < vocab, "target {target} outside vocabulary of {vocab}");
            let max = row.iter().copied().fold(F::neg_infinity(), F::max);
            let mut sum = F::zero();
            for (o, &x) in out.iter_mut().zip(row) {
                let e = (x - max).exp();
                *o = e;
                sum += e;
            }
            total += (sum.ln() + (max - row[target])).to_f64();
            let inv = scale / sum;
            for o in out.iter_mut() {
                *o *= inv;
            }
            out[target] -= scale;
        }
        total
    }
}

impl FastKernel for SoftmaxXent<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) -> f64 {
        fast_rows(level, self.rows, self.vocab, self)
    }
}

crate::kernel_args! {
    /// The loss part of [`SoftmaxXent`] alone, for evaluation.
    pub struct SoftmaxXentLoss<'a, F> {
        pub rows: plain<usize>,
        pub vocab: plain<usize>,
        pub logits: slice,
        pub targets: plain<&'a [u32]>,
    }
}

impl<F: Float> Kernel for SoftmaxXentLoss<'_, F> {
    type Output = f64;

    fn check(&self) {
        assert!(
            self.logits.len() >= self.rows * self.vocab && self.targets.len() >= self.rows,
            "SoftmaxXentLoss: logits or targets too short"
        );
    }

    unsafe fn plain(self) -> f64 {
        let SoftmaxXentLoss { rows, vocab, logits, targets } = self;
        let mut total = 0.0f64;
        for r in 0..rows {
            total += plain_row_loss(&logits[r * vocab..(r + 1) * vocab], targets[r]);
        }
        total
    }
}

impl FastKernel for SoftmaxXentLoss<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) -> f64 {
        fast_rows(level, self.rows, self.vocab, self)
    }
}

crate::kernel_args! {
    /// [`SoftmaxXentLoss`] row by row, for scoring a text: writes each row's negative
    /// log-likelihood `logsumexp(logits_r) - logits_r[target_r]` into `losses` (in `f64`, as it
    /// is formed) and returns their sum, added in row order as [`SoftmaxXentLoss`] adds them
    /// (so the same bits).
    ///
    /// # Panics
    /// If a target is not below `vocab`.
    pub struct SoftmaxXentRows<'a, F> {
        pub rows: plain<usize>,
        pub vocab: plain<usize>,
        pub logits: slice,
        pub targets: plain<&'a [u32]>,
        pub losses: plain<&'a mut [f64]>,
    }
}

impl<F: Float> Kernel for SoftmaxXentRows<'_, F> {
    type Output = f64;

    fn check(&self) {
        assert!(
            self.logits.len() >= self.rows * self.vocab
                && self.targets.len() >= self.rows
                && self.losses.len() >= self.rows,
            "SoftmaxXentRows: logits, targets or losses too short"
        );
    }

    unsafe fn plain(self) -> f64 {
        let SoftmaxXentRows { rows, vocab, logits, targets, losses } = self;
        let mut total = 0.0f64;
        for (r, loss) in losses.iter_mut().enumerate().take(rows) {
            *loss = plain_row_loss(&logits[r * vocab..(r + 1) * vocab], targets[r]);
            total += *loss;
        }
        total
    }
}

impl FastKernel for SoftmaxXentRows<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) -> f64 {
        fast_rows(level, self.rows, self.vocab, self)
    }
}

/// One row's negative log-likelihood of `target`, the plain body of the loss kernels.
fn plain_row_loss<F: Float>(row: &[F], target: u32) -> f64 {
    let (target, vocab) = (target as usize, row.len());
    assert!(target < vocab, "target {target} outside vocabulary of {vocab}");
    let max = row.iter().copied().fold(F::neg_infinity(), F::max);
    let sum: F = row.iter().map(|&x| (x - max).exp()).sum();
    (sum.ln() + (max - row[target])).to_f64()
}

crate::kernel_args! {
    /// The unnormalised softmax of one row at a temperature, for drawing a symbol:
    /// `terms[j] = exp((logits[j] - max)·inv_temperature)`; returns `Σ terms` (in `f64`). A
    /// draw takes `u·Σ` and scans the terms, so the division by the sum is never done. The
    /// `f32` fast path uses the fast [`crate::math`] `exp`, two passes over the row.
    pub struct SoftmaxTerms<'a, F> {
        pub logits: slice,
        pub inv_temperature: value,
        pub terms: slice_mut,
    }
}

impl<F: Float> Kernel for SoftmaxTerms<'_, F> {
    type Output = f64;

    fn check(&self) {
        assert_eq!(self.logits.len(), self.terms.len(), "SoftmaxTerms: logits and terms differ in length");
    }

    unsafe fn plain(self) -> f64 {
        let SoftmaxTerms { logits, inv_temperature, terms } = self;
        let max = logits.iter().copied().fold(F::neg_infinity(), F::max);
        let mut sum = F::zero();
        for (t, &x) in terms.iter_mut().zip(logits) {
            *t = ((x - max) * inv_temperature).exp();
            sum += *t;
        }
        sum.to_f64()
    }
}

impl FastKernel for SoftmaxTerms<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) -> f64 {
        if self.logits.is_empty() {
            return 0.0;
        }
        crate::simd::run(level, self)
    }
}

/// The fast path of [`SoftmaxXent`], [`SoftmaxXentLoss`] and [`SoftmaxXentRows`], `kernel`
/// over `rows` rows of `vocab` logits: nothing to do without rows, and no target inside an
/// empty vocabulary.
fn fast_rows<K: SimdKernel<Output = f64>>(level: CpuLevel, rows: usize, vocab: usize, kernel: K) -> f64 {
    if rows == 0 {
        return 0.0;
    }
    assert!(vocab > 0, "target outside an empty vocabulary");
    crate::simd::run(level, kernel)
}

/// Softmax of one row at temperature `temperature` into `probs` (for sampling).
pub fn softmax_row<F: Float>(logits: &[F], temperature: F, probs: &mut [F]) {
    assert_eq!(logits.len(), probs.len());
    let inv_t = F::one() / temperature;
    let max = logits.iter().copied().fold(F::neg_infinity(), F::max);
    let mut sum = F::zero();
    for (p, &x) in probs.iter_mut().zip(logits) {
        let e = ((x - max) * inv_t).exp();
        *p = e;
        sum += e;
    }
    for p in probs.iter_mut() {
        *p /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn matches_f64_reference_on_odd_sizes() {
        for &(rows, vocab) in &[(1, 1), (3, 17), (7, 65), (2, 129)] {
            let mut rng = ChaCha8Rng::seed_from_u64((rows * 1000 + vocab) as u64);
            let logits: Vec<f64> = (0..rows * vocab).map(|_| rng.random_range(-8.0..8.0)).collect();
            let targets: Vec<u32> = (0..rows).map(|_| rng.random_range(0..vocab as u32)).collect();
            let (loss_ref, d_ref) = reference::softmax_xent(rows, vocab, &logits, &targets, 0.25);
            let l32: Vec<f32> = logits.iter().map(|&x| x as f32).collect();
            let mut d = vec![0.0f32; rows * vocab];
            let loss = SoftmaxXent { rows, vocab, logits: &l32, targets: &targets, scale: 0.25, dlogits: &mut d }.run();
            assert!((loss - loss_ref).abs() < 1e-5 * rows as f64, "{loss} vs {loss_ref}");
            assert!(
                (SoftmaxXentLoss { rows, vocab, logits: &l32, targets: &targets }.run() - loss).abs()
                    < 1e-6 * rows as f64
            );
            for (k, (&g, &w)) in d.iter().zip(&d_ref).enumerate() {
                assert!((g as f64 - w).abs() < 1e-7, "dlogits[{k}]: {g} vs {w}");
            }
        }
    }

    /// Every SIMD level against the `f64` reference and the scalar `f32` twin, for vocabularies
    /// that are and are not multiples of 8 and 16 (tails). Tolerances: loss within
    /// `1e-6·rows` absolute; `dlogits` within `1e-7 + 1e-6·|reference|` (scale 0.25).
    #[test]
    fn every_level_matches_f64_reference_and_scalar_twin() {
        for level in crate::dispatch::available_f32_levels() {
            for &(rows, vocab) in
                &[(1, 1), (1, 3), (3, 17), (5, 65), (2, 127), (2, 129), (4, 16), (3, 8), (40, 65), (2, 1000)]
            {
                let mut rng = ChaCha8Rng::seed_from_u64((rows * 31 + vocab) as u64);
                let logits: Vec<f32> = (0..rows * vocab).map(|_| rng.random_range(-10.0f32..10.0)).collect();
                let targets: Vec<u32> = (0..rows).map(|_| rng.random_range(0..vocab as u32)).collect();
                let l64: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
                let (loss_ref, d_ref) = reference::softmax_xent(rows, vocab, &l64, &targets, 0.25);
                let mut d = vec![f32::NAN; rows * vocab];
                let loss =
                    SoftmaxXent { rows, vocab, logits: &logits, targets: &targets, scale: 0.25, dlogits: &mut d }
                        .run_at(level);
                let mut d_scalar = vec![0.0f32; rows * vocab];
                let loss_scalar = SoftmaxXent {
                    rows,
                    vocab,
                    logits: &logits,
                    targets: &targets,
                    scale: 0.25,
                    dlogits: &mut d_scalar,
                }
                .run_plain();
                let only_loss = SoftmaxXentLoss { rows, vocab, logits: &logits, targets: &targets }.run_at(level);
                let mut per_row = vec![f64::NAN; rows];
                let rows_total =
                    SoftmaxXentRows { rows, vocab, logits: &logits, targets: &targets, losses: &mut per_row }
                        .run_at(level);
                let ctx = format!("{level:?} ({rows},{vocab})");
                assert!((loss - loss_ref).abs() <= 1e-6 * rows as f64, "{ctx}: {loss} vs {loss_ref}");
                assert!((loss - loss_scalar).abs() <= 2e-6 * rows as f64, "{ctx}: {loss} vs {loss_scalar}");
                assert_eq!(only_loss, loss, "{ctx}: loss-only path differs");
                assert_eq!(rows_total, loss, "{ctx}: the per-row path's total differs");
                assert_eq!(per_row.iter().sum::<f64>(), loss, "{ctx}: the per-row losses do not add up");
                for (r, &row_loss) in per_row.iter().enumerate() {
                    let one = &logits[r * vocab..(r + 1) * vocab];
                    let alone = SoftmaxXentLoss { rows: 1, vocab, logits: one, targets: &targets[r..] }.run_at(level);
                    assert_eq!(row_loss, alone, "{ctx}: row {r}");
                }
                for (k, ((&g, &w), &sc)) in d.iter().zip(&d_ref).zip(&d_scalar).enumerate() {
                    assert!((g as f64 - w).abs() <= 1e-7 + 1e-6 * w.abs(), "{ctx} dlogits[{k}]: {g} vs {w}");
                    assert!((g - sc).abs() <= 2e-7 + 2e-6 * sc.abs(), "{ctx} dlogits[{k}]: {g} vs {sc}");
                }
            }
        }
    }

    #[test]
    fn every_level_is_stable_and_propagates_nan() {
        for level in crate::dispatch::available_f32_levels() {
            let logits = [1000.0f32, -1000.0, 999.0, f32::NEG_INFINITY];
            let mut d = [0.0f32; 4];
            let loss = SoftmaxXent { rows: 1, vocab: 4, logits: &logits, targets: &[0], scale: 1.0, dlogits: &mut d }
                .run_at(level);
            assert!((loss - (1.0 + (-1.0f64).exp()).ln()).abs() < 1e-6, "{level:?}: {loss}");
            assert!(d.iter().all(|x| x.is_finite()), "{level:?}: {d:?}");
            assert_eq!(d[3], 0.0, "{level:?}");
            let logits = [0.0f32, f32::NAN, 1.0];
            let mut d = [0.0f32; 3];
            let loss = SoftmaxXent { rows: 1, vocab: 3, logits: &logits, targets: &[0], scale: 1.0, dlogits: &mut d }
                .run_at(level);
            assert!(loss.is_nan(), "{level:?}: NaN logit gives NaN loss");
        }
    }

    #[test]
    fn stable_for_huge_logits() {
        let logits = [1000.0f32, -1000.0, 999.0];
        let mut d = [0.0f32; 3];
        let loss = SoftmaxXent { rows: 1, vocab: 3, logits: &logits, targets: &[0], scale: 1.0, dlogits: &mut d }.run();
        assert!(loss.is_finite() && (loss - (1.0 + (-1.0f64).exp()).ln()).abs() < 1e-5);
        assert!(d.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn reference_gradient_matches_finite_differences() {
        let logits = [0.3, -1.2, 2.0, 0.0, 0.5];
        let targets = [2u32];
        let (_, d) = reference::softmax_xent(1, 5, &logits, &targets, 1.0);
        let loss = |x: &[Vec<f64>; 1]| reference::softmax_xent(1, 5, &x[0], &targets, 1.0).0;
        let inputs = [logits.to_vec()];
        for (k, &analytic) in d.iter().enumerate() {
            let num = reference::central_difference(loss, &inputs, 0, k, 1e-6);
            assert!((num - analytic).abs() < 1e-8);
        }
    }

    /// The sampling terms at every level against the plain twin (and the normalised ones
    /// against [`softmax_row`]), on odd lengths, at temperatures below and above 1.
    #[test]
    fn softmax_terms_match_their_twin_at_every_level() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for len in [1usize, 3, 16, 17, 65, 256, 259] {
            let logits: Vec<f32> = (0..len).map(|_| rng.random_range(-8.0f32..8.0)).collect();
            for temperature in [0.5f32, 1.0, 1.7] {
                let mut plain = vec![0.0f32; len];
                let plain_sum =
                    SoftmaxTerms { logits: &logits, inv_temperature: 1.0 / temperature, terms: &mut plain }.run_plain();
                let mut probs = vec![0.0f32; len];
                softmax_row(&logits, temperature, &mut probs);
                for (t, p) in plain.iter().zip(&probs) {
                    assert!((*t as f64 / plain_sum - *p as f64).abs() < 1e-6, "{len} at T={temperature}");
                }
                for level in crate::dispatch::available_f32_levels() {
                    let mut fast = vec![0.0f32; len];
                    let inv_temperature = 1.0 / temperature;
                    let sum = SoftmaxTerms { logits: &logits, inv_temperature, terms: &mut fast }.run_at(level);
                    assert!(
                        (sum - plain_sum).abs() <= 1e-6 * plain_sum,
                        "{len} at {}: {sum} vs {plain_sum}",
                        level.name()
                    );
                    for (f, p) in fast.iter().zip(&plain) {
                        assert!((f - p).abs() <= 3e-7 * p.max(1e-30) + 1e-38, "{len} at {}: {f} vs {p}", level.name());
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_row_sums_to_one_and_sharpens_with_low_temperature() {
        let logits = [1.0f32, 2.0, 3.0];
        let mut p = [0.0f32; 3];
        softmax_row(&logits, 1.0, &mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let warm = p[2];
        softmax_row(&logits, 0.1, &mut p);
        assert!(p[2] > warm && p[2] > 0.99);
    }
}
