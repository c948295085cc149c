//! Saving and loading a trained model: a directory holding `model.safetensors` (the weights
//! under PyTorch's names and layouts, see [`crate::torch_layout`], so PyTorch's
//! `load_state_dict` takes them), `config.json` (the model shape and what the training run
//! recorded) and `vocab.json`. Each file is replaced atomically.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::data::{DataError, Vocab};
use crate::error_text::one_line;
use crate::params::{Model, ParamLayout};
use crate::torch_layout::{from_torch, to_torch, torch_names};
use crate::train::Trainer;
use crate::workspace::State;

/// Name of the weights file in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the configuration file in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the vocabulary file in a model directory.
pub const VOCAB_FILE: &str = "vocab.json";
const FORMAT: &str = "charrnn-fast model";
const FORMAT_VERSION: u32 = 1;

/// `config.json` of a model directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always "charrnn-fast model".
    pub format: String,
    /// Layout version of the directory.
    pub version: u32,
    /// Model shape.
    pub model: ModelConfig,
    /// Free-form record of the run that produced it (hyper-parameters, steps, losses).
    pub training: serde_json::Value,
}

/// A model directory that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O failure on a file.
    #[error("cannot {action} '{path}'")]
    Io {
        /// "read", "write", "create".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("'{path}' is not a valid charrnn-fast model file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The vocabulary file failed.
    #[error(transparent)]
    Vocab(#[from] DataError),
}

/// Writes `model`, `vocab` and the run record `training` into `dir` (created if needed).
pub fn save_model(
    dir: &Path,
    model: &Model<f32>,
    vocab: &Vocab,
    training: serde_json::Value,
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let tensors = to_torch(&model.config, &model.layout, &model.params);
    let views = tensors
        .iter()
        .map(|t| TensorView::new(Dtype::F32, t.shape.clone(), f32_bytes(&t.data)).map(|v| (t.name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&weights_path, e.to_string()))?;
    let weights = safetensors::serialize(views, None).map_err(|e| invalid(&weights_path, e.to_string()))?;
    write(&weights_path, &weights)?;
    let file = ModelFile { format: FORMAT.into(), version: FORMAT_VERSION, model: model.config, training };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| invalid(&dir.join(CONFIG_FILE), e.to_string()))?;
    write(&dir.join(CONFIG_FILE), &json)?;
    vocab.save(&dir.join(VOCAB_FILE))?;
    Ok(())
}

/// Reads a model directory written by [`save_model`] (or by PyTorch through
/// `benches/reference/torch_charrnn.py`), checking every tensor's presence, type and shape,
/// and that the vocabulary matches the model.
pub fn load_model(dir: &Path) -> Result<(Model<f32>, Vocab, ModelFile), CheckpointError> {
    let config_path = dir.join(CONFIG_FILE);
    let json = read(&config_path)?;
    let file: ModelFile = serde_json::from_slice(&json).map_err(|e| invalid(&config_path, e.to_string()))?;
    if file.format != FORMAT || file.version != FORMAT_VERSION {
        return Err(invalid(
            &config_path,
            format!("format '{}' version {} is not '{FORMAT}' version {FORMAT_VERSION}", file.format, file.version),
        ));
    }
    file.model.validate().map_err(|e| invalid(&config_path, e.to_string()))?;
    let vocab_path = dir.join(VOCAB_FILE);
    let vocab = Vocab::from_json(&read(&vocab_path)?, &vocab_path)?;
    if vocab.len() != file.model.vocab_size {
        return Err(invalid(
            &dir.join(VOCAB_FILE),
            format!("it has {} symbols but the model was trained on {}", vocab.len(), file.model.vocab_size),
        ));
    }

    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = read(&weights_path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(&weights_path, e.to_string()))?;
    let layout = ParamLayout::new(&file.model);
    let expected = torch_names(&file.model, &layout);
    if let Some(extra) = st.names().into_iter().find(|n| !expected.iter().any(|e| e == *n)) {
        return Err(invalid(&weights_path, format!("unexpected tensor '{extra}' for a {}", describe(&file.model))));
    }
    let params = from_torch(&file.model, &layout, |name, shape| {
        let view =
            st.tensor(name).map_err(|_| format!("tensor '{name}' is missing for a {}", describe(&file.model)))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(format!("tensor '{name}' is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape()));
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    })
    .map_err(|reason| invalid(&weights_path, reason))?;
    Ok((Model { config: file.model, layout, params }, vocab, file))
}

/// Name of the training checkpoint file in an output directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const CHECKPOINT_FORMAT: &str = "charrnn-fast checkpoint";

/// Everything a checkpoint records besides its tensors (stored as JSON in the safetensors
/// header).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always "charrnn-fast checkpoint".
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// Model shape.
    pub model: ModelConfig,
    /// The vocabulary, as in `vocab.json`.
    pub vocab: serde_json::Value,
    /// The run's configuration and bookkeeping, as the caller records it (the CLI's options,
    /// the best validation loss so far, ...). The engine does not interpret it.
    pub run: serde_json::Value,
    /// Training steps done (the next step is `step + 1`).
    pub step: u64,
    /// Rows of the batch the carried state belongs to.
    pub batch_size: usize,
}

/// A training checkpoint read back: the model, the optimiser moments and step, the carried
/// state, the vocabulary and the metadata.
pub struct Checkpoint {
    /// The model.
    pub model: Model<f32>,
    /// The vocabulary.
    pub vocab: Vocab,
    /// Adam's first moments, in the parameter layout.
    pub adam_m: Vec<f32>,
    /// Adam's second moments.
    pub adam_v: Vec<f32>,
    /// Adam's step count.
    pub adam_step: u64,
    /// The hidden (and cell) state carried into the next batch.
    pub state: State<f32>,
    /// The rest.
    pub meta: CheckpointMeta,
}

/// Writes a training checkpoint to `path` in one atomic replace (temporary file, fsync,
/// rename): killed at any instant, the previous checkpoint stays readable. `meta.model`,
/// `meta.vocab`, `meta.batch_size` are filled in here.
pub fn save_checkpoint(
    path: &Path,
    trainer: &Trainer,
    vocab: &Vocab,
    mut meta: CheckpointMeta,
) -> Result<(), CheckpointError> {
    let model = &trainer.model;
    meta.format = CHECKPOINT_FORMAT.into();
    meta.version = FORMAT_VERSION;
    meta.model = model.config;
    meta.vocab = serde_json::from_slice(&vocab.to_json()).map_err(|e| invalid(path, e.to_string()))?;
    let state = trainer.state();
    meta.batch_size = state.h.first().map_or(0, |h| h.len() / model.config.hidden_size.max(1));

    let mut named: Vec<(String, Vec<usize>, &[f32])> = vec![];
    let torch = to_torch(&model.config, &model.layout, &model.params);
    for t in &torch {
        named.push((format!("model.{}", t.name), t.shape.clone(), &t.data));
    }
    named.push(("adam.m".into(), vec![trainer.adam.m.len()], &trainer.adam.m));
    named.push(("adam.v".into(), vec![trainer.adam.v.len()], &trainer.adam.v));
    for (l, h) in state.h.iter().enumerate() {
        named.push((format!("state.h.{l}"), vec![h.len()], h));
    }
    for (l, c) in state.c.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        named.push((format!("state.c.{l}"), vec![c.len()], c));
    }
    let adam_step = trainer.adam.step;
    let views = named
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), f32_bytes(data)).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, e.to_string()))?;
    let mut header = std::collections::HashMap::new();
    let meta_json = serde_json::to_string(&meta).map_err(|e| invalid(path, e.to_string()))?;
    header.insert("charrnn".to_owned(), meta_json);
    header.insert("adam_step".to_owned(), adam_step.to_string());
    let bytes = safetensors::serialize(views, Some(header)).map_err(|e| invalid(path, e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write(path, &bytes)
}

/// Reads a checkpoint written by [`save_checkpoint`], checking every tensor's presence, type
/// and shape against the recorded model.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = read(path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(path, e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| invalid(path, e.to_string()))?;
    let fields = header.metadata().as_ref().ok_or_else(|| invalid(path, "no metadata".into()))?;
    let meta_json = fields.get("charrnn").ok_or_else(|| invalid(path, "no charrnn metadata".into()))?;
    let meta: CheckpointMeta = serde_json::from_str(meta_json).map_err(|e| invalid(path, e.to_string()))?;
    if meta.format != CHECKPOINT_FORMAT || meta.version != FORMAT_VERSION {
        return Err(invalid(path, format!("format '{}' version {} is not a checkpoint", meta.format, meta.version)));
    }
    let adam_step: u64 = fields
        .get("adam_step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(path, "no optimiser step count".into()))?;
    meta.model.validate().map_err(|e| invalid(path, e.to_string()))?;
    let vocab_json = serde_json::to_vec(&meta.vocab).map_err(|e| invalid(path, e.to_string()))?;
    let vocab = Vocab::from_json(&vocab_json, path)?;
    if vocab.len() != meta.model.vocab_size {
        return Err(invalid(path, format!("vocabulary of {} for a model of {}", vocab.len(), meta.model.vocab_size)));
    }
    let config = meta.model;
    let layout = ParamLayout::new(&config);
    let read_f32 = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
        let view = st.tensor(name).map_err(|_| format!("tensor '{name}' is missing"))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(format!("tensor '{name}' is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape()));
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    let params = from_torch(&config, &layout, |name, shape| read_f32(&format!("model.{name}"), shape))
        .map_err(|reason| invalid(path, reason))?;
    let n = layout.total;
    let adam_m = read_f32("adam.m", &[n]).map_err(|r| invalid(path, r))?;
    let adam_v = read_f32("adam.v", &[n]).map_err(|r| invalid(path, r))?;
    let mut state = State::zeros(&config, meta.batch_size);
    let bh = meta.batch_size * config.hidden_size;
    for l in 0..config.num_layers {
        state.h[l] = read_f32(&format!("state.h.{l}"), &[bh]).map_err(|r| invalid(path, r))?;
        if !state.c[l].is_empty() {
            state.c[l] = read_f32(&format!("state.c.{l}"), &[bh]).map_err(|r| invalid(path, r))?;
        }
    }
    Ok(Checkpoint { model: Model { config, layout, params }, vocab, adam_m, adam_v, adam_step, state, meta })
}

impl CheckpointMeta {
    /// Metadata to pass to [`save_checkpoint`]: `step` and the caller's `run` record (the
    /// rest is filled in when saving).
    pub fn new(step: u64, run: serde_json::Value) -> CheckpointMeta {
        CheckpointMeta {
            format: String::new(),
            version: 0,
            model: ModelConfig {
                cell: crate::config::CellKind::Lstm,
                vocab_size: 0,
                embed_size: 0,
                hidden_size: 0,
                num_layers: 0,
            },
            vocab: serde_json::Value::Null,
            run,
            step,
            batch_size: 0,
        }
    }
}

fn describe(config: &ModelConfig) -> String {
    format!(
        "{}×{} {} model (vocabulary {}, embedding {})",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.vocab_size,
        config.embed_size
    )
}

fn invalid(path: &Path, reason: String) -> CheckpointError {
    CheckpointError::Invalid { path: path.to_path_buf(), reason: one_line(&reason) }
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io { action: "read", path: path.to_path_buf(), source })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::atomic_file::write_atomic(path, bytes).map_err(|source| CheckpointError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of an `f32` slice as safetensors stores them (little-endian; every target we
/// build for is little-endian, which the assertion below enforces at compile time).
pub fn f32_bytes(x: &[f32]) -> &[u8] {
    const _: () = assert!(cfg!(target_endian = "little"));
    bytemuck::cast_slice(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CellKind;

    fn setup(dir: &Path) -> (Model<f32>, Vocab) {
        let vocab = Vocab::from_symbols_chars("abcde".chars().collect()).unwrap();
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 2 };
        let model = Model::new(config, 9);
        save_model(dir, &model, &vocab, serde_json::json!({"steps": 3})).unwrap();
        (model, vocab)
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab) = setup(dir.path());
        let (loaded, loaded_vocab, file) = load_model(dir.path()).unwrap();
        assert_eq!(loaded.params, model.params);
        assert_eq!(loaded.config, model.config);
        assert_eq!(loaded_vocab, vocab);
        assert_eq!(file.training["steps"], 3);
    }

    #[test]
    fn checkpoint_round_trips_model_optimiser_and_state() {
        use crate::train::{TrainOptions, Trainer};
        use charrnn_kernels::adam::AdamHyper;
        let dir = tempfile::tempdir().unwrap();
        let vocab = Vocab::from_symbols_chars("abcde".chars().collect()).unwrap();
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 2 };
        let options = TrainOptions {
            batch_size: 3,
            seq_len: 4,
            adam: AdamHyper::default(),
            clip: 5.0,
            dropout: 0.0,
            dropout_seed: 0,
        };
        let mut trainer = Trainer::with_parts(Model::new(config, 2), &options, 2);
        for step in 0..3u32 {
            let (x, y) = trainer.batch_mut();
            for (i, (a, b)) in x.iter_mut().zip(y.iter_mut()).enumerate() {
                *a = (i as u32 + step) % 5;
                *b = (i as u32 * 3 + 1) % 5;
            }
            trainer.step_loaded().unwrap();
        }
        let path = dir.path().join(CHECKPOINT_FILE);
        save_checkpoint(&path, &trainer, &vocab, CheckpointMeta::new(3, serde_json::json!({"lr": 0.002}))).unwrap();
        let ck = load_checkpoint(&path).unwrap();
        assert_eq!(ck.model.params, trainer.model.params);
        assert_eq!((ck.adam_m, ck.adam_v, ck.adam_step), (trainer.adam.m.clone(), trainer.adam.v.clone(), 3));
        assert_eq!(ck.state, trainer.state());
        assert_eq!(ck.vocab, vocab);
        assert_eq!((ck.meta.step, ck.meta.batch_size, ck.meta.run["lr"].as_f64()), (3, 3, Some(0.002)));
        // Truncated: a clear error, never a panic.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(load_checkpoint(&path).is_err());
    }

    #[test]
    fn truncated_or_mismatched_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let weights = dir.path().join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
        let e = load_model(dir.path()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");

        std::fs::write(&weights, &bytes).unwrap();
        let config = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("\"hidden_size\": 4", "\"hidden_size\": 5")).unwrap();
        let e = load_model(dir.path()).unwrap_err().to_string();
        assert!(e.contains("weight_ih_l0") && e.contains("expected"), "{e}");

        std::fs::write(&config, text.replace("\"vocab_size\": 5", "\"vocab_size\": 6")).unwrap();
        let e = load_model(dir.path()).unwrap_err().to_string();
        assert!(e.contains("5 symbols") && e.contains("6"), "{e}");
    }
}
