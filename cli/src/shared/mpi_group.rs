//! The MPI side of a multi-process run (the `mpi` feature, through rsmpi): starting MPI, this
//! process's place, and [`Collective`] over a communicator.
//!
//! The sums are `MPI_Allreduce` with `MPI_SUM`. The order of their terms is the MPI library's
//! choice: MPICH's depends on the number of ranks, their placement on machines, the message
//! size and its settings, not on timing, and every algorithm it has hands each rank the same
//! result, so the same layout repeats bit for bit. With two ranks each element is one
//! addition, `a + b`.

use std::cell::RefCell;

use anyhow::{anyhow, bail, Result};
use charrnn_engine::training::collective::Collective;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

/// Where this process stands among the ranks.
pub struct Place {
    pub rank: usize,
    pub size: usize,
    pub local_rank: usize,
    pub local_size: usize,
    pub host: String,
}

/// MPI, started; finalised when dropped.
pub struct MpiRanks {
    /// The ranks on this machine (for preparing the corpus one at a time).
    local: SimpleCommunicator,
    world: SimpleCommunicator,
    /// Dropped last: MPI_Finalize.
    _universe: Universe,
}

impl MpiRanks {
    /// Starts MPI. Only the main thread calls MPI (the worker threads compute), hence
    /// `MPI_THREAD_FUNNELED`.
    pub fn start() -> Result<(MpiRanks, Place)> {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| anyhow!("cannot start MPI: it was started already"))?;
        if provided < Threading::Funneled {
            bail!("the MPI library offers no thread support (MPI_THREAD_FUNNELED), which the worker threads need");
        }
        let world = universe.world();
        let local = world.split_shared(world.rank());
        let place = Place {
            rank: world.rank() as usize,
            size: world.size() as usize,
            local_rank: local.rank() as usize,
            local_size: local.size() as usize,
            host: mpi::environment::processor_name().unwrap_or_else(|_| "an unnamed machine".to_owned()),
        };
        Ok((MpiRanks { local, world, _universe: universe }, place))
    }

    /// A communicator of its own for a trainer (its operations cannot mix with others').
    pub fn group(&self) -> Box<dyn Collective> {
        Box::new(MpiGroup {
            comm: self.world.duplicate(),
            staging_f32: RefCell::default(),
            staging_f64: RefCell::default(),
        })
    }

    /// Waits for every rank on this machine.
    pub fn local_barrier(&self) {
        self.local.barrier();
    }

    /// Ends every rank of the run with exit status `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

/// [`Collective`] over an MPI communicator.
struct MpiGroup {
    comm: SimpleCommunicator,
    /// The send side of the sums (MPI reads one buffer and writes another); sized by the first
    /// sum, reused by every later one, so that a step allocates nothing.
    staging_f32: RefCell<Vec<f32>>,
    staging_f64: RefCell<Vec<f64>>,
}

/// Largest count one MPI call takes (its counts are `int`).
const MAX_COUNT: usize = 1 << 30;

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or_else(|_| panic!("{n} values in one MPI call"))
}

/// `values` ← their sum over `comm`, sent from a copy in `staging`.
fn sum_in_place<T: Equivalence + Copy>(comm: &SimpleCommunicator, staging: &mut Vec<T>, values: &mut [T]) {
    for chunk in values.chunks_mut(MAX_COUNT) {
        staging.clear();
        staging.extend_from_slice(chunk);
        comm.all_reduce_into(&staging[..], chunk, SystemOperation::sum());
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn sum_f32(&self, values: &mut [f32]) {
        sum_in_place(&self.comm, &mut self.staging_f32.borrow_mut(), values);
    }

    fn sum_f64(&self, values: &mut [f64]) {
        sum_in_place(&self.comm, &mut self.staging_f64.borrow_mut(), values);
    }

    fn all_gather_f32(&self, mine: &[f32], counts: &[usize], all: &mut [f32]) {
        let displs: Vec<i32> = counts.iter().scan(0, |at, &n| Some(count(std::mem::replace(at, *at + n)))).collect();
        let counts: Vec<i32> = counts.iter().map(|&n| count(n)).collect();
        let mut partition = PartitionMut::new(all, &counts[..], &displs[..]);
        self.comm.all_gather_varcount_into(mine, &mut partition);
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        let root = self.comm.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        for chunk in bytes.chunks_mut(MAX_COUNT) {
            root.broadcast_into(chunk);
        }
    }
}
