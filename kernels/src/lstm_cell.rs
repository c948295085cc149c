//! Fused LSTM cell, forward and backward, for one time step of a batch.
//!
//! Gate layout of a row of the `[batch, 4·hidden]` gate matrix: `i | f | g | o` (input, forget,
//! cell candidate, output), the order PyTorch stores them in. The `f32` fast path is one fused
//! pass per batch row (`fused.rs`) with the fast [`crate::math`] `sigmoid`/`tanh` (relative
//! error ≤ 2e-7 each).

use crate::gate_blocks::gate_blocks_mut;
use crate::kernel::{simd_fast_path, Kernel};
use crate::math::sigmoid_scalar as sigmoid;
use crate::Float;

mod fused;

crate::kernel_args! {
    /// Forward step. On entry `gates` holds the pre-activations; on return the activations
    /// (`σ(i), σ(f), tanh(g), σ(o)`), which is what the backward step needs.
    /// `c = f·c_prev + i·g` and `h = o·tanh(c)`.
    ///
    /// Shapes: `gates` is `[batch, 4·hidden]`, the others `[batch, hidden]`.
    pub struct LstmForward<'a, F> {
        pub batch: plain<usize>,
        pub hidden: plain<usize>,
        pub gates: slice_mut,
        pub c_prev: slice,
        pub c: slice_mut,
        pub h: slice_mut,
    }
}

crate::kernel_args! {
    /// Backward step. Inputs: the activations `gates` and `c_prev`, `c` kept by the forward
    /// step, `dh` (the total gradient reaching `h` at this step) and, in `dc`, the gradient
    /// reaching `c` from the next step. Outputs: `dgates`, the gradient of the loss with respect
    /// to the pre-activations, and in `dc` the gradient with respect to `c_prev`.
    /// The `f32` fast path recomputes `tanh(c)` with the fast formula.
    pub struct LstmBackward<'a, F> {
        pub batch: plain<usize>,
        pub hidden: plain<usize>,
        pub gates: slice,
        pub c_prev: slice,
        pub c: slice,
        pub dh: slice,
        pub dc: slice_mut,
        pub dgates: slice_mut,
    }
}

impl<F: Float> Kernel for LstmForward<'_, F> {
    type Output = ();

    fn check(&self) {
        let (n, n4) = (self.batch * self.hidden, 4 * self.batch * self.hidden);
        assert!(self.gates.len() >= n4 && self.c_prev.len() >= n, "LstmForward: gates or c_prev too short");
        assert!(self.c.len() >= n && self.h.len() >= n, "LstmForward: c or h too short");
    }

    unsafe fn plain(self) {
        let hidden = self.hidden;
        let h4 = 4 * hidden;
        for b in 0..self.batch {
            let [ig, fg, gg, og] = gate_blocks_mut(&mut self.gates[b * h4..(b + 1) * h4], hidden);
            let range = b * hidden..(b + 1) * hidden;
            let (cp, cr, hr) = (&self.c_prev[range.clone()], &mut self.c[range.clone()], &mut self.h[range]);
            for j in 0..hidden {
                let i = sigmoid(ig[j]);
                let f = sigmoid(fg[j]);
                let g = gg[j].tanh();
                let o = sigmoid(og[j]);
                let cj = f * cp[j] + i * g;
                ig[j] = i;
                fg[j] = f;
                gg[j] = g;
                og[j] = o;
                cr[j] = cj;
                hr[j] = o * cj.tanh();
            }
        }
    }
}

simd_fast_path!(LstmForward, unless_zero: batch, hidden);

