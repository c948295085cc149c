//! Scoring a text allocates nothing once its scorer is built: a counting global allocator sees
//! zero allocations and frees across whole scorings after the first, as one stream (its layers
//! a pipeline over two threads) and as windows split across two threads, both run on the pool
//! (as a training step is); for every cell, in f32 and bf16 products. The sizes keep each
//! product below the GEMM's threshold for splitting it across threads (a split spawns rayon
//! jobs, which allocate, as in a training step's products at full size).

use std::sync::atomic::Ordering;

mod counting_alloc;
use counting_alloc::*;

use charrnn_engine::evaluation::stream::StreamScorer;
use charrnn_engine::evaluation::windows::{window_starts, WindowScorer};
use charrnn_engine::Precision;
use charrnn_engine::{CellKind, Model, ModelConfig};

fn counts() -> (usize, usize) {
    (ALLOCATIONS.load(Ordering::SeqCst), FREES.load(Ordering::SeqCst))
}

#[test]
fn scoring_allocates_nothing() {
    let ids: Vec<u32> = (0..3000u32).map(|i| (i * 7 + i / 13) % 30).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let config = ModelConfig { cell, vocab_size: 30, embed_size: 8, hidden_size: 24, num_layers: 2 };
        let model = Model::<f32>::new(config, 2);
        for precision in [Precision::F32, Precision::Bf16] {
            let run = format!("{cell:?}, {precision} products");
            pool.install(|| {
                let mut stream = StreamScorer::new(&model, precision);
                let mut sum = 0.0;
                stream.score(&ids, |_, lp| sum += lp).unwrap();
                let before = counts();
                for _ in 0..2 {
                    stream.score(&ids, |_, lp| sum += lp).unwrap();
                }
                let after = counts();
                assert_eq!((after.0 - before.0, after.1 - before.1), (0, 0), "{run}, stream: allocations and frees");
                assert!(sum < 0.0);
            });
            let starts = window_starts(ids.len(), 100, 30, 3).unwrap();
            pool.install(|| {
                let mut windows = WindowScorer::new(&model, precision, 100, 30, 2).unwrap();
                windows.score(&ids, &starts).unwrap();
                let before = counts();
                for _ in 0..2 {
                    windows.score(&ids, &starts).unwrap();
                }
                let after = counts();
                assert_eq!((after.0 - before.0, after.1 - before.1), (0, 0), "{run}, windows: allocations and frees");
            });
        }
    }
}
