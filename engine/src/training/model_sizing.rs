//! The model `train --time` chooses when no size is given, from the sweep of this engine in
//! docs/time_to_quality.md and the speed each size would train at on this machine.
//!
//! The rule is the optimum of a small scaling law, `L(N, D) = E + A/N^α + B/D^α`: `N`
//! parameters, `D` tokens seen in the budget, one exponent for both (Chinchilla's finding, that
//! the best model for a budget sees a fixed number of tokens per parameter whatever the
//! budget). Along the budget's line (`D` = speed of `N` × time, the speed falling as `N` grows)
//! its minimum lies where `D/N = (B/A)^{1/α}`, a constant [`TOKENS_PER_PARAMETER`]: the rule
//! takes the widest model that still sees that many tokens per parameter. The sweep fixes the
//! constant: at every corpus and budget it measured (tinyshakespeare at 1, 3 and 10 minutes,
//! the Python standard library at 3), the best width saw 2.42 to 2.6 tokens per parameter by this
//! rule's own prediction of its speed (the probe of the peak varies by about 3% from run to
//! run), and the next width up at most 2.37. `E` (the corpus's entropy) does not move the
//! optimum. How often the budget repeats the corpus sets the dropout instead ([`dropout_for`]).
//!
//! A small corpus caps the passes: past [`MAX_PASSES`] over it the model overfits whatever its
//! width (docs/time_to_quality.md, the 30-minute race), so the tokens a run can use are at most
//! that many passes. The rule counts only those, and a run that would make more ends after them,
//! its learning rate decayed over them, before the budget is spent.
//!
//! The speed of a size is predicted from its floating-point work per token
//! (`standard_flops_per_token`), this machine's measured multiply-add peak and the share of the
//! peak a training step reaches ([`PEAK_SHARE`], measured in the sweep); the run then measures
//! its real speed and lays its schedule over it.

use std::time::Duration;

use charrnn_kernels::Precision;

use crate::model::config::{CellKind, ModelConfig};
use crate::training::step_timing::standard_flops_per_token;

/// Tokens per parameter at the law's optimum (docs/time_to_quality.md: the sweep's optima
/// bracket it between 2.37 and 2.42).
pub const TOKENS_PER_PARAMETER: f64 = 2.4;

/// The most passes over the training split a run makes. The best runs measured made about 9.5
/// (2 × 512 for ten minutes: 1.4210; PyTorch's 2 × 640 for thirty: 1.4197); 2 × 640 over 16
/// passes overfit after 10 (its best validation 1.4422 there, 1.4413 in the end).
pub const MAX_PASSES: f64 = 10.0;

/// The probability of a state reset before each step (`train --state-reset`): on
/// tinyshakespeare at 3 minutes (2 × 256), 0.1 scored 1.5069 over windows of 64 from a cold
/// start against 1.5590 without, 1.4638 against 1.4770 over windows of 256, and the same as a
/// stream (1.4442 against 1.4445); 0.3 cost 0.016 as a stream.
pub const STATE_RESET: f64 = 0.1;

/// Hidden widths the rule chooses among (two layers each, as the sweep found best at these
/// budgets).
pub const WIDTHS: [usize; 8] = [128, 192, 256, 384, 512, 640, 768, 1024];

/// Share of the machine's multiply-add peak (both threads) a bf16 training step of these widths
/// reaches: the sweep's quiet speeds of every width (2 layers, embedding 128, batches 50×50)
/// gave 0.645 to 0.770 of 441 GFLOP/s on the 2-core Zen 4, their median this.
pub const PEAK_SHARE: f64 = 0.71;

