//! The vocabulary: the distinct symbols of a corpus (characters, or raw bytes with `--bytes`)
//! and the mapping between them and token ids.
//!
//! # Order
//! Ids are assigned by **descending count** in the corpus, ties broken by **ascending code
//! point** (characters) or **ascending byte value** (bytes). So id 0 is the most frequent symbol
//! and the order is fully deterministic for a given corpus.
//!
//! # File format (`vocab.json`)
//! `{"kind":"chars","symbols":["e"," ","t",...]}` (each a one-character string) or
//! `{"kind":"bytes","symbols":[32,101,...]}`; the id of a symbol is its position.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::DataError;
use crate::error_text::one_line;
use charrnn_fileio::atomic_file::write_atomic_with;

/// The largest vocabulary a `u16` token id can address.
pub const MAX_VOCAB: usize = 1 << 16;

/// Sentinel in the lookup table for "not in the vocabulary".
const NONE: u32 = u32::MAX;

/// What a symbol is: a Unicode scalar value or a raw byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VocabKind {
    /// Symbols are `char`s of a UTF-8 text.
    Chars,
    /// Symbols are raw bytes (any file).
    Bytes,
}

#[derive(Clone, PartialEq, Eq)]
enum Symbols {
    Chars(Vec<char>),
    Bytes(Vec<u8>),
}

/// Symbols sorted by id, with fast lookup from symbol to id.
#[derive(Clone)]
pub struct Vocab {
    symbols: Symbols,
    /// Chars: ids of ASCII chars (`0..128`); bytes: ids of all 256 byte values. `NONE` if absent.
    table: [u32; 256],
    /// Chars only: ids of non-ASCII chars.
    others: HashMap<char, u32>,
}

impl PartialEq for Vocab {
    fn eq(&self, other: &Self) -> bool {
        self.symbols == other.symbols
    }
}

impl Eq for Vocab {}

impl fmt::Debug for Vocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Vocab");
        d.field("kind", &self.kind()).field("len", &self.len());
        match &self.symbols {
            Symbols::Chars(c) => d.field("symbols", c),
            Symbols::Bytes(b) => d.field("symbols", b),
        };
        d.finish()
    }
}

#[derive(Serialize)]
struct VocabFileOut<'a, S: Serialize> {
    kind: VocabKind,
    symbols: &'a [S],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFileIn {
    kind: VocabKind,
    symbols: Vec<serde_json::Value>,
}

impl Vocab {
    /// Builds a character vocabulary whose ids are the positions in `chars`.
    ///
    /// Errors if `chars` is empty, has duplicates or more than [`MAX_VOCAB`] entries.
    pub fn from_symbols_chars(chars: Vec<char>) -> Result<Vocab, DataError> {
        check_len(chars.len())?;
        let mut table = [NONE; 256];
        let mut others = HashMap::new();
        for (id, &c) in chars.iter().enumerate() {
            // `check_len` bounds `id` below 2^16.
            let id = id as u32;
            let previous = if c.is_ascii() {
                std::mem::replace(&mut table[c as usize], id)
            } else {
                others.insert(c, id).unwrap_or(NONE)
            };
            if previous != NONE {
                return Err(DataError::InvalidVocab { reason: format!("duplicate symbol {c:?}") });
            }
        }
        Ok(Vocab { symbols: Symbols::Chars(chars), table, others })
    }

    /// Builds a byte vocabulary whose ids are the positions in `bytes`.
    ///
    /// Errors if `bytes` is empty or has duplicates.
    pub fn from_symbols_bytes(bytes: Vec<u8>) -> Result<Vocab, DataError> {
        check_len(bytes.len())?;
        let mut table = [NONE; 256];
        for (id, &b) in bytes.iter().enumerate() {
            if std::mem::replace(&mut table[b as usize], id as u32) != NONE {
                return Err(DataError::InvalidVocab { reason: format!("duplicate byte {b}") });
            }
        }
        Ok(Vocab { symbols: Symbols::Bytes(bytes), table, others: HashMap::new() })
    }

    /// Builds a character vocabulary from symbol counts, ordered by descending count, ties by
    /// ascending code point. Symbols with a zero count are left out.
    pub fn from_char_counts(counts: impl IntoIterator<Item = (char, u64)>) -> Result<Vocab, DataError> {
        Vocab::from_symbols_chars(sorted_by_count(counts))
    }

    /// Builds a byte vocabulary from per-byte counts, ordered by descending count, ties by
    /// ascending byte value. Bytes with a zero count are left out.
    pub fn from_byte_counts(counts: &[u64; 256]) -> Result<Vocab, DataError> {
        Vocab::from_symbols_bytes(sorted_by_count(counts.iter().enumerate().map(|(b, &n)| (b as u8, n))))
    }

