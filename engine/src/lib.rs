//! The charrnn-fast engine: data pipeline, model, truncated-BPTT training and sampling, in
//! folders by layer: [`data`] (corpus, vocabulary, token stream, batches), [`model`] (shape,
//! parameters, buffers, each layer's forward and backward), [`training`] (the step, the run,
//! the optimiser, the processes that train together), [`inference`] (the prepared step,
//! sampling, beam search), [`evaluation`] (scoring a text: as one stream, or in random windows)
//! and [`files`] (checkpoints, model directories, atomic writes).
//!
//! Reads like llm.c: each layer has explicit forward and backward functions over buffers that
//! a [`Workspace`] allocates once; [`model::pass`] composes them.

// The one unsafe operation is memory-mapping the token file (`data/token_stream.rs`), allowed
// there alone; every other unsafe block belongs in the kernels crate.
#![deny(unsafe_code)]

pub mod data;
mod error_text;
pub mod evaluation;
pub mod files;
pub mod inference;
pub mod model;
pub mod setting_names;
pub mod training;

pub use charrnn_kernels::adam::AdamHyper;
pub use charrnn_kernels::Precision;
pub use model::config::{CellKind, ModelConfig};
pub use model::packed_weights::PackedWeights;
pub use model::params::Model;
pub use model::workspace::{State, Workspace};
