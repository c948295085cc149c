//! One stacked recurrent layer over a chunk of `T` steps: forward and backward.
//!
//! The input projection for all `T` steps is done before the recurrence, as one GEMM
//! `[T·B, in]·[in, G·H]` plus bias ([`input_projection`]; layer 0 gathers rows of a folded
//! table instead, see [`crate::model::embedding`]). Then per step only `h_{t-1}·Wh` (with `Wh` packed
//! once for all `T` steps) and the fused cell. Backward runs time in reverse, per step only the
//! fused cell backward and `dgates_t·Whᵀ` (`Whᵀ` packed once); the weight gradients are single
//! GEMMs over all `T` afterwards.
//!
//! The cell's step is its own ([`crate::model::cell`]); this layer is generic over it and owns
//! the loop over time and the products. A cell whose recurrent side is apart
//! ([`RecurrentSide::Apart`]: the GRU, whose recurrent bias `b_hn` sits inside
//! `r ⊙ (h·W_hn + b_hn)`, so the recurrent side cannot be added into the input projections)
//! gets `h_{t-1}·Wh` per step in its own row block of the `recurrent` slab (pre-filled with
//! `b_hh` for all `T`), kept for the backward pass; backward yields separate gradients for
//! both sides (`dgates` for the input side, `d_recurrent` for the recurrent side) and
//! `dWh = Hprevᵀ·d_recurrent`.

use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::reduce::{add_assign, broadcast_rows, broadcast_rows_sum};
use charrnn_kernels::{Float, Kernel, Precision};

use crate::model::cell::{BackwardStep, Cell, CellKind, ForwardStep, RecurrentSide, SlabArray};
use crate::model::config::ModelConfig;
use crate::model::matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward, MatmulDims};
use crate::model::workspace::LayerActivations;

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
    /// Layer `layer` of `config` over `batch` rows of `seq_len` steps, its products in
    /// `precision`.
    pub fn of(config: &ModelConfig, layer: usize, batch: usize, seq_len: usize, precision: Precision) -> LayerDims {
        let (cell, input, hidden) = (config.cell, config.layer_input_size(layer), config.hidden_size);
        LayerDims { cell, batch, seq_len, input, hidden, precision }
    }

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
/// is folded in when given (a [`RecurrentSide::Summed`] cell only sees the sum); a cell whose
/// recurrent side is apart passes `None` and gets it there (see [`recurrent_forward`]).
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

/// The recurrence over `T` steps of cell `C`. On entry `act.gates` holds the input
/// projections; `state` (this layer's slabs) is the carried-in state and receives the final
/// state. Fills `act` for the backward pass. `bias_hh` is used by a cell whose recurrent side
/// is apart (the others have it folded into the input projections). `packed_wh` is this
/// layer's `Wh` (`[H, G·H]`), packed by the caller.
pub fn recurrent_forward<C: Cell, F: Float>(
    dims: LayerDims,
    bias_hh: &[F],
    act: &mut LayerActivations<F>,
    packed_wh: &PreparedMatrix<F>,
    state: &mut [Vec<F>],
) {
    let LayerDims { batch, seq_len, hidden, .. } = dims;
    let (gh, bh) = (dims.gates(), batch * hidden);
    debug_assert_eq!((packed_wh.k(), packed_wh.n()), (hidden, gh));
    for (slab, carried) in std::iter::once(&mut act.h).chain(&mut act.cell_state).zip(&*state) {
        slab[..bh].copy_from_slice(carried);
    }
    if C::RECURRENT == RecurrentSide::Apart {
        broadcast_rows(dims.rows(), gh, bias_hh, &mut act.recurrent);
    }
    for t in 0..seq_len {
        let step = t * batch * gh..(t + 1) * batch * gh;
        let gates = &mut act.gates[step.clone()];
        // Each slab's rows before the step (`t`) and after it (`t + 1`).
        let slabs = std::iter::once(&mut act.h).chain(&mut act.cell_state).map(|slab| {
            let (past, future) = slab.split_at_mut((t + 1) * bh);
            (&past[t * bh..], &mut future[..bh])
        });
        let state = C::Slabs::from_slabs(slabs);
        let h_prev = state.as_ref()[0].0;
        // This step's recurrent product, accumulated onto the pre-activations or apart.
        let add_recurrent = |y: &mut [F]| {
            let w = packed_wh;
            PreparedProduct { m: batch, x: h_prev, ldx: hidden, w, accumulate: true, y, ldy: gh }.run()
        };
        let recurrent: &[F] = match C::RECURRENT {
            RecurrentSide::Summed => {
                add_recurrent(gates);
                &[]
            }
            RecurrentSide::Apart => {
                let recurrent = &mut act.recurrent[step];
                add_recurrent(recurrent);
                recurrent
            }
        };
        C::forward(ForwardStep { rows: batch, hidden, gates, recurrent, state });
    }
    for (carried, slab) in state.iter_mut().zip(std::iter::once(&act.h).chain(&act.cell_state)) {
        carried.copy_from_slice(&slab[seq_len * bh..]);
    }
}

