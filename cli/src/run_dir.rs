//! A run's output directory (`train --out`): one run at a time, and nothing of another run
//! touched.
//!
//! The directory is locked for the whole run with an advisory lock on `.charrnn-fast.lock`
//! (released by the kernel when the process ends, however it ends, so a killed run never
//! blocks the next). A directory that holds another run's files is refused unless the user
//! asks to clear it. Temporary files that a dead run left behind are removed once the lock is
//! held: no live run can own them then.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::checkpoint::CHECKPOINT_FILE;
use charrnn_engine::model_dir::{CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE};

use crate::run_log::{LOG_FILE, PLOT_FILE};

const LOCK_FILE: &str = ".charrnn-fast.lock";
/// Where the best validation model goes.
pub const BEST_DIR: &str = "best";

/// The files and directories a run writes into its directory, and only those.
const RUN_FILES: &[&str] = &[CHECKPOINT_FILE, WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE, LOG_FILE, PLOT_FILE, BEST_DIR];
/// The files of a model directory (`best/`).
const MODEL_FILES: &[&str] = &[WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE];

/// A locked output directory; the lock lasts as long as this value.
pub struct RunDir {
    path: PathBuf,
    /// Whether this run created the directory (then a run that fails before writing anything
    /// removes it again instead of leaving an empty directory behind).
    created: bool,
    _lock: File,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let only_the_lock = fs::read_dir(&self.path).is_ok_and(|entries| {
            entries.flatten().map(|e| e.file_name()).eq(std::iter::once(std::ffi::OsString::from(LOCK_FILE)))
        });
        if self.created && only_the_lock {
            let _ = fs::remove_file(self.path.join(LOCK_FILE));
            let _ = fs::remove_dir(&self.path);
        }
    }
}

impl RunDir {
    /// Creates `path` if needed and locks it; fails at once if another run holds it.
    pub fn lock(path: &Path) -> Result<RunDir> {
        let created = !path.exists();
        fs::create_dir_all(path).with_context(|| format!("cannot create --out '{}'", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot write in --out '{}'", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                bail!("'{}' is in use by another charrnn-fast run{pid}; choose another --out", path.display());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock --out '{}'", path.display()));
            }
        }
        // Who holds it, for the message above; a failure here only loses that detail.
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| write!(file, "{}", std::process::id()));
        Ok(RunDir { path: path.to_path_buf(), created, _lock: file })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `best/` inside it.
    pub fn best(&self) -> PathBuf {
        self.path.join(BEST_DIR)
    }

    /// Removes the files a run writes (and nothing else).
    pub fn clear(&self) -> Result<()> {
        for name in RUN_FILES {
            let path = self.path.join(name);
            let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot clear '{}'", path.display()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes temporary files of atomic writes that a dead run left (`.NAME.tmp-PID-N`, in
    /// the directory and in `best/`); returns how many.
    pub fn remove_stale_temporaries(&self) -> usize {
        let mut removed = 0;
        for dir in [self.path.clone(), self.best()] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp-") && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Copies the best model of the run in `from` into this directory's `best/`, for a run
    /// resumed into a new directory (its best validation loss comes along in the settings).
    pub fn adopt_best(&self, from: &Path) -> Result<()> {
        let source = from.join(BEST_DIR);
        if !MODEL_FILES.iter().all(|name| source.join(name).is_file()) {
            return Ok(());
        }
        let dest = self.best();
        fs::create_dir_all(&dest).with_context(|| format!("cannot create '{}'", dest.display()))?;
        for name in MODEL_FILES {
            let bytes = fs::read(source.join(name))
                .with_context(|| format!("cannot read '{}'", source.join(name).display()))?;
            charrnn_engine::atomic_file::write_atomic(&dest.join(name), &bytes)
                .with_context(|| format!("cannot write '{}'", dest.join(name).display()))?;
        }
        Ok(())
    }
}

/// The first file of a run found in `dir`, if any (locked or not: `train --dry-run` looks
/// without locking).
pub fn run_file_in(dir: &Path) -> Option<&'static str> {
    RUN_FILES.iter().copied().find(|name| dir.join(name).exists())
}

/// Whether two paths name the same file or directory: resolved when both exist (links,
/// `..`), else compared as absolute paths (a file that is gone).
pub fn same_path(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_and_a_released_one_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = RunDir::lock(&out).unwrap();
        let second = RunDir::lock(&out).err().expect("a second lock must fail");
        let text = format!("{second:#}");
        assert!(text.contains("is in use by another charrnn-fast run"), "{text}");
        assert!(text.contains(&format!("(pid {})", std::process::id())), "{text}");
        drop(first);
        RunDir::lock(&out).unwrap();
    }

    #[test]
    fn clear_removes_only_run_files_and_stale_temporaries_go() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::lock(dir.path()).unwrap();
        assert_eq!(run_file_in(dir.path()), None);
        fs::create_dir_all(run.best()).unwrap();
        for name in [LOG_FILE, "notes.txt", ".model.safetensors.tmp-29496-0"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(run.best().join(".config.json.tmp-1-2"), b"x").unwrap();
        assert_eq!(run_file_in(dir.path()), Some(LOG_FILE));
        assert_eq!(run.remove_stale_temporaries(), 2);
        run.clear().unwrap();
        assert_eq!(run_file_in(dir.path()), None);
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [LOCK_FILE, "notes.txt"]);
    }
}
