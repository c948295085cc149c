//! The text as one stream from a zero state: symbol `i + 1` predicted after reading symbols
//! `0..=i`, the state carried over the whole text. This is how the model is used and the
//! exact figure, but it is one row: the text goes through in chunks of [`STREAM_CHUNK`] steps,
//! each chunk's input projection one product, its last chunk padded.

use charrnn_kernels::{Float, Precision};

use crate::evaluation::error::ScoreError;
use crate::evaluation::part::{check_symbols, packed_for_scoring, ScoringPart};
use crate::evaluation::score::Score;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;

/// Steps per chunk of the stream.
pub const STREAM_CHUNK: usize = 256;

/// Scores texts as one stream; every buffer is allocated by [`StreamScorer::new`].
pub struct StreamScorer<'m, F> {
    model: &'m Model<F>,
    packed: PackedWeights<F>,
    part: ScoringPart<F>,
}

impl<'m, F: Float> StreamScorer<'m, F> {
    /// A scorer of `model` whose products round their operands to `precision`.
    pub fn new(model: &'m Model<F>, precision: Precision) -> StreamScorer<'m, F> {
        charrnn_kernels::gemm::reserve_scratch(model.config.widest_product());
        StreamScorer {
            packed: packed_for_scoring(model, 1, precision),
            part: ScoringPart::new(&model.config, 1, STREAM_CHUNK, precision),
            model,
        }
    }

    /// Scores `ids` (the text's symbols) from a zero state: `ids.len() − 1` predictions.
    /// `each(position, log_p)` is told the natural log-probability of symbol `position + 1`, in
    /// order. Allocates nothing.
    pub fn score(&mut self, ids: &[u32], mut each: impl FnMut(usize, f64)) -> Result<Score, ScoreError> {
        if ids.len() < 2 {
            return Err(ScoreError::TextTooShort { len: ids.len() });
        }
        check_symbols(ids, self.model.config.vocab_size)?;
        let predicted = ids.len() - 1;
        let chunk = self.part.chunk();
        self.part.reset_state();
        let mut nats = 0.0f64;
        for start in (0..predicted).step_by(chunk) {
            let valid = chunk.min(predicted - start);
            let (inputs, targets) = self.part.batch_mut();
            inputs[..valid].copy_from_slice(&ids[start..start + valid]);
            targets[..valid].copy_from_slice(&ids[start + 1..start + valid + 1]);
            // The steps after the text's end: any symbol, read after every real one, so they
            // change nothing before them; their losses are not counted.
            inputs[valid..].fill(0);
            targets[valid..].fill(0);
            let losses = self.part.run(self.model, &self.packed);
            for (t, &loss) in losses[..valid].iter().enumerate() {
                nats += loss;
                each(start + t, -loss);
            }
        }
        Ok(Score { nats, predicted })
    }
}
