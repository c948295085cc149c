//! A training step allocates nothing: a counting global allocator sees zero allocations and
//! zero frees across training steps after the first (which sizes the per-thread packing
//! buffers), with the batch split across two threads; for every cell, with and without dropout,
//! in f32 and in bf16 products.

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;
mod small_run;
use small_run::*;

use charrnn_engine::data::Batcher;
use charrnn_engine::training::{Layout, TrainOptions, Trainer};
use charrnn_engine::Model;
use charrnn_engine::Precision;

#[test]
fn training_steps_after_the_first_allocate_nothing() {
    let corpus = small_corpus(20_000);
    let batches = Batcher::new(&corpus.stream, 0..corpus.stream.len(), 8, 16, "training").unwrap();
    let pool = thread_pool(2);

    let runs = cells_with_and_without(0.5).flat_map(|run| [(run, Precision::F32), (run, Precision::Bf16)]);
    for ((cell, dropout), precision) in runs {
        let config = three_layers(cell, &corpus, 24, 40);
        let options = TrainOptions { precision, ..train_options(8, 16, dropout) };
        pool.install(|| {
            let mut trainer = Trainer::new(Model::new(config, 1), &options, Layout::default());
            assert_eq!(trainer.num_parts(), 2);
            trainer.step(&batches, 0).unwrap();
            let (a0, f0) = (ALLOCATIONS.load(Ordering::SeqCst), FREES.load(Ordering::SeqCst));
            for i in 1..4 {
                trainer.step(&batches, i % batches.num_batches()).unwrap();
            }
            let (a1, f1) = (ALLOCATIONS.load(Ordering::SeqCst), FREES.load(Ordering::SeqCst));
            let run = format!("{cell:?}, dropout {dropout}, {precision} products");
            assert_eq!((a1 - a0, f1 - f0), (0, 0), "{run}: allocations and frees during 3 steps");
        });
    }
}
