//! What a `train` run does as it goes: progress, the log, checkpoints, the best model, Ctrl-C,
//! and which checkpoint a failure leaves intact.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{save_checkpoint, CheckpointMeta, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::save_model;
use charrnn_engine::files::tensor_file::CheckpointError;
use charrnn_engine::training::collective::any;
use charrnn_engine::training::run_settings::RunRecord;
use charrnn_engine::training::{Control, EvalReport, Observer, StepReport, Trainer};

use crate::train::progress::Progress;
use crate::train::run_log::RunLog;

/// Prints progress, logs, saves checkpoints and the best model, and stops on Ctrl-C.
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
    /// The last step checkpointed in `out` (the start step when resuming).
    pub last_checkpoint: u64,
    pub intact: IntactCheckpoint,
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
    pub fn checkpoint(&mut self, step: u64, trainer: &Trainer) -> Result<(), CheckpointError> {
        let path = self.out.join(CHECKPOINT_FILE);
        let run = record_json(&self.record, &path)?;
        // Gathered before the write, which holds the Ctrl-C handler's record: in an MPI run the
        // snapshot waits for every rank.
        let snapshot = trainer.snapshot();
        self.intact.write(&self.out, step, || {
            save_checkpoint(&path, &snapshot, &self.vocab, CheckpointMeta::new(step, run))
        })?;
        self.last_checkpoint = step;
        Ok(())
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
        self.log.step(r.step, r.epoch, r.outcome.loss, r.tokens_per_sec, r.lr);
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
            save_model(&self.best, &trainer.model, &self.vocab, record_json(&rec, &self.best)?)?;
        }
        Ok(())
    }

    fn after_step(&mut self, step: u64, trainer: &Trainer) -> Result<Control, CheckpointError> {
        // The log is flushed every step so that it survives a crash.
        self.flush_log();
        let mut stop = agreed_stop(&self.interrupted, trainer);
        if checkpoint_due(step, self.record.checkpoint_every, stop) {
            self.checkpoint(step, trainer)?;
            // A Ctrl-C during the write stops the run now, on the checkpoint just written.
            stop = stop || agreed_stop(&self.interrupted, trainer);
        }
        Ok(if stop { Control::Stop } else { Control::Continue })
    }

    fn stop_requested(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// `record` as JSON for the file `path`: a record that cannot be written fails the save rather
/// than leaving a checkpoint without settings, which could not be resumed.
fn record_json(record: &RunRecord, path: &Path) -> Result<serde_json::Value, CheckpointError> {
    record.to_json().map_err(|e| CheckpointError::Unrecordable { path: path.to_path_buf(), reason: e.to_string() })
}

/// Whether the run stops after this step: a Ctrl-C seen by any rank (each rank of an MPI run
/// gets the signal, not always before the same step), so that every rank stops at the same one.
fn agreed_stop(interrupted: &AtomicBool, trainer: &Trainer) -> bool {
    any(trainer.group(), interrupted.load(Ordering::SeqCst))
}

/// Whether a checkpoint is written after `step`: every `every` steps, and on a stop. Every rank
/// decides alike, since writing one gathers the carried state from all of them.
fn checkpoint_due(step: u64, every: u64, stop: bool) -> bool {
    stop || (every > 0 && step.is_multiple_of(every))
}

/// What every rank of an MPI run but rank 0 does as training goes: no output and no files, but
/// its part in each checkpoint (the gathered carried state) and in the decision to stop.
pub struct FollowerObserver {
    pub interrupted: Arc<AtomicBool>,
    pub checkpoint_every: u64,
    /// The last step checkpointed, as rank 0 counts it.
    pub last_checkpoint: u64,
}

impl FollowerObserver {
    /// The final checkpoint's gather, when rank 0 writes one (see `train_cmd::finish`).
    pub fn finish(&mut self, last_step: u64, trainer: &Trainer) {
        if last_step > self.last_checkpoint {
            drop(trainer.snapshot());
        }
    }
}

impl Observer for FollowerObserver {
    type Error = Infallible;

    fn on_step(&mut self, _report: &StepReport) {}

    fn on_eval(&mut self, _report: &EvalReport, _trainer: &Trainer) -> Result<(), Infallible> {
        Ok(())
    }

    fn after_step(&mut self, step: u64, trainer: &Trainer) -> Result<Control, Infallible> {
        let mut stop = agreed_stop(&self.interrupted, trainer);
        if checkpoint_due(step, self.checkpoint_every, stop) {
            drop(trainer.snapshot());
            self.last_checkpoint = step;
            // As rank 0 decides after its write (`TrainObserver::after_step`).
            stop = stop || agreed_stop(&self.interrupted, trainer);
        }
        Ok(if stop { Control::Stop } else { Control::Continue })
    }

    fn stop_requested(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}
