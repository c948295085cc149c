//! One sampling step of the default model (2-layer LSTM of 128, embedding 128, V = 65),
//! weights fixed: the symbol in, the next logits out, the state carried.
//! - `training_path`: the training code's forward pass over a one-row, one-step workspace
//!   (`forward_logits`, the sampler's path before the inference step existed), which packs
//!   the input and output weights at every step and multiplies one row with GEMM tiles;
//! - `inference_1row` (f32, matrix-vector products over the model's weights) and in bf16;
//! - `inference_64rows`: 64 streams in one step (per row: time / 64), f32 and bf16;
//! - `gemv`: the largest product of a one-row step alone, `[1×256]·[256×512]`, and the
//!   output layer's `[1×128]·[128×65]`, fast path against its plain twin, in bytes of
//!   weights read per second.
//!
//! Run: `cargo bench -p charrnn-benches --bench sample_step`.

use charrnn_engine::inference::step::{InferenceStep, InferenceWeights};
use charrnn_engine::model::pass::forward_logits;
use charrnn_engine::model::phase_times::PhaseTimes;
use charrnn_engine::model::workspace::FrozenWeights;
use charrnn_engine::{CellKind, Model, ModelConfig, State, Workspace};
use charrnn_kernels::dispatch::cpu_level;
use charrnn_kernels::gemv::Gemv;
use charrnn_kernels::{Kernel, Precision};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn default_model() -> Model<f32> {
    let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 128, num_layers: 2 };
    Model::new(config, 1)
}

fn bench_step(c: &mut Criterion) {
    let model = default_model();
    let cfg = model.config;
    let mut group = c.benchmark_group("sample_step");
    group.throughput(Throughput::Elements(1));
    let level = cpu_level().name();

    let mut ws = Workspace::<f32>::new(&cfg, 1, 1);
    let mut state = State::zeros(&cfg, 1);
    let mut frozen = FrozenWeights::new(&cfg, 1, Precision::F32);
    let mut times = PhaseTimes::default();
    group.bench_function(BenchmarkId::new("training_path", level), |b| {
        b.iter(|| {
            ws.inputs[0] = (ws.inputs[0] + 7) % 65;
            forward_logits(&model, &mut ws, &mut state, &mut frozen, &mut times);
            black_box(ws.logits[0])
        })
    });
    for precision in [Precision::F32, Precision::Bf16] {
        let weights = InferenceWeights::new(std::sync::Arc::new(model.clone()), 1, precision);
        let mut step = InferenceStep::new(&cfg, 1);
        group.bench_function(BenchmarkId::new(format!("inference_1row_{precision}"), level), |b| {
            b.iter(|| {
                step.inputs[0] = (step.inputs[0] + 7) % 65;
                step.step(&weights);
                black_box(step.logits[0])
            })
        });
    }
    let rows = 64;
    group.throughput(Throughput::Elements(rows as u64));
    for precision in [Precision::F32, Precision::Bf16] {
        let weights = InferenceWeights::new(std::sync::Arc::new(model.clone()), rows, precision);
        let mut step = InferenceStep::new(&cfg, rows);
        group.bench_function(BenchmarkId::new(format!("inference_{rows}rows_{precision}"), level), |b| {
            b.iter(|| {
                for (r, x) in step.inputs.iter_mut().enumerate() {
                    *x = (*x + r as u32 + 1) % 65;
                }
                step.step(&weights);
                black_box(step.logits[0])
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("gemv");
    for (k, n) in [(256, 512), (128, 65)] {
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 1e-3).collect();
        let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.1).sin()).collect();
        let mut y = vec![0.0f32; n];
        group.throughput(Throughput::Bytes((k * n * 4) as u64));
        for ours in [true, false] {
            let name = if ours { format!("ours_{level}") } else { "plain".to_owned() };
            group.bench_function(BenchmarkId::new(name, format!("{k}x{n}")), |b| {
                b.iter(|| {
                    let gemv = Gemv { k, n, x: &x, w: &w, ldw: n, y: &mut y };
                    if ours {
                        gemv.run()
                    } else {
                        gemv.run_plain()
                    }
                    black_box(y[0])
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
