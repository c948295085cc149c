//! One stacked recurrent layer over a chunk of `T` steps: forward and backward.
//!
//! The input projection for all `T` steps is done before the recurrence, as one GEMM
//! `[T·B, in]·[in, G·H]` plus bias ([`input_projection`]; layer 0 gathers rows of a folded
//! table instead, see [`crate::model::embedding`]). Then per step only `h_{t-1}·Wh` (with `Wh` packed
//! once for all `T` steps) and the fused cell. Backward runs time in reverse, per step only the
//! fused cell backward and `dgates_t·Whᵀ` (`Whᵀ` packed once); the weight gradients are single
//! GEMMs over all `T` afterwards.
//!
//! The GRU differs in one place: its recurrent bias `b_hn` sits inside `r ⊙ (h·W_hn + b_hn)`,
//! so the recurrent side cannot be added into the input projections. Per step `h_{t-1}·Wh`
//! goes into its own row block of the `gh` slab (pre-filled with `b_hh` for all `T`), kept
//! for the backward pass; backward yields separate gradients for both sides (`dgates` for the
//! input side, `dgh` for the recurrent side) and `dWh = Hprevᵀ·dgh`.

use charrnn_kernels::gru_cell::{GruBackward, GruForward};
use charrnn_kernels::lstm_cell::{LstmBackward, LstmForward};
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::reduce::{add_assign, broadcast_rows, broadcast_rows_sum};
use charrnn_kernels::rnn_cell::{RnnBackward, RnnForward};
use charrnn_kernels::{Float, Kernel, Precision};

use crate::model::config::CellKind;
use crate::model::matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward, MatmulDims};
use crate::model::workspace::{CellActivations, LayerActivations};

/// Sizes of one layer's step.
#[derive(Clone, Copy, Debug)]
pub struct LayerDims {
    /// The cell.
    pub cell: CellKind,
    /// Rows `B`.
    pub batch: usize,
    /// Steps `T`.
    pub seq_len: usize,
    /// Input width.
    pub input: usize,
    /// State width `H`.
    pub hidden: usize,
    /// What the layer's products round their operands to.
    pub precision: Precision,
}

impl LayerDims {
    /// Gate width `G·H`.
    pub fn gates(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// Rows of the chunk, `T·B`.
    pub fn rows(&self) -> usize {
        self.batch * self.seq_len
    }

    /// The input projection `x·Wx` over all rows, as a product.
    pub fn input_product(&self) -> MatmulDims {
        MatmulDims { precision: self.precision, rows: self.rows(), input: self.input, output: self.gates() }
    }
}

/// `gates = x·Wx + b_ih (+ b_hh)` for all `T·B` rows of `x` (`[T·B, in]`). The recurrent bias
/// is folded in when given (LSTM, RNN: the cell only sees the sum); the GRU passes `None`
/// and adds it on the recurrent side (see [`recurrent_forward`]).
pub fn input_projection<F: Float>(
    dims: LayerDims,
    x: &[F],
    wx: &[F],
    bias_ih: &[F],
    bias_hh: Option<&[F]>,
    gates: &mut [F],
) {
    let (m, gh) = (dims.rows(), dims.gates());
    match bias_hh {
        Some(bias_hh) => broadcast_rows_sum(m, gh, bias_ih, bias_hh, gates),
        None => broadcast_rows(m, gh, bias_ih, gates),
    }
    matmul_forward(dims.input_product(), x, wx, gates);
}

/// The recurrence over `T` steps. On entry `act.gates` holds the input projections; `h0`/`c0`
/// are the carried-in state and receive the final state. Fills `act` for the backward pass.
/// `bias_hh` is used by the GRU only (the other cells have it folded into the input
/// projections). `packed_wh` is this layer's `Wh` (`[H, G·H]`), packed by the caller.
pub fn recurrent_forward<F: Float>(
    dims: LayerDims,
    bias_hh: &[F],
    act: &mut LayerActivations<F>,
    packed_wh: &PreparedMatrix<F>,
    h0: &mut [F],
    c0: Option<&mut [F]>,
) {
    let LayerDims { batch, seq_len, hidden, .. } = dims;
    let (gh, bh) = (dims.gates(), batch * hidden);
    debug_assert_eq!((packed_wh.k(), packed_wh.n()), (hidden, gh));
    act.h[..bh].copy_from_slice(h0);
    match (&mut act.cell, c0.as_deref()) {
        (CellActivations::Lstm { c }, Some(c0)) => c[..bh].copy_from_slice(c0),
        (CellActivations::Gru { gh: gh_slab }, _) => broadcast_rows(dims.rows(), gh, bias_hh, gh_slab),
        _ => {}
    }
    for t in 0..seq_len {
        let step = t * batch * gh..(t + 1) * batch * gh;
        let gates = &mut act.gates[step.clone()];
        let (h_past, h_future) = act.h.split_at_mut((t + 1) * bh);
        let h_prev = &h_past[t * bh..];
        let h_t = &mut h_future[..bh];
        // This step's recurrent product, accumulated onto the pre-activations (the GRU keeps
        // its recurrent side apart, in `gh`).
        let add_recurrent = |y: &mut [F]| {
            let w = packed_wh;
            PreparedProduct { m: batch, x: h_prev, ldx: hidden, w, accumulate: true, y, ldy: gh }.run()
        };
        match &mut act.cell {
            CellActivations::Lstm { c } => {
                add_recurrent(gates);
                let (c_past, c_future) = c.split_at_mut((t + 1) * bh);
                LstmForward { batch, hidden, gates, c_prev: &c_past[t * bh..], c: &mut c_future[..bh], h: h_t }.run();
            }
            CellActivations::Rnn => {
                add_recurrent(gates);
                RnnForward { pre: gates, h: h_t }.run();
            }
            CellActivations::Gru { gh: gh_slab } => {
                let gh_t = &mut gh_slab[step];
                add_recurrent(gh_t);
                GruForward { batch, hidden, gx: gates, gh: gh_t, h_prev, h: h_t }.run();
            }
        }
    }
    h0.copy_from_slice(&act.h[seq_len * bh..]);
    if let (CellActivations::Lstm { c }, Some(c0)) = (&act.cell, c0) {
        c0.copy_from_slice(&c[seq_len * bh..]);
    }
}

/// Scratch a layer's backward pass needs.
pub struct BackwardScratch<'a, F> {
    /// `[B, H]`.
    pub dh_next: &'a mut [F],
    /// `[B, H]`.
    pub dc_next: &'a mut [F],
}

