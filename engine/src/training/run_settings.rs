//! The settings of a training run and the resume contract.
//!
//! A [`RunRecord`] is kept in every checkpoint (so that a resumed run continues exactly) and in
//! the saved model's `config.json`. When a run is resumed or started from a model, the settings
//! the user asked for ([`Requested`]) are held against it: those that would change what the
//! checkpoint or model is (shape, cell, vocabulary kind, batch layout, seed) are
//! [`Contradictions`]; those that may change between sessions (learning rate, length, how often
//! to evaluate and save, …) are applied and returned as [`Change`]s. Errors speak of the
//! record's fields; the command line maps them to its flags.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use charrnn_kernels::Precision;
use serde::{Deserialize, Serialize};

use crate::model::config::{CellKind, ModelConfig};

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
    /// Adam's decoupled weight decay (AdamW's `λ`; absent in checkpoints from before it
    /// existed: none).
    #[serde(default)]
    pub weight_decay: f64,
    /// Dropout between layers (absent in checkpoints from before it existed: none).
    #[serde(default)]
    pub dropout: f64,
    /// Dropout on the last layer's output (absent in checkpoints from before it existed: none).
    #[serde(default)]
    pub output_dropout: f64,
    /// DropConnect on the recurrent weights (absent in checkpoints from before it existed:
    /// none).
    #[serde(default)]
    pub weight_drop: f64,
    /// The probability of zeroing a row's carried state before a step (absent in checkpoints
    /// from before it existed: never).
    #[serde(default)]
    pub state_reset: f64,
    pub seed: u64,
    #[serde(default)]
    pub forget_bias: Option<f64>,
    /// What the matrix products round their operands to; weights, optimiser state and
    /// checkpoints are `f32` either way (absent in checkpoints from before it existed: f32).
    #[serde(default, with = "precision_name")]
    pub precision: Precision,
    /// Total steps; with a time budget, only a cap (`u64::MAX`: none).
    pub total_steps: u64,
    /// The run's wall-clock budget in seconds (`train --time`), evaluations and saves
    /// included; absent: the run is as long as its steps.
    #[serde(default)]
    pub time_budget_secs: Option<f64>,
    /// The wall-clock seconds the run's sessions have used, up to its last checkpoint (a
    /// resumed run has what is left of its budget); a run that ended on its budget has used
    /// all of it.
    #[serde(default)]
    pub time_used_secs: f64,
    /// What `train --time` chose for the sizes left out, and why (one line).
    #[serde(default)]
    pub sized: Option<String>,
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

/// A run record that JSON cannot hold.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A path that is not UTF-8 (Linux paths are bytes; JSON strings are Unicode).
    #[error(
        "the corpus path '{}' is not valid UTF-8, which the run's settings (JSON, in every checkpoint and \
         config.json) cannot record: rename it, or link to it from a UTF-8 path",
        .0.display()
    )]
    NonUtf8Path(PathBuf),
    /// Any other serialisation failure.
    #[error("cannot record the run's settings: {0}")]
    Json(String),
}

/// Refuses a path a [`RunRecord`] could not record, so that a run can refuse it before any
/// work instead of failing when it first saves.
pub fn check_recordable_path(path: &Path) -> Result<(), RecordError> {
    match path.to_str() {
        Some(_) => Ok(()),
        None => Err(RecordError::NonUtf8Path(path.to_path_buf())),
    }
}

impl RunRecord {
    /// The record as JSON, for a checkpoint or `config.json`. An error, never a partial
    /// record: a checkpoint without its settings could not be resumed.
    pub fn to_json(&self) -> Result<serde_json::Value, RecordError> {
        check_recordable_path(&self.data)?;
        serde_json::to_value(self).map_err(|e| RecordError::Json(e.to_string()))
    }

