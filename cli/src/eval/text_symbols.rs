//! The text `eval` scores: the file's symbols (characters, or bytes for a `--bytes` model) in
//! the model's vocabulary, cut to the tail `train --val-frac` holds out when asked, with the
//! symbols outside the vocabulary refused or left out.

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use charrnn_engine::data::{split_train_val, Vocab};

/// The symbols to score and where they lie in the file.
pub struct ScoredText {
    /// The symbols' ids, in order.
    pub ids: Vec<u32>,
    /// The part of the file scored, in symbols.
    pub range: Range<usize>,
    /// Symbols in the whole file.
    pub total: usize,
    /// Symbols outside the vocabulary that were left out (`--skip-unknown`).
    pub skipped: usize,
    /// Each id's position in the file, when some were left out (otherwise `range.start + i`).
    positions: Option<Vec<usize>>,
}

impl ScoredText {
    /// Position in the file, in symbols, of the `i`-th id.
    pub fn position(&self, i: usize) -> usize {
        self.positions.as_ref().map_or(self.range.start + i, |p| p[i])
    }
}

/// Reads `path` and encodes it in `vocab`: the whole text, or with `val_frac` its last part
/// exactly as `train --val-frac` cuts it (the cut is made on the file's symbols, before any
/// are left out). Symbols outside the vocabulary are an error naming the first few, with
/// counts, or are left out with `skip_unknown`.
pub fn read_text(path: &Path, vocab: &Vocab, val_frac: Option<f64>, skip_unknown: bool) -> Result<ScoredText> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read --data '{}'", path.display()))?;
    match vocab.bytes() {
        Some(_) => encode(path, bytes.iter().copied(), bytes.len(), val_frac, skip_unknown, |b| vocab.id_of_byte(b)),
        None => {
            let text = std::str::from_utf8(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "'{}' is not UTF-8 text (invalid byte at offset {}): this model reads characters (a --bytes \
                     model takes any bytes)",
                    path.display(),
                    e.valid_up_to()
                )
            })?;
            encode(path, text.chars(), text.chars().count(), val_frac, skip_unknown, |c| vocab.id_of_char(c))
        }
    }
}

/// A symbol as an error message quotes it.
trait Quoted {
    fn quoted(&self) -> String;
    /// What a symbol is called, singular and plural.
    const NAMES: (&'static str, &'static str);
}

impl Quoted for char {
    fn quoted(&self) -> String {
        format!("{self:?}")
    }
    const NAMES: (&'static str, &'static str) = ("character", "characters");
}

impl Quoted for u8 {
    fn quoted(&self) -> String {
        match self.is_ascii_graphic() || *self == b' ' {
            true => format!("'{}'", *self as char),
            false => format!("0x{self:02x}"),
        }
    }
    const NAMES: (&'static str, &'static str) = ("byte", "bytes");
}

/// How many distinct unknown symbols an error lists.
const LISTED_UNKNOWN: usize = 5;

fn encode<S: Copy + PartialEq + Quoted>(
    path: &Path,
    symbols: impl Iterator<Item = S>,
    total: usize,
    val_frac: Option<f64>,
    skip_unknown: bool,
    id_of: impl Fn(S) -> Option<u32>,
) -> Result<ScoredText> {
    let range = match val_frac {
        Some(0.0) => bail!("--val-frac 0 holds nothing out: leave --val-frac out to score the whole text"),
        Some(f) => split_train_val(total, f)?.1,
        None => 0..total,
    };
    let mut ids = Vec::with_capacity(range.len());
    // Kept from the first symbol left out on: until then each id's position is its index's.
    let mut positions: Option<Vec<usize>> = None;
    // Each unknown symbol and its count, in order of first appearance.
    let mut unknown: Vec<(S, usize)> = Vec::new();
    for (position, symbol) in symbols.enumerate().skip(range.start) {
        match id_of(symbol) {
            Some(id) => {
                ids.push(id);
                if let Some(p) = &mut positions {
                    p.push(position);
                }
            }
            None => {
                positions.get_or_insert_with(|| (range.start..position).collect());
                match unknown.iter_mut().find(|(s, _)| *s == symbol) {
                    Some((_, count)) => *count += 1,
                    None => unknown.push((symbol, 1)),
                }
            }
        }
    }
    let skipped: usize = unknown.iter().map(|(_, n)| n).sum();
    if skipped > 0 && !skip_unknown {
        let listed: Vec<String> =
            unknown.iter().take(LISTED_UNKNOWN).map(|(s, n)| format!("{} ({n}×)", s.quoted())).collect();
        let more = match unknown.len().saturating_sub(LISTED_UNKNOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        bail!(
            "'{}' has {skipped} {} outside the model's vocabulary: {}{more} (--skip-unknown leaves them out)",
            path.display(),
            if skipped == 1 { S::NAMES.0 } else { S::NAMES.1 },
            listed.join(", ")
        );
    }
    Ok(ScoredText { ids, range, total, skipped, positions })
}
