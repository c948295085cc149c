//! What `sample --model` and `eval --model` read: a model directory (`train --out`, `best/`), a run
//! directory whose run stopped before it saved a model (a killed run leaves only
//! `checkpoint.safetensors`), or a checkpoint file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{load_checkpoint, read_checkpoint_meta, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::{load_model, CONFIG_FILE, WEIGHTS_FILE};
use charrnn_engine::Model;

/// Where a model's weights are.
pub enum ModelSource {
    /// A model directory: `config.json`, `model.safetensors`, `vocab.json`.
    ModelDir(PathBuf),
    /// A training checkpoint (its weights, vocabulary and settings).
    Checkpoint(PathBuf),
}

impl ModelSource {
    /// What `path` names: a directory with `config.json` is a model directory (a finished
    /// run's directory is one too); a directory with only a checkpoint, or a file, is a
    /// checkpoint (a `model.safetensors` beside its `config.json` stands for its directory).
    pub fn locate(path: &Path) -> Result<ModelSource> {
        if path.is_dir() {
            if path.join(CONFIG_FILE).is_file() {
                return Ok(ModelSource::ModelDir(path.to_path_buf()));
            }
            let checkpoint = path.join(CHECKPOINT_FILE);
            if checkpoint.is_file() {
                return Ok(ModelSource::Checkpoint(checkpoint));
            }
            bail!(
                "'{}' holds no model ({CONFIG_FILE} and {WEIGHTS_FILE}) and no {CHECKPOINT_FILE}: name a directory \
                 written by `train --out`, or a checkpoint file",
                path.display()
            );
        }
        if path.is_file() {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if path.file_name().is_some_and(|n| n == WEIGHTS_FILE) && dir.join(CONFIG_FILE).is_file() {
                return Ok(ModelSource::ModelDir(dir.to_path_buf()));
            }
            return Ok(ModelSource::Checkpoint(path.to_path_buf()));
        }
        bail!("'{}' does not exist: name a model directory (train --out) or a checkpoint file", path.display());
    }

    /// The file holding the weights.
    pub fn weights_file(&self) -> PathBuf {
        match self {
            ModelSource::ModelDir(dir) => dir.join(WEIGHTS_FILE),
            ModelSource::Checkpoint(file) => file.clone(),
        }
    }

    /// Loads the weights and vocabulary to `verb` with (`sample`, `score`); also returns what
    /// was loaded, in words. Refuses first, naming the limit, a model that cannot fit in the
    /// memory available.
    pub fn load(&self, verb: &str) -> Result<(Model<f32>, Vocab, String)> {
        let file_size = std::fs::metadata(self.weights_file()).map_or(0, |m| m.len());
        match self {
            ModelSource::ModelDir(dir) => {
                // The file's bytes, the weights read from them, and the sampler's (or scorer's) copies.
                crate::shared::memory_check::refuse_if_too_large(
                    4 * file_size,
                    4 * file_size,
                    &format!("this model is too large to {verb} here: free memory or raise the limit"),
                )
                .with_context(|| format!("cannot load the model in '{}'", dir.display()))?;
                let (model, vocab, _) =
                    load_model(dir).with_context(|| format!("cannot load the model in '{}'", dir.display()))?;
                Ok((model, vocab, format!("the model in '{}'", dir.display())))
            }
            ModelSource::Checkpoint(file) => {
                // Its header first (read alone): a file that is not a checkpoint of ours is
                // refused as such, before its size is weighed or its bytes are read.
                read_checkpoint_meta(file)
                    .with_context(|| format!("cannot load the checkpoint '{}'", file.display()))?;
                // A checkpoint is three times the weights (with Adam's moments): its bytes, then
                // the weights and moments read from them, and the sampler's (or scorer's) copies.
                crate::shared::memory_check::refuse_if_too_large(
                    3 * file_size,
                    3 * file_size,
                    &format!("this checkpoint is too large to {verb} here: free memory or raise the limit"),
                )
                .with_context(|| format!("cannot load the checkpoint '{}'", file.display()))?;
                let checkpoint = load_checkpoint(file)
                    .with_context(|| format!("cannot load the checkpoint '{}'", file.display()))?;
                let what = format!(
                    "the weights of step {} from the checkpoint '{}' (no saved model there)",
                    checkpoint.meta.step,
                    file.display()
                );
                Ok((checkpoint.model, checkpoint.vocab, what))
            }
        }
    }
}
