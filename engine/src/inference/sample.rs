//! Sampling text from a trained model, one symbol at a time, as the tutorial does: feed the
//! prime text, then repeatedly choose a symbol from the output distribution and feed it back.

use std::ops::Range;
use std::sync::Arc;

use charrnn_kernels::softmax_xent::SoftmaxTerms;
use charrnn_kernels::{Kernel, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::inference::split_step::{self, SplitStep};
use crate::inference::step::{InferenceStep, InferenceWeights};
use crate::model::params::Model;
use crate::setting_names::{field_name, NamesSettings};

/// How the next symbol is chosen (the tutorial's `sampling_type` 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleMode {
    /// 0: always the most likely symbol.
    Argmax,
    /// 1: drawn from the (temperature-scaled, top-k-limited) distribution.
    Weighted,
    /// 2: drawn after a space, the most likely symbol otherwise (whole words stay coherent).
    WeightedAfterSpace,
}

/// Sampling settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    /// Choice rule.
    pub mode: SampleMode,
    /// Divides the logits before the softmax: below 1 sharper, above 1 flatter. Must be > 0.
    pub temperature: f64,
    /// Keep only the `k` most likely symbols (ties at the k-th probability are kept too).
    pub top_k: Option<usize>,
    /// Seed of the random draws.
    pub seed: u64,
    /// What the forward pass's products round their operands to.
    pub precision: Precision,
}

impl SampleOptions {
    /// Whether the settings are valid: a positive finite temperature, a top-k of at least 1.
    pub fn check(&self) -> Result<(), SampleError> {
        if !(self.temperature.is_finite() && self.temperature >= MIN_TEMPERATURE) {
            return Err(SampleError::Temperature(self.temperature));
        }
        if self.top_k == Some(0) {
            return Err(SampleError::TopK);
        }
        Ok(())
    }
}

/// The smallest temperature: the logits are scaled by 1/T in `f32`, which is infinite below
/// this (about 2.9e-39). Any temperature this small is already argmax in effect.
pub const MIN_TEMPERATURE: f64 = 1.0 / f32::MAX as f64;

/// Invalid sampling settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SampleError {
    /// Temperature not a positive finite number.
    #[error("{}", self.describe_with(&field_name))]
    Temperature(f64),
    /// top-k of zero.
    #[error("{}", self.describe_with(&field_name))]
    TopK,
    /// A stream added to a sampler whose rows are all taken.
    #[error("{}", self.describe_with(&field_name))]
    Full(usize),
}

impl NamesSettings for SampleError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        match self {
            // A tiny positive temperature is a number the user meant: say where the limit is.
            SampleError::Temperature(t) if *t > 0.0 && t.is_finite() => format!(
                "{} must be at least {MIN_TEMPERATURE:.2e} (its inverse scales the logits in f32; got {t:e}); use {} \
                 argmax for greedy output",
                name("temperature"),
                name("mode")
            ),
            SampleError::Temperature(t) => format!(
                "{} must be a positive number (got {t}); use {} argmax for greedy output",
                name("temperature"),
                name("mode")
            ),
            SampleError::TopK => format!("{} must be at least 1", name("top_k")),
            SampleError::Full(rows) => format!("all {rows} rows of the sampler are taken"),
        }
    }
}

/// One stream's random draws: stream `i` of seed `s` is ChaCha8 seeded with `s`, on its stream
/// `i` (stream 0 is the plain seeded generator), so a stream's draws do not depend on how many
/// streams run beside it.
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// One row's sampling: its choice rule and its random draws, so that every row of a batch
/// may have its own options (a server mixes requests in one step).
#[derive(Clone, Debug)]
pub struct RowSampler {
    mode: SampleMode,
    temperature: f64,
    top_k: Option<usize>,
    rng: ChaCha8Rng,
    /// The symbol fed last (`None` before the first).
    last: Option<u32>,
}

impl RowSampler {
    /// Stream `stream` of `options`' seed, with its mode, temperature and top-k (the
    /// precision is the weights').
    pub fn new(options: &SampleOptions, stream: u64) -> Result<RowSampler, SampleError> {
        options.check()?;
        Ok(RowSampler {
            mode: options.mode,
            temperature: options.temperature,
            top_k: options.top_k,
            rng: stream_rng(options.seed, stream),
            last: None,
        })
    }
}

