//! Streaming passes over the input: never holds more than one chunk of it in memory.
//!
//! Pass 1 counts symbols; pass 2 writes token ids. Character mode decodes UTF-8 incrementally
//! with [`std::str::from_utf8`] per chunk, carrying an incomplete trailing sequence into the
//! next chunk. The chunk size is a parameter so tests can cut multi-byte sequences anywhere.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;

use super::error::DataError;
use super::vocab::{TokenWidth, Vocab, VocabKind};

/// Read buffer size used by `prepare`.
pub(crate) const DEFAULT_CHUNK: usize = 1 << 20;

/// Reads into `buf`, retrying on `Interrupted`; 0 means end of file.
fn read_some<R: Read>(r: &mut R, buf: &mut [u8], path: &Path) -> Result<usize, DataError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(DataError::ReadInput { path: path.to_path_buf(), source }),
        }
    }
}

/// Calls `f` on successive chunks of raw bytes; returns the number of bytes read.
pub(crate) fn for_each_byte_chunk<R: Read>(
    r: R,
    chunk: usize,
    path: &Path,
    f: impl FnMut(&[u8]) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    charrnn_fileio::chunks::for_each_chunk(
        r,
        chunk,
        |source| DataError::ReadInput { path: path.to_path_buf(), source },
        f,
    )
}

/// Calls `f` on successive valid UTF-8 pieces of the stream (no piece splits a character);
/// returns the number of bytes read.
///
/// Invalid UTF-8, including a sequence truncated by the end of the file, is
/// [`DataError::InvalidUtf8`] at the absolute offset of the offending sequence.
pub(crate) fn for_each_utf8_piece<R: Read>(
    mut r: R,
    chunk: usize,
    path: &Path,
    mut f: impl FnMut(&str) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let chunk = chunk.max(1);
    // A carried incomplete sequence is at most 3 bytes.
    let mut buf = vec![0u8; chunk + 4];
    let mut carry = 0usize;
    // Absolute offset of buf[0].
    let mut base = 0u64;
    let invalid = |offset: u64| DataError::InvalidUtf8 { path: path.to_path_buf(), offset };
    loop {
        let n = read_some(&mut r, &mut buf[carry..carry + chunk], path)?;
        if n == 0 {
            if carry > 0 {
                return Err(invalid(base));
            }
            return Ok(base);
        }
        let filled = carry + n;
        let valid = match std::str::from_utf8(&buf[..filled]) {
            Ok(s) => {
                f(s)?;
                filled
            }
            Err(e) => {
                let v = e.valid_up_to();
                if e.error_len().is_some() {
                    return Err(invalid(base + v as u64));
                }
                // Incomplete trailing sequence: the prefix is valid by construction.
                let s = std::str::from_utf8(&buf[..v]).map_err(|_| invalid(base + v as u64))?;
                f(s)?;
                v
            }
        };
        buf.copy_within(valid..filled, 0);
        carry = filled - valid;
        base += valid as u64;
    }
}

/// Symbol counts of pass 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Counts {
    /// ASCII fast path plus a map for everything else.
    Chars {
        ascii: Box<[u64; 128]>,
        others: HashMap<char, u64>,
    },
    Bytes(Box<[u64; 256]>),
}

impl Counts {
    /// Number of distinct symbols.
    pub(crate) fn distinct(&self) -> usize {
        match self {
            Counts::Chars { ascii, others } => ascii.iter().filter(|&&n| n > 0).count() + others.len(),
            Counts::Bytes(b) => b.iter().filter(|&&n| n > 0).count(),
        }
    }

    /// Total number of symbols counted (the number of tokens pass 2 will write).
    pub(crate) fn total(&self) -> u64 {
        match self {
            Counts::Chars { ascii, others } => ascii.iter().sum::<u64>() + others.values().sum::<u64>(),
            Counts::Bytes(b) => b.iter().sum(),
        }
    }

    /// The vocabulary these counts define (see [`Vocab`] for the order).
    pub(crate) fn to_vocab(&self) -> Result<Vocab, DataError> {
        match self {
            Counts::Chars { ascii, others } => Vocab::from_char_counts(
                ascii
                    .iter()
                    .enumerate()
                    .map(|(b, &n)| (char::from(b as u8), n))
                    .chain(others.iter().map(|(&c, &n)| (c, n))),
            ),
            Counts::Bytes(b) => Vocab::from_byte_counts(b),
        }
    }
}

