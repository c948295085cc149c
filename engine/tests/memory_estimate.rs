//! The memory estimate that `train` and `bench` check before allocating is the memory a run
//! takes: a counting allocator follows the live heap bytes while a trainer is built, steps,
//! and writes a checkpoint, and the peak must agree with `memory::training_memory`.

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;

use charrnn_engine::checkpoint::{save_checkpoint, CheckpointMeta};
use charrnn_engine::data::{prepare, Batcher, PrepareOptions, TokenStream};
use charrnn_engine::memory::training_memory;
use charrnn_engine::train::{TrainOptions, Trainer};
use charrnn_engine::{CellKind, Model, ModelConfig};
use charrnn_kernels::adam::AdamHyper;

#[test]
fn the_estimate_is_the_peak_a_counting_allocator_sees() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.txt");
    let text: String = (0..40_000).map(|i| ["the ", "cat ", "sat\n", "on ", "mat "][i % 5]).collect();
    std::fs::write(&input, text).unwrap();
    let prepared = prepare(&PrepareOptions { input, cache_dir: None, bytes: false, force: false }).unwrap();
    let stream = TokenStream::open_prepared(&prepared).unwrap();
    let (batch, seq_len, threads) = (12, 40, 2);
    let batches = Batcher::new(&stream, 0..stream.len(), batch, seq_len, "training").unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let cells = [CellKind::Lstm, CellKind::Rnn, CellKind::Gru];
    for (cell, dropout) in cells.into_iter().flat_map(|c| [(c, 0.0), (c, 0.3)]) {
        let config =
            ModelConfig { cell, vocab_size: prepared.vocab.len(), embed_size: 96, hidden_size: 320, num_layers: 3 };
        let options = TrainOptions {
            batch_size: batch,
            seq_len,
            adam: AdamHyper::default(),
            clip: 5.0,
            dropout,
            dropout_seed: 1,
        };
        let checkpoint = dir.path().join("checkpoint.safetensors");
        let (base, peak) = pool.install(|| {
            let base = LIVE.load(Ordering::SeqCst);
            PEAK.store(base, Ordering::SeqCst);
            let mut trainer = Trainer::new(Model::new(config, 1), &options);
            trainer.step(&batches, 0).unwrap();
            save_checkpoint(
                &checkpoint,
                &trainer.snapshot(),
                &prepared.vocab,
                CheckpointMeta::new(1, serde_json::Value::Null),
            )
            .unwrap();
            let peak = PEAK.load(Ordering::SeqCst);
            drop(trainer);
            (base, peak)
        });
        let seen = (peak - base) as f64;
        let estimate = training_memory(&config, batch, seq_len, threads, threads, dropout > 0.0).total() as f64;
        let ratio = estimate / seen;
        eprintln!("{cell:?}, dropout {dropout}: estimate {estimate} bytes, peak {seen} bytes (ratio {ratio:.3})");
        assert!(
            (0.97..1.10).contains(&ratio),
            "{cell:?}, dropout {dropout}: estimate {estimate} bytes, peak {seen} bytes (ratio {ratio:.3})"
        );
    }
}
