//! A probe of this machine's FMA throughput: many independent vector FMA chains, so that the
//! only limit is the FMA pipes. Reports use it as the denominator of "fraction of peak".
//!
//! On a shared machine one timing can read far low (another process on the core, a frequency
//! step): `bench` once printed "192% of this machine's measured FMA peak" after such a reading.
//! Interference only ever slows a trial down, so [`fma_peak_flops`] keeps the best of several
//! short trials.

use std::hint::black_box;
use std::time::Instant;

use crate::dispatch::{detected_level, CpuLevel};

/// Trials [`fma_peak_flops`] takes the best of.
pub const PEAK_TRIALS: usize = 9;

/// Rounds of one trial: about 5 ms of 512-bit FMAs at 4 GHz (24 FMAs a round), long enough to
/// dwarf the timer, short enough that some trials run undisturbed.
pub const PEAK_TRIAL_ITERATIONS: u64 = 1_000_000;

/// Single-thread `f32` FMA throughput at `level` (flop/s: an FMA counts 2): the best of
/// [`PEAK_TRIALS`] trials of [`PEAK_TRIAL_ITERATIONS`] rounds.
///
/// # Panics
/// If `level` is above what this CPU supports.
pub fn fma_peak_flops(level: CpuLevel) -> f64 {
    (0..PEAK_TRIALS).map(|_| fma_trial_flops(level, PEAK_TRIAL_ITERATIONS)).fold(0.0, f64::max)
}

/// One trial: `f32` FMA throughput at `level` (flop/s) over `iterations` rounds of 24
/// independent vector FMAs.
///
/// # Panics
/// If `level` is above what this CPU supports.
pub fn fma_trial_flops(level: CpuLevel, iterations: u64) -> f64 {
    assert!(level <= detected_level(), "CPU level {level:?} is not supported by this CPU");
    let start = Instant::now();
    let lanes = match level.f32_level() {
        // SAFETY: the level's features are present (asserted above).
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx512 => unsafe { x86::chains_avx512(iterations) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 => unsafe { x86::chains_avx2(iterations) },
        _ => portable_chains(iterations),
    };
    let seconds = start.elapsed().as_secs_f64();
    (iterations * 24 * lanes * 2) as f64 / seconds
}

/// Portable chains on `wide` vectors; returns the lanes per vector.
fn portable_chains(iterations: u64) -> u64 {
    use wide::f32x8;
    let mut acc = [f32x8::splat(1.0); 24];
    let (x, y) = (black_box(f32x8::splat(0.999_999)), black_box(f32x8::splat(1e-7)));
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = a.mul_add(x, y);
        }
    }
    black_box(acc);
    8
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `unsafe fn $name(iterations) -> lanes`: the probe's chains on one x86 level's vectors,
    /// the same body for each level.
    macro_rules! fma_chains {
        ($name:ident, $features:literal, $lanes:literal, $splat:ident, $fma:ident) => {
            /// # Safety
            /// The CPU must support the features this function enables.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(iterations: u64) -> u64 {
                let mut acc = [$splat(1.0); 24];
                let (x, y) = (black_box($splat(0.999_999)), black_box($splat(1e-7)));
                for _ in 0..iterations {
                    for a in acc.iter_mut() {
                        *a = $fma(*a, x, y);
                    }
                }
                black_box(acc);
                $lanes
            }
        };
    }

    fma_chains!(chains_avx512, "avx512f", 16, _mm512_set1_ps, _mm512_fmadd_ps);
    fma_chains!(chains_avx2, "avx2,fma", 8, _mm256_set1_ps, _mm256_fmadd_ps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_a_positive_rate_at_every_level() {
        for level in crate::dispatch::available_f32_levels() {
            let flops = fma_trial_flops(level, 1000);
            assert!(flops.is_finite() && flops > 1e6, "{level:?}: {flops}");
        }
    }

    #[test]
    fn the_peak_is_a_positive_rate() {
        let peak = fma_peak_flops(crate::dispatch::cpu_level());
        assert!(peak.is_finite() && peak > 1e6, "{peak}");
    }
}
