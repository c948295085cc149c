//! The default corpus, tinyshakespeare, compiled in (as char-rnn and torch-rnn
//! ship it in their repositories), so that `train` with no `--data` works from any directory,
//! offline, with no repository around the binary.
//!
//! Inside a checkout, `data/tinyshakespeare/input.txt` (the committed copy the text is compiled
//! from) is used where it is, with its prepared cache beside it. Anywhere else the built-in text
//! is written once into the user's cache directory (`$XDG_CACHE_HOME/charrnn-fast/`, else
//! `~/.cache/charrnn-fast/`), where its prepared cache then goes too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Name of the built-in corpus.
pub const NAME: &str = "tinyshakespeare";
/// Where a checkout keeps it, relative to the repository root (and the working directory).
pub const REPO_PATH: &str = "data/tinyshakespeare/input.txt";
/// Its size in bytes.
pub const SIZE: u64 = 1_115_394;
/// SHA-256 of its content.
pub const SHA256: &str = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed";
/// The text itself.
pub const TEXT: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/tinyshakespeare/input.txt"));

// The committed file is the one the checksum names (the test below checks the hash).
const _: () = assert!(TEXT.len() as u64 == SIZE);

/// The directory for files this tool keeps per user, when one can be named
/// (`$XDG_CACHE_HOME/charrnn-fast`, else `~/.cache/charrnn-fast`).
pub fn user_cache_dir() -> Option<PathBuf> {
    charrnn_fileio::user_dirs::user_cache_dir()
}

/// The file `train` reads when no `--data` is given: the checkout's copy when the working
/// directory is a checkout, else the built-in text written to the user's cache directory.
pub fn default_corpus() -> Result<PathBuf> {
    let in_repo = Path::new(REPO_PATH);
    if in_repo.is_file() {
        return Ok(in_repo.to_path_buf());
    }
    user_copy()
}

/// Where the built-in text goes in the user's cache directory.
pub fn user_copy_path() -> Option<PathBuf> {
    user_cache_dir().map(|cache| cache.join(NAME).join("input.txt"))
}

/// The built-in text in the user's cache directory, written (again) if missing or altered.
pub fn user_copy() -> Result<PathBuf> {
    let Some(path) = user_copy_path() else {
        bail!("no --data given and no cache directory for the built-in {NAME} (set HOME or XDG_CACHE_HOME), or pass --data FILE");
    };
    if !std::fs::read(&path).is_ok_and(|bytes| is_builtin(&bytes)) {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .and_then(|()| charrnn_fileio::atomic_file::write_atomic(&path, TEXT))
            .with_context(|| {
                format!(
                    "cannot write the built-in {NAME} to '{}'; set XDG_CACHE_HOME, or pass --data FILE",
                    path.display()
                )
            })?;
    }
    Ok(path)
}

/// Whether `bytes` is the built-in text.
pub fn is_builtin(bytes: &[u8]) -> bool {
    bytes.len() as u64 == SIZE && hex_sha256(bytes) == SHA256
}

/// Lowercase hex SHA-256.
pub fn hex_sha256(bytes: &[u8]) -> String {
    charrnn_fileio::chunks::sha256_hex(bytes).map_or_else(|_| String::new(), |(_, sha)| sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_text_is_tinyshakespeare() {
        assert!(is_builtin(TEXT));
        assert!(TEXT.starts_with(b"First Citizen:"));
    }
}
