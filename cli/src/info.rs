//! `charrnn-fast info`: what a model directory, a run directory or a checkpoint holds, from
//! their small files and the checkpoint's header (no weights are read).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{read_checkpoint_meta, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::{ModelFile, CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE};
use charrnn_engine::ModelConfig;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::shared::output::outln;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A model directory (train --out, best/), a run directory, or a checkpoint file
    #[arg(value_name = "DIR|FILE")]
    pub path: PathBuf,
    /// Print one JSON object instead of text. Its keys are stable: path, kind ("model", "run"
    /// or "checkpoint"), cell, layers, hidden, embed, vocab_size, vocab_kind ("characters" or
    /// "bytes"), parameters, precision, steps, total_steps, val_loss, val_loss_step,
    /// best_val_loss, corpus, model (whether a saved model is there), checkpoint ({path, step})
    /// and best ({path, val_loss, val_loss_step}); null where not known or not there
    #[arg(long)]
    pub json: bool,
}

/// The facts `info` prints; the field order is the JSON's.
#[derive(Serialize)]
struct Info {
    path: String,
    kind: &'static str,
    cell: &'static str,
    layers: usize,
    hidden: usize,
    embed: usize,
    vocab_size: usize,
    vocab_kind: Option<&'static str>,
    parameters: usize,
    precision: Option<String>,
    steps: Option<u64>,
    total_steps: Option<u64>,
    val_loss: Option<f64>,
    val_loss_step: Option<u64>,
    best_val_loss: Option<f64>,
    corpus: Option<String>,
    model: bool,
    checkpoint: Option<CheckpointInfo>,
    best: Option<BestInfo>,
}

#[derive(Serialize)]
struct CheckpointInfo {
    path: String,
    step: u64,
}

#[derive(Serialize)]
struct BestInfo {
    path: String,
    val_loss: Option<f64>,
    val_loss_step: Option<u64>,
}

/// A checkpoint's facts, from its header.
struct CheckpointFacts {
    path: PathBuf,
    step: u64,
    model: ModelConfig,
    vocab: Option<Vocab>,
    run: Value,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let info = gather(&args.path)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print_text(&info);
    }
    Ok(())
}

/// The facts `info --json` prints, as JSON (for `serve`'s `/v1/models` and web page).
pub fn facts_json(path: &Path) -> Result<Value> {
    Ok(serde_json::to_value(gather(path)?)?)
}

