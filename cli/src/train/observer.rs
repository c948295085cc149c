//! What a `train` run shows and writes as it goes: progress, the log, the checkpoints the run
//! hands rank 0, the best model, the Ctrl-C flag the run polls, and which checkpoint a failure
//! leaves intact. When to checkpoint and stop, and every rank's part in it, is the engine's run.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{save_checkpoint, CheckpointMeta, TrainingSnapshot, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::save_model;
use charrnn_engine::files::tensor_file::CheckpointError;
use charrnn_engine::training::run_settings::RunRecord;
use charrnn_engine::training::{EvalReport, Observer, StepReport, Trainer};

use crate::train::progress::Progress;
use crate::train::run_log::RunLog;

/// Rank 0's observer: prints progress, logs, saves checkpoints and the best model, and asks for
/// a stop on Ctrl-C.
pub struct TrainObserver {
    pub progress: Progress,
    pub log: RunLog,
    /// Whether writing `log.csv` has failed (warned once, not at every step).
    pub log_failed: bool,
    pub out: PathBuf,
    pub best: PathBuf,
    pub vocab: Vocab,
    pub record: RunRecord,
    pub interrupted: Arc<AtomicBool>,
    pub intact: IntactCheckpoint,
    /// The run's time after the last step, and when that was: what the time used is now.
    pub clock: Option<(Duration, Instant)>,
    /// The run ended on its time budget: it has used all of it (what is left is what the end
    /// of the run did not need), and a resume has nothing left to do.
    pub budget_spent: bool,
}

/// The newest checkpoint on disk, which a failure or a second Ctrl-C leaves intact: the one
/// resumed from until this run has written its own. Shared with the Ctrl-C handler.
#[derive(Clone, Default)]
pub struct IntactCheckpoint(Arc<Mutex<Option<(PathBuf, u64)>>>);

impl IntactCheckpoint {
    pub fn set(&self, dir: &Path, step: u64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((dir.to_path_buf(), step));
    }

    /// Writes the checkpoint of `step` in `dir` through `write` and records it, holding the
    /// record all along: a second Ctrl-C during the write waits for it, and then names the
    /// checkpoint on disk (the new one once its rename is done, else the one before).
    pub fn write<E>(&self, dir: &Path, step: u64, write: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut intact = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write()?;
        *intact = Some((dir.to_path_buf(), step));
        Ok(())
    }

    pub fn describe(&self) -> String {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((dir, step)) => format!(
                "the checkpoint of step {step} in '{}' is intact: continue with `charrnn-fast train --resume {}`",
                dir.display(),
                dir.display()
            ),
            None => "no checkpoint had been written yet".to_owned(),
        }
    }
}

impl TrainObserver {
    /// Records in the run's settings the time it has used until now (earlier sessions
    /// included), so that a resumed run's clock, and budget, go on from there.
    pub fn record_time_used(&mut self) {
        if let Some((elapsed, at)) = self.clock {
            self.record.time_used_secs = (elapsed + at.elapsed()).as_secs_f64();
        }
        if let Some(budget) = self.record.time_budget_secs.filter(|_| self.budget_spent) {
            self.record.time_used_secs = self.record.time_used_secs.max(budget);
        }
    }

    /// Which checkpoint survives a failure now, and how to continue from it.
    pub fn intact(&self) -> String {
        self.intact.describe()
    }

    /// A failed write as the error the run ends with: the cause, then what survives.
    pub fn failed(&self, e: CheckpointError) -> anyhow::Error {
        anyhow!("{:#}; {}", anyhow::Error::from(e), self.intact())
    }

    pub fn flush_log(&mut self) {
        if let Err(e) = self.log.flush() {
            if !std::mem::replace(&mut self.log_failed, true) {
                self.progress.println(&format!("warning: {e:#} (training goes on; checkpoints are written apart)"));
            }
        }
    }
}

impl Observer for TrainObserver {
    type Error = CheckpointError;

    fn on_step(&mut self, r: &StepReport) {
        self.progress.on_step(r);
        self.log.step(r.step, r.epoch, r.outcome.loss, r.tokens_per_sec, r.lr, r.elapsed);
        self.clock = Some((r.elapsed, Instant::now()));
    }

    fn on_eval(&mut self, r: &EvalReport, trainer: &Trainer) -> Result<(), CheckpointError> {
        self.progress.on_eval(r);
        self.log.eval(r.step, r.loss);
        if self.record.best_val_loss.is_none_or(|best| r.loss < best) {
            self.record.best_val_loss = Some(r.loss);
            let mut rec = self.record.clone();
            rec.steps = r.step;
            rec.val_loss = Some(r.loss);
            rec.val_loss_step = Some(r.step);
            save_model(&self.best, trainer.model(), &self.vocab, record_json(&rec, &self.best)?)?;
        }
        Ok(())
    }

    fn after_step(&mut self, _step: u64) {
        // The log is flushed every step so that it survives a crash.
        self.flush_log();
    }

    fn save_checkpoint(&mut self, step: u64, snapshot: &TrainingSnapshot<'_>) -> Result<(), CheckpointError> {
        let path = self.out.join(CHECKPOINT_FILE);
        self.record_time_used();
        let run = record_json(&self.record, &path)?;
        // The snapshot was gathered before the write, which holds the Ctrl-C handler's record:
        // in an MPI run gathering waits for every rank.
        self.intact
            .write(&self.out, step, || save_checkpoint(&path, snapshot, &self.vocab, CheckpointMeta::new(step, run)))
    }

    fn stop_requested(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn budget_spent(&mut self) {
        self.budget_spent = true;
    }
}

/// `record` as JSON for the file `path`: a record that cannot be written fails the save rather
/// than leaving a checkpoint without settings, which could not be resumed.
fn record_json(record: &RunRecord, path: &Path) -> Result<serde_json::Value, CheckpointError> {
    record.to_json().map_err(|e| CheckpointError::Unrecordable { path: path.to_path_buf(), reason: e.to_string() })
}

/// What every rank of an MPI run but rank 0 does as training goes: no output and no files. Its
/// part in each checkpoint and in the decision to stop is the run's; it only answers whether a
/// Ctrl-C reached this rank.
pub struct FollowerObserver {
    pub interrupted: Arc<AtomicBool>,
}

impl Observer for FollowerObserver {
    type Error = Infallible;

    /// Never called: the run hands checkpoints to rank 0 alone.
    fn save_checkpoint(&mut self, _step: u64, _snapshot: &TrainingSnapshot<'_>) -> Result<(), Infallible> {
        Ok(())
    }

    fn stop_requested(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}
