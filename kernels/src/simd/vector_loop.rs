//! The loop every fused body runs over a row: whole vectors, then one masked tail, with the
//! body written once ([`for_each_vector!`]).

use super::Simd;

/// Where one vector of a row lies, and how it is read and written: a whole vector ([`Full`])
/// or the row's last, shorter one ([`Tail`], masked).
pub(crate) trait VectorAt: Copy {
    /// The vector of `src` here; the lanes past the end of a tail are `fill`.
    fn load_or<S: Simd>(self, s: S, src: &[f32], fill: f32) -> S::V;

    /// Stores `v` into `dst` here (for a tail, only the lanes inside `dst`).
    fn store<S: Simd>(self, s: S, dst: &mut [f32], v: S::V);

    /// The vector of `src` here; the lanes past the end of a tail are 0.
    #[inline(always)]
    fn load<S: Simd>(self, s: S, src: &[f32]) -> S::V {
        self.load_or(s, src, 0.0)
    }

    /// The vector here of each of `G` blocks (a cell's gates), in order.
    #[inline(always)]
    fn load_each<S: Simd, B: AsRef<[f32]>, const G: usize>(self, s: S, blocks: &[B; G]) -> [S::V; G] {
        std::array::from_fn(|g| self.load(s, blocks[g].as_ref()))
    }

    /// Stores `v[g]` into block `g` here, for each of `G` blocks.
    #[inline(always)]
    fn store_each<S: Simd, const G: usize>(self, s: S, blocks: &mut [&mut [f32]; G], v: [S::V; G]) {
        for (block, v) in blocks.iter_mut().zip(v) {
            self.store(s, block, v);
        }
    }
}

/// The whole vector that starts at this index.
#[derive(Clone, Copy)]
pub(crate) struct Full(pub(crate) usize);

/// The last vector of a row, starting at this index and shorter than the lane count.
#[derive(Clone, Copy)]
pub(crate) struct Tail(pub(crate) usize);

impl VectorAt for Full {
    #[inline(always)]
    fn load_or<S: Simd>(self, s: S, src: &[f32], _fill: f32) -> S::V {
        s.load(&src[self.0..])
    }
    #[inline(always)]
    fn store<S: Simd>(self, s: S, dst: &mut [f32], v: S::V) {
        s.store(&mut dst[self.0..], v)
    }
}

impl VectorAt for Tail {
    #[inline(always)]
    fn load_or<S: Simd>(self, s: S, src: &[f32], fill: f32) -> S::V {
        s.load_tail(&src[self.0..], fill)
    }
    #[inline(always)]
    fn store<S: Simd>(self, s: S, dst: &mut [f32], v: S::V) {
        s.store_tail(&mut dst[self.0..], v)
    }
}

/// Runs `$body` over a row of `$n` elements, one vector of level `$S` at a time: with `$at` a
/// [`Full`] for each whole vector, then once with `$at` a [`Tail`] if elements are left. The
/// body is expanded once for each, so every copy is monomorphic (plain or masked accesses, no
/// branch), exactly as if written out twice; it may update variables around it.
macro_rules! for_each_vector {
    ($S:ty, $n:expr, |$at:ident| $body:block) => {{
        let n: usize = $n;
        let lanes = <$S as $crate::simd::Simd>::LANES;
        let mut j = 0;
        while j + lanes <= n {
            let $at = $crate::simd::Full(j);
            $body
            j += lanes;
        }
        if j < n {
            let $at = $crate::simd::Tail(j);
            $body
        }
    }};
}

pub(crate) use for_each_vector;
