//! Adam, with PyTorch's formulation of the bias correction:
//! `p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)`.

use crate::Float;

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
}

impl Default for AdamHyper {
    /// The tutorial's optimiser: lr 0.002, β = (0.9, 0.999), ε = 1e-8.
    fn default() -> Self {
        AdamHyper {
            lr: 0.002,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// One Adam update of `params` from `grads`, with moment buffers `m` and `v` (same length,
/// zero at step 1). `step` counts from 1.
pub fn adam_step<F: Float>(
    params: &mut [F],
    grads: &[F],
    m: &mut [F],
    v: &mut [F],
    hyper: AdamHyper,
    step: u64,
) {
    let n = params.len();
    assert!(grads.len() == n && m.len() == n && v.len() == n && step >= 1);
    let t = step as f64;
    let bias1 = 1.0 - hyper.beta1.powf(t);
    let bias2 = 1.0 - hyper.beta2.powf(t);
    let step_size = F::from_f64(hyper.lr / bias1);
    let inv_sqrt_bias2 = F::from_f64(1.0 / bias2.sqrt());
    let (b1, b2, eps) = (
        F::from_f64(hyper.beta1),
        F::from_f64(hyper.beta2),
        F::from_f64(hyper.eps),
    );
    let (one_b1, one_b2) = (F::one() - b1, F::one() - b2);
    for i in 0..n {
        let g = grads[i];
        let mi = b1 * m[i] + one_b1 * g;
        let vi = b2 * v[i] + one_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= step_size * mi / (vi.sqrt() * inv_sqrt_bias2 + eps);
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
            let g: Vec<f32> = (0..n)
                .map(|i| ((i as u64 * 7 + step) as f32).cos())
                .collect();
            let g_ref: Vec<f64> = g.iter().map(|&x| x as f64).collect();
            adam_step(&mut p, &g, &mut m, &mut v, hyper, step);
            reference::adam_step(&mut p_ref, &g_ref, &mut m_ref, &mut v_ref, hyper, step);
        }
        for i in 0..n {
            assert!((p[i] as f64 - p_ref[i]).abs() < 1e-6, "p[{i}]");
        }
    }

    #[test]
    fn first_step_moves_each_parameter_by_about_lr() {
        // With zero moments, step 1 moves by lr · g / (|g| + ε) ≈ lr · sign(g).
        let mut p = [0.0f32, 0.0];
        let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
        adam_step(
            &mut p,
            &[3.0, -0.5],
            &mut m,
            &mut v,
            AdamHyper::default(),
            1,
        );
        assert!(
            (p[0] + 0.002).abs() < 1e-7 && (p[1] - 0.002).abs() < 1e-7,
            "{p:?}"
        );
    }
}
