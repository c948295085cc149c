//! Training: a [`Trainer`] (the model, the optimiser and every buffer a step needs) takes
//! steps; [`run`] loops over steps and epochs, evaluates and reports to an [`Observer`]. Around
//! them: the optimiser ([`optim`]), the processes that train together ([`collective`]), the
//! memory a run needs ([`memory`]), a run's settings and what they make of a start
//! ([`run_settings`], [`run_plan`]), and timing full steps as `bench` does ([`step_timing`]).

pub mod collective;
pub mod memory;
pub mod optim;
mod run_loop;
pub mod run_plan;
pub mod run_settings;
pub mod step_timing;
mod trainer;

pub use run_loop::{run, Control, EvalReport, LrDecay, Observer, RunError, RunSummary, Schedule, StepReport};
pub use trainer::{StepOutcome, TrainError, TrainOptions, Trainer};
