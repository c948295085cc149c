//! Why a text cannot be scored.

use crate::setting_names::{field_name, NamesSettings};

/// A text, window or symbol that scoring refuses.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScoreError {
    /// Fewer than two symbols: nothing to predict.
    #[error("{}", self.describe_with(&field_name))]
    TextTooShort {
        /// Symbols in the text.
        len: usize,
    },
    /// A window (plus the symbol it predicts last) longer than the text.
    #[error("{}", self.describe_with(&field_name))]
    WindowTooLong {
        /// Symbols per window.
        width: usize,
        /// Symbols in the text.
        len: usize,
    },
    /// No windows, or windows of no symbols.
    #[error("{}", self.describe_with(&field_name))]
    NoWindows {
        /// Which setting is zero: `windows` (the width) or `count`.
        field: &'static str,
    },
    /// A window that does not fit in the text.
    #[error("window {index} starts at {start}, past the last start {last} of windows of {width} in this text")]
    WindowOutside {
        /// Which window.
        index: usize,
        /// Its first symbol.
        start: usize,
        /// The last start a window of this width may have.
        last: usize,
        /// Symbols per window.
        width: usize,
    },
    /// The scorer was made for another number of windows.
    #[error("{given} window starts for a scorer of {expected} windows")]
    WindowCount {
        /// Starts given.
        given: usize,
        /// Windows the scorer was made for.
        expected: usize,
    },
    /// A symbol id the model has no row for.
    #[error("symbol {id} at position {position} is outside the model's vocabulary of {vocab}")]
    SymbolOutside {
        /// Where in the text.
        position: usize,
        /// The id.
        id: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
}

impl NamesSettings for ScoreError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        match self {
            ScoreError::TextTooShort { len } => {
                let symbols = if *len == 1 { "symbol" } else { "symbols" };
                format!("the text has {len} {symbols}: scoring needs at least 2 (one to read, one to predict)")
            }
            ScoreError::WindowTooLong { width, len } => format!(
                "{} {width} needs a text of at least {} symbols (a window predicts the symbol after it); the \
                 text scored has {len}",
                name("windows"),
                width + 1
            ),
            ScoreError::NoWindows { field } => format!("{} is 0: there is nothing to score", name(field)),
            other => other.to_string(),
        }
    }
}
