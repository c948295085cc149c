//! The three products of a dense map `Y[rows, output] = X[rows, input]·W[input, output]` over
//! contiguous row-major buffers, as llm.c's `matmul_forward`/`matmul_backward`: the forward
//! product, the weight gradient and the input gradient. The embedding table, the input
//! projections, the recurrent weights' gradient and the decoder are all this map.

use charrnn_kernels::gemm::{Gemm, Op};
use charrnn_kernels::{Float, Kernel, Precision};

/// The shape of `Y = X·W`, and what its operands are rounded to.
#[derive(Clone, Copy, Debug)]
pub struct MatmulDims {
    /// The operands' precision (the sums are accumulated in `F` either way).
    pub precision: Precision,
    /// Rows of `X` and `Y`.
    pub rows: usize,
    /// Columns of `X`, rows of `W`.
    pub input: usize,
    /// Columns of `W` and `Y`.
    pub output: usize,
}

/// `y += x·w`: `y` holds the bias (or whatever is to be added) on entry.
pub fn matmul_forward<F: Float>(d: MatmulDims, x: &[F], w: &[F], y: &mut [F]) {
    let MatmulDims { precision, rows, input, output } = d;
    Gemm {
        op_a: Op::N,
        op_b: Op::N,
        m: rows,
        n: output,
        k: input,
        alpha: F::one(),
        a: x,
        lda: input,
        b: w,
        ldb: output,
        beta: F::one(),
        c: y,
        ldc: output,
        precision,
    }
    .run();
}

/// `dw += xᵀ·dy`: gradients accumulate over the parts of a step.
pub fn matmul_backward_weight<F: Float>(d: MatmulDims, x: &[F], dy: &[F], dw: &mut [F]) {
    let MatmulDims { precision, rows, input, output } = d;
    Gemm {
        op_a: Op::T,
        op_b: Op::N,
        m: input,
        n: output,
        k: rows,
        alpha: F::one(),
        a: x,
        lda: input,
        b: dy,
        ldb: output,
        beta: F::one(),
        c: dw,
        ldc: output,
        precision,
    }
    .run();
}

/// `dx = dy·wᵀ + beta·dx`: `beta` 0 where `dx` is written here first, 1 where it accumulates.
pub fn matmul_backward_input<F: Float>(d: MatmulDims, dy: &[F], w: &[F], beta: F, dx: &mut [F]) {
    let MatmulDims { precision, rows, input, output } = d;
    Gemm {
        op_a: Op::N,
        op_b: Op::T,
        m: rows,
        n: input,
        k: output,
        alpha: F::one(),
        a: dy,
        lda: output,
        b: w,
        ldb: output,
        beta,
        c: dx,
        ldc: input,
        precision,
    }
    .run();
}