impl<F: Float> Kernel for LstmBackward<'_, F> {
    type Output = ();

    fn check(&self) {
        let (n, n4) = (self.batch * self.hidden, 4 * self.batch * self.hidden);
        assert!(self.gates.len() >= n4 && self.dgates.len() >= n4, "LstmBackward: gates or dgates too short");
        assert!(self.c_prev.len() >= n && self.c.len() >= n, "LstmBackward: c_prev or c too short");
        assert!(self.dh.len() >= n && self.dc.len() >= n, "LstmBackward: dh or dc too short");
    }

    unsafe fn plain(self) {
        let hidden = self.hidden;
        let h4 = 4 * hidden;
        let one = F::one();
        for b in 0..self.batch {
            let g_row = &self.gates[b * h4..(b + 1) * h4];
            let [di, df, dg, dout] = gate_blocks_mut(&mut self.dgates[b * h4..(b + 1) * h4], hidden);
            for j in 0..hidden {
                let k = b * hidden + j;
                let (i, f, g, o) = (g_row[j], g_row[hidden + j], g_row[2 * hidden + j], g_row[3 * hidden + j]);
                let tc = self.c[k].tanh();
                let dcj = self.dc[k] + self.dh[k] * o * (one - tc * tc);
                dout[j] = self.dh[k] * tc * o * (one - o);
                di[j] = dcj * g * i * (one - i);
                dg[j] = dcj * i * (one - g * g);
                df[j] = dcj * self.c_prev[k] * f * (one - f);
                self.dc[k] = dcj * f;
            }
        }
    }
}