/// How one symbol is chosen from a row's logits: the buffers every row's choice uses in turn.
struct Chooser {
    /// The unnormalised distribution being drawn from (`[V]`).
    terms: Vec<f32>,
    /// Room for the top-k selection (`[V]`).
    scratch: Vec<f32>,
    space_id: Option<u32>,
}

impl Chooser {
    fn new(vocab: usize, space_id: Option<u32>) -> Chooser {
        Chooser { terms: vec![0.0; vocab], scratch: vec![0.0; vocab], space_id }
    }

    /// The symbol after the row's last one, from `logits`, drawing with the row's random
    /// stream where its mode draws.
    fn choose(&mut self, logits: &[f32], row: &mut RowSampler) -> u32 {
        let last = row.last.expect("feed at least one symbol before sampling");
        let weighted = match row.mode {
            SampleMode::Argmax => false,
            SampleMode::Weighted => true,
            SampleMode::WeightedAfterSpace => Some(last) == self.space_id,
        };
        if weighted {
            self.draw(logits, row)
        } else {
            argmax(logits)
        }
    }

    /// Fills `terms` with the unnormalised distribution of `logits` at the row's temperature
    /// (its top-k applied); returns its sum.
    fn prepare_terms(&mut self, logits: &[f32], row: &RowSampler) -> f64 {
        let inv_temperature = (1.0 / row.temperature) as f32;
        let sum = SoftmaxTerms { logits, inv_temperature, terms: &mut self.terms }.run();
        match row.top_k {
            Some(k) if k < self.terms.len() => {
                self.scratch.copy_from_slice(&self.terms);
                let (_, kth, _) = self.scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                let threshold = *kth;
                let mut kept = 0.0f64;
                for t in &mut self.terms {
                    if *t < threshold {
                        *t = 0.0;
                    }
                    kept += f64::from(*t);
                }
                kept
            }
            _ => sum,
        }
    }

    /// Draws from the distribution of `logits`: `u·Σ` against the running sum of the terms.
    fn draw(&mut self, logits: &[f32], row: &mut RowSampler) -> u32 {
        let sum = self.prepare_terms(logits, row);
        let u = row.rng.random::<f64>() * sum;
        let mut acc = 0.0f64;
        for (i, &t) in self.terms.iter().enumerate() {
            acc += f64::from(t);
            if t > 0.0 && u < acc {
                return i as u32;
            }
        }
        // `u` reached the sum by rounding: the most likely symbol.
        argmax(&self.terms)
    }
}

/// Generates symbols from a model for independent streams, one row of a batched forward step
/// each ([`crate::inference::step`]), each with its own [`RowSampler`]. Streams join and leave
/// between any two symbols ([`Sampler::add_stream`], [`Sampler::add_primed`],
/// [`Sampler::remove_stream`]); every buffer is allocated when the sampler is made, so
/// generating a symbol, adding and removing a stream allocate nothing.
pub struct Sampler {
    weights: Arc<InferenceWeights>,
    step: InferenceStep,
    /// Per active row: its options and random draws.
    rows: Vec<RowSampler>,
    chooser: Chooser,
}

impl Sampler {
    /// A sampler of one stream (stream 0) from the zero state. `space_id` is the vocabulary
    /// id of `' '`, if any (for [`SampleMode::WeightedAfterSpace`]).
    pub fn new(model: &Arc<Model<f32>>, options: SampleOptions, space_id: Option<u32>) -> Result<Self, SampleError> {
        Self::with_streams(model, options, space_id, 0..1)
    }

    /// A sampler of the streams `streams` (their indices choose their random draws), each
    /// from the zero state, advanced together by one batched step per symbol.
    ///
    /// # Panics
    /// If `streams` is empty.
    pub fn with_streams(
        model: &Arc<Model<f32>>,
        options: SampleOptions,
        space_id: Option<u32>,
        streams: Range<u64>,
    ) -> Result<Self, SampleError> {
        options.check()?;
        let rows = streams.clone().count();
        let weights = Arc::new(InferenceWeights::new(Arc::clone(model), rows, options.precision));
        let mut sampler = Sampler::with_capacity(weights, space_id, rows);
        for stream in streams {
            sampler.add_stream(&options, stream)?;
        }
        Ok(sampler)
    }

