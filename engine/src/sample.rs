//! Sampling text from a trained model, one symbol at a time, as the tutorial does: feed the
//! prime text, then repeatedly choose a symbol from the output distribution and feed it back.

use charrnn_kernels::softmax_xent::softmax_row;
use charrnn_kernels::Precision;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::params::Model;
use crate::pass::forward_logits;
use crate::phase_times::PhaseTimes;
use crate::setting_names::{field_name, NamesSettings};
use crate::workspace::{FrozenWeights, State, Workspace};

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

/// Invalid sampling settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SampleError {
    /// Temperature not a positive finite number.
    #[error("{}", self.describe_with(&field_name))]
    Temperature(f64),
    /// top-k of zero.
    #[error("{}", self.describe_with(&field_name))]
    TopK,
}

impl NamesSettings for SampleError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        match self {
            SampleError::Temperature(t) => format!(
                "{} must be a positive number (got {t}); use {} argmax for greedy output",
                name("temperature"),
                name("mode")
            ),
            SampleError::TopK => format!("{} must be at least 1", name("top_k")),
        }
    }
}

/// Generates symbols from a model; every buffer is allocated once in [`Sampler::new`].
pub struct Sampler<'m> {
    model: &'m Model<f32>,
    workspace: Workspace<f32>,
    /// The packed weights, computed on the first step (the model does not change).
    frozen: FrozenWeights<f32>,
    /// Unread: sampling has no phase report.
    times: PhaseTimes,
    state: State<f32>,
    probs: Vec<f32>,
    scratch: Vec<f32>,
    rng: ChaCha8Rng,
    options: SampleOptions,
    space_id: Option<u32>,
    last: Option<u32>,
}

impl<'m> Sampler<'m> {
    /// A sampler from the zero state. `space_id` is the vocabulary id of `' '`, if any (for
    /// [`SampleMode::WeightedAfterSpace`]).
    pub fn new(model: &'m Model<f32>, options: SampleOptions, space_id: Option<u32>) -> Result<Self, SampleError> {
        if !(options.temperature.is_finite() && options.temperature > 0.0) {
            return Err(SampleError::Temperature(options.temperature));
        }
        if options.top_k == Some(0) {
            return Err(SampleError::TopK);
        }
        let v = model.config.vocab_size;
        Ok(Sampler {
            model,
            workspace: Workspace::with_precision(&model.config, 1, 1, options.precision),
            frozen: FrozenWeights::new(&model.config, 1, options.precision),
            times: PhaseTimes::default(),
            state: State::zeros(&model.config, 1),
            probs: vec![0.0; v],
            scratch: vec![0.0; v],
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            options,
            space_id,
            last: None,
        })
    }

    /// Advances the state by one input symbol; its output distribution is then the one
    /// [`Sampler::sample_next`] draws from.
    pub fn feed(&mut self, token: u32) {
        self.workspace.inputs[0] = token;
        forward_logits(self.model, &mut self.workspace, &mut self.state, &mut self.frozen, &mut self.times);
        self.last = Some(token);
    }

    /// Chooses the symbol following the last one fed, and feeds it.
    ///
    /// # Panics
    /// If nothing was fed yet.
    pub fn sample_next(&mut self) -> u32 {
        let last = self.last.expect("feed at least one symbol before sampling");
        let weighted = match self.options.mode {
            SampleMode::Argmax => false,
            SampleMode::Weighted => true,
            SampleMode::WeightedAfterSpace => Some(last) == self.space_id,
        };
        let chosen = if weighted { self.draw() } else { argmax(&self.workspace.logits) };
        self.feed(chosen);
        chosen
    }

    /// The probabilities of the next symbol under the current options (for tests and tools).
    pub fn probabilities(&mut self) -> &[f32] {
        self.prepare_probs();
        &self.probs
    }

    fn prepare_probs(&mut self) {
        softmax_row(&self.workspace.logits, self.options.temperature as f32, &mut self.probs);
        if let Some(k) = self.options.top_k {
            if k < self.probs.len() {
                self.scratch.copy_from_slice(&self.probs);
                let (_, kth, _) = self.scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                let threshold = *kth;
                let mut sum = 0.0;
                for p in &mut self.probs {
                    if *p < threshold {
                        *p = 0.0;
                    }
                    sum += *p;
                }
                for p in &mut self.probs {
                    *p /= sum;
                }
            }
        }
    }

    fn draw(&mut self) -> u32 {
        self.prepare_probs();
        let total: f32 = self.probs.iter().sum();
        let u = self.rng.random::<f32>() * total;
        let mut acc = 0.0;
        let mut chosen = argmax(&self.probs);
        for (i, &p) in self.probs.iter().enumerate() {
            acc += p;
            if p > 0.0 && u < acc {
                chosen = i as u32;
                break;
            }
        }
        chosen
    }
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
    use crate::config::{CellKind, ModelConfig};

    fn model() -> Model<f32> {
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 9, embed_size: 4, hidden_size: 8, num_layers: 2 };
        Model::new(config, 1)
    }

    fn opts(mode: SampleMode) -> SampleOptions {
        SampleOptions { mode, temperature: 1.0, top_k: None, seed: 3, precision: Precision::F32 }
    }

    #[test]
    fn argmax_follows_the_logits_and_is_deterministic() {
        let m = model();
        let mut a = Sampler::new(&m, opts(SampleMode::Argmax), None).unwrap();
        a.feed(2);
        let expected = argmax(&a.workspace.logits);
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
        let saved_state = s.state.clone();
        let mut counts = [0usize; 9];
        let n = 20_000;
        for _ in 0..n {
            s.state = saved_state.clone();
            s.feed(0);
            counts[s.draw() as usize] += 1;
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

    fn argmax_after(m: &Model<f32>, token: u32) -> u32 {
        let mut s = Sampler::new(m, opts(SampleMode::Argmax), None).unwrap();
        s.feed(token);
        s.sample_next()
    }

    /// The sampler computes the folded table and the packed weights once; its logits equal a
    /// plain forward pass's at every step, for every cell.
    #[test]
    fn frozen_weights_give_the_same_logits() {
        for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
            let config = ModelConfig { cell, vocab_size: 9, embed_size: 4, hidden_size: 8, num_layers: 2 };
            let m = Model::<f32>::new(config, 5);
            let mut sampler = Sampler::new(&m, opts(SampleMode::Argmax), None).unwrap();
            let mut ws = Workspace::<f32>::new(&config, 1, 1);
            let mut state = State::zeros(&config, 1);
            for token in [3u32, 1, 4, 1, 5, 8, 2, 6] {
                sampler.feed(token);
                ws.inputs[0] = token;
                // Fresh frozen weights: packed, and the table folded, anew at every step.
                let mut fresh = FrozenWeights::new(&config, 1, Precision::F32);
                forward_logits(&m, &mut ws, &mut state, &mut fresh, &mut PhaseTimes::default());
                assert_eq!(sampler.workspace.logits, ws.logits, "{cell:?}");
            }
        }
    }

    #[test]
    fn rejects_bad_options() {
        let m = model();
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Sampler::new(&m, SampleOptions { temperature: t, ..opts(SampleMode::Weighted) }, None).is_err());
        }
        assert!(Sampler::new(&m, SampleOptions { top_k: Some(0), ..opts(SampleMode::Weighted) }, None).is_err());
    }
}
