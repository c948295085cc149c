//! A training step allocates nothing: a counting global allocator sees zero allocations and
//! zero frees across training steps after the first (which sizes the per-thread packing
//! buffers), with the batch split across two threads; for every cell, with and without dropout.

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;
mod small_run;
use small_run::*;

use charrnn_engine::data::Batcher;
use charrnn_engine::train::Trainer;
use charrnn_engine::Model;

#[test]
fn training_steps_after_the_first_allocate_nothing() {
    let corpus = small_corpus(20_000);
    let batches = Batcher::new(&corpus.stream, 0..corpus.stream.len(), 8, 16, "training").unwrap();
    let pool = thread_pool(2);

    for (cell, dropout) in cells_with_and_without(0.5) {
        let config = three_layers(cell, &corpus, 24, 40);
        let options = train_options(8, 16, dropout);
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
