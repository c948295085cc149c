//! Every buffer a training step touches, allocated once from `(B, T, config)`.

use charrnn_kernels::{Float, Precision};

use crate::model::cell::RecurrentSide;
use crate::model::config::ModelConfig;
use crate::model::dropout::DropoutBuffers;
use crate::model::packed_weights::PackedWeights;

/// What stays valid while the weights do not change: passed to
/// [`crate::model::pass::forward_logits`], which packs the recurrent weights on its first call; the
/// folded input table in the workspace is then kept too. (Sampling has its own step,
/// [`crate::inference::step`]; its tests and the `sample_step` bench compare with this pass.)
#[derive(Clone, Debug)]
pub struct FrozenWeights<F> {
    /// Each layer's packed `Wh`.
    pub packed: PackedWeights<F>,
    /// Whether a pass has filled them (and the input table) yet.
    pub ready: bool,
}

impl<F: Float> FrozenWeights<F> {
    /// Room for the packed weights of `config` for passes of `batch` rows in `precision`.
    pub fn new(config: &ModelConfig, batch: usize, precision: Precision) -> FrozenWeights<F> {
        FrozenWeights { packed: PackedWeights::for_inference(config, batch, precision), ready: false }
    }
}

/// The recurrent state carried from one batch to the next (truncated BPTT): per layer, the
/// cell's state slabs ([`crate::model::cell::Cell::STATE`]: `h`, and the LSTM's `c`), each
/// `[batch, hidden]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<F> {
    /// `slabs[layer][slab]`, slab 0 being `h`.
    pub slabs: Vec<Vec<Vec<F>>>,
}

impl<F: Float> State<F> {
    /// The zero state for `batch` rows.
    pub fn zeros(config: &ModelConfig, batch: usize) -> State<F> {
        let layer = vec![vec![F::zero(); batch * config.hidden_size]; config.cell.state_names().len()];
        State { slabs: vec![layer; config.num_layers] }
    }

    /// Elements [`State::zeros`] allocates for `batch` rows (memory estimates).
    pub fn len(config: &ModelConfig, batch: usize) -> usize {
        config.num_layers * config.cell.state_names().len() * batch * config.hidden_size
    }

    /// Layer `l`'s hidden state `h`.
    pub fn h(&self, l: usize) -> &[F] {
        &self.slabs[l][0]
    }

    /// Every slab, layer after layer (two states of one model and batch pair up).
    pub fn all(&self) -> impl Iterator<Item = &Vec<F>> {
        self.slabs.iter().flatten()
    }

    /// Every slab, layer after layer, to write.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Vec<F>> {
        self.slabs.iter_mut().flatten()
    }

    /// Resets to zero in place (at an epoch start), without allocating.
    pub fn reset(&mut self) {
        for v in self.all_mut() {
            v.fill(F::zero());
        }
    }

    /// Resets row `r` to zero in every slab (`hidden`: the model's width, a row's length).
    pub fn reset_row(&mut self, r: usize, hidden: usize) {
        for slab in self.all_mut() {
            slab[r * hidden..(r + 1) * hidden].fill(F::zero());
        }
    }
}

/// Activations one recurrent layer keeps for its backward pass.
#[derive(Clone, Debug)]
pub struct LayerActivations<F> {
    /// Post-activation gates, `[T·B, G·H]` (the GRU: `r, z, n`; on entry to the recurrence,
    /// the input projections).
    pub gates: Vec<F>,
    /// Hidden states `[(T+1)·B, H]`: slot 0 holds the carried-in state, slot `t+1` the output
    /// at step `t`. So rows `0..T·B` are `h_{t-1}` and rows `B..(T+1)·B` are `h_t`, and both
    /// weight gradients are single products over all `T`.
    pub h: Vec<F>,
    /// The cell's other state slabs (the LSTM's `c`; none for the RNN and the GRU), each laid
    /// out as `h`.
    pub cell_state: Vec<Vec<F>>,
    /// The recurrent side `h_{t-1}·Wh + b_hh` of every step, `[T·B, G·H]`, for a cell that
    /// keeps it apart ([`RecurrentSide::Apart`], the GRU); empty otherwise.
    pub recurrent: Vec<F>,
}

