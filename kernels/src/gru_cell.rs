//! Fused GRU cell, forward and backward, for one time step of a batch, exactly PyTorch's
//! `nn.GRU`:
//!
//! ```text
//! r  = σ(gx_r + gh_r)            gx = x·Wx + b_ih      (input side, all T steps at once)
//! z  = σ(gx_z + gh_z)            gh = h_prev·Wh + b_hh (recurrent side, per step)
//! n  = tanh(gx_n + r ⊙ gh_n)
//! h  = (1 − z) ⊙ n + z ⊙ h_prev
//! ```
//!
//! Gate layout of a row of the `[batch, 3·hidden]` matrices: `r | z | n` (reset, update, new),
//! the order PyTorch stores them in. Because the recurrent bias `b_hn` sits inside `r ⊙ (…)`,
//! the input and recurrent projections are kept apart (`gx` and `gh`), unlike the LSTM's
//! single pre-activation matrix.
//!
//! Backward, with `dh` the total gradient reaching `h`:
//!
//! ```text
//! dn_pre = dh ⊙ (1 − z) ⊙ (1 − n²)
//! dz_pre = dh ⊙ (h_prev − n) ⊙ z(1 − z)
//! dr_pre = dn_pre ⊙ gh_n ⊙ r(1 − r)
//! dgx = [dr_pre, dz_pre, dn_pre]        dgh = [dr_pre, dz_pre, dn_pre ⊙ r]
//! dh_prev (direct path only) = dh ⊙ z   (the caller adds dgh·Whᵀ)
//! ```

use crate::gate_blocks::{gate_blocks, gate_blocks_mut};
use crate::kernel::{simd_fast_path, Kernel};
use crate::math::sigmoid_scalar as sigmoid;
use crate::Float;

mod fused;

crate::kernel_args! {
    /// Forward step. On entry `gx` holds the input-side pre-activations `x·Wx + b_ih`; on
    /// return the activations `r, z, n`, which (with `gh` and `h_prev`) are what the backward
    /// step needs. `gh` holds the recurrent side `h_prev·Wh + b_hh` and is only read. Writes `h`.
    ///
    /// Shapes: `gx`, `gh` are `[batch, 3·hidden]`, `h_prev` and `h` `[batch, hidden]`. The `f32`
    /// fast path is one fused pass per batch row with the fast [`crate::math`] `sigmoid`/`tanh`
    /// (relative error ≤ 2e-7 each).
    pub struct GruForward<'a, F> {
        pub batch: plain<usize>,
        pub hidden: plain<usize>,
        pub gx: slice_mut,
        pub gh: slice,
        pub h_prev: slice,
        pub h: slice_mut,
    }
}

crate::kernel_args! {
    /// Backward step. Inputs: the activations `act` (`r, z, n`) and the recurrent projection
    /// `gh` kept by the forward step, `h_prev`, and `dh`, the total gradient reaching `h` at this
    /// step. Outputs: `dgx` (gradient with respect to the input-side pre-activations, hence to
    /// `b_ih` and through `Wx` to the input), `dgh` (with respect to `h_prev·Wh + b_hh`), and in
    /// `dh_prev` the gradient reaching `h_prev` through the update gate's direct path, `dh ⊙ z`
    /// (overwritten; the caller adds `dgh·Whᵀ`).
    ///
    /// Shapes: `act`, `gh`, `dgx`, `dgh` are `[batch, 3·hidden]`, the others `[batch, hidden]`.
    /// The `f32` fast path has no transcendental functions: everything comes from `act`.
    pub struct GruBackward<'a, F> {
        pub batch: plain<usize>,
        pub hidden: plain<usize>,
        pub act: slice,
        pub gh: slice,
        pub h_prev: slice,
        pub dh: slice,
        pub dgx: slice_mut,
        pub dgh: slice_mut,
        pub dh_prev: slice_mut,
    }
}

impl<F: Float> Kernel for GruForward<'_, F> {
    type Output = ();

    fn check(&self) {
        let (h3, n) = (3 * self.batch * self.hidden, self.batch * self.hidden);
        assert!(self.gx.len() >= h3 && self.gh.len() >= h3, "GruForward: gate matrices shorter than [batch, 3·hidden]");
        assert!(self.h_prev.len() >= n && self.h.len() >= n, "GruForward: states shorter than [batch, hidden]");
    }

    unsafe fn plain(self) {
        let GruForward { batch, hidden, gx, gh, h_prev, h } = self;
        let h3 = 3 * hidden;
        let one = F::one();
        for b in 0..batch {
            let [rg, zg, ng] = gate_blocks_mut(&mut gx[b * h3..(b + 1) * h3], hidden);
            let [hr, zr, nr] = gate_blocks(&gh[b * h3..(b + 1) * h3], hidden);
            let range = b * hidden..(b + 1) * hidden;
            let (hp, ho) = (&h_prev[range.clone()], &mut h[range]);
            for j in 0..hidden {
                let r = sigmoid(rg[j] + hr[j]);
                let z = sigmoid(zg[j] + zr[j]);
                let n = (ng[j] + r * nr[j]).tanh();
                rg[j] = r;
                zg[j] = z;
                ng[j] = n;
                ho[j] = (one - z) * n + z * hp[j];
            }
        }
    }
}

