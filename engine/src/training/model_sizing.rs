//! The model `train --time` chooses when no size is given: the LSTM whose predicted validation
//! loss after the budget is lowest, from a small scaling law fitted to a sweep of this engine
//! (docs/time_to_quality.md) and the speed each size would train at on this machine.
//!
//! The law is `L(N, D) = E + A/N^α + B/D'^β`: `N` parameters, `D` tokens seen, `D'` the tokens
//! that count when the corpus is repeated (each pass over the same text is worth less than the
//! one before: `D' = U·(1 + R·(1 − e^{−(D/U − 1)/R}))` past one epoch of `U` tokens, after
//! Muennighoff et al., "Scaling Data-Constrained Language Models", 2023). `E` is the corpus's own
//! entropy and does not change which size wins, so it is left out. The speed of a size is
//! predicted from its floating-point work per token (`standard_flops_per_token`), this machine's
//! measured multiply-add peak and the share of the peak a step of that width reaches (measured
//! in the sweep); the run then measures its real speed and fits its schedule to it.

use std::time::Duration;

use charrnn_kernels::Precision;

use crate::model::config::{CellKind, ModelConfig};
use crate::training::step_timing::standard_flops_per_token;

/// The fitted law (docs/time_to_quality.md gives the sweep, the fit and its residuals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalingLaw {
    /// Coefficient of the parameters term.
    pub a: f64,
    /// Exponent of the parameters term.
    pub alpha: f64,
    /// Coefficient of the data term.
    pub b: f64,
    /// Exponent of the data term.
    pub beta: f64,
    /// How many passes over a corpus still count: the `R` of the repetition discount.
    pub repetitions: f64,
}

/// Fitted to the sweep of 2026-12-07 on tinyshakespeare and the Python standard library (see
/// docs/time_to_quality.md).
pub const LAW: ScalingLaw = ScalingLaw { a: 0.0, alpha: 0.0, b: 0.0, beta: 0.0, repetitions: 0.0 };

/// Hidden widths the rule chooses among (two layers each, as the sweep found best at these
/// budgets).
pub const WIDTHS: [usize; 8] = [128, 192, 256, 384, 512, 640, 768, 1024];

/// Share of the machine's multiply-add peak a training step reaches, by hidden width (measured
/// in the sweep: narrow products cannot keep the pipes busy); interpolated between.
pub const PEAK_SHARE: [(usize, f64); 2] = [(128, 0.0), (1024, 0.0)];

/// Share of a budget spent in training steps (the rest: start-up, evaluations, writes),
/// measured in the sweep.
pub const TRAINING_SHARE: f64 = 0.0;

/// What the choice depends on.
#[derive(Clone, Copy, Debug)]
pub struct SizingInputs {
    /// The run's wall-clock budget.
    pub budget: Duration,
    /// Tokens in the training split.
    pub train_tokens: u64,
    /// The corpus's vocabulary.
    pub vocab_size: usize,
    /// Worker threads.
    pub threads: usize,
    /// Whether this CPU multiplies bf16 natively (then the products run in bf16).
    pub bf16_native: bool,
    /// One thread's multiply-add peak in the chosen precision, flop/s (kernels' `peak_flops`).
    pub peak_flops: f64,
}

/// The run the rule chooses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizedRun {
    /// The model.
    pub config: ModelConfig,
    /// Dropout between layers.
    pub dropout: f64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Steps per chunk.
    pub seq_len: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Precision of the products.
    pub precision: Precision,
    /// Predicted training tokens per second.
    pub tokens_per_sec: f64,
    /// Predicted tokens seen in the budget.
    pub tokens: f64,
    /// Passes over the training split that makes.
    pub epochs: f64,
}

/// Rows per batch and steps per chunk of every size (the sweep's).
const BATCH: usize = 50;
const SEQ_LEN: usize = 50;
/// Embedding width of every size.
const EMBED: usize = 128;
/// Adam's base rate (the cosine over the budget takes it down to a tenth).
const LR: f64 = 0.002;

