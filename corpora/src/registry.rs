//! The corpora `data fetch` knows: where each comes from, its size and checksum, how the
//! download becomes the files of its directory.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Test-only: replaces the download URL of every corpus (the CLI tests point it at an
/// unreachable local port to check the offline error). Not meant for users.
pub const URL_OVERRIDE_ENV: &str = "CHARRNN_FETCH_URL_OVERRIDE";

/// A corpus that `data fetch` knows.
#[derive(Clone, Copy, Debug)]
pub struct CorpusSpec {
    pub name: &'static str,
    /// Where it is downloaded from.
    pub url: &'static str,
    /// Size in bytes of the corpus text (for a zip: of the unzipped member).
    pub size: u64,
    /// SHA-256 of the corpus text (for a zip: of the unzipped member), lowercase hex.
    pub sha256: &'static str,
    pub layout: Layout,
    /// Flags of the `train` command printed after a fetch, after `--data DIR/NAME/input.txt`.
    pub train_flags: &'static str,
    /// One line for `data list`.
    pub about: &'static str,
    /// Printed after a successful fetch (empty for nothing).
    pub after_fetch: &'static str,
    /// The text compiled into the binary, written without the network when there is no --from.
    pub builtin: Option<&'static [u8]>,
}

/// How the downloaded file becomes the files of `DIR/NAME/`.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// The download is the text itself, stored as `input.txt`.
    Plain,
    /// The download is a zip archive with the text as `member`. Its last `test_bytes` go to
    /// `test.txt` (the held-out test split), everything before them to `input.txt`.
    ZipSplit { member: &'static str, test_bytes: u64 },
}

pub const INPUT_FILE: &str = "input.txt";
pub const TEST_FILE: &str = "test.txt";

pub const CORPORA: &[CorpusSpec] = &[
    CorpusSpec {
        name: "tinyshakespeare",
        url: "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        size: 1_115_394,
        sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        layout: Layout::Plain,
        train_flags: "",
        about: "Shakespeare from karpathy/char-rnn, 1.1 MB of ASCII (built in: no download)",
        after_fetch: "",
        builtin: Some(crate::builtin::TEXT),
    },
    // enwik8: the first 10^8 bytes of an English Wikipedia XML dump (Hutter Prize). What is
    // verified is the *unzipped* file: 100,000,000 bytes, SHA-256 2b49720e…024a8. Matt
    // Mahoney's page publishes its MD5 (a1fa5ffddb56f4953e226637dabbb36a) and SHA-1
    // (57b8363b814821dc9d47aa4d41f58733519076b2); the SHA-256 below is the one several
    // independent public projects pin for the same file. It could not be recomputed from a
    // real download here (no network in the development sandbox). The zip itself is not
    // checked: mirrors have re-packed it over the years (the archive usually seen is
    // 36,445,475 bytes, SHA-256 547994d9…534bc), while its content is what matters.
    //
    // Standard split (e.g. Transformer-XL): train = bytes [0, 90M), valid = [90M, 95M),
    // test = [95M, 100M). input.txt gets the first 95M, so `--val-frac 5/95` holds out exactly
    // the 5M validation bytes; test.txt gets the last 5M.
    CorpusSpec {
        name: "enwik8",
        url: "http://mattmahoney.net/dc/enwik8.zip",
        size: 100_000_000,
        sha256: "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8",
        layout: Layout::ZipSplit { member: "enwik8", test_bytes: 5_000_000 },
        train_flags: " --bytes --val-frac 0.05263157894736842",
        about: "first 100 MB of English Wikipedia XML (Hutter Prize), split 90M/5M/5M",
        after_fetch: "input.txt is the first 95,000,000 bytes (the standard 90M training + 5M validation \
                      splits; that --val-frac, 5/95, holds out exactly the 5M validation bytes); \
                      test.txt is the last 5,000,000 bytes, the standard test split",
        builtin: None,
    },
];

/// The corpus called `name`, or an error listing the known ones.
pub fn find_corpus(name: &str) -> Result<&'static CorpusSpec> {
    match CORPORA.iter().find(|c| c.name == name) {
        Some(c) => Ok(c),
        None => bail!("unknown corpus '{name}' (known: {})", known_names()),
    }
}

/// The known names, comma-separated.
pub fn known_names() -> String {
    CORPORA.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

impl CorpusSpec {
    /// The files of `dir` the corpus is stored in, in content order: `input.txt` first.
    pub fn outputs(&self, dir: &Path) -> Vec<PathBuf> {
        match self.layout {
            Layout::Plain => vec![dir.join(INPUT_FILE)],
            Layout::ZipSplit { .. } => vec![dir.join(INPUT_FILE), dir.join(TEST_FILE)],
        }
    }

    /// How many bytes of content each output gets (`u64::MAX` for "all the rest").
    pub fn output_limits(&self) -> Vec<u64> {
        match self.layout {
            Layout::Plain => vec![u64::MAX],
            Layout::ZipSplit { test_bytes, .. } => vec![self.size.saturating_sub(test_bytes), u64::MAX],
        }
    }

    /// Where it is downloaded from (or the test override).
    pub fn url(&self) -> String {
        std::env::var(URL_OVERRIDE_ENV).unwrap_or_else(|_| self.url.to_owned())
    }
}
