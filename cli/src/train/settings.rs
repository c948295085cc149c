//! The command line's side of the resume contract (`charrnn_engine::training::run_settings`): which flags
//! the user typed, as a [`Requested`]; the record of a new run from its flags; and the engine's
//! field names as flags in the messages.

use std::path::PathBuf;

use anyhow::Result;
use charrnn_engine::training::run_settings::{Change, Contradictions, Requested, RunRecord};
use charrnn_engine::Precision;
use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::shared::flags::flag;
use crate::shared::precision_arg::PrecisionArg;
use crate::train::args::TrainArgs;

/// The settings of a new run from its arguments.
pub fn fresh_record(args: &TrainArgs, data: PathBuf, tokens_sha256: String, batches_per_epoch: u64) -> RunRecord {
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
        weight_decay: args.weight_decay,
        dropout: args.dropout,
        output_dropout: args.output_dropout,
        weight_drop: args.weight_drop,
        state_reset: args.state_reset,
        seed: args.seed,
        forget_bias: args.forget_bias,
        precision: args.precision.map_or(Precision::F32, PrecisionArg::precision),
        total_steps: match args.time {
            Some(_) => args.steps.unwrap_or(u64::MAX),
            None => args.steps.unwrap_or(args.epochs * batches_per_epoch),
        },
        time_budget_secs: args.time.map(|t| t.as_secs_f64()),
        time_used_secs: 0.0,
        sized: None,
        eval_every: args.eval_every,
        checkpoint_every: args.checkpoint_every,
        best_val_loss: None,
        steps: 0,
        val_loss: None,
        val_loss_step: None,
        tokens_per_sec: None,
    }
}

/// Which flags the user typed (as opposed to defaults).
pub struct Given<'a>(pub &'a ArgMatches);

impl Given<'_> {
    /// Whether the flag `id` (clap's id: `hidden`, `batch_size`, …) was typed.
    pub fn has(&self, id: &str) -> bool {
        self.0.value_source(id) == Some(ValueSource::CommandLine)
    }

    /// The settings typed on the command line.
    pub fn requested(&self, args: &TrainArgs) -> Requested {
        let typed = |id: &str| self.has(id);
        Requested {
            cell: typed("cell").then_some(args.cell.kind()),
            hidden_size: typed("hidden").then_some(args.hidden as usize),
            num_layers: typed("layers").then_some(args.layers as usize),
            embed_size: typed("embed").then_some(args.embed as usize),
            bytes: typed("bytes").then_some(args.corpus.bytes),
            batch_size: typed("batch_size").then_some(args.batch.batch_size as usize),
            seq_len: typed("seq_len").then_some(args.batch.seq_len as usize),
            val_frac: typed("val_frac").then_some(args.batch.val_frac),
            seed: typed("seed").then_some(args.seed),
            forget_bias: args.forget_bias.filter(|_| typed("forget_bias")),
            lr: typed("lr").then_some(args.lr),
            lr_decay: typed("lr_decay").then_some(args.lr_decay),
            lr_decay_after: typed("lr_decay_after").then_some(args.lr_decay_after),
            clip: typed("clip").then_some(args.clip),
            weight_decay: typed("weight_decay").then_some(args.weight_decay),
            dropout: typed("dropout").then_some(args.dropout),
            output_dropout: typed("output_dropout").then_some(args.output_dropout),
            weight_drop: typed("weight_drop").then_some(args.weight_drop),
            state_reset: typed("state_reset").then_some(args.state_reset),
            precision: args.precision.map(PrecisionArg::precision),
            eval_every: typed("eval_every").then_some(args.eval_every),
            checkpoint_every: typed("checkpoint_every").then_some(args.checkpoint_every),
            total_steps: args.steps,
            epochs: typed("epochs").then_some(args.epochs),
            time_budget_secs: args.time.map(|t| t.as_secs_f64()),
        }
    }
}

/// The contradictions as one error naming the flags, with what to do instead.
pub fn contradiction_error(c: Contradictions, fix: &str) -> anyhow::Error {
    let named: Vec<String> = c
        .list
        .iter()
        .map(|x| match &x.requested {
            Some(value) => format!("{} {value} ({})", flag(x.field), x.why),
            None => format!("{} ({})", flag(x.field), x.why),
        })
        .collect();
    let verb = if named.len() == 1 { "contradicts" } else { "contradict" };
    anyhow::anyhow!("{} {verb} {}; {fix}", named.join(", "), c.of)
}

/// The changes of a resumed run, as `--flag new (was old)`.
pub fn describe_changes(changes: &[Change]) -> String {
    changes.iter().map(|c| format!("{} {} (was {})", flag(c.field), c.new, c.old)).collect::<Vec<_>>().join(", ")
}

/// Refuses flags that contradict the checkpoint being resumed.
pub fn check_resume_flags(record: &RunRecord, config: &charrnn_engine::ModelConfig, req: &Requested) -> Result<()> {
    record.check_resume(config, req).map_err(|c| {
        contradiction_error(c, "leave them out to continue that run, or start a new one with another --out")
    })
}

/// Refuses flags that contradict the model `--init-from` starts from.
pub fn check_init_flags(config: &charrnn_engine::ModelConfig, req: &Requested) -> Result<()> {
    charrnn_engine::training::run_settings::check_init(config, req)
        .map_err(|c| contradiction_error(c, "leave them out: the model's shape comes from it"))
}