    /// The unit of the losses: per character, or per byte for a `--bytes` run.
    pub fn unit(&self) -> &'static str {
        if self.bytes {
            "byte"
        } else {
            "char"
        }
    }

    /// Refuses requested settings that contradict the checkpoint of this run, whose model is
    /// `config`.
    pub fn check_resume(&self, config: &ModelConfig, req: &Requested) -> Result<(), Contradictions> {
        let mut c = Contradictions { of: "the checkpoint being resumed", list: vec![] };
        c.model(config, req);
        if req.bytes == Some(true) && !self.bytes {
            c.push("bytes", None::<bool>, "it is a character-level run");
        }
        c.field("batch_size", req.batch_size, self.batch_size);
        c.field("seq_len", req.seq_len, self.seq_len);
        c.field("val_frac", req.val_frac, self.val_frac);
        c.field("seed", req.seed, self.seed);
        let shown = |b: Option<f64>| b.map_or("none".to_owned(), |b| b.to_string());
        c.field("forget_bias", req.forget_bias.map(|b| shown(Some(b))), shown(self.forget_bias));
        c.into_result()
    }

    /// Applies the requested settings that may change when a run is resumed; returns what
    /// changed. `batches_per_epoch` turns a requested number of epochs into steps.
    pub fn apply_resume(&mut self, req: &Requested, batches_per_epoch: u64) -> Vec<Change> {
        let mut changed = vec![];
        macro_rules! apply {
            ($field:ident) => {
                if let Some(value) = req.$field.filter(|v| *v != self.$field) {
                    changed.push(Change::new(stringify!($field), value, self.$field));
                    self.$field = value;
                }
            };
        }
        apply!(lr);
        apply!(lr_decay);
        apply!(lr_decay_after);
        apply!(clip);
        apply!(weight_decay);
        apply!(dropout);
        apply!(output_dropout);
        apply!(weight_drop);
        apply!(state_reset);
        // The checkpoint's weights and moments are f32 whatever the products ran in, so a run
        // may continue in another precision.
        apply!(precision);
        apply!(eval_every);
        apply!(checkpoint_every);
        if let Some(budget) = req.time_budget_secs.filter(|b| Some(*b) != self.time_budget_secs) {
            changed.push(Change {
                field: "time_budget_secs",
                new: format!("{budget}s ({:.0}s used)", self.time_used_secs),
                old: self.time_budget_secs.map_or_else(|| "none".to_owned(), |b| format!("{b}s")),
            });
            self.time_budget_secs = Some(budget);
        }
        if req.total_steps.is_some() {
            apply!(total_steps);
        } else if let Some(epochs) = req.epochs {
            let total = epochs * batches_per_epoch;
            if self.total_steps != total {
                changed.push(Change {
                    field: "epochs",
                    new: format!("{epochs} ({total} steps)"),
                    old: format!("{} steps", self.total_steps),
                });
                self.total_steps = total;
            }
        }
        changed
    }
}

/// Refuses requested settings that contradict the model a run starts from (`--init-from`),
/// whose shape is `config`.
pub fn check_init(config: &ModelConfig, req: &Requested) -> Result<(), Contradictions> {
    let mut c = Contradictions { of: "the model of --init-from", list: vec![] };
    c.model(config, req);
    if req.forget_bias.is_some() {
        c.push("forget_bias", None::<f64>, "the initial weights come from the model");
    }
    c.into_result()
}

/// The settings the user asked for explicitly (`None`: not asked for, whatever the default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requested {
    pub cell: Option<CellKind>,
    pub hidden_size: Option<usize>,
    pub num_layers: Option<usize>,
    pub embed_size: Option<usize>,
    pub bytes: Option<bool>,
    pub batch_size: Option<usize>,
    pub seq_len: Option<usize>,
    pub val_frac: Option<f64>,
    pub seed: Option<u64>,
    pub forget_bias: Option<f64>,
    pub lr: Option<f64>,
    pub lr_decay: Option<f64>,
    pub lr_decay_after: Option<u64>,
    pub clip: Option<f64>,
    pub weight_decay: Option<f64>,
    pub dropout: Option<f64>,
    pub output_dropout: Option<f64>,
    pub weight_drop: Option<f64>,
    pub state_reset: Option<f64>,
    pub precision: Option<Precision>,
    pub eval_every: Option<u64>,
    pub checkpoint_every: Option<u64>,
    pub total_steps: Option<u64>,
    pub epochs: Option<u64>,
    /// A wall-clock budget in seconds.
    pub time_budget_secs: Option<f64>,
}

/// A requested setting that contradicts what a checkpoint or model fixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    /// The field of [`Requested`].
    pub field: &'static str,
    /// The value asked for (absent for a flag without a value).
    pub requested: Option<String>,
    /// Why it cannot be, e.g. "it has 24".
    pub why: String,
}

/// Every [`Contradiction`] of one request, and what they contradict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradictions {
    /// "the checkpoint being resumed" or "the model of --init-from".
    pub of: &'static str,
    pub list: Vec<Contradiction>,
}

impl Contradictions {
    fn push(&mut self, field: &'static str, requested: Option<impl Display>, why: impl Into<String>) {
        self.list.push(Contradiction { field, requested: requested.map(|r| r.to_string()), why: why.into() });
    }

    fn field<T: PartialEq + Display>(&mut self, field: &'static str, requested: Option<T>, fixed: T) {
        if let Some(requested) = requested.filter(|r| *r != fixed) {
            self.push(field, Some(requested), format!("it has {fixed}"));
        }
    }

    fn model(&mut self, config: &ModelConfig, req: &Requested) {
        self.field("cell", req.cell.map(CellKind::name), config.cell.name());
        self.field("hidden_size", req.hidden_size, config.hidden_size);
        self.field("num_layers", req.num_layers, config.num_layers);
        self.field("embed_size", req.embed_size, config.embed_size);
    }

