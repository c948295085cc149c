//! The memory estimate that `train` and `bench` check before allocating is the memory a run
//! takes: a counting allocator follows the live heap bytes while a trainer is built, steps,
//! and writes a checkpoint, and the peak must agree with `memory::training_memory`.

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;
mod small_run;
use small_run::*;

use charrnn_engine::data::Batcher;
use charrnn_engine::files::checkpoint::{save_checkpoint, CheckpointMeta};
use charrnn_engine::training::memory::training_memory;
use charrnn_engine::training::{Layout, Trainer};
use charrnn_engine::Model;

#[test]
fn the_estimate_is_the_peak_a_counting_allocator_sees() {
    let corpus = small_corpus(40_000);
    let (batch, seq_len, threads) = (12, 40, 2);
    let batches = Batcher::new(&corpus.stream, 0..corpus.stream.len(), batch, seq_len, "training").unwrap();
    let pool = thread_pool(threads);
    for (cell, dropout) in cells_with_and_without(0.3) {
        let config = three_layers(cell, &corpus, 96, 320);
        let options = train_options(batch, seq_len, dropout);
        let checkpoint = corpus.dir.path().join("checkpoint.safetensors");
        let (base, peak) = pool.install(|| {
            let base = LIVE.load(Ordering::SeqCst);
            PEAK.store(base, Ordering::SeqCst);
            let mut trainer = Trainer::new(Model::new(config, 1), &options, Layout::default());
            trainer.step(&batches, 0).unwrap();
            save_checkpoint(
                &checkpoint,
                &trainer.gather_snapshot(),
                &corpus.prepared.vocab,
                CheckpointMeta::new(1, serde_json::Value::Null),
            )
            .unwrap();
            let peak = PEAK.load(Ordering::SeqCst);
            drop(trainer);
            (base, peak)
        });
        let seen = (peak - base) as f64;
        let estimate = training_memory(
            &config,
            batch,
            seq_len,
            threads,
            threads,
            dropout > 0.0,
            options.weight_drop > 0.0,
        )
        .total() as f64;
        let ratio = estimate / seen;
        eprintln!("{cell:?}, dropout {dropout}: estimate {estimate} bytes, peak {seen} bytes (ratio {ratio:.3})");
        assert!(
            (0.97..1.10).contains(&ratio),
            "{cell:?}, dropout {dropout}: estimate {estimate} bytes, peak {seen} bytes (ratio {ratio:.3})"
        );
    }
}
