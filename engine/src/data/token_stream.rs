//! Read-only, memory-mapped view of a token file (`tokens.bin`).
//!
//! The file is never copied into memory: the OS pages it in on demand, so corpora larger than
//! RAM train fine.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::DataError;
use super::prepare::Prepared;
use super::vocab::TokenWidth;

/// The token ids of a prepared corpus, indexed in place.
pub struct TokenStream {
    map: Mmap,
    width: TokenWidth,
    len: usize,
    path: PathBuf,
}

impl std::fmt::Debug for TokenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStream")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("len", &self.len)
            .finish()
    }
}

impl TokenStream {
    /// Maps `path`, whose length must be a non-zero multiple of `width`.
    pub fn open(path: &Path, width: TokenWidth) -> Result<TokenStream, DataError> {
        let io_err = |source| DataError::CacheIo { path: path.to_path_buf(), source };
        let invalid = |reason: String| DataError::InvalidTokenFile { path: path.to_path_buf(), reason };
        let file = File::open(path).map_err(io_err)?;
        let bytes = file.metadata().map_err(io_err)?.len();
        let bytes = usize::try_from(bytes)
            .map_err(|_| invalid(format!("{bytes} bytes is too large to map on this platform")))?;
        if bytes == 0 {
            return Err(invalid("the file is empty".to_owned()));
        }
        if bytes % width.bytes() != 0 {
            return Err(invalid(format!("{bytes} bytes is not a multiple of the {}-byte token width", width.bytes())));
        }
        // SAFETY: `Mmap::map` is unsafe because the mapped file could be modified or truncated
        // while mapped. The token file is ours: `prepare` writes it once under a temporary name
        // and renames it into place atomically, and nothing writes to it afterwards (a rebuild
        // renames a *new* file over the name, leaving this inode and mapping intact). Another
        // process truncating or rewriting the file in place while it is mapped would be
        // undefined behaviour; that is out of scope, as for any tool that maps its own cache.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        if map.len() != bytes {
            return Err(invalid("the file changed while it was being opened".to_owned()));
        }
        Ok(TokenStream { map, width, len: bytes / width.bytes(), path: path.to_path_buf() })
    }

    /// Opens the token file of a prepared corpus and checks it against the preparation: the
    /// token count must match and every id must be below the vocabulary size (one sequential
    /// scan), so a damaged cache is an error here rather than an out-of-bounds panic later.
    pub fn open_prepared(p: &Prepared) -> Result<TokenStream, DataError> {
        let ts = TokenStream::open(&p.tokens_path, p.token_width)?;
        if ts.len as u64 != p.n_tokens {
            return Err(DataError::InvalidTokenFile {
                path: p.tokens_path.clone(),
                reason: format!("{} tokens, but the cache metadata says {}", ts.len, p.n_tokens),
            });
        }
        let max = ts.max_id();
        if max as usize >= p.vocab.len() {
            return Err(DataError::InvalidTokenFile {
                path: p.tokens_path.clone(),
                reason: format!("token id {max} is out of range for a vocabulary of {} symbols", p.vocab.len()),
            });
        }
        Ok(ts)
    }

    /// Number of tokens.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no tokens (never for a stream that `open` accepted).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Width of each id in the file.
    pub fn width(&self) -> TokenWidth {
        self.width
    }

    /// The mapped file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of token `i`.
    ///
    /// # Panics
    /// If `i >= self.len()` (a programmer error).
    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        match self.width {
            TokenWidth::U8 => u32::from(self.map[i]),
            TokenWidth::U16 => {
                let j = 2 * i;
                u32::from(u16::from_le_bytes([self.map[j], self.map[j + 1]]))
            }
        }
    }

    /// The largest id in the stream (a full sequential scan).
    pub fn max_id(&self) -> u32 {
        match self.width {
            TokenWidth::U8 => self.map.iter().copied().max().map_or(0, u32::from),
            TokenWidth::U16 => {
                self.map.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).max().map_or(0, u32::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Vocab;
    use std::fs;

    #[test]
    fn reads_u8_and_u16_little_endian() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.bin");
        fs::write(&p, [1u8, 0, 255, 2]).unwrap();
        let s = TokenStream::open(&p, TokenWidth::U8).unwrap();
        assert_eq!(s.len(), 4);
        assert!(!s.is_empty());
        assert_eq!((0..4).map(|i| s.get(i)).collect::<Vec<_>>(), [1, 0, 255, 2]);
        assert_eq!(s.max_id(), 255);
        let s = TokenStream::open(&p, TokenWidth::U16).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((0..2).map(|i| s.get(i)).collect::<Vec<_>>(), [1, 0x02FF]);
        assert_eq!(s.max_id(), 0x02FF);
    }

    #[test]
    fn rejects_bad_lengths_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("odd.bin");
        fs::write(&p, [1u8, 2, 3]).unwrap();
        let err = TokenStream::open(&p, TokenWidth::U16).unwrap_err();
        assert!(matches!(err, DataError::InvalidTokenFile { .. }));
        assert!(err.to_string().contains("odd.bin") && err.to_string().contains("multiple"));
        fs::write(&p, []).unwrap();
        assert!(TokenStream::open(&p, TokenWidth::U8).is_err());
        let err = TokenStream::open(&dir.path().join("none.bin"), TokenWidth::U8).unwrap_err();
        assert!(matches!(err, DataError::CacheIo { .. }));
    }

    #[test]
    fn open_prepared_checks_count_and_id_range() {
        let dir = tempfile::tempdir().unwrap();
        let tokens_path = dir.path().join("tokens.bin");
        fs::write(&tokens_path, [0u8, 1, 2, 1]).unwrap();
        let mut p = Prepared {
            vocab: Vocab::from_symbols_chars(vec!['a', 'b', 'c']).unwrap(),
            cache_dir: dir.path().to_path_buf(),
            tokens_path: tokens_path.clone(),
            n_tokens: 4,
            token_width: TokenWidth::U8,
            reused: true,
        };
        assert_eq!(TokenStream::open_prepared(&p).unwrap().len(), 4);
        p.n_tokens = 5;
        assert!(TokenStream::open_prepared(&p).is_err());
        p.n_tokens = 4;
        fs::write(&tokens_path, [0u8, 1, 3, 1]).unwrap();
        let err = TokenStream::open_prepared(&p).unwrap_err();
        assert!(err.to_string().contains("token id 3"), "{err}");
    }
}