    /// A sampler of no streams yet, with room for `capacity`, over shared prepared `weights`.
    ///
    /// # Panics
    /// If `weights` are prepared for fewer than `capacity` rows.
    pub fn with_capacity(weights: Arc<InferenceWeights>, space_id: Option<u32>, capacity: usize) -> Sampler {
        assert!(capacity <= weights.capacity(), "weights for {} rows, a sampler of {capacity}", weights.capacity());
        let config = weights.model().config;
        Sampler {
            step: InferenceStep::with_capacity(&config, capacity),
            rows: Vec::with_capacity(capacity),
            chooser: Chooser::new(config.vocab_size, space_id),
            weights,
        }
    }

    /// The prepared weights the sampler steps with.
    pub fn weights(&self) -> &Arc<InferenceWeights> {
        &self.weights
    }

    /// Streams this sampler advances (its active rows).
    pub fn streams(&self) -> usize {
        self.rows.len()
    }

    /// Most streams.
    pub fn capacity(&self) -> usize {
        self.step.capacity()
    }

    /// Adds stream `stream` of `options` (its random draws) from the zero state, as the last
    /// row; returns the row. Feed it before sampling it.
    pub fn add_stream(&mut self, options: &SampleOptions, stream: u64) -> Result<usize, SampleError> {
        let row = RowSampler::new(options, stream)?;
        let r = self.step.add_row().ok_or(SampleError::Full(self.capacity()))?;
        self.rows.push(row);
        Ok(r)
    }

    /// Adds stream `stream` of `options` from row `from` of `primer` (a step of the same model
    /// that was fed a prime text, e.g. by [`InferenceStep::prime`]): its state, the
    /// distribution of its next symbol and its last symbol. Returns the row.
    pub fn add_primed(
        &mut self,
        primer: &InferenceStep,
        from: usize,
        options: &SampleOptions,
        stream: u64,
    ) -> Result<usize, SampleError> {
        let r = self.add_stream(options, stream)?;
        self.step.copy_row_from(r, primer, from);
        self.rows[r].last = Some(primer.inputs[from]);
        Ok(r)
    }

    /// Removes the stream of row `r`: the last row moves into its place, and its old index is
    /// returned (`None` when `r` was the last).
    ///
    /// # Panics
    /// If `r` is not an active row.
    pub fn remove_stream(&mut self, r: usize) -> Option<usize> {
        let moved = self.step.remove_row(r);
        self.rows.swap_remove(r);
        moved
    }

    /// Advances every stream's state by the same input symbol (the prime text); each stream's
    /// output distribution is then the one the next draw is from.
    pub fn feed(&mut self, token: u32) {
        let n = self.streams();
        self.step.inputs[..n].fill(token);
        self.advance();
    }

    fn advance(&mut self) {
        self.step.step(&self.weights);
        for (row, &token) in self.rows.iter_mut().zip(&self.step.inputs) {
            row.last = Some(token);
        }
    }

    /// Chooses the symbol following the last one fed in the first stream, and feeds it (for a
    /// sampler of one stream).
    ///
    /// # Panics
    /// If nothing was fed yet, or the sampler has more than one stream.
    pub fn sample_next(&mut self) -> u32 {
        assert_eq!(self.streams(), 1, "sample_next on a sampler of several streams: use sample_all");
        let mut chosen = [0];
        self.sample_all(&mut chosen);
        chosen[0]
    }

    /// Chooses the next symbol of every stream into `chosen` (one per stream) without feeding
    /// them: [`Sampler::feed_chosen`] does, once streams that are done have been removed.
    ///
    /// # Panics
    /// If a stream was never fed, or `chosen` is not one per stream.
    pub fn choose_all(&mut self, chosen: &mut [u32]) {
        assert_eq!(chosen.len(), self.streams(), "one symbol per stream");
        for (r, (out, row)) in chosen.iter_mut().zip(&mut self.rows).enumerate() {
            *out = self.chooser.choose(self.step.logits_of(r), row);
        }
        self.step.inputs[..chosen.len()].copy_from_slice(chosen);
    }

