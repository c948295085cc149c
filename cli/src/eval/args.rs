//! `eval`'s flags.

use std::path::PathBuf;

use clap::Args;

use crate::shared::precision_arg::PrecisionArg;

/// The two protocols, for `eval --help`.
const PROTOCOLS: &str = "Two ways to score a text:\n\n  \
    One stream (the default): the whole text (or the --val-frac tail) read once from a zero state, \
    the state carried from each character to the next, every character after the first predicted. \
    This is how the model is used and the exact figure; it is one sequence, so its steps run one \
    after another, but its layers run at once, each a chunk behind the one below (a model of L \
    layers uses up to L cores).\n\n  \
    Random windows (--windows W --count N --seed S): N windows of W characters at random starts, \
    each read from a zero state; the loss is the mean over all W·N predictions (nanoGPT's \
    estimate_loss: start i uniform in [0, len − W − 1], inputs text[i..i+W], targets \
    text[i+1..i+W+1]). The early characters of a window are predicted with little context, so the \
    figure is higher than the stream's, and it is what transformer baselines report (W = their \
    block size: 256 for nanoGPT's shakespeare_char, 64 for its CPU recipe). Windows run many at \
    a time, over every thread.\n\n\
    Use the stream to judge the model as it is used; windows to compare with a figure measured \
    that way. --val-frac X scores the tail that `train --val-frac X` held out, so a model is \
    scored on text it never trained on.";

#[derive(Args, Debug)]
#[command(after_long_help = PROTOCOLS)]
pub struct EvalArgs {
    /// The model: a directory written by `train --out` (or its best/), a run directory that
    /// holds only checkpoint.safetensors, or a checkpoint file (as `sample --model`)
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// The text to score: UTF-8 text for a character model, any file for a --bytes model
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Score only the last X of the text: the tail that `train --val-frac X` holds out for
    /// validation, cut exactly as train cuts it
    #[arg(long, value_name = "X")]
    pub val_frac: Option<f64>,
    /// Score W-character windows at random starts, each from a zero state (nanoGPT's
    /// estimate_loss), instead of the text as one stream; see --help for when to use which
    #[arg(long, value_name = "W")]
    pub windows: Option<usize>,
    /// How many windows (with --windows)
    #[arg(long, default_value_t = 2000, value_name = "N", requires = "windows")]
    pub count: usize,
    /// Seed of the window starts (with --windows)
    #[arg(long, default_value_t = 42, value_name = "N", requires = "windows")]
    pub seed: u64,
    /// Write each predicted character's log-probability to FILE (a tab-separated table:
    /// position in the file, the character escaped, nats, bits) to find the surprising parts
    /// of a text; one stream only. A file already there is replaced only if it is such a table
    #[arg(long, value_name = "FILE", conflicts_with = "windows")]
    pub per_char: Option<PathBuf>,
    /// Leave out characters outside the model's vocabulary (the count is reported), instead of
    /// failing
    #[arg(long)]
    pub skip_unknown: bool,
    /// What the forward pass's matrix products round their operands to
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Worker threads [default: all cores]; --windows splits the windows between them
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Print the result as one JSON line on stdout (for scripts)
    #[arg(long)]
    pub json: bool,
}
