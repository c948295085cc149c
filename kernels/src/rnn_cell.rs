//! Vanilla (Elman) RNN cell, `h_t = tanh(U·x_t + W·h_{t-1} + b)`, as the tutorial derives it.
//! The products are done by the caller; these are the fused activation steps.

use crate::kernel::{simd_fast_path, Kernel};
use crate::Float;

mod fused;

crate::kernel_args! {
    /// Forward step: `h = tanh(pre)`, elementwise over `[batch, hidden]`. The `f32` fast path
    /// uses the fast [`crate::math`] `tanh` (relative error ≤ 1.5e-7).
    pub struct RnnForward<'a, F> {
        pub pre: slice,
        pub h: slice_mut,
    }
}

impl<F: Float> Kernel for RnnForward<'_, F> {
    type Output = ();

    fn check(&self) {
        assert_eq!(self.pre.len(), self.h.len(), "RnnForward: pre and h differ in length");
    }

    unsafe fn plain(self) {
        let RnnForward { pre, h } = self;
        for (hj, &p) in h.iter_mut().zip(pre) {
            *hj = p.tanh();
        }
    }
}

simd_fast_path!(RnnForward);

crate::kernel_args! {
    /// Backward step: `dpre = dh · (1 - h²)`, from the activations `h` kept by the forward step.
    pub struct RnnBackward<'a, F> {
        pub h: slice,
        pub dh: slice,
        pub dpre: slice_mut,
    }
}

impl<F: Float> Kernel for RnnBackward<'_, F> {
    type Output = ();

    fn check(&self) {
        let n = self.h.len();
        assert!(self.dh.len() == n && self.dpre.len() == n, "RnnBackward: h, dh and dpre differ in length");
    }

    unsafe fn plain(self) {
        let RnnBackward { h, dh, dpre } = self;
        for ((d, &hj), &g) in dpre.iter_mut().zip(h).zip(dh) {
            *d = g * (F::one() - hj * hj);
        }
    }
}

simd_fast_path!(RnnBackward);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::FastKernel;
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
            RnnForward { pre: &pre32, h: &mut h }.run();
            RnnBackward { h: &h, dh: &dh32, dpre: &mut dpre }.run();
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
        for level in crate::dispatch::available_f32_levels() {
            for len in [1usize, 3, 8, 16, 17, 65, 127, 129, 1000] {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(len as u64);
                let pre: Vec<f32> = (0..len).map(|_| rng.random_range(-6.0f32..6.0)).collect();
                let dh: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let pre64: Vec<f64> = pre.iter().map(|&x| x as f64).collect();
                let dh64: Vec<f64> = dh.iter().map(|&x| x as f64).collect();
                let (h_ref, _) = reference::rnn_cell(&pre64, &dh64);
                let mut h = vec![0.0f32; len];
                let mut dpre = vec![0.0f32; len];
                RnnForward { pre: &pre, h: &mut h }.run_at(level);
                RnnBackward { h: &h, dh: &dh, dpre: &mut dpre }.run_at(level);
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