simd_fast_path!(GruForward, unless_zero: batch, hidden);

impl<F: Float> Kernel for GruBackward<'_, F> {
    type Output = ();

    fn check(&self) {
        let (h3, n) = (3 * self.batch * self.hidden, self.batch * self.hidden);
        assert!(
            self.act.len() >= h3 && self.gh.len() >= h3,
            "GruBackward: gate matrices shorter than [batch, 3·hidden]"
        );
        assert!(
            self.dgx.len() >= h3 && self.dgh.len() >= h3,
            "GruBackward: gate gradients shorter than [batch, 3·hidden]"
        );
        assert!(
            self.h_prev.len() >= n && self.dh.len() >= n && self.dh_prev.len() >= n,
            "GruBackward: states shorter than [batch, hidden]"
        );
    }

    unsafe fn plain(self) {
        let GruBackward { batch, hidden, act, gh, h_prev, dh, dgx, dgh, dh_prev } = self;
        let h3 = 3 * hidden;
        let one = F::one();
        for b in 0..batch {
            let a_row = &act[b * h3..(b + 1) * h3];
            let ghn = &gh[b * h3 + 2 * hidden..(b + 1) * h3];
            let dx_row = &mut dgx[b * h3..(b + 1) * h3];
            let dh_row = &mut dgh[b * h3..(b + 1) * h3];
            for j in 0..hidden {
                let k = b * hidden + j;
                let (r, z, n) = (a_row[j], a_row[hidden + j], a_row[2 * hidden + j]);
                let d = dh[k];
                let dn = d * (one - z) * (one - n * n);
                let dz = d * (h_prev[k] - n) * z * (one - z);
                let dr = dn * ghn[j] * r * (one - r);
                dx_row[j] = dr;
                dx_row[hidden + j] = dz;
                dx_row[2 * hidden + j] = dn;
                dh_row[j] = dr;
                dh_row[hidden + j] = dz;
                dh_row[2 * hidden + j] = dn * r;
                dh_prev[k] = d * z;
            }
        }
    }
}

