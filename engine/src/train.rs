//! Truncated-BPTT training: one step (forward, backward, clip, Adam) over preallocated
//! buffers, evaluation on the validation split, and the epoch loop with carried state.

use std::time::{Duration, Instant};

use charrnn_kernels::adam::AdamHyper;

use crate::data::Batcher;
use crate::optim::{clip_global_norm, Adam};
use crate::params::Model;
use crate::pass::{backward, forward, Pass};
use crate::workspace::{State, Workspace};

/// Training hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Rows per batch `B`.
    pub batch_size: usize,
    /// Steps per batch `T`.
    pub seq_len: usize,
    /// Adam hyper-parameters.
    pub adam: AdamHyper,
    /// Maximum global gradient norm; 0 disables clipping.
    pub clip: f64,
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step}: the loss is {loss}; try a lower --lr or --clip")]
    NonFiniteLoss {
        /// 1-based step.
        step: u64,
        /// The offending value.
        loss: f64,
    },
    /// A gradient became NaN or infinite.
    #[error(
        "training diverged at step {step}: the gradient norm is {norm}; try a lower --lr or --clip"
    )]
    NonFiniteGradient {
        /// 1-based step.
        step: u64,
        /// The offending value.
        norm: f64,
    },
}

/// What one training step measured.
#[derive(Clone, Copy, Debug)]
pub struct StepOutcome {
    /// Mean training loss of the batch (nats per symbol), before the update.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// A model with its optimiser state and every buffer a step needs.
pub struct Trainer {
    /// The model being trained.
    pub model: Model<f32>,
    /// Gradients, same layout as the parameters.
    pub grads: Vec<f32>,
    /// Optimiser state.
    pub adam: Adam<f32>,
    /// Activations and scratch for one batch.
    pub workspace: Workspace<f32>,
    /// State carried from batch to batch.
    pub state: State<f32>,
    /// Clip threshold.
    pub clip: f64,
}

impl Trainer {
    /// Allocates everything for `model` and `options`.
    pub fn new(model: Model<f32>, options: &TrainOptions) -> Trainer {
        let n = model.params.len();
        let config = model.config;
        Trainer {
            grads: vec![0.0; n],
            adam: Adam::new(n, options.adam),
            workspace: Workspace::new(&config, options.batch_size, options.seq_len),
            state: State::zeros(&config, options.batch_size),
            clip: options.clip,
            model,
        }
    }

    /// One training step on batch `index` of `batches`, continuing from the carried state.
    /// Allocates nothing.
    pub fn step(&mut self, batches: &Batcher<'_>, index: usize) -> Result<StepOutcome, TrainError> {
        batches.fill(
            index,
            &mut self.workspace.inputs,
            &mut self.workspace.targets,
        );
        self.step_loaded()
    }

    /// One training step on the batch already in `workspace.inputs` / `targets`: forward,
    /// backward, clip, Adam. Allocates nothing.
    pub fn step_loaded(&mut self) -> Result<StepOutcome, TrainError> {
        let ws = &mut self.workspace;
        let loss = forward(&self.model, ws, &mut self.state, Pass::Train);
        let step = self.adam.step + 1;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss { step, loss });
        }
        backward(&self.model, ws, &mut self.grads);
        let grad_norm = clip_global_norm(&mut self.grads, self.clip);
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFiniteGradient {
                step,
                norm: grad_norm,
            });
        }
        self.adam.update(&mut self.model.params, &self.grads);
        Ok(StepOutcome { loss, grad_norm })
    }

    /// Mean loss over every batch of `batches`, from a zero state carried across them (the
    /// training state is untouched).
    pub fn evaluate(&mut self, batches: &Batcher<'_>) -> f64 {
        let mut state = State::zeros(&self.model.config, batches.batch_size());
        let ws = &mut self.workspace;
        let mut total = 0.0;
        for i in 0..batches.num_batches() {
            batches.fill(i, &mut ws.inputs, &mut ws.targets);
            total += forward(&self.model, ws, &mut state, Pass::Eval);
        }
        total / batches.num_batches() as f64
    }
}

/// How long to train and when to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Total steps; epochs follow from the number of batches.
    pub total_steps: u64,
    /// Evaluate every this many steps as well as at each epoch end; 0: only at epoch ends.
    pub eval_every: u64,
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

/// Receives progress as training goes.
pub trait Observer {
    /// After each step.
    fn on_step(&mut self, report: &StepReport);
    /// After each evaluation.
    fn on_eval(&mut self, report: &EvalReport);
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct RunSummary {
    /// Steps done.
    pub steps: u64,
    /// Training tokens processed.
    pub tokens: u64,
    /// Time spent in training steps (evaluation excluded).
    pub train_time: Duration,
    /// Loss of the last training step.
    pub last_train_loss: f64,
    /// Last validation result, if any.
    pub last_eval: Option<EvalReport>,
}

impl RunSummary {
    /// Mean training throughput of the run.
    pub fn tokens_per_sec(&self) -> f64 {
        self.tokens as f64 / self.train_time.as_secs_f64().max(1e-9)
    }
}

/// Trains for `schedule.total_steps` steps over `train` (wrapping into further epochs; the
/// carried state resets to zero at each epoch start), evaluating on `val` at every epoch end,
/// every `eval_every` steps, and after the last step.
pub fn run(
    trainer: &mut Trainer,
    train: &Batcher<'_>,
    val: Option<&Batcher<'_>>,
    schedule: Schedule,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    let per_epoch = train.num_batches();
    let tokens_per_step = (train.batch_size() * train.seq_len()) as u64;
    let mut summary = RunSummary {
        steps: 0,
        tokens: 0,
        train_time: Duration::ZERO,
        last_train_loss: f64::NAN,
        last_eval: None,
    };
    for step in 1..=schedule.total_steps {
        let batch = ((step - 1) % per_epoch as u64) as usize;
        let epoch = (step - 1) / per_epoch as u64 + 1;
        if batch == 0 {
            trainer.state.reset();
        }
        let started = Instant::now();
        let outcome = trainer.step(train, batch)?;
        let elapsed = started.elapsed();
        summary.steps = step;
        summary.tokens += tokens_per_step;
        summary.train_time += elapsed;
        summary.last_train_loss = outcome.loss;
        observer.on_step(&StepReport {
            step,
            total_steps: schedule.total_steps,
            epoch,
            batch,
            batches_per_epoch: per_epoch,
            outcome,
            tokens_per_sec: tokens_per_step as f64 / elapsed.as_secs_f64().max(1e-9),
        });
        let epoch_end = batch + 1 == per_epoch;
        let periodic = schedule.eval_every > 0 && step % schedule.eval_every == 0;
        if let Some(val) = val {
            if epoch_end || periodic || step == schedule.total_steps {
                let report = EvalReport {
                    step,
                    epoch,
                    epoch_end,
                    loss: trainer.evaluate(val),
                };
                summary.last_eval = Some(report);
                observer.on_eval(&report);
            }
        }
    }
    Ok(summary)
}
