//! Every buffer a training step touches, allocated once from `(B, T, config)`.

use charrnn_kernels::Float;

use crate::config::{CellKind, ModelConfig};

/// The recurrent state carried from one batch to the next (truncated BPTT): per layer, `h`
/// and (LSTM only) `c`, each `[batch, hidden]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<F> {
    /// Hidden state per layer.
    pub h: Vec<Vec<F>>,
    /// Cell state per layer (empty vectors for the vanilla RNN).
    pub c: Vec<Vec<F>>,
}

impl<F: Float> State<F> {
    /// The zero state for `batch` rows.
    pub fn zeros(config: &ModelConfig, batch: usize) -> State<F> {
        let n = batch * config.hidden_size;
        let c_len = if config.cell == CellKind::Lstm { n } else { 0 };
        State {
            h: vec![vec![F::zero(); n]; config.num_layers],
            c: vec![vec![F::zero(); c_len]; config.num_layers],
        }
    }

    /// Resets to zero in place (at an epoch start), without allocating.
    pub fn reset(&mut self) {
        for v in self.h.iter_mut().chain(self.c.iter_mut()) {
            v.fill(F::zero());
        }
    }
}

/// Activations one recurrent layer keeps for its backward pass.
#[derive(Clone, Debug)]
pub struct LayerActivations<F> {
    /// Post-activation gates, `[T·B, G·H]`.
    pub gates: Vec<F>,
    /// Hidden states `[(T+1)·B, H]`: slot 0 holds the carried-in state, slot `t+1` the output
    /// at step `t`. So rows `0..T·B` are `h_{t-1}` and rows `B..(T+1)·B` are `h_t`, and both
    /// weight gradients are single products over all `T`.
    pub h: Vec<F>,
    /// Cell states, same layout as `h` (LSTM only; empty otherwise).
    pub c: Vec<F>,
}

/// All activations, gradients of activations and scratch for one `(batch, seq_len)`.
#[derive(Clone, Debug)]
pub struct Workspace<F> {
    /// Rows per batch `B`.
    pub batch: usize,
    /// Time steps per batch `T`.
    pub seq_len: usize,
    /// Input ids, time-major `[T, B]`.
    pub inputs: Vec<u32>,
    /// Target ids, time-major `[T, B]`.
    pub targets: Vec<u32>,
    /// Embedded inputs `[T·B, E]`.
    pub embedded: Vec<F>,
    /// One entry per layer.
    pub layers: Vec<LayerActivations<F>>,
    /// Logits `[T·B, V]`.
    pub logits: Vec<F>,
    /// Gradient of the mean loss with respect to the logits `[T·B, V]`.
    pub dlogits: Vec<F>,
    /// Gradient reaching the current layer's outputs `[T·B, max(E, H)]`.
    pub d_output: Vec<F>,
    /// Gradient the current layer sends to its inputs `[T·B, max(E, H)]`.
    pub d_input: Vec<F>,
    /// Gradient with respect to the pre-activation gates `[T·B, G·H]`.
    pub dgates: Vec<F>,
    /// Gradient reaching `h_{t-1}` through the recurrence `[B, H]`.
    pub dh_next: Vec<F>,
    /// Gradient reaching `c_{t-1}` `[B, H]` (LSTM).
    pub dc_next: Vec<F>,
}

impl<F: Float> Workspace<F> {
    /// Allocates every buffer for `batch` rows of `seq_len` steps.
    pub fn new(config: &ModelConfig, batch: usize, seq_len: usize) -> Workspace<F> {
        let m = batch * seq_len;
        let h = config.hidden_size;
        let gh = config.cell.gates() * h;
        let slab = (seq_len + 1) * batch * h;
        let widest = config.embed_size.max(h);
        let layer = LayerActivations {
            gates: vec![F::zero(); m * gh],
            h: vec![F::zero(); slab],
            c: vec![
                F::zero();
                if config.cell == CellKind::Lstm {
                    slab
                } else {
                    0
                }
            ],
        };
        Workspace {
            batch,
            seq_len,
            inputs: vec![0; m],
            targets: vec![0; m],
            embedded: vec![F::zero(); m * config.embed_size],
            layers: vec![layer; config.num_layers],
            logits: vec![F::zero(); m * config.vocab_size],
            dlogits: vec![F::zero(); m * config.vocab_size],
            d_output: vec![F::zero(); m * widest],
            d_input: vec![F::zero(); m * widest],
            dgates: vec![F::zero(); m * gh],
            dh_next: vec![F::zero(); batch * h],
            dc_next: vec![F::zero(); batch * h],
        }
    }

    /// Rows of every activation matrix, `T·B`.
    pub fn rows(&self) -> usize {
        self.batch * self.seq_len
    }
}
