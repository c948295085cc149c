//! Refusing, before allocating, what will not fit in memory (`train` and `bench`).
//!
//! For tests only, the environment variable `CHARRNN_TEST_AVAILABLE_MEMORY` (bytes) replaces
//! what the machine reports, so that the refusal can be tested the same way on machines of
//! any size. It is not meant for users.

use anyhow::{bail, Result};
use charrnn_engine::memory::{available_memory, Bytes};

const AVAILABLE_OVERRIDE_ENV: &str = "CHARRNN_TEST_AVAILABLE_MEMORY";

/// The memory available to this process, in bytes (`None` where it cannot be told).
pub fn available() -> Option<u64> {
    match std::env::var(AVAILABLE_OVERRIDE_ENV) {
        Ok(v) => v.parse().ok(),
        Err(_) => available_memory(),
    }
}

/// Fails with the sizes and `advice` when `needed` bytes exceed what is available.
pub fn refuse_if_too_large(needed: u64, advice: &str) -> Result<()> {
    match available() {
        Some(available) if needed > available => {
            bail!("this configuration needs {}, but {} is available; {advice}", Bytes(needed), Bytes(available))
        }
        _ => Ok(()),
    }
}
