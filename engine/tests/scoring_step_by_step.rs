//! Scoring a text by blocks of time ([`charrnn_engine::evaluation`]: per layer, the input
//! projection of a chunk as one product, the layers of a stream as a pipeline over chunks)
//! against the step-by-step path: the sampler's inference step, one symbol at a time through
//! all layers, its log-softmax taken in f64. On odd sizes: models of 1 and 3 layers of every
//! cell, streams that end inside a chunk and that are longer than the pipeline is deep, one
//! window, window counts that are no multiple of the threads, windows longer than a chunk; in
//! f32 within 1e-5 and in bf16 products within a bf16 tolerance; the same bits on any number
//! of threads.

use charrnn_engine::evaluation::stream::{StreamScorer, STREAM_CHUNK};
use charrnn_engine::evaluation::windows::{window_starts, WindowScorer, MAX_CHUNK, MAX_ROWS};
use charrnn_engine::inference::step::{InferenceStep, InferenceWeights};
use charrnn_engine::{CellKind, Model, ModelConfig, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 11;
const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Gru, CellKind::Rnn];

/// Per log-probability: f32 scoring rounds differently from the step only in the order of a
/// few sums; bf16 products round both paths' operands alike, but the sums still differ.
fn tolerance(precision: Precision) -> f64 {
    match precision {
        Precision::F32 => 1e-5,
        Precision::Bf16 => 2e-3,
    }
}

fn config(cell: CellKind, layers: usize) -> ModelConfig {
    ModelConfig { cell, vocab_size: VOCAB, embed_size: 6, hidden_size: 13, num_layers: layers }
}

/// A text of `len` symbols with some structure (so the figures are not all alike).
fn text(len: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|i| if rng.random_bool(0.3) { rng.random_range(0..VOCAB as u32) } else { (i % VOCAB) as u32 })
        .collect()
}

/// ln p(`ids[i + 1]`) after `ids[..=i]` from a zero state, one step at a time.
fn step_by_step(model: &Model<f32>, precision: Precision, ids: &[u32]) -> Vec<f64> {
    let weights = InferenceWeights::new(std::sync::Arc::new(model.clone()), 1, precision);
    let mut step = InferenceStep::new(&model.config, 1);
    ids.windows(2)
        .map(|pair| {
            step.inputs[0] = pair[0];
            step.step(&weights);
            let logits: Vec<f64> = step.logits_of(0).iter().map(|&z| z as f64).collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
            logits[pair[1] as usize] - log_sum
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

#[test]
fn the_stream_is_the_step_by_step_path_on_any_number_of_threads() {
    // One chunk; a last chunk of one step; more chunks than the pipeline has stages.
    let lens = [2, 40, STREAM_CHUNK + 2, 5 * STREAM_CHUNK + 37];
    for (cell, layers, precision) in CELLS
        .iter()
        .flat_map(|&c| [1, 3].map(|l| (c, l)))
        .flat_map(|(c, l)| [Precision::F32, Precision::Bf16].map(|p| (c, l, p)))
    {
        let model = Model::<f32>::new(config(cell, layers), 7);
        for len in lens {
            let ids = text(len, len as u64 + layers as u64);
            let expected = step_by_step(&model, precision, &ids);
            let mut runs = vec![];
            for threads in [1, 2, 3] {
                let run = format!("{cell:?}, {layers} layers, {precision} products, {len} symbols, {threads} threads");
                let mut ours = vec![];
                let score = pool(threads).install(|| {
                    let mut scorer = StreamScorer::new(&model, precision);
                    scorer.score(&ids, |i, lp| ours.push((i, lp))).unwrap()
                });
                assert_eq!(score.predicted, len - 1, "{run}");
                assert_eq!(ours.iter().map(|p| p.0).collect::<Vec<_>>(), (0..len - 1).collect::<Vec<_>>(), "{run}");
                for (&(i, a), b) in ours.iter().zip(&expected) {
                    assert!((a - b).abs() <= tolerance(precision), "{run}, symbol {}: {a} vs step by step {b}", i + 1);
                }
                let summed: f64 = ours.iter().map(|p| p.1).sum();
                assert!((summed + score.nats).abs() <= 1e-12 * score.nats, "{run}: per-symbol sum");
                runs.push(ours);
            }
            assert!(runs.iter().all(|r| *r == runs[0]), "{cell:?}, {layers} layers, {len}: threads change the bits");
        }
    }
}

#[test]
fn windows_are_the_step_by_step_path_on_any_number_of_threads() {
    let ids = text(900, 3);
    // (width, count, threads): one window; counts no multiple of the threads; a window longer
    // than a chunk, its last chunk short; more windows than a thread runs in one pass.
    let cases = [(9, 1, 2), (37, 5, 2), (MAX_CHUNK + 3, 7, 3), (2 * MAX_CHUNK + 5, 4, 3), (3, 2 * MAX_ROWS + 3, 2)];
    for (cell, layers, precision) in CELLS
        .iter()
        .flat_map(|&c| [1, 3].map(|l| (c, l)))
        .flat_map(|(c, l)| [Precision::F32, Precision::Bf16].map(|p| (c, l, p)))
    {
        let model = Model::<f32>::new(config(cell, layers), 11);
        for (width, count, threads) in cases {
            let run = format!("{cell:?}, {layers} layers, {precision} products, {count} windows of {width}");
            let starts = window_starts(ids.len(), width, count, 5).unwrap();
            let expected: f64 = starts
                .iter()
                .map(|&s| -step_by_step(&model, precision, &ids[s..s + width + 1]).iter().sum::<f64>())
                .sum();
            let mut figures = vec![];
            for threads in [1, threads] {
                let score = pool(threads).install(|| {
                    WindowScorer::new(&model, precision, width, count, threads).unwrap().score(&ids, &starts).unwrap()
                });
                assert_eq!(score.predicted, width * count, "{run}");
                let bound = tolerance(precision) * score.predicted as f64;
                assert!(
                    (score.nats - expected).abs() <= bound,
                    "{run}, {threads} threads: {} vs {expected}",
                    score.nats
                );
                figures.push(score.nats);
            }
            assert_eq!(figures[0], figures[1], "{run}: threads change the figure");
        }
    }
}
