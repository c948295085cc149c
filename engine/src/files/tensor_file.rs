//! What model directories and training checkpoints share: their error type, whole-file reads
//! and atomic writes, and reading one `f32` tensor of a safetensors file with its type and
//! shape checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::data::DataError;
use crate::error_text::one_line;

/// A model directory or checkpoint that cannot be written or read.
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
    /// What a file was to record cannot be written (a run record that JSON cannot hold).
    #[error("cannot write '{path}': {reason}")]
    Unrecordable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The memory to lay a file out before writing it could not be had.
    #[error("not enough memory to write '{path}' ({bytes} bytes)")]
    OutOfMemory {
        /// The file.
        path: PathBuf,
        /// What was asked for.
        bytes: u64,
    },
    /// The vocabulary file failed.
    #[error(transparent)]
    Vocab(#[from] DataError),
}

/// Reserves `bytes` once and gives them back, so that the copies a write of `path` is about to
/// make fail as an error rather than abort the process (an allocation that fails aborts): a
/// run under a memory limit then ends naming its last intact checkpoint.
pub(crate) fn reserve_for_write(path: &Path, bytes: u64) -> Result<(), CheckpointError> {
    let mut probe: Vec<u8> = Vec::new();
    match usize::try_from(bytes).map(|n| probe.try_reserve_exact(n)) {
        Ok(Ok(())) => Ok(()),
        _ => Err(CheckpointError::OutOfMemory { path: path.to_path_buf(), bytes }),
    }
}

/// The tensor `name` of `st` as `f32` values, checked to be `F32` of exactly `shape` and finite;
/// the error is a reason for [`invalid`]. A NaN or infinite weight (a run that diverged, a
/// damaged file) would otherwise load silently and sample blanks or resume into a diverged loss.
pub(crate) fn read_f32(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    let view = st.tensor(name).map_err(|_| format!("tensor '{name}' is missing"))?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(format!("tensor '{name}' is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape()));
    }
    let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some((i, x)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        let bad = values.iter().filter(|x| !x.is_finite()).count();
        return Err(format!(
            "tensor '{name}' holds {bad} non-finite {} (the first, {x}, at element {i}): the weights are unusable",
            if bad == 1 { "value" } else { "values" }
        ));
    }
    Ok(values)
}

/// Serialises `(name, shape, data)` tensors with an optional header into safetensors bytes.
pub(crate) fn serialize(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    header: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>, CheckpointError> {
    // The file is built whole in memory: its data plus room for the header.
    let data: usize = tensors.iter().map(|(_, _, d)| std::mem::size_of_val(*d)).sum();
    reserve_for_write(path, (data + (64 << 10) + 128 * tensors.len()) as u64)?;
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), f32_bytes(data)).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, e.to_string()))?;
    safetensors::serialize(views, header).map_err(|e| invalid(path, e.to_string()))
}

/// The `__metadata__` of a safetensors file's header, read without its tensors (a checkpoint
/// can be large); `None` when the file is not safetensors or its header has none. What tells
/// this program's files from others' of the same name.
pub fn header_metadata(path: &Path) -> Option<HashMap<String, String>> {
    read_header_metadata(path).ok()
}

/// As [`header_metadata`], saying why a file has none (for `info` and `sample`, which name
/// the file they could not use).
pub fn read_header_metadata(path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    use std::io::Read;
    /// Larger headers than this are not ours (ours are a few KiB).
    const MAX_HEADER: u64 = 16 << 20;
    let io = |source| CheckpointError::Io { action: "read", path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| invalid(path, "shorter than a safetensors header".into()))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(invalid(path, format!("a header of {len} bytes is not a safetensors header")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|_| invalid(path, "its header is truncated".into()))?;
    let json: serde_json::Value = serde_json::from_slice(&header).map_err(|e| invalid(path, e.to_string()))?;
    let fields =
        json.get("__metadata__").and_then(|m| m.as_object()).ok_or_else(|| invalid(path, "no metadata".into()))?;
    Ok(fields.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
}

pub(crate) fn invalid(path: &Path, reason: String) -> CheckpointError {
    CheckpointError::Invalid { path: path.to_path_buf(), reason: one_line(&reason) }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io { action: "read", path: path.to_path_buf(), source })
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    charrnn_fileio::atomic_file::write_atomic(path, bytes).map_err(|source| CheckpointError::Io {
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
