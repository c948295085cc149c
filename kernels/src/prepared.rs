//! A weight matrix prepared once for many products `Y = X·W` or `Y += X·W` (the recurrent
//! weights at every time step of a training step, every weight of a sampling step), and the
//! product that chooses its kernel from the number of rows it is called with.
//!
//! [`PreparedMatrix`] owns the form of `W` its products read, made by
//! [`PreparedMatrix::prepare`] without allocating: for products of one row, `W` row-major for
//! the `f32` matrix-vector product ([`crate::gemv::Gemv`]) or as bf16 pairs of rows where the
//! CPU multiplies bf16 natively ([`crate::gemv::bf16_pairs::GemvBf16`]); otherwise panels for
//! the GEMM ([`crate::gemm::PackedB`]). [`PreparedProduct`] runs one row as a matrix-vector
//! product where the matrix has that form, and any number of rows as a GEMM over the panels.
//! Each element is summed over the same depth blocks in the same order either way, so a row's
//! values do not depend on how many rows a product has. Which form, and which kernel, follows
//! from the CPU level here: callers name only a [`Precision`](crate::Precision).

mod matrix;
mod product;
mod vector_form;

pub use matrix::PreparedMatrix;
pub use product::PreparedProduct;
