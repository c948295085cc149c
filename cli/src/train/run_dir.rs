//! A run's output directory (`train --out`): one run at a time, and nothing of another run
//! touched.
//!
//! The directory is locked for the whole run with an advisory lock on `.charrnn-fast.lock`
//! (released by the kernel when the process ends, however it ends, so a killed run never
//! blocks the next). A directory that holds another run's files is refused unless the user
//! asks to clear it. Temporary files that a dead run left behind are removed once the lock is
//! held: no live run can own them then.
//!
//! A run's files are recognised by what they hold, never by their names alone: a checkpoint or
//! weights file whose header says it is ours, a `config.json` with our format key, a `log.csv`
//! with our exact header, a `loss.svg` with our marker, a `vocab.json` in our format. Only
//! those are ever removed. A file that has the name of one the run writes but is not ours (the
//! user's own `config.json`) would be replaced by the run, so the run is refused instead.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{is_checkpoint, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::{is_model_config, is_model_weights, CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE};

use crate::train::run_log::{is_log, is_plot, LOG_FILE, PLOT_FILE};

const LOCK_FILE: &str = ".charrnn-fast.lock";
/// Where the best validation model goes.
pub const BEST_DIR: &str = "best";

/// The files a run writes into its directory (besides `best/`), and only those.
const RUN_FILES: &[&str] = &[CHECKPOINT_FILE, WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE, LOG_FILE, PLOT_FILE];
/// The files of a model directory (`best/`).
const MODEL_FILES: &[&str] = &[WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE];

/// Whether the file at `path`, which has the name `name` of a file a run writes, is this
/// program's: a regular file (not a link) holding what a run writes there.
fn is_ours(name: &str, path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && match name {
            CHECKPOINT_FILE => is_checkpoint(path),
            WEIGHTS_FILE => is_model_weights(path),
            CONFIG_FILE => is_model_config(path),
            VOCAB_FILE => Vocab::load(path).is_ok(),
            LOG_FILE => is_log(path),
            PLOT_FILE => is_plot(path),
            _ => false,
        }
}

/// Whether `name` is that of a temporary file of an atomic write of a run file
/// (`.NAME.tmp-PID-N`, see `charrnn_fileio::atomic_file`): the exact pattern, not any name
/// that looks alike, which could be the user's.
fn is_run_temporary(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix('.').and_then(|rest| rest.rsplit_once(".tmp-")).is_some_and(|(file, unique)| {
        RUN_FILES.contains(&file) && unique.split_once('-').is_some_and(|(pid, n)| digits(pid) && digits(n))
    })
}

/// What a run directory holds under the names a run writes, by whose it is. Paths are
/// relative to the directory (`best/config.json`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// This program's files.
    pub ours: Vec<String>,
    /// Files (or directories, links, …) with those names that are not this program's: a run
    /// would replace them.
    pub in_the_way: Vec<String>,
    /// The file of ours that makes the directory hold a run, something to continue or to keep
    /// (a checkpoint or a model, `best/` included); `None` when only leftovers of a run that
    /// saved nothing are there (a log, a plot).
    pub run: Option<String>,
}

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
        // The lock file is truncated to record the holder: only a regular file is (a link
        // could lead anywhere, a FIFO is no lock).
        if fs::symlink_metadata(&lock_path).is_ok_and(|m| !m.is_file()) {
            bail!("'{}' is not a lock file of this program (not a regular file); remove it", lock_path.display());
        }
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

    /// What the directory holds under the names a run writes, recognised by content.
    pub fn survey(&self) -> Survey {
        survey_of(&self.path)
    }

    /// Removes this program's files of a run (recognised again now, by content), and `best/`
    /// if that leaves it empty. Returns what was left in `best/` (relative paths): files that
    /// are not this program's.
    pub fn clear(&self) -> Result<Vec<String>> {
        for relative in self.survey().ours {
            let path = self.path.join(&relative);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot clear '{}'", path.display()));
                }
                _ => {}
            }
        }
        let best = self.best();
        if !fs::symlink_metadata(&best).is_ok_and(|m| m.is_dir()) {
            return Ok(vec![]);
        }
        let mut left: Vec<String> = fs::read_dir(&best)
            .with_context(|| format!("cannot read '{}'", best.display()))?
            .flatten()
            .map(|e| format!("{BEST_DIR}/{}", e.file_name().to_string_lossy()))
            .collect();
        left.sort();
        if left.is_empty() {
            fs::remove_dir(&best).with_context(|| format!("cannot clear '{}'", best.display()))?;
        }
        Ok(left)
    }

    /// Removes temporary files of atomic writes that a dead run left (`.NAME.tmp-PID-N`, in
    /// the directory and in `best/`); returns how many.
    pub fn remove_stale_temporaries(&self) -> usize {
        let mut removed = 0;
        for dir in [self.path.clone(), self.best()] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if is_file && is_run_temporary(&name.to_string_lossy()) && fs::remove_file(entry.path()).is_ok() {
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
            charrnn_fileio::atomic_file::write_atomic(&dest.join(name), &bytes)
                .with_context(|| format!("cannot write '{}'", dest.join(name).display()))?;
        }
        Ok(())
    }
}

