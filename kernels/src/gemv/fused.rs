//! The vector body of [`super::Gemv`], generic over the SIMD level.
//!
//! Columns go in blocks of up to [`BLOCK`] vectors: one accumulator each, so up to [`BLOCK`]
//! independent multiply-add chains hide the FMA latency, and each row of `W` is read once per
//! block as one contiguous run. The columns after the last whole block (a narrow product, the
//! output layer's 65 = 4 vectors and one lane) are one last block of however many whole vectors
//! are left plus a masked tail vector, all in one pass over the rows.

use crate::simd::Simd;

/// Vectors per column block (8 × 16 lanes: 128 columns at AVX-512).
const BLOCK: usize = 8;

impl crate::simd::SimdKernel for super::Gemv<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let super::Gemv { k, n, x, w, ldw, y } = self;
        for depth in super::depth_blocks(k) {
            columns(s, n, &x[depth.clone()], &w[depth.start * ldw..], ldw, y);
        }
    }
}

/// `y[..n] += xᵀ·W` for the rows of `W` (leading dimension `ldw`) that `x` covers, one sum
/// per element.
#[inline(always)]
fn columns<S: Simd>(s: S, n: usize, x: &[f32], w: &[f32], ldw: usize, y: &mut [f32]) {
    let mut j = 0;
    while j + BLOCK * S::LANES <= n {
        block::<S, BLOCK, false>(s, x, w, ldw, j, n, y);
        j += BLOCK * S::LANES;
    }
    let (vectors, tail) = ((n - j) / S::LANES, !(n - j).is_multiple_of(S::LANES));
    macro_rules! last_block {
        ($($vectors:literal)*) => {
            match (vectors, tail) {
                $(
                    ($vectors, false) => block::<S, $vectors, false>(s, x, w, ldw, j, n, y),
                    ($vectors, true) => block::<S, $vectors, true>(s, x, w, ldw, j, n, y),
                )*
                _ => unreachable!("{vectors} whole vectors after the last block of {BLOCK}"),
            }
        };
    }
    last_block!(0 1 2 3 4 5 6 7);
}

/// `y[j..] += xᵀ·W[.., j..]` over `V` whole vectors of columns and, with `TAIL`, the masked
/// vector of the columns from `j + V·LANES` to `n` (fewer than a vector).
#[inline(always)]
fn block<S: Simd, const V: usize, const TAIL: bool>(
    s: S,
    x: &[f32],
    w: &[f32],
    ldw: usize,
    j: usize,
    n: usize,
    y: &mut [f32],
) {
    let tail_at = j + V * S::LANES;
    let mut acc = [s.splat(0.0); V];
    let mut tail_acc = s.splat(0.0);
    for (p, &xp) in x.iter().enumerate() {
        let row = &w[p * ldw + j..p * ldw + n];
        let xp = s.splat(xp);
        for (u, a) in acc.iter_mut().enumerate() {
            *a = s.mul_add(xp, s.load(&row[u * S::LANES..]), *a);
        }
        if TAIL {
            tail_acc = s.mul_add(xp, s.load_tail(&row[V * S::LANES..], 0.0), tail_acc);
        }
    }
    for (u, a) in acc.into_iter().enumerate() {
        let at = j + u * S::LANES;
        let sum = s.add(s.load(&y[at..]), a);
        s.store(&mut y[at..], sum);
    }
    if TAIL {
        let out = &mut y[tail_at..n];
        let sum = s.add(s.load_tail(out, 0.0), tail_acc);
        s.store_tail(out, sum);
    }
}