impl ScalingLaw {
    /// Tokens that count, of `tokens` seen over a corpus of `unique` tokens.
    pub fn effective_tokens(&self, tokens: f64, unique: f64) -> f64 {
        if tokens <= unique || unique <= 0.0 {
            return tokens;
        }
        let r = self.repetitions.max(f64::MIN_POSITIVE);
        unique * (1.0 + r * (1.0 - (-(tokens / unique - 1.0) / r).exp()))
    }

    /// The predicted loss above the corpus's entropy for `params` parameters after `tokens`
    /// tokens over a corpus of `unique`.
    pub fn excess_loss(&self, params: f64, tokens: f64, unique: f64) -> f64 {
        let d = self.effective_tokens(tokens, unique).max(1.0);
        self.a * params.max(1.0).powf(-self.alpha) + self.b * d.powf(-self.beta)
    }
}

/// The share of the peak a step of hidden width `hidden` reaches.
fn peak_share(hidden: usize) -> f64 {
    let (lo, hi) = (PEAK_SHARE[0], PEAK_SHARE[PEAK_SHARE.len() - 1]);
    if hidden <= lo.0 {
        return lo.1;
    }
    for pair in PEAK_SHARE.windows(2) {
        let ((h0, s0), (h1, s1)) = (pair[0], pair[1]);
        if hidden <= h1 {
            return s0 + (s1 - s0) * (hidden - h0) as f64 / (h1 - h0) as f64;
        }
    }
    hi.1
}

/// Dropout by how often the budget will repeat the corpus: none within one pass (nothing to
/// overfit yet), a little within three, char-rnn's usual 0.25 beyond.
fn dropout_for(epochs: f64) -> f64 {
    if epochs <= 1.0 {
        0.0
    } else if epochs <= 3.0 {
        0.1
    } else {
        0.25
    }
}

/// The run of width `hidden` on `inputs`, with its predicted speed and tokens.
fn candidate(inputs: &SizingInputs, hidden: usize) -> SizedRun {
    let config = ModelConfig {
        cell: CellKind::Lstm,
        vocab_size: inputs.vocab_size,
        embed_size: EMBED.min(hidden),
        hidden_size: hidden,
        num_layers: 2,
    };
    let flops = standard_flops_per_token(&config);
    let tokens_per_sec = inputs.threads.max(1) as f64 * inputs.peak_flops * peak_share(hidden) / flops;
    let tokens = tokens_per_sec * inputs.budget.as_secs_f64() * TRAINING_SHARE;
    let epochs = tokens / inputs.train_tokens.max(1) as f64;
    SizedRun {
        config,
        dropout: dropout_for(epochs),
        batch_size: BATCH,
        seq_len: SEQ_LEN,
        lr: LR,
        precision: if inputs.bf16_native { Precision::Bf16 } else { Precision::F32 },
        tokens_per_sec,
        tokens,
        epochs,
    }
}

/// One thread's multiply-add peak in `precision` on this machine, measured now (about 50 ms):
/// what [`SizingInputs::peak_flops`] takes.
pub fn machine_peak_flops(precision: Precision) -> f64 {
    charrnn_kernels::peak::peak_flops_here(precision)
}

/// The run the rule chooses for `inputs`: the width of [`WIDTHS`] with the lowest predicted
/// loss under [`LAW`].
pub fn size_for_budget(inputs: &SizingInputs) -> SizedRun {
    let unique = inputs.train_tokens as f64;
    let loss = |run: &SizedRun| LAW.excess_loss(run.config.num_params() as f64, run.tokens, unique);
    WIDTHS
        .iter()
        .map(|&hidden| candidate(inputs, hidden))
        .min_by(|x, y| loss(x).total_cmp(&loss(y)))
        .expect("WIDTHS is not empty")
}

