//! Refusing, before allocating, what will not fit in memory (`train` and `bench`).
//!
//! For tests only, the environment variable `CHARRNN_TEST_AVAILABLE_MEMORY` (bytes) replaces
//! what the machine reports, so that the refusal can be tested the same way on machines of
//! any size. It is not meant for users.

use anyhow::{bail, Result};
use charrnn_engine::memory::{available_memory, Available, Bytes, MemoryLimit};

const AVAILABLE_OVERRIDE_ENV: &str = "CHARRNN_TEST_AVAILABLE_MEMORY";

/// Under a resource limit the address space mapped counts, which is more than the bytes the
/// estimate holds to a counting allocator: what the allocator keeps around its blocks, the
/// 10% the estimate may miss. A 3×1024 LSTM whose figures fitted under `ulimit -v` with 5% to
/// spare still could not write its first checkpoint; 15% more is asked for.
const ADDRESS_SLACK_PERCENT: u64 = 15;

/// Fails with the sizes, the limit that binds and `advice` when `needed` bytes exceed what is
/// available. Then reserves (without touching) `needed` bytes of address space once and gives
/// them back: a limit the figures missed (another resource limit, the kernel's overcommit
/// policy) is then this error too, not an abort when the buffers are allocated.
pub fn refuse_if_too_large(needed: u64, advice: &str) -> Result<()> {
    let available = match std::env::var(AVAILABLE_OVERRIDE_ENV) {
        Ok(v) => v.parse().ok().map(|bytes| Available { bytes, limit: MemoryLimit::Machine }),
        Err(_) => available_memory(),
    };
    if let Some(Available { bytes, limit }) = available {
        if matches!(limit, MemoryLimit::AddressSpace | MemoryLimit::DataSize) {
            let mapped = needed + needed / 100 * ADDRESS_SLACK_PERCENT;
            if mapped > bytes {
                // In whole megabytes: the two figures are close, and one decimal of GB could
                // print them equal.
                let mb = |b: u64| format!("{} MB", b.div_ceil(1_000_000));
                bail!(
                    "this configuration needs {} ({} of address space with the allocator's slack), but {} is \
                     {limit}; {advice}",
                    Bytes(needed),
                    mb(mapped),
                    mb(bytes)
                );
            }
        } else if needed > bytes {
            bail!("this configuration needs {}, but {} is {limit}; {advice}", Bytes(needed), Bytes(bytes));
        }
    }
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
