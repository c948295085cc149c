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
use crate::params::{Model, ParamLayout};
use crate::torch_layout::{from_torch, to_torch, torch_names};

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
    #[error("cannot {action} '{path}': {source}")]
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
    let vocab = Vocab::load(&dir.join(VOCAB_FILE))?;
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
    CheckpointError::Invalid { path: path.to_path_buf(), reason }
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