impl<F: Float> LayerActivations<F> {
    /// Zeroed room for one layer of `config` over `batch` rows of `seq_len` steps.
    pub(crate) fn zeros(config: &ModelConfig, batch: usize, seq_len: usize) -> LayerActivations<F> {
        let [gates, h, cell_state, recurrent] = Self::lens(config, batch, seq_len);
        LayerActivations {
            gates: vec![F::zero(); gates],
            h: vec![F::zero(); h],
            cell_state: vec![vec![F::zero(); h]; cell_state / h.max(1)],
            recurrent: vec![F::zero(); recurrent],
        }
    }

    /// Elements [`LayerActivations::zeros`] allocates.
    fn len(config: &ModelConfig, batch: usize, seq_len: usize) -> usize {
        Self::lens(config, batch, seq_len).iter().sum()
    }

    /// Elements of `gates`, `h`, all of `cell_state`, and `recurrent`.
    fn lens(config: &ModelConfig, batch: usize, seq_len: usize) -> [usize; 4] {
        let (m, gh) = (batch * seq_len, config.cell.gates() * config.hidden_size);
        let slab = (seq_len + 1) * batch * config.hidden_size;
        let recurrent = if config.cell.recurrent_side() == RecurrentSide::Apart { m * gh } else { 0 };
        [m * gh, slab, (config.cell.state_names().len() - 1) * slab, recurrent]
    }
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
    /// Layer 0's folded input table `Emb·Wx0 + b` (`[V, G·H]`).
    pub input_table: Vec<F>,
    /// Its gradient (`[V, G·H]`).
    pub d_input_table: Vec<F>,
    /// One entry per layer.
    pub layers: Vec<LayerActivations<F>>,
    /// Logits `[T·B, V]`.
    pub logits: Vec<F>,
    /// Gradient of the mean loss with respect to the logits `[T·B, V]`.
    pub dlogits: Vec<F>,
    /// Gradient reaching the current layer's outputs `[T·B, H]`.
    pub d_output: Vec<F>,
    /// Gradient the current layer sends to the layer below `[T·B, H]`.
    pub d_input: Vec<F>,
    /// Gradient with respect to the pre-activation gates `[T·B, G·H]` (the GRU: with respect to
    /// the input projections `x·Wx + b_ih`).
    pub dgates: Vec<F>,
    /// Gradient with respect to the recurrent side `h_{t-1}·Wh + b_hh`, `[T·B, G·H]`, for a
    /// cell that keeps it apart ([`RecurrentSide::Apart`], the GRU); empty otherwise.
    pub d_recurrent: Vec<F>,
    /// Gradient reaching `h_{t-1}` through the recurrence `[B, H]`.
    pub dh_next: Vec<F>,
    /// Gradient reaching the cell's other state slabs before a step (the LSTM's `c_{t-1}`),
    /// `[B, H]` each; empty for the RNN and the GRU.
    pub d_carried: Vec<F>,
    /// What every product of a pass over this workspace rounds its operands to (the packed
    /// recurrent weights a pass is given must agree).
    precision: Precision,
    /// Per layer's output (`num_layers` of them: the boundaries between layers, then the last
    /// layer's output): the mask and the dropped outputs. Empty until
    /// [`Workspace::reserve_dropout`] (or the first pass with dropout) allocates them.
    pub dropout_buffers: Vec<DropoutBuffers<F>>,
}

impl<F: Float> Workspace<F> {
    /// What every product of a pass over this workspace rounds its operands to.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Allocates every buffer for `batch` rows of `seq_len` steps, for `f32` products.
    pub fn new(config: &ModelConfig, batch: usize, seq_len: usize) -> Workspace<F> {
        Self::with_precision(config, batch, seq_len, Precision::F32)
    }

    /// Allocates every buffer for `batch` rows of `seq_len` steps, for products in `precision`.
    pub fn with_precision(config: &ModelConfig, batch: usize, seq_len: usize, precision: Precision) -> Workspace<F> {
        Self::allocate(config, batch, seq_len, precision, true)
    }

