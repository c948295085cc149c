//! Atomic file replacement: write a temporary file in the destination's directory, fsync it,
//! rename it over the destination, then fsync the directory. A crash at any instant leaves
//! either the old file or the new one, never a torn one; at worst a stray `.NAME.tmp-*` file,
//! which is never read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path next to `dest` (same directory, so `rename` is atomic), unique within
/// this process and across processes.
fn temp_path_for(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".to_owned());
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(".{name}.tmp-{}-{unique}", std::process::id()))
}

/// A file being written under a temporary name next to its destination: [`PendingFile::commit`]
/// fsyncs it and renames it over the destination; dropped uncommitted, it is removed.
pub struct PendingFile {
    writer: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Creates the temporary file for `dest` (in `dest`'s directory, so the rename is atomic).
    pub fn create(dest: &Path) -> io::Result<PendingFile> {
        let tmp = temp_path_for(dest);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(PendingFile {
            writer: BufWriter::with_capacity(1 << 20, file),
            tmp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Where the bytes go until the commit.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// The temporary path (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes, fsyncs, renames over the destination and fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_all()?;
        fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        sync_parent_dir(&self.dest);
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Atomically replaces `dest` with what `write` writes. `write` gets a buffered writer and the
/// temporary path (for its own error messages); this function's own I/O errors go through
/// `on_io`.
pub fn write_atomic_with<T, E>(
    dest: &Path,
    on_io: impl Fn(io::Error) -> E,
    write: impl FnOnce(&mut BufWriter<File>, &Path) -> Result<T, E>,
) -> Result<T, E> {
    let mut pending = PendingFile::create(dest).map_err(&on_io)?;
    let tmp = pending.temp_path().to_path_buf();
    let value = write(pending.writer(), &tmp)?;
    pending.commit().map_err(&on_io)?;
    Ok(value)
}

/// Atomically replaces `dest` with `bytes`.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(dest, |e| e, |w, _| w.write_all(bytes))
}

/// Makes a rename durable by fsyncing the directory. Best effort: not every platform or file
/// system allows opening a directory for this, and the rename itself is already atomic.
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"good").unwrap();
        let r: io::Result<()> = write_atomic_with(
            &path,
            |e| e,
            |w, _| {
                w.write_all(b"half")?;
                Err(io::Error::other("disk full"))
            },
        );
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
