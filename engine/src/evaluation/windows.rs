//! Random windows of the text, each from a zero state: the protocol of nanoGPT's
//! `estimate_loss` (start `i` uniform in `[0, len − W − 1]`, inputs `text[i..i+W]`, targets
//! `text[i+1..i+W+1]`, the loss averaged over all `W·N` positions), so that figures compare
//! with transformer baselines, which see a window of context and no more.
//!
//! The windows are independent, so they are the rows of one pass: each thread takes a block of
//! windows and runs them `rows` at a time, each window in chunks of at most [`MAX_CHUNK`] steps
//! (the state carried between a window's chunks). A window's loss is summed position by
//! position and the windows' in order, so the figure does not depend on the threads.

use charrnn_kernels::{Float, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::evaluation::error::ScoreError;
use crate::evaluation::part::{check_symbols, packed_for_scoring, reserve_scratch_everywhere, ScoringPart};
use crate::evaluation::score::Score;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;
use crate::training::collective::block_rows;

/// Most steps per chunk of a window.
pub const MAX_CHUNK: usize = 64;
/// Most windows one thread runs together (the rows of its passes). 128 rows make the step's
/// products wide enough to run near the kernels' peak: on the 2-core Zen 4, windows of 256 of a
/// 2 × 512 model scored 54.4k characters/s in bf16 at 128 against 48.6k at 64 and 51.9k at
/// 256 (medians of 3), and the 2 × 128 default model gained too.
pub const MAX_ROWS: usize = 128;

/// `count` window starts for windows of `width` symbols in a text of `len`, each uniform in
/// `[0, len − width − 1]`, drawn from a ChaCha8 stream of `seed`.
pub fn window_starts(len: usize, width: usize, count: usize, seed: u64) -> Result<Vec<usize>, ScoreError> {
    check_shape(len, width, count)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok((0..count).map(|_| rng.random_range(0..=len - width - 1)).collect())
}

fn check_shape(len: usize, width: usize, count: usize) -> Result<(), ScoreError> {
    if width == 0 {
        return Err(ScoreError::NoWindows { field: "windows" });
    }
    if count == 0 {
        return Err(ScoreError::NoWindows { field: "count" });
    }
    if width >= len {
        return Err(ScoreError::WindowTooLong { width, len });
    }
    Ok(())
}

/// One thread's block of windows and its buffers.
struct WindowBlock<F> {
    /// Which windows (indices into the starts).
    windows: std::ops::Range<usize>,
    part: ScoringPart<F>,
    /// Each of its windows' summed loss.
    nats: Vec<f64>,
}

/// Scores `count` windows of `width` symbols; every buffer is allocated by
/// [`WindowScorer::new`].
pub struct WindowScorer<'m, F> {
    model: &'m Model<F>,
    packed: PackedWeights<F>,
    width: usize,
    blocks: Vec<WindowBlock<F>>,
}

impl<'m, F: Float> WindowScorer<'m, F> {
    /// A scorer of `count` windows of `width` symbols of `model`, its products in
    /// `precision`, the windows split into `threads` blocks (at most one per window).
    pub fn new(
        model: &'m Model<F>,
        precision: Precision,
        width: usize,
        count: usize,
        threads: usize,
    ) -> Result<WindowScorer<'m, F>, ScoreError> {
        check_shape(usize::MAX, width, count)?;
        let threads = threads.clamp(1, count);
        // Equal chunks of at most MAX_CHUNK steps, and equal groups of at most MAX_ROWS
        // windows, so that little is padding.
        let chunk = width.div_ceil(width.div_ceil(MAX_CHUNK));
        let widest_block = count.div_ceil(threads);
        let rows = widest_block.div_ceil(widest_block.div_ceil(MAX_ROWS));
        reserve_scratch_everywhere(model);
        let blocks = (0..threads)
            .map(|b| {
                let windows = block_rows(count, threads, b);
                WindowBlock {
                    nats: vec![0.0; windows.len()],
                    part: ScoringPart::new(&model.config, rows, chunk, precision),
                    windows,
                }
            })
            .collect();
        Ok(WindowScorer { packed: packed_for_scoring(model, rows, precision), model, width, blocks })
    }

    /// Scores the windows starting at `starts` (one per window, from [`window_starts`]) of
    /// `ids`, the text's symbols: `width · count` predictions. Allocates nothing.
    pub fn score(&mut self, ids: &[u32], starts: &[usize]) -> Result<Score, ScoreError> {
        let (width, count) = (self.width, self.blocks.iter().map(|b| b.nats.len()).sum());
        if starts.len() != count {
            return Err(ScoreError::WindowCount { given: starts.len(), expected: count });
        }
        check_shape(ids.len(), width, count)?;
        let last = ids.len() - width - 1;
        if let Some(index) = starts.iter().position(|&s| s > last) {
            return Err(ScoreError::WindowOutside { index, start: starts[index], last, width });
        }
        check_symbols(ids, self.model.config.vocab_size)?;
        let (model, packed) = (self.model, &self.packed);
        self.blocks
            .par_iter_mut()
            .for_each(|block| block.score(model, packed, ids, &starts[block.windows.clone()], width));
        let nats = self.blocks.iter().flat_map(|b| &b.nats).fold(0.0f64, |sum, &n| sum + n);
        Ok(Score { nats, predicted: width * count })
    }
}

impl<F: Float> WindowBlock<F> {
    /// Scores this block's windows (`starts`), `rows` at a time, into `self.nats`.
    fn score(&mut self, model: &Model<F>, packed: &PackedWeights<F>, ids: &[u32], starts: &[usize], width: usize) {
        let (rows, chunk) = (self.part.rows(), self.part.chunk());
        for (group, nats) in starts.chunks(rows).zip(self.nats.chunks_mut(rows)) {
            nats.fill(0.0);
            self.part.reset_state();
            for from in (0..width).step_by(chunk) {
                let valid = chunk.min(width - from);
                let (inputs, targets) = self.part.batch_mut();
                for t in 0..chunk {
                    for b in 0..rows {
                        // Rows past the group and steps past the window: any symbol (their
                        // losses are not counted, and nothing before them depends on them).
                        let (x, y) = match group.get(b) {
                            Some(&start) if t < valid => (ids[start + from + t], ids[start + from + t + 1]),
                            _ => (0, 0),
                        };
                        inputs[t * rows + b] = x;
                        targets[t * rows + b] = y;
                    }
                }
                let losses = self.part.run(model, packed);
                for (b, window) in nats.iter_mut().enumerate() {
                    for t in 0..valid {
                        *window += losses[t * rows + b];
                    }
                }
            }
        }
    }
}
