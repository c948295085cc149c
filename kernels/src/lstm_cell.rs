//! Fused LSTM cell, forward and backward, for one time step of a batch.
//!
//! Gate layout of a row of the `[batch, 4·hidden]` gate matrix: `i | f | g | o` (input, forget,
//! cell candidate, output), the order PyTorch stores them in.

use crate::Float;

mod fused;

/// Logistic sigmoid.
#[inline]
pub fn sigmoid<F: Float>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

/// Forward step. On entry `gates` holds the pre-activations; on return the activations
/// (`σ(i), σ(f), tanh(g), σ(o)`), which is what the backward step needs.
/// `c = f·c_prev + i·g` and `h = o·tanh(c)`.
///
/// Shapes: `gates` is `[batch, 4·hidden]`, the others `[batch, hidden]`.
pub fn lstm_cell_forward<F: Float>(
    batch: usize,
    hidden: usize,
    gates: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    h: &mut [F],
) {
    F::lstm_cell_forward(batch, hidden, gates, c_prev, c, h)
}

/// The plain generic implementation of [`lstm_cell_forward`] (used for `f64`, and as the portable twin).
pub fn lstm_cell_forward_generic<F: Float>(
    batch: usize,
    hidden: usize,
    gates: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    h: &mut [F],
) {
    let h4 = 4 * hidden;
    assert!(gates.len() >= batch * h4 && c_prev.len() >= batch * hidden);
    assert!(c.len() >= batch * hidden && h.len() >= batch * hidden);
    for b in 0..batch {
        let row = &mut gates[b * h4..(b + 1) * h4];
        let (ig, rest) = row.split_at_mut(hidden);
        let (fg, rest) = rest.split_at_mut(hidden);
        let (gg, og) = rest.split_at_mut(hidden);
        let range = b * hidden..(b + 1) * hidden;
        let (cp, cr, hr) = (&c_prev[range.clone()], &mut c[range.clone()], &mut h[range]);
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

/// Backward step. Inputs: the activations `gates` and `c_prev`, `c` kept by the forward step,
/// `dh` (the total gradient reaching `h` at this step) and, in `dc`, the gradient reaching `c`
/// from the next step. Outputs: `dgates`, the gradient of the loss with respect to the
/// pre-activations, and in `dc` the gradient with respect to `c_prev`.
pub fn lstm_cell_backward<F: Float>(
    batch: usize,
    hidden: usize,
    gates: &[F],
    c_prev: &[F],
    c: &[F],
    dh: &[F],
    dc: &mut [F],
    dgates: &mut [F],
) {
    F::lstm_cell_backward(batch, hidden, gates, c_prev, c, dh, dc, dgates)
}

/// The plain generic implementation of [`lstm_cell_backward`] (used for `f64`, and as the portable twin).
pub fn lstm_cell_backward_generic<F: Float>(
    batch: usize,
    hidden: usize,
    gates: &[F],
    c_prev: &[F],
    c: &[F],
    dh: &[F],
    dc: &mut [F],
    dgates: &mut [F],
) {
    let h4 = 4 * hidden;
    assert!(gates.len() >= batch * h4 && dgates.len() >= batch * h4);
    assert!(c_prev.len() >= batch * hidden && c.len() >= batch * hidden);
    assert!(dh.len() >= batch * hidden && dc.len() >= batch * hidden);
    let one = F::one();
    for b in 0..batch {
        let g_row = &gates[b * h4..(b + 1) * h4];
        let d_row = &mut dgates[b * h4..(b + 1) * h4];
        let (di, rest) = d_row.split_at_mut(hidden);
        let (df, rest) = rest.split_at_mut(hidden);
        let (dg, dout) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let k = b * hidden + j;
            let (i, f, g, o) = (g_row[j], g_row[hidden + j], g_row[2 * hidden + j], g_row[3 * hidden + j]);
            let tc = c[k].tanh();
            let dcj = dc[k] + dh[k] * o * (one - tc * tc);
            dout[j] = dh[k] * tc * o * (one - o);
            di[j] = dcj * g * i * (one - i);
            dg[j] = dcj * i * (one - g * g);
            df[j] = dcj * c_prev[k] * f * (one - f);
            dc[k] = dcj * f;
        }
    }
}

/// [`lstm_cell_forward`] for `f32` at SIMD level `level`: one fused pass per batch row, with
/// the fast [`crate::math`] `sigmoid`/`tanh` (relative error ≤ 2e-7 each).
///
/// `level` must be one this CPU supports (from [`crate::dispatch::cpu_level`] or
/// [`crate::dispatch::available_levels`]); otherwise this panics.
pub fn lstm_cell_forward_f32(
    level: crate::dispatch::CpuLevel,
    batch: usize,
    hidden: usize,
    gates: &mut [f32],
    c_prev: &[f32],
    c: &mut [f32],
    h: &mut [f32],
) {
    let h4 = 4 * hidden;
    assert!(gates.len() >= batch * h4 && c_prev.len() >= batch * hidden);
    assert!(c.len() >= batch * hidden && h.len() >= batch * hidden);
    if batch == 0 || hidden == 0 {
        return;
    }
    let kernel = fused::Forward { batch, hidden, gates, c_prev, c, h };
    crate::simd::run(level, kernel)
}

/// [`lstm_cell_backward`] for `f32` at SIMD level `level` (one fused pass per batch row;
/// `tanh(c)` is recomputed with the fast [`crate::math::tanh_f32`] formula).
///
/// `level` must be one this CPU supports; otherwise this panics.
pub fn lstm_cell_backward_f32(
    level: crate::dispatch::CpuLevel,
    batch: usize,
    hidden: usize,
    gates: &[f32],
    c_prev: &[f32],
    c: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dgates: &mut [f32],
) {
    let h4 = 4 * hidden;
    assert!(gates.len() >= batch * h4 && dgates.len() >= batch * h4);
    assert!(c_prev.len() >= batch * hidden && c.len() >= batch * hidden);
    assert!(dh.len() >= batch * hidden && dc.len() >= batch * hidden);
    if batch == 0 || hidden == 0 {
        return;
    }
    let kernel = fused::Backward { batch, hidden, gates, c_prev, c, dh, dc, dgates };
    crate::simd::run(level, kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    }

    #[test]
    fn f32_forward_and_backward_match_f64_reference_on_odd_sizes() {
        for &(batch, hidden) in &[(1, 1), (3, 17), (5, 65), (2, 129)] {
            let mut rng = ChaCha8Rng::seed_from_u64((batch * 131 + hidden) as u64);
            let pre = random(&mut rng, batch * 4 * hidden, 4.0);
            let c_prev = random(&mut rng, batch * hidden, 2.0);
            let dh = random(&mut rng, batch * hidden, 1.0);
            let dc_next = random(&mut rng, batch * hidden, 1.0);
            let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);

            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let mut gates = f(&pre);
            let (mut c, mut h) = (vec![0.0f32; batch * hidden], vec![0.0f32; batch * hidden]);
            lstm_cell_forward(batch, hidden, &mut gates, &f(&c_prev), &mut c, &mut h);
            let mut dc = f(&dc_next);
            let mut dgates = vec![0.0f32; batch * 4 * hidden];
            lstm_cell_backward(batch, hidden, &gates, &f(&c_prev), &c, &f(&dh), &mut dc, &mut dgates);

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
        for level in crate::dispatch::available_levels() {
            for &(batch, hidden) in &shapes {
                let mut rng = ChaCha8Rng::seed_from_u64((batch * 7919 + hidden) as u64);
                let pre = random(&mut rng, batch * 4 * hidden, 6.0);
                let c_prev = random(&mut rng, batch * hidden, 2.0);
                let dh = random(&mut rng, batch * hidden, 1.0);
                let dc_next = random(&mut rng, batch * hidden, 1.0);
                let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);

                let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                let (c_prev32, dh32) = (f(&c_prev), f(&dh));
                let n = batch * hidden;
                let run = |fast: bool| {
                    let mut gates = f(&pre);
                    let (mut c, mut h) = (vec![0.0f32; n], vec![0.0f32; n]);
                    let mut dc = f(&dc_next);
                    let mut dgates = vec![0.0f32; 4 * n];
                    if fast {
                        lstm_cell_forward_f32(level, batch, hidden, &mut gates, &c_prev32, &mut c, &mut h);
                        lstm_cell_backward_f32(
                            level,
                            batch,
                            hidden,
                            &gates,
                            &c_prev32,
                            &c,
                            &dh32,
                            &mut dc,
                            &mut dgates,
                        );
                    } else {
                        lstm_cell_forward_generic(batch, hidden, &mut gates, &c_prev32, &mut c, &mut h);
                        lstm_cell_backward_generic(batch, hidden, &gates, &c_prev32, &c, &dh32, &mut dc, &mut dgates);
                    }
                    [gates, c, h, dgates, dc]
                };
                let (fast, scalar) = (run(true), run(false));
                let want = [&r.gates, &r.c, &r.h, &r.dgates, &r.dc_prev];
                let names = ["gates", "c", "h", "dgates", "dc_prev"];
                for k in 0..5 {
                    for (idx, ((&g, &sc), &w)) in fast[k].iter().zip(&scalar[k]).zip(want[k]).enumerate() {
                        let ctx = format!("{level:?} ({batch},{hidden}) {}[{idx}]", names[k]);
                        assert!((g as f64 - w).abs() <= 2e-6 * (1.0 + w.abs()), "{ctx}: {g} vs f64 {w}");
                        assert!((g - sc).abs() <= 4e-6 * (1.0 + sc.abs()), "{ctx}: {g} vs scalar {sc}");
                    }
                }
            }
        }
    }

    #[test]
    fn saturated_gates_are_exact_and_nan_propagates() {
        // i = σ(100) = 1, f = σ(-100) = 0, g = tanh(100) = 1, o = σ(100) = 1: c = 1, h = tanh(1).
        // The second unit has a NaN input gate.
        let hidden = 2;
        for level in crate::dispatch::available_levels() {
            let mut gates = [100.0f32, f32::NAN, -100.0, 0.0, 100.0, 0.0, 100.0, 0.0];
            let (mut c, mut h) = ([0.0f32; 2], [0.0f32; 2]);
            lstm_cell_forward_f32(level, 1, hidden, &mut gates, &[5.0, 1.0], &mut c, &mut h);
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
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let pre = random(&mut rng, batch * 4 * hidden, 2.0);
        let c_prev = random(&mut rng, batch * hidden, 1.0);
        let dh = random(&mut rng, batch * hidden, 1.0);
        let dc_next = random(&mut rng, batch * hidden, 1.0);
        // Scalar objective L = Σ dh·h + Σ dc_next·c, whose gradients are dgates and dc_prev.
        let objective = |pre: &[f64], c_prev: &[f64]| {
            let r = reference::lstm_cell(batch, hidden, pre, c_prev, &dh, &dc_next);
            (0..batch * hidden).map(|k| dh[k] * r.h[k] + dc_next[k] * r.c[k]).sum::<f64>()
        };
        let r = reference::lstm_cell(batch, hidden, &pre, &c_prev, &dh, &dc_next);
        let eps = 1e-6;
        for idx in 0..pre.len() {
            let (mut p, mut m) = (pre.clone(), pre.clone());
            p[idx] += eps;
            m[idx] -= eps;
            let num = (objective(&p, &c_prev) - objective(&m, &c_prev)) / (2.0 * eps);
            assert!((num - r.dgates[idx]).abs() < 1e-8, "dgates[{idx}] {num} vs {}", r.dgates[idx]);
        }
        for idx in 0..c_prev.len() {
            let (mut p, mut m) = (c_prev.clone(), c_prev.clone());
            p[idx] += eps;
            m[idx] -= eps;
            let num = (objective(&pre, &p) - objective(&pre, &m)) / (2.0 * eps);
            assert!((num - r.dc_prev[idx]).abs() < 1e-8, "dc_prev[{idx}] {num} vs {}", r.dc_prev[idx]);
        }
    }
}
