//! Generating a character allocates nothing: a counting global allocator sees zero
//! allocations and frees across 300 symbols after the first few, for one stream (the
//! matrix-vector path) in f32 and bf16, for 8 streams in one batched step, for streams leaving
//! and joining a batch, and for a beam search of width 4; for every cell.

mod counting_alloc;
use counting_alloc::*;

use charrnn_engine::inference::beam::BeamSearch;
use charrnn_engine::inference::sample::{SampleMode, SampleOptions, Sampler};
use charrnn_engine::inference::step::{InferenceStep, InferenceWeights};
use charrnn_engine::Precision;
use charrnn_engine::{CellKind, Model, ModelConfig};

/// This thread's counts: every step here runs on it (no pool), while the harness's own
/// threads may allocate at the same time (they did, at start-up, in the first runs).
fn counts() -> (usize, usize) {
    this_thread_counts()
}

#[test]
fn sampling_a_character_allocates_nothing() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let config = ModelConfig { cell, vocab_size: 40, embed_size: 16, hidden_size: 48, num_layers: 2 };
        let model = std::sync::Arc::new(Model::<f32>::new(config, 3));
        for (streams, precision) in [(1, Precision::F32), (1, Precision::Bf16), (8, Precision::F32)] {
            for mode in [SampleMode::Weighted, SampleMode::Argmax] {
                let options = SampleOptions { mode, temperature: 0.8, top_k: Some(10), seed: 1, precision };
                let mut sampler = Sampler::with_streams(&model, options, Some(0), 0..streams).unwrap();
                let mut chosen = vec![0u32; streams as usize];
                sampler.feed(3);
                sampler.sample_all(&mut chosen);
                let before = counts();
                for _ in 0..300 {
                    sampler.sample_all(&mut chosen);
                }
                let after = counts();
                let run = format!("{cell:?}, {streams} streams, {precision}, {mode:?}");
                assert_eq!((after.0 - before.0, after.1 - before.1), (0, 0), "{run}: allocations and frees");
            }
        }
        // Streams leaving and joining a batch between symbols, from a primed row.
        let weights = std::sync::Arc::new(InferenceWeights::new(model.clone(), 8, Precision::F32));
        let mut primer = InferenceStep::new(&config, 1);
        primer.prime(&weights, &[3, 1]);
        let options = SampleOptions {
            mode: SampleMode::Weighted,
            temperature: 0.8,
            top_k: None,
            seed: 1,
            precision: Precision::F32,
        };
        let mut sampler = Sampler::with_capacity(weights, Some(0), 8);
        for stream in 0..8 {
            sampler.add_primed(&primer, 0, &options, stream).unwrap();
        }
        let mut chosen = [0u32; 8];
        let before = counts();
        for t in 0..300u64 {
            let n = sampler.streams();
            sampler.choose_all(&mut chosen[..n]);
            sampler.remove_stream((t % n as u64) as usize);
            sampler.feed_chosen();
            sampler.add_primed(&primer, 0, &options, t).unwrap();
        }
        let after = counts();
        assert_eq!((after.0 - before.0, after.1 - before.1), (0, 0), "{cell:?}, streams coming and going");
        let mut beam = BeamSearch::new(&model, Precision::F32, 4, 1.0, 301).unwrap();
        beam.feed(3);
        beam.advance();
        let before = counts();
        for _ in 0..300 {
            beam.advance();
        }
        let after = counts();
        assert_eq!((after.0 - before.0, after.1 - before.1), (0, 0), "{cell:?}, beam of 4: allocations and frees");
    }
}
