//! One stream's step split across cores: each of `P` threads owns a contiguous range of every
//! layer's hidden units (the columns of each gate block that make them) and of the output
//! symbols, and multiplies only those columns of the weights.
//!
//! One stream's step is bound by reading the weights (the default model's 0.8 MB of `f32`, from
//! L2, at every symbol), not by arithmetic. Split by columns, each core reads its own part, which
//! stays in its own L2, so the step gets the L2 bandwidth of `P` cores. The threads meet at a
//! spinning barrier after each layer (the next layer needs every unit of this one) and after the
//! output layer; they are spawned once for a whole run of symbols, never a thread-pool task per
//! step. A layer's new state is published through atomics (the engine has no `unsafe`), in two
//! buffers used in turn, so that a thread still reading the previous state never sees the new
//! one being written. Every element is computed as in [`crate::inference::step`]'s one-row step (the
//! same matrix-vector sums over the same columns, the same fused cells), so the split run is
//! bit-identical to it.
//!
//! A step is short (a few microseconds), so what the cores pass to each other decides its
//! speed, and no thread should read, at every step, a cache line another writes, except to
//! pass the state. So every buffer a thread writes during the run is on cache lines of its own
//! ([`charrnn_kernels::line_aligned::LineAligned`]); each part holds its own columns of all
//! it reads, and a helper builds its part in its own thread ([`part`]); what the threads share
//! is apart ([`meeting`]); the cell states alternate between two buffers by the step's parity,
//! as the published state does, rather than being swapped in lists. Left to where the
//! allocator put them, a part's buffers shared lines with what another thread wrote, and its
//! weights got whatever offset the heap gave (a vector load from an offset of 16 or 48 bytes
//! splits across lines): changes elsewhere that only reshuffled the allocations cost
//! one-stream sampling 9%.

mod meeting;
mod part;

use std::ops::Range;
use std::sync::atomic::Ordering;

use charrnn_kernels::Precision;

use crate::inference::step::InferenceWeights;
use crate::model::cell::with_cell;
use crate::model::workspace::State;
use meeting::{read, Shared, StopOnDrop};
use part::Part;

/// Columns a part's ranges are aligned to (a vector of the widest level).
const ALIGN: usize = 16;
/// Fewest hidden units per part: below it, the barriers cost more than the split saves.
const MIN_UNITS_PER_PART: usize = 64;
/// Fewest bytes of weights a step must read for a split to pay.
const MIN_WEIGHT_BYTES: usize = 256 << 10;

/// How many parts a one-row step of `weights` should be split into with `threads` threads:
/// 1 (no split) for small models or one thread.
pub fn parts_for(weights: &InferenceWeights, threads: usize) -> usize {
    if !weights.matrix_vector() {
        return 1;
    }
    let cfg = weights.model().config;
    let (h, gh) = (cfg.hidden_size, cfg.cell.gates() * cfg.hidden_size);
    // Per layer `Wh`, and `Wx` above layer 0 (whose input is a row of the folded table).
    let rows_read = h * cfg.num_layers + h * (cfg.num_layers - 1);
    let element_bytes = match weights.precision() {
        Precision::F32 => 4,
        Precision::Bf16 => 2,
    };
    let bytes = element_bytes * (rows_read * gh + h * cfg.vocab_size);
    if bytes < MIN_WEIGHT_BYTES {
        return 1;
    }
    threads.min(cfg.hidden_size / MIN_UNITS_PER_PART).max(1)
}

/// `0..n` cut into `parts` contiguous ranges, their bounds multiples of [`ALIGN`] where `n`
/// allows (the last range takes the rest).
/// A range is empty (no work for that part) where `n` is smaller than `parts`; bounds are
/// rounded to the nearest multiple of [`ALIGN`] when every part can have one.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let aligned = n >= ALIGN * parts;
    let bound = |i: usize| {
        let even = i * n / parts;
        if aligned {
            ((even + ALIGN / 2) / ALIGN * ALIGN).min(n)
        } else {
            even
        }
    };
    let bounds: Vec<usize> = (0..=parts).map(|i| if i == parts { n } else { bound(i) }).collect();
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Runs steps of one stream split across `parts` threads (the calling thread is part 0).
pub struct SplitStep<'w> {
    weights: &'w InferenceWeights,
    parts: usize,
}

