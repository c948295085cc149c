//! The fused elementwise kernels (dispatched to this CPU's best level, or to the level
//! `CHARRNN_CPU_LEVEL` caps it at) against their plain scalar twins, which use `f32::exp` /
//! `f32::tanh` from the platform's libm:
//! - LSTM cell forward + backward, (B, H) = (50, 128) and (50, 512);
//! - softmax + cross-entropy forward + backward, [2500 × 65] and [5000 × 65];
//! - Adam over 280k (the default 2×128 model, V = 65) and 7M parameters;
//! - the squared global norm over the same buffers.
//!
//! Run: `cargo bench -p charrnn-benches --bench elementwise`.

use charrnn_kernels::adam::{AdamHyper, AdamStep};
use charrnn_kernels::dispatch::cpu_level;
use charrnn_kernels::lstm_cell::{LstmBackward, LstmForward};
use charrnn_kernels::reduce::SumSquares;
use charrnn_kernels::softmax_xent::SoftmaxXent;
use charrnn_kernels::Kernel;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

fn random(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

fn bench_lstm(c: &mut Criterion) {
    let mut group = c.benchmark_group("lstm_cell_fwd_bwd");
    for &(batch, hidden) in &[(50usize, 128usize), (50, 512)] {
        let n = batch * hidden;
        let (pre, c_prev) = (random(4 * n, 1, 3.0), random(n, 2, 2.0));
        let (dh, dc_next) = (random(n, 3, 1.0), random(n, 4, 1.0));
        let (mut cell, mut h, mut dgates) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; 4 * n]);
        let name = format!("B{batch}_H{hidden}");
        group.throughput(Throughput::Elements(n as u64));
        for ours in [true, false] {
            let id = if ours {
                BenchmarkId::new(format!("ours_{}", cpu_level().name()), &name)
            } else {
                BenchmarkId::new("scalar_reference", &name)
            };
            // `gates` (pre-activations in, activations out) and `dc` are overwritten, so each
            // timed iteration gets fresh copies from the untimed setup.
            group.bench_function(id, |b| {
                b.iter_batched_ref(
                    || (pre.clone(), dc_next.clone()),
                    |(gates, dc)| {
                        let forward = LstmForward { batch, hidden, gates, c_prev: &c_prev, c: &mut cell, h: &mut h };
                        if ours {
                            forward.run()
                        } else {
                            forward.run_plain()
                        }
                        let backward = LstmBackward {
                            batch,
                            hidden,
                            gates,
                            c_prev: &c_prev,
                            c: &cell,
                            dh: &dh,
                            dc,
                            dgates: &mut dgates,
                        };
                        if ours {
                            backward.run()
                        } else {
                            backward.run_plain()
                        }
                        black_box(&dgates);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

fn bench_softmax_xent(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_xent_fwd_bwd");
    let vocab = 65usize;
    for &rows in &[2500usize, 5000] {
        let logits = random(rows * vocab, 5, 6.0);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let targets: Vec<u32> = (0..rows).map(|_| rng.random_range(0..vocab as u32)).collect();
        let mut d = vec![0.0f32; rows * vocab];
        let scale = 1.0 / rows as f32;
        let name = format!("{rows}x{vocab}");
        group.throughput(Throughput::Elements((rows * vocab) as u64));
        group.bench_function(BenchmarkId::new(format!("ours_{}", cpu_level().name()), &name), |b| {
            b.iter(|| {
                SoftmaxXent { rows, vocab, logits: black_box(&logits), targets: &targets, scale, dlogits: &mut d }.run()
            })
        });
        group.bench_function(BenchmarkId::new("scalar_reference", &name), |b| {
            b.iter(|| {
                SoftmaxXent { rows, vocab, logits: black_box(&logits), targets: &targets, scale, dlogits: &mut d }
                    .run_plain()
            })
        });
    }
    group.finish();
}

/// Flat-buffer sizes: the default model (2×128, E = 128, V = 65) and a large one.
const FLAT_SIZES: [(&str, usize); 2] = [("280k", 280_000), ("7M", 7_000_000)];

fn bench_adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam");
    let hyper = AdamHyper::default();
    for &(name, n) in &FLAT_SIZES {
        let grads = random(n, 7, 1.0);
        let mut p = random(n, 8, 0.1);
        let mut m = random(n, 9, 0.01);
        let mut v: Vec<f32> = random(n, 10, 1e-3).iter().map(|x| x.abs()).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(format!("ours_{}", cpu_level().name()), name), |b| {
            b.iter(|| {
                AdamStep { params: &mut p, grads: black_box(&grads), m: &mut m, v: &mut v, hyper, step: 10 }.run()
            })
        });
        group.bench_function(BenchmarkId::new("scalar_reference", name), |b| {
            b.iter(|| {
                AdamStep { params: &mut p, grads: black_box(&grads), m: &mut m, v: &mut v, hyper, step: 10 }.run_plain()
            })
        });
    }
    group.finish();
}

fn bench_global_norm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sum_squares");
    for &(name, n) in &FLAT_SIZES {
        let grads = random(n, 11, 1.0);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(format!("ours_{}", cpu_level().name()), name), |b| {
            b.iter(|| SumSquares { x: black_box(&grads) }.run())
        });
        group.bench_function(BenchmarkId::new("scalar_reference", name), |b| {
            b.iter(|| SumSquares { x: black_box(&grads) }.run_plain())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_lstm, bench_softmax_xent, bench_adam, bench_global_norm);
criterion_main!(benches);
