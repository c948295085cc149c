//! Vector body of the Adam update over one chunk, generic over the SIMD level.

use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

/// The per-step constants of the update, rounded to `f32` as the scalar twin rounds them.
#[derive(Clone, Copy)]
pub(super) struct Consts {
    /// `lr / (1 - β1^t)`.
    pub step_size: f32,
    /// `1 / sqrt(1 - β2^t)`.
    pub inv_sqrt_bias2: f32,
    pub beta1: f32,
    pub beta2: f32,
    /// `1 - β1`, `1 - β2` (computed in `f32`, as the scalar twin does).
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    /// `1 - lr · λ`, the decoupled weight decay's factor (1: none).
    pub decay: f32,
}

/// One Adam update of a chunk (all four slices have the same length).
pub(super) struct Step<'a> {
    pub params: &'a mut [f32],
    pub grads: &'a [f32],
    pub m: &'a mut [f32],
    pub v: &'a mut [f32],
    pub k: Consts,
}

/// Splatted constants.
struct Splat<V> {
    step_size: V,
    inv_sqrt_bias2: V,
    beta1: V,
    beta2: V,
    one_minus_beta1: V,
    one_minus_beta2: V,
    eps: V,
    decay: V,
}

/// `(p, m, v)` after one step, for one vector.
#[inline(always)]
fn step_lanes<S: Simd>(s: S, k: &Splat<S::V>, p: S::V, g: S::V, m: S::V, v: S::V) -> [S::V; 3] {
    let m = s.mul_add(k.beta1, m, s.mul(k.one_minus_beta1, g));
    let v = s.mul_add(k.beta2, v, s.mul(s.mul(k.one_minus_beta2, g), g));
    let denom = s.mul_add(s.sqrt(v), k.inv_sqrt_bias2, k.eps);
    // `p · (1 - lr·λ)` first, as the scalar twin and PyTorch's AdamW do (exact when λ = 0).
    let p = s.sub(s.mul(p, k.decay), s.div(s.mul(k.step_size, m), denom));
    [p, m, v]
}

impl SimdKernel for Step<'_> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let c = self.k;
        let k = Splat {
            step_size: s.splat(c.step_size),
            inv_sqrt_bias2: s.splat(c.inv_sqrt_bias2),
            beta1: s.splat(c.beta1),
            beta2: s.splat(c.beta2),
            one_minus_beta1: s.splat(c.one_minus_beta1),
            one_minus_beta2: s.splat(c.one_minus_beta2),
            eps: s.splat(c.eps),
            decay: s.splat(c.decay),
        };
        for_each_vector!(S, self.params.len(), |at| {
            let (p, g, m, v) =
                (at.load(s, self.params), at.load(s, self.grads), at.load(s, self.m), at.load(s, self.v));
            let [p, m, v] = step_lanes(s, &k, p, g, m, v);
            at.store(s, self.params, p);
            at.store(s, self.m, m);
            at.store(s, self.v, v);
        });
    }
}