    /// The buffers of forward passes only (scoring a text, [`crate::evaluation`]): those of
    /// the backward pass are left empty, and a backward pass over it panics.
    pub fn for_forward(config: &ModelConfig, batch: usize, seq_len: usize, precision: Precision) -> Workspace<F> {
        Self::allocate(config, batch, seq_len, precision, false)
    }

    fn allocate(
        config: &ModelConfig,
        batch: usize,
        seq_len: usize,
        precision: Precision,
        backward: bool,
    ) -> Workspace<F> {
        let m = batch * seq_len;
        let h = config.hidden_size;
        let gh = config.cell.gates() * h;
        let [apart, carried] = Self::cell_scratch(config);
        let layer = LayerActivations::zeros(config, batch, seq_len);
        // A backward buffer of `n` elements, or an empty one.
        let grad = |n: usize| vec![F::zero(); if backward { n } else { 0 }];
        Workspace {
            batch,
            seq_len,
            inputs: vec![0; m],
            targets: vec![0; m],
            input_table: vec![F::zero(); config.vocab_size * gh],
            d_input_table: grad(config.vocab_size * gh),
            layers: vec![layer; config.num_layers],
            logits: vec![F::zero(); m * config.vocab_size],
            dlogits: grad(m * config.vocab_size),
            d_output: grad(m * h),
            d_input: grad(m * h),
            dgates: grad(m * gh),
            d_recurrent: grad(apart * m * gh),
            dh_next: grad(batch * h),
            d_carried: grad(carried * batch * h),
            precision,
            dropout_buffers: Vec::new(),
        }
    }

    /// Elements of `F` and of `u32` that [`Workspace::new`] allocates for these sizes, plus
    /// what [`Workspace::reserve_dropout`] adds when `dropout`. The memory estimate
    /// ([`crate::training::memory`]) counts on it; `engine/tests/memory_estimate.rs` checks it against
    /// a counting allocator, so a new buffer in `new` that is not counted here fails a test.
    pub fn allocation(config: &ModelConfig, batch: usize, seq_len: usize, dropout: bool) -> (usize, usize) {
        let m = batch * seq_len;
        let (h, v, layers) = (config.hidden_size, config.vocab_size, config.num_layers);
        let gh = config.cell.gates() * h;
        let [apart, carried] = Self::cell_scratch(config);
        let per_layer = LayerActivations::<F>::len(config, batch, seq_len);
        let dropout_buffers = if dropout { layers * 2 * m * h } else { 0 };
        let floats = 2 * v * gh
            + layers * per_layer
            + 2 * m * v
            + 2 * m * h
            + m * gh
            + apart * m * gh
            + (1 + carried) * batch * h
            + dropout_buffers;
        (floats, 2 * m)
    }

    /// How many `[T·B, G·H]` gradients of a recurrent side apart (0 or 1) and `[B, H]`
    /// gradients of other state slabs the cell's backward pass needs.
    fn cell_scratch(config: &ModelConfig) -> [usize; 2] {
        let apart = usize::from(config.cell.recurrent_side() == RecurrentSide::Apart);
        [apart, config.cell.state_names().len() - 1]
    }

    /// Allocates the dropout masks and dropped outputs (`[T·B, H]` each, per layer's output),
    /// unless already there. A trainer with dropout calls it up front, so that no training step
    /// allocates.
    pub fn reserve_dropout(&mut self, config: &ModelConfig) {
        let n = self.rows() * config.hidden_size;
        let boundaries = config.num_layers;
        if self.dropout_buffers.len() != boundaries || self.dropout_buffers.iter().any(|b| b.mask.len() != n) {
            self.dropout_buffers = (0..boundaries)
                .map(|_| DropoutBuffers { mask: vec![F::zero(); n], dropped: vec![F::zero(); n] })
                .collect();
        }
    }

    /// Rows of every activation matrix, `T·B`.
    pub fn rows(&self) -> usize {
        self.batch * self.seq_len
    }
}
