//! The engine's errors in the command line's words: settings the engine names by their fields
//! (`batch_size`) are written as the flags that set them (`--batch`).

use std::error::Error;

use charrnn_engine::data::DataError;
use charrnn_engine::evaluation::ScoreError;
use charrnn_engine::inference::sample::SampleError;
use charrnn_engine::model::config::ConfigError;
use charrnn_engine::setting_names::NamesSettings;
use charrnn_engine::training::run_plan::PlanError;
use charrnn_engine::training::TrainError;

/// The flag of each setting the engine names by its field.
pub fn flag(field: &str) -> &'static str {
    match field {
        "cell" => "--cell",
        "hidden_size" => "--hidden",
        "num_layers" => "--layers",
        "embed_size" => "--embed",
        "bytes" => "--bytes",
        "batch_size" => "--batch",
        "seq_len" => "--seq-len",
        "val_frac" => "--val-frac",
        "seed" => "--seed",
        "forget_bias" => "--forget-bias",
        "lr" => "--lr",
        "lr_decay" => "--lr-decay",
        "lr_decay_after" => "--lr-decay-after",
        "clip" => "--clip",
        "weight_decay" => "--weight-decay",
        "dropout" => "--dropout",
        "output_dropout" => "--output-dropout",
        "weight_drop" => "--weight-drop",
        "state_reset" => "--state-reset",
        "precision" => "--precision",
        "eval_every" => "--eval-every",
        "checkpoint_every" => "--checkpoint-every",
        "total_steps" => "--steps",
        "data" => "--data",
        "epochs" => "--epochs",
        "time_budget_secs" => "--time",
        "vocab_size" => "the vocabulary size",
        "temperature" => "--temperature",
        "top_k" => "--top-k",
        "mode" => "--mode",
        "windows" => "--windows",
        "count" => "--count",
        _ => "a setting",
    }
}

/// `e` as one line, as `{:#}` would print it, with every engine error in flag names.
pub fn describe(e: &anyhow::Error) -> String {
    e.chain().map(link).collect::<Vec<_>>().join(": ")
}

/// One error of a chain, in flag names when it is an engine error that names settings.
pub fn link(e: &(dyn Error + 'static)) -> String {
    let as_flag = |field: &'static str| flag(field).to_owned();
    if let Some(e) = e.downcast_ref::<ConfigError>() {
        e.describe_with(&as_flag)
    } else if let Some(e) = e.downcast_ref::<DataError>() {
        e.describe_with(&as_flag)
    } else if let Some(e) = e.downcast_ref::<SampleError>() {
        e.describe_with(&as_flag)
    } else if let Some(e) = e.downcast_ref::<TrainError>() {
        e.describe_with(&as_flag)
    } else if let Some(e) = e.downcast_ref::<PlanError>() {
        e.describe_with(&as_flag)
    } else if let Some(e) = e.downcast_ref::<ScoreError>() {
        e.describe_with(&as_flag)
    } else {
        e.to_string()
    }
}