/// Share of a budget spent in training steps (the rest: start-up, evaluations, writes), the
/// sweep's median.
pub const TRAINING_SHARE: f64 = 0.93;

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
    /// Dropout on the last layer's output.
    pub output_dropout: f64,
    /// The probability of a state reset before each step.
    pub state_reset: f64,
    /// Adam's decoupled weight decay (`train --weight-decay`).
    pub weight_decay: f64,
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
    /// Predicted tokens seen in the budget (at most [`MAX_PASSES`] over the training split).
    pub tokens: f64,
    /// Passes over the training split that makes.
    pub epochs: f64,
    /// The steps the run is cut to when the budget would make more than [`MAX_PASSES`] passes
    /// (it then ends early, its schedule laid over these steps); `None`: the budget ends it.
    pub max_steps: Option<u64>,
}

impl SizedRun {
    /// Predicted tokens seen per parameter.
    pub fn tokens_per_parameter(&self) -> f64 {
        self.tokens / self.config.num_params() as f64
    }
}

/// Rows per batch and steps per chunk of every size (the sweep's).
const BATCH: usize = 50;
const SEQ_LEN: usize = 50;
/// Embedding width of every size.
const EMBED: usize = 128;

/// Adam's base rate by width (the cosine over the budget takes it down to a tenth): narrow
/// models take a faster rate (the sweep: 2 × 256 for a minute reached 1.506 at 0.004, 1.572
/// at 0.002), wide ones 0.003 (2 × 512 for ten minutes: 1.423 at 0.003, 1.434 at 0.002).
fn lr_for(hidden: usize) -> f64 {
    if hidden <= 256 {
        0.004
    } else {
        0.003
    }
}

/// What holds a model back from overfitting its corpus.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Regularisation {
    /// Dropout between layers.
    dropout: f64,
    /// Dropout on the last layer's output.
    output_dropout: f64,
    /// Adam's decoupled weight decay.
    weight_decay: f64,
}

/// The weight decay of a model larger than its corpus over many passes (docs/time_to_quality.md,
/// "Weight decay"): 2 × 512 for ten minutes on tinyshakespeare scored 1.4242 as a stream
/// without it, 1.4203 at 0.1, 1.4128 at 0.3 and 1.5000 at 1.0 (dropout 0.4 + 0.4); at 0.3,
/// dropout 0.2 + 0.2 then scored 1.3970 and 0.3 + 0.3 1.4065.
pub const WEIGHT_DECAY: f64 = 0.3;

/// The regularisation by how often the budget repeats the corpus and how large the model is
/// beside it (`params_per_token`: parameters per training token), as the sweeps found: none up
/// to four passes (2 × 256 for a minute, 3.2 passes: 1.572 without, 1.631 with dropout 0.1);
/// dropout 0.1 between layers beyond that for a model smaller than its corpus (2 × 256 for three
/// minutes, 8.8 passes); for a larger one, weight decay [`WEIGHT_DECAY`] and dropout 0.2 between
/// layers and on the output (2 × 512 for ten minutes, 8.8 passes over a corpus of a third of its
/// size: without weight decay it needed dropout 0.4, overfitting at 0.25, 1.434 against 1.424;
/// with it 0.2 did best).
fn regularisation_for(epochs: f64, params_per_token: f64) -> Regularisation {
    let (dropout, output_dropout, weight_decay) = if epochs <= 4.0 {
        (0.0, 0.0, 0.0)
    } else if params_per_token <= 1.0 {
        (0.1, 0.0, 0.0)
    } else {
        (0.2, 0.2, WEIGHT_DECAY)
    };
    Regularisation { dropout, output_dropout, weight_decay }
}

