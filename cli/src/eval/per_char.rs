//! `eval --per-char FILE`: a tab-separated table with a header and one line per predicted
//! character (its position in the file, the character, its log-probability in nats and in
//! bits), for finding the surprising parts of a text. The character is escaped (`\t`, `\n`,
//! `\r`, `\\`, other control characters and a byte model's non-ASCII bytes as `\xNN`) so that
//! every line has its four fields. Written atomically; a file already there is replaced only
//! when it is such a table (it starts with one of the headers below), never anyone else's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_fileio::atomic_file::{resolve_destination, PendingFile};

/// The header of a character model's table, and of a byte model's.
pub const HEADERS: [&str; 2] =
    ["position\tcharacter\tlog_prob_nats\tlog_prob_bits\n", "position\tbyte\tlog_prob_nats\tlog_prob_bits\n"];

/// The table being written, under a temporary name until [`PerCharTable::commit`].
pub struct PerCharTable<'v> {
    file: PendingFile,
    path: PathBuf,
    vocab: &'v Vocab,
    /// The first write error; later lines are not tried.
    failed: Option<std::io::Error>,
    line: Vec<u8>,
}

impl<'v> PerCharTable<'v> {
    /// Starts the table for `path`, refusing a file there that is not such a table (checked
    /// now, before the scoring).
    pub fn create(path: &Path, vocab: &'v Vocab) -> Result<PerCharTable<'v>> {
        let cannot = || format!("cannot write --per-char '{}'", path.display());
        let target = resolve_destination(path).with_context(cannot)?;
        if target.exists() && !is_per_char_table(&target) {
            bail!(
                "'{}' exists and is not a --per-char table of charrnn-fast: name another file (it is left as it is)",
                path.display()
            );
        }
        let mut file = PendingFile::create(path).with_context(cannot)?;
        let header = HEADERS[usize::from(vocab.bytes().is_some())];
        file.writer().write_all(header.as_bytes()).with_context(cannot)?;
        Ok(PerCharTable { file, path: path.to_path_buf(), vocab, failed: None, line: Vec::with_capacity(64) })
    }

    /// One line: symbol `id` at `position` in the file, of natural log-probability `log_p`.
    pub fn push(&mut self, position: usize, id: u32, log_p: f64) {
        if self.failed.is_some() {
            return;
        }
        self.line.clear();
        // Writes into a Vec cannot fail.
        let _ = write!(self.line, "{position}\t");
        escape_symbol(self.vocab, id, &mut self.line);
        let _ = writeln!(self.line, "\t{log_p}\t{}", log_p / std::f64::consts::LN_2);
        if let Err(e) = self.file.writer().write_all(&self.line) {
            self.failed = Some(e);
        }
    }

    /// Renames the finished table over its destination.
    pub fn commit(self) -> Result<()> {
        let cannot = || format!("cannot write --per-char '{}'", self.path.display());
        if let Some(e) = self.failed {
            return Err(e).with_context(cannot);
        }
        self.file.commit().with_context(cannot)
    }
}

/// Whether `path` starts with one of [`HEADERS`].
fn is_per_char_table(path: &Path) -> bool {
    let longest = HEADERS.iter().map(|h| h.len()).max().unwrap_or(0);
    let mut start = Vec::with_capacity(longest);
    let read = std::fs::File::open(path).and_then(|f| f.take(longest as u64).read_to_end(&mut start));
    read.is_ok() && HEADERS.iter().any(|h| start.starts_with(h.as_bytes()))
}

/// Symbol `id` as a table field: its UTF-8, with the characters that would break a line or a
/// field (and the other control characters) escaped, as are a byte model's non-ASCII bytes
/// (alone they are not UTF-8).
fn escape_symbol(vocab: &Vocab, id: u32, out: &mut Vec<u8>) {
    let c = match vocab.bytes() {
        Some(bytes) if !bytes[id as usize].is_ascii() => {
            let _ = write!(out, "\\x{:02x}", bytes[id as usize]);
            return;
        }
        Some(bytes) => char::from(bytes[id as usize]),
        None => vocab.chars().map_or(char::REPLACEMENT_CHARACTER, |chars| chars[id as usize]),
    };
    let _ = match c {
        '\t' => write!(out, "\\t"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\\' => write!(out, "\\\\"),
        c if c.is_control() && c.is_ascii() => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "{c}"),
    };
}
