//! A training step allocates nothing: a counting global allocator sees zero allocations and
//! zero frees across training steps after the first (which sizes the per-thread packing
//! buffers), with the batch split across two threads; for every cell, with and without dropout.

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;

use charrnn_engine::data::{prepare, Batcher, PrepareOptions, TokenStream};
use charrnn_engine::train::{TrainOptions, Trainer};
use charrnn_engine::{CellKind, Model, ModelConfig};
use charrnn_kernels::adam::AdamHyper;

#[test]
fn training_steps_after_the_first_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.txt");
    let text: String = (0..20_000).map(|i| ["the ", "cat ", "sat\n", "on ", "mat "][i % 5]).collect();
    std::fs::write(&input, text).unwrap();
    let prepared = prepare(&PrepareOptions { input, cache_dir: None, bytes: false, force: false }).unwrap();
    let stream = TokenStream::open_prepared(&prepared).unwrap();
    let batches = Batcher::new(&stream, 0..stream.len(), 8, 16, "training").unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();

    let cells = [CellKind::Lstm, CellKind::Rnn, CellKind::Gru];
    for (cell, dropout) in cells.into_iter().flat_map(|c| [(c, 0.0), (c, 0.5)]) {
        let config =
            ModelConfig { cell, vocab_size: prepared.vocab.len(), embed_size: 24, hidden_size: 40, num_layers: 3 };
        let options = TrainOptions {
            batch_size: 8,
            seq_len: 16,
            adam: AdamHyper::default(),
            clip: 5.0,
            dropout,
            dropout_seed: 1,
        };
        pool.install(|| {
            let mut trainer = Trainer::new(Model::new(config, 1), &options);
            assert_eq!(trainer.num_parts(), 2);
            trainer.step(&batches, 0).unwrap();
            let (a0, f0) = (ALLOCATIONS.load(Ordering::SeqCst), FREES.load(Ordering::SeqCst));
            for i in 1..4 {
                trainer.step(&batches, i % batches.num_batches()).unwrap();
            }
            let (a1, f1) = (ALLOCATIONS.load(Ordering::SeqCst), FREES.load(Ordering::SeqCst));
            assert_eq!((a1 - a0, f1 - f0), (0, 0), "{cell:?}, dropout {dropout}: allocations and frees during 3 steps");
        });
    }
}