/// Whether two paths name the same file or directory: resolved when both exist (links,
/// `..`), else compared as absolute paths (a file that is gone).
pub fn same_path(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// What `dir` holds under the names a run writes, recognised by content (it need not be
/// locked: `train --dry-run` looks without locking).
pub fn survey_of(dir: &Path) -> Survey {
    let mut survey = Survey::default();
    let mut look = |relative: String, name: &str, path: &Path| match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ if is_ours(name, path) => survey.ours.push(relative),
        _ => survey.in_the_way.push(relative),
    };
    for name in RUN_FILES {
        look((*name).to_owned(), name, &dir.join(name));
    }
    let best = dir.join(BEST_DIR);
    match fs::symlink_metadata(&best) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(meta) if meta.is_dir() => {
            for name in MODEL_FILES {
                look(format!("{BEST_DIR}/{name}"), name, &best.join(name));
            }
        }
        _ => survey.in_the_way.push(BEST_DIR.to_owned()),
    }
    let best_weights = format!("{BEST_DIR}/{WEIGHTS_FILE}");
    survey.run = [CHECKPOINT_FILE, WEIGHTS_FILE, best_weights.as_str()]
        .into_iter()
        .find(|file| survey.ours.iter().any(|o| o == file))
        .map(str::to_owned);
    survey
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
    fn clear_removes_only_this_programs_files_and_stale_temporaries_go() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::lock(dir.path()).unwrap();
        assert_eq!(run.survey(), Survey::default());
        fs::create_dir_all(run.best()).unwrap();
        fs::write(dir.path().join(LOG_FILE), "step,epoch,train_loss,val_loss,tokens_per_sec,lr\n1,0,4.1,,9.0,0.002\n")
            .unwrap();
        for name in ["notes.txt", ".model.safetensors.tmp-29496-0"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(run.best().join(".config.json.tmp-1-2"), b"x").unwrap();
        fs::write(run.best().join("photo.jpg"), b"x").unwrap();
        fs::write(run.best().join(".notes.tmp-mine"), b"x").unwrap();
        let survey = run.survey();
        assert_eq!(survey, Survey { ours: vec![LOG_FILE.to_owned()], in_the_way: vec![], run: None });
        assert_eq!(run.remove_stale_temporaries(), 2);
        assert_eq!(run.clear().unwrap(), ["best/.notes.tmp-mine", "best/photo.jpg"]);
        assert_eq!(run.survey(), Survey::default());
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [LOCK_FILE, BEST_DIR, "notes.txt"]);
        fs::remove_file(run.best().join("photo.jpg")).unwrap();
        fs::remove_file(run.best().join(".notes.tmp-mine")).unwrap();
        assert!(run.clear().unwrap().is_empty());
        assert!(!run.best().exists());
    }

    /// A lock file that is a link is not followed (it could lead to any file, which the lock
    /// would truncate).
    #[test]
    fn a_linked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, b"keep").unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&target, out.join(LOCK_FILE)).unwrap();
        let e = format!("{:#}", RunDir::lock(&out).err().unwrap());
        assert!(e.contains("is not a lock file of this program"), "{e}");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    /// A file with a run's name that is not this program's is in the way, never ours.
    #[test]
    fn a_foreign_file_with_a_run_files_name_is_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::lock(dir.path()).unwrap();
        fs::write(dir.path().join(CONFIG_FILE), br#"{"lr": 0.1}"#).unwrap();
        fs::write(dir.path().join(LOG_FILE), "step,loss\n").unwrap();
        fs::write(dir.path().join(BEST_DIR), "a file").unwrap();
        let survey = run.survey();
        assert_eq!(survey.in_the_way, [CONFIG_FILE, LOG_FILE, BEST_DIR]);
        assert!(survey.ours.is_empty() && survey.run.is_none());
        assert!(run.clear().unwrap().is_empty());
        assert!(dir.path().join(CONFIG_FILE).is_file() && dir.path().join(LOG_FILE).is_file());
    }
}
