//! The settings of a run (kept in every checkpoint and in the saved model's `config.json`), and
//! what flags given with `--resume` or `--init-from` may do to them: a flag that would change
//! what the checkpoint or model is (its shape, cell, vocabulary, batch layout) is an error that
//! names it; one that may change between sessions (`--lr`, `--steps`, …) is applied and said.

use std::path::PathBuf;

use anyhow::{bail, Result};
use charrnn_engine::ModelConfig;
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::{Deserialize, Serialize};

use crate::train_args::TrainArgs;

/// The settings of a run, kept in every checkpoint so that `--resume` continues it exactly,
/// and in the saved model's config.json (`benches/reference/torch_charrnn.py init` reads
/// `data`, `batch_size`, `seq_len`, `val_frac`, `lr`, `clip` and `val_loss` from there).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// The corpus, as an absolute path (checkpoints from before this may hold a relative one).
    pub data: PathBuf,
    /// SHA-256 of the prepared token file, to tell a changed corpus at resume (absent in
    /// checkpoints from before it existed: not checked).
    #[serde(default)]
    pub tokens_sha256: Option<String>,
    pub bytes: bool,
    pub val_frac: f64,
    pub batch_size: usize,
    pub seq_len: usize,
    pub lr: f64,
    pub lr_decay: f64,
    pub lr_decay_after: u64,
    pub clip: f64,
    /// Dropout between layers (absent in checkpoints from before it existed: none).
    #[serde(default)]
    pub dropout: f64,
    pub seed: u64,
    #[serde(default)]
    pub forget_bias: Option<f64>,
    pub total_steps: u64,
    pub eval_every: u64,
    pub checkpoint_every: u64,
    pub best_val_loss: Option<f64>,
    /// Filled in when a model is saved.
    #[serde(default)]
    pub steps: u64,
    /// The last validation loss measured, and after which step (which may be earlier than
    /// `steps` when the run was stopped between evaluations).
    #[serde(default)]
    pub val_loss: Option<f64>,
    #[serde(default)]
    pub val_loss_step: Option<u64>,
    #[serde(default)]
    pub tokens_per_sec: Option<f64>,
}

impl RunRecord {
    /// The settings of a new run from its arguments.
    pub fn fresh(args: &TrainArgs, data: PathBuf, tokens_sha256: String, batches_per_epoch: u64) -> RunRecord {
        RunRecord {
            data,
            tokens_sha256: Some(tokens_sha256),
            bytes: args.corpus.bytes,
            val_frac: args.batch.val_frac,
            batch_size: args.batch.batch_size as usize,
            seq_len: args.batch.seq_len as usize,
            lr: args.lr,
            lr_decay: args.lr_decay,
            lr_decay_after: args.lr_decay_after,
            clip: args.clip,
            dropout: args.dropout,
            seed: args.seed,
            forget_bias: args.forget_bias,
            total_steps: args.steps.unwrap_or(args.epochs * batches_per_epoch),
            eval_every: args.eval_every,
            checkpoint_every: args.checkpoint_every,
            best_val_loss: None,
            steps: 0,
            val_loss: None,
            val_loss_step: None,
            tokens_per_sec: None,
        }
    }

    /// The unit of the losses: per character, or per byte for a `--bytes` run.
    pub fn unit(&self) -> &'static str {
        if self.bytes {
            "byte"
        } else {
            "char"
        }
    }
}

/// Which flags the user typed (as opposed to defaults).
pub struct Given<'a>(pub &'a ArgMatches);

impl Given<'_> {
    fn has(&self, id: &str) -> bool {
        self.0.value_source(id) == Some(ValueSource::CommandLine)
    }
}

/// Collects the flags given that differ from what a checkpoint or model fixes.
struct Contradictions(Vec<String>);

impl Contradictions {
    fn check<T: PartialEq + std::fmt::Display>(&mut self, given: &Given<'_>, id: &str, flag: &str, ours: T, theirs: T) {
        if given.has(id) && ours != theirs {
            self.0.push(format!("{flag} {ours} (it has {theirs})"));
        }
    }