impl<'w> SplitStep<'w> {
    /// Steps of `weights` (prepared for one `f32` row) across `parts` threads.
    ///
    /// # Panics
    /// If `weights` are not for one row, or `parts` is 0 or more than the hidden units.
    pub fn new(weights: &'w InferenceWeights, parts: usize) -> SplitStep<'w> {
        assert!(weights.matrix_vector(), "a split step is one stream's, of matrix-vector products");
        let hidden = weights.model().config.hidden_size;
        assert!(parts >= 1 && parts <= hidden, "{parts} parts of {hidden} units");
        SplitStep { weights, parts }
    }

    /// From `state` and `logits` (a step's row 0, after the last symbol fed: the state's other
    /// rows are left as they are, `logits` is one row's), calls `choose`
    /// with each step's logits for the next symbol, and feeds that symbol, `length` times.
    /// `state` and `logits` are left as after the last symbol. `choose` may fail, which ends
    /// the run.
    pub fn run<E>(
        &self,
        state: &mut State<f32>,
        logits: &mut [f32],
        length: usize,
        mut choose: impl FnMut(&[f32]) -> Result<u32, E>,
    ) -> Result<(), E> {
        let cfg = self.weights.model().config;
        let shared = Shared::new(state, cfg.hidden_size, cfg.vocab_size, self.parts);
        let units = split(cfg.hidden_size, self.parts);
        let symbols = split(cfg.vocab_size, self.parts);
        let (weights, cell, steps_per_symbol) = (self.weights, cfg.cell, cfg.num_layers + 2);
        let start = &*state;
        let (result, done, parts) = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..self.parts)
                .map(|index| {
                    let (shared, units, symbols) = (&shared, units[index].clone(), symbols[index].clone());
                    scope.spawn(move || {
                        let mut stop = StopOnDrop { shared, part: index, point: 0 };
                        // Built here: its memory is this thread's (see `part`).
                        let mut part = Part::new(weights, start, index, units, symbols);
                        let mut step = 0;
                        loop {
                            stop.point += 1;
                            shared.meet(index, stop.point);
                            if shared.stop.load(Ordering::Acquire) {
                                return part;
                            }
                            with_cell!(cell, C => part.step::<C>(shared, step, &mut stop.point));
                            step += 1;
                        }
                    })
                })
                .collect();
            let mut first = Part::new(weights, start, 0, units[0].clone(), symbols[0].clone());
            let mut stop = StopOnDrop { shared: &shared, part: 0, point: 0 };
            let mut result = Ok(());
            let mut done = 0;
            for step in 0..length {
                let token = match choose(logits) {
                    Ok(token) => token,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                shared.token.store(token, Ordering::Relaxed);
                stop.point += 1;
                shared.meet(0, stop.point);
                with_cell!(cell, C => first.step::<C>(&shared, step, &mut stop.point));
                if shared.stop.load(Ordering::Acquire) {
                    // A helper ended (it panicked): joining it below re-raises its panic.
                    break;
                }
                read(&shared.logits, logits);
                done += 1;
            }
            debug_assert!(shared.stop.load(Ordering::Acquire) || stop.point == done * steps_per_symbol);
            // Ends the helpers.
            drop(stop);
            let mut parts = vec![first];
            for helper in helpers {
                parts.push(helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            (result, done, parts)
        });
        // Copy the state back from each part's units (its `h` is what it published last).
        for part in &parts {
            part.copy_state_into(state, done);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::step::InferenceStep;
    use crate::model::config::CellKind;
    use crate::model::config::ModelConfig;
    use crate::model::params::Model;
    use charrnn_kernels::Precision;

    /// Split across 1, 2, 3 and 5 threads, on odd widths (parts that are not whole vectors),
    /// more parts than output symbols, every cell gives the one-row step's logits and state bit
    /// for bit, symbol after symbol,
    /// in `f32` and, where the CPU has native bf16 products, in bf16.
    #[test]
    fn equals_the_one_row_step() {
        let precisions = [Precision::F32, Precision::Bf16];
        let runs = precisions.into_iter().flat_map(|p| [CellKind::Lstm, CellKind::Gru, CellKind::Rnn].map(|c| (c, p)));
        for (cell, precision) in runs {
            for (hidden, vocab) in [(37, 11), (130, 67), (37, 3)] {
                let config = ModelConfig { cell, vocab_size: vocab, embed_size: 7, hidden_size: hidden, num_layers: 3 };
                let m = std::sync::Arc::new(Model::<f32>::new(config, 4));
                let weights = InferenceWeights::new(m, 1, precision);
                if !weights.matrix_vector() {
                    continue;
                }
                let symbol = |t: usize, logits: &[f32]| ((t * 5 + (logits[0].to_bits() as usize % 3)) % vocab) as u32;
                let mut one = InferenceStep::new(&config, 1);
                one.inputs[0] = 2;
                one.step(&weights);
                let start = one.clone();
                let mut want = Vec::new();
                for t in 0..25 {
                    one.inputs[0] = symbol(t, &one.logits);
                    one.step(&weights);
                    want.push(one.logits.clone());
                }
                for parts in [1, 2, 3, 5] {
                    let (mut state, mut logits) = (start.state.clone(), start.logits.clone());
                    let mut got = Vec::new();
                    let mut t = 0;
                    let run = SplitStep::new(&weights, parts).run(&mut state, &mut logits, 25, |logits| {
                        if t > 0 {
                            got.push(logits.to_vec());
                        }
                        t += 1;
                        Ok::<u32, ()>(symbol(t - 1, logits))
                    });
                    assert_eq!(run, Ok(()));
                    got.push(logits.clone());
                    assert_eq!(got, want, "{cell:?} {precision}, H {hidden}, {parts} parts: logits");
                    assert_eq!(state, one.state, "{cell:?} {precision}, H {hidden}, {parts} parts: final state");
                }
            }
        }
    }

    /// An error from the caller ends the run at once (the helpers stop), and the state is the
    /// one after the symbols fed before it.
    #[test]
    fn an_error_ends_the_run() {
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 9, embed_size: 4, hidden_size: 64, num_layers: 2 };
        let m = std::sync::Arc::new(Model::<f32>::new(config, 4));
        let weights = InferenceWeights::new(m, 1, Precision::F32);
        let mut one = InferenceStep::new(&config, 1);
        one.step(&weights);
        let (mut state, mut logits) = (one.state.clone(), one.logits.clone());
        let mut calls = 0;
        let run = SplitStep::new(&weights, 3).run(&mut state, &mut logits, 100, |_| {
            calls += 1;
            if calls == 4 {
                Err("stop")
            } else {
                Ok(1)
            }
        });
        assert_eq!((run, calls), (Err("stop"), 4));
        for _ in 0..3 {
            one.inputs[0] = 1;
            one.step(&weights);
        }
        assert_eq!(state, one.state);
    }

    #[test]
    fn parts_are_aligned_and_cover_everything() {
        assert_eq!(split(128, 2), [0..64, 64..128]);
        assert_eq!(split(65, 2), [0..32, 32..65]);
        assert_eq!(split(37, 3), [0..12, 12..24, 24..37]);
        assert_eq!(split(512, 3), [0..176, 176..336, 336..512]);
        assert_eq!(split(5, 8), [0..0, 0..1, 1..1, 1..2, 2..3, 3..3, 3..4, 4..5]);
        for (n, parts) in [(65, 5), (130, 4), (7, 3), (1, 2), (1000, 7)] {
            let ranges = split(n, parts);
            assert_eq!((ranges.len(), ranges[0].start, ranges[parts - 1].end), (parts, 0, n));
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start && w[0].start <= w[0].end), "{ranges:?}");
            assert!(ranges.iter().all(|r| r.len() <= n.div_ceil(parts) + ALIGN), "{n} in {parts}: {ranges:?}");
        }
    }
}
