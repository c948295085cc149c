//! A whole training step (forward, backward, clip, Adam) of the default model on random
//! tokens, with 1 thread and with every core: the figure `charrnn-fast train` reports as
//! tokens/s.

use charrnn_engine::model::pass::{backward, forward, Pass, PassOptions};
use charrnn_engine::model::phase_times::PhaseTimes;
use charrnn_engine::training::optim::{clip_global_norm, Adam};
use charrnn_engine::AdamHyper;
use charrnn_engine::{CellKind, Model, ModelConfig, PackedWeights, State, Workspace};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench_step(c: &mut Criterion) {
    let (batch, seq_len) = (50, 50);
    let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 128, num_layers: 2 };
    let mut group = c.benchmark_group("train_step_seed_lstm_2x128_b50_t50");
    group.throughput(Throughput::Elements((batch * seq_len) as u64));
    group.sample_size(20);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        let mut model = Model::<f32>::new(config, 42);
        let mut ws = Workspace::new(&config, batch, seq_len);
        let mut packed = PackedWeights::for_training(&config, batch, ws.precision());
        packed.pack(&model);
        let mut state = State::zeros(&config, batch);
        let mut grads = vec![0.0f32; model.params.len()];
        let (options, mut times) = (PassOptions::default(), PhaseTimes::default());
        let mut adam = Adam::new(model.params.len(), AdamHyper::default());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (x, y) in ws.inputs.iter_mut().zip(ws.targets.iter_mut()) {
            *x = rng.random_range(0..65);
            *y = rng.random_range(0..65);
        }
        group.bench_function(format!("threads_{threads}"), |bench| {
            bench.iter(|| {
                pool.install(|| {
                    forward(&model, &packed, &mut ws, &mut state, Pass::Train, &options, &mut times);
                    backward(&model, &packed, &mut ws, &mut grads, &options, &mut times);
                    clip_global_norm(&mut grads, 5.0);
                    adam.update(&mut model.params, &grads);
                    packed.pack(&model);
                })
            })
        });
        if cores == 1 {
            break;
        }
    }
    group.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
