//! Refusing, before allocating, what will not fit in memory (`train` and `bench`).
//!
//! For tests only, the environment variable `CHARRNN_TEST_AVAILABLE_MEMORY` (bytes) replaces
//! what the machine reports, so that the refusal can be tested the same way on machines of
//! any size. It is not meant for users.

use anyhow::{bail, Result};
use charrnn_engine::training::memory::{available_memory, Available, Bytes, MemoryLimit};

const AVAILABLE_OVERRIDE_ENV: &str = "CHARRNN_TEST_AVAILABLE_MEMORY";

/// Every bound on the memory this process may use, the tightest first (the one a refusal
/// names).
fn bounds() -> Vec<Available> {
    let mut bounds = match std::env::var(AVAILABLE_OVERRIDE_ENV) {
        Ok(v) => v.parse().ok().map(|bytes| Available { bytes, limit: MemoryLimit::Machine }).into_iter().collect(),
        Err(_) => available_memory(),
    };
    bounds.sort_by_key(|a| a.bytes);
    bounds
}

/// The tightest bound on the memory available to this process, in bytes (`None` where none
/// can be told).
pub fn available() -> Option<u64> {
    bounds().first().map(|a| a.bytes)
}

/// Under a resource limit the address space mapped counts, which is more than the bytes the
/// estimate holds to a counting allocator: what the allocator keeps around its blocks, the
/// 10% the estimate may miss. A 3×1024 LSTM whose figures fitted under `ulimit -v` with 5% to
/// spare still could not write its first checkpoint; 15% more is asked for.
const ADDRESS_SLACK_PERCENT: u64 = 15;

/// Fails with the sizes, the limit that binds and `advice` when the bytes needed exceed what is
/// available: `on_machine` (every process of the run on this machine) against the machine's
/// and the cgroup's memory, `in_process` (this process alone) against its own resource
/// limits. Then reserves (without touching) `in_process` bytes of address space once and
/// gives them back: a limit the figures missed (the kernel's overcommit policy, say) is then
/// this error too, not an abort when the buffers are allocated.
pub fn refuse_if_too_large(on_machine: u64, in_process: u64, advice: &str) -> Result<()> {
    for Available { bytes, limit } in bounds() {
        if matches!(limit, MemoryLimit::AddressSpace | MemoryLimit::DataSize) {
            let mapped = in_process + in_process / 100 * ADDRESS_SLACK_PERCENT;
            if mapped > bytes {
                // In whole megabytes: the two figures are close, and one decimal of GB could
                // print them equal.
                let mb = |b: u64| format!("{} MB", b.div_ceil(1_000_000));
                bail!(
                    "this configuration needs {} ({} of address space with the allocator's slack), but {} is \
                     {limit}; {advice}",
                    Bytes(in_process),
                    mb(mapped),
                    mb(bytes)
                );
            }
        } else if on_machine > bytes {
            bail!("this configuration needs {}, but {} is {limit}; {advice}", Bytes(on_machine), Bytes(bytes));
        }
    }
    let needed = in_process;
    let mut probe: Vec<u8> = Vec::new();
    let reserved = match usize::try_from(needed) {
        Ok(n) => probe.try_reserve_exact(n).is_ok(),
        Err(_) => false,
    };
    if !reserved {
        bail!("this configuration needs {}, which this process cannot allocate now; {advice}", Bytes(needed));
    }
    Ok(())
}