/// Scratch a layer's backward pass needs.
pub struct BackwardScratch<'a, F> {
    /// `[B, H]`.
    pub dh_next: &'a mut [F],
    /// `[B, H]` per state slab after `h`.
    pub d_carried: &'a mut [F],
}

/// The reverse recurrence over `T` steps of cell `C`. `d_out` (`[T·B, H]`) holds the gradient
/// reaching the layer's outputs and is used as scratch. Writes `dgates` (`[T·B, G·H]`, the
/// gradient of the pre-activations; with the recurrent side apart, of the input projections)
/// and, with the recurrent side apart, `d_recurrent` (`[T·B, G·H]`, the gradient of the
/// recurrent side; empty otherwise). `wh_t` is the layer's `Whᵀ` (`[G·H, H]`), packed by the
/// caller. The gradient reaching the carried-in state is dropped: truncated BPTT treats it as
/// a constant.
pub fn recurrent_backward<C: Cell, F: Float>(
    dims: LayerDims,
    wh_t: &PreparedMatrix<F>,
    act: &LayerActivations<F>,
    d_out: &mut [F],
    scratch: BackwardScratch<'_, F>,
    dgates: &mut [F],
    d_recurrent: &mut [F],
) {
    let LayerDims { batch, seq_len, hidden, .. } = dims;
    let (gh, bh) = (dims.gates(), batch * hidden);
    debug_assert_eq!((wh_t.k(), wh_t.n()), (gh, hidden));
    let BackwardScratch { dh_next, d_carried } = scratch;
    dh_next.fill(F::zero());
    d_carried.fill(F::zero());
    let apart = C::RECURRENT == RecurrentSide::Apart;
    for t in (0..seq_len).rev() {
        let dh = &mut d_out[t * bh..(t + 1) * bh];
        add_assign(dh, dh_next);
        let step = t * batch * gh..(t + 1) * batch * gh;
        let slabs = std::iter::once(&act.h)
            .chain(&act.cell_state)
            .map(|slab| (&slab[t * bh..(t + 1) * bh], &slab[(t + 1) * bh..(t + 2) * bh]));
        let state = C::Slabs::from_slabs(slabs);
        let (recurrent, drecurrent): (&[F], &mut [F]) = match apart {
            true => (&act.recurrent[step.clone()], &mut d_recurrent[step.clone()]),
            false => (&[], &mut []),
        };
        C::backward(BackwardStep {
            rows: batch,
            hidden,
            gates: &act.gates[step.clone()],
            recurrent,
            state,
            dh,
            d_carried: &mut *d_carried,
            dgates: &mut dgates[step.clone()],
            drecurrent,
            dh_prev: &mut *dh_next,
        });
        if t > 0 {
            // dh_next = dG_t·Whᵀ, where dG is the recurrent side's gradient: its own when it
            // is apart, added onto the direct path the cell wrote into dh_next; the gates'
            // otherwise.
            let (x, accumulate) = match apart {
                true => (&d_recurrent[step], true),
                false => (&dgates[step], false),
            };
            let w = wh_t;
            PreparedProduct { m: batch, x, ldx: gh, w, accumulate, y: dh_next, ldy: hidden }.run();
        }
    }
}

/// The recurrent weights' gradient over all `T` steps at once: `dwh += Hprevᵀ·dgates`, where
/// `Hprev` is rows `0..T·B` of the hidden-state slab (`h_{t-1}` for every `t`) and `dgates` is
/// the gradient of the recurrent side (when apart, its own `d_recurrent`).
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
