//! The vector vocabulary the fused elementwise kernels are written in, and the runner that
//! instantiates a kernel body for one SIMD level.
//!
//! A kernel body is written once, generic over [`Simd`] (a zero-sized token for one level whose
//! methods are the vector operations), and marked `#[inline(always)]`. [`run`] checks the
//! requested [`CpuLevel`] against the CPU and calls the body through a small
//! `#[target_feature]` function per level, so that the body and every operation it uses are
//! inlined and compiled for that level (AVX-512F, AVX2+FMA), or for the baseline target (the
//! portable level, built on the `wide` crate: SSE2 on x86-64, NEON on aarch64). Dispatch lives
//! here; the vector bodies live next to their kernels (`lstm_cell/fused.rs`, ...).
//!
//! Levels: [`avx512::Avx512`] (16 lanes), [`avx2::Avx2`] (8 lanes), [`portable::Portable`]
//! (8 lanes); the two x86 levels take their types and the methods that differ only in the
//! intrinsic from one table with a column per level (`x86_ops.rs`). Tails (lengths that are not a multiple of the lane count) go through
//! [`Simd::load_tail`] / [`Simd::store_tail`], which are masked on AVX-512 and AVX2 and copy
//! through a small stack buffer on the portable level; [`for_each_vector!`] is the loop over a
//! row, whole vectors then the tail, with the body written once.

use std::sync::OnceLock;

use crate::dispatch::{detected_level, CpuLevel};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;
mod vector_loop;
#[cfg(target_arch = "x86_64")]
mod x86_ops;

pub(crate) use vector_loop::{for_each_vector, Full, Tail, VectorAt};

/// One SIMD level: `f32` vectors of [`Simd::LANES`] lanes and the operations on them.
///
/// A value of an implementing type is a proof that the CPU supports the level (the x86 tokens
/// can only be built through an `unsafe` constructor whose precondition is that the feature was
/// detected), so every method is safe.
pub(crate) trait Simd: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// A vector of `LANES` `f32`.
    type V: Copy;
    /// A lane mask (result of a comparison).
    type M: Copy;
    /// An `f64` accumulator for `LANES` lanes (exact sums of squares).
    type D: Copy;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// The first `LANES` elements of `src`. Panics if `src` is shorter.
    fn load(self, src: &[f32]) -> Self::V;
    /// Stores into the first `LANES` elements of `dst`. Panics if `dst` is shorter.
    fn store(self, dst: &mut [f32], v: Self::V);
    /// The first `min(src.len(), LANES)` elements of `src`; the other lanes are `fill`.
    fn load_tail(self, src: &[f32], fill: f32) -> Self::V;
    /// Stores the first `min(dst.len(), LANES)` lanes of `v` into `dst`.
    fn store_tail(self, dst: &mut [f32], v: Self::V);

    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b` (IEEE division, correctly rounded).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c` (fused where the level has FMA).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a · b` (fused where the level has FMA).
    fn neg_mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum (for non-NaN inputs; which operand a NaN yields is unspecified).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `x` clamped to `[lo, hi]`; a NaN lane of `x` stays NaN.
    fn clamp(self, x: Self::V, lo: Self::V, hi: Self::V) -> Self::V;
    /// Square root (correctly rounded).
    fn sqrt(self, a: Self::V) -> Self::V;
    /// `|a|`.
    fn abs(self, a: Self::V) -> Self::V;
    /// `mag` with its sign bit replaced by that of `sign` (`mag` must be non-negative).
    fn with_sign_of(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// Round to nearest, ties to even, for `|v| < 2^22` (NaN stays NaN; the sign of a zero
    /// result is unspecified).
    fn round(self, v: Self::V) -> Self::V;
    /// `p · 2^n` for lanes of `n` holding integers in `[-150, 129]`, with IEEE overflow to
    /// infinity and gradual underflow (one rounding); NaN in `p` gives NaN.
    fn mul_pow2(self, p: Self::V, n: Self::V) -> Self::V;

    /// Lanes where `a < b` (false for NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `if_true` where `m` is set, else `if_false`.
    fn select(self, m: Self::M, if_true: Self::V, if_false: Self::V) -> Self::V;

    /// Sum of the lanes (in a fixed order for the level).
    fn reduce_add(self, v: Self::V) -> f32;
    /// Maximum of the lanes (non-NaN inputs).
    fn reduce_max(self, v: Self::V) -> f32;

    /// A zero `f64` accumulator.
    fn d_zero(self) -> Self::D;
    /// `acc + v²` lane-wise, in `f64` (each square is exact in `f64`).
    fn d_add_squares(self, acc: Self::D, v: Self::V) -> Self::D;
    /// Sum of the accumulator's lanes (in a fixed order for the level).
    fn d_reduce(self, acc: Self::D) -> f64;
}

/// A kernel body, run by [`run`] at one level. Implementations must mark `run_with` (and every
/// generic helper it calls) `#[inline(always)]`, so that the body is compiled inside the
/// level's `#[target_feature]` function rather than for the baseline target.
pub(crate) trait SimdKernel {
    /// What the kernel returns.
    type Output;
    /// The body, at the level `s` stands for.
    fn run_with<S: Simd>(self, s: S) -> Self::Output;
}

