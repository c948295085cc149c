//! [`PreparedMatrix`]: a right-hand operand in the one form its products read.

use super::vector_form::VectorForm;
use crate::dispatch::{cpu_level, CpuLevel};
use crate::gemm::pack::Strided;
use crate::gemm::{check_matrix, stored_shape, strides, Op, PackedB};
use crate::kernel::{as_f32, is_f32, CastF32};
use crate::line_aligned::LineAligned;
use crate::{Float, Precision};

/// A `k×n` operand `op(W)`, prepared for products of up to a given number of rows at one
/// [`Precision`] (see the module documentation). Allocated by [`PreparedMatrix::new`];
/// [`PreparedMatrix::prepare`] refills it without allocating; [`super::PreparedProduct`]
/// multiplies by it.
#[derive(Clone, Debug)]
pub struct PreparedMatrix<F> {
    k: usize,
    n: usize,
    precision: Precision,
    /// The CPU level the form is for (its panels are a kernel's of that level).
    level: CpuLevel,
    pub(super) form: Form<F>,
    /// Whether [`PreparedMatrix::prepare`] has filled the form.
    pub(super) ready: bool,
}

/// How a [`PreparedMatrix`] holds its operand.
#[derive(Clone, Debug)]
pub(super) enum Form<F> {
    /// Panels for the GEMM: products of more than one row, and one-row products no
    /// matrix-vector kernel takes (bf16 below a native level; element types other than `f32`).
    Panels(PackedB<F>),
    /// For one-row products only: the matrix-vector kernels' form (`f32` elements).
    Vector(VectorForm),
}

impl<F: Float> PreparedMatrix<F> {
    /// Room for a `k×n` operand that will multiply left operands of up to `rows` rows, at
    /// `precision`, for the kernels of this CPU's level.
    pub fn new(k: usize, n: usize, precision: Precision, rows: usize) -> PreparedMatrix<F> {
        Self::new_at(cpu_level(), k, n, precision, rows)
    }

    /// [`PreparedMatrix::new`] for the kernels of `level` (tests prepare for every level).
    pub(crate) fn new_at(level: CpuLevel, k: usize, n: usize, precision: Precision, rows: usize) -> PreparedMatrix<F> {
        let form = if rows == 1 && is_f32::<F>() && precision.is_native_at(level) {
            Form::Vector(VectorForm::new(k, n, precision))
        } else {
            // Panels for the micro-kernel that wastes least on `rows`-row products.
            Form::Panels(PackedB::for_rows(k, n, rows, precision))
        };
        PreparedMatrix { k, n, precision, level, form, ready: false }
    }

    /// Elements of `F` a `k×n` operand may hold, in any form (memory estimates): the GEMM's
    /// widest panels, or the matrix-vector form with the spare elements that align it.
    pub fn capacity(k: usize, n: usize) -> usize {
        PackedB::<F>::capacity(k, n).max(LineAligned::<f32>::allocation(k * n))
    }

    /// Prepares `op(W)`: stored `k×n` for [`Op::N`], `n×k` for [`Op::T`], leading dimension
    /// `ldw`; rounded to the operand's precision. Allocates nothing.
    ///
    /// # Panics
    /// If `w` is too short for the shape, or `ldw` narrower than a stored row.
    pub fn prepare(&mut self, op: Op, w: &[F], ldw: usize) {
        let (rows, cols) = stored_shape(op, self.k, self.n);
        check_matrix("W", w.len(), rows, cols, ldw);
        match &mut self.form {
            Form::Panels(panels) => panels.pack_at(self.level, op, w, ldw),
            Form::Vector(vector) => {
                let (rs, cs) = strides(op, ldw);
                vector.fill(Strided { data: as_f32(w), rs, cs });
            }
        }
        self.ready = true;
    }

    /// Rows `k` of `op(W)`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n` of `op(W)`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// What the operand is rounded to, and the products it takes part in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether its products run a matrix-vector kernel (it was prepared for one row, in a
    /// precision this CPU multiplies natively) rather than a GEMM.
    pub fn matrix_vector(&self) -> bool {
        matches!(self.form, Form::Vector(_))
    }
}

impl<'a, F: Float> CastF32 for &'a PreparedMatrix<F> {
    type F32 = &'a PreparedMatrix<f32>;

    fn cast_f32(self) -> &'a PreparedMatrix<f32> {
        assert!(is_f32::<F>(), "a prepared operand of another type taken as f32");
        // SAFETY: `F` is `f32` (asserted above), so `PreparedMatrix<F>` is `PreparedMatrix<f32>`.
        unsafe { &*(self as *const PreparedMatrix<F>).cast::<PreparedMatrix<f32>>() }
    }
}
