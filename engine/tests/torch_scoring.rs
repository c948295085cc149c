//! Scoring parity with PyTorch: `fixtures/torch_scoring.safetensors` holds, per cell, a tiny
//! model's weights (PyTorch's names; f32 values held in f64), a text of 400 symbols, 9 window
//! starts, and PyTorch's log-probability (float64) of every symbol the text predicts as one
//! stream from a zero state and of every target of each 100-symbol window from a zero state.
//! The text crosses a chunk of [`STREAM_CHUNK`] steps and the windows one of
//! [`charrnn_engine::evaluation::windows::MAX_CHUNK`], so the state carried between chunks is
//! tested too.
//!
//! Our f32 scoring must agree within 1e-5 (each log-probability, absolute, and the mean loss,
//! relative), our f64 scoring within 1e-10.
//!
//! The fixture is made by hand (CI has no PyTorch), from the repository root:
//! `python benches/reference/torch_charrnn.py scoring-fixture` in the environment of
//! `benches/reference/requirements.txt`.

use std::path::Path;

mod torch_fixture;
use torch_fixture::CellTensors;

use charrnn_engine::evaluation::stream::{StreamScorer, STREAM_CHUNK};
use charrnn_engine::evaluation::windows::{WindowScorer, MAX_CHUNK};
use charrnn_engine::{CellKind, Model, ModelConfig, Precision};
use charrnn_kernels::Float;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_scoring.safetensors");

/// One cell's part of the fixture.
struct Case {
    tensors: CellTensors,
    config: ModelConfig,
    width: usize,
    text: Vec<u32>,
    starts: Vec<usize>,
}

impl Case {
    fn load(cell: CellKind) -> Case {
        let tensors = CellTensors::load(Path::new(FIXTURE), cell);
        let starts: Vec<usize> = tensors.ids("starts").into_iter().map(|s| s as usize).collect();
        assert_eq!(starts.len(), tensors.size("count"));
        Case { config: tensors.config, width: tensors.size("width"), text: tensors.ids("text"), starts, tensors }
    }

    fn log_probs(&self, name: &str) -> &[f64] {
        self.tensors.tensor(name)
    }

    fn model<F: Float>(&self) -> Model<F> {
        self.tensors.model()
    }

    /// Our stream and window scoring in `F` against PyTorch's, within `tolerance`.
    fn check<F: Float>(&self, tolerance: f64) {
        let model = self.model::<F>();
        let cell = self.config.cell;
        let expected = self.log_probs("stream.log_probs");
        assert!(self.text.len() > STREAM_CHUNK + 1 && self.width > MAX_CHUNK, "the fixture crosses chunks");
        let mut ours = vec![];
        let score = StreamScorer::new(&model, Precision::F32).score(&self.text, |_, lp| ours.push(lp)).unwrap();
        assert_eq!(ours.len(), expected.len());
        for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
            assert!((a - b).abs() <= tolerance, "{cell:?} stream, symbol {}: {a} vs PyTorch's {b}", i + 1);
        }
        let mean: f64 = -expected.iter().sum::<f64>() / expected.len() as f64;
        assert!(
            (score.mean_nats() - mean).abs() <= tolerance * mean,
            "{cell:?} stream: {} vs {mean}",
            score.mean_nats()
        );

        let expected = self.log_probs("windows.log_probs");
        let count = self.starts.len();
        for threads in [1, 2] {
            let mut scorer = WindowScorer::new(&model, Precision::F32, self.width, count, threads).unwrap();
            let score = scorer.score(&self.text, &self.starts).unwrap();
            let mean: f64 = -expected.iter().sum::<f64>() / expected.len() as f64;
            assert_eq!(score.predicted, expected.len());
            let got = score.mean_nats();
            assert!((got - mean).abs() <= tolerance * mean, "{cell:?} windows, {threads} threads: {got} vs {mean}");
        }
        // Each window alone, as a stream of its own, symbol by symbol.
        for (w, &start) in self.starts.iter().enumerate() {
            let mut ours = vec![];
            let window = &self.text[start..start + self.width + 1];
            StreamScorer::new(&model, Precision::F32).score(window, |_, lp| ours.push(lp)).unwrap();
            for (t, (a, b)) in ours.iter().zip(&expected[w * self.width..(w + 1) * self.width]).enumerate() {
                assert!((a - b).abs() <= tolerance, "{cell:?} window {w}, symbol {t}: {a} vs PyTorch's {b}");
            }
        }
    }
}

#[test]
fn f32_scoring_matches_pytorch_within_1e_5() {
    for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
        Case::load(cell).check::<f32>(1e-5);
    }
}

#[test]
fn f64_scoring_matches_pytorch_to_rounding() {
    for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
        Case::load(cell).check::<f64>(1e-10);
    }
}
