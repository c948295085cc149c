//! Adam, with PyTorch's formulation of the bias correction:
//! `p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)`, and with decoupled weight decay
//! as PyTorch's `AdamW` applies it, before the step: `p *= 1 - lr · λ` (Loshchilov and Hutter
//! 2019). With `λ = 0` the factor is exactly 1 and the update is plain Adam, bit for bit.

use rayon::prelude::*;

use crate::chunked::{CHUNK, PARALLEL_MIN};
use crate::dispatch::CpuLevel;
use crate::kernel::{FastKernel, Kernel};
use crate::Float;

mod fused;

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay `λ`: every parameter is multiplied by `1 - lr · λ` before the
    /// step (0: none, plain Adam).
    pub weight_decay: f64,
}

impl Default for AdamHyper {
    /// The tutorial's optimiser: lr 0.002, β = (0.9, 0.999), ε = 1e-8, no weight decay.
    fn default() -> Self {
        AdamHyper { lr: 0.002, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamHyper {
    /// The factor every parameter is multiplied by before the step, `1 - lr · λ`, rounded to
    /// `F` once (PyTorch's `AdamW` forms it in Python floats, then multiplies in the tensor's
    /// type).
    fn decay<F: Float>(&self) -> F {
        F::from_f64(1.0 - self.lr * self.weight_decay)
    }
}

crate::kernel_args! {
    /// One Adam update of `params` from `grads`, with moment buffers `m` and `v` (same length,
    /// zero at step 1). `step` counts from 1. The `f32` fast path is one fused pass (moments,
    /// bias-corrected step) over fixed chunks of 32 Ki elements, run on rayon's pool when the buffers
    /// hold at least 64 Ki elements. Elementwise, so the result does not depend on the number of
    /// threads.
    pub struct AdamStep<'a, F> {
        pub params: slice_mut,
        pub grads: slice,
        pub m: slice_mut,
        pub v: slice_mut,
        pub hyper: plain<AdamHyper>,
        pub step: plain<u64>,
    }
}

impl<F: Float> Kernel for AdamStep<'_, F> {
    type Output = ();

    fn check(&self) {
        let n = self.params.len();
        assert!(
            self.grads.len() == n && self.m.len() == n && self.v.len() == n,
            "AdamStep: params, grads and moments differ in length"
        );
        assert!(self.step >= 1, "AdamStep: steps count from 1");
    }

    unsafe fn plain(self) {
        let AdamStep { params, grads, m, v, hyper, step } = self;
        let n = params.len();
        let t = step as f64;
        let bias1 = 1.0 - hyper.beta1.powf(t);
        let bias2 = 1.0 - hyper.beta2.powf(t);
        let step_size = F::from_f64(hyper.lr / bias1);
        let inv_sqrt_bias2 = F::from_f64(1.0 / bias2.sqrt());
        let (b1, b2, eps) = (F::from_f64(hyper.beta1), F::from_f64(hyper.beta2), F::from_f64(hyper.eps));
        let (one_b1, one_b2) = (F::one() - b1, F::one() - b2);
        let decay: F = hyper.decay();
        for i in 0..n {
            let g = grads[i];
            let mi = b1 * m[i] + one_b1 * g;
            let vi = b2 * v[i] + one_b2 * g * g;
            m[i] = mi;
            v[i] = vi;
            params[i] = params[i] * decay - step_size * mi / (vi.sqrt() * inv_sqrt_bias2 + eps);
        }
    }
}

impl FastKernel for AdamStep<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) {
        let AdamStep { params, grads, m, v, hyper, step } = self;
        let n = params.len();
        // The constants exactly as the scalar twin forms them.
        let t = step as f64;
        let (beta1, beta2) = (hyper.beta1 as f32, hyper.beta2 as f32);
        let k = fused::Consts {
            step_size: (hyper.lr / (1.0 - hyper.beta1.powf(t))) as f32,
            inv_sqrt_bias2: (1.0 / (1.0 - hyper.beta2.powf(t)).sqrt()) as f32,
            beta1,
            beta2,
            one_minus_beta1: 1.0 - beta1,
            one_minus_beta2: 1.0 - beta2,
            eps: hyper.eps as f32,
            decay: hyper.decay(),
        };
        let chunk = |params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]| {
            crate::simd::run(level, fused::Step { params, grads, m, v, k })
        };
        if n < PARALLEL_MIN {
            chunk(params, grads, m, v);
        } else {
            params
                .par_chunks_mut(CHUNK)
                .zip(grads.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| chunk(p, g, m, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn matches_f64_reference_over_several_steps() {
        let n = 17;
        let mut p: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut p_ref: Vec<f64> = p.iter().map(|&x| x as f64).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (mut m_ref, mut v_ref) = (vec![0.0f64; n], vec![0.0f64; n]);
        let hyper = AdamHyper::default();
        for step in 1..=5u64 {
            let g: Vec<f32> = (0..n).map(|i| ((i as u64 * 7 + step) as f32).cos()).collect();
            let g_ref: Vec<f64> = g.iter().map(|&x| x as f64).collect();
            AdamStep { params: &mut p, grads: &g, m: &mut m, v: &mut v, hyper, step }.run();
            reference::adam_step(&mut p_ref, &g_ref, &mut m_ref, &mut v_ref, hyper, step);
        }
        for i in 0..n {
            assert!((p[i] as f64 - p_ref[i]).abs() < 1e-6, "p[{i}]");
        }
    }

    fn random(len: usize, seed: u64, scale: f32) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    }

    /// Every SIMD level, over five steps, against the `f64` reference and the scalar `f32`
    /// twin, on odd lengths and on lengths large enough to run threaded. Tolerances: `p`
    /// within 1e-6 of the reference and `1e-7 + 2e-7·|p|` of the twin (about one ulp); `m`
    /// within 1e-6 of the reference and 1e-7 of the twin; `v` within 2e-5 relative of the
    /// reference (the `f32` rounding of `1 - β2`) and 1e-6 relative of the twin.
    #[test]
    fn every_level_matches_f64_reference_and_scalar_twin() {
        use crate::chunked::CHUNK;
        let plain = AdamHyper { lr: 0.01, ..AdamHyper::default() };
        let decaying = AdamHyper { weight_decay: 0.5, ..plain };
        for (level, hyper) in
            crate::dispatch::available_f32_levels().into_iter().flat_map(|level| [(level, plain), (level, decaying)])
        {
            for n in [1usize, 3, 16, 17, 65, 127, 129, 1000, 2 * CHUNK + 5] {
                let mut p = random(n, n as u64, 1.0);
                let mut p_gen = p.clone();
                let mut p_ref: Vec<f64> = p.iter().map(|&x| x as f64).collect();
                let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
                let (mut m_gen, mut v_gen) = (vec![0.0f32; n], vec![0.0f32; n]);
                let (mut m_ref, mut v_ref) = (vec![0.0f64; n], vec![0.0f64; n]);
                for step in 1..=5u64 {
                    let g = random(n, 1000 * step + n as u64, 1.0);
                    let g_ref: Vec<f64> = g.iter().map(|&x| x as f64).collect();
                    AdamStep { params: &mut p, grads: &g, m: &mut m, v: &mut v, hyper, step }.run_at(level);
                    AdamStep { params: &mut p_gen, grads: &g, m: &mut m_gen, v: &mut v_gen, hyper, step }.run_plain();
                    reference::adam_step(&mut p_ref, &g_ref, &mut m_ref, &mut v_ref, hyper, step);
                }
                for i in 0..n {
                    let ctx = format!("{level:?} weight decay {} n={n} i={i}", hyper.weight_decay);
                    assert!((p[i] as f64 - p_ref[i]).abs() <= 1e-6, "{ctx}: p {} vs {}", p[i], p_ref[i]);
                    assert!((p[i] - p_gen[i]).abs() <= 1e-7 + 2e-7 * p_gen[i].abs(), "{ctx}: p vs twin");
                    assert!((m[i] as f64 - m_ref[i]).abs() <= 1e-6, "{ctx}: m");
                    // 1 - β2 formed in f32 (as the twin does) is 1.3e-5 off 0.001, relatively.
                    assert!((v[i] as f64 - v_ref[i]).abs() <= 2e-5 * v_ref[i], "{ctx}: v");
                    assert!((m[i] - m_gen[i]).abs() <= 1e-7, "{ctx}: m vs twin");
                    assert!((v[i] - v_gen[i]).abs() <= 1e-6 * v_gen[i], "{ctx}: v vs twin");
                }
            }
        }
    }

    #[test]
    fn threaded_update_does_not_depend_on_the_thread_count() {
        let n = 5 * crate::chunked::CHUNK + 3;
        let g = random(n, 7, 1.0);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut p = random(n, 8, 1.0);
            let (mut m, mut v) = (random(n, 9, 0.1), random(n, 10, 0.01));
            v.iter_mut().for_each(|x| *x = x.abs());
            pool.install(|| {
                AdamStep { params: &mut p, grads: &g, m: &mut m, v: &mut v, hyper: AdamHyper::default(), step: 3 }
                    .run_at(crate::dispatch::cpu_level())
            });
            (p, m, v)
        };
        let one = run(1);
        assert!(one == run(2) && one == run(3));
    }

    #[test]
    fn first_step_moves_each_parameter_by_about_lr() {
        // With zero moments, step 1 moves by lr · g / (|g| + ε) ≈ lr · sign(g).
        let mut p = [0.0f32, 0.0];
        let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
        AdamStep { params: &mut p, grads: &[3.0, -0.5], m: &mut m, v: &mut v, hyper: AdamHyper::default(), step: 1 }
            .run();
        assert!((p[0] + 0.002).abs() < 1e-7 && (p[1] - 0.002).abs() < 1e-7, "{p:?}");
    }
}
