//! The worker threads: one global rayon pool, sized once.

use anyhow::{Context, Result};

use crate::shared::output::{errln, plural};

/// Sizes the global rayon pool: `requested`, or every core; more threads than CPUs are capped
/// with a note (they would only slow each other down). Returns the thread count.
pub fn init_threads(requested: Option<u32>) -> Result<usize> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = match requested {
        Some(n) if n as usize > cpus => {
            errln!(
                "note: --threads {n} is more than the {cpus} {} this process may use; using {cpus}",
                plural(cpus, "CPU", "CPUs")
            );
            cpus
        }
        Some(n) => n as usize,
        None => cpus,
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot start the thread pool")?;
    // A thread's first allocation gives it its own malloc arena, which reserves tens of
    // megabytes of address space. Made now, those reservations are part of what the memory
    // check sees in use under an address-space limit (`ulimit -v`), not a surprise after it.
    rayon::broadcast(|_| drop(std::hint::black_box(Box::new([0u8; 64]))));
    Ok(threads)
}
