//! Stop requests during `train`: Ctrl-C (SIGINT), SIGTERM and SIGHUP. The first asks the run to
//! stop, saving what it has: before training, at once, with nothing written; in training,
//! after the step under way (or at once in a validation), with a checkpoint. A second, more than
//! a second later, stops at once without saving.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::shared::output::errln;
use crate::train::observer::IntactCheckpoint;

/// Signals within this long of the first are the same request: `timeout` and `kill -- -PGID`
/// signal the process and then its group, a terminal may deliver SIGINT twice, and a rank of
/// an MPI run may get it both from the terminal and from `mpiexec`, which forwards it; none of
/// these is a user pressing Ctrl-C again.
const SAME_PRESS: Duration = Duration::from_secs(1);

/// The handler's state, shared with the run.
pub struct StopRequest {
    requested: Arc<AtomicBool>,
    training: Arc<AtomicBool>,
}

impl StopRequest {
    /// Installs the handler. A second request stops at once, with exit status 130, naming the
    /// checkpoint `intact` holds (writes are atomic; one being written is waited for). (A rank
    /// of an MPI run that exits so makes `mpiexec` end the others.)
    pub fn install(intact: IntactCheckpoint) -> Result<StopRequest> {
        let requested = Arc::new(AtomicBool::new(false));
        let training = Arc::new(AtomicBool::new(false));
        let (flag, in_training) = (requested.clone(), training.clone());
        let mut first: Option<Instant> = None;
        ctrlc::set_handler(move || {
            let repeat = first.is_some_and(|at| at.elapsed() < SAME_PRESS);
            first.get_or_insert_with(Instant::now);
            if repeat {
                return;
            }
            if flag.swap(true, Ordering::SeqCst) {
                errln!("\nstopping now, without saving; {}", intact.describe());
                std::process::exit(130);
            }
            if in_training.load(Ordering::SeqCst) {
                errln!("\ninterrupted: finishing this step and saving a checkpoint (again to stop at once)");
            } else {
                errln!("\ninterrupted: stopping before training begins (again to stop at once)");
            }
        })
        .context("cannot install the Ctrl-C handler")?;
        Ok(StopRequest { requested, training })
    }

    /// Whether a stop has been requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// From now on a request stops the run after its step, with a checkpoint: the flag the
    /// run's observer polls.
    pub fn training_starts(&self) -> Arc<AtomicBool> {
        self.training.store(true, Ordering::SeqCst);
        self.requested.clone()
    }
}

/// A stop requested before training began: nothing was trained, nothing written in `--out`.
/// The process exits with status 130, as one ended by Ctrl-C does.
#[derive(Debug)]
pub struct StoppedBeforeTraining;

impl fmt::Display for StoppedBeforeTraining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stopped before training began: nothing was trained or saved")
    }
}

impl std::error::Error for StoppedBeforeTraining {}

/// The exit status of a process that a stop request ended before it could save anything.
pub const STOPPED_STATUS: u8 = 130;
