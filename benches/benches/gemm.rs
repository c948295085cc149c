//! Each kernel against its reference twin (and GEMM against `matrixmultiply` called directly),
//! on the shapes of the default model: B=50, H=E=128, V=65, T=50.

use charrnn_kernels::gemm::{gemm, Op};
use charrnn_kernels::lstm_cell::{lstm_cell_backward, lstm_cell_forward};
use charrnn_kernels::reference;
use charrnn_kernels::softmax_xent::softmax_xent_forward_backward;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    // (name, m, k, n): recurrent step, hoisted input projection, output layer.
    for &(name, m, k, n) in &[
        ("step_50x128x512", 50, 128, 512),
        ("input_2500x128x512", 2500, 128, 512),
        ("output_2500x128x65", 2500, 128, 65),
    ] {
        let a = random(m * k, 1);
        let b = random(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::new("ours", name), |bench| {
            bench.iter(|| {
                gemm(
                    Op::N,
                    Op::N,
                    m,
                    n,
                    k,
                    1.0,
                    black_box(&a),
                    k,
                    black_box(&b),
                    n,
                    0.0,
                    &mut out,
                    n,
                )
            })
        });
        group.bench_function(BenchmarkId::new("matrixmultiply", name), |bench| {
            bench.iter(|| {
                // SAFETY: a is m×k, b is k×n, out is m×n, all contiguous row-major and in bounds.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            })
        });
        if m * k * n <= 50 * 128 * 512 {
            group.bench_function(BenchmarkId::new("reference", name), |bench| {
                bench.iter(|| {
                    reference::gemm(
                        Op::N,
                        Op::N,
                        m,
                        n,
                        k,
                        1.0,
                        black_box(&a),
                        k,
                        black_box(&b),
                        n,
                        0.0,
                        &mut out,
                        n,
                    )
                })
            });
        }
    }
    group.finish();
}

fn bench_cells(c: &mut Criterion) {
    let (batch, hidden) = (50, 128);
    let pre = random(batch * 4 * hidden, 3);
    let c_prev = random(batch * hidden, 4);
    let dh = random(batch * hidden, 5);
    let mut group = c.benchmark_group("lstm_cell_fwd_bwd_50x128");
    group.throughput(Throughput::Elements((batch * hidden) as u64));
    group.bench_function("ours", |bench| {
        let (mut gates, mut cc, mut h) = (
            pre.clone(),
            vec![0.0f32; batch * hidden],
            vec![0.0f32; batch * hidden],
        );
        let (mut dc, mut dg) = (
            vec![0.0f32; batch * hidden],
            vec![0.0f32; batch * 4 * hidden],
        );
        bench.iter(|| {
            gates.copy_from_slice(&pre);
            lstm_cell_forward(batch, hidden, &mut gates, &c_prev, &mut cc, &mut h);
            dc.fill(0.0);
            lstm_cell_backward(batch, hidden, &gates, &c_prev, &cc, &dh, &mut dc, &mut dg);
        })
    });
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (pre64, c64, dh64, zero) = (
        to64(&pre),
        to64(&c_prev),
        to64(&dh),
        vec![0.0f64; batch * hidden],
    );
    group.bench_function("reference_f64", |bench| {
        bench.iter(|| reference::lstm_cell(batch, hidden, &pre64, &c64, &dh64, &zero))
    });
    group.finish();

    let (rows, vocab) = (2500, 65);
    let logits = random(rows * vocab, 6);
    let targets: Vec<u32> = (0..rows as u32).map(|i| i % vocab as u32).collect();
    let mut d = vec![0.0f32; rows * vocab];
    let mut group = c.benchmark_group("softmax_xent_2500x65");
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("ours", |bench| {
        bench.iter(|| {
            softmax_xent_forward_backward(
                rows,
                vocab,
                black_box(&logits),
                &targets,
                1.0 / rows as f32,
                &mut d,
            )
        })
    });
    let l64: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    group.bench_function("reference_f64", |bench| {
        bench.iter(|| reference::softmax_xent(rows, vocab, &l64, &targets, 1.0 / rows as f64))
    });
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_cells);
criterion_main!(benches);
