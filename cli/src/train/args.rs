//! The arguments of `charrnn-fast train` and their first checks (before any file is read).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use charrnn_engine::{CellKind, ModelConfig};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::shared::corpus::{BatchArgs, CorpusArgs};
use crate::shared::precision_arg::PrecisionArg;
use crate::train::duration_arg::parse_duration;

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Long short-term memory
    Lstm,
    /// Vanilla tanh RNN
    Rnn,
    /// Gated recurrent unit (PyTorch's nn.GRU)
    Gru,
}

impl Cell {
    pub(crate) fn kind(self) -> CellKind {
        match self {
            Cell::Lstm => CellKind::Lstm,
            Cell::Rnn => CellKind::Rnn,
            Cell::Gru => CellKind::Gru,
        }
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Recurrent cell
    #[arg(long, value_enum, default_value_t = Cell::Lstm)]
    pub cell: Cell,
    /// Width of each recurrent layer's state
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: u32,
    /// Number of stacked recurrent layers
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub layers: u32,
    /// Width of the character embedding
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub embed: u32,
    /// Adam learning rate
    #[arg(long, default_value_t = 0.002, value_name = "X")]
    pub lr: f64,
    /// Multiply the learning rate by X after each epoch from --lr-decay-after on (1: no decay)
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub lr_decay: f64,
    /// Epochs at the full learning rate before --lr-decay applies
    #[arg(long, default_value_t = 10, value_name = "EPOCHS")]
    pub lr_decay_after: u64,
    /// Clip gradients to this global L2 norm (0 disables)
    #[arg(long, default_value_t = 5.0, value_name = "X")]
    pub clip: f64,
    /// Decoupled weight decay (AdamW's λ): before each update every weight is multiplied by
    /// 1 − lr·λ, as PyTorch's AdamW does; 0 is plain Adam. With --time and no size flags, the
    /// budget chooses it
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    pub weight_decay: f64,
    /// Dropout probability in [0, 1) on each recurrent layer's output before it feeds the next
    /// layer (inverted dropout, as char-rnn); not on the embedding, not after the last layer
    /// (--output-dropout),
    /// never in evaluation or sampling. Masks are fixed by --seed and the step (reproducible)
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub dropout: f64,
    /// Dropout probability in [0, 1) on the last recurrent layer's output, before the output
    /// layer (as Zaremba et al. drop every non-recurrent connection); with --dropout, every
    /// layer's output is dropped. Training only, masks fixed by --seed and the step
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub output_dropout: f64,
    /// DropConnect probability in [0, 1) on the recurrent weights (AWD-LSTM's weight drop): in
    /// each training step a fraction P of each layer's hidden-to-hidden weights is dropped, the
    /// same ones for every row and time step of the step: dropout between time steps. Training
    /// only, masks fixed by --seed and the step
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub weight_drop: f64,
    /// Probability in [0, 1) of zeroing a row's carried state before each training step, so
    /// the model also learns to start cold: text scored or sampled from a zero state (short
    /// windows, a new prompt) then starts better. A row keeps 1/P batches of context on
    /// average. Draws fixed by --seed and the step
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub state_reset: f64,
    /// What the matrix products round their operands to [default: f32; with --resume, the
    /// checkpoint's]
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Passes over the training split
    #[arg(long, default_value_t = 2, value_name = "N", conflicts_with = "steps", value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Train for exactly N steps instead of whole epochs (with --resume: the new total; with
    /// --time: at most N steps, the learning rate's decay ending at the Nth if it comes before
    /// the budget's end)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Train for a wall-clock budget instead of a number of epochs: 90s, 10m, 1h30m. The whole
    /// run fits in it (preparing, evaluations and the final writes included): the learning
    /// rate warms up over the first 2% and follows a cosine down to a tenth of --lr at the
    /// end, laid over the time left as measured while training; evaluations come at most
    /// every tenth of the budget. The run ends on time, with the best validation model as
    /// `model.safetensors`. With --resume: the new total budget (by default what is left of
    /// the run's own)
    #[arg(long, value_name = "DURATION", conflicts_with = "epochs", value_parser = parse_duration)]
    pub time: Option<Duration>,
    /// Also evaluate on the validation split every N steps (0: only at epoch ends and at the end)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_every: u64,
    /// Save a checkpoint every N steps (0: only at the end and on Ctrl-C)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub checkpoint_every: u64,
    /// Continue exactly where the checkpoint in DIR (a previous --out) stopped: weights,
    /// optimiser, step, carried state and settings all come from it
    #[arg(long, value_name = "DIR", conflicts_with = "init_from")]
    pub resume: Option<PathBuf>,
    /// Worker threads [default: all cores]; the batch is split into one part per thread
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Set the LSTM forget gate's initial bias to X (e.g. 1, as char-rnn does) [default: PyTorch's
    /// uniform initialisation, which trained better on tinyshakespeare]
    #[arg(long, value_name = "X")]
    pub forget_bias: Option<f64>,
    /// Seed of the initial weights
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Start from the weights of a saved model (from `train --out`, or PyTorch through
    /// benches/reference/torch_charrnn.py) instead of a fresh initialisation; the model's shape
    /// comes from it and its vocabulary must be the corpus's. The optimiser starts fresh.
    #[arg(long, value_name = "DIR")]
    pub init_from: Option<PathBuf>,
    /// Directory for the model, checkpoint.safetensors, best/ (best validation), log.csv and
    /// loss.svg; locked for the run [default: the --resume DIR, else out]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Clear the run already in --out before training, instead of refusing to touch it: only
    /// the files this program wrote (checkpoint, model, config.json, vocab.json, log.csv,
    /// loss.svg, best/), recognised by their content; anything else is left, and a file of
    /// someone else's under one of those names makes the run refuse to start
    #[arg(long)]
    pub force: bool,
    /// Where stderr is not a terminal (a log file, a pipe), print a progress line every N
    /// steps, besides the first and last steps and each validation [default: 100]; a terminal
    /// shows a progress bar instead
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: Option<u64>,
    /// Print only warnings, errors and the closing summary (no progress, no description of the
    /// corpus, model and run)
    #[arg(long)]
    pub quiet: bool,
    /// Check the run and print what it would be (parameters, memory needed and available,
    /// steps per epoch and in all, threads, precision), then exit without training. Nothing is
    /// written in --out (not even its directory); the corpus is prepared (and cached) as a
    /// run would, since the figures need its vocabulary and length
    #[arg(long)]
    pub dry_run: bool,
}

/// The weight decay `λ` against the rate it runs with: the factor `1 − lr·λ` must stay
/// positive. Checked on the typed flags at once, and again on the run's settled record, whose
/// rate the `--time` rule or a resumed checkpoint may have set.
pub fn check_weight_decay(weight_decay: f64, lr: f64) -> Result<()> {
    if !(weight_decay.is_finite() && weight_decay >= 0.0 && lr * weight_decay < 1.0) {
        bail!(
            "--weight-decay must be 0 (off) or a positive number with --lr × --weight-decay below 1 (got {weight_decay} with --lr {lr})"
        );
    }
    Ok(())
}

pub fn check_args(args: &TrainArgs) -> Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", args.lr);
    }
    if !(args.lr_decay.is_finite() && args.lr_decay > 0.0 && args.lr_decay <= 1.0) {
        bail!("--lr-decay must be in (0, 1] (got {})", args.lr_decay);
    }
    if let Some(bias) = args.forget_bias.filter(|b| !b.is_finite()) {
        bail!("--forget-bias must be a finite number (got {bias})");
    }
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        bail!("--clip must be 0 (off) or a positive number (got {})", args.clip);
    }
    check_weight_decay(args.weight_decay, args.lr)?;
    if !(args.dropout.is_finite() && (0.0..1.0).contains(&args.dropout)) {
        bail!("--dropout must be a probability in [0, 1) (got {})", args.dropout);
    }
    if !(args.output_dropout.is_finite() && (0.0..1.0).contains(&args.output_dropout)) {
        bail!("--output-dropout must be a probability in [0, 1) (got {})", args.output_dropout);
    }
    if !(args.weight_drop.is_finite() && (0.0..1.0).contains(&args.weight_drop)) {
        bail!("--weight-drop must be a probability in [0, 1) (got {})", args.weight_drop);
    }
    if !(args.state_reset.is_finite() && (0.0..1.0).contains(&args.state_reset)) {
        bail!("--state-reset must be a probability in [0, 1) (got {})", args.state_reset);
    }
    // The model's size, before preparing the corpus (with the smallest vocabulary: the real
    // one is checked again once known).
    ModelConfig {
        cell: args.cell.kind(),
        vocab_size: 1,
        embed_size: args.embed as usize,
        hidden_size: args.hidden as usize,
        num_layers: args.layers as usize,
    }
    .validate()?;
    Ok(())
}
