//! Beam search: keeps the `W` most likely continuations (by summed log-probability) and
//! returns the best after a given number of symbols.
//!
//! The beams are the rows of one batched inference step ([`crate::inference::step`]). Each step
//! scores every (beam, symbol) pair, keeps the `W` best (ties to the lower beam, then symbol,
//! so that `W = 1` is exactly greedy argmax), moves the chosen beams' states into place and
//! feeds their symbols. Scores are summed in `f64` from log-probabilities formed as
//! `(x - max)/T - ln Σ`, so that different logits never round to one score. Every buffer,
//! the back-pointers of all steps included, is allocated up front: a step allocates nothing.
//!
//! Without an end symbol every continuation has the same length, so a length penalty could not
//! change which is best; none is offered.

use std::sync::Arc;

use charrnn_kernels::softmax_xent::SoftmaxTerms;
use charrnn_kernels::{Kernel, Precision};

use crate::inference::step::{InferenceStep, InferenceWeights};
use crate::model::params::Model;
use crate::model::workspace::State;

/// Invalid beam-search settings.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum BeamError {
    /// A width of zero.
    #[error("the beam width must be at least 1")]
    Width,
    /// Temperature not a positive finite number (whose reciprocal is a finite `f32`).
    #[error("the temperature must be at least {min:.2e} (got {0})", min = crate::inference::sample::MIN_TEMPERATURE)]
    Temperature(f64),
    /// More back-pointers (width × length) or candidates (width × symbols) than it keeps.
    #[error("a beam of {width} over {length} symbols is too large: width × length may be at most {MAX_ENTRIES}")]
    TooLarge {
        /// The width asked for.
        width: usize,
        /// The length asked for.
        length: usize,
    },
}

/// Most back-pointers (width × length) a search keeps: 2 GiB of them with the symbols.
pub const MAX_ENTRIES: usize = 1 << 28;

/// A beam search over a model, for continuations of up to a fixed length.
pub struct BeamSearch {
    weights: InferenceWeights,
    step: InferenceStep,
    /// The state the chosen beams are gathered into, swapped with the step's.
    scratch: State<f32>,
    inv_temperature: f64,
    /// Each beam's summed log-probability (`-∞`: no beam in this row yet).
    scores: Vec<f64>,
    /// Candidates of a step: (score, the symbol's own log-probability, `beam·V + symbol`).
    candidates: Vec<(f64, f64, u32)>,
    /// Per step and beam: the beam it continues, and the symbol it added (`[length, W]`).
    parents: Vec<u32>,
    symbols: Vec<u32>,
    /// The chosen beams of a step, in their new order.
    sources: Vec<u32>,
    /// One row's softmax terms (`[V]`).
    terms: Vec<f32>,
    /// Symbols chosen so far.
    steps: usize,
    fed: bool,
}

impl BeamSearch {
    /// A search of `width` beams for up to `max_length` symbols, with the logits divided by
    /// `temperature` before the softmax.
    pub fn new(
        model: &Arc<Model<f32>>,
        precision: Precision,
        width: usize,
        temperature: f64,
        max_length: usize,
    ) -> Result<BeamSearch, BeamError> {
        if width == 0 {
            return Err(BeamError::Width);
        }
        if !(temperature.is_finite() && temperature >= crate::inference::sample::MIN_TEMPERATURE) {
            return Err(BeamError::Temperature(temperature));
        }
        let v = model.config.vocab_size;
        let too_large = BeamError::TooLarge { width, length: max_length };
        let entries = width.checked_mul(max_length).ok_or_else(|| too_large.clone())?;
        // Candidates are numbered `beam·V + symbol` in a `u32`.
        if entries > MAX_ENTRIES || width.checked_mul(v).is_none_or(|c| c > u32::MAX as usize) {
            return Err(too_large);
        }
        let mut scores = vec![f64::NEG_INFINITY; width];
        scores[0] = 0.0;
        Ok(BeamSearch {
            weights: InferenceWeights::new(Arc::clone(model), width, precision),
            step: InferenceStep::new(&model.config, width),
            scratch: State::zeros(&model.config, width),
            inv_temperature: 1.0 / temperature,
            scores,
            candidates: Vec::with_capacity(width * v),
            parents: vec![0; width * max_length],
            symbols: vec![0; width * max_length],
            sources: vec![0; width],
            terms: vec![0.0; v],
            steps: 0,
            fed: false,
        })
    }

    /// Advances every beam by the symbol `token` (the prime text, before any search step).
    ///
    /// # Panics
    /// After a search step.
    pub fn feed(&mut self, token: u32) {
        assert_eq!(self.steps, 0, "the prime text goes before the search");
        self.step.inputs.fill(token);
        self.step.step(&self.weights);
        self.fed = true;
    }

