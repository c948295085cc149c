//! Training checkpoints (`checkpoint.safetensors` in a run's directory): the weights, Adam's
//! moments and step, the carried state, the vocabulary and the run's settings, in one file
//! replaced atomically. The module knows plain data, not the trainer: a borrowed
//! [`TrainingSnapshot`] is written and an owned [`Checkpoint`] is read back, so the file format
//! changes only here.

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::data::Vocab;
use crate::files::tensor_file::{invalid, read, read_f32, reserve_for_write, serialize, write, CheckpointError};
use crate::files::torch_layout::{from_torch, to_torch};
use crate::model::config::ModelConfig;
use crate::model::params::{Model, ParamLayout};
use crate::model::workspace::State;

/// Name of the training checkpoint file in an output directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const CHECKPOINT_FORMAT: &str = "charrnn-fast checkpoint";
const FORMAT_VERSION: u32 = 1;

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

/// What a checkpoint is written from: the training state, borrowed (the carried state of the
/// whole batch is gathered from the trainer's parts, so it is owned). Mirrors [`Checkpoint`].
pub struct TrainingSnapshot<'a> {
    /// The model.
    pub model: &'a Model<f32>,
    /// Adam's first moments, in the parameter layout.
    pub adam_m: &'a [f32],
    /// Adam's second moments.
    pub adam_v: &'a [f32],
    /// Adam's step count.
    pub adam_step: u64,
    /// The hidden (and cell) state carried into the next batch, for every batch row.
    pub state: State<f32>,
}

/// Writes a training checkpoint to `path` in one atomic replace (temporary file, fsync,
/// rename): killed at any instant, the previous checkpoint stays readable. `meta.model`,
/// `meta.vocab`, `meta.batch_size` are filled in here.
pub fn save_checkpoint(
    path: &Path,
    snapshot: &TrainingSnapshot<'_>,
    vocab: &Vocab,
    mut meta: CheckpointMeta,
) -> Result<(), CheckpointError> {
    let model = snapshot.model;
    meta.format = CHECKPOINT_FORMAT.into();
    meta.version = FORMAT_VERSION;
    meta.model = model.config;
    meta.vocab = serde_json::from_slice(&vocab.to_json()).map_err(|e| invalid(path, e.to_string()))?;
    let state = &snapshot.state;
    meta.batch_size = state.slabs.first().map_or(0, |layer| layer[0].len() / model.config.hidden_size.max(1));

    let mut named: Vec<(String, Vec<usize>, &[f32])> = vec![];
    // The weights' copy in PyTorch's layout, then (in `serialize`) the file's bytes.
    reserve_for_write(path, std::mem::size_of_val(model.params.as_slice()) as u64)?;
    let torch = to_torch(&model.config, &model.layout, &model.params);
    for t in &torch {
        named.push((format!("model.{}", t.name), t.shape.clone(), &t.data));
    }
    named.push(("adam.m".into(), vec![snapshot.adam_m.len()], snapshot.adam_m));
    named.push(("adam.v".into(), vec![snapshot.adam_v.len()], snapshot.adam_v));
    // `state.{slab}.{layer}`: every layer's `h`, then every layer's next slab (the LSTM's `c`).
    for (s, name) in model.config.cell.state_names().iter().enumerate() {
        for (l, layer) in state.slabs.iter().enumerate() {
            named.push((format!("state.{name}.{l}"), vec![layer[s].len()], &layer[s]));
        }
    }
    let mut header = std::collections::HashMap::new();
    let meta_json = serde_json::to_string(&meta).map_err(|e| invalid(path, e.to_string()))?;
    header.insert("charrnn".to_owned(), meta_json);
    header.insert("adam_step".to_owned(), snapshot.adam_step.to_string());
    let bytes = serialize(path, &named, Some(header))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write(path, &bytes)
}

/// Whether `path` is a checkpoint this program wrote (its header says so), read without its
/// tensors.
pub fn is_checkpoint(path: &Path) -> bool {
    crate::files::tensor_file::header_metadata(path)
        .and_then(|fields| serde_json::from_str::<serde_json::Value>(fields.get("charrnn")?).ok())
        .is_some_and(|meta| meta["format"] == CHECKPOINT_FORMAT)
}

