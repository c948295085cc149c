//! One thread's share of a scoring: a forward-only workspace of `rows` rows × `chunk` steps,
//! its carried state, and the loss of each of its positions.

use charrnn_kernels::softmax_xent::SoftmaxXentRows;
use charrnn_kernels::{Float, Kernel, Precision};

use crate::evaluation::error::ScoreError;
use crate::model::config::ModelConfig;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;
use crate::model::pass::forward_logits_packed;
use crate::model::phase_times::PhaseTimes;
use crate::model::workspace::{State, Workspace};

/// Buffers for scoring chunks of `chunk` steps over `rows` rows, allocated once.
pub(crate) struct ScoringPart<F> {
    workspace: Workspace<F>,
    state: State<F>,
    /// Each position's negative log-likelihood, time-major `[chunk, rows]` as the workspace.
    losses: Vec<f64>,
    /// Whether the workspace's folded input table is that of the weights already.
    table_ready: bool,
    times: PhaseTimes,
}

impl<F: Float> ScoringPart<F> {
    pub(crate) fn new(config: &ModelConfig, rows: usize, chunk: usize, precision: Precision) -> ScoringPart<F> {
        ScoringPart {
            workspace: Workspace::for_forward(config, rows, chunk, precision),
            state: State::zeros(config, rows),
            losses: vec![0.0; rows * chunk],
            table_ready: false,
            times: PhaseTimes::default(),
        }
    }

    /// Rows `B` of a chunk.
    pub(crate) fn rows(&self) -> usize {
        self.workspace.batch
    }

    /// Steps `T` of a chunk.
    pub(crate) fn chunk(&self) -> usize {
        self.workspace.seq_len
    }

    /// The next chunk's inputs and targets, time-major `[T, B]`.
    pub(crate) fn batch_mut(&mut self) -> (&mut [u32], &mut [u32]) {
        (&mut self.workspace.inputs, &mut self.workspace.targets)
    }

    /// Back to the zero state (a new stream or window).
    pub(crate) fn reset_state(&mut self) {
        self.state.reset();
    }

    /// Runs the loaded chunk from the carried state (which receives the chunk's final state)
    /// and returns each position's negative log-likelihood, time-major `[T, B]`. `packed` holds
    /// the model's recurrent weights packed in this part's precision. Allocates nothing.
    pub(crate) fn run(&mut self, model: &Model<F>, packed: &PackedWeights<F>) -> &[f64] {
        let ws = &mut self.workspace;
        forward_logits_packed(model, packed, ws, &mut self.state, &mut self.table_ready, &mut self.times);
        let (rows, vocab) = (ws.rows(), model.config.vocab_size);
        SoftmaxXentRows { rows, vocab, logits: &ws.logits, targets: &ws.targets, losses: &mut self.losses }.run();
        &self.losses
    }
}

/// Refuses a symbol the model has no row for (the forward pass would index past its tables).
pub(crate) fn check_symbols(ids: &[u32], vocab: usize) -> Result<(), ScoreError> {
    match ids.iter().position(|&id| id as usize >= vocab) {
        Some(position) => Err(ScoreError::SymbolOutside { position, id: ids[position], vocab }),
        None => Ok(()),
    }
}

/// The model's recurrent weights packed for forward passes of up to `rows` rows.
pub(crate) fn packed_for_scoring<F: Float>(model: &Model<F>, rows: usize, precision: Precision) -> PackedWeights<F> {
    let mut packed = PackedWeights::for_inference(&model.config, rows, precision);
    packed.pack(model);
    packed
}

/// Sizes every pool thread's GEMM packing buffers for `model`'s products now: a scoring runs
/// its products on any thread of the pool and must not allocate.
pub(crate) fn reserve_scratch_everywhere<F: Float>(model: &Model<F>) {
    let widest = model.config.widest_product();
    rayon::broadcast(|_| charrnn_kernels::gemm::reserve_scratch(widest));
}
