//! The run: the learning-rate schedule, the loop over steps and epochs with its evaluations
//! and checkpoints, the stop every process agrees on, and what it reports to an [`Observer`].
//! Every process of a group runs the same loop, so each makes the same collective calls in the
//! same order; the observer of process 0 alone is handed the checkpoints to write.

use std::time::{Duration, Instant};

use crate::data::Batcher;
use crate::files::checkpoint::TrainingSnapshot;
use crate::training::collective::{any, from_first};
use crate::training::time_budget::{BudgetPacer, CosineOverBudget, RunClock, TimeBudget};
use crate::training::trainer::{StepOutcome, TrainError, Trainer};

/// Learning-rate decay as char-rnn does it: after every epoch from `after_epochs` on (at the
/// earliest after the first), the rate is multiplied by `factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrDecay {
    /// Multiplier per epoch (in (0, 1]).
    pub factor: f64,
    /// Epochs at the base rate before decaying.
    pub after_epochs: u64,
}

impl LrDecay {
    /// The rate during 1-based epoch `epoch` for base rate `base`. Stateless, so a resumed run
    /// gets the same rate.
    pub fn rate(&self, base: f64, epoch: u64) -> f64 {
        let decays = epoch.saturating_sub(self.after_epochs.max(1));
        base * self.factor.powi(decays.min(i32::MAX as u64) as i32)
    }
}

/// How long to train, when to evaluate and when to checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Steps already done (0 for a fresh run; the checkpoint's step when resuming).
    pub start_step: u64,
    /// Total steps; epochs follow from the number of batches.
    pub total_steps: u64,
    /// Evaluate every this many steps as well as at each epoch end; 0: only at epoch ends.
    pub eval_every: u64,
    /// Checkpoint every this many steps as well as after the last step and on a stop; 0: only
    /// then.
    pub checkpoint_every: u64,
    /// Base learning rate.
    pub lr: f64,
    /// Optional decay of the learning rate by epoch.
    pub lr_decay: Option<LrDecay>,
    /// A wall-clock budget (`train --time`): the run ends on time (`total_steps` is then only a
    /// cap), the learning rate follows a cosine over the budget instead of `lr_decay` (over the
    /// steps, when `total_steps` comes first), and
    /// evaluations are paced by time instead of by epoch ends.
    pub time: Option<TimeLimit>,
    /// The run's wall-clock time, over its sessions (what the log and a budget count).
    pub clock: RunClock,
}

/// A run's wall-clock budget and the learning rate laid over it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeLimit {
    /// The whole budget, earlier sessions of the run included.
    pub total: Duration,
    /// The learning rate over the budget's training horizon.
    pub lr: CosineOverBudget,
}

/// Where a run stands against its time budget.
#[derive(Clone, Copy, Debug)]
pub struct TimeReport {
    /// Used so far, earlier sessions of the run included.
    pub used: Duration,
    /// The whole budget.
    pub total: Duration,
}

impl TimeReport {
    /// Time left.
    pub fn left(&self) -> Duration {
        self.total.saturating_sub(self.used)
    }
}

/// Progress of one step, for display.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    /// 1-based step.
    pub step: u64,
    /// Steps in the run.
    pub total_steps: u64,
    /// 1-based epoch.
    pub epoch: u64,
    /// Batch within the epoch (0-based).
    pub batch: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Step outcome.
    pub outcome: StepOutcome,
    /// Training tokens per second of this step.
    pub tokens_per_sec: f64,
    /// Learning rate used.
    pub lr: f64,
    /// The run's wall-clock time after this step, earlier sessions included.
    pub elapsed: Duration,
    /// Where a time-budgeted run stands after this step.
    pub time: Option<TimeReport>,
}

/// A validation result.
#[derive(Clone, Copy, Debug)]
pub struct EvalReport {
    /// Step after which it was measured.
    pub step: u64,
    /// 1-based epoch.
    pub epoch: u64,
    /// Whether it closes an epoch.
    pub epoch_end: bool,
    /// Mean validation loss (nats per symbol).
    pub loss: f64,
}

impl EvalReport {
    /// The loss in bits per character.
    pub fn bits_per_char(&self) -> f64 {
        self.loss / std::f64::consts::LN_2
    }
}