/// Reads a checkpoint written by [`save_checkpoint`], checking every tensor's presence, type
/// and shape against the recorded model.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    parse_checkpoint(&read(path)?, path)
}

/// As [`load_checkpoint`], from the file's bytes read elsewhere (by another process of a
/// data-parallel run, say); `path` names the file in errors.
pub fn parse_checkpoint(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| invalid(path, e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(path, e.to_string()))?;
    let fields = header.metadata().as_ref().ok_or_else(|| invalid(path, "no metadata".into()))?;
    let (meta, adam_step) = meta_of(fields, path)?;
    meta.model.validate().map_err(|e| invalid(path, e.to_string()))?;
    let vocab_json = serde_json::to_vec(&meta.vocab).map_err(|e| invalid(path, e.to_string()))?;
    let vocab = Vocab::from_json(&vocab_json, path)?;
    if vocab.len() != meta.model.vocab_size {
        return Err(invalid(path, format!("vocabulary of {} for a model of {}", vocab.len(), meta.model.vocab_size)));
    }
    let config = meta.model;
    let layout = ParamLayout::new(&config);
    let read_f32 = |name: &str, shape: &[usize]| read_f32(&st, name, shape);
    let params = from_torch(&config, &layout, |name, shape| read_f32(&format!("model.{name}"), shape))
        .map_err(|reason| invalid(path, reason))?;
    let n = layout.total;
    let adam_m = read_f32("adam.m", &[n]).map_err(|r| invalid(path, r))?;
    let adam_v = read_f32("adam.v", &[n]).map_err(|r| invalid(path, r))?;
    let mut state = State::zeros(&config, meta.batch_size);
    let bh = meta.batch_size * config.hidden_size;
    for (s, name) in config.cell.state_names().iter().enumerate() {
        for (l, layer) in state.slabs.iter_mut().enumerate() {
            layer[s] = read_f32(&format!("state.{name}.{l}"), &[bh]).map_err(|r| invalid(path, r))?;
        }
    }
    Ok(Checkpoint { model: Model { config, layout, params }, vocab, adam_m, adam_v, adam_step, state, meta })
}

/// The metadata of the checkpoint at `path` and its optimiser step, from the file's header
/// alone: the tensors are not read, so this is quick however large the model (`info`).
pub fn read_checkpoint_meta(path: &Path) -> Result<(CheckpointMeta, u64), CheckpointError> {
    meta_of(&crate::files::tensor_file::read_header_metadata(path)?, path)
}

