//! Numeric kernels for charrnn-fast.
//!
//! Every kernel works on plain slices with explicit shapes (row-major, with leading dimensions
//! where a matrix may be a view into a larger buffer) and knows nothing about models. Kernels
//! are generic over [`Float`] so that the engine can run the same code in `f32` (training) and
//! `f64` (gradient checks); [`kernel`] is their one API. The tests compare every fast path with
//! its plain body and with the `f64` formulas of the test-only `reference` module.

pub mod adam;
pub(crate) mod chunked;
pub mod cpu_caches;
pub mod dispatch;
pub mod float;
pub(crate) mod gate_blocks;
pub mod gemm;
pub mod gemv;
pub mod gru_cell;
pub mod kernel;
pub mod line_aligned;
pub mod lstm_cell;
pub mod math;
pub mod peak;
pub mod precision;
pub mod prepared;
pub mod reduce;
#[cfg(test)]
mod reference;
pub mod rnn_cell;
pub(crate) mod simd;
pub mod softmax_xent;

pub use float::Float;
pub use kernel::{FastKernel, Kernel};
pub use precision::Precision;
