//! Vanilla (Elman) RNN cell, `h_t = tanh(U·x_t + W·h_{t-1} + b)`, as the tutorial derives it.
//! The products are done by the caller; these are the fused activation steps.

use crate::Float;

mod fused;

/// Forward step: `h = tanh(pre)`, elementwise over `[batch, hidden]`.
pub fn rnn_cell_forward<F: Float>(pre: &[F], h: &mut [F]) {
    F::rnn_cell_forward(pre, h)
}

/// The plain generic implementation of [`rnn_cell_forward`] (used for `f64`, and as the portable twin).
pub fn rnn_cell_forward_generic<F: Float>(pre: &[F], h: &mut [F]) {
    assert_eq!(pre.len(), h.len());
    for (hj, &p) in h.iter_mut().zip(pre) {
        *hj = p.tanh();
    }
}

/// Backward step: `dpre = dh · (1 - h²)`, from the activations `h` kept by the forward step.
pub fn rnn_cell_backward<F: Float>(h: &[F], dh: &[F], dpre: &mut [F]) {
    F::rnn_cell_backward(h, dh, dpre)
}

/// The plain generic implementation of [`rnn_cell_backward`] (used for `f64`, and as the portable twin).
pub fn rnn_cell_backward_generic<F: Float>(h: &[F], dh: &[F], dpre: &mut [F]) {
    assert!(h.len() == dh.len() && h.len() == dpre.len());
    for ((d, &hj), &g) in dpre.iter_mut().zip(h).zip(dh) {
        *d = g * (F::one() - hj * hj);
    }
}

/// [`rnn_cell_forward`] for `f32` at SIMD level `level`, with the fast
/// [`crate::math::tanh_f32`] (relative error ≤ 1.5e-7).
///
/// `level` must be one this CPU supports (from [`crate::dispatch::cpu_level`] or
/// [`crate::dispatch::available_levels`]); otherwise this panics.
pub fn rnn_cell_forward_f32(level: crate::dispatch::CpuLevel, pre: &[f32], h: &mut [f32]) {
    assert_eq!(pre.len(), h.len());
    crate::simd::run(level, fused::Forward { pre, h })
}

/// [`rnn_cell_backward`] for `f32` at SIMD level `level` (which must be one this CPU supports).
pub fn rnn_cell_backward_f32(level: crate::dispatch::CpuLevel, h: &[f32], dh: &[f32], dpre: &mut [f32]) {
    assert!(h.len() == dh.len() && h.len() == dpre.len());
    crate::simd::run(level, fused::Backward { h, dh, dpre })
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

    /// Every SIMD level against the `f64` reference on odd lengths (tails), random inputs in
    /// [-6, 6]. Tolerance: `h` within 1.5e-7 relative (the fast `tanh` bound; `h` = ±0 exactly
    /// where the reference is 0), `dpre` within 1e-6 absolute (|dh| ≤ 1).
    #[test]
    fn every_level_matches_f64_reference() {
        use rand::{Rng, SeedableRng};
        for level in crate::dispatch::available_levels() {
            for len in [1usize, 3, 8, 16, 17, 65, 127, 129, 1000] {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(len as u64);
                let pre: Vec<f32> = (0..len).map(|_| rng.random_range(-6.0f32..6.0)).collect();
                let dh: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let pre64: Vec<f64> = pre.iter().map(|&x| x as f64).collect();
                let dh64: Vec<f64> = dh.iter().map(|&x| x as f64).collect();
                let (h_ref, _) = reference::rnn_cell(&pre64, &dh64);
                let mut h = vec![0.0f32; len];
                let mut dpre = vec![0.0f32; len];
                rnn_cell_forward_f32(level, &pre, &mut h);
                rnn_cell_backward_f32(level, &h, &dh, &mut dpre);
                // The backward reference from our own h (the kernel's contract).
                let h64: Vec<f64> = h.iter().map(|&x| x as f64).collect();
                for k in 0..len {
                    let ctx = format!("{level:?} len={len} k={k}");
                    assert!((h[k] as f64 - h_ref[k]).abs() <= 1.5e-7 * h_ref[k].abs(), "{ctx}: h");
                    let want = dh64[k] * (1.0 - h64[k] * h64[k]);
                    assert!((dpre[k] as f64 - want).abs() <= 1e-6, "{ctx}: dpre");
                }
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
