//! Saving and loading a trained model: a directory holding `model.safetensors` (the flat
//! parameter buffer split into named tensors), `config.json` (the model shape and what the
//! training run recorded) and `vocab.json`. Each file is replaced atomically.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::data::{DataError, Vocab};
use crate::params::{Model, ParamLayout};

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
    let tensors = model.layout.tensors(&model.config);
    let views = tensors
        .iter()
        .map(|t| {
            let bytes: &[u8] = bytemuck_f32(&model.params[t.range.clone()]);
            TensorView::new(Dtype::F32, t.shape.clone(), bytes).map(|v| (t.name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(dir.join(WEIGHTS_FILE), e.to_string()))?;
    let weights = safetensors::serialize(views, None)
        .map_err(|e| invalid(dir.join(WEIGHTS_FILE), e.to_string()))?;
    write(&dir.join(WEIGHTS_FILE), &weights)?;
    let file = ModelFile {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        model: model.config,
        training,
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| invalid(dir.join(CONFIG_FILE), e.to_string()))?;
    write(&dir.join(CONFIG_FILE), &json)?;
    vocab.save(&dir.join(VOCAB_FILE))?;
    Ok(())
}

/// Reads a model directory written by [`save_model`], checking every tensor's presence, type
/// and shape, and that the vocabulary matches the model.
pub fn load_model(dir: &Path) -> Result<(Model<f32>, Vocab, ModelFile), CheckpointError> {
    let config_path = dir.join(CONFIG_FILE);
    let json = read(&config_path)?;
    let file: ModelFile =
        serde_json::from_slice(&json).map_err(|e| invalid(config_path.clone(), e.to_string()))?;
    if file.format != FORMAT || file.version != FORMAT_VERSION {
        return Err(invalid(
            config_path,
            format!(
                "format '{}' version {} is not '{FORMAT}' version {FORMAT_VERSION}",
                file.format, file.version
            ),
        ));
    }
    file.model
        .validate()
        .map_err(|e| invalid(config_path.clone(), e.to_string()))?;
    let vocab = Vocab::load(&dir.join(VOCAB_FILE))?;
    if vocab.len() != file.model.vocab_size {
        return Err(invalid(
            dir.join(VOCAB_FILE),
            format!(
                "it has {} symbols but the model was trained on {}",
                vocab.len(),
                file.model.vocab_size
            ),
        ));
    }

    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = read(&weights_path)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid(weights_path.clone(), e.to_string()))?;
    let layout = ParamLayout::new(&file.model);
    let mut params = vec![0.0f32; layout.total];
    for t in layout.tensors(&file.model) {
        let view = st.tensor(&t.name).map_err(|_| {
            invalid(
                weights_path.clone(),
                format!("tensor '{}' is missing", t.name),
            )
        })?;
        if view.dtype() != Dtype::F32 || view.shape() != t.shape.as_slice() {
            return Err(invalid(
                weights_path,
                format!(
                    "tensor '{}' is {:?} {:?}, expected F32 {:?}",
                    t.name,
                    view.dtype(),
                    view.shape(),
                    t.shape
                ),
            ));
        }
        for (p, chunk) in params[t.range.clone()]
            .iter_mut()
            .zip(view.data().chunks_exact(4))
        {
            *p = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }
    if st.len() != layout.tensors(&file.model).len() {
        return Err(invalid(
            weights_path,
            format!(
                "it has {} tensors, expected {}",
                st.len(),
                layout.tensors(&file.model).len()
            ),
        ));
    }
    Ok((
        Model {
            config: file.model,
            layout,
            params,
        },
        vocab,
        file,
    ))
}

fn invalid(path: PathBuf, reason: String) -> CheckpointError {
    CheckpointError::Invalid { path, reason }
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
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
fn bytemuck_f32(x: &[f32]) -> &[u8] {
    const _: () = assert!(cfg!(target_endian = "little"));
    bytemuck::cast_slice(x)
}