    /// Whether symbols are characters or bytes.
    pub fn kind(&self) -> VocabKind {
        match self.symbols {
            Symbols::Chars(_) => VocabKind::Chars,
            Symbols::Bytes(_) => VocabKind::Bytes,
        }
    }

    /// Number of symbols (the model's vocabulary size V).
    pub fn len(&self) -> usize {
        match &self.symbols {
            Symbols::Chars(c) => c.len(),
            Symbols::Bytes(b) => b.len(),
        }
    }

    /// Always false for a vocabulary built by this module (they are never empty).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The characters sorted by id (`None` for a byte vocabulary).
    pub fn chars(&self) -> Option<&[char]> {
        match &self.symbols {
            Symbols::Chars(c) => Some(c),
            Symbols::Bytes(_) => None,
        }
    }

    /// The bytes sorted by id (`None` for a character vocabulary).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.symbols {
            Symbols::Chars(_) => None,
            Symbols::Bytes(b) => Some(b),
        }
    }

    /// The id of character `c`. For a byte vocabulary: `Some` only for an ASCII `c` whose byte
    /// is present.
    #[inline]
    pub fn id_of_char(&self, c: char) -> Option<u32> {
        let id = match self.symbols {
            Symbols::Chars(_) if c.is_ascii() => self.table[c as usize],
            Symbols::Chars(_) => return self.others.get(&c).copied(),
            Symbols::Bytes(_) if c.is_ascii() => self.table[c as usize],
            Symbols::Bytes(_) => NONE,
        };
        (id != NONE).then_some(id)
    }

    /// The id of byte `b` in a byte vocabulary (`None` for a character vocabulary).
    #[inline]
    pub fn id_of_byte(&self, b: u8) -> Option<u32> {
        match self.symbols {
            Symbols::Bytes(_) => {
                let id = self.table[b as usize];
                (id != NONE).then_some(id)
            }
            Symbols::Chars(_) => None,
        }
    }

    /// Encodes a text (e.g. a prime text). Character vocabulary: one id per `char`; byte
    /// vocabulary: one id per byte of the UTF-8 text.
    ///
    /// Unknown symbols give [`DataError::UnknownSymbols`] listing every distinct unknown
    /// character (quoted and escaped, e.g. `'Z', '\n'`) in order of first appearance. With a
    /// byte vocabulary a character is unknown when any of its bytes is.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let mut ids = Vec::with_capacity(text.len());
        let mut unknown: Vec<char> = Vec::new();
        for c in text.chars() {
            let before = ids.len();
            let known = self.push_char(c, &mut ids);
            if !known {
                ids.truncate(before);
                if !unknown.contains(&c) {
                    unknown.push(c);
                }
            }
        }
        if unknown.is_empty() {
            Ok(ids)
        } else {
            let listed = unknown.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
            Err(DataError::UnknownSymbols { listed })
        }
    }

    /// Like [`Vocab::encode`] but silently drops unknown symbols (for a byte vocabulary: the
    /// unknown bytes).
    pub fn encode_lossy(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len());
        for c in text.chars() {
            self.push_char(c, &mut ids);
        }
        ids
    }

    /// Pushes the ids of `c` (one, or one per UTF-8 byte); returns false if any was unknown
    /// (the known ones are still pushed).
    fn push_char(&self, c: char, ids: &mut Vec<u32>) -> bool {
        match self.symbols {
            Symbols::Chars(_) => match self.id_of_char(c) {
                Some(id) => {
                    ids.push(id);
                    true
                }
                None => false,
            },
            Symbols::Bytes(_) => {
                let mut buf = [0u8; 4];
                let mut all_known = true;
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    match self.id_of_byte(b) {
                        Some(id) => ids.push(id),
                        None => all_known = false,
                    }
                }
                all_known
            }
        }
    }

    /// Appends the bytes of symbol `id` (the UTF-8 of the character, or the raw byte) to `out`.
    ///
    /// # Panics
    /// If `id >= self.len()` (a programmer error: ids come from this vocabulary).
    #[inline]
    pub fn decode_into(&self, id: u32, out: &mut Vec<u8>) {
        match &self.symbols {
            Symbols::Chars(chars) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(chars[id as usize].encode_utf8(&mut buf).as_bytes());
            }
            Symbols::Bytes(bytes) => out.push(bytes[id as usize]),
        }
    }

    /// Fast lookup for the ASCII (chars) or byte (bytes) table: the id or `u32::MAX`.
    #[inline]
    pub(crate) fn table(&self) -> &[u32; 256] {
        &self.table
    }

    /// The vocabulary as the JSON of `vocab.json`.
    pub fn to_json(&self) -> Vec<u8> {
        let json = match &self.symbols {
            Symbols::Chars(chars) => {
                let strings: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
                serde_json::to_vec(&VocabFileOut { kind: VocabKind::Chars, symbols: &strings })
            }
            Symbols::Bytes(bytes) => serde_json::to_vec(&VocabFileOut { kind: VocabKind::Bytes, symbols: bytes }),
        };
        // Serialising strings and integers into a Vec cannot fail.
        json.unwrap_or_default()
    }

    /// Writes the vocabulary as JSON, atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self.to_json();
        let on_io = |source| DataError::CacheIo { path: path.to_path_buf(), source };
        write_atomic_with(path, on_io, |w, tmp| {
            w.write_all(&json)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|source| DataError::CacheIo { path: tmp.to_path_buf(), source })
        })
    }

    /// Reads and validates a vocabulary file written by [`Vocab::save`]: it must be non-empty,
    /// without duplicates, with one-character strings (chars) or integers 0..=255 (bytes).
    pub fn load(path: &Path) -> Result<Vocab, DataError> {
        let text = fs::read(path).map_err(|source| DataError::CacheIo { path: path.to_path_buf(), source })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates the JSON of a `vocab.json` (`origin` names it in errors).
    pub fn from_json(text: &[u8], origin: &Path) -> Result<Vocab, DataError> {
        let path = origin;
        let invalid =
            |reason: String| DataError::InvalidVocabFile { path: path.to_path_buf(), reason: one_line(&reason) };
        let file: VocabFileIn = serde_json::from_slice(text).map_err(|e| invalid(e.to_string()))?;
        if file.symbols.is_empty() {
            return Err(invalid("no symbols".to_owned()));
        }
        let built = match file.kind {
            VocabKind::Chars => {
                let mut chars = Vec::with_capacity(file.symbols.len());
                for (id, v) in file.symbols.iter().enumerate() {
                    let c = v
                        .as_str()
                        .and_then(single_char)
                        .ok_or_else(|| invalid(format!("symbol {id} is {v}, not a one-character string")))?;
                    chars.push(c);
                }
                Vocab::from_symbols_chars(chars)
            }
            VocabKind::Bytes => {
                let mut bytes = Vec::with_capacity(file.symbols.len());
                for (id, v) in file.symbols.iter().enumerate() {
                    let b = v
                        .as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| invalid(format!("symbol {id} is {v}, not a byte 0..=255")))?;
                    bytes.push(b);
                }
                Vocab::from_symbols_bytes(bytes)
            }
        };
        built.map_err(|e| match e {
            DataError::InvalidVocab { reason } => invalid(reason),
            other => other,
        })
    }
}

