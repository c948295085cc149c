//! Portable level: `wide::f32x8` (two SSE2 registers on baseline x86-64, two NEON registers on
//! aarch64, scalar elsewhere). No `unsafe`, no runtime features; compiles on any target.
//! Without hardware FMA, `mul_add` is a multiply then an add (two roundings).

use wide::{f32x8, i32x8};

use super::Simd;

/// Token for the portable level (always available).
#[derive(Clone, Copy)]
pub(crate) struct Portable;

/// `1.5 · 2^23`: adding and subtracting it rounds a float with `|v| < 2^22` to an integer
/// (ties to even, in the default rounding mode).
const ROUND_MAGIC: f32 = 12_582_912.0;

impl Simd for Portable {
    const LANES: usize = 8;
    type V = f32x8;
    type M = f32x8;
    type D = [f64; 8];

    #[inline(always)]
    fn splat(self, x: f32) -> f32x8 {
        f32x8::splat(x)
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> f32x8 {
        let lanes: [f32; 8] = src[..8].try_into().expect("8 elements");
        f32x8::new(lanes)
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: f32x8) {
        dst[..8].copy_from_slice(&v.to_array());
    }
    #[inline(always)]
    fn load_tail(self, src: &[f32], fill: f32) -> f32x8 {
        let n = src.len().min(8);
        let mut lanes = [fill; 8];
        lanes[..n].copy_from_slice(&src[..n]);
        f32x8::new(lanes)
    }
    #[inline(always)]
    fn store_tail(self, dst: &mut [f32], v: f32x8) {
        let n = dst.len().min(8);
        dst[..n].copy_from_slice(&v.to_array()[..n]);
    }

    #[inline(always)]
    fn add(self, a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32x8, b: f32x8) -> f32x8 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32x8, b: f32x8) -> f32x8 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32x8, b: f32x8) -> f32x8 {
        a / b
    }
    #[inline(always)]
    fn mul_add(self, a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn neg_mul_add(self, a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
        a.mul_neg_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f32x8, b: f32x8) -> f32x8 {
        a.fast_max(b)
    }
    #[inline(always)]
    fn clamp(self, x: f32x8, lo: f32x8, hi: f32x8) -> f32x8 {
        // Comparisons with NaN are false, so a NaN lane keeps `x`.
        let x = x.simd_lt(lo).select(lo, x);
        x.simd_gt(hi).select(hi, x)
    }
    #[inline(always)]
    fn sqrt(self, a: f32x8) -> f32x8 {
        a.sqrt()
    }
    #[inline(always)]
    fn abs(self, a: f32x8) -> f32x8 {
        a.abs()
    }
    #[inline(always)]
    fn with_sign_of(self, mag: f32x8, sign: f32x8) -> f32x8 {
        mag | (sign & f32x8::splat(-0.0))
    }
    #[inline(always)]
    fn round(self, v: f32x8) -> f32x8 {
        let magic = f32x8::splat(ROUND_MAGIC);
        (v + magic) - magic
    }
    #[inline(always)]
    fn mul_pow2(self, p: f32x8, n: f32x8) -> f32x8 {
        // As on AVX2: 2^n = 2^(n>>1) · 2^(n - (n>>1)), each factor a normal float.
        let ni: i32x8 = n.round_int();
        let n1 = ni >> 1;
        let n2 = ni - n1;
        let bias = i32x8::splat(127);
        let e1: i32x8 = (n1 + bias) << 23u32;
        let e2: i32x8 = (n2 + bias) << 23u32;
        let s1 = f32x8::from_bits(e1.cast_unsigned());
        let s2 = f32x8::from_bits(e2.cast_unsigned());
        (p * s1) * s2
    }

    #[inline(always)]
    fn lt(self, a: f32x8, b: f32x8) -> f32x8 {
        a.simd_lt(b)
    }
    #[inline(always)]
    fn select(self, m: f32x8, if_true: f32x8, if_false: f32x8) -> f32x8 {
        m.select(if_true, if_false)
    }

    #[inline(always)]
    fn reduce_add(self, v: f32x8) -> f32 {
        // A fixed order: pairwise over the lanes.
        let a = v.to_array();
        ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
    }
    #[inline(always)]
    fn reduce_max(self, v: f32x8) -> f32 {
        v.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max)
    }

    #[inline(always)]
    fn d_zero(self) -> [f64; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    fn d_add_squares(self, mut acc: [f64; 8], v: f32x8) -> [f64; 8] {
        for (a, x) in acc.iter_mut().zip(v.to_array()) {
            let x = x as f64;
            *a += x * x;
        }
        acc
    }
    #[inline(always)]
    fn d_reduce(self, acc: [f64; 8]) -> f64 {
        ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }
}
