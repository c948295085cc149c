//! `train --state-reset P`: before each step, each row's carried state is zeroed with
//! probability `P`. Near certainty it is a reset of the whole state before every step; at 0.5 it
//! resets some rows and not others; the same rows whatever the split (`batch_parts.rs`,
//! `ranks_in_threads.rs`) and after a resume (the draws depend on the step, not on the run).

use charrnn_engine::training::{Layout, TrainOptions, Trainer};
use charrnn_engine::AdamHyper;
use charrnn_engine::Precision;
use charrnn_engine::{CellKind, Model, ModelConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: u32 = 11;

fn options(state_reset: f64) -> TrainOptions {
    TrainOptions {
        batch_size: 9,
        seq_len: 4,
        adam: AdamHyper::default(),
        clip: 1.0,
        dropout: 0.0,
        output_dropout: 0.0,
        weight_drop: 0.0,
        state_reset,
        dropout_seed: 5,
        precision: Precision::F32,
    }
}

/// Losses and final weights of 8 steps on random batches; `reset_each_step` zeroes the whole
/// state by hand before every step.
fn run(cell: CellKind, state_reset: f64, reset_each_step: bool) -> (Vec<f64>, Vec<f32>) {
    let config = ModelConfig { cell, vocab_size: VOCAB as usize, embed_size: 6, hidden_size: 13, num_layers: 2 };
    let mut trainer =
        Trainer::new(Model::new(config, 4), &options(state_reset), Layout { parts: 2, ..Layout::default() });
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut losses = vec![];
    for _ in 0..8 {
        let (x, y) = trainer.batch_mut();
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            *a = rng.random_range(0..VOCAB);
            *b = rng.random_range(0..VOCAB);
        }
        if reset_each_step {
            trainer.reset_state();
        }
        losses.push(trainer.step_loaded().unwrap().loss);
    }
    (losses, trainer.model().params.clone())
}

#[test]
fn a_reset_near_certainty_zeroes_every_row_before_every_step() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        assert_eq!(run(cell, 0.999_999, false), run(cell, 0.0, true), "{cell:?}");
    }
}

#[test]
fn a_reset_of_one_half_zeroes_some_rows_and_not_others() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let (never, always) = (run(cell, 0.0, false).0, run(cell, 0.0, true).0);
        let (half, _) = run(cell, 0.5, false);
        // Step 1 starts from a zero state in every run.
        assert_eq!(half[0], never[0], "{cell:?}");
        for (step, ((h, n), a)) in half.iter().zip(&never).zip(&always).enumerate().skip(1) {
            assert!(h != n && h != a, "{cell:?}, step {}: {h} (never {n}, always {a})", step + 1);
        }
        // Reproducible.
        assert_eq!(run(cell, 0.5, false).0, half);
    }
}
