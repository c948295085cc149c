//! Scoring a text ([`charrnn_engine::evaluation`]) against the training code's own forward
//! pass run over the whole text in one chunk: the stream (across chunk boundaries) to
//! rounding in f64; each window as a stream of its own; the same figure on any number of
//! threads; the window starts in range and fixed by the seed; and what is refused.

use charrnn_engine::evaluation::stream::{StreamScorer, STREAM_CHUNK};
use charrnn_engine::evaluation::windows::{window_starts, WindowScorer, MAX_ROWS};
use charrnn_engine::evaluation::ScoreError;
use charrnn_engine::model::pass::{forward, Pass, PassOptions};
use charrnn_engine::model::phase_times::PhaseTimes;
use charrnn_engine::{CellKind, Model, ModelConfig, PackedWeights, Precision, State, Workspace};
use charrnn_kernels::Float;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 11;

fn config(cell: CellKind) -> ModelConfig {
    ModelConfig { cell, vocab_size: VOCAB, embed_size: 6, hidden_size: 13, num_layers: 2 }
}

/// A text of `len` symbols with some structure (so the figures are not all alike).
fn text(len: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|i| if rng.random_bool(0.3) { rng.random_range(0..VOCAB as u32) } else { (i % VOCAB) as u32 })
        .collect()
}

/// The summed loss of `ids` as one stream by the training pass: one chunk of `len − 1` steps.
fn reference_nats<F: Float>(model: &Model<F>, ids: &[u32]) -> f64 {
    let steps = ids.len() - 1;
    let mut ws = Workspace::<F>::new(&model.config, 1, steps);
    ws.inputs.copy_from_slice(&ids[..steps]);
    ws.targets.copy_from_slice(&ids[1..]);
    let mut packed = PackedWeights::for_inference(&model.config, 1, Precision::F32);
    packed.pack(model);
    let mut state = State::zeros(&model.config, 1);
    let options = PassOptions::default();
    let mean = forward(model, &packed, &mut ws, &mut state, Pass::Eval, &options, &mut PhaseTimes::default());
    mean * steps as f64
}

#[test]
fn the_stream_is_the_training_pass_over_the_whole_text() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let model = Model::<f64>::new(config(cell), 3);
        // Chunk boundaries inside, and a last chunk that is mostly padding.
        for len in [2, 17, STREAM_CHUNK + 1, 2 * STREAM_CHUNK + 40] {
            let ids = text(len, len as u64);
            let mut log_ps = vec![];
            let score = StreamScorer::new(&model, Precision::F32).score(&ids, |i, lp| log_ps.push((i, lp))).unwrap();
            let expected = reference_nats(&model, &ids);
            assert_eq!(score.predicted, len - 1);
            assert!((score.nats - expected).abs() <= 1e-12 * expected, "{cell:?} {len}: {} vs {expected}", score.nats);
            assert_eq!(log_ps.iter().map(|p| p.0).collect::<Vec<_>>(), (0..len - 1).collect::<Vec<_>>());
            let summed: f64 = log_ps.iter().map(|p| p.1).sum();
            assert!((summed + score.nats).abs() <= 1e-12 * score.nats, "{cell:?} {len}: per-symbol sum");
            assert!(log_ps.iter().all(|p| p.1 < 0.0 && p.1.is_finite()), "{cell:?} {len}");
            // f32 within its rounding.
            let model32 = Model::<f32>::new(config(cell), 3);
            let s32 = StreamScorer::new(&model32, Precision::F32).score(&ids, |_, _| {}).unwrap();
            assert!((s32.nats - expected).abs() <= 1e-5 * expected, "{cell:?} {len}: f32 {} vs {expected}", s32.nats);
        }
    }
}

