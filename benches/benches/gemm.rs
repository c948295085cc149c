//! GEMM: ours (runtime-dispatched SIMD) against `matrixmultiply` (the baseline and fallback)
//! and the `gemm` crate (a dev-only baseline), single-threaded, on the shapes of both configs:
//! seed (B=50, H=E=128, V=65, T=50) and big (B=50, H=E=512, T=100); ours also with every core
//! on the large shapes, and ours at bf16 precision (`ours_bf16_1t`: operands rounded to bf16,
//! `f32` accumulation; `vdpbf16ps` at the `avx512bf16` level). Throughput is in flops (2 per
//! multiply-add): criterion prints GFLOP/s.
//! `peak` measures this machine's single-core FMA (and bf16 dot-product) throughput for the
//! fraction-of-peak figures.

use charrnn_kernels::dispatch::{cpu_level, detected_level};
use charrnn_kernels::gemm::{Gemm, GemmPacked, Op, PackedB};
use charrnn_kernels::peak::trial_flops;
use charrnn_kernels::{Kernel, Precision};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// (name, op_a, op_b, m, n, k). Stored shapes follow from the ops.
const SHAPES: &[(&str, Op, Op, usize, usize, usize)] = &[
    ("seed_step_50x128x512", Op::N, Op::N, 50, 512, 128),
    ("step_50x256x512", Op::N, Op::N, 50, 512, 256),
    ("seed_input_2500x128x512", Op::N, Op::N, 2500, 512, 128),
    ("seed_output_2500x128x65", Op::N, Op::N, 2500, 65, 128),
    ("seed_wgrad_T_128x2500x512", Op::T, Op::N, 128, 512, 2500),
    ("seed_dx_NT_2500x512x128", Op::N, Op::T, 2500, 128, 512),
    ("big_step_50x512x2048", Op::N, Op::N, 50, 2048, 512),
    ("big_input_5000x512x2048", Op::N, Op::N, 5000, 2048, 512),
    ("big_output_5000x512x65", Op::N, Op::N, 5000, 65, 512),
    ("big_wgrad_T_512x5000x2048", Op::T, Op::N, 512, 2048, 5000),
    ("big_dx_NT_5000x2048x512", Op::N, Op::T, 5000, 512, 2048),
];

fn strides(op: Op, ld: usize) -> (isize, isize) {
    match op {
        Op::N => (ld as isize, 1),
        Op::T => (1, ld as isize),
    }
}

fn bench_gemm(c: &mut Criterion) {
    eprintln!("gemm bench: CPU level {:?} (detected {:?})", cpu_level(), detected_level());
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let all = rayon::ThreadPoolBuilder::new().num_threads(cores).build().expect("pool");
    let mut group = c.benchmark_group("gemm");
    for &(name, op_a, op_b, m, n, k) in SHAPES {
        let (lda, ldb) = (if op_a == Op::N { k } else { m }, if op_b == Op::N { n } else { k });
        let a = random(m * k, 1);
        let b = random(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let product = |c: &mut [f32], precision| {
            let (a, b) = (black_box(&a[..]), black_box(&b[..]));
            Gemm { op_a, op_b, m, n, k, alpha: 1.0, a, lda, b, ldb, beta: 0.0, c, ldc: n, precision }.run()
        };
        let work = m * n * k;
        group.throughput(Throughput::Elements((2 * work) as u64));
        group.sample_size(if work > 100_000_000 { 10 } else { 30 });
        for (ours, precision) in [("ours", Precision::F32), ("ours_bf16", Precision::Bf16)] {
            group.bench_function(BenchmarkId::new(format!("{ours}_1t"), name), |bench| {
                one.install(|| bench.iter(|| product(&mut out, precision)))
            });
        }
        if work > 10_000_000 && cores > 1 {
            group.bench_function(BenchmarkId::new(format!("ours_{cores}t"), name), |bench| {
                all.install(|| bench.iter(|| product(&mut out, Precision::F32)))
            });
        }
        for (ours, precision) in [("ours", Precision::F32), ("ours_bf16", Precision::Bf16)] {
            if m > 50 {
                break;
            }
            // The recurrent product reuses a pre-packed weight T times per step.
            let mut packed = PackedB::new(k, n, precision);
            packed.pack(op_b, &b, ldb);
            group.bench_function(BenchmarkId::new(format!("{ours}_packed_1t"), name), |bench| {
                one.install(|| {
                    bench.iter(|| {
                        GemmPacked {
                            op_a,
                            m,
                            alpha: 1.0,
                            a: black_box(&a),
                            lda,
                            b: &packed,
                            beta: 0.0,
                            c: &mut out,
                            ldc: n,
                        }
                        .run()
                    })
                })
            });
        }
        let (rsa, csa) = strides(op_a, lda);
        let (rsb, csb) = strides(op_b, ldb);
        group.bench_function(BenchmarkId::new("matrixmultiply", name), |bench| {
            bench.iter(|| {
                // SAFETY: a, b and out hold the stored shapes implied by the strides; in bounds.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rsa,
                        csa,
                        b.as_ptr(),
                        rsb,
                        csb,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            })
        });
        group.bench_function(BenchmarkId::new("gemm_crate", name), |bench| {
            bench.iter(|| {
                // SAFETY: as above; `gemm` takes (column stride, row stride) pairs and computes
                // dst = beta·lhs·rhs when read_dst is false.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        csa,
                        rsa,
                        b.as_ptr(),
                        csb,
                        rsb,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            })
        });
    }
    group.finish();
}

fn bench_peak(c: &mut Criterion) {
    let level = cpu_level();
    let iterations = 100_000u64;
    let mut group = c.benchmark_group("peak");
    for precision in [Precision::F32, Precision::Bf16] {
        group.throughput(Throughput::Elements(iterations * 24 * charrnn_kernels::peak::op_flops(level, precision)));
        let name = charrnn_kernels::peak::peak_instruction(level, precision).replace(' ', "_");
        group.bench_function(format!("{name}_{}", level.name()), |bench| {
            bench.iter(|| trial_flops(level, precision, iterations))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_peak);
criterion_main!(benches);