/// [`detected_level`], cached.
fn detected() -> CpuLevel {
    static DETECTED: OnceLock<CpuLevel> = OnceLock::new();
    *DETECTED.get_or_init(detected_level)
}

/// Runs `kernel` at `level`.
///
/// # Panics
/// If `level` is above what this CPU supports ([`detected_level`]). Passing such a level is a
/// precondition violation of every `*_f32(level, ...)` kernel: use [`crate::dispatch::cpu_level`]
/// or a level from [`crate::dispatch::available_levels`]. The check keeps the kernels safe
/// Rust even when misused.
pub(crate) fn run<K: SimdKernel>(level: CpuLevel, kernel: K) -> K::Output {
    let top = detected();
    assert!(level <= top, "CPU level {} requested, but this CPU supports at most {}", level.name(), top.name());
    match level.f32_level() {
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx512 => {
            // SAFETY: `level <= detected_level()` was asserted above, so AVX-512F is present.
            unsafe { run_avx512(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 => {
            // SAFETY: `level <= detected_level()` was asserted above, so AVX2 and FMA are
            // present (detected_level reports Avx2 or above only when both are).
            unsafe { run_avx2(kernel) }
        }
        // Off x86-64, the assertion leaves only the portable level.
        _ => kernel.run_with(portable::Portable),
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<K: SimdKernel>(kernel: K) -> K::Output {
    // SAFETY: the caller guarantees AVX-512F.
    kernel.run_with(unsafe { avx512::Avx512::new_unchecked() })
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: SimdKernel>(kernel: K) -> K::Output {
    // SAFETY: the caller guarantees AVX2 and FMA.
    kernel.run_with(unsafe { avx2::Avx2::new_unchecked() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::available_f32_levels;

    /// Exercises the tail paths and reductions of every level on every length up to two vectors.
    struct Probe<'a> {
        src: &'a [f32],
        dst: &'a mut [f32],
    }

    impl SimdKernel for Probe<'_> {
        type Output = (f32, f32, f64, usize);
        #[inline(always)]
        fn run_with<S: Simd>(self, s: S) -> Self::Output {
            let n = self.src.len();
            let (mut sum, mut max, mut sq) = (s.splat(0.0), s.splat(f32::NEG_INFINITY), s.d_zero());
            let mut j = 0;
            while j + S::LANES <= n {
                let v = s.load(&self.src[j..]);
                s.store(&mut self.dst[j..], s.mul(v, s.splat(2.0)));
                sum = s.add(sum, v);
                max = s.max(max, v);
                sq = s.d_add_squares(sq, v);
                j += S::LANES;
            }
            if j < n {
                let v = s.load_tail(&self.src[j..], 0.0);
                let vm = s.load_tail(&self.src[j..], f32::NEG_INFINITY);
                s.store_tail(&mut self.dst[j..], s.mul(v, s.splat(2.0)));
                sum = s.add(sum, v);
                max = s.max(max, vm);
                sq = s.d_add_squares(sq, v);
            }
            (s.reduce_add(sum), s.reduce_max(max), s.d_reduce(sq), S::LANES)
        }
    }

    #[test]
    fn loads_stores_tails_and_reductions_on_every_level() {
        for level in available_f32_levels() {
            for n in 0..=33usize {
                let src: Vec<f32> = (0..n).map(|i| (i as f32) - 7.5).collect();
                // A guard element after the range checks that tail stores stay in bounds.
                let mut dst = vec![42.0f32; n + 1];
                let (sum, max, sq, lanes) = run(level, Probe { src: &src, dst: &mut dst[..n] });
                assert!(lanes == 8 || lanes == 16);
                let want_sum: f32 = src.iter().sum();
                let want_max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let want_sq: f64 = src.iter().map(|&x| (x as f64) * (x as f64)).sum();
                assert_eq!(sum, want_sum, "{level:?} n={n}");
                assert_eq!(max, want_max, "{level:?} n={n}");
                assert_eq!(sq, want_sq, "{level:?} n={n}");
                for k in 0..n {
                    assert_eq!(dst[k], 2.0 * src[k], "{level:?} n={n} k={k}");
                }
                assert_eq!(dst[n], 42.0, "{level:?} n={n}: store past the end");
            }
        }
    }

    struct Ops;

    impl SimdKernel for Ops {
        type Output = Vec<[f32; 6]>;
        #[inline(always)]
        fn run_with<S: Simd>(self, s: S) -> Self::Output {
            let xs = [-3.5f32, -2.5, -0.5, 0.5, 1.5, 2.5, -0.0, f32::NAN, f32::INFINITY, -1e30];
            let mut out = Vec::new();
            for &x in &xs {
                let v = s.splat(x);
                let lane = |v: S::V| {
                    let mut o = [0.0f32; 16];
                    s.store_tail(&mut o, v);
                    o[0]
                };
                let lo = s.splat(-2.0);
                let hi = s.splat(2.0);
                out.push([
                    lane(s.round(v)),
                    lane(s.clamp(v, lo, hi)),
                    lane(s.with_sign_of(s.splat(3.0), v)),
                    lane(s.select(s.lt(v, s.splat(0.0)), s.splat(1.0), s.splat(0.0))),
                    lane(s.mul_pow2(s.splat(1.5), s.clamp(s.round(v), lo, hi))),
                    lane(s.abs(v)),
                ]);
            }
            out
        }
    }

    #[test]
    fn scalar_semantics_of_the_operations_agree_across_levels() {
        let expect = |x: f32| -> [f32; 6] {
            let r = if x.is_nan() {
                f32::NAN
            } else if x.abs() >= 4194304.0 {
                x
            } else {
                x.round_ties_even()
            };
            let c = if x.is_nan() { x } else { x.clamp(-2.0, 2.0) };
            let n = if r.is_nan() { r } else { r.clamp(-2.0, 2.0) };
            [r, c, 3.0f32.copysign(x), if x < 0.0 { 1.0 } else { 0.0 }, 1.5 * n.exp2(), x.abs()]
        };
        let xs = [-3.5f32, -2.5, -0.5, 0.5, 1.5, 2.5, -0.0, f32::NAN, f32::INFINITY, -1e30];
        for level in available_f32_levels() {
            let got = run(level, Ops);
            for (x, g) in xs.iter().zip(&got) {
                let e = expect(*x);
                for k in 0..6 {
                    if k == 4 && x.is_nan() {
                        continue; // mul_pow2 of a NaN exponent is unspecified.
                    }
                    // The sign of a zero from `round` is unspecified.
                    let same = (g[k].is_nan() && e[k].is_nan())
                        || g[k].to_bits() == e[k].to_bits()
                        || (k == 0 && g[k] == 0.0 && e[k] == 0.0);
                    assert!(same, "{level:?} op {k} at {x}: {} vs {}", g[k], e[k]);
                }
            }
        }
    }

    #[test]
    fn mul_pow2_over_and_underflows_like_ieee() {
        struct P;
        impl SimdKernel for P {
            type Output = Vec<f32>;
            #[inline(always)]
            fn run_with<S: Simd>(self, s: S) -> Vec<f32> {
                [(1.0f32, 129.0f32), (1.9, 127.0), (1.0, -149.0), (1.0, -150.0), (1.5, -150.0), (1.25, -140.0)]
                    .iter()
                    .map(|&(p, n)| {
                        let mut o = [0.0f32; 16];
                        s.store_tail(&mut o, s.mul_pow2(s.splat(p), s.splat(n)));
                        o[0]
                    })
                    .collect()
            }
        }
        let want =
            [f32::INFINITY, 1.9 * 2f32.powi(127), f32::from_bits(1), 0.0, f32::from_bits(1), f32::from_bits(640)];
        for level in available_f32_levels() {
            assert_eq!(run(level, P), want, "{level:?}");
        }
    }

    #[test]
    fn unsupported_level_panics_instead_of_running() {
        let top = detected_level();
        let Some(above) = CpuLevel::ALL.into_iter().find(|&l| l > top) else {
            return; // Nothing above the top level to try.
        };
        let result = std::panic::catch_unwind(|| run(above, Ops));
        assert!(result.is_err());
    }
}