/// Receives progress as training goes, and writes what the run hands it. It decides nothing
/// about the run: the cadence of evaluations and checkpoints, the collective calls and the stop
/// are [`run`]'s, the same on every process.
pub trait Observer {
    /// What can go wrong in the observer's own work (saving files, say); it ends the run.
    type Error: std::error::Error + Send + Sync + 'static;
    /// After each step.
    fn on_step(&mut self, _report: &StepReport) {}
    /// After each evaluation (the trainer holds the evaluated model).
    fn on_eval(&mut self, _report: &EvalReport, _trainer: &Trainer) -> Result<(), Self::Error> {
        Ok(())
    }
    /// After each step and its evaluation, if any, before the run checkpoints or stops (a
    /// log flushed, say).
    fn after_step(&mut self, _step: u64) {}
    /// The run's time budget is spent: the run ends after this step, with its last
    /// evaluation and checkpoint (a resumed run then has nothing left, as one at its last step).
    fn budget_spent(&mut self) {}
    /// Writes the checkpoint of `step`. Called on the writer alone (process 0 of the group),
    /// once every process has joined in gathering the snapshot.
    fn save_checkpoint(&mut self, step: u64, snapshot: &TrainingSnapshot<'_>) -> Result<(), Self::Error>;
    /// Whether a stop has been asked of this process (a Ctrl-C, say). Local: no process waits
    /// for another to answer; the run makes the processes agree. Polled after each step (the
    /// run then stops after that step, with a checkpoint, on every process alike) and during
    /// long work such as an evaluation, so that it ends early.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Why [`run`] ended early: training itself, or the observer.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    /// The loss or the gradient diverged.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The observer failed.
    #[error(transparent)]
    Observer(E),
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct RunSummary {
    /// The last step done (counting from the start of training, resumed steps included).
    pub last_step: u64,
    /// Steps done in this run.
    pub steps: u64,
    /// Training tokens processed in this run.
    pub tokens: u64,
    /// Time spent in training steps (evaluation excluded).
    pub train_time: Duration,
    /// Loss of the last training step.
    pub last_train_loss: f64,
    /// Last validation result, if any.
    pub last_eval: Option<EvalReport>,
    /// Whether a stop request ended the run before `total_steps`.
    pub stopped: bool,
    /// Whether the run ended because its time budget was spent, and what it had used of it.
    pub time: Option<TimeReport>,
}

impl RunSummary {
    /// Mean training throughput of the run.
    pub fn tokens_per_sec(&self) -> f64 {
        self.tokens as f64 / self.train_time.as_secs_f64().max(1e-9)
    }
}

/// Trains from step `schedule.start_step + 1` to `schedule.total_steps` over `train` (wrapping
/// into further epochs; the carried state resets to zero at each epoch start), evaluating on
/// `val` at every epoch end, every `eval_every` steps, and after the last step; checkpointing
/// every `checkpoint_every` steps and after the last step done. A stop asked of any process
/// (each gets a Ctrl-C, not always before the same step) stops every one after the same step,
/// with a checkpoint.
///
/// With a time budget (`schedule.time`), the run ends once one more step would leave too
/// little time for the last evaluation and the final writes; the learning rate and the
/// evaluations follow the budget (see [`crate::training::time_budget`]). Only process 0's clock
/// decides: the others follow it, so that every process takes the same rate and decisions.
///
/// In a group, every process calls it with the same schedule and batches: the loop's
/// collective calls (the steps' sums, the evaluations, the agreement on a stop, the gathered
/// state of each checkpoint) then come in the same order on each.
pub fn run<O: Observer>(
    trainer: &mut Trainer,
    train: &Batcher<'_>,
    val: Option<&Batcher<'_>>,
    schedule: Schedule,
    observer: &mut O,
) -> Result<RunSummary, RunError<O::Error>> {
    let per_epoch = train.num_batches() as u64;
    let tokens_per_step = (train.batch_size() * train.seq_len()) as u64;
    let mut summary = RunSummary {
        last_step: schedule.start_step,
        steps: 0,
        tokens: 0,
        train_time: Duration::ZERO,
        last_train_loss: f64::NAN,
        last_eval: None,
        stopped: false,
        time: None,
    };
    let mut last_checkpoint = schedule.start_step;
    let mut pacer = BudgetPacer::new();
    if let Some(val) = val {
        let eval_tokens = val.num_batches() * val.batch_size() * val.seq_len();
        pacer.expect_evaluations(eval_tokens, tokens_per_step as usize);
    }
    // With a budget, the rate of the next step is decided with the decisions after each step.
    let budget = schedule.time.map(|t| (TimeBudget::new(t.total, schedule.clock), t.lr));
    let mut budget_lr = budget.map(|(_, lr)| agreed(trainer, [lr.rate(schedule.lr, 0.0)])[0]);
    for step in schedule.start_step + 1..=schedule.total_steps {
        let batch = ((step - 1) % per_epoch) as usize;
        let epoch = (step - 1) / per_epoch + 1;
        if batch == 0 {
            trainer.reset_state();
        }
        let lr = budget_lr.unwrap_or_else(|| schedule.lr_decay.map_or(schedule.lr, |d| d.rate(schedule.lr, epoch)));
        trainer.set_learning_rate(lr);
        let started = Instant::now();
        let outcome = trainer.step(train, batch)?;
        let elapsed = started.elapsed();
        pacer.record_step(elapsed);
        let time = budget.map(|(b, _)| TimeReport { used: b.used(), total: b.total() });
        summary.last_step = step;
        summary.steps += 1;
        summary.tokens += tokens_per_step;
        summary.train_time += elapsed;
        summary.last_train_loss = outcome.loss;
        observer.on_step(&StepReport {
            step,
            total_steps: schedule.total_steps,
            epoch,
            batch,
            batches_per_epoch: per_epoch as usize,
            outcome,
            tokens_per_sec: tokens_per_step as f64 / elapsed.as_secs_f64().max(1e-9),
            lr,
            elapsed: schedule.clock.used(),
            time,
        });
        let epoch_end = batch as u64 + 1 == per_epoch;
        let periodic = schedule.eval_every > 0 && step % schedule.eval_every == 0;
        // A budgeted run evaluates when its pacing says so (not at epoch ends, which may come
        // every few seconds or never), and after its last step.
        let mut out_of_time = false;
        let due = match &budget {
            None => epoch_end,
            Some((b, lr)) => {
                let [due, spent, next_lr] = agreed(
                    trainer,
                    [
                        f64::from(u8::from(pacer.eval_due(b))),
                        f64::from(u8::from(!pacer.room_for_step(b))),
                        // A step cap that comes before the budget's end ends the schedule.
                        lr.rate(schedule.lr, pacer.progress(b).max(step as f64 / schedule.total_steps as f64)),
                    ],
                );
                budget_lr = Some(next_lr);
                out_of_time = spent > 0.0;
                due > 0.0
            }
        };
        let last = step == schedule.total_steps || out_of_time;
        if let Some(val) = val {
            if due || periodic || last {
                // An evaluation abandoned for a stop request reports nothing: the stop is then
                // agreed on below, and this step checkpointed.
                let started = Instant::now();
                if let Some(loss) = trainer.evaluate(val, &|| observer.stop_requested()) {
                    let report = EvalReport { step, epoch, epoch_end, loss };
                    summary.last_eval = Some(report);
                    observer.on_eval(&report, &*trainer).map_err(RunError::Observer)?;
                }
                pacer.record_eval(started.elapsed(), schedule.clock.used());
            }
        }
        observer.after_step(step);
        let mut stop = any(trainer.group(), observer.stop_requested());
        if stop || (schedule.checkpoint_every > 0 && step.is_multiple_of(schedule.checkpoint_every)) {
            let started = Instant::now();
            checkpoint(trainer, step, observer)?;
            pacer.record_save(started.elapsed());
            last_checkpoint = step;
            // A stop asked during the write stops the run now, on the checkpoint just written.
            stop = stop || any(trainer.group(), observer.stop_requested());
        }
        if stop || out_of_time {
            summary.stopped = stop && step < schedule.total_steps;
            if out_of_time && !stop {
                observer.budget_spent();
            }
            break;
        }
    }
    if summary.last_step > last_checkpoint {
        checkpoint(trainer, summary.last_step, observer)?;
    }
    summary.time = budget.map(|(b, _)| TimeReport { used: b.used(), total: b.total() });
    Ok(summary)
}

/// Process 0's decisions (from its clock), taken by every process of the trainer's group.
fn agreed<const N: usize>(trainer: &Trainer, mut values: [f64; N]) -> [f64; N] {
    from_first(trainer.group(), &mut values);
    values
}

/// The checkpoint of `step`: every process gathers the snapshot, the writer (process 0) alone
/// is handed it.
fn checkpoint<O: Observer>(trainer: &mut Trainer, step: u64, observer: &mut O) -> Result<(), RunError<O::Error>> {
    let writer = trainer.group().rank() == 0;
    let snapshot = trainer.gather_snapshot();
    if writer {
        observer.save_checkpoint(step, &snapshot).map_err(RunError::Observer)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// char-rnn decays at the end of each epoch from `learning_rate_decay_after` on (and never
    /// before the end of the first epoch).
    #[test]
    fn lr_decay_follows_char_rnn() {
        let d = LrDecay { factor: 0.5, after_epochs: 2 };
        let rates: Vec<f64> = (1..=5).map(|e| d.rate(1.0, e)).collect();
        assert_eq!(rates, [1.0, 1.0, 0.5, 0.25, 0.125]);
        let from_start = LrDecay { factor: 0.5, after_epochs: 0 };
        assert_eq!((from_start.rate(2.0, 1), from_start.rate(2.0, 2)), (2.0, 1.0));
    }
}