    /// Feeds every stream the symbol [`Sampler::choose_all`] chose for it (moved with its row
    /// by [`Sampler::remove_stream`]).
    pub fn feed_chosen(&mut self) {
        self.advance();
    }

    /// Chooses the next symbol of every stream into `chosen` (one per stream), and feeds them.
    ///
    /// # Panics
    /// If nothing was fed yet, or `chosen` is not one per stream.
    pub fn sample_all(&mut self, chosen: &mut [u32]) {
        self.choose_all(chosen);
        self.advance();
    }

    /// Generates `length` symbols of a one-stream sampler, handing each to `emit` as it is
    /// chosen (an error from `emit` ends the run, the symbol it was handed fed), exactly as
    /// `length` calls of [`Sampler::sample_next`]. With `threads` above 1 and a model large
    /// enough for it to pay ([`split_step::parts_for`]), the step is split across that many
    /// threads ([`SplitStep`]); the symbols are the same.
    ///
    /// # Panics
    /// As [`Sampler::sample_next`].
    pub fn generate<E>(
        &mut self,
        length: usize,
        threads: usize,
        mut emit: impl FnMut(u32) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut failure = None;
        self.generate_while(length, threads, |token| match emit(token) {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        });
        failure.map_or(Ok(()), Err)
    }

    /// [`Sampler::generate`] until `emit` returns false: the symbol it was handed is fed, and
    /// none is drawn after it, so the stream goes on from there as if it had never stopped
    /// (a server leaves the split step this way when another request arrives). Returns the
    /// symbols generated.
    ///
    /// # Panics
    /// As [`Sampler::sample_next`].
    pub fn generate_while(&mut self, length: usize, threads: usize, mut emit: impl FnMut(u32) -> bool) -> usize {
        assert_eq!(self.streams(), 1, "generate runs one stream");
        let parts = split_step::parts_for(&self.weights, threads);
        if parts <= 1 {
            for done in 1..=length {
                let token = self.sample_next();
                if !emit(token) {
                    return done;
                }
            }
            return length;
        }
        let Sampler { weights, step, rows, chooser } = self;
        let row = &mut rows[0];
        let (mut more, mut done, v) = (true, 0, weights.model().config.vocab_size);
        let stopped = SplitStep::new(weights, parts).run(&mut step.state, &mut step.logits[..v], length, |logits| {
            if !more {
                return Err(());
            }
            let token = chooser.choose(logits, row);
            more = emit(token);
            row.last = Some(token);
            done += 1;
            Ok(token)
        });
        debug_assert_eq!(stopped.is_err(), !more && done < length);
        step.inputs[0] = row.last.expect("fed");
        done
    }

    /// The probabilities of the first stream's next symbol under its options (for tests and
    /// tools).
    pub fn probabilities(&mut self) -> &[f32] {
        let sum = self.chooser.prepare_terms(self.step.logits_of(0), &self.rows[0]);
        for t in &mut self.chooser.terms {
            *t = (f64::from(*t) / sum) as f32;
        }
        &self.chooser.terms
    }
}

/// Most streams one batched step of [`sample_streams`] advances.
const MAX_ROWS: usize = 256;