    /// One search step: every beam's continuations scored, the best `W` kept and fed.
    ///
    /// # Panics
    /// If nothing was fed, or `max_length` steps were taken already.
    pub fn advance(&mut self) {
        assert!(self.fed, "feed at least one symbol before searching");
        let width = self.scores.len();
        assert!(self.steps < self.parents.len() / width, "beam search past its length");
        let v = self.terms.len();
        self.candidates.clear();
        for (b, &score) in self.scores.iter().enumerate() {
            if score == f64::NEG_INFINITY {
                continue;
            }
            let logits = self.step.logits_of(b);
            let inv_temperature = self.inv_temperature as f32;
            let sum = SoftmaxTerms { logits, inv_temperature, terms: &mut self.terms }.run();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = sum.ln();
            for (s, &x) in logits.iter().enumerate() {
                let log_p = (f64::from(x) - f64::from(max)) * self.inv_temperature - log_sum;
                self.candidates.push((score + log_p, log_p, (b * v + s) as u32));
            }
        }
        // Best first; on equal scores the likelier symbol (a long sequence's score can absorb a
        // difference in one symbol's log-probability), then the lower beam and symbol (greedy
        // argmax takes the first of equal logits): so width 1 is argmax exactly.
        type Candidate = (f64, f64, u32);
        let order = |a: &Candidate, b: &Candidate| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2));
        let kept = width.min(self.candidates.len());
        if kept < self.candidates.len() {
            self.candidates.select_nth_unstable_by(kept - 1, order);
        }
        self.candidates[..kept].sort_unstable_by(order);
        let row = self.steps * width..(self.steps + 1) * width;
        for i in 0..width {
            // Rows without a candidate (more beams than continuations so far) stay empty.
            let (score, _, id) = self.candidates.get(i).copied().unwrap_or((f64::NEG_INFINITY, 0.0, 0));
            let (parent, symbol) = (id / v as u32, id % v as u32);
            self.scores[i] = score;
            self.sources[i] = parent;
            self.step.inputs[i] = symbol;
            self.parents[row.start + i] = parent;
            self.symbols[row.start + i] = symbol;
        }
        self.step.gather_rows(&self.sources, &mut self.scratch);
        self.step.step(&self.weights);
        self.steps += 1;
    }

    /// The best continuation so far and its summed log-probability.
    pub fn best(&self) -> (Vec<u32>, f64) {
        let width = self.scores.len();
        let mut out = vec![0; self.steps];
        let mut beam = 0;
        for t in (0..self.steps).rev() {
            out[t] = self.symbols[t * width + beam];
            beam = self.parents[t * width + beam] as usize;
        }
        (out, self.scores[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::sample::{SampleMode, SampleOptions, Sampler};
    use crate::model::config::{CellKind, ModelConfig};

    /// A one-layer RNN whose next-symbol distribution is a fixed Markov chain on its last
    /// symbol: the embedding and input weights make `h` ±1 (saturated `tanh`), a one-hot of
    /// the symbol in ±1, and the output layer turns that into `ln P[x][·]`.
    fn markov_model(p: &[[f64; 3]; 3]) -> Model<f32> {
        let config = ModelConfig { cell: CellKind::Rnn, vocab_size: 3, embed_size: 3, hidden_size: 3, num_layers: 1 };
        let mut m = Model::<f32>::new(config, 1);
        let lay = m.layout.clone();
        m.params.fill(0.0);
        let r = &lay.layers[0];
        for i in 0..3 {
            m.params[lay.embedding.start + i * 3 + i] = 1.0;
            for j in 0..3 {
                m.params[r.wx.start + i * 3 + j] = if i == j { 20.0 } else { -20.0 };
            }
        }
        // logits[s] = Σ_j W[j,s]·h_j + b[s] with h = 2·onehot(x) - 1 gives ln P[x][s].
        for (j, from_j) in p.iter().enumerate() {
            for (s, &p_js) in from_j.iter().enumerate() {
                let half = p_js.ln() / 2.0;
                m.params[lay.decoder_weight.start + j * 3 + s] = half as f32;
                m.params[lay.decoder_bias.start + s] += half as f32;
            }
        }
        m
    }

    /// From `a`: `b` is likelier than `c` (0.55 to 0.45), but after `b` every symbol has 1/3
    /// and after `c` another `c` has 0.9: greedy search goes `b a b…`, the best sequence is
    /// `c c c…`.
    const CHAIN: [[f64; 3]; 3] = [[0.0001, 0.5499, 0.45], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0], [0.05, 0.05, 0.9]];

    /// The most likely `length`-symbol continuation of symbol 0, by trying them all.
    fn brute_force_best(length: usize) -> (Vec<u32>, f64) {
        let mut best = (Vec::new(), f64::NEG_INFINITY);
        for code in 0..3usize.pow(length as u32) {
            let seq: Vec<u32> = (0..length).map(|t| (code / 3usize.pow(t as u32) % 3) as u32).collect();
            let mut last = 0;
            let mut log_p = 0.0;
            for &s in &seq {
                log_p += CHAIN[last][s as usize].ln();
                last = s as usize;
            }
            if log_p > best.1 {
                best = (seq, log_p);
            }
        }
        best
    }

    fn search(width: usize, length: usize) -> (Vec<u32>, f64) {
        let m = Arc::new(markov_model(&CHAIN));
        let mut beam = BeamSearch::new(&m, Precision::F32, width, 1.0, length).unwrap();
        beam.feed(0);
        for _ in 0..length {
            beam.advance();
        }
        beam.best()
    }

    #[test]
    fn finds_the_best_sequence_that_greedy_search_misses() {
        for length in [1, 2, 3, 5, 7] {
            let (want, log_p) = brute_force_best(length);
            let (got, score) = search(2, length);
            assert_eq!(got, want, "length {length}");
            assert!((score - log_p).abs() < 1e-4, "length {length}: {score} vs {log_p}");
            let (wide, _) = search(5, length);
            assert_eq!(wide, want, "width 5, length {length}");
        }
        assert_eq!(brute_force_best(3).0, [2, 2, 2]);
        assert_eq!(search(1, 3).0, [1, 0, 1], "greedy");
    }

    /// Width 1 is greedy argmax sampling, symbol for symbol, on a random model of every cell.
    #[test]
    fn width_one_is_argmax() {
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
            let config = ModelConfig { cell, vocab_size: 13, embed_size: 6, hidden_size: 10, num_layers: 2 };
            let m = Arc::new(Model::<f32>::new(config, 3));
            let options = SampleOptions {
                mode: SampleMode::Argmax,
                temperature: 0.7,
                top_k: None,
                seed: 1,
                precision: Precision::F32,
            };
            let mut sampler = Sampler::new(&m, options, None).unwrap();
            let mut beam = BeamSearch::new(&m, Precision::F32, 1, 0.7, 200).unwrap();
            for token in [4, 2, 9] {
                sampler.feed(token);
                beam.feed(token);
            }
            let greedy: Vec<u32> = (0..200).map(|_| sampler.sample_next()).collect();
            for _ in 0..200 {
                beam.advance();
            }
            assert_eq!(beam.best().0, greedy, "{cell:?}");
        }
    }

    /// The score reported for the best continuation is its log-probability, recomputed symbol
    /// by symbol with a one-row step; and a wider beam never ends below the greedy one's.
    #[test]
    fn the_score_is_the_continuations_log_probability() {
        use crate::inference::step::{InferenceStep, InferenceWeights};
        let config =
            ModelConfig { cell: CellKind::Lstm, vocab_size: 17, embed_size: 6, hidden_size: 20, num_layers: 2 };
        let m = Arc::new(Model::<f32>::new(config, 9));
        let greedy = {
            let mut b = BeamSearch::new(&m, Precision::F32, 1, 1.0, 60).unwrap();
            b.feed(3);
            (0..60).for_each(|_| b.advance());
            b.best().1
        };
        for width in [1, 3, 8] {
            let mut beam = BeamSearch::new(&m, Precision::F32, width, 1.0, 60).unwrap();
            beam.feed(3);
            (0..60).for_each(|_| beam.advance());
            let (best, score) = beam.best();
            let weights = InferenceWeights::new(m.clone(), 1, Precision::F32);
            let mut step = InferenceStep::new(&config, 1);
            step.inputs[0] = 3;
            step.step(&weights);
            let mut log_p = 0.0f64;
            for &s in &best {
                let logits: Vec<f64> = step.logits.iter().map(|&x| f64::from(x)).collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = logits.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                log_p += logits[s as usize] - max - log_sum;
                step.inputs[0] = s;
                step.step(&weights);
            }
            assert!((score - log_p).abs() < 1e-4, "width {width}: reported {score}, recomputed {log_p}");
            assert!(score >= greedy - 1e-9, "width {width}: {score} below greedy {greedy}");
        }
    }

    #[test]
    fn rejects_bad_settings() {
        let m = Arc::new(markov_model(&CHAIN));
        assert_eq!(BeamSearch::new(&m, Precision::F32, 0, 1.0, 5).err(), Some(BeamError::Width));
        assert!(BeamSearch::new(&m, Precision::F32, 2, 0.0, 5).is_err());
        assert!(BeamSearch::new(&m, Precision::F32, 2, 1e-40, 5).is_err());
        let too_large = Some(BeamError::TooLarge { width: 64, length: 100_000_000 });
        assert_eq!(BeamSearch::new(&m, Precision::F32, 64, 1.0, 100_000_000).err(), too_large);
        assert!(BeamSearch::new(&m, Precision::F32, usize::MAX, 1.0, 2).is_err());
    }
}
