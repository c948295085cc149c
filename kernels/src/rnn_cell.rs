//! Vanilla (Elman) RNN cell, `h_t = tanh(U·x_t + W·h_{t-1} + b)`, as the tutorial derives it.
//! The products are done by the caller; these are the fused activation steps.

use crate::Float;

/// Forward step: `h = tanh(pre)`, elementwise over `[batch, hidden]`.
pub fn rnn_cell_forward<F: Float>(pre: &[F], h: &mut [F]) {
    assert_eq!(pre.len(), h.len());
    for (hj, &p) in h.iter_mut().zip(pre) {
        *hj = p.tanh();
    }
}

/// Backward step: `dpre = dh · (1 - h²)`, from the activations `h` kept by the forward step.
pub fn rnn_cell_backward<F: Float>(h: &[F], dh: &[F], dpre: &mut [F]) {
    assert!(h.len() == dh.len() && h.len() == dpre.len());
    for ((d, &hj), &g) in dpre.iter_mut().zip(h).zip(dh) {
        *d = g * (F::one() - hj * hj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn matches_f64_reference_on_odd_sizes() {
        for len in [1usize, 3, 17, 65, 127] {
            let pre: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin() * 5.0).collect();
            let dh: Vec<f64> = (0..len).map(|i| (i as f64 * 0.11).cos()).collect();
            let (h_ref, dpre_ref) = reference::rnn_cell(&pre, &dh);
            let pre32: Vec<f32> = pre.iter().map(|&x| x as f32).collect();
            let dh32: Vec<f32> = dh.iter().map(|&x| x as f32).collect();
            let mut h = vec![0.0f32; len];
            let mut dpre = vec![0.0f32; len];
            rnn_cell_forward(&pre32, &mut h);
            rnn_cell_backward(&h, &dh32, &mut dpre);
            for k in 0..len {
                assert!((h[k] as f64 - h_ref[k]).abs() < 1e-6, "h[{k}]");
                assert!((dpre[k] as f64 - dpre_ref[k]).abs() < 1e-6, "dpre[{k}]");
            }
        }
    }

    #[test]
    fn reference_backward_matches_finite_differences() {
        let pre = [-3.0, -0.5, 0.0, 0.7, 2.5];
        let dh = [0.3, -1.0, 2.0, 0.5, -0.25];
        let (_, dpre) = reference::rnn_cell(&pre, &dh);
        let eps = 1e-6;
        for k in 0..pre.len() {
            let num = dh[k] * ((pre[k] + eps).tanh() - (pre[k] - eps).tanh()) / (2.0 * eps);
            assert!((num - dpre[k]).abs() < 1e-8);
        }
    }
}