simd_fast_path!(GruBackward, unless_zero: batch, hidden);

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

    fn to_f32(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    /// Every SIMD level and the public (dispatched) entry points, against the `f64` reference
    /// and the scalar `f32` twin, on shapes whose `hidden` is and is not a multiple of 8 and 16
    /// (tails). Tolerance: `2e-6·(1 + |reference|)` for every output, `4e-6·(1 + |scalar|)`
    /// against the scalar twin (the fast `sigmoid`/`tanh` are within 2e-7 relative; the rest
    /// is `f32` rounding of a few products).
    #[test]
    fn every_level_matches_f64_reference_and_scalar_twin() {
        let shapes = [(1, 1), (1, 3), (3, 17), (2, 65), (1, 127), (2, 129), (4, 16), (3, 33), (50, 128), (7, 8)];
        for level in crate::dispatch::available_f32_levels() {
            for &(batch, hidden) in &shapes {
                let mut rng = ChaCha8Rng::seed_from_u64((batch * 7919 + hidden) as u64);
                let n = batch * hidden;
                let gx = random(&mut rng, 3 * n, 4.0);
                let gh = random(&mut rng, 3 * n, 4.0);
                let h_prev = random(&mut rng, n, 1.0);
                let dh = random(&mut rng, n, 1.0);
                let r = reference::gru_cell(batch, hidden, &gx, &gh, &h_prev, &dh);

                let (gh32, hp32, dh32) = (to_f32(&gh), to_f32(&h_prev), to_f32(&dh));
                let run = |path: RunPath| {
                    let mut act = to_f32(&gx);
                    let mut h = vec![0.0f32; n];
                    let (mut dgx, mut dgh, mut dhp) = (vec![0.0f32; 3 * n], vec![0.0f32; 3 * n], vec![0.0f32; n]);
                    path.run(GruForward { batch, hidden, gx: &mut act, gh: &gh32, h_prev: &hp32, h: &mut h });
                    path.run(GruBackward {
                        batch,
                        hidden,
                        act: &act,
                        gh: &gh32,
                        h_prev: &hp32,
                        dh: &dh32,
                        dgx: &mut dgx,
                        dgh: &mut dgh,
                        dh_prev: &mut dhp,
                    });
                    [act, h, dgx, dgh, dhp]
                };
                let public = run(RunPath::Public);
                let want: [&[f64]; 5] = [&r.act, &r.h, &r.dgx, &r.dgh, &r.dh_prev];
                let names = ["act", "h", "dgx", "dgh", "dh_prev"];
                let ctx = format!("{level:?} ({batch},{hidden})");
                reference::assert_cell_outputs(&ctx, names, &run(RunPath::Fast(level)), &run(RunPath::Plain), want);
                for k in 0..5 {
                    for (idx, (&p, &w)) in public[k].iter().zip(want[k]).enumerate() {
                        let ctx = format!("public ({batch},{hidden}) {}[{idx}]", names[k]);
                        assert!((p as f64 - w).abs() <= 2e-6 * (1.0 + w.abs()), "{ctx}: {p} vs f64 {w}");
                    }
                }
            }
        }
    }

    /// The `f64` path (the generic twin, through the `Float` hook) equals the reference to
    /// rounding.
    #[test]
    fn f64_path_matches_reference() {
        let (batch, hidden) = (3, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = batch * hidden;
        let (gx, gh) = (random(&mut rng, 3 * n, 3.0), random(&mut rng, 3 * n, 3.0));
        let (h_prev, dh) = (random(&mut rng, n, 1.0), random(&mut rng, n, 1.0));
        let r = reference::gru_cell(batch, hidden, &gx, &gh, &h_prev, &dh);
        let mut act = gx.clone();
        let mut h = vec![0.0; n];
        GruForward { batch, hidden, gx: &mut act, gh: &gh, h_prev: &h_prev, h: &mut h }.run();
        let (mut dgx, mut dgh, mut dhp) = (vec![0.0; 3 * n], vec![0.0; 3 * n], vec![0.0; n]);
        GruBackward {
            batch,
            hidden,
            act: &act,
            gh: &gh,
            h_prev: &h_prev,
            dh: &dh,
            dgx: &mut dgx,
            dgh: &mut dgh,
            dh_prev: &mut dhp,
        }
        .run();
        for (got, want) in [(&act, &r.act), (&h, &r.h), (&dgx, &r.dgx), (&dgh, &r.dgh), (&dhp, &r.dh_prev)] {
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-14 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn saturated_gates_are_exact_and_nan_propagates() {
        // Unit 0: r = σ(100) = 1, z = σ(-100) = 0, n = tanh(100) = 1 → h = n = 1.
        // Unit 1: z = σ(100) = 1 → h = h_prev exactly.
        // Unit 2: a NaN in the new gate's input.
        let hidden = 3;
        for level in crate::dispatch::available_f32_levels() {
            let mut gx = [100.0f32, 0.0, 0.0, -100.0, 100.0, 0.0, 100.0, 0.5, f32::NAN];
            let gh = [0.0f32; 9];
            let mut h = [0.0f32; 3];
            GruForward { batch: 1, hidden, gx: &mut gx, gh: &gh, h_prev: &[5.0, 0.25, 1.0], h: &mut h }.run_at(level);
            assert_eq!([gx[0], gx[3], gx[6]], [1.0, 0.0, 1.0], "{level:?}");
            assert_eq!(h[0], 1.0, "{level:?}");
            assert_eq!(gx[4], 1.0, "{level:?}");
            assert_eq!(h[1], 0.25, "{level:?}");
            assert!(gx[8].is_nan() && h[2].is_nan(), "{level:?}");
        }
    }

    /// The reference backward itself is checked against central differences of the forward,
    /// with respect to every input: `gx`, `gh` and `h_prev` (its direct path).
    #[test]
    fn reference_backward_matches_finite_differences() {
        let (batch, hidden) = (2, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = batch * hidden;
        let gx = random(&mut rng, 3 * n, 2.0);
        let gh = random(&mut rng, 3 * n, 2.0);
        let h_prev = random(&mut rng, n, 1.0);
        let dh = random(&mut rng, n, 1.0);
        // Scalar objective L = Σ dh·h, whose gradients are dgx, dgh and dh_prev.
        let objective = |x: &[Vec<f64>; 3]| {
            let r = reference::gru_cell(batch, hidden, &x[0], &x[1], &x[2], &dh);
            (0..n).map(|k| dh[k] * r.h[k]).sum::<f64>()
        };
        let r = reference::gru_cell(batch, hidden, &gx, &gh, &h_prev, &dh);
        let inputs = [gx, gh, h_prev];
        for (which, (name, analytic)) in [("dgx", &r.dgx), ("dgh", &r.dgh), ("dh_prev", &r.dh_prev)].iter().enumerate()
        {
            for (idx, &a) in analytic.iter().enumerate() {
                let num = reference::central_difference(objective, &inputs, which, idx, 1e-6);
                assert!((num - a).abs() < 1e-8, "{name}[{idx}]: numeric {num} vs analytic {a}");
            }
        }
        // The n block is where the two differ: dgh_n = dgx_n ⊙ r.
        assert!((0..hidden).any(|j| (r.dgx[2 * hidden + j] - r.dgh[2 * hidden + j]).abs() > 1e-3));
    }
}
