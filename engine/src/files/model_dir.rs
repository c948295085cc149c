//! A trained model's directory: `model.safetensors` (the weights under PyTorch's names and
//! layouts, see [`crate::files::torch_layout`], so PyTorch's `load_state_dict` takes them),
//! `config.json` (the model shape and what the training run recorded) and `vocab.json`. Each
//! file is replaced atomically. The weights' header and `config.json` both carry
//! `"format": "charrnn-fast model"`, which is how a run tells its own files from others' of the
//! same name before it removes or replaces them.

use std::path::Path;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::data::Vocab;
use crate::files::tensor_file::{invalid, read, read_f32, reserve_for_write, serialize, write, CheckpointError};
use crate::files::torch_layout::{from_torch, to_torch, torch_names};
use crate::model::config::ModelConfig;
use crate::model::params::{Model, ParamLayout};

/// Name of the weights file in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the configuration file in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the vocabulary file in a model directory.
pub const VOCAB_FILE: &str = "vocab.json";
const FORMAT: &str = "charrnn-fast model";
/// The key of the weights' header that holds [`FORMAT`] (and of `config.json`).
const FORMAT_KEY: &str = "format";
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
    // The weights' copy in PyTorch's layout, then (in `serialize`) the file's bytes.
    reserve_for_write(&weights_path, std::mem::size_of_val(model.params.as_slice()) as u64)?;
    let tensors = to_torch(&model.config, &model.layout, &model.params);
    let named: Vec<(String, Vec<usize>, &[f32])> =
        tensors.iter().map(|t| (t.name.clone(), t.shape.clone(), t.data.as_slice())).collect();
    let marker = std::collections::HashMap::from([(FORMAT_KEY.to_owned(), FORMAT.to_owned())]);
    let weights = serialize(&weights_path, &named, Some(marker))?;
    write(&weights_path, &weights)?;
    let file = ModelFile { format: FORMAT.into(), version: FORMAT_VERSION, model: model.config, training };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| invalid(&dir.join(CONFIG_FILE), e.to_string()))?;
    write(&dir.join(CONFIG_FILE), &json)?;
    vocab.save(&dir.join(VOCAB_FILE))?;
    Ok(())
}

/// Whether `path` is the weights file of a model this program wrote: its header says so, or
/// (written before the header did) it belongs to a complete model directory of ours.
pub fn is_model_weights(path: &Path) -> bool {
    let marked = crate::files::tensor_file::header_metadata(path)
        .is_some_and(|fields| fields.get(FORMAT_KEY).is_some_and(|f| f == FORMAT));
    marked
        || (path.file_name() == Some(WEIGHTS_FILE.as_ref())
            && path.parent().is_some_and(|dir| is_model_config(&dir.join(CONFIG_FILE)) && load_model(dir).is_ok()))
}

/// Whether `path` is a model's `config.json` written by this program (its `format` says so).
pub fn is_model_config(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|json| json[FORMAT_KEY] == FORMAT)
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
        read_f32(&st, name, shape).map_err(|reason| match reason.ends_with("is missing") {
            true => format!("{reason} for a {}", describe(&file.model)),
            false => reason,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;

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

    /// Ours are recognised by what they hold; a foreign file of the same name is not.
    #[test]
    fn its_own_files_are_recognised_by_their_content() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        assert!(is_model_weights(&dir.path().join(WEIGHTS_FILE)));
        assert!(is_model_config(&dir.path().join(CONFIG_FILE)));
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(CONFIG_FILE), br#"{"name": "mine"}"#).unwrap();
        std::fs::write(other.path().join(WEIGHTS_FILE), b"\x02\0\0\0\0\0\0\0{}").unwrap();
        assert!(!is_model_config(&other.path().join(CONFIG_FILE)));
        assert!(!is_model_weights(&other.path().join(WEIGHTS_FILE)));
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

    #[test]
    fn non_finite_weights_are_refused_naming_the_tensor_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut model, vocab) = setup(dir.path());
        let bias = model.layout.decoder_bias.start + 2;
        model.params[bias] = f32::NAN;
        save_model(dir.path(), &model, &vocab, serde_json::json!({})).unwrap();
        let e = load_model(dir.path()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("'decoder.bias'") && e.contains("NaN"), "{e}");
        model.params[bias] = f32::INFINITY;
        save_model(dir.path(), &model, &vocab, serde_json::json!({})).unwrap();
        let e = load_model(dir.path()).unwrap_err().to_string();
        assert!(e.contains("the first, inf, at element 2"), "{e}");
    }
}
