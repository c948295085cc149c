//! Output layer: linear `H → V` and softmax cross-entropy, averaged over the `T·B` rows.

use charrnn_kernels::reduce::{broadcast_rows, col_sums_accumulate};
use charrnn_kernels::softmax_xent::{SoftmaxXent, SoftmaxXentLoss};
use charrnn_kernels::{Float, Kernel};

use crate::model::matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward, MatmulDims};

/// `logits = h·W + b` for the rows of `h` (`d`: `[rows, H]·[H, V]`).
pub fn decoder_logits<F: Float>(d: MatmulDims, h: &[F], w: &[F], b: &[F], logits: &mut [F]) {
    broadcast_rows(d.rows, d.output, b, logits);
    matmul_forward(d, h, w, logits);
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
    d: MatmulDims,
    h: &[F],
    w: &[F],
    dlogits: &[F],
    dw: &mut [F],
    db: &mut [F],
    dh: &mut [F],
) {
    matmul_backward_weight(d, h, dlogits, dw);
    col_sums_accumulate(d.rows, d.output, dlogits, db);
    matmul_backward_input(d, dlogits, w, F::zero(), dh);
}
