//! Vector bodies of the fused softmax + cross-entropy, generic over the SIMD level.
//!
//! Per row: pass 1 reads the logits for the maximum; pass 2 reads them again, writes
//! `e = exp(x - max)` into `dlogits` and sums it; then the row of `dlogits` (just written, so
//! in L1) is scaled by `scale / sum` and `scale` is subtracted at the target. That is two
//! passes over the logits and one in-cache pass over the output. The loss
//! `ln(sum) + max - x[target]` is formed and accumulated in `f64`.

use crate::math::exp;
use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

/// Maximum of a row (pass 1). Tail lanes are filled with -∞.
#[inline(always)]
fn row_max<S: Simd>(s: S, row: &[f32]) -> f32 {
    let mut acc = s.splat(f32::NEG_INFINITY);
    for_each_vector!(S, row.len(), |at| {
        acc = s.max(acc, at.load_or(s, row, f32::NEG_INFINITY));
    });
    s.reduce_max(acc)
}

/// `Σ exp(x - max)` over a row (pass 2), storing each term into `out` when given. Tail lanes
/// are filled with -∞, whose `exp` is 0.
#[inline(always)]
fn row_exp_sum<S: Simd>(s: S, row: &[f32], max: f32, mut out: Option<&mut [f32]>) -> f32 {
    let m = s.splat(max);
    let mut acc = s.splat(0.0);
    for_each_vector!(S, row.len(), |at| {
        let e = exp(s, s.sub(at.load_or(s, row, f32::NEG_INFINITY), m));
        if let Some(o) = &mut out {
            at.store(s, o, e);
        }
        acc = s.add(acc, e);
    });
    s.reduce_add(acc)
}

/// `out *= k` over a row.
#[inline(always)]
fn row_scale<S: Simd>(s: S, out: &mut [f32], k: f32) {
    let kv = s.splat(k);
    for_each_vector!(S, out.len(), |at| {
        let v = at.load(s, out);
        at.store(s, out, s.mul(v, kv));
    });
}

/// One row's loss `ln(Σ exp(x - max)) + max - x[target]`, formed in `f64`, and its exp-sum;
/// each `exp(x - max)` is stored into `out` when given.
///
/// # Panics
/// If `target` is not below the row's length, the vocabulary.
#[inline(always)]
fn row_loss<S: Simd>(s: S, row: &[f32], target: u32, out: Option<&mut [f32]>) -> (f64, f32) {
    let (target, vocab) = (target as usize, row.len());
    assert!(target < vocab, "target {target} outside vocabulary of {vocab}");
    let max = row_max(s, row);
    let sum = row_exp_sum(s, row, max, out);
    ((sum as f64).ln() + (max as f64 - row[target] as f64), sum)
}

impl SimdKernel for super::SoftmaxXent<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let v = self.vocab;
        let mut total = 0.0f64;
        let rows = self.logits.chunks_exact(v).zip(self.dlogits.chunks_exact_mut(v)).zip(self.targets).take(self.rows);
        for ((row, out), &target) in rows {
            let (loss, sum) = row_loss(s, row, target, Some(&mut *out));
            total += loss;
            row_scale(s, out, self.scale / sum);
            out[target as usize] -= self.scale;
        }
        total
    }
}

impl SimdKernel for super::SoftmaxXentLoss<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let mut total = 0.0f64;
        for (row, &target) in self.logits.chunks_exact(self.vocab).zip(self.targets).take(self.rows) {
            total += row_loss(s, row, target, None).0;
        }
        total
    }
}

impl SimdKernel for super::SoftmaxXentRows<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let mut total = 0.0f64;
        let rows = self.logits.chunks_exact(self.vocab).zip(self.targets).zip(self.losses.iter_mut()).take(self.rows);
        for ((row, &target), loss) in rows {
            *loss = row_loss(s, row, target, None).0;
            total += *loss;
        }
        total
    }
}

impl SimdKernel for super::SoftmaxTerms<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let super::SoftmaxTerms { logits, inv_temperature, terms } = self;
        let (m, k) = (s.splat(row_max(s, logits)), s.splat(inv_temperature));
        let mut acc = s.splat(0.0);
        for_each_vector!(S, logits.len(), |at| {
            // Tail lanes: -∞ gives exp(-∞) = 0 at any positive temperature.
            let e = exp(s, s.mul(s.sub(at.load_or(s, logits, f32::NEG_INFINITY), m), k));
            at.store(s, terms, e);
            acc = s.add(acc, e);
        });
        f64::from(s.reduce_add(acc))
    }
}