/// A checkpoint's metadata and optimiser step from its header's metadata fields.
fn meta_of(fields: &HashMap<String, String>, path: &Path) -> Result<(CheckpointMeta, u64), CheckpointError> {
    let meta_json = fields.get("charrnn").ok_or_else(|| invalid(path, "no charrnn metadata".into()))?;
    let meta: CheckpointMeta = serde_json::from_str(meta_json).map_err(|e| invalid(path, e.to_string()))?;
    if meta.format != CHECKPOINT_FORMAT || meta.version != FORMAT_VERSION {
        return Err(invalid(path, format!("format '{}' version {} is not a checkpoint", meta.format, meta.version)));
    }
    let adam_step = fields
        .get("adam_step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(path, "no optimiser step count".into()))?;
    Ok((meta, adam_step))
}

impl CheckpointMeta {
    /// Metadata to pass to [`save_checkpoint`]: `step` and the caller's `run` record (the
    /// rest is filled in when saving).
    pub fn new(step: u64, run: serde_json::Value) -> CheckpointMeta {
        CheckpointMeta {
            format: String::new(),
            version: 0,
            model: ModelConfig {
                cell: crate::model::config::CellKind::Lstm,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;

    #[test]
    fn checkpoint_round_trips_model_optimiser_and_state() {
        use crate::training::{Layout, TrainOptions, Trainer};
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
            output_dropout: 0.0,
            weight_drop: 0.0,
            state_reset: 0.0,
            dropout_seed: 0,
            precision: charrnn_kernels::Precision::F32,
        };
        let mut trainer = Trainer::new(Model::new(config, 2), &options, Layout { parts: 2, ..Layout::default() });
        for step in 0..3u32 {
            let (x, y) = trainer.batch_mut();
            for (i, (a, b)) in x.iter_mut().zip(y.iter_mut()).enumerate() {
                *a = (i as u32 + step) % 5;
                *b = (i as u32 * 3 + 1) % 5;
            }
            trainer.step_loaded().unwrap();
        }
        let path = dir.path().join(CHECKPOINT_FILE);
        let snapshot = trainer.gather_snapshot();
        save_checkpoint(&path, &snapshot, &vocab, CheckpointMeta::new(3, serde_json::json!({"lr": 0.002}))).unwrap();
        let (meta, adam_step) = read_checkpoint_meta(&path).unwrap();
        assert_eq!((meta.step, meta.model, adam_step, meta.run["lr"].as_f64()), (3, config, 3, Some(0.002)));
        let ck = load_checkpoint(&path).unwrap();
        assert_eq!(&ck.model.params, &snapshot.model.params);
        assert_eq!((&ck.adam_m[..], &ck.adam_v[..], ck.adam_step), (snapshot.adam_m, snapshot.adam_v, 3));
        assert_eq!(ck.state, snapshot.state);
        assert_eq!(ck.vocab, vocab);
        assert_eq!((ck.meta.step, ck.meta.batch_size, ck.meta.run["lr"].as_f64()), (3, 3, Some(0.002)));
        // Truncated: a clear error, never a panic.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(load_checkpoint(&path).is_err());
    }

    #[test]
    fn non_finite_adam_moments_are_refused_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = Vocab::from_symbols_chars("abcde".chars().collect()).unwrap();
        let config = ModelConfig { cell: CellKind::Gru, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 1 };
        let model = Model::new(config, 2);
        let n = model.layout.total;
        let (m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        v[n - 1] = f32::NAN;
        let snapshot =
            TrainingSnapshot { model: &model, adam_m: &m, adam_v: &v, adam_step: 1, state: State::zeros(&config, 2) };
        let path = dir.path().join(CHECKPOINT_FILE);
        save_checkpoint(&path, &snapshot, &vocab, CheckpointMeta::new(1, serde_json::json!({}))).unwrap();
        let e = load_checkpoint(&path).err().unwrap().to_string();
        assert!(e.contains(CHECKPOINT_FILE) && e.contains("'adam.v'") && e.contains("NaN"), "{e}");
    }

    /// The carried state's tensors are those of the files written before the state became a
    /// list of slabs: `state.h.{layer}`, and for the LSTM `state.c.{layer}`, each `[B·H]`,
    /// holding the slabs' values; and they are read back into the same slabs.
    #[test]
    fn the_state_is_saved_as_one_tensor_per_slab_and_layer_under_its_old_names() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = Vocab::from_symbols_chars("abcde".chars().collect()).unwrap();
        for (cell, names) in [(CellKind::Lstm, &["h", "c"][..]), (CellKind::Gru, &["h"]), (CellKind::Rnn, &["h"])] {
            let config = ModelConfig { cell, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 2 };
            let model = Model::new(config, 2);
            let n = model.layout.total;
            let (m, v) = (vec![0.0f32; n], vec![0.0f32; n]);
            let mut state = State::zeros(&config, 3);
            for (i, x) in state.all_mut().flatten().enumerate() {
                *x = i as f32;
            }
            let expected = state.clone();
            let snapshot = TrainingSnapshot { model: &model, adam_m: &m, adam_v: &v, adam_step: 1, state };
            let path = dir.path().join(CHECKPOINT_FILE);
            save_checkpoint(&path, &snapshot, &vocab, CheckpointMeta::new(1, serde_json::json!({}))).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let file = SafeTensors::deserialize(&bytes).unwrap();
            let mut saved: Vec<String> =
                file.names().into_iter().filter(|t| t.starts_with("state.")).map(String::from).collect();
            saved.sort();
            let mut wanted: Vec<String> =
                names.iter().flat_map(|name| (0..2).map(move |l| format!("state.{name}.{l}"))).collect();
            wanted.sort();
            assert_eq!(saved, wanted, "{cell:?}");
            for (s, name) in names.iter().enumerate() {
                for l in 0..2 {
                    let values = read_f32(&file, &format!("state.{name}.{l}"), &[12]).unwrap();
                    assert_eq!(values, expected.slabs[l][s], "{cell:?} state.{name}.{l}");
                }
            }
            assert_eq!(load_checkpoint(&path).unwrap().state, expected, "{cell:?}");
        }
    }
}
