//! Inference with fixed weights: a prepared step over R rows ([`step`]), one stream's step
//! split across cores ([`split_step`]), and its clients: sampling ([`sample`]) and beam search
//! ([`beam`]).

pub mod beam;
pub mod sample;
pub(crate) mod split_step;
pub mod step;
