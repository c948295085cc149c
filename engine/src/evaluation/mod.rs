//! Scoring a text with fixed weights: the loss of every predicted symbol, by the training
//! code's forward pass (the input projection of a chunk of steps as one product, then per
//! step only `h·Wh` and the fused cell) over forward-only buffers allocated once.
//!
//! Two protocols: [`stream`], the text as one stream from a zero state (how the model is
//! used: exact, one row, the state carried over the whole text; its layers a pipeline over
//! chunks, a layer per thread), and [`windows`], random windows each from a zero state
//! (nanoGPT's `estimate_loss`, so figures compare with transformer baselines; many windows as
//! the rows of one pass, split over threads).

mod error;
mod part;
mod pipeline;
mod score;
pub mod stream;
pub mod windows;

pub use error::ScoreError;
pub use score::Score;
