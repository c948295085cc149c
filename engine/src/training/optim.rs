//! Gradient clipping by global norm and the Adam optimiser over the flat buffers.

use charrnn_kernels::adam::{AdamHyper, AdamStep};
use charrnn_kernels::reduce::{Scale, SumSquares};
use charrnn_kernels::{Float, Kernel};

/// Scales `grads` so that their global L2 norm is at most `max_norm`, exactly as PyTorch's
/// `clip_grad_norm_` (coefficient `max_norm / (norm + 1e-6)`, applied only when below 1).
/// Returns the norm before clipping. A non-positive `max_norm` disables clipping.
pub fn clip_global_norm<F: Float>(grads: &mut [F], max_norm: f64) -> f64 {
    let norm = SumSquares { x: grads }.run().sqrt();
    if max_norm > 0.0 {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            Scale { x: grads, s: F::from_f64(coef) }.run();
        }
    }
    norm
}

/// Adam state: both moments and the step count.
#[derive(Clone, Debug)]
pub struct Adam<F> {
    /// Hyper-parameters.
    pub hyper: AdamHyper,
    /// First moment, same layout as the parameters.
    pub m: Vec<F>,
    /// Second moment.
    pub v: Vec<F>,
    /// Updates done so far.
    pub step: u64,
}

impl<F: Float> Adam<F> {
    /// Zero moments for `num_params` parameters.
    pub fn new(num_params: usize, hyper: AdamHyper) -> Adam<F> {
        Adam { hyper, m: vec![F::zero(); num_params], v: vec![F::zero(); num_params], step: 0 }
    }

    /// One update of `params` from `grads`.
    pub fn update(&mut self, params: &mut [F], grads: &[F]) {
        self.step += 1;
        AdamStep { params, grads, m: &mut self.m, v: &mut self.v, hyper: self.hyper, step: self.step }.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_scales_to_max_norm_and_leaves_small_gradients() {
        let mut g = [3.0f32, 4.0];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((n - 1.0).abs() < 1e-5, "{n}");
        let mut small = [0.3f32, 0.4];
        clip_global_norm(&mut small, 1.0);
        assert_eq!(small, [0.3, 0.4]);
    }
}
