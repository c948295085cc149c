//! DropConnect on the recurrent weights ("weight drop", as AWD-LSTM does it: Merity et al.
//! 2017): dropout between time steps, on the connections `h_{t-1} → gates` rather than on the
//! units.
//!
//! In a training step each layer's `Wh` (`[H, G·H]`) is multiplied by a mask `m`
//! (`1/(1 − p)` with probability `1 − p`, else 0), the same for every row and every time step
//! of the step, and the step's products read `W' = Wh ⊙ m`. Only the packed copy of `Wh`
//! changes: the recurrence, its fused cells and its products are the same code as without it.
//! Backward, the products yield `∂L/∂W'`, and `∂L/∂Wh = ∂L/∂W' ⊙ m` ([`WeightDrop::mask_gradient`]).
//! Evaluation and sampling read `Wh` itself (the mask's expectation is 1).
//!
//! The masks are a pure function of `(seed, step, layer, row of Wh, column)`, drawn by the same
//! generator as [`crate::model::dropout`]'s with layer keys of their own: a resumed run draws
//! exactly the masks the uninterrupted one would have, every part of a split batch and every
//! process of a group reads the same one.

use charrnn_kernels::Float;
use rayon::prelude::*;

use crate::model::config::ModelConfig;
use crate::model::dropout::{apply_mask, fill_mask, mask_in_place, Dropout};
use crate::model::params::{Model, ParamLayout};

/// Layer keys of the weight masks start here, far above any boundary of unit dropout.
const LAYER_KEY_BASE: usize = 1 << 32;

/// Rows of `Wh` drawn by one task.
const ROWS_PER_TASK: usize = 16;

/// The masks and the masked copies of every layer's `Wh`, for one step at a time.
#[derive(Clone, Debug)]
pub struct WeightDrop<F> {
    /// Probability of dropping a weight, in `[0, 1)`; 0: none (and no buffers).
    p: f64,
    /// Seed of the masks.
    seed: u64,
    /// Each layer's mask `[H, G·H]`: `1/(1 − p)` or 0.
    masks: Vec<Vec<F>>,
    /// Each layer's `Wh ⊙ mask`.
    dropped: Vec<Vec<F>>,
}

impl<F: Float> WeightDrop<F> {
    /// Room for the masks of `config` with probability `p`; nothing when `p` is 0.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    pub fn new(config: &ModelConfig, p: f64, seed: u64) -> WeightDrop<F> {
        assert!((0.0..1.0).contains(&p), "weight-drop probability {p} outside [0, 1)");
        let layers = if p > 0.0 { config.num_layers } else { 0 };
        let size = config.hidden_size * config.cell.gates() * config.hidden_size;
        let buffers = || (0..layers).map(|_| vec![F::zero(); size]).collect();
        WeightDrop { p, seed, masks: buffers(), dropped: buffers() }
    }

    /// Elements of `F` that [`WeightDrop::new`] allocates with a probability above 0 (`active`;
    /// none otherwise), for memory estimates.
    pub fn allocation(config: &ModelConfig, active: bool) -> usize {
        let size = config.hidden_size * config.cell.gates() * config.hidden_size;
        if active {
            2 * config.num_layers * size
        } else {
            0
        }
    }

    /// Whether any weight can be dropped.
    pub fn is_active(&self) -> bool {
        self.p > 0.0
    }

    /// Draws the masks of training step `step` (1-based) and the masked copies of `model`'s
    /// recurrent weights. Allocates nothing.
    pub fn draw(&mut self, model: &Model<F>, step: u64) {
        let d = Dropout { p: self.p, output_p: 0.0, seed: self.seed, step, first_row: 0 };
        let (params, layout) = (&model.params, &model.layout);
        let width = model.config.cell.gates() * model.config.hidden_size;
        let chunk = ROWS_PER_TASK * width;
        let layers = self.masks.par_iter_mut().zip(self.dropped.par_iter_mut()).enumerate();
        layers.for_each(|(l, (mask, dropped))| {
            let wh = &params[layout.layers[l].wh.clone()];
            let tasks = mask.par_chunks_mut(chunk).zip(dropped.par_chunks_mut(chunk)).zip(wh.par_chunks(chunk));
            tasks.enumerate().for_each(|(i, ((mask, dropped), wh))| {
                // Row `r` of this task is row `i·ROWS_PER_TASK + r` of `Wh`, drawn as a row
                // of a one-step batch.
                let rows = Dropout { first_row: i * ROWS_PER_TASK, ..d };
                fill_mask(&rows, LAYER_KEY_BASE + l, mask.len() / width, width, mask);
                apply_mask(wh, mask, dropped);
            });
        });
    }

    /// Layer `l`'s `Wh ⊙ mask`, as drawn by the last [`WeightDrop::draw`].
    pub fn dropped(&self, l: usize) -> &[F] {
        &self.dropped[l]
    }

    /// `∂L/∂Wh = ∂L/∂W' ⊙ mask` for every layer, in `grads` (laid out as `layout`).
    pub fn mask_gradient(&self, layout: &ParamLayout, grads: &mut [F]) {
        for (mask, ranges) in self.masks.iter().zip(&layout.layers) {
            mask_in_place(&mut grads[ranges.wh.clone()], mask);
        }
    }
}
