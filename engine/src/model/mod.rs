//! The model, read like llm.c: its shape ([`config`]), its cells ([`cell`]: each one's state
//! and step, in one place), its parameters in one flat buffer ([`params`]), the buffers a pass
//! needs ([`workspace`]), each layer's explicit forward and backward ([`embedding`], [`recurrent`], [`decoder`], [`dropout`], [`weight_drop`], over [`matmul`]'s
//! products), and [`pass`], which composes them.

pub(crate) mod cell;
pub mod config;
pub(crate) mod decoder;
pub mod dropout;
pub(crate) mod embedding;
pub(crate) mod matmul;
pub(crate) mod packed_weights;
pub(crate) mod params;
pub mod pass;
pub mod phase_times;
pub(crate) mod recurrent;
pub mod weight_drop;
pub mod workspace;
