//! Output layer: linear `H → V` and softmax cross-entropy, averaged over the `T·B` rows.

use charrnn_kernels::gemm::{Gemm, Op};
use charrnn_kernels::reduce::{broadcast_rows, col_sums_accumulate};
use charrnn_kernels::softmax_xent::{SoftmaxXent, SoftmaxXentLoss};
use charrnn_kernels::{Float, Kernel};

/// `logits = h·W + b` for `rows` rows of `h` (`[rows, H]`), `W` `[H, V]`.
pub fn decoder_logits<F: Float>(rows: usize, hidden: usize, vocab: usize, h: &[F], w: &[F], b: &[F], logits: &mut [F]) {
    broadcast_rows(rows, vocab, b, logits);
    Gemm {
        op_a: Op::N,
        op_b: Op::N,
        m: rows,
        n: vocab,
        k: hidden,
        alpha: F::one(),
        a: h,
        lda: hidden,
        b: w,
        ldb: vocab,
        beta: F::one(),
        c: logits,
        ldc: vocab,
    }
    .run();
}

/// Summed cross-entropy of the `rows` rows of logits against `targets`, divided by
/// `denominator`; when `dlogits` is given, also the gradient of that value with respect to the
/// logits (one fused pass per row).
pub fn decoder_loss<F: Float>(
    rows: usize,
    denominator: usize,
    vocab: usize,
    logits: &[F],
    targets: &[u32],
    dlogits: Option<&mut [F]>,
) -> f64 {
    let scale = 1.0 / denominator as f64;
    let total = match dlogits {
        Some(d) => SoftmaxXent { rows, vocab, logits, targets, scale: F::from_f64(scale), dlogits: d }.run(),
        None => SoftmaxXentLoss { rows, vocab, logits, targets }.run(),
    };
    total * scale
}

/// Accumulates `dW += hᵀ·dlogits`, `db += colsum(dlogits)` and writes `dh = dlogits·Wᵀ`.
pub fn decoder_backward<F: Float>(
    rows: usize,
    hidden: usize,
    vocab: usize,
    h: &[F],
    w: &[F],
    dlogits: &[F],
    dw: &mut [F],
    db: &mut [F],
    dh: &mut [F],
) {
    Gemm {
        op_a: Op::T,
        op_b: Op::N,
        m: hidden,
        n: vocab,
        k: rows,
        alpha: F::one(),
        a: h,
        lda: hidden,
        b: dlogits,
        ldb: vocab,
        beta: F::one(),
        c: dw,
        ldc: vocab,
    }
    .run();
    col_sums_accumulate(rows, vocab, dlogits, db);
    Gemm {
        op_a: Op::N,
        op_b: Op::T,
        m: rows,
        n: hidden,
        k: vocab,
        alpha: F::one(),
        a: dlogits,
        lda: vocab,
        b: w,
        ldb: vocab,
        beta: F::zero(),
        c: dh,
        ldc: hidden,
    }
    .run();
}