    fn into_result(self) -> Result<(), Contradictions> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// [`Precision`] in a record as its name (`"f32"`, `"bf16"`).
mod precision_name {
    use charrnn_kernels::Precision;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(precision.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        let name = String::deserialize(d)?;
        Precision::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown precision {name:?} (expected f32 or bf16)")))
    }
}

/// A setting a resumed run changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The field of [`Requested`].
    pub field: &'static str,
    pub new: String,
    pub old: String,
}

impl Change {
    fn new(field: &'static str, new: impl Display, old: impl Display) -> Change {
        Change { field, new: new.to_string(), old: old.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "data": "/c.txt", "bytes": false, "val_frac": 0.05, "batch_size": 8, "seq_len": 16,
            "lr": 0.002, "lr_decay": 1.0, "lr_decay_after": 10, "clip": 5.0, "seed": 42,
            "total_steps": 40, "eval_every": 0, "checkpoint_every": 500, "best_val_loss": null
        }))
        .unwrap()
    }

    const MODEL: ModelConfig =
        ModelConfig { cell: CellKind::Lstm, vocab_size: 29, embed_size: 16, hidden_size: 24, num_layers: 2 };

    #[test]
    fn shape_and_layout_contradict_a_checkpoint_and_equal_values_do_not() {
        let rec = record();
        let req =
            Requested { cell: Some(CellKind::Gru), hidden_size: Some(64), batch_size: Some(4), ..Requested::default() };
        let e = rec.check_resume(&MODEL, &req).unwrap_err();
        let got: Vec<(&str, Option<&str>, &str)> =
            e.list.iter().map(|c| (c.field, c.requested.as_deref(), c.why.as_str())).collect();
        assert_eq!(
            got,
            [
                ("cell", Some("gru"), "it has lstm"),
                ("hidden_size", Some("64"), "it has 24"),
                ("batch_size", Some("4"), "it has 8")
            ]
        );
        let same = Requested { hidden_size: Some(24), seed: Some(42), lr: Some(0.1), ..Requested::default() };
        assert_eq!(rec.check_resume(&MODEL, &same), Ok(()));
        let bytes = Requested { bytes: Some(true), ..Requested::default() };
        assert_eq!(rec.check_resume(&MODEL, &bytes).unwrap_err().list[0].field, "bytes");
    }

    #[test]
    fn changeable_settings_are_applied_and_reported() {
        let mut rec = record();
        assert_eq!(rec.weight_decay, 0.0, "a record from before weight decay existed has none");
        let req = Requested {
            lr: Some(0.01),
            clip: Some(5.0),
            weight_decay: Some(0.1),
            total_steps: Some(60),
            ..Requested::default()
        };
        let changed = rec.apply_resume(&req, 100);
        assert_eq!(
            changed,
            [Change::new("lr", 0.01, 0.002), Change::new("weight_decay", 0.1, 0.0), Change::new("total_steps", 60, 40)]
        );
        assert_eq!((rec.lr, rec.clip, rec.weight_decay, rec.total_steps), (0.01, 5.0, 0.1, 60));
        let epochs = rec.apply_resume(&Requested { epochs: Some(3), ..Requested::default() }, 100);
        assert_eq!((epochs[0].field, rec.total_steps), ("epochs", 300));
    }

    #[test]
    fn precision_is_recorded_by_name_defaults_to_f32_and_may_change_on_resume() {
        let mut rec = record();
        assert_eq!(rec.precision, Precision::F32, "a record from before precision existed");
        let req = Requested { precision: Some(Precision::Bf16), ..Requested::default() };
        assert_eq!(rec.apply_resume(&req, 100), [Change::new("precision", "bf16", "f32")]);
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["precision"], "bf16");
        assert_eq!(serde_json::from_value::<RunRecord>(json).unwrap().precision, Precision::Bf16);
        let mut bad = serde_json::to_value(&rec).unwrap();
        bad["precision"] = "fp8".into();
        let e = serde_json::from_value::<RunRecord>(bad).unwrap_err().to_string();
        assert!(e.contains("unknown precision \"fp8\""), "{e}");
    }

    #[test]
    #[cfg(unix)]
    fn a_path_json_cannot_hold_is_an_error_naming_it() {
        use std::os::unix::ffi::OsStrExt;
        let mut rec = record();
        assert_eq!(rec.to_json().unwrap()["data"], "/c.txt");
        rec.data = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/bad\xffname/c.txt"));
        let e = rec.to_json().unwrap_err().to_string();
        assert!(e.contains("'/tmp/bad\u{fffd}name/c.txt' is not valid UTF-8"), "{e}");
    }

    #[test]
    fn an_initial_model_fixes_the_shape_and_the_initial_weights() {
        let req = Requested { embed_size: Some(32), forget_bias: Some(1.0), ..Requested::default() };
        let fields: Vec<&str> = check_init(&MODEL, &req).unwrap_err().list.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["embed_size", "forget_bias"]);
        assert_eq!(check_init(&MODEL, &Requested { hidden_size: Some(24), ..Requested::default() }), Ok(()));
    }
}
