//! The one error type of the data pipeline.
//!
//! Every message is a single line that starts in lowercase and, where a file is involved, names
//! it, so the CLI can print `error: {err}` and exit non-zero without a panic trace.

use crate::setting_names::{field_name, NamesSettings};
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while preparing, opening or batching a corpus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The input text is missing, is not a regular file, or could not be read.
    #[error("cannot read '{}'", path.display())]
    ReadInput {
        /// The input path as given.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// The input text has zero bytes.
    #[error("'{}' is empty: nothing to train on", path.display())]
    EmptyInput {
        /// The input path as given.
        path: PathBuf,
    },

    /// The input text is not valid UTF-8 (character mode only).
    #[error("{}", self.describe_with(&field_name))]
    InvalidUtf8 {
        /// The input path as given.
        path: PathBuf,
        /// Absolute byte offset of the first byte of the offending sequence.
        offset: u64,
    },

    /// More distinct symbols than a `u16` token id can address.
    #[error(
        "'{}' has {count} distinct characters, more than the supported maximum of {max}",
        path.display()
    )]
    TooManySymbols {
        /// The input path as given.
        path: PathBuf,
        /// Number of distinct symbols found.
        count: usize,
        /// The largest supported vocabulary.
        max: usize,
    },

    /// The input changed while it was being prepared (between the two passes).
    #[error("'{}' changed while it was being prepared; run prepare again", path.display())]
    InputChanged {
        /// The input path as given.
        path: PathBuf,
    },

    /// Reading or writing a file of the cache (or a vocabulary file) failed.
    #[error("cache i/o error on '{}'", path.display())]
    CacheIo {
        /// The cache file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A vocabulary file could not be parsed or failed validation.
    #[error("invalid vocabulary file '{}': {reason}", path.display())]
    InvalidVocabFile {
        /// The vocabulary file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A vocabulary built in memory failed validation (empty, duplicates, too large).
    #[error("invalid vocabulary: {reason}")]
    InvalidVocab {
        /// What is wrong with it.
        reason: String,
    },

    /// A token file is malformed (wrong length, ids out of range).
    #[error("invalid token file '{}': {reason}", path.display())]
    InvalidTokenFile {
        /// The token file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Text to encode (e.g. a prime text) contains symbols the vocabulary does not have.
    #[error("the text contains characters that are not in the vocabulary: {listed}")]
    UnknownSymbols {
        /// Every distinct unknown character, quoted and escaped, in order of first appearance.
        listed: String,
    },

    /// A token range is too short for even one batch.
    #[error("{}", self.describe_with(&field_name))]
    TooLittleData {
        /// Which split: `"training"` or `"validation"`.
        what: &'static str,
        /// Tokens available in the split.
        have: usize,
        /// Tokens one batch needs (`batch * seq_len`).
        need: usize,
        /// The batch size asked for.
        batch: usize,
        /// The sequence length asked for.
        seq_len: usize,
    },

    /// The batch size or sequence length is zero, or their product overflows.
    #[error("{}", self.describe_with(&field_name))]
    InvalidBatchShape {
        /// The batch size asked for.
        batch: usize,
        /// The sequence length asked for.
        seq_len: usize,
    },

    /// A token range does not lie within the token stream.
    #[error("token range {start}..{end} is outside the token stream of {len} tokens")]
    RangeOutOfBounds {
        /// Range start.
        start: usize,
        /// Range end.
        end: usize,
        /// Length of the stream.
        len: usize,
    },

    /// The validation fraction is not in `[0, 1)`.
    #[error("{}", self.describe_with(&field_name))]
    InvalidValFrac {
        /// The value asked for.
        value: f64,
    },
}

impl NamesSettings for DataError {
    /// The message of every variant; those that speak of a setting (`bytes`, `batch_size`,
    /// `seq_len`, `val_frac`) name it through `name`.
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        match self {
            DataError::InvalidUtf8 { path, offset } => format!(
                "'{}' is not valid UTF-8 at byte offset {offset}; use {} to train on raw bytes instead",
                path.display(),
                name("bytes")
            ),
            DataError::TooLittleData { what, have, need, batch, seq_len } => {
                let (b, t) = (name("batch_size"), name("seq_len"));
                let advice = if *what == "validation" {
                    let v = name("val_frac");
                    format!("use a smaller {b} or {t}, a larger {v}, or {v} 0 for no validation")
                } else {
                    format!("use a smaller {b} or {t}, or a larger input")
                };
                format!("not enough {what} data: {have} tokens, but one batch of {b} {batch} x {t} {seq_len} needs {need}; {advice}")
            }
            DataError::InvalidBatchShape { batch, seq_len } => format!(
                "invalid batch shape: {} {batch} and {} {seq_len} must both be at least 1",
                name("batch_size"),
                name("seq_len")
            ),
            DataError::InvalidValFrac { value } => {
                format!("invalid {} {value}: it must be at least 0 and less than 1", name("val_frac"))
            }
            other => other.to_string(),
        }
    }
}
