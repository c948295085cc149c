//! What is on disk: whether a corpus directory holds the verified corpus.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use charrnn_fileio::chunks::{for_each_chunk, hex};
use sha2::{Digest, Sha256};

use crate::registry::CorpusSpec;

/// The state of a corpus directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    /// `input.txt` is absent: fetch it.
    Missing,
    /// Every output is present and the content matches the size and SHA-256.
    Verified,
    /// `input.txt` is there, but something is wrong (the reason).
    Bad(String),
}

/// Hashes the outputs of `spec` in `dir`, in order, as one stream.
pub fn check_installed(spec: &CorpusSpec, dir: &Path) -> Installed {
    let outputs = spec.outputs(dir);
    if !outputs[0].exists() {
        return Installed::Missing;
    }
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    for path in &outputs {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Installed::Bad(format!("'{}' is missing", path.display()));
            }
            Err(e) => return Installed::Bad(format!("cannot read '{}': {e}", path.display())),
        };
        match hash_reader(file, &mut hasher) {
            Ok(n) => total += n,
            Err(e) => return Installed::Bad(format!("cannot read '{}': {e}", path.display())),
        }
    }
    let got = hex(&hasher.finalize());
    if total == spec.size && got == spec.sha256 {
        Installed::Verified
    } else {
        Installed::Bad(format!(
            "its content is {total} bytes with sha256 {got}, expected {} bytes with sha256 {}",
            spec.size, spec.sha256
        ))
    }
}

fn hash_reader(r: impl Read, hasher: &mut Sha256) -> io::Result<u64> {
    for_each_chunk(
        r,
        1 << 16,
        |e| e,
        |bytes| {
            hasher.update(bytes);
            Ok(())
        },
    )
}
