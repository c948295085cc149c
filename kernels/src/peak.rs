//! A probe of this machine's multiply-add throughput: many independent chains of vector FMAs
//! (or, for bf16 where the CPU has it, of bf16 dot products), so that the only limit is the
//! pipes. Reports use it as the denominator of "fraction of peak".
//!
//! On a shared machine one timing can read far low (another process on the core, a frequency
//! step): `bench` once printed "192% of this machine's measured FMA peak" after such a reading.
//! Interference only ever slows a trial down, so [`peak_flops`] keeps the best of several
//! short trials.

use std::hint::black_box;
use std::time::Instant;

use crate::dispatch::{detected_level, CpuLevel};
use crate::Precision;

/// Trials [`peak_flops`] takes the best of: about 200 ms in all. `train --time` sizes its model
/// from this probe, and nine trials (45 ms) once read 8% low just after another process had
/// run, enough to choose the next width down.
pub const PEAK_TRIALS: usize = 40;

/// Rounds of one trial: about 5 ms of 512-bit FMAs at 4 GHz (24 FMAs a round), long enough to
/// dwarf the timer, short enough that some trials run undisturbed.
pub const PEAK_TRIAL_ITERATIONS: u64 = 1_000_000;

/// Single-thread throughput of the products of `precision` at `level` (flop/s: a multiply-add
/// counts 2): the best of [`PEAK_TRIALS`] trials of [`PEAK_TRIAL_ITERATIONS`] rounds. For
/// bf16 at a level with native bf16, the rate of the bf16 dot-product instruction (two
/// multiply-adds per `f32` lane); otherwise that of `f32` FMAs, which bf16 products then run on.
///
/// # Panics
/// If `level` is above what this CPU supports.
pub fn peak_flops(level: CpuLevel, precision: Precision) -> f64 {
    (0..PEAK_TRIALS).map(|_| trial_flops(level, precision, PEAK_TRIAL_ITERATIONS)).fold(0.0, f64::max)
}

/// [`peak_flops`] at the level this process runs its kernels at (the CPU's, or the level
/// `CHARRNN_CPU_LEVEL` caps it to).
pub fn peak_flops_here(precision: Precision) -> f64 {
    peak_flops(crate::dispatch::cpu_level(), precision)
}

/// Which instruction [`peak_flops`] times for `precision` at `level`.
pub fn peak_instruction(level: CpuLevel, precision: Precision) -> &'static str {
    if native_bf16(level, precision) {
        "bf16 dot-product"
    } else {
        "f32 FMA"
    }
}

/// Flops of one vector instruction of the probe for `precision` at `level`: an FMA over the
/// level's `f32` lanes (2 per lane), or a bf16 dot product (4 per `f32` lane: two products and
/// two sums).
pub fn op_flops(level: CpuLevel, precision: Precision) -> u64 {
    let lanes = if level.f32_level() == CpuLevel::Avx512 { 16 } else { 8 };
    lanes * if native_bf16(level, precision) { 4 } else { 2 }
}

/// Whether the probe times bf16 dot products (bf16 at a level that has them) rather than
/// `f32` FMAs.
fn native_bf16(level: CpuLevel, precision: Precision) -> bool {
    level == CpuLevel::Avx512Bf16 && precision == Precision::Bf16
}

/// One trial: throughput (flop/s) over `iterations` rounds of 24 independent vector
/// multiply-adds, `f32` FMAs or (bf16 at a native level) bf16 pair dot products.
///
/// # Panics
/// If `level` is above what this CPU supports.
pub fn trial_flops(level: CpuLevel, precision: Precision, iterations: u64) -> f64 {
    assert!(level <= detected_level(), "CPU level {level:?} is not supported by this CPU");
    let start = Instant::now();
    match (level.f32_level(), native_bf16(level, precision)) {
        // SAFETY: the level's features are present (asserted above).
        #[cfg(target_arch = "x86_64")]
        (_, true) => unsafe { x86::chains_avx512_bf16(iterations) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        (CpuLevel::Avx512, false) => unsafe { x86::chains_avx512(iterations) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        (CpuLevel::Avx2, false) => unsafe { x86::chains_avx2(iterations) },
        _ => portable_chains(iterations),
    }
    let seconds = start.elapsed().as_secs_f64();
    (iterations * 24 * op_flops(level, precision)) as f64 / seconds
}

/// Portable chains on `wide` vectors (8 lanes).
fn portable_chains(iterations: u64) {
    use wide::f32x8;
    let mut acc = [f32x8::splat(1.0); 24];
    let (x, y) = (black_box(f32x8::splat(0.999_999)), black_box(f32x8::splat(1e-7)));
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = a.mul_add(x, y);
        }
    }
    black_box(acc);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `unsafe fn $name(iterations)`: the probe's chains on one x86 level's vectors, the same
    /// body for each level.
    macro_rules! fma_chains {
        ($name:ident, $features:literal, $splat:ident, $fma:ident) => {
            /// # Safety
            /// The CPU must support the features this function enables.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(iterations: u64) {
                let mut acc = [$splat(1.0); 24];
                let (x, y) = (black_box($splat(0.999_999)), black_box($splat(1e-7)));
                for _ in 0..iterations {
                    for a in acc.iter_mut() {
                        *a = $fma(*a, x, y);
                    }
                }
                black_box(acc);
            }
        };
    }

    fma_chains!(chains_avx512, "avx512f", _mm512_set1_ps, _mm512_fmadd_ps);
    fma_chains!(chains_avx2, "avx2,fma", _mm256_set1_ps, _mm256_fmadd_ps);

    /// The chains on `vdpbf16ps` (16 `f32` lanes, each adding two bf16 products).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn chains_avx512_bf16(iterations: u64) {
        let mut acc = [_mm512_set1_ps(1.0); 24];
        let x = black_box(_mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3), _mm512_set1_ps(1e-3)));
        let y = black_box(_mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3), _mm512_set1_ps(1e-3)));
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm512_dpbf16_ps(*a, x, y);
            }
        }
        black_box(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_a_positive_rate_at_every_level_and_precision() {
        for level in crate::dispatch::available_levels() {
            for precision in [Precision::F32, Precision::Bf16] {
                let flops = trial_flops(level, precision, 1000);
                assert!(flops.is_finite() && flops > 1e6, "{level:?} {precision}: {flops}");
            }
        }
    }

    #[test]
    fn the_peak_is_a_positive_rate() {
        let peak = peak_flops(crate::dispatch::cpu_level(), Precision::F32);
        assert!(peak.is_finite() && peak > 1e6, "{peak}");
    }
}
