//! The text as one stream from a zero state: symbol `i + 1` predicted after reading symbols
//! `0..=i`, the state carried over the whole text. This is how the model is used and the
//! exact figure, but it is one row: the text goes through in chunks of [`STREAM_CHUNK`] steps,
//! each chunk's input projections one product per layer, its last chunk padded, and the layers
//! run as a pipeline over the chunks ([`crate::evaluation::pipeline`]), a layer per thread.

use charrnn_kernels::{Float, Precision};

use crate::evaluation::error::ScoreError;
use crate::evaluation::part::{check_symbols, packed_for_scoring, reserve_scratch_everywhere};
use crate::evaluation::pipeline::LayerPipeline;
use crate::evaluation::score::Score;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;

/// Steps per chunk of the stream.
pub const STREAM_CHUNK: usize = 256;

/// Scores texts as one stream; every buffer is allocated by [`StreamScorer::new`].
pub struct StreamScorer<'m, F> {
    model: &'m Model<F>,
    packed: PackedWeights<F>,
    pipeline: LayerPipeline<F>,
}

impl<'m, F: Float> StreamScorer<'m, F> {
    /// A scorer of `model` whose products round their operands to `precision`, its layers run
    /// on the current thread pool.
    pub fn new(model: &'m Model<F>, precision: Precision) -> StreamScorer<'m, F> {
        reserve_scratch_everywhere(model);
        StreamScorer {
            packed: packed_for_scoring(model, 1, precision),
            pipeline: LayerPipeline::new(model, STREAM_CHUNK, precision),
            model,
        }
    }

    /// Scores `ids` (the text's symbols) from a zero state: `ids.len() − 1` predictions.
    /// `each(position, log_p)` is told the natural log-probability of symbol `position + 1`, in
    /// order. Allocates nothing when called on a thread of the pool.
    pub fn score(&mut self, ids: &[u32], mut each: impl FnMut(usize, f64) + Send) -> Result<Score, ScoreError> {
        if ids.len() < 2 {
            return Err(ScoreError::TextTooShort { len: ids.len() });
        }
        check_symbols(ids, self.model.config.vocab_size)?;
        // Every wave runs its stages on the pool: the pool is entered once for the whole text,
        // not at every wave.
        let nats = rayon::scope(|_| self.run_waves(ids, &mut each));
        Ok(Score { nats, predicted: ids.len() - 1 })
    }

    /// The summed loss of `ids`, every chunk through the pipeline.
    fn run_waves(&mut self, ids: &[u32], each: &mut impl FnMut(usize, f64)) -> f64 {
        let predicted = ids.len() - 1;
        let chunk = self.pipeline.chunk();
        let chunks = predicted.div_ceil(chunk);
        // The positions of chunk `c` that the text has.
        let valid = |c: usize| c * chunk..predicted.min((c + 1) * chunk);
        self.pipeline.reset_state();
        let mut nats = 0.0f64;
        for wave in 0..self.pipeline.waves(chunks) {
            let (entering, leaving) = self.pipeline.chunks_of_wave(wave, chunks);
            let (inputs, targets) = self.pipeline.chunk_ends_mut();
            // The steps after the text's end: any symbol, read after every real one, so they
            // change nothing before them; their losses are not counted.
            if let Some(c) = entering {
                let positions = valid(c);
                inputs.fill(0);
                inputs[..positions.len()].copy_from_slice(&ids[positions]);
            }
            if let Some(c) = leaving {
                let positions = valid(c);
                targets.fill(0);
                targets[..positions.len()].copy_from_slice(&ids[positions.start + 1..positions.end + 1]);
            }
            let losses = self.pipeline.run_wave(self.model, &self.packed, wave, chunks);
            if let (Some(c), Some(losses)) = (leaving, losses) {
                for (position, &loss) in valid(c).zip(losses) {
                    nats += loss;
                    each(position, -loss);
                }
            }
        }
        nats
    }
}
