//! Output layer: linear `H → V` and softmax cross-entropy, averaged over the `T·B` rows.

use charrnn_kernels::reduce::{broadcast_rows, col_sums_accumulate};
use charrnn_kernels::softmax_xent::{SoftmaxXent, SoftmaxXentLoss};
use charrnn_kernels::{Float, Kernel};

use crate::matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward, MatmulDims};

/// `logits = h·W + b` for `rows` rows of `h` (`[rows, H]`), `W` `[H, V]`.
pub fn decoder_logits<F: Float>(rows: usize, hidden: usize, vocab: usize, h: &[F], w: &[F], b: &[F], logits: &mut [F]) {
    broadcast_rows(rows, vocab, b, logits);
    matmul_forward(MatmulDims { rows, input: hidden, output: vocab }, h, w, logits);
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
    let dims = MatmulDims { rows, input: hidden, output: vocab };
    matmul_backward_weight(dims, h, dlogits, dw);
    col_sums_accumulate(rows, vocab, dlogits, db);
    matmul_backward_input(dims, dlogits, w, F::zero(), dh);
}
