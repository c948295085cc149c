//! The charrnn-fast engine: data pipeline, model, truncated-BPTT training and sampling.
//!
//! Reads like llm.c: each layer has explicit forward and backward functions over buffers that
//! a [`workspace::Workspace`] allocates once; [`pass`] composes them.

// The one unsafe operation is memory-mapping the token file (`data/token_stream.rs`), allowed
// there alone; every other unsafe block belongs in the kernels crate.
#![deny(unsafe_code)]

pub mod atomic_file;
pub mod beam;
pub mod checkpoint;
pub mod collective;
pub mod config;
pub mod data;
pub mod decoder;
pub mod dropout;
pub mod embedding;
mod error_text;
pub mod inference;
pub mod matmul;
pub mod memory;
pub mod model_dir;
pub mod optim;
pub mod packed_weights;
pub mod params;
pub mod pass;
pub mod phase_times;
pub mod recurrent;
pub mod run_plan;
pub mod run_settings;
pub mod sample;
pub mod setting_names;
pub mod split_step;
pub mod tensor_file;
pub mod torch_layout;
pub mod train;
pub mod workspace;

pub use config::{CellKind, ModelConfig};
pub use packed_weights::PackedWeights;
pub use params::Model;
pub use workspace::{State, Workspace};