/// Pass 1: counts symbols of the given kind; returns the counts and the number of bytes read.
pub(crate) fn count_symbols<R: Read>(
    r: R,
    kind: VocabKind,
    chunk: usize,
    path: &Path,
) -> Result<(Counts, u64), DataError> {
    match kind {
        VocabKind::Bytes => {
            let mut counts = Box::new([0u64; 256]);
            let n = for_each_byte_chunk(r, chunk, path, |bytes| {
                for &b in bytes {
                    counts[b as usize] += 1;
                }
                Ok(())
            })?;
            Ok((Counts::Bytes(counts), n))
        }
        VocabKind::Chars => {
            let mut ascii = Box::new([0u64; 128]);
            let mut others: HashMap<char, u64> = HashMap::new();
            let n = for_each_utf8_piece(r, chunk, path, |s| {
                for c in s.chars() {
                    if c.is_ascii() {
                        ascii[c as usize] += 1;
                    } else {
                        *others.entry(c).or_insert(0) += 1;
                    }
                }
                Ok(())
            })?;
            Ok((Counts::Chars { ascii, others }, n))
        }
    }
}

/// Pass 2: writes the little-endian token ids of the input to `out`; returns the token count.
///
/// A symbol missing from `vocab` means the input changed since pass 1:
/// [`DataError::InputChanged`]. Write errors are [`DataError::CacheIo`] naming `out_path`.
pub(crate) fn encode_stream<R: Read, W: Write>(
    r: R,
    vocab: &Vocab,
    width: TokenWidth,
    chunk: usize,
    in_path: &Path,
    out: &mut W,
    out_path: &Path,
) -> Result<u64, DataError> {
    let table = vocab.table();
    let changed = || DataError::InputChanged { path: in_path.to_path_buf() };
    let mut ids: Vec<u8> = Vec::with_capacity(chunk.max(1) * width.bytes());
    let mut n_tokens = 0u64;
    let mut flush = |ids: &mut Vec<u8>| -> Result<(), DataError> {
        n_tokens += (ids.len() / width.bytes()) as u64;
        out.write_all(ids).map_err(|source| DataError::CacheIo { path: out_path.to_path_buf(), source })?;
        ids.clear();
        Ok(())
    };
    let push = |ids: &mut Vec<u8>, id: u32| match width {
        // The width was chosen from the vocabulary size, so ids fit.
        TokenWidth::U8 => ids.push(id as u8),
        TokenWidth::U16 => ids.extend_from_slice(&(id as u16).to_le_bytes()),
    };
    match vocab.kind() {
        VocabKind::Bytes => {
            for_each_byte_chunk(r, chunk, in_path, |bytes| {
                for &b in bytes {
                    let id = table[b as usize];
                    if id == u32::MAX {
                        return Err(changed());
                    }
                    push(&mut ids, id);
                }
                flush(&mut ids)
            })?;
        }
        VocabKind::Chars => {
            for_each_utf8_piece(r, chunk, in_path, |s| {
                for c in s.chars() {
                    let id = if c.is_ascii() { table[c as usize] } else { vocab.id_of_char(c).unwrap_or(u32::MAX) };
                    if id == u32::MAX {
                        return Err(changed());
                    }
                    push(&mut ids, id);
                }
                flush(&mut ids)
            })?;
        }
    }
    Ok(n_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("mem.txt")
    }

    fn reference_ids(text: &str) -> (Vec<char>, Vec<u32>) {
        let mut counts: HashMap<char, u64> = HashMap::new();
        for c in text.chars() {
            *counts.entry(c).or_insert(0) += 1;
        }
        let mut syms: Vec<(char, u64)> = counts.into_iter().collect();
        syms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let chars: Vec<char> = syms.iter().map(|s| s.0).collect();
        let ids = text.chars().map(|c| chars.iter().position(|&x| x == c).unwrap() as u32).collect();
        (chars, ids)
    }

    #[test]
    fn multibyte_chars_across_every_chunk_boundary() {
        // 1-, 2-, 3- and 4-byte sequences, repeated so every boundary position occurs.
        let text = "ab é€😀\nxé€😀😀 zZ€ ".repeat(5);
        let (ref_chars, ref_ids) = reference_ids(&text);
        for chunk in 1..=7 {
            let (counts, n) = count_symbols(Cursor::new(text.as_bytes()), VocabKind::Chars, chunk, &p()).unwrap();
            assert_eq!(n, text.len() as u64);
            let vocab = counts.to_vocab().unwrap();
            assert_eq!(vocab.chars().unwrap(), &ref_chars[..], "chunk {chunk}");
            assert_eq!(counts.distinct(), ref_chars.len());
            let mut out = Vec::new();
            let n_tok =
                encode_stream(Cursor::new(text.as_bytes()), &vocab, TokenWidth::U8, chunk, &p(), &mut out, &p())
                    .unwrap();
            assert_eq!(n_tok, ref_ids.len() as u64);
            let ids: Vec<u32> = out.iter().map(|&b| u32::from(b)).collect();
            assert_eq!(ids, ref_ids, "chunk {chunk}");
        }
    }

    #[test]
    fn u16_encoding_is_little_endian() {
        let vocab = Vocab::from_symbols_chars(vec!['a', 'b']).unwrap();
        let mut out = Vec::new();
        encode_stream(Cursor::new("abba"), &vocab, TokenWidth::U16, 3, &p(), &mut out, &p()).unwrap();
        assert_eq!(out, vec![0, 0, 1, 0, 1, 0, 0, 0]);
    }

    fn utf8_error_offset(bytes: &[u8], chunk: usize) -> u64 {
        match count_symbols(Cursor::new(bytes), VocabKind::Chars, chunk, &p()) {
            Err(DataError::InvalidUtf8 { offset, .. }) => offset,
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_reports_the_offset() {
        // "héllo" then a lone continuation byte at offset 7, then more text.
        let mut mid = "héllo€".as_bytes().to_vec(); // 1+2+3+3 = 9 bytes
        assert_eq!(mid.len(), 9);
        mid.push(0x80);
        mid.extend_from_slice("tail text".as_bytes());
        // Truncated 3-byte sequence at EOF, starting at offset 5.
        let mut truncated = "abcdé".as_bytes().to_vec(); // 6 bytes
        truncated.extend_from_slice(&[0xE2, 0x82]);
        // A 2-byte lead followed by ASCII (invalid, not incomplete), at offset 3.
        let bad_lead = b"abc\xC3zz".to_vec();
        for chunk in [1, 2, 3, 5, 7, 64, DEFAULT_CHUNK] {
            assert_eq!(utf8_error_offset(&mid, chunk), 9, "chunk {chunk}");
            assert_eq!(utf8_error_offset(&truncated, chunk), 6, "chunk {chunk}");
            assert_eq!(utf8_error_offset(&bad_lead, chunk), 3, "chunk {chunk}");
        }
        let err = count_symbols(Cursor::new(&mid), VocabKind::Chars, 4, &p()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("offset 9") && msg.contains("use bytes") && msg.contains("mem.txt"));
    }

    #[test]
    fn bytes_mode_accepts_arbitrary_bytes() {
        let data: Vec<u8> = (0..=255u8).chain([0xFF, 0x80, 0xFF]).collect();
        for chunk in [1, 3, 1000] {
            let (counts, n) = count_symbols(Cursor::new(&data), VocabKind::Bytes, chunk, &p()).unwrap();
            assert_eq!(n, data.len() as u64);
            let vocab = counts.to_vocab().unwrap();
            assert_eq!(vocab.len(), 256);
            // 0xFF twice more, then 0x80 once more, then the rest by byte value.
            assert_eq!(&vocab.bytes().unwrap()[..3], &[0xFF, 0x80, 0x00]);
            let mut out = Vec::new();
            encode_stream(Cursor::new(&data), &vocab, TokenWidth::U8, chunk, &p(), &mut out, &p()).unwrap();
            let mut decoded = Vec::new();
            for &id in &out {
                vocab.decode_into(u32::from(id), &mut decoded);
            }
            assert_eq!(decoded, data);
        }
    }

    #[test]
    fn unknown_symbol_in_pass_two_means_the_input_changed() {
        let vocab = Vocab::from_symbols_chars(vec!['a']).unwrap();
        let err =
            encode_stream(Cursor::new("aab"), &vocab, TokenWidth::U8, 2, &p(), &mut Vec::new(), &p()).unwrap_err();
        assert!(matches!(err, DataError::InputChanged { .. }), "{err:?}");
    }
}
