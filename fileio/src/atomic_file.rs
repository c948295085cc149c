//! Atomic file replacement: write a temporary file in the destination's directory, fsync it,
//! rename it over the destination, then fsync the directory. A crash at any instant leaves
//! either the old file or the new one, never a torn one; at worst a stray `.NAME.tmp-*` file,
//! which is never read.
//!
//! Only a regular file (or nothing) is ever replaced: a destination that is a directory, a
//! FIFO, a device or a socket is refused before anything is written, and again just before
//! the rename (renaming over `/dev/null` would turn the device node into a plain file). A
//! symbolic link is followed: the file it points to is replaced and the link stays, as a
//! shell's `>` would write through it (the same checks apply to the file it points to).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many symbolic links are followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The file a write to `dest` replaces: `dest` itself, or the end of the chain of symbolic
/// links it starts, which may not exist yet. An error names what is there when it is not a
/// regular file.
pub fn resolve_destination(dest: &Path) -> io::Result<PathBuf> {
    let mut path = dest.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(e),
            Ok(meta) => meta,
        };
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(path);
        }
        if !kind.is_symlink() {
            return Err(not_replaceable(dest, &path, &kind));
        }
        let target = fs::read_link(&path)?;
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    Err(io::Error::other(format!("'{}' is a chain of more than {MAX_LINKS} symbolic links", dest.display())))
}

/// The refusal of a destination that is not a regular file, saying what it is (and where a
/// link led).
fn not_replaceable(dest: &Path, found: &Path, kind: &fs::FileType) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    };
    let link = if found == dest { String::new() } else { format!(" (a symbolic link to '{}')", found.display()) };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("'{}'{link} is {what}; only a regular file is replaced, so nothing was written", dest.display()),
    )
}

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
    /// Creates the temporary file for `dest` (in the directory of the file it replaces, so
    /// the rename is atomic). Refuses a `dest` that is not a regular file, nothing or a link
    /// to one of those (see the module documentation), before creating anything; creating the
    /// temporary file also shows at once whether the directory can be written.
    pub fn create(dest: &Path) -> io::Result<PendingFile> {
        let dest = resolve_destination(dest)?;
        let tmp = temp_path_for(&dest);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(PendingFile { writer: BufWriter::with_capacity(1 << 20, file), tmp, dest, committed: false })
    }

    /// Where the bytes go until the commit.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// The temporary path (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes, fsyncs, renames over the destination and fsyncs the directory. What is at the
    /// destination is checked again: something else may have appeared there since
    /// [`PendingFile::create`] (a long benchmark writes its trace at the end).
    pub fn commit(mut self) -> io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_all()?;
        if let Ok(meta) = fs::symlink_metadata(&self.dest) {
            if !meta.file_type().is_file() {
                return Err(not_replaceable(&self.dest, &self.dest, &meta.file_type()));
            }
        }
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

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// A FIFO, a directory, and a link to a character device are refused before anything is
    /// written (the device through a link only: no test writes to a real device node), and
    /// left as they were.
    #[test]
    fn only_a_regular_file_is_replaced() {
        use std::os::unix::fs::{symlink, FileTypeExt};
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = write_atomic(&fifo, b"x").unwrap_err().to_string();
        assert!(e.contains("is a FIFO (named pipe)") && e.contains("fifo"), "{e}");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let e = write_atomic(&sub, b"x").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert!(sub.is_dir());

        let null = dir.path().join("null");
        symlink("/dev/null", &null).unwrap();
        let e = PendingFile::create(&null).err().unwrap().to_string();
        assert!(e.contains("a symbolic link to '/dev/null'") && e.contains("is a character device"), "{e}");
        assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        assert_eq!(names(dir.path()), ["fifo", "null", "sub"]);
    }

    /// A link to a regular file, or to where none is yet, is written through: the link stays
    /// and the file it names gets the bytes.
    #[test]
    fn a_symbolic_link_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/t.json");
        fs::write(&target, b"old").unwrap();
        let link = dir.path().join("t.json");
        std::os::unix::fs::symlink("real/t.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");

        let dangling = dir.path().join("d.json");
        std::os::unix::fs::symlink("real/d.json", &dangling).unwrap();
        write_atomic(&dangling, b"made").unwrap();
        assert_eq!(fs::read(dir.path().join("real/d.json")).unwrap(), b"made");
        assert_eq!(names(&dir.path().join("real")), ["d.json", "t.json"]);
    }

    /// Something other than a regular file that appears at the destination while the file is
    /// being written is not replaced at the commit either.
    #[test]
    fn the_destination_is_checked_again_at_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("t.json");
        let mut pending = PendingFile::create(&dest).unwrap();
        pending.writer().write_all(b"x").unwrap();
        mkfifo(&dest);
        let e = pending.commit().unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        assert_eq!(names(dir.path()), ["t.json"]);
    }
}
