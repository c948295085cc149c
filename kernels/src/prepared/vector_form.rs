//! The form of a prepared matrix that one-row products read: `W` row-major in `f32` for
//! [`Gemv`], or bf16 pairs of rows for [`GemvBf16`] where the CPU multiplies bf16 natively.

use crate::dispatch::CpuLevel;
use crate::gemm::pack::Strided;
use crate::gemv::bf16_pairs::{Bf16Rows, GemvBf16};
use crate::gemv::Gemv;
use crate::kernel::{FastKernel, Kernel};
use crate::line_aligned::LineAligned;
use crate::Precision;

/// A `k×n` matrix for matrix-vector products.
#[derive(Clone, Debug)]
pub(crate) enum VectorForm {
    /// Row-major `k×n` `f32` (the products of [`Precision::F32`]), on whole cache lines: the
    /// kernel streams it at every step, and an unaligned row splits its vector loads.
    F32 { k: usize, n: usize, w: LineAligned<f32> },
    /// bf16 pairs of rows (the products of [`Precision::Bf16`] at a native level).
    Bf16(Bf16Rows),
}

impl VectorForm {
    /// Room for a `k×n` matrix whose products are in `precision`.
    pub(crate) fn new(k: usize, n: usize, precision: Precision) -> VectorForm {
        match precision {
            Precision::F32 => VectorForm::F32 { k, n, w: LineAligned::new(k * n) },
            Precision::Bf16 => VectorForm::Bf16(Bf16Rows::new(k, n)),
        }
    }

    /// Fills the form from the `k×n` matrix `w` views (element `(p, j)` at
    /// `w.data[p·w.rs + j·w.cs]`), rounded for bf16. Allocates nothing.
    ///
    /// # Panics
    /// If `w.data` is too short (an index out of bounds: the caller checks the shape first).
    pub(crate) fn fill(&mut self, w: Strided<'_>) {
        match self {
            VectorForm::F32 { n, w: out, .. } => {
                for (p, row) in out.chunks_exact_mut((*n).max(1)).enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = w.data[p * w.rs + j * w.cs];
                    }
                }
            }
            VectorForm::Bf16(rows) => rows.pack_strided(w),
        }
    }

    /// `y[..n] += x[..k]·W` at `level`.
    ///
    /// # Safety
    /// `x.len() >= k` and `y.len() >= n`; `level` is one this CPU supports.
    pub(crate) unsafe fn multiply_add(&self, level: CpuLevel, x: &[f32], y: &mut [f32]) {
        match self {
            // SAFETY: `Gemv::check` holds: `x` and `y` by the caller's contract, and `w` holds
            // the `k×n` matrix with `ldw = n` (`k·n` elements, made so by `new`).
            VectorForm::F32 { k, n, w } => unsafe { Gemv { k: *k, n: *n, x, w, ldw: *n, y }.fast(level) },
            // SAFETY: `GemvBf16::check` is `x.len() >= k`, `y.len() >= n`: the caller's contract.
            VectorForm::Bf16(w) => unsafe { GemvBf16 { x, w, y }.fast(level) },
        }
    }

    /// [`VectorForm::multiply_add`] by the plain bodies of the same kernels.
    ///
    /// # Safety
    /// As [`VectorForm::multiply_add`].
    pub(crate) unsafe fn multiply_add_plain(&self, x: &[f32], y: &mut [f32]) {
        match self {
            // SAFETY: as in `multiply_add`.
            VectorForm::F32 { k, n, w } => unsafe { Gemv { k: *k, n: *n, x, w, ldw: *n, y }.plain() },
            // SAFETY: as in `multiply_add`.
            VectorForm::Bf16(w) => unsafe { GemvBf16 { x, w, y }.plain() },
        }
    }
}
