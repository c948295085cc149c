//! Safe code cannot make a kernel read or write outside its slices: every public way to run a
//! kernel (`run`, `run_plain`, `run_at` each level this CPU has) refuses a call whose slice is
//! one element shorter than its shapes need, with a panic, before any body runs. The bodies
//! themselves (`Kernel::plain`, `FastKernel::fast`) are `unsafe fn`: safe code cannot reach them.

use std::panic::{catch_unwind, AssertUnwindSafe};

use charrnn_kernels::adam::{AdamHyper, AdamStep};
use charrnn_kernels::dispatch::available_levels;
use charrnn_kernels::gemm::{Gemm, GemmPacked, Op, PackedB};
use charrnn_kernels::gemv::bf16_pairs::{Bf16Rows, GemvBf16};
use charrnn_kernels::gemv::Gemv;
use charrnn_kernels::gru_cell::{GruBackward, GruForward};
use charrnn_kernels::lstm_cell::{LstmBackward, LstmForward};
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::rnn_cell::{RnnBackward, RnnForward};
use charrnn_kernels::softmax_xent::{SoftmaxTerms, SoftmaxXent, SoftmaxXentLoss, SoftmaxXentRows};
use charrnn_kernels::{FastKernel, Kernel, Precision};

/// How a call is run: each public entry point.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Run,
    Plain,
    At(charrnn_kernels::dispatch::CpuLevel),
}

fn entries() -> Vec<Entry> {
    let mut all = vec![Entry::Run, Entry::Plain];
    all.extend(available_levels().into_iter().map(Entry::At));
    all
}

fn go<K>(kernel: K, entry: Entry) -> K::Output
where
    K: FastKernel + charrnn_kernels::kernel::KernelArgs<F32 = K>,
{
    match entry {
        Entry::Run => kernel.run(),
        Entry::Plain => kernel.run_plain(),
        Entry::At(level) => kernel.run_at(level),
    }
}

/// Asserts that `call(short)` panics for every entry when `short` is true, and runs when false
/// (so that the refusal is the short slice's, not a mistake in the call).
fn refused(name: &str, call: impl Fn(bool, Entry)) {
    for entry in entries() {
        call(false, entry);
        let outcome = catch_unwind(AssertUnwindSafe(|| call(true, entry)));
        let Err(payload) = outcome else { panic!("{name} at {entry:?} accepted a slice one element short") };
        // Refused by a check of the shapes, not by a body that ran and then indexed out of
        // its slice (a safe panic, but after writing part of its output).
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(
            !message.contains("index out of bounds") && !message.contains("out of range for slice"),
            "{name} at {entry:?} was refused by a body's indexing, not by its check: {message}"
        );
    }
}

/// Buffers of the sizes given, the one named by `short` (its index) one element shorter.
fn buffers(sizes: &[usize], short: Option<usize>) -> Vec<Vec<f32>> {
    sizes.iter().enumerate().map(|(i, &n)| vec![0.25; if Some(i) == short { n - 1 } else { n }]).collect()
}

#[test]
fn gemm_refuses_short_operands() {
    let (m, n, k) = (5, 37, 9);
    for (which, op_a, op_b) in [(0, Op::N, Op::N), (1, Op::T, Op::N), (2, Op::N, Op::T)] {
        for precision in [Precision::F32, Precision::Bf16] {
            refused(&format!("Gemm {op_a:?}{op_b:?} {precision:?}, operand {which}"), |short, entry| {
                let mut bufs = buffers(&[m * k, k * n, m * n], short.then_some(which));
                let (lda, ldb) = (if op_a == Op::N { k } else { m }, if op_b == Op::N { n } else { k });
                let [a, b, c] = &mut bufs[..] else { unreachable!() };
                let call = Gemm { op_a, op_b, m, n, k, alpha: 1.0, a, lda, b, ldb, beta: 0.0, c, ldc: n, precision };
                go(call, entry);
            });
        }
    }
    // C too short (the loop above shortens A or B).
    refused("Gemm, C", |short, entry| {
        let mut bufs = buffers(&[m * k, k * n, m * n], short.then_some(2));
        let [a, b, c] = &mut bufs[..] else { unreachable!() };
        let call = Gemm {
            op_a: Op::N,
            op_b: Op::N,
            m,
            n,
            k,
            alpha: 1.0,
            a,
            lda: k,
            b,
            ldb: n,
            beta: 1.0,
            c,
            ldc: n,
            precision: Precision::F32,
        };
        go(call, entry);
    });
}