/// Generates `length` symbols after `prime` for each of the streams `0..count`: the streams go
/// in contiguous blocks, one per thread of the current rayon pool (each a [`Sampler`] over its
/// block, advancing its streams together), and stream `i` is the same whatever `count` and
/// the thread count are. Returns the symbols stream after stream (`[count, length]`).
///
/// # Panics
/// If `prime` is empty.
pub fn sample_streams(
    model: &Arc<Model<f32>>,
    options: SampleOptions,
    space_id: Option<u32>,
    prime: &[u32],
    count: usize,
    length: usize,
) -> Result<Vec<u32>, SampleError> {
    assert!(!prime.is_empty(), "sampling needs a prime symbol");
    let mut out = vec![0u32; count * length];
    if count == 0 || length == 0 {
        return Ok(out);
    }
    let per_block = count.div_ceil(rayon::current_num_threads().min(count));
    let run_block = |(b, block): (usize, &mut [u32])| -> Result<(), SampleError> {
        // A thread's streams go in groups of at most MAX_ROWS rows: the buffers of a step
        // grow with its rows, and the streams are independent.
        for (g, group) in block.chunks_mut(MAX_ROWS * length).enumerate() {
            let first = (b * per_block + g * MAX_ROWS) as u64;
            let rows = group.len() / length;
            let mut sampler = Sampler::with_streams(model, options, space_id, first..first + rows as u64)?;
            for &id in prime {
                sampler.feed(id);
            }
            let mut chosen = vec![0u32; rows];
            for t in 0..length {
                sampler.sample_all(&mut chosen);
                for (r, &id) in chosen.iter().enumerate() {
                    group[r * length + t] = id;
                }
            }
        }
        Ok(())
    };
    out.par_chunks_mut(per_block * length).enumerate().try_for_each(run_block)?;
    Ok(out)
}

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{CellKind, ModelConfig};

    fn model() -> Arc<Model<f32>> {
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 9, embed_size: 4, hidden_size: 8, num_layers: 2 };
        Arc::new(Model::new(config, 1))
    }

    fn opts(mode: SampleMode) -> SampleOptions {
        SampleOptions { mode, temperature: 1.0, top_k: None, seed: 3, precision: Precision::F32 }
    }

    #[test]
    fn argmax_follows_the_logits_and_is_deterministic() {
        let m = model();
        let mut a = Sampler::new(&m, opts(SampleMode::Argmax), None).unwrap();
        a.feed(2);
        let expected = argmax(a.step.logits_of(0));
        let first = a.sample_next();
        assert_eq!(first, expected);
        let run = |seed| {
            let mut s = Sampler::new(&m, SampleOptions { seed, ..opts(SampleMode::Argmax) }, None).unwrap();
            s.feed(2);
            (0..20).map(|_| s.sample_next()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn weighted_draws_follow_the_distribution() {
        let m = model();
        let mut s = Sampler::new(&m, opts(SampleMode::Weighted), None).unwrap();
        s.feed(0);
        let probs = s.probabilities().to_vec();
        let saved_state = s.step.state.clone();
        let mut counts = [0usize; 9];
        let n = 20_000;
        for _ in 0..n {
            s.step.state = saved_state.clone();
            s.feed(0);
            let logits = s.step.logits_of(0).to_vec();
            counts[s.chooser.draw(&logits, &mut s.rows[0]) as usize] += 1;
        }
        for (c, p) in counts.iter().zip(&probs) {
            let freq = *c as f32 / n as f32;
            assert!((freq - p).abs() < 0.02, "freq {freq} vs p {p}");
        }
    }

    #[test]
    fn top_k_keeps_only_k_symbols() {
        let m = model();
        let mut s = Sampler::new(&m, SampleOptions { top_k: Some(2), ..opts(SampleMode::Weighted) }, None).unwrap();
        s.feed(1);
        let probs = s.probabilities();
        assert_eq!(probs.iter().filter(|&&p| p > 0.0).count(), 2);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn space_mode_is_greedy_except_after_a_space() {
        let m = model();
        let mut s = Sampler::new(&m, opts(SampleMode::WeightedAfterSpace), Some(4)).unwrap();
        s.feed(3);
        assert_eq!(s.sample_next(), argmax_after(&m, 3));
        // After the space symbol (id 4), draws vary with the seed.
        let draws: std::collections::HashSet<u32> = (0..40)
            .map(|seed| {
                let mut s =
                    Sampler::new(&m, SampleOptions { seed, ..opts(SampleMode::WeightedAfterSpace) }, Some(4)).unwrap();
                s.feed(4);
                s.sample_next()
            })
            .collect();
        assert!(draws.len() > 1);
    }

    fn argmax_after(m: &Arc<Model<f32>>, token: u32) -> u32 {
        let mut s = Sampler::new(m, opts(SampleMode::Argmax), None).unwrap();
        s.feed(token);
        s.sample_next()
    }

    /// Stream `i` is the same whatever the number of streams (1, 8 or 64: one row, a few,
    /// many) and of threads, in every mode; different streams differ.
    #[test]
    fn a_stream_does_not_depend_on_the_others() {
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 9, embed_size: 4, hidden_size: 8, num_layers: 2 };
        let m = Arc::new(Model::<f32>::new(config, 5));
        let length = 60;
        for mode in [SampleMode::Weighted, SampleMode::WeightedAfterSpace] {
            let run = |count: usize, threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| sample_streams(&m, opts(mode), Some(4), &[1, 2], count, length).unwrap())
            };
            let one = run(1, 1);
            let eight = run(8, 2);
            let many = run(64, 3);
            // Past one step's most rows (MAX_ROWS): the streams go in groups.
            let groups = run(MAX_ROWS + 44, 1);
            assert_eq!(groups[..64 * length], many[..], "{mode:?}: streams 0..64 of 64 and of {}", MAX_ROWS + 44);
            assert_eq!(one[..], eight[..length], "{mode:?}: stream 0 alone and of 8");
            assert_eq!(eight[..], many[..8 * length], "{mode:?}: streams 0..8 of 8 and of 64");
            let mut single = Sampler::new(&m, opts(mode), Some(4)).unwrap();
            single.feed(1);
            single.feed(2);
            let alone: Vec<u32> = (0..length).map(|_| single.sample_next()).collect();
            assert_eq!(alone[..], one[..], "{mode:?}: the one-stream sampler is stream 0");
            if mode == SampleMode::Weighted {
                // (An untrained model may never choose the space that lets the other mode draw.)
                let distinct: std::collections::HashSet<&[u32]> = many.chunks(length).collect();
                assert_eq!(distinct.len(), 64, "{mode:?}: every stream differs");
            }
        }
    }

    /// A model of the default size: large enough for its one-row step to be split.
    fn default_size_model() -> Arc<Model<f32>> {
        let config =
            ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 128, num_layers: 2 };
        Arc::new(Model::<f32>::new(config, 5))
    }

    /// A weighted one-stream sampler of `m` after the symbol 7.
    fn weighted_after_seven(m: &Arc<Model<f32>>) -> Sampler {
        let mut s = Sampler::new(m, opts(SampleMode::Weighted), Some(1)).unwrap();
        s.feed(7);
        s
    }

    /// `generate` gives what `sample_next` gives, with the step split across threads too
    /// (the default model's size, where the split is taken), and leaves the sampler where
    /// `sample_next` would.
    #[test]
    fn generate_equals_sample_next_split_or_not() {
        let m = default_size_model();
        let new = || weighted_after_seven(&m);
        assert_eq!(split_step::parts_for(&new().weights, 2), 2, "the default model is split on two threads");
        let mut reference = new();
        let want: Vec<u32> = (0..300).map(|_| reference.sample_next()).collect();
        let after: Vec<u32> = (0..20).map(|_| reference.sample_next()).collect();
        for threads in [1, 2] {
            let mut s = new();
            let mut got = Vec::new();
            s.generate(300, threads, |t| {
                got.push(t);
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(got, want, "{threads} threads");
            let next: Vec<u32> = (0..20).map(|_| s.sample_next()).collect();
            assert_eq!(next, after, "{threads} threads: the sampler goes on from where it stopped");
        }
    }

    /// A seeded stream gives the same symbols alone and in a batch that other streams join
    /// and leave around it (its row moving as rows are removed, and for a while alone in the
    /// batch), in both precisions and for every cell.
    #[test]
    fn a_stream_is_the_same_alone_and_among_streams_that_come_and_go() {
        use crate::inference::step::{InferenceStep, InferenceWeights};
        let runs =
            [(CellKind::Lstm, Precision::F32), (CellKind::Gru, Precision::Bf16), (CellKind::Rnn, Precision::F32)];
        for (cell, precision) in runs {
            let config = ModelConfig { cell, vocab_size: 9, embed_size: 4, hidden_size: 8, num_layers: 2 };
            let m = Arc::new(Model::<f32>::new(config, 5));
            let weights = Arc::new(InferenceWeights::new(m, 6, precision));
            let options = |seed, mode| SampleOptions { seed, precision, ..opts(mode) };
            let mut primer = InferenceStep::new(&config, 1);
            primer.prime(&weights, &[1, 2, 3]);
            let mut other = InferenceStep::new(&config, 1);
            other.prime(&weights, &[5]);
            let tracked = options(7, SampleMode::Weighted);
            let mut alone = Sampler::with_capacity(Arc::clone(&weights), Some(4), 1);
            alone.add_primed(&primer, 0, &tracked, 2).unwrap();
            let want: Vec<u32> = (0..90).map(|_| alone.sample_next()).collect();

            let mut many = Sampler::with_capacity(Arc::clone(&weights), Some(4), 6);
            // Who each row is: 0 the tracked stream, others numbered as they come.
            let mut owners: Vec<u64> = Vec::new();
            for owner in [1, 2] {
                many.add_primed(&other, 0, &options(owner, SampleMode::Argmax), owner).unwrap();
                owners.push(owner);
            }
            many.add_primed(&primer, 0, &tracked, 2).unwrap();
            owners.push(0);
            let (mut chosen, mut got, mut next) = (vec![0u32; 6], Vec::new(), 3);
            for t in 0..90 {
                let n = many.streams();
                many.choose_all(&mut chosen[..n]);
                got.push(chosen[owners.iter().position(|&o| o == 0).unwrap()]);
                // Streams leave: one now and then, all of them for steps 30..45.
                let leaving = |o: &u64| *o != 0 && (t % 7 == 3 || (30..45).contains(&t));
                while let Some(r) = owners.iter().position(leaving) {
                    assert_eq!(many.remove_stream(r), (r + 1 < owners.len()).then_some(owners.len() - 1));
                    owners.swap_remove(r);
                }
                many.feed_chosen();
                if t % 4 == 1 && !(30..45).contains(&t) && many.streams() < 6 {
                    many.add_primed(&other, 0, &options(next, SampleMode::Weighted), next).unwrap();
                    owners.push(next);
                    next += 1;
                }
            }
            assert!(next > 10, "streams came and went");
            assert_eq!(got, want, "{cell:?} {precision}");
            let full = (0..6).map(|i| many.add_stream(&tracked, i)).find_map(Result::err);
            assert_eq!(full, Some(SampleError::Full(6)));
        }
    }

    /// A split run stopped by `emit` goes on, in a later run, as if it had never stopped.
    #[test]
    fn generate_while_stops_and_goes_on() {
        let m = default_size_model();
        let new = || weighted_after_seven(&m);
        let mut reference = new();
        let want: Vec<u32> = (0..200).map(|_| reference.sample_next()).collect();
        let mut s = new();
        let mut got = Vec::new();
        for stop_after in [1, 37, 80, 1000] {
            let mut taken = 0;
            let done = s.generate_while(200 - got.len(), 2, |t| {
                got.push(t);
                taken += 1;
                taken < stop_after
            });
            assert_eq!(done, taken);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_bad_options() {
        let m = model();
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-40] {
            assert!(Sampler::new(&m, SampleOptions { temperature: t, ..opts(SampleMode::Weighted) }, None).is_err());
        }
        assert!(Sampler::new(&m, SampleOptions { top_k: Some(0), ..opts(SampleMode::Weighted) }, None).is_err());
        // The limit is the smallest temperature whose inverse is a finite f32: it is accepted,
        // and a smaller positive one is refused naming it, not as "not positive".
        assert!(Sampler::new(&m, SampleOptions { temperature: MIN_TEMPERATURE, ..opts(SampleMode::Weighted) }, None)
            .is_ok());
        let e = SampleOptions { temperature: 1e-40, ..opts(SampleMode::Weighted) }.check().unwrap_err().to_string();
        assert!(e.contains("at least 2.94e-39") && e.contains("1e-40") && !e.contains("positive"), "{e}");
    }
}
