//! One stacked recurrent layer over a chunk of `T` steps: forward and backward.
//!
//! Forward: the input projection for all `T` steps is one GEMM `[T·B, in]·[in, G·H]` (plus
//! bias); then per step only `h_{t-1}·Wh` and the fused cell. Backward runs time in reverse,
//! per step only the fused cell backward and `dgates_t·Whᵀ`; the weight gradients are single
//! GEMMs over all `T` afterwards.

use charrnn_kernels::gemm::{gemm, Op};
use charrnn_kernels::lstm_cell::{lstm_cell_backward, lstm_cell_forward};
use charrnn_kernels::reduce::{broadcast_rows_sum, col_sums_accumulate};
use charrnn_kernels::rnn_cell::{rnn_cell_backward, rnn_cell_forward};
use charrnn_kernels::Float;

use crate::config::CellKind;
use crate::workspace::LayerActivations;

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
}

impl LayerDims {
    fn gates(&self) -> usize {
        self.cell.gates() * self.hidden
    }
}

/// Forward over `T` steps. `x` is `[T·B, in]`; `h0`/`c0` are the carried-in state and receive
/// the final state. Fills `act` for the backward pass.
pub fn recurrent_forward<F: Float>(
    dims: LayerDims,
    x: &[F],
    wx: &[F],
    wh: &[F],
    bias_ih: &[F],
    bias_hh: &[F],
    act: &mut LayerActivations<F>,
    h0: &mut [F],
    c0: &mut [F],
) {
    let LayerDims {
        cell,
        batch,
        seq_len,
        input,
        hidden,
    } = dims;
    let (m, gh, bh) = (batch * seq_len, dims.gates(), batch * hidden);
    broadcast_rows_sum(m, gh, bias_ih, bias_hh, &mut act.gates);
    gemm(
        Op::N,
        Op::N,
        m,
        gh,
        input,
        F::one(),
        x,
        input,
        wx,
        gh,
        F::one(),
        &mut act.gates,
        gh,
    );
    act.h[..bh].copy_from_slice(h0);
    if cell == CellKind::Lstm {
        act.c[..bh].copy_from_slice(c0);
    }
    for t in 0..seq_len {
        let gates = &mut act.gates[t * batch * gh..(t + 1) * batch * gh];
        let (h_past, h_future) = act.h.split_at_mut((t + 1) * bh);
        let h_prev = &h_past[t * bh..];
        let h_t = &mut h_future[..bh];
        gemm(
            Op::N,
            Op::N,
            batch,
            gh,
            hidden,
            F::one(),
            h_prev,
            hidden,
            wh,
            gh,
            F::one(),
            gates,
            gh,
        );
        match cell {
            CellKind::Lstm => {
                let (c_past, c_future) = act.c.split_at_mut((t + 1) * bh);
                lstm_cell_forward(
                    batch,
                    hidden,
                    gates,
                    &c_past[t * bh..],
                    &mut c_future[..bh],
                    h_t,
                );
            }
            CellKind::Rnn => rnn_cell_forward(gates, h_t),
        }
    }
    h0.copy_from_slice(&act.h[seq_len * bh..]);
    if cell == CellKind::Lstm {
        c0.copy_from_slice(&act.c[seq_len * bh..]);
    }
}

/// Scratch a layer's backward pass needs.
pub struct BackwardScratch<'a, F> {
    /// `[T·B, G·H]`.
    pub dgates: &'a mut [F],
    /// `[B, H]`.
    pub dh_next: &'a mut [F],
    /// `[B, H]`.
    pub dc_next: &'a mut [F],
}

/// Backward over `T` steps. `d_out` (`[T·B, H]`) holds the gradient reaching the layer's
/// outputs and is used as scratch. Accumulates into `dwx`, `dwh`, `dbias`; writes `d_x`
/// (`[T·B, in]`), the gradient reaching the inputs. The gradient reaching the carried-in state
/// is dropped: truncated BPTT treats it as a constant.
pub fn recurrent_backward<F: Float>(
    dims: LayerDims,
    x: &[F],
    wx: &[F],
    wh: &[F],
    act: &LayerActivations<F>,
    d_out: &mut [F],
    scratch: BackwardScratch<'_, F>,
    dwx: &mut [F],
    dwh: &mut [F],
    dbias: &mut [F],
    d_x: &mut [F],
) {
    let LayerDims {
        cell,
        batch,
        seq_len,
        input,
        hidden,
    } = dims;
    let (m, gh, bh) = (batch * seq_len, dims.gates(), batch * hidden);
    let BackwardScratch {
        dgates,
        dh_next,
        dc_next,
    } = scratch;
    dh_next.fill(F::zero());
    dc_next.fill(F::zero());
    for t in (0..seq_len).rev() {
        let dh = &mut d_out[t * bh..(t + 1) * bh];
        charrnn_kernels::reduce::add_assign(dh, dh_next);
        let dg = &mut dgates[t * batch * gh..(t + 1) * batch * gh];
        match cell {
            CellKind::Lstm => lstm_cell_backward(
                batch,
                hidden,
                &act.gates[t * batch * gh..(t + 1) * batch * gh],
                &act.c[t * bh..(t + 1) * bh],
                &act.c[(t + 1) * bh..(t + 2) * bh],
                dh,
                dc_next,
                dg,
            ),
            CellKind::Rnn => rnn_cell_backward(&act.h[(t + 1) * bh..(t + 2) * bh], dh, dg),
        }
        if t > 0 {
            gemm(
                Op::N,
                Op::T,
                batch,
                hidden,
                gh,
                F::one(),
                dg,
                gh,
                wh,
                gh,
                F::zero(),
                dh_next,
                hidden,
            );
        }
    }
    let h_prev = &act.h[..m * hidden];
    gemm(
        Op::T,
        Op::N,
        hidden,
        gh,
        m,
        F::one(),
        h_prev,
        hidden,
        dgates,
        gh,
        F::one(),
        dwh,
        gh,
    );
    gemm(
        Op::T,
        Op::N,
        input,
        gh,
        m,
        F::one(),
        x,
        input,
        dgates,
        gh,
        F::one(),
        dwx,
        gh,
    );
    col_sums_accumulate(m, gh, dgates, dbias);
    gemm(
        Op::N,
        Op::T,
        m,
        input,
        gh,
        F::one(),
        dgates,
        gh,
        wx,
        gh,
        F::zero(),
        d_x,
        input,
    );
}
