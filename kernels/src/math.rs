//! Fast vector `exp`, `sigmoid` and `tanh` for `f32`, used by the fused kernels, and the
//! scalar `sigmoid` of the plain bodies.
//!
//! # Method
//! - `exp(x)`: `x` is clamped to `[-104, 89]` (beyond which `f32` `exp` is 0 or +∞ anyway),
//!   `n = round(x·log2 e)`, `r = x - n·ln 2` with a two-constant Cody–Waite split (exact for
//!   these `n`), `exp(r) ≈ 1 + r + r²·P(r)` with Cephes' degree-5 minimax `P` on
//!   `|r| ≤ ln2/2`, then `·2^n` with IEEE overflow to +∞ and gradual underflow
//!   (`vscalefps` on AVX-512, two exact power-of-two factors elsewhere).
//! - `sigmoid(x) = 1 / (1 + exp(-x))` (one IEEE division).
//! - `tanh(x)`: for `|x| < 0.625` the odd polynomial `x + x³·Q(x²)` (Cephes' `tanhf`
//!   minimax), which keeps the *relative* error small down to subnormal `x`; otherwise
//!   `sign(x)·(1 - 2/(exp(2|x|) + 1))`.
//!
//! # Error bounds
//! Maximum relative error against the `f64` function of the same `f32` input, measured by the
//! tests below over every `1e-4` in `[-20, 20]` (and, for `exp`, every `1e-3` in
//! `[-87.3, 88.7]`; for `tanh`, a log-spaced sweep of `|x|` in `[1e-30, 1]`), on every CPU
//! level (AVX-512F, AVX2+FMA, portable `wide`):
//!
//! | function  | bound (asserted)    | measured (AVX-512F, AVX2+FMA, portable on x86-64) |
//! |-----------|---------------------|---------------------------------------------------|
//! | `exp`     | 1.0e-7 (≈ 1.7 ulp)  | 8.2e-8, 8.2e-8, 7.8e-8                            |
//! | `sigmoid` | 2.0e-7              | 1.5e-7 on every level                             |
//! | `tanh`    | 1.5e-7              | 1.3e-7 on every level                             |
//!
//! The exact measured maxima per level are printed by
//! `cargo test -p charrnn-kernels math -- --nocapture`.
//! A correctly rounded result alone is off by up to 6e-8 (half an ulp) relative.
//! The bounds hold where the result is a normal `f32`; `exp` results below 2^-126 are
//! subnormal (gradual underflow, fewer significant bits) and `sigmoid(x)` for `x < -88.7`
//! returns 0 (the true value is below 3e-39).
//!
//! # Special values
//! `exp`: `-∞ → 0`, `+∞ → +∞`, `+∞` for `x > 88.7228` (above `ln f32::MAX`), `0` for
//! `x < -103.973` (below half the smallest subnormal).
//! `sigmoid`: `-∞ → 0`, `+∞ → 1`, exactly `1` for `x ≥ 17`, exactly `0` for `x ≤ -89`.
//! `tanh`: `±∞ → ±1`, exactly `±1` for `|x| ≥ 9.1`, `±0 → ±0`, `tanh(x) = x` for tiny `x`.
//! NaN in gives NaN out for all three.