simd_fast_path!(LstmBackward, unless_zero: batch, hidden);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{FastKernel, RunPath};
    use crate::reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    }

    /// Random `[pre, c_prev, dh, dc_next]` of one step from `seed`, `pre` in `±pre_scale`,
    /// `c_prev` in `±c_scale`, the gradients in `±1`.
    fn random_step(batch: usize, hidden: usize, seed: u64, pre_scale: f64, c_scale: f64) -> [Vec<f64>; 4] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = batch * hidden;
        [
            random(&mut rng, 4 * n, pre_scale),
            random(&mut rng, n, c_scale),
            random(&mut rng, n, 1.0),
            random(&mut rng, n, 1.0),
        ]
    }

    #[test]
    fn f32_forward_and_backward_match_f64_reference_on_odd_sizes() {
        for &(batch, hidden) in &[(1, 1), (3, 17), (5, 65), (2, 129)] {
            let [pre, c_prev, dh, dc_next] = random_step(batch, hidden, (batch * 131 + hidden) as u64, 4.0, 2.0);
            let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);

            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let mut gates = f(&pre);
            let (mut c, mut h) = (vec![0.0f32; batch * hidden], vec![0.0f32; batch * hidden]);
            LstmForward { batch, hidden, gates: &mut gates, c_prev: &f(&c_prev), c: &mut c, h: &mut h }.run();
            let mut dc = f(&dc_next);
            let mut dgates = vec![0.0f32; batch * 4 * hidden];
            let (c_prev, dh) = (f(&c_prev), f(&dh));
            LstmBackward {
                batch,
                hidden,
                gates: &gates,
                c_prev: &c_prev,
                c: &c,
                dh: &dh,
                dc: &mut dc,
                dgates: &mut dgates,
            }
            .run();

            let close = |name: &str, got: &[f32], want: &[f64]| {
                for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
                    assert!((g as f64 - w).abs() <= 2e-6 * (1.0 + w.abs()), "{name}[{idx}]: {g} vs {w}");
                }
            };
            close("gates", &gates, &r.gates);
            close("c", &c, &r.c);
            close("h", &h, &r.h);
            close("dgates", &dgates, &r.dgates);
            close("dc_prev", &dc, &r.dc_prev);
        }
    }

    /// Every SIMD level, against the `f64` reference and the scalar `f32` twin, on shapes whose
    /// `hidden` is and is not a multiple of 8 and 16 (tails), including one that is both.
    /// Tolerance: `2e-6·(1 + |reference|)` for every output (the fast `sigmoid`/`tanh` are within
    /// 2e-7 relative; the rest is `f32` rounding of a few products).
    #[test]
    fn every_level_matches_f64_reference_and_scalar_twin() {
        let shapes = [(1, 1), (1, 3), (3, 17), (2, 65), (1, 127), (2, 129), (4, 16), (3, 33), (50, 128), (7, 8)];
        for level in crate::dispatch::available_f32_levels() {
            for &(batch, hidden) in &shapes {
                let [pre, c_prev, dh, dc_next] = random_step(batch, hidden, (batch * 7919 + hidden) as u64, 6.0, 2.0);
                let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);

                let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                let (c_prev32, dh32) = (f(&c_prev), f(&dh));
                let n = batch * hidden;
                let run = |path: RunPath| {
                    let mut gates = f(&pre);
                    let (mut c, mut h) = (vec![0.0f32; n], vec![0.0f32; n]);
                    let mut dc = f(&dc_next);
                    let mut dgates = vec![0.0f32; 4 * n];
                    path.run(LstmForward { batch, hidden, gates: &mut gates, c_prev: &c_prev32, c: &mut c, h: &mut h });
                    path.run(LstmBackward {
                        batch,
                        hidden,
                        gates: &gates,
                        c_prev: &c_prev32,
                        c: &c,
                        dh: &dh32,
                        dc: &mut dc,
                        dgates: &mut dgates,
                    });
                    [gates, c, h, dgates, dc]
                };
                reference::assert_cell_outputs(
                    &format!("{level:?} ({batch},{hidden})"),
                    ["gates", "c", "h", "dgates", "dc_prev"],
                    &run(RunPath::Fast(level)),
                    &run(RunPath::Plain),
                    [&r.gates, &r.c, &r.h, &r.dgates, &r.dc_prev],
                );
            }
        }
    }

    #[test]
    fn saturated_gates_are_exact_and_nan_propagates() {
        // i = σ(100) = 1, f = σ(-100) = 0, g = tanh(100) = 1, o = σ(100) = 1: c = 1, h = tanh(1).
        // The second unit has a NaN input gate.
        let hidden = 2;
        for level in crate::dispatch::available_f32_levels() {
            let mut gates = [100.0f32, f32::NAN, -100.0, 0.0, 100.0, 0.0, 100.0, 0.0];
            let (mut c, mut h) = ([0.0f32; 2], [0.0f32; 2]);
            LstmForward { batch: 1, hidden, gates: &mut gates, c_prev: &[5.0, 1.0], c: &mut c, h: &mut h }
                .run_at(level);
            assert_eq!([gates[0], gates[2], gates[4], gates[6]], [1.0, 0.0, 1.0, 1.0], "{level:?}");
            assert_eq!(c[0], 1.0, "{level:?}");
            assert!((h[0] as f64 - 1f64.tanh()).abs() < 2e-7, "{level:?}");
            assert!(gates[1].is_nan() && c[1].is_nan() && h[1].is_nan(), "{level:?}");
        }
    }

    /// The reference backward itself is checked against central differences of the forward.
    #[test]
    fn reference_backward_matches_finite_differences() {
        let (batch, hidden) = (2, 3);
        let [pre, c_prev, dh, dc_next] = random_step(batch, hidden, 11, 2.0, 1.0);
        // Scalar objective L = Σ dh·h + Σ dc_next·c, whose gradients are dgates and dc_prev.
        let objective = |x: &[Vec<f64>; 2]| {
            let r = reference::lstm_cell(batch, hidden, &x[0], &x[1], &dh, &dc_next);
            (0..batch * hidden).map(|k| dh[k] * r.h[k] + dc_next[k] * r.c[k]).sum::<f64>()
        };
        let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);
        let inputs = [pre, c_prev];
        for (which, (name, analytic)) in [("dgates", &r.dgates), ("dc_prev", &r.dc_prev)].iter().enumerate() {
            for (idx, &a) in analytic.iter().enumerate() {
                let num = reference::central_difference(objective, &inputs, which, idx, 1e-6);
                assert!((num - a).abs() < 1e-8, "{name}[{idx}]: numeric {num} vs analytic {a}");
            }
        }
    }
}
