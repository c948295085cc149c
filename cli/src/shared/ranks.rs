//! The processes of a `train` or `bench` run. One, usually; with the `mpi` feature and under
//! `mpiexec -n N`, N ranks that train one model together (a `Trainer` in their group): each trains on
//! its block of the batch's rows, rank 0 alone prints and writes the run's files, and an error
//! on any rank ends every rank (MPI_Abort), with that rank's message.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use charrnn_engine::training::collective::{Collective, Solo};

use crate::shared::output::write_error;

/// Environment variables an MPI launcher (MPICH's Hydra, PMI-2 or PMIx under Slurm, Open MPI)
/// sets in every process it starts.
const LAUNCHER_VARS: [&str; 5] = ["PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"];

/// How long a rank other than 0 waits before ending the job over its own error: when rank 0
/// fails the same way (a diverged loss reaches every rank at once), rank 0's message, which
/// names the intact checkpoint, is the one printed.
const FOLLOWER_GRACE: Duration = Duration::from_secs(1);
/// How long a failing rank waits after printing its error before it aborts the job.
#[cfg(feature = "mpi")]
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// This process's place in the run.
pub struct Ranks {
    /// This process's rank, `0..size`.
    pub rank: usize,
    /// Processes in the run.
    pub size: usize,
    /// This process's index among the ranks on its machine.
    pub local_rank: usize,
    /// Ranks on this machine.
    pub local_size: usize,
    /// The machine's name, for messages.
    pub host: String,
    /// The group's operations (a duplicate of it is handed to the trainer).
    world: Box<dyn Collective>,
    #[cfg(feature = "mpi")]
    mpi: Option<crate::shared::mpi_group::MpiRanks>,
}

/// Whether an MPI launcher started this process, and how many it started when it says.
fn launched() -> Option<Option<usize>> {
    LAUNCHER_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some())
        .then(|| ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE"].iter().find_map(|var| std::env::var(var).ok()?.parse().ok()))
}

impl Ranks {
    /// One process.
    pub fn solo() -> Ranks {
        Ranks {
            rank: 0,
            size: 1,
            local_rank: 0,
            local_size: 1,
            host: String::new(),
            world: Box::new(Solo),
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The run's processes: MPI's ranks when an MPI launcher started this process and the
    /// binary has the `mpi` feature; one process otherwise (an error when a launcher started
    /// several copies of a binary without it, which would each train alone).
    pub fn start() -> Result<Ranks> {
        let launched = launched();
        #[cfg(feature = "mpi")]
        if launched.is_some() {
            let (mpi, place) = crate::shared::mpi_group::MpiRanks::start()?;
            let ranks = Ranks {
                rank: place.rank,
                size: place.size,
                local_rank: place.local_rank,
                local_size: place.local_size,
                host: place.host,
                world: mpi.group(),
                mpi: Some(mpi),
            };
            return Ok(ranks);
        }
        if let Some(size) = launched.filter(|size| size.is_none_or(|n| n > 1)) {
            bail!(
                "started by an MPI launcher{}, but this charrnn-fast was built without MPI, so each process would \
                 train alone; build it with `cargo build --release -p charrnn-cli --features mpi`",
                size.map_or(String::new(), |n| format!(" as one of {n} processes"))
            );
        }
        Ok(Ranks::solo())
    }

    /// Whether this process prints and writes the run's files (rank 0).
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// The group, for a trainer.
    pub fn group(&self) -> Box<dyn Collective> {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            return mpi.group();
        }
        Box::new(Solo)
    }

    /// The worker threads per rank when `--threads` is not given: the machine's cores shared
    /// among its ranks (`None`: one process, every core).
    pub fn default_threads(&self) -> Option<u32> {
        if self.size == 1 {
            return None;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some((cpus / self.local_size).max(1) as u32)
    }

    /// `work` on one rank of each machine first, then on the others: preparing a corpus
    /// writes its cache, which the machine's other ranks then reuse rather than race on.
    pub fn local_first<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.local_size == 1 {
            return work();
        }
        if self.local_rank == 0 {
            let done = work()?;
            self.local_barrier();
            Ok(done)
        } else {
            self.local_barrier();
            work()
        }
    }

    fn local_barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            mpi.local_barrier();
        }
    }

    /// The bytes of `path` as rank 0 reads them, on every rank: a checkpoint to resume lies on
    /// rank 0's machine only.
    pub fn read_on_leader(&self, path: &Path) -> Result<Vec<u8>> {
        let mut bytes = if self.is_leader() {
            std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?
        } else {
            Vec::new()
        };
        self.world.broadcast_bytes(&mut bytes);
        Ok(bytes)
    }

    /// Refuses to go on when this rank's `mine` (a digest of its corpus or weights) is not rank
    /// 0's; `explain(rank 0's, mine)` says what differs.
    pub fn check_same(&self, mine: &str, explain: impl FnOnce(&str, &str) -> String) -> Result<()> {
        if self.size == 1 {
            return Ok(());
        }
        let mut leader = mine.as_bytes().to_vec();
        self.world.broadcast_bytes(&mut leader);
        if leader != mine.as_bytes() {
            bail!("{}", explain(&String::from_utf8_lossy(&leader), mine));
        }
        Ok(())
    }

    /// Whether any rank says `mine` (every rank gets the same answer): how the ranks agree on
    /// a decision each could make alone, such as a stop requested before training.
    pub fn any(&self, mine: bool) -> bool {
        charrnn_engine::training::collective::any(self.world.as_ref(), mine)
    }

    /// How a line about the whole run names its processes: `2 ranks × 1 thread`, or `2 threads`.
    pub fn describe(&self, threads: usize) -> String {
        let threads = format!("{threads} {}", crate::shared::output::plural(threads, "thread", "threads"));
        match self.size {
            1 => threads,
            n => format!("{n} ranks × {threads}"),
        }
    }

    /// Ends this process after a failure: prints `message`, and in a run of several ranks ends
    /// every rank (they may be waiting on this one), with exit status `code`. A rank other than
    /// 0 first gives rank 0 [`FOLLOWER_GRACE`] to end the job with the same error.
    pub fn fail(&self, message: &str, code: u8) -> std::process::ExitCode {
        if self.size == 1 {
            write_error(true, format_args!("{message}"));
            return std::process::ExitCode::from(code);
        }
        if !self.is_leader() {
            std::thread::sleep(FOLLOWER_GRACE);
        }
        write_error(true, format_args!("rank {} of {} on {}: {message}", self.rank, self.size, self.host));
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            // The launcher forwards a rank's stderr on its own time, and MPI_Abort ends its
            // proxies at once: without a moment between the two the line can be lost (seen
            // once in eight runs of `mpi_ranks::a_rank_with_another_corpus_is_refused`).
            std::thread::sleep(OUTPUT_GRACE);
            mpi.abort(i32::from(code));
        }
        std::process::ExitCode::from(code)
    }
}