    fn model(&mut self, given: &Given<'_>, args: &TrainArgs, config: &ModelConfig) {
        self.check(given, "cell", "--cell", args.cell.kind().name(), config.cell.name());
        self.check(given, "hidden", "--hidden", args.hidden as usize, config.hidden_size);
        self.check(given, "layers", "--layers", args.layers as usize, config.num_layers);
        self.check(given, "embed", "--embed", args.embed as usize, config.embed_size);
    }

    fn fail_if_any(self, what: &str, fix: &str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        bail!("{} contradict{} {what}; {fix}", self.0.join(", "), if self.0.len() == 1 { "s" } else { "" })
    }
}

/// Refuses flags that contradict the checkpoint being resumed.
pub fn check_resume_flags(record: &RunRecord, config: &ModelConfig, args: &TrainArgs, given: &Given<'_>) -> Result<()> {
    let mut c = Contradictions(vec![]);
    c.model(given, args, config);
    if given.has("bytes") && !record.bytes {
        c.0.push("--bytes (it is a character-level run)".to_owned());
    }
    c.check(given, "batch_size", "--batch", args.batch.batch_size as usize, record.batch_size);
    c.check(given, "seq_len", "--seq-len", args.batch.seq_len as usize, record.seq_len);
    c.check(given, "val_frac", "--val-frac", args.batch.val_frac, record.val_frac);
    c.check(given, "seed", "--seed", args.seed, record.seed);
    let shown = |b: Option<f64>| b.map_or("none".to_owned(), |b| b.to_string());
    c.check(given, "forget_bias", "--forget-bias", shown(args.forget_bias), shown(record.forget_bias));
    c.fail_if_any(
        "the checkpoint being resumed",
        "leave them out to continue that run, or start a new one with another --out",
    )
}

/// Refuses flags that contradict the model `--init-from` starts from.
pub fn check_init_flags(config: &ModelConfig, args: &TrainArgs, given: &Given<'_>) -> Result<()> {
    let mut c = Contradictions(vec![]);
    c.model(given, args, config);
    if given.has("forget_bias") {
        c.0.push("--forget-bias (the initial weights come from the model)".to_owned());
    }
    c.fail_if_any("the model of --init-from", "leave them out: the model's shape comes from it")
}

/// Applies the flags that may change when a run is resumed; returns what changed, as
/// `--flag new (was old)`.
pub fn apply_resume_flags(
    record: &mut RunRecord,
    args: &TrainArgs,
    given: &Given<'_>,
    batches_per_epoch: u64,
) -> Vec<String> {
    let mut changed = vec![];
    macro_rules! apply {
        ($id:literal, $flag:literal, $field:ident, $value:expr) => {
            if given.has($id) && record.$field != $value {
                changed.push(format!("{} {} (was {})", $flag, $value, record.$field));
                record.$field = $value;
            }
        };
    }
    apply!("lr", "--lr", lr, args.lr);
    apply!("lr_decay", "--lr-decay", lr_decay, args.lr_decay);
    apply!("lr_decay_after", "--lr-decay-after", lr_decay_after, args.lr_decay_after);
    apply!("clip", "--clip", clip, args.clip);
    apply!("dropout", "--dropout", dropout, args.dropout);
    apply!("eval_every", "--eval-every", eval_every, args.eval_every);
    apply!("checkpoint_every", "--checkpoint-every", checkpoint_every, args.checkpoint_every);
    if let Some(steps) = args.steps {
        apply!("steps", "--steps", total_steps, steps);
    } else if given.has("epochs") {
        let total = args.epochs * batches_per_epoch;
        if record.total_steps != total {
            changed.push(format!("--epochs {} ({total} steps, was {})", args.epochs, record.total_steps));
            record.total_steps = total;
        }
    }
    changed
}
