//! Training: a [`Trainer`] (the model, the optimiser and every buffer a step needs), built one
//! way from an [`Origin`] and a [`Layout`], takes steps; [`run`] loops over steps and epochs,
//! evaluates, checkpoints, makes the processes agree on a stop, and reports to an
//! [`Observer`], which only prints and writes files. Around them: the optimiser ([`optim`]),
//! the processes that train together ([`collective`]), the memory a run needs ([`memory`]), a
//! run's settings and what they make of a start ([`run_settings`], [`run_plan`]), cold starts
//! to learn from ([`state_reset`]), and timing
//! full steps as `bench` does ([`step_timing`]).

pub mod collective;
pub mod memory;
pub mod model_sizing;
pub mod optim;
mod origin;
mod run_loop;
pub mod run_plan;
pub mod run_settings;
pub mod state_reset;
pub mod step_timing;
pub mod time_budget;
mod trainer;

pub use origin::Origin;
pub use run_loop::{
    run, EvalReport, LrDecay, Observer, RunError, RunSummary, Schedule, StepReport, TimeLimit, TimeReport,
};
pub use trainer::{Layout, StepOutcome, TrainError, TrainOptions, Trainer};