#[test]
fn each_window_is_a_stream_of_its_own_on_any_number_of_threads() {
    let ids = text(700, 9);
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let model = Model::<f64>::new(config(cell), 5);
        // One chunk, several chunks with a short last one, and more windows than one pass's rows.
        for (width, count) in [(10, 3), (150, 7), (5, 2 * MAX_ROWS + 3)] {
            let starts = window_starts(ids.len(), width, count, 1).unwrap();
            let mut stream = StreamScorer::new(&model, Precision::F32);
            let expected: f64 =
                starts.iter().map(|&s| stream.score(&ids[s..s + width + 1], |_, _| {}).unwrap().nats).sum();
            let mut figures = vec![];
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let score = pool.install(|| {
                    WindowScorer::new(&model, Precision::F32, width, count, threads).unwrap().score(&ids, &starts)
                });
                let score = score.unwrap();
                assert_eq!(score.predicted, width * count);
                let run = format!("{cell:?}, {count} windows of {width}, {threads} threads");
                assert!((score.nats - expected).abs() <= 1e-12 * expected, "{run}: {} vs {expected}", score.nats);
                figures.push(score.nats);
            }
            assert!(figures.iter().all(|&f| f == figures[0]), "{cell:?}: the threads change the figure: {figures:?}");
        }
    }
}

#[test]
fn window_starts_cover_the_range_and_follow_the_seed() {
    let (len, width) = (50, 20);
    let starts = window_starts(len, width, 2000, 7).unwrap();
    assert!(starts.iter().all(|&s| s + width < len));
    // Both ends of [0, len − width − 1] are drawn.
    assert!(starts.contains(&0) && starts.contains(&(len - width - 1)));
    assert_eq!(starts, window_starts(len, width, 2000, 7).unwrap());
    assert_ne!(starts, window_starts(len, width, 2000, 8).unwrap());
    // The shortest text a window fits in: one start.
    assert_eq!(window_starts(width + 1, width, 3, 7).unwrap(), vec![0, 0, 0]);
}

#[test]
fn what_cannot_be_scored_is_refused() {
    let model = Model::<f32>::new(config(CellKind::Lstm), 1);
    let mut stream = StreamScorer::new(&model, Precision::F32);
    assert_eq!(stream.score(&[3], |_, _| {}), Err(ScoreError::TextTooShort { len: 1 }));
    let outside = [1, 2, VOCAB as u32, 0];
    let err = ScoreError::SymbolOutside { position: 2, id: VOCAB as u32, vocab: VOCAB };
    assert_eq!(stream.score(&outside, |_, _| {}), Err(err.clone()));
    assert_eq!(window_starts(10, 10, 1, 0), Err(ScoreError::WindowTooLong { width: 10, len: 10 }));
    assert_eq!(window_starts(10, 0, 1, 0), Err(ScoreError::NoWindows { field: "windows" }));
    assert_eq!(window_starts(10, 3, 0, 0), Err(ScoreError::NoWindows { field: "count" }));
    assert!(WindowScorer::new(&model, Precision::F32, 3, 0, 1).is_err());
    let mut windows = WindowScorer::new(&model, Precision::F32, 3, 2, 1).unwrap();
    assert_eq!(windows.score(&outside, &[0, 0]), Err(err));
    assert_eq!(windows.score(&[0; 10], &[0]), Err(ScoreError::WindowCount { given: 1, expected: 2 }));
    let past = ScoreError::WindowOutside { index: 1, start: 7, last: 6, width: 3 };
    assert_eq!(windows.score(&[0; 10], &[6, 7]), Err(past));
    assert_eq!(windows.score(&[0; 3], &[0, 0]), Err(ScoreError::WindowTooLong { width: 3, len: 3 }));
}

#[test]
fn bf16_products_score_close_to_f32() {
    let ids = text(600, 4);
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let model = Model::<f32>::new(config(cell), 8);
        let f32_score = StreamScorer::new(&model, Precision::F32).score(&ids, |_, _| {}).unwrap();
        let bf16_score = StreamScorer::new(&model, Precision::Bf16).score(&ids, |_, _| {}).unwrap();
        let (a, b) = (f32_score.mean_nats(), bf16_score.mean_nats());
        // bf16 operands (8 bits of mantissa) move the figure a little, not more.
        assert!(a != b && (a - b).abs() < 0.01 * a, "{cell:?}: bf16 {b} vs f32 {a}");
        let starts = window_starts(ids.len(), 70, 5, 2).unwrap();
        let windows = |precision| WindowScorer::new(&model, precision, 70, 5, 2).unwrap().score(&ids, &starts).unwrap();
        let (a, b) = (windows(Precision::F32).mean_nats(), windows(Precision::Bf16).mean_nats());
        assert!(a != b && (a - b).abs() < 0.01 * a, "{cell:?} windows: bf16 {b} vs f32 {a}");
    }
}