fn single_char(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

fn check_len(len: usize) -> Result<(), DataError> {
    if len == 0 {
        return Err(DataError::InvalidVocab { reason: "no symbols".to_owned() });
    }
    if len > MAX_VOCAB {
        return Err(DataError::InvalidVocab {
            reason: format!("{len} symbols, more than the supported maximum of {MAX_VOCAB}"),
        });
    }
    Ok(())
}

/// Symbols with a non-zero count, by descending count then ascending symbol.
fn sorted_by_count<S: Ord + Copy>(counts: impl IntoIterator<Item = (S, u64)>) -> Vec<S> {
    let mut v: Vec<(S, u64)> = counts.into_iter().filter(|&(_, n)| n > 0).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().map(|(s, _)| s).collect()
}

/// Width of one token id in a token file (`tokens.bin`): what the vocabulary's size needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenWidth {
    /// One byte per id (vocabulary of at most 256 symbols).
    U8,
    /// Two little-endian bytes per id (up to 65,536 symbols).
    U16,
}

impl TokenWidth {
    /// Bytes per token id.
    pub fn bytes(self) -> usize {
        match self {
            TokenWidth::U8 => 1,
            TokenWidth::U16 => 2,
        }
    }

    /// The narrowest width that holds every id of a vocabulary of `len` symbols.
    pub fn for_vocab_len(len: usize) -> TokenWidth {
        if len <= 256 {
            TokenWidth::U8
        } else {
            TokenWidth::U16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_descending_count_then_code_point() {
        // 'b' x3, 'a' x2, 'c' x2, 'é' x2, ' ' x1 — ties among a, c, é by code point.
        let counts = [('é', 2), ('c', 2), (' ', 1), ('b', 3), ('a', 2), ('z', 0)];
        let v = Vocab::from_char_counts(counts).unwrap();
        assert_eq!(v.chars().unwrap(), &['b', 'a', 'c', 'é', ' ']);
        assert_eq!(v.kind(), VocabKind::Chars);
        assert_eq!(v.id_of_char('z'), None);
        assert_eq!(v.id_of_char('é'), Some(3));

        let mut bc = [0u64; 256];
        bc[200] = 5;
        bc[10] = 5;
        bc[65] = 7;
        bc[0] = 1;
        let b = Vocab::from_byte_counts(&bc).unwrap();
        assert_eq!(b.bytes().unwrap(), &[65, 10, 200, 0]);
        assert_eq!(b.kind(), VocabKind::Bytes);
        assert_eq!(b.id_of_byte(200), Some(2));
        assert_eq!(b.id_of_char('A'), Some(0));
        assert_eq!(b.id_of_char('B'), None);
    }

    #[test]
    fn encode_lists_every_distinct_unknown_char_in_order() {
        let v = Vocab::from_symbols_chars(vec!['a', 'b', ' ']).unwrap();
        assert_eq!(v.encode("ab a").unwrap(), vec![0, 1, 2, 0]);
        let err = v.encode("aZb\nZ\u{e9}\n").unwrap_err();
        match &err {
            DataError::UnknownSymbols { listed } => assert_eq!(listed, "'Z', '\\n', 'é'"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("'Z', '\\n', 'é'"));
        assert_eq!(v.encode_lossy("aZb\nZ\u{e9}\n"), vec![0, 1]);
    }

    #[test]
    fn byte_vocab_encodes_utf8_bytes() {
        // 'é' is C3 A9; only C3 is known.
        let v = Vocab::from_symbols_bytes(vec![b'h', 0xC3, b'i']).unwrap();
        assert_eq!(v.encode("hi").unwrap(), vec![0, 2]);
        let err = v.encode("hé!").unwrap_err();
        assert!(matches!(&err, DataError::UnknownSymbols { listed } if listed == "'é', '!'"));
        assert_eq!(v.encode_lossy("hé!"), vec![0, 1]);
        let mut out = Vec::new();
        for id in [0, 1, 2] {
            v.decode_into(id, &mut out);
        }
        assert_eq!(out, vec![b'h', 0xC3, b'i']);
    }

    #[test]
    fn decode_roundtrips_chars() {
        let v = Vocab::from_symbols_chars(vec!['€', 'x', '\n', '😀']).unwrap();
        let text = "x€\n😀x";
        let mut out = Vec::new();
        for id in v.encode(text).unwrap() {
            v.decode_into(id, &mut out);
        }
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn rejects_empty_and_duplicates() {
        assert!(Vocab::from_symbols_chars(vec![]).is_err());
        assert!(Vocab::from_symbols_chars(vec!['a', 'é', 'a']).is_err());
        assert!(Vocab::from_symbols_chars(vec!['é', 'a', 'é']).is_err());
        assert!(Vocab::from_symbols_bytes(vec![]).is_err());
        assert!(Vocab::from_symbols_bytes(vec![1, 2, 1]).is_err());
    }

    #[test]
    fn save_load_roundtrip_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.json");
        let v = Vocab::from_symbols_chars(vec!['e', ' ', '"', '\n', 'é']).unwrap();
        v.save(&p).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text.trim_end(), r#"{"kind":"chars","symbols":["e"," ","\"","\n","é"]}"#);
        assert_eq!(Vocab::load(&p).unwrap(), v);

        let b = Vocab::from_symbols_bytes(vec![32, 101, 0, 255]).unwrap();
        b.save(&p).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap().trim_end(), r#"{"kind":"bytes","symbols":[32,101,0,255]}"#);
        assert_eq!(Vocab::load(&p).unwrap(), b);
    }

    #[test]
    fn load_validates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.json");
        let cases = [
            (r#"{"kind":"chars","symbols":[]}"#, "no symbols"),
            (r#"{"kind":"chars","symbols":["a","ab"]}"#, "symbol 1"),
            (r#"{"kind":"chars","symbols":["a",""]}"#, "symbol 1"),
            (r#"{"kind":"chars","symbols":["a",7]}"#, "symbol 1"),
            (r#"{"kind":"chars","symbols":["a","b","a"]}"#, "duplicate"),
            (r#"{"kind":"bytes","symbols":[1,256]}"#, "symbol 1"),
            (r#"{"kind":"bytes","symbols":[1,-1]}"#, "symbol 1"),
            (r#"{"kind":"bytes","symbols":[3,3]}"#, "duplicate"),
            (r#"{"kind":"words","symbols":["a"]}"#, "unknown variant"),
            (r#"{"kind":"chars"}"#, "missing field"),
            ("not json", "expected"),
        ];
        for (json, needle) in cases {
            fs::write(&p, json).unwrap();
            let err = Vocab::load(&p).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DataError::InvalidVocabFile { .. }) && msg.contains(needle), "{json}: {msg}");
            assert!(msg.contains("vocab.json"), "{msg}");
        }
        let missing = Vocab::load(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, DataError::CacheIo { .. }));
        assert!(missing.to_string().contains("nope.json"));
    }
}