#[test]
fn gemm_packed_refuses_short_operands() {
    let (m, n, k) = (5, 37, 9);
    // `f32` operands are packed in panels for the fast path, which every entry but the plain
    // body takes; the plain body is run over `f64`, whose operand is packed plainly.
    let mut packed = PackedB::<f32>::new(k, n, Precision::F32);
    packed.pack(Op::N, &vec![0.5; k * n], n);
    let mut packed64 = PackedB::<f64>::new(k, n, Precision::F32);
    packed64.pack(Op::N, &vec![0.5; k * n], n);
    for which in [0, 1] {
        refused(&format!("GemmPacked, operand {which}"), |short, entry| {
            let mut bufs = buffers(&[m * k, m * n], short.then_some(which));
            let [a, c] = &mut bufs[..] else { unreachable!() };
            if let Entry::Plain = entry {
                let (a, mut c): (Vec<f64>, Vec<f64>) =
                    (a.iter().map(|&x| f64::from(x)).collect(), c.iter().map(|&x| f64::from(x)).collect());
                let call = GemmPacked {
                    op_a: Op::N,
                    m,
                    alpha: 1.0,
                    a: &a,
                    lda: k,
                    b: &packed64,
                    beta: 0.0,
                    c: &mut c,
                    ldc: n,
                };
                return call.run_plain();
            }
            let call = GemmPacked { op_a: Op::N, m, alpha: 1.0, a, lda: k, b: &packed, beta: 0.0, c, ldc: n };
            go(call, entry);
        });
    }
}

#[test]
fn prepared_product_refuses_short_operands() {
    let (k, n) = (9, 37);
    // One row (the matrix-vector form for `f32`) and several (the GEMM's panels); the plain
    // body of the GEMM is run over `f64`, whose operand is packed plainly, as for GemmPacked.
    for m in [1, 5] {
        let mut w = PreparedMatrix::<f32>::new(k, n, Precision::F32, m);
        w.prepare(Op::N, &vec![0.5; k * n], n);
        let mut w64 = PreparedMatrix::<f64>::new(k, n, Precision::F32, m);
        w64.prepare(Op::N, &vec![0.5; k * n], n);
        for which in [0, 1] {
            refused(&format!("PreparedProduct, {m} rows, operand {which}"), |short, entry| {
                let mut bufs = buffers(&[m * k, m * n], short.then_some(which));
                let [x, y] = &mut bufs[..] else { unreachable!() };
                if let (Entry::Plain, 5) = (entry, m) {
                    let (x, mut y): (Vec<f64>, Vec<f64>) =
                        (x.iter().map(|&v| f64::from(v)).collect(), y.iter().map(|&v| f64::from(v)).collect());
                    let call = PreparedProduct { m, x: &x, ldx: k, w: &w64, accumulate: true, y: &mut y, ldy: n };
                    return call.run_plain();
                }
                go(PreparedProduct { m, x, ldx: k, w: &w, accumulate: true, y, ldy: n }, entry);
            });
        }
    }
}

#[test]
fn gemv_refuses_short_operands() {
    let (k, n) = (13, 21);
    for which in 0..3 {
        refused(&format!("Gemv, operand {which}"), |short, entry| {
            let mut bufs = buffers(&[k, k * n, n], short.then_some(which));
            let [x, w, y] = &mut bufs[..] else { unreachable!() };
            go(Gemv { k, n, x, w, ldw: n, y }, entry);
        });
    }
    let mut rows = Bf16Rows::new(k, n);
    rows.pack(&vec![0.5; k * n], n);
    for which in 0..2 {
        refused(&format!("GemvBf16, operand {which}"), |short, entry| {
            let mut bufs = buffers(&[k, n], short.then_some(which));
            let [x, y] = &mut bufs[..] else { unreachable!() };
            go(GemvBf16 { x, w: &rows, y }, entry);
        });
    }
}