use crate::simd::Simd;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `n·LN2_HI` is exact for `|n| ≤ 2^15`.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf` coefficients: `exp(r) ≈ 1 + r + r²·(P0 r⁵ + … + P5)`.
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_6e-1, 0.5];
/// Cephes `tanhf` coefficients: `tanh(x) ≈ x + x³·(Q0 x⁸ + … + Q4)` for `|x| < 0.625`.
const TANH_Q: [f32; 5] = [-5.704_988_7e-3, 2.063_908_8e-2, -5.373_971_5e-2, 1.333_144_2e-1, -3.333_328e-1];
const TANH_SMALL: f32 = 0.625;

/// Logistic sigmoid of one value, in the plain scalar bodies (`1 / (1 + e^-x)`).
#[inline]
pub fn sigmoid_scalar<F: crate::Float>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

/// Vector `exp` (see the module docs for the method and error bound).
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    let x = s.clamp(x, s.splat(-104.0), s.splat(89.0));
    let n = s.round(s.mul(x, s.splat(LOG2_E)));
    let r = s.neg_mul_add(n, s.splat(LN2_HI), x);
    let r = s.neg_mul_add(n, s.splat(LN2_LO), r);
    let mut p = s.splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = s.mul_add(p, r, s.splat(c));
    }
    let y = s.mul_add(p, s.mul(r, r), r);
    s.mul_pow2(s.add(y, s.splat(1.0)), n)
}

/// Vector logistic sigmoid `1 / (1 + exp(-x))`.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let e = exp(s, s.sub(s.splat(0.0), x));
    s.div(one, s.add(one, e))
}

/// Vector `tanh`.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let a = s.abs(x);
    // Large |x|: 1 - 2/(e^{2|x|} + 1), which is exactly 1 once e^{2|x|} is large or +∞.
    let e = exp(s, s.add(a, a));
    let large = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    // Small |x|: odd polynomial |x| + |x|³·Q(x²).
    let z = s.mul(a, a);
    let mut q = s.splat(TANH_Q[0]);
    for &c in &TANH_Q[1..] {
        q = s.mul_add(q, z, s.splat(c));
    }
    let small = s.mul_add(s.mul(q, z), a, a);
    // Both are magnitudes (a NaN stays NaN); tanh is odd.
    s.with_sign_of(s.select(s.lt(a, s.splat(TANH_SMALL)), small, large), x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::CpuLevel;
    use crate::simd::{for_each_vector, run, SimdKernel, VectorAt};

    // Slice entry points for the vector functions, for these tests.
    /// Which function a [`Map`] applies.
    #[derive(Clone, Copy)]
    enum Func {
        Exp,
        Sigmoid,
        Tanh,
    }

    /// `out[k] = func(x[k])`.
    struct Map<'a> {
        func: Func,
        x: &'a [f32],
        out: &'a mut [f32],
    }

    impl SimdKernel for Map<'_> {
        type Output = ();
        #[inline(always)]
        fn run_with<S: Simd>(self, s: S) {
            let f = |v: S::V| match self.func {
                Func::Exp => exp(s, v),
                Func::Sigmoid => sigmoid(s, v),
                Func::Tanh => tanh(s, v),
            };
            for_each_vector!(S, self.x.len(), |at| {
                at.store(s, self.out, f(at.load(s, self.x)));
            });
        }
    }

    fn map_f32(level: CpuLevel, func: Func, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "input and output lengths differ");
        run(level, Map { func, x, out })
    }

    /// `out[k] = exp(x[k])` at `level` (which must be one this CPU supports; panics otherwise).
    fn exp_f32(level: CpuLevel, x: &[f32], out: &mut [f32]) {
        map_f32(level, Func::Exp, x, out)
    }

    /// `out[k] = 1 / (1 + exp(-x[k]))` at `level` (which must be one this CPU supports).
    fn sigmoid_f32(level: CpuLevel, x: &[f32], out: &mut [f32]) {
        map_f32(level, Func::Sigmoid, x, out)
    }

    /// `out[k] = tanh(x[k])` at `level` (which must be one this CPU supports).
    fn tanh_f32(level: CpuLevel, x: &[f32], out: &mut [f32]) {
        map_f32(level, Func::Tanh, x, out)
    }

    use crate::dispatch::available_f32_levels;

    type Kernel = fn(CpuLevel, &[f32], &mut [f32]);

    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Maximum relative error of `kernel` against `exact` over `xs` (results exactly 0 in
    /// `f64` must be exactly 0), and the worst input.
    fn max_rel_error(level: CpuLevel, kernel: Kernel, exact: fn(f64) -> f64, xs: &[f32]) -> (f64, f32) {
        let mut out = vec![0.0f32; xs.len()];
        kernel(level, xs, &mut out);
        let mut worst = (0.0f64, 0.0f32);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = exact(x as f64);
            let err = if want == 0.0 {
                if y == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                ((y as f64 - want) / want).abs()
            };
            // NaN errors (a NaN result) count as the worst.
            if err.is_nan() || err > worst.0 {
                worst = (err, x);
            }
        }
        worst
    }

    fn sweep(lo: f64, hi: f64, step: f64) -> Vec<f32> {
        let n = ((hi - lo) / step).round() as usize;
        (0..=n).map(|k| (lo + k as f64 * step) as f32).collect()
    }

    /// Log-spaced magnitudes in `[1e-30, 1]`, both signs.
    fn tiny_sweep() -> Vec<f32> {
        (0..=30_000)
            .flat_map(|k| {
                let x = 10f64.powf(-30.0 + k as f64 * 1e-3) as f32;
                [x, -x]
            })
            .collect()
    }

    #[test]
    fn max_relative_errors_are_within_the_documented_bounds_on_every_level() {
        let dense = sweep(-20.0, 20.0, 1e-4);
        let exp_wide = sweep(-87.3, 88.7, 1e-3);
        let tiny = tiny_sweep();
        type Case<'a> = (&'a str, Kernel, fn(f64) -> f64, &'a [&'a [f32]], f64);
        let cases: [Case; 3] = [
            ("exp", exp_f32, f64::exp, &[&dense, &exp_wide], 1.0e-7),
            ("sigmoid", sigmoid_f32, sigmoid64, &[&dense], 2.0e-7),
            ("tanh", tanh_f32, f64::tanh, &[&dense, &tiny], 1.5e-7),
        ];
        for level in available_f32_levels() {
            for (name, kernel, exact, sweeps, bound) in cases {
                for xs in sweeps {
                    let (err, at) = max_rel_error(level, kernel, exact, xs);
                    println!("{name:8} {:9} max rel error {err:.3e} at x = {at}", level.name());
                    assert!(err <= bound, "{name} on {level:?}: relative error {err:e} at x = {at} exceeds {bound:e}");
                }
            }
        }
    }

    #[test]
    fn special_values_saturate_and_nan_propagates() {
        let xs = [
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            0.0,
            -0.0,
            1000.0,
            -1000.0,
            89.0,
            -89.0,
            88.8,
            -104.5,
            20.0,
            -20.0,
            f32::MAX,
            f32::MIN,
            1e-40,
            -1e-40,
        ];
        for level in available_f32_levels() {
            let apply = |kernel: Kernel| {
                let mut out = vec![0.0f32; xs.len()];
                kernel(level, &xs, &mut out);
                out
            };
            let (e, sg, th) = (apply(exp_f32), apply(sigmoid_f32), apply(tanh_f32));
            let ctx = format!("{level:?}");
            // exp
            assert_eq!(e[0], 0.0, "{ctx}");
            assert_eq!(e[1], f32::INFINITY, "{ctx}");
            assert!(e[2].is_nan(), "{ctx}");
            assert_eq!((e[3], e[4]), (1.0, 1.0), "{ctx}");
            assert_eq!((e[5], e[6]), (f32::INFINITY, 0.0), "{ctx}");
            assert_eq!(e[7], f32::INFINITY, "{ctx}: exp(89) overflows");
            assert!(e[8] > 0.0 && e[8] < 1e-38, "{ctx}: exp(-89) is subnormal, got {}", e[8]);
            assert_eq!(e[9], f32::INFINITY, "{ctx}");
            assert_eq!(e[10], 0.0, "{ctx}");
            assert_eq!((e[13], e[14]), (f32::INFINITY, 0.0), "{ctx}");
            assert_eq!((e[15], e[16]), (1.0, 1.0), "{ctx}");
            // sigmoid
            assert_eq!((sg[0], sg[1]), (0.0, 1.0), "{ctx}");
            assert!(sg[2].is_nan(), "{ctx}");
            assert_eq!((sg[3], sg[4]), (0.5, 0.5), "{ctx}");
            assert_eq!((sg[5], sg[6]), (1.0, 0.0), "{ctx}");
            assert_eq!(sg[11], 1.0, "{ctx}");
            assert!((sg[12] as f64 / sigmoid64(-20.0) - 1.0).abs() < 3e-7, "{ctx}");
            assert_eq!((sg[13], sg[14]), (1.0, 0.0), "{ctx}");
            // tanh
            assert_eq!((th[0], th[1]), (-1.0, 1.0), "{ctx}");
            assert!(th[2].is_nan(), "{ctx}");
            assert_eq!(th[3].to_bits(), 0.0f32.to_bits(), "{ctx}");
            assert_eq!(th[4].to_bits(), (-0.0f32).to_bits(), "{ctx}");
            assert_eq!((th[5], th[6]), (1.0, -1.0), "{ctx}");
            assert_eq!((th[11], th[12]), (1.0, -1.0), "{ctx}");
            assert_eq!((th[13], th[14]), (1.0, -1.0), "{ctx}");
            assert_eq!((th[15], th[16]), (1e-40, -1e-40), "{ctx}: tanh(x) = x for tiny x");

            // The documented saturation thresholds.
            let edges = [88.7229f32, 88.7228, -103.98, -103.96];
            let mut out = [0.0f32; 4];
            exp_f32(level, &edges, &mut out);
            assert_eq!(out[0], f32::INFINITY, "{ctx}");
            assert!(out[1].is_finite() && out[1] > 3.4e38, "{ctx}: {}", out[1]);
            assert_eq!(out[2], 0.0, "{ctx}");
            assert_eq!(out[3], f32::from_bits(1), "{ctx}: the smallest subnormal");
            let big = sweep(17.0, 200.0, 1e-3);
            let mut out = vec![0.0f32; big.len()];
            sigmoid_f32(level, &big, &mut out);
            assert!(out.iter().all(|&y| y == 1.0), "{ctx}: sigmoid(x >= 17) == 1");
            let neg: Vec<f32> = big.iter().map(|&x| -x - 72.0).collect();
            sigmoid_f32(level, &neg, &mut out);
            assert!(out.iter().all(|&y| y == 0.0), "{ctx}: sigmoid(x <= -89) == 0");
            let big = sweep(9.1, 200.0, 1e-3);
            let mut out = vec![0.0f32; big.len()];
            tanh_f32(level, &big, &mut out);
            assert!(out.iter().all(|&y| y == 1.0), "{ctx}: tanh(x >= 9.1) == 1");
            let neg: Vec<f32> = big.iter().map(|&x| -x).collect();
            tanh_f32(level, &neg, &mut out);
            assert!(out.iter().all(|&y| y == -1.0), "{ctx}: tanh(x <= -9.1) == -1");
        }
    }

    #[test]
    fn every_length_and_tail_is_computed() {
        for level in available_f32_levels() {
            for n in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 65, 127, 129] {
                let xs: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin() * 4.0).collect();
                let mut out = vec![f32::NAN; n];
                tanh_f32(level, &xs, &mut out);
                for (k, (&x, &y)) in xs.iter().zip(&out).enumerate() {
                    let want = (x as f64).tanh();
                    assert!((y as f64 - want).abs() <= 1.5e-7 * want.abs(), "{level:?} n={n} k={k}");
                }
            }
        }
    }
}
