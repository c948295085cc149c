//! The GRU: gates `r, z, n`; one state slab, `h`; its recurrent side apart, because its
//! recurrent bias `b_hn` sits inside `n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`: the
//! drivers put `h_{t-1}·Wh + b_hh` into a buffer of its own, kept for the backward step, which
//! yields a gradient for each side.

use charrnn_kernels::gru_cell::{GruBackward, GruForward};
use charrnn_kernels::{Float, Kernel};

use crate::model::cell::{BackwardStep, Cell, ForwardStep, RecurrentSide};

/// Gated recurrent unit, exactly PyTorch's `nn.GRU`.
pub struct Gru;

impl Cell for Gru {
    const NAME: &'static str = "gru";
    const GATES: usize = 3;
    const STATE: &'static [&'static str] = &["h"];
    const RECURRENT: RecurrentSide = RecurrentSide::Apart;
    type Slabs<T> = [T; 1];

    fn forward<F: Float>(step: ForwardStep<'_, F, Self>) {
        let ForwardStep { rows: batch, hidden, gates: gx, recurrent: gh, state: [(h_prev, h)] } = step;
        GruForward { batch, hidden, gx, gh, h_prev, h }.run();
    }

    fn backward<F: Float>(step: BackwardStep<'_, F, Self>) {
        let BackwardStep {
            rows: batch,
            hidden,
            gates: act,
            recurrent: gh,
            state: [(h_prev, _)],
            dh,
            dgates: dgx,
            drecurrent: dgh,
            dh_prev,
            ..
        } = step;
        // Writes dh_prev = dh ⊙ z (the direct path); the driver adds dgh·Whᵀ.
        GruBackward { batch, hidden, act, gh, h_prev, dh, dgx, dgh, dh_prev }.run();
    }
}
