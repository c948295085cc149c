//! `bench --trace FILE`: the timed steps' spans as a Chrome trace-event file, which Perfetto
//! (ui.perfetto.dev) and chrome://tracing open, as they open PyTorch profiler traces: one track
//! per batch part (each runs on its own pool thread) and one for the optimiser, one complete
//! event per stretch of a phase, tagged with its step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use charrnn_engine::model::phase_times::Span;
use charrnn_fileio::atomic_file::PendingFile;
use serde_json::{json, Value};

/// The trace file's destination, tried before the first step: its temporary file beside it is
/// created and removed again, so that a path that cannot be written (a missing or read-only
/// directory, a device, a FIFO, a directory) is refused before the benchmark runs rather than
/// after it, and a benchmark stopped by Ctrl-C (which `bench` does not catch) leaves nothing
/// behind. The file is written at the end the same way, checked again then.
pub struct TraceFile {
    path: PathBuf,
}

impl TraceFile {
    /// Refuses a trace path that cannot be written, before any step runs, and opens its
    /// temporary file.
    pub fn create(path: &Path) -> Result<TraceFile> {
        if path.is_dir() {
            bail!("--trace '{}' is a directory; name a file, e.g. trace.json", path.display());
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("cannot write the trace '{}': the directory '{}' does not exist", path.display(), dir.display());
        }
        // Dropped at once: the temporary file is removed.
        PendingFile::create(path).with_context(|| format!("cannot write the trace '{}'", path.display()))?;
        Ok(TraceFile { path: path.to_path_buf() })
    }

    /// The path the user named.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The events of a trace so far.
pub struct Trace {
    /// Time zero of the file.
    origin: Instant,
    events: Vec<Value>,
}

impl Trace {
    /// A trace of a trainer with `parts` batch parts (tracks `0..parts`, the optimiser on
    /// track `parts`), starting now.
    pub fn new(parts: usize) -> Trace {
        let name = |track: usize| match track {
            t if t == parts => "optimiser (calling thread)".to_owned(),
            t => format!("batch part {t}"),
        };
        let events = (0..=parts)
            .map(|track| json!({ "name": "thread_name", "ph": "M", "pid": 1, "tid": track, "args": { "name": name(track) } }))
            .collect();
        Trace { origin: Instant::now(), events }
    }

    /// Adds `span` of track `track`, recorded during step `step` (1-based, timed steps only).
    pub fn add(&mut self, step: u32, track: usize, span: Span) {
        let micros = |t: Instant| t.saturating_duration_since(self.origin).as_secs_f64() * 1e6;
        self.events.push(json!({
            "name": span.phase.name(),
            "cat": "step",
            "ph": "X",
            "ts": micros(span.start),
            "dur": (span.end - span.start).as_secs_f64() * 1e6,
            "pid": 1,
            "tid": track,
            "args": { "step": step },
        }));
    }

    /// Writes the file (atomically: a reader never sees half of it).
    pub fn write(&self, file: TraceFile) -> Result<()> {
        let json = json!({ "traceEvents": self.events, "displayTimeUnit": "ms" });
        let failed = |path: &Path| format!("cannot write the trace '{}'", path.display());
        let mut pending = PendingFile::create(&file.path).with_context(|| failed(&file.path))?;
        serde_json::to_writer(pending.writer(), &json)
            .map_err(std::io::Error::from)
            .and_then(|()| pending.writer().flush())
            .with_context(|| failed(&file.path))?;
        pending.commit().with_context(|| failed(&file.path))
    }
}