#[test]
fn cells_refuse_short_slices() {
    let (batch, hidden) = (3, 17);
    let (bh, g4, g3) = (batch * hidden, 4 * batch * hidden, 3 * batch * hidden);
    for which in 0..4 {
        refused(&format!("LstmForward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[g4, bh, bh, bh], short.then_some(which));
            let [gates, c_prev, c, h] = &mut bufs[..] else { unreachable!() };
            go(LstmForward { batch, hidden, gates, c_prev, c, h }, entry);
        });
    }
    for which in 0..6 {
        refused(&format!("LstmBackward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[g4, bh, bh, bh, bh, g4], short.then_some(which));
            let [gates, c_prev, c, dh, dc, dgates] = &mut bufs[..] else { unreachable!() };
            go(LstmBackward { batch, hidden, gates, c_prev, c, dh, dc, dgates }, entry);
        });
    }
    for which in 0..4 {
        refused(&format!("GruForward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[g3, g3, bh, bh], short.then_some(which));
            let [gx, gh, h_prev, h] = &mut bufs[..] else { unreachable!() };
            go(GruForward { batch, hidden, gx, gh, h_prev, h }, entry);
        });
    }
    for which in 0..7 {
        refused(&format!("GruBackward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[g3, g3, bh, bh, g3, g3, bh], short.then_some(which));
            let [act, gh, h_prev, dh, dgx, dgh, dh_prev] = &mut bufs[..] else { unreachable!() };
            go(GruBackward { batch, hidden, act, gh, h_prev, dh, dgx, dgh, dh_prev }, entry);
        });
    }
    for which in 0..2 {
        refused(&format!("RnnForward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[bh, bh], short.then_some(which));
            let [pre, h] = &mut bufs[..] else { unreachable!() };
            go(RnnForward { pre, h }, entry);
        });
    }
    for which in 0..3 {
        refused(&format!("RnnBackward, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[bh, bh, bh], short.then_some(which));
            let [h, dh, dpre] = &mut bufs[..] else { unreachable!() };
            go(RnnBackward { h, dh, dpre }, entry);
        });
    }
}

#[test]
fn softmax_and_adam_refuse_short_slices() {
    let (rows, vocab) = (3, 19);
    let targets = [1u32, 0, 18];
    for which in 0..2 {
        refused(&format!("SoftmaxXent, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[rows * vocab, rows * vocab], short.then_some(which));
            let [logits, dlogits] = &mut bufs[..] else { unreachable!() };
            go(SoftmaxXent { rows, vocab, logits, targets: &targets, scale: 1.0, dlogits }, entry);
        });
    }
    refused("SoftmaxXent, targets", |short, entry| {
        let (logits, mut dlogits) = (vec![0.5f32; rows * vocab], vec![0.0f32; rows * vocab]);
        let targets = &targets[..if short { rows - 1 } else { rows }];
        go(SoftmaxXent { rows, vocab, logits: &logits, targets, scale: 1.0, dlogits: &mut dlogits }, entry);
    });
    refused("SoftmaxXentLoss, logits", |short, entry| {
        let bufs = buffers(&[rows * vocab], short.then_some(0));
        go(SoftmaxXentLoss { rows, vocab, logits: &bufs[0], targets: &targets }, entry);
    });
    refused("SoftmaxXentRows, logits", |short, entry| {
        let bufs = buffers(&[rows * vocab], short.then_some(0));
        go(SoftmaxXentRows { rows, vocab, logits: &bufs[0], targets: &targets, losses: &mut [0.0; 3] }, entry);
    });
    refused("SoftmaxXentRows, losses", |short, entry| {
        let logits = vec![0.5f32; rows * vocab];
        let losses = &mut [0.0; 3][..if short { rows - 1 } else { rows }];
        go(SoftmaxXentRows { rows, vocab, logits: &logits, targets: &targets, losses }, entry);
    });
    refused("SoftmaxTerms, terms", |short, entry| {
        let mut bufs = buffers(&[vocab, vocab], short.then_some(1));
        let [logits, terms] = &mut bufs[..] else { unreachable!() };
        go(SoftmaxTerms { logits, inv_temperature: 1.0, terms }, entry);
    });
    for which in 0..4 {
        refused(&format!("AdamStep, slice {which}"), |short, entry| {
            let mut bufs = buffers(&[33, 33, 33, 33], short.then_some(which));
            let [params, grads, m, v] = &mut bufs[..] else { unreachable!() };
            go(AdamStep { params, grads, m, v, hyper: AdamHyper::default(), step: 1 }, entry);
        });
    }
}