fn gather(path: &Path) -> Result<Info> {
    if path.is_file() {
        let ck = read_checkpoint(path)?;
        let run = ck.run.clone();
        return Ok(facts(path, "checkpoint", &ck.model, ck.vocab.as_ref(), &run, Some(&ck), false, None));
    }
    if !path.is_dir() {
        bail!("'{}' does not exist: name a model directory, a run directory or a checkpoint file", path.display());
    }
    let has_model = path.join(CONFIG_FILE).is_file() && path.join(WEIGHTS_FILE).is_file();
    let checkpoint_path = path.join(CHECKPOINT_FILE);
    let ck = checkpoint_path.is_file().then(|| read_checkpoint(&checkpoint_path)).transpose()?;
    let best = best_info(&path.join("best"))?;
    let kind = if ck.is_some() { "run" } else { "model" };
    if has_model {
        let file = read_model_file(path)?;
        let vocab = Vocab::load(&path.join(VOCAB_FILE)).ok();
        let mut info = facts(path, kind, &file.model, vocab.as_ref(), &file.training, ck.as_ref(), true, best);
        // The checkpoint is the run's newest state (a resumed run stopped before it saved a
        // model), and it keeps the best validation loss up to date.
        if let Some(best) = ck.as_ref().and_then(|ck| ck.run.get("best_val_loss")?.as_f64()) {
            info.best_val_loss = Some(best);
        }
        return Ok(info);
    }
    match ck {
        Some(ck) => {
            let run = ck.run.clone();
            Ok(facts(path, kind, &ck.model, ck.vocab.as_ref(), &run, Some(&ck), false, best))
        }
        None => {
            bail!("'{}' holds no model ({CONFIG_FILE} and {WEIGHTS_FILE}) and no {CHECKPOINT_FILE}", path.display())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn facts(
    path: &Path,
    kind: &'static str,
    model: &ModelConfig,
    vocab: Option<&Vocab>,
    record: &Value,
    ck: Option<&CheckpointFacts>,
    has_model: bool,
    best: Option<BestInfo>,
) -> Info {
    let f64_of = |key: &str| record.get(key).and_then(Value::as_f64);
    let u64_of = |key: &str| record.get(key).and_then(Value::as_u64);
    Info {
        path: path.display().to_string(),
        kind,
        cell: model.cell.name(),
        layers: model.num_layers,
        hidden: model.hidden_size,
        embed: model.embed_size,
        vocab_size: model.vocab_size,
        vocab_kind: vocab.map(|v| if v.bytes().is_some() { "bytes" } else { "characters" }),
        parameters: model.num_params(),
        precision: record.get("precision").and_then(Value::as_str).map(str::to_owned),
        steps: ck.map(|ck| ck.step).or_else(|| u64_of("steps")),
        total_steps: u64_of("total_steps"),
        val_loss: f64_of("val_loss"),
        val_loss_step: u64_of("val_loss_step"),
        best_val_loss: f64_of("best_val_loss"),
        corpus: record.get("data").and_then(Value::as_str).map(str::to_owned),
        model: has_model,
        checkpoint: ck.map(|ck| CheckpointInfo { path: ck.path.display().to_string(), step: ck.step }),
        best,
    }
}

fn read_checkpoint(path: &Path) -> Result<CheckpointFacts> {
    let (meta, _) = read_checkpoint_meta(path)?;
    // The sizes are read, not trusted: a damaged header must be an error, not a count of
    // parameters that overflows.
    meta.model.validate().with_context(|| format!("'{}' is not a valid charrnn-fast checkpoint", path.display()))?;
    let vocab = serde_json::to_vec(&meta.vocab).ok().and_then(|json| Vocab::from_json(&json, path).ok());
    Ok(CheckpointFacts { path: path.to_path_buf(), step: meta.step, model: meta.model, vocab, run: meta.run })
}

fn read_model_file(dir: &Path) -> Result<ModelFile> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let file: ModelFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("'{}' is not a charrnn-fast model config", path.display()))?;
    file.model.validate().with_context(|| format!("'{}' is not a charrnn-fast model config", path.display()))?;
    Ok(file)
}

/// The `best/` model of a run directory, if it has one.
fn best_info(best: &Path) -> Result<Option<BestInfo>> {
    if !best.join(CONFIG_FILE).is_file() {
        return Ok(None);
    }
    let file = read_model_file(best)?;
    Ok(Some(BestInfo {
        path: best.display().to_string(),
        val_loss: file.training.get("val_loss").and_then(Value::as_f64),
        val_loss_step: file.training.get("val_loss_step").and_then(Value::as_u64),
    }))
}

fn print_text(info: &Info) {
    let unit = if info.vocab_kind == Some("bytes") { "byte" } else { "char" };
    let mut has = vec![];
    if info.model {
        has.push("a saved model".to_owned());
    }
    if let Some(ck) = &info.checkpoint {
        has.push(format!("a checkpoint of step {}", ck.step));
    }
    if info.best.is_some() {
        has.push("best/".to_owned());
    }
    let what = match info.kind {
        "run" => "a training run",
        "model" => "a model",
        _ => "a checkpoint",
    };
    outln!("{}: {what} ({})", info.path, has.join(", "));
    outln!(
        "model: {} × {} {}, embedding {}, vocabulary of {}{}, {} parameters",
        info.layers,
        info.hidden,
        info.cell,
        info.embed,
        info.vocab_size,
        info.vocab_kind.map_or(String::new(), |k| format!(" {k}")),
        info.parameters
    );
    if let Some(precision) = &info.precision {
        outln!("precision: {precision} products");
    }
    match (info.steps, info.total_steps) {
        (Some(steps), Some(total)) => outln!("steps: {steps} of {total}"),
        (Some(steps), None) => outln!("steps: {steps}"),
        _ => {}
    }
    match (info.val_loss, info.val_loss_step) {
        (Some(loss), Some(step)) => outln!("validation loss: {loss:.4} nats/{unit}, measured after step {step}"),
        (Some(loss), None) => outln!("validation loss: {loss:.4} nats/{unit}"),
        _ => outln!("validation loss: not measured"),
    }
    if let Some(best) = info.best_val_loss {
        outln!("best validation loss: {best:.4} nats/{unit}");
    }
    if let Some(best) = &info.best {
        match (best.val_loss, best.val_loss_step) {
            (Some(loss), Some(step)) => outln!("best/: validation loss {loss:.4} after step {step}"),
            _ => outln!("best/: present"),
        }
    }
    if let Some(corpus) = &info.corpus {
        outln!("corpus: {corpus}");
    }
}
