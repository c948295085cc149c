//! Vector bodies of the fused softmax + cross-entropy, generic over the SIMD level.
//!
//! Per row: pass 1 reads the logits for the maximum; pass 2 reads them again, writes
//! `e = exp(x - max)` into `dlogits` and sums it; then the row of `dlogits` (just written, so
//! in L1) is scaled by `scale / sum` and `scale` is subtracted at the target. That is two
//! passes over the logits and one in-cache pass over the output. The loss
//! `ln(sum) + max - x[target]` is formed and accumulated in `f64`.

use crate::math::exp;
use crate::simd::{Simd, SimdKernel};

/// Maximum of a row (pass 1). Tail lanes are filled with -∞.
#[inline(always)]
fn row_max<S: Simd>(s: S, row: &[f32]) -> f32 {
    let n = row.len();
    let mut acc = s.splat(f32::NEG_INFINITY);
    let mut j = 0;
    while j + S::LANES <= n {
        acc = s.max(acc, s.load(&row[j..]));
        j += S::LANES;
    }
    if j < n {
        acc = s.max(acc, s.load_tail(&row[j..], f32::NEG_INFINITY));
    }
    s.reduce_max(acc)
}

/// `Σ exp(x - max)` over a row (pass 2), storing each term into `out` when given. Tail lanes
/// are filled with -∞, whose `exp` is 0.
#[inline(always)]
fn row_exp_sum<S: Simd>(s: S, row: &[f32], max: f32, mut out: Option<&mut [f32]>) -> f32 {
    let n = row.len();
    let m = s.splat(max);
    let mut acc = s.splat(0.0);
    let mut j = 0;
    while j + S::LANES <= n {
        let e = exp(s, s.sub(s.load(&row[j..]), m));
        if let Some(o) = out.as_deref_mut() {
            s.store(&mut o[j..], e);
        }
        acc = s.add(acc, e);
        j += S::LANES;
    }
    if j < n {
        let e = exp(s, s.sub(s.load_tail(&row[j..], f32::NEG_INFINITY), m));
        if let Some(o) = out {
            s.store_tail(&mut o[j..], e);
        }
        acc = s.add(acc, e);
    }
    s.reduce_add(acc)
}

/// `out *= k` over a row.
#[inline(always)]
fn row_scale<S: Simd>(s: S, out: &mut [f32], k: f32) {
    let n = out.len();
    let kv = s.splat(k);
    let mut j = 0;
    while j + S::LANES <= n {
        let v = s.load(&out[j..]);
        s.store(&mut out[j..], s.mul(v, kv));
        j += S::LANES;
    }
    if j < n {
        let v = s.load_tail(&out[j..], 0.0);
        s.store_tail(&mut out[j..], s.mul(v, kv));
    }
}

/// The loss of one row from its maximum and exp-sum, in `f64`.
#[inline(always)]
fn row_loss(sum: f32, max: f32, target_logit: f32) -> f64 {
    (sum as f64).ln() + (max as f64 - target_logit as f64)
}

impl SimdKernel for super::SoftmaxXent<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let v = self.vocab;
        let mut total = 0.0f64;
        let rows = self.logits.chunks_exact(v).zip(self.dlogits.chunks_exact_mut(v)).zip(self.targets).take(self.rows);
        for ((row, out), &target) in rows {
            let target = target as usize;
            assert!(target < v, "target {target} outside vocabulary of {v}");
            let max = row_max(s, row);
            let sum = row_exp_sum(s, row, max, Some(&mut *out));
            total += row_loss(sum, max, row[target]);
            row_scale(s, out, self.scale / sum);
            out[target] -= self.scale;
        }
        total
    }
}

impl SimdKernel for super::SoftmaxXentLoss<'_, f32> {
    type Output = f64;
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) -> f64 {
        let v = self.vocab;
        let mut total = 0.0f64;
        for (row, &target) in self.logits.chunks_exact(v).zip(self.targets).take(self.rows) {
            let target = target as usize;
            assert!(target < v, "target {target} outside vocabulary of {v}");
            let max = row_max(s, row);
            let sum = row_exp_sum(s, row, max, None);
            total += row_loss(sum, max, row[target]);
        }
        total
    }
}