/// The run the rule would make of width `hidden` on `inputs`, with its predicted speed and
/// tokens (what the rest of a run is set to when its width is given).
pub fn run_of_width(inputs: &SizingInputs, hidden: usize) -> SizedRun {
    let config = ModelConfig {
        cell: CellKind::Lstm,
        vocab_size: inputs.vocab_size,
        embed_size: EMBED.min(hidden),
        hidden_size: hidden,
        num_layers: 2,
    };
    let flops = standard_flops_per_token(&config);
    let tokens_per_sec = inputs.threads.max(1) as f64 * inputs.peak_flops * PEAK_SHARE / flops;
    let train_tokens = inputs.train_tokens.max(1) as f64;
    let in_budget = tokens_per_sec * inputs.budget.as_secs_f64() * TRAINING_SHARE;
    let tokens = in_budget.min(MAX_PASSES * train_tokens);
    let max_steps = (in_budget > tokens).then(|| (tokens / (BATCH * SEQ_LEN) as f64).ceil() as u64);
    let epochs = tokens / train_tokens;
    let Regularisation { dropout, output_dropout, weight_decay } =
        regularisation_for(epochs, config.num_params() as f64 / train_tokens);
    SizedRun {
        config,
        dropout,
        output_dropout,
        state_reset: STATE_RESET,
        weight_decay,
        batch_size: BATCH,
        seq_len: SEQ_LEN,
        lr: lr_for(hidden),
        precision: if inputs.bf16_native { Precision::Bf16 } else { Precision::F32 },
        tokens_per_sec,
        tokens,
        epochs,
        max_steps,
    }
}

/// One thread's multiply-add peak in `precision` on this machine, measured now (about 200 ms):
/// what [`SizingInputs::peak_flops`] takes.
pub fn machine_peak_flops(precision: Precision) -> f64 {
    charrnn_kernels::peak::peak_flops_here(precision)
}

/// The run the rule chooses for `inputs`: the widest of [`WIDTHS`] that sees at least
/// [`TOKENS_PER_PARAMETER`] tokens per parameter in the budget (the narrowest when none does).
pub fn size_for_budget(inputs: &SizingInputs) -> SizedRun {
    WIDTHS
        .iter()
        .map(|&hidden| run_of_width(inputs, hidden))
        .rfind(|run| run.tokens_per_parameter() >= TOKENS_PER_PARAMETER)
        .unwrap_or_else(|| run_of_width(inputs, WIDTHS[0]))
}

