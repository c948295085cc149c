//! Cold starts in training (`train --state-reset P`): before each step, each row's carried
//! state is zeroed with probability `P`, so the model also learns to predict from a zero state.
//!
//! With its state carried from batch to batch, a row starts from zero only at an epoch's first
//! batch: a few steps in nine passes. Text scored from a cold start, such as short windows each
//! from a zero state (the protocol of nanoGPT's `estimate_loss`), then meets a state the model
//! has hardly seen. A row reset with probability `P` per step keeps a context of `1/P` batches
//! on average (of `T` characters each), long enough for what follows it to be learned as before.
//!
//! The draws are a pure function of `(seed, step, row of the whole batch)`, drawn as dropout's
//! masks are (with a key of their own): a run is reproducible, a resumed run resets the same rows
//! as the uninterrupted one, and every split of the batch into parts and processes resets the
//! same rows.

use crate::model::dropout::{fill_mask, Dropout};
use crate::model::workspace::State;

/// The draws' key in place of a dropout boundary: apart from the layer boundaries (`0..L`) and
/// weight drop's (`2^32 + l`).
const STATE_RESET_KEY: usize = 1 << 33;

/// Zeroes the rows of `state` that step `step` resets with probability `p`: `state` holds
/// `draws.len()` rows, the rows `first_row..` of the whole batch; `draws` is room for one
/// draw per row (a step must not allocate).
pub(crate) fn reset_rows(p: f64, seed: u64, step: u64, first_row: usize, state: &mut State<f32>, draws: &mut [f32]) {
    if p == 0.0 || draws.is_empty() {
        return;
    }
    let key = Dropout { p, output_p: 0.0, seed, step, first_row };
    fill_mask(&key, STATE_RESET_KEY, draws.len(), 1, draws);
    let hidden = state.h(0).len() / draws.len();
    for (row, _) in draws.iter().enumerate().filter(|(_, &kept)| kept == 0.0) {
        state.reset_row(row, hidden);
    }
}
