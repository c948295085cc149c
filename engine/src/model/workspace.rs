//! Every buffer a training step touches, allocated once from `(B, T, config)`.

use charrnn_kernels::{Float, Precision};

use crate::model::config::{CellKind, ModelConfig};
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

/// The recurrent state carried from one batch to the next (truncated BPTT): per layer, `h`
/// and (LSTM only) `c`, each `[batch, hidden]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<F> {
    /// Hidden state per layer.
    pub h: Vec<Vec<F>>,
    /// Cell state per layer: LSTM only (`None` for the RNN and the GRU, which have none).
    pub c: Option<Vec<Vec<F>>>,
}

impl<F: Float> State<F> {
    /// The zero state for `batch` rows.
    pub fn zeros(config: &ModelConfig, batch: usize) -> State<F> {
        let n = batch * config.hidden_size;
        let layers = || vec![vec![F::zero(); n]; config.num_layers];
        State { h: layers(), c: (config.cell == CellKind::Lstm).then(layers) }
    }

    /// Elements [`State::zeros`] allocates for `batch` rows (memory estimates).
    pub fn len(config: &ModelConfig, batch: usize) -> usize {
        let n = batch * config.hidden_size;
        config.num_layers * if config.cell == CellKind::Lstm { 2 * n } else { n }
    }

    /// Resets to zero in place (at an epoch start), without allocating.
    pub fn reset(&mut self) {
        for v in self.h.iter_mut().chain(self.c.iter_mut().flatten()) {
            v.fill(F::zero());
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
    /// What this cell keeps besides.
    pub cell: CellActivations<F>,
}

/// What a layer keeps for its backward pass besides its gates and `h`: one variant per cell,
/// so that a cell without a buffer has none (rather than an empty one).
#[derive(Clone, Debug)]
pub enum CellActivations<F> {
    /// The vanilla RNN keeps nothing more.
    Rnn,
    /// The LSTM's cell states, laid out as `h`: `[(T+1)·B, H]`, slot 0 the carried-in state.
    Lstm {
        /// Cell states.
        c: Vec<F>,
    },
    /// The GRU's recurrent projections `h_{t-1}·Wh + b_hh` of every step, `[T·B, 3·H]`, kept
    /// apart from the input side because `b_hn` sits inside `r ⊙ (…)`.
    Gru {
        /// Recurrent projections.
        gh: Vec<F>,
    },
}

impl<F: Float> LayerActivations<F> {
    /// Zeroed room for one layer of `config` over `batch` rows of `seq_len` steps.
    fn zeros(config: &ModelConfig, batch: usize, seq_len: usize) -> LayerActivations<F> {
        let (m, h, gh) = (batch * seq_len, config.hidden_size, config.cell.gates() * config.hidden_size);
        let slab = (seq_len + 1) * batch * h;
        let cell = match config.cell {
            CellKind::Rnn => CellActivations::Rnn,
            CellKind::Lstm => CellActivations::Lstm { c: vec![F::zero(); slab] },
            CellKind::Gru => CellActivations::Gru { gh: vec![F::zero(); m * gh] },
        };
        LayerActivations { gates: vec![F::zero(); m * gh], h: vec![F::zero(); slab], cell }
    }

    /// Elements [`LayerActivations::zeros`] allocates.
    fn len(config: &ModelConfig, batch: usize, seq_len: usize) -> usize {
        let (m, h, gh) = (batch * seq_len, config.hidden_size, config.cell.gates() * config.hidden_size);
        let slab = (seq_len + 1) * batch * h;
        let cell = match config.cell {
            CellKind::Rnn => 0,
            CellKind::Lstm => slab,
            CellKind::Gru => m * gh,
        };
        m * gh + slab + cell
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
    /// GRU only: gradient with respect to the recurrent projections `h_{t-1}·Wh + b_hh`,
    /// `[T·B, 3·H]`.
    pub dgh: Option<Vec<F>>,
    /// Gradient reaching `h_{t-1}` through the recurrence `[B, H]`.
    pub dh_next: Vec<F>,
    /// Gradient reaching `c_{t-1}` `[B, H]` (LSTM).
    pub dc_next: Vec<F>,
    /// What every product of a pass over this workspace rounds its operands to (the packed
    /// recurrent weights a pass is given must agree).
    precision: Precision,
    /// Per layer boundary (`num_layers − 1` of them): the mask and the dropped outputs. Empty
    /// until [`Workspace::reserve_dropout`] (or the first pass with dropout) allocates them.
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
        let gru = config.cell == CellKind::Gru;
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
            dgh: (gru && backward).then(|| grad(m * gh)),
            dh_next: grad(batch * h),
            dc_next: grad(batch * h),
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
        let gru = usize::from(config.cell == CellKind::Gru);
        let per_layer = LayerActivations::<F>::len(config, batch, seq_len);
        let dropout_buffers = if dropout { layers.saturating_sub(1) * 2 * m * h } else { 0 };
        let floats = 2 * v * gh
            + layers * per_layer
            + 2 * m * v
            + 2 * m * h
            + m * gh
            + gru * m * gh
            + 2 * batch * h
            + dropout_buffers;
        (floats, 2 * m)
    }

    /// Allocates the dropout masks and dropped outputs (`[T·B, H]` each, per layer boundary),
    /// unless already there. A trainer with dropout calls it up front, so that no training step
    /// allocates.
    pub fn reserve_dropout(&mut self, config: &ModelConfig) {
        let n = self.rows() * config.hidden_size;
        let boundaries = config.num_layers.saturating_sub(1);
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