/// The reverse recurrence over `T` steps. `d_out` (`[T·B, H]`) holds the gradient reaching the
/// layer's outputs and is used as scratch. Writes `dgates` (`[T·B, G·H]`, the gradient of the
/// pre-activations; the GRU: of the input projections) and, for the GRU, `dgh` (`[T·B, 3·H]`,
/// the gradient of the recurrent projections; `None` for the other cells). `wh_t` is the
/// layer's `Whᵀ` (`[G·H, H]`), packed by the caller. The gradient
/// reaching the carried-in state is dropped: truncated BPTT treats it as a constant.
///
/// # Panics
/// If the layer is a GRU's and `dgh` is `None`.
pub fn recurrent_backward<F: Float>(
    dims: LayerDims,
    wh_t: &PreparedMatrix<F>,
    act: &LayerActivations<F>,
    d_out: &mut [F],
    scratch: BackwardScratch<'_, F>,
    dgates: &mut [F],
    mut dgh: Option<&mut [F]>,
) {
    let LayerDims { batch, seq_len, hidden, .. } = dims;
    let (gh, bh) = (dims.gates(), batch * hidden);
    debug_assert_eq!((wh_t.k(), wh_t.n()), (gh, hidden));
    let BackwardScratch { dh_next, dc_next } = scratch;
    dh_next.fill(F::zero());
    dc_next.fill(F::zero());
    for t in (0..seq_len).rev() {
        let dh = &mut d_out[t * bh..(t + 1) * bh];
        add_assign(dh, dh_next);
        let step = t * batch * gh..(t + 1) * batch * gh;
        let dg = &mut dgates[step.clone()];
        match &act.cell {
            CellActivations::Lstm { c } => LstmBackward {
                batch,
                hidden,
                gates: &act.gates[step.clone()],
                c_prev: &c[t * bh..(t + 1) * bh],
                c: &c[(t + 1) * bh..(t + 2) * bh],
                dh,
                dc: dc_next,
                dgates: dg,
            }
            .run(),
            CellActivations::Rnn => RnnBackward { h: &act.h[(t + 1) * bh..(t + 2) * bh], dh, dpre: dg }.run(),
            CellActivations::Gru { gh: gh_slab } => {
                let dgh = dgh.as_deref_mut().expect("recurrent_backward: a GRU layer needs dgh");
                // Writes dh_next = dh ⊙ z (the direct path); dgh·Whᵀ is added below.
                GruBackward {
                    batch,
                    hidden,
                    act: &act.gates[step.clone()],
                    gh: &gh_slab[step.clone()],
                    h_prev: &act.h[t * bh..(t + 1) * bh],
                    dh,
                    dgx: dg,
                    dgh: &mut dgh[step.clone()],
                    dh_prev: dh_next,
                }
                .run();
            }
        }
        if t > 0 {
            // dh_next = dG_t·Whᵀ, where dG is the recurrent side's gradient: the GRU's own
            // `dgh`, added onto the direct path already in dh_next; the gates' otherwise.
            let (x, accumulate) = match dgh.as_deref() {
                Some(dgh) => (&dgh[step], true),
                None => (&dgates[step], false),
            };
            let w = wh_t;
            PreparedProduct { m: batch, x, ldx: gh, w, accumulate, y: dh_next, ldy: hidden }.run();
        }
    }
}

/// The recurrent weights' gradient over all `T` steps at once: `dwh += Hprevᵀ·dgates`, where
/// `Hprev` is rows `0..T·B` of the hidden-state slab (`h_{t-1}` for every `t`) and `dgates` is
/// the gradient of the recurrent side (for the GRU its own `dgh`).
pub fn recurrent_weight_gradient<F: Float>(dims: LayerDims, act: &LayerActivations<F>, dgates: &[F], dwh: &mut [F]) {
    let (m, gh, hidden) = (dims.rows(), dims.gates(), dims.hidden);
    let h_prev = &act.h[..m * hidden];
    let product = MatmulDims { precision: dims.precision, rows: m, input: hidden, output: gh };
    matmul_backward_weight(product, h_prev, dgates, dwh);
}

/// The input side of a layer's backward pass (layers above the first): accumulates
/// `dwx += xᵀ·dgates` and writes `d_x = dgates·Wxᵀ` (the gradient reaching the layer below).
pub fn input_projection_backward<F: Float>(
    dims: LayerDims,
    x: &[F],
    wx: &[F],
    dgates: &[F],
    dwx: &mut [F],
    d_x: &mut [F],
) {
    matmul_backward_weight(dims.input_product(), x, dgates, dwx);
    matmul_backward_input(dims.input_product(), dgates, wx, F::zero(), d_x);
}
