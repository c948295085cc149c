//! The outputs of a corpus being written, in temporary files next to their destinations.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_fileio::atomic_file::PendingFile;
use charrnn_fileio::chunks::hex;
use sha2::{Digest, Sha256};

use crate::registry::CorpusSpec;

/// The outputs of a corpus being written: content bytes are routed to the temporary output
/// files by offset, hashed on the way, and renamed into place by [`Staged::commit`] only when
/// the whole content matches.
pub struct Staged {
    spec: CorpusSpec,
    temps: Vec<PendingFile>,
    dests: Vec<PathBuf>,
    /// Bytes each output takes before the next one starts.
    limits: Vec<u64>,
    /// The output being written, and how many bytes it has.
    current: usize,
    in_current: u64,
    total: u64,
    hasher: Sha256,
}

impl Staged {
    pub fn new(spec: &CorpusSpec, dir: &Path) -> Result<Staged> {
        let dests = spec.outputs(dir);
        let temps = dests
            .iter()
            .map(|d| PendingFile::create(d).with_context(|| format!("cannot write in '{}'", dir.display())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Staged {
            spec: *spec,
            temps,
            dests,
            limits: spec.output_limits(),
            current: 0,
            in_current: 0,
            total: 0,
            hasher: Sha256::new(),
        })
    }

    /// Appends content; fails as soon as the content is longer than the corpus.
    pub fn write(&mut self, mut bytes: &[u8], source: &str) -> Result<()> {
        self.total += bytes.len() as u64;
        if self.total > self.spec.size {
            bail!(
                "'{source}' is not {}: it is longer than the expected {} bytes; nothing was written",
                self.spec.name,
                self.spec.size
            );
        }
        self.hasher.update(bytes);
        while !bytes.is_empty() {
            let room = self.limits[self.current] - self.in_current;
            if room == 0 {
                self.current += 1;
                self.in_current = 0;
                continue;
            }
            let n = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let temp = &mut self.temps[self.current];
            let path = temp.temp_path().to_path_buf();
            temp.writer().write_all(&bytes[..n]).with_context(|| format!("cannot write '{}'", path.display()))?;
            self.in_current += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Verifies size and SHA-256, then renames the outputs into place: `input.txt` last, so
    /// its presence means the corpus is complete. On a mismatch every temporary file is
    /// deleted.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let got = hex(&std::mem::take(&mut self.hasher).finalize());
        if self.total != self.spec.size || got != self.spec.sha256 {
            bail!(
                "checksum mismatch for {}: expected sha256 {} ({} bytes), got {got} ({} bytes); nothing was written",
                self.spec.name,
                self.spec.sha256,
                self.spec.size,
                self.total
            );
        }
        // An output already there (an interrupted fetch renames `input.txt` last and may leave
        // `test.txt`) is replaced only by the same bytes: any other file is not this corpus's.
        for (temp, dest) in self.temps.iter_mut().zip(&self.dests) {
            let tmp = temp.temp_path().to_path_buf();
            temp.writer().flush().with_context(|| format!("cannot write '{}'", tmp.display()))?;
            match fs::symlink_metadata(dest) {
                Err(_) => {}
                Ok(meta) if meta.is_file() && same_content(&tmp, dest)? => {}
                Ok(_) => bail!(
                    "'{}' is there already and is not this {}'s; nothing was written: move it away and fetch again",
                    dest.display(),
                    self.spec.name
                ),
            }
        }
        // The last output first: `input.txt`, renamed last, marks a complete corpus.
        for (temp, dest) in self.temps.drain(..).zip(&self.dests).rev().collect::<Vec<_>>() {
            let tmp = temp.temp_path().to_path_buf();
            temp.commit().with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), dest.display()))?;
        }
        Ok(self.dests.clone())
    }
}

/// Whether two files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open = |path: &Path| File::open(path).with_context(|| format!("cannot read '{}'", path.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fa.read(&mut ba).with_context(|| format!("cannot read '{}'", a.display()))?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n]).with_context(|| format!("cannot read '{}'", b.display()))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
