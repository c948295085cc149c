//! Embedding folded into layer 0's input projection.
//!
//! Layer 0 computes `gates = Emb[x]·Wx0 + b`. Since `x` is a symbol id, `Emb[x]·Wx0` is row `x`
//! of the `[V, G·H]` table `Emb·Wx0`: the forward pass gathers rows of that table (computed
//! once per batch, `O(V·E·G·H)`) instead of multiplying `T·B` embedded rows (`O(T·B·E·G·H)`).
//! Backward, the rows of `dgates` are scatter-added into a `[V, G·H]` table gradient `dTable`,
//! and then `dWx0 = Embᵀ·dTable` and `dEmb = dTable·Wx0ᵀ` are two small products. This is
//! mathematically the same as embedding then projecting; the gradient check proves it.
//!
//! The table holds `b_ih + b_hh` for the LSTM and RNN, but only `b_ih` for the GRU, whose
//! recurrent bias must stay on the recurrent side (`r ⊙ (h·W_hn + b_hn)`).

use charrnn_kernels::reduce::{add_assign, broadcast_rows, broadcast_rows_sum};
use charrnn_kernels::{Float, Precision};

use crate::model::matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward, MatmulDims};

/// Shapes of the embedding and layer 0's input weights.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingDims {
    /// Symbols `V`.
    pub vocab: usize,
    /// Embedding width `E`.
    pub embed: usize,
    /// Gate width `G·H`.
    pub gates: usize,
    /// What the products round their operands to.
    pub precision: Precision,
}

impl EmbeddingDims {
    /// The table as a product: `Emb[V, E]·Wx0[E, G·H]`.
    pub fn table_product(&self) -> MatmulDims {
        MatmulDims { precision: self.precision, rows: self.vocab, input: self.embed, output: self.gates }
    }
}

/// `table = Emb·Wx0 + b_ih (+ b_hh when given)` (`[V, G·H]`).
pub fn input_table_forward<F: Float>(
    d: EmbeddingDims,
    emb: &[F],
    wx0: &[F],
    bias_ih: &[F],
    bias_hh: Option<&[F]>,
    table: &mut [F],
) {
    match bias_hh {
        Some(bias_hh) => broadcast_rows_sum(d.vocab, d.gates, bias_ih, bias_hh, table),
        None => broadcast_rows(d.vocab, d.gates, bias_ih, table),
    }
    matmul_forward(d.table_product(), emb, wx0, table);
}

/// `gates[m] = table[ids[m]]`: layer 0's pre-activations before the recurrent term.
pub fn input_table_gather<F: Float>(gates_width: usize, table: &[F], ids: &[u32], gates: &mut [F]) {
    for (row, &id) in gates.chunks_exact_mut(gates_width).zip(ids) {
        let id = id as usize;
        row.copy_from_slice(&table[id * gates_width..(id + 1) * gates_width]);
    }
}

/// From layer 0's `dgates` (`[T·B, G·H]`): `d_table` (scratch, overwritten), then accumulates
/// `dWx0 += Embᵀ·dTable` and `dEmb += dTable·Wx0ᵀ`.
pub fn input_table_backward<F: Float>(
    d: EmbeddingDims,
    ids: &[u32],
    dgates: &[F],
    emb: &[F],
    wx0: &[F],
    d_table: &mut [F],
    d_wx0: &mut [F],
    d_emb: &mut [F],
) {
    d_table.fill(F::zero());
    for (row, &id) in dgates.chunks_exact(d.gates).zip(ids) {
        let id = id as usize;
        add_assign(&mut d_table[id * d.gates..(id + 1) * d.gates], row);
    }
    matmul_backward_weight(d.table_product(), emb, d_table, d_wx0);
    matmul_backward_input(d.table_product(), d_table, wx0, F::one(), d_emb);
}