impl SizedRun {
    /// One line: what was chosen and why (`width_given`: the width was typed, the rest is the
    /// rule's for it).
    pub fn describe(&self, budget: Duration, width_given: bool) -> String {
        let why = match width_given {
            true => "the rule's settings for the width given".to_string(),
            false => format!("the widest with at least {TOKENS_PER_PARAMETER} tokens per parameter"),
        };
        let cap = match self.max_steps {
            Some(steps) => format!(
                "; more than {MAX_PASSES} passes over this corpus overfit, so it ends after {steps} steps (about {:.0}s)",
                self.tokens / self.tokens_per_sec / TRAINING_SHARE
            ),
            None => String::new(),
        };
        format!(
            "{} × {} LSTM, embedding {}, dropout {} (output {}), state reset {}, weight decay {}, batches {}×{}, lr {}, {} products: {why} \
             in {:.0}s at a predicted {:.0} tokens/s ({:.1}M tokens, {:.1} per parameter, {:.1} epochs){cap}; \
             explicit flags win",
            self.config.num_layers,
            self.config.hidden_size,
            self.config.embed_size,
            self.dropout,
            self.output_dropout,
            self.state_reset,
            self.weight_decay,
            self.batch_size,
            self.seq_len,
            self.lr,
            self.precision,
            budget.as_secs_f64(),
            self.tokens_per_sec,
            self.tokens / 1e6,
            self.tokens_per_parameter(),
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

    // The shares are fractions (checked when the crate compiles).
    const _: () = assert!(PEAK_SHARE > 0.0 && PEAK_SHARE <= 1.0 && TRAINING_SHARE > 0.0 && TRAINING_SHARE <= 1.0);

    #[test]
    fn widths_are_in_order() {
        assert!(WIDTHS.windows(2).all(|w| w[0] < w[1]), "{WIDTHS:?}");
    }

    /// The choice is the widest width with enough tokens per parameter: the next width up has
    /// too few. A longer budget never chooses a narrower model.
    #[test]
    fn the_choice_is_the_widest_with_enough_tokens_per_parameter() {
        let mut last = 0;
        for budget in [30, 60, 180, 600, 1800, 7200] {
            let input = inputs(budget, 1_000_000);
            let chosen = size_for_budget(&input);
            let width = chosen.config.hidden_size;
            assert!(chosen.tokens_per_parameter() >= TOKENS_PER_PARAMETER || width == WIDTHS[0]);
            if let Some(&wider) = WIDTHS.iter().find(|&&w| w > width) {
                let next = run_of_width(&input, wider);
                assert!(next.tokens_per_parameter() < TOKENS_PER_PARAMETER, "{budget} s: {wider} had enough too");
            }
            assert!(width >= last, "{budget} s chose {width} after {last}");
            last = width;
        }
        assert!(last > WIDTHS[0], "two hours chose the narrowest width");
    }

    /// Many passes over a corpus smaller than the model bring heavy dropout and weight decay,
    /// over a larger one light dropout; a few passes none.
    #[test]
    fn regularisation_follows_the_passes_and_the_corpus_size() {
        let small = size_for_budget(&inputs(3600, 300_000));
        assert!(small.epochs > 4.0 && small.config.num_params() > 300_000, "{small:?}");
        assert_eq!((small.dropout, small.output_dropout, small.weight_decay), (0.2, 0.2, WEIGHT_DECAY));
        let narrow = run_of_width(&inputs(36_000, 100_000_000), 128);
        assert!(narrow.epochs > 4.0 && narrow.config.num_params() < 100_000_000, "{narrow:?}");
        assert_eq!((narrow.dropout, narrow.output_dropout, narrow.weight_decay), (0.1, 0.0, 0.0));
        let large = size_for_budget(&inputs(60, 1_000_000_000));
        assert!(large.epochs < 1.0, "{large:?}");
        assert_eq!((large.dropout, large.output_dropout, large.weight_decay), (0.0, 0.0, 0.0));
    }

    /// A long budget on a small corpus counts at most MAX_PASSES passes: the run is cut to
    /// them and the line says so; a longer budget then changes nothing. A short one is not cut.
    #[test]
    fn a_small_corpus_caps_the_passes() {
        let long = size_for_budget(&inputs(1800, 1_000_000));
        let steps = long.max_steps.expect("1,800 s over a million tokens makes more than 10 passes");
        assert!((long.epochs - MAX_PASSES).abs() < 1e-9 && (long.tokens - 1.0e7).abs() < 1e-3, "{long:?}");
        assert_eq!(steps, (1.0e7 / (BATCH * SEQ_LEN) as f64).ceil() as u64);
        let line = long.describe(Duration::from_secs(1800), false);
        assert!(line.contains(&format!("ends after {steps} steps")), "{line}");
        assert_eq!(size_for_budget(&inputs(7200, 1_000_000)), long);
        let short = size_for_budget(&inputs(60, 1_000_000));
        assert!(short.max_steps.is_none() && short.epochs < MAX_PASSES, "{short:?}");
        assert!(!short.describe(Duration::from_secs(60), false).contains("ends after"));
    }

    #[test]
    fn the_choice_follows_the_machine() {
        let native = size_for_budget(&inputs(600, 1_000_000));
        assert_eq!(native.precision, Precision::Bf16);
        let emulated = size_for_budget(&SizingInputs { bf16_native: false, ..inputs(600, 1_000_000) });
        assert_eq!(emulated.precision, Precision::F32);
        let slower = size_for_budget(&SizingInputs { peak_flops: 1.0e9, ..inputs(600, 100_000_000) });
        let faster = size_for_budget(&inputs(600, 100_000_000));
        assert!(slower.config.hidden_size < faster.config.hidden_size, "a slower machine, a narrower model");
        let tokens = faster.tokens_per_sec * 600.0 * TRAINING_SHARE;
        assert!((faster.tokens - tokens).abs() < 1.0 && (faster.epochs - tokens / 1.0e8).abs() < 1e-9);
        let line = faster.describe(Duration::from_secs(600), false);
        assert!(line.contains(&format!("× {} LSTM", faster.config.hidden_size)) && line.contains("in 600s"), "{line}");
    }
}