impl SizedRun {
    /// One line: what was chosen and why.
    pub fn describe(&self, budget: Duration) -> String {
        format!(
            "{} × {} LSTM, embedding {}, dropout {}, batches {}×{}, lr {}, {} products: the lowest predicted \
             loss for {:.0}s at a predicted {:.0} tokens/s ({:.1}M tokens, {:.1} epochs); explicit flags win",
            self.config.num_layers,
            self.config.hidden_size,
            self.config.embed_size,
            self.dropout,
            self.batch_size,
            self.seq_len,
            self.lr,
            self.precision,
            budget.as_secs_f64(),
            self.tokens_per_sec,
            self.tokens / 1e6,
            self.epochs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(budget_secs: u64, train_tokens: u64) -> SizingInputs {
        SizingInputs {
            budget: Duration::from_secs(budget_secs),
            train_tokens,
            vocab_size: 65,
            threads: 2,
            bf16_native: true,
            peak_flops: 1.0e11,
        }
    }

    #[test]
    fn repeated_tokens_count_less_and_less() {
        let u = 1.0e6;
        assert_eq!(LAW.effective_tokens(5.0e5, u), 5.0e5, "within one pass every token counts");
        let counted: Vec<f64> = (1..=40).map(|epochs| LAW.effective_tokens(epochs as f64 * u, u)).collect();
        assert!(counted.windows(2).all(|w| w[1] > w[0]), "more passes always count for something");
        assert!(counted.windows(3).all(|w| w[2] - w[1] < w[1] - w[0]), "each pass less than the one before");
        assert!(counted.iter().all(|&d| d <= u * (1.0 + LAW.repetitions)), "bounded by U·(1 + R)");
    }

    #[test]
    fn the_law_and_the_speeds_are_fitted() {
        for value in [LAW.a, LAW.alpha, LAW.b, LAW.beta, LAW.repetitions, TRAINING_SHARE] {
            assert!(value.is_finite() && value > 0.0, "{LAW:?}, training share {TRAINING_SHARE}");
        }
        assert!(PEAK_SHARE.windows(2).all(|w| w[0].0 < w[1].0), "widths in order");
        assert!(PEAK_SHARE.iter().all(|&(_, share)| share > 0.0 && share <= 1.0));
    }

    /// A longer budget never chooses a narrower model, on a large corpus or a small one; a
    /// small corpus never a wider one than a large corpus at the same budget.
    #[test]
    fn longer_budgets_choose_wider_models_and_small_corpora_narrower_ones() {
        for corpus in [1_000_000, 100_000_000] {
            let widths: Vec<usize> =
                [30, 60, 180, 600, 1800, 7200].iter().map(|&s| size_for_budget(&inputs(s, corpus)).config.hidden_size).collect();
            assert!(widths.windows(2).all(|w| w[0] <= w[1]), "{corpus} tokens: {widths:?}");
        }
        for budget in [60, 600, 3600] {
            let small = size_for_budget(&inputs(budget, 300_000)).config.hidden_size;
            let large = size_for_budget(&inputs(budget, 100_000_000)).config.hidden_size;
            assert!(small <= large, "{budget} s: {small} on a small corpus, {large} on a large one");
        }
    }

    #[test]
    fn the_choice_follows_the_machine() {
        let native = size_for_budget(&inputs(600, 1_000_000));
        assert_eq!(native.precision, Precision::Bf16);
        let emulated = size_for_budget(&SizingInputs { bf16_native: false, ..inputs(600, 1_000_000) });
        assert_eq!(emulated.precision, Precision::F32);
        let slower = size_for_budget(&SizingInputs { peak_flops: 1.0e9, ..inputs(600, 100_000_000) });
        let faster = size_for_budget(&inputs(600, 100_000_000));
        assert!(slower.config.hidden_size <= faster.config.hidden_size, "a slower machine, a narrower model");
        let tokens = faster.tokens_per_sec * 600.0 * TRAINING_SHARE;
        assert!((faster.tokens - tokens).abs() < 1.0 && (faster.epochs - tokens / 1.0e8).abs() < 1e-9);
        let line = faster.describe(Duration::from_secs(600));
        assert!(line.contains(&format!("× {} LSTM", faster.config.hidden_size)) && line.contains("for 600s"), "{line}");
    }
}
