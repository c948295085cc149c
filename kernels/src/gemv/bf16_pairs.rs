//! The matrix-vector product in bf16 pairs: [`Bf16Rows`] holds `W` rounded to bf16, two rows
//! to a `u32` word per column (the even row in the lower half; an odd `k` padded with a zero
//! row), the layout the bf16 GEMM packs `B` in along `k`. [`GemvBf16`] multiplies one row by it
//! with `vdpbf16ps` at [`CpuLevel::Avx512Bf16`]: half the bytes of `f32` weights to read, and
//! each element summed over the same pairs, in the same order, as the bf16 GEMM's tiles do, so
//! one row gives the batched step's bits. Below that level there is no native bf16 product;
//! the call runs its plain body there, and a [`crate::prepared::PreparedMatrix`] takes the
//! GEMM's panels instead.

use crate::dispatch::CpuLevel;
use crate::gemm::pack::Strided;
use crate::kernel::{FastKernel, Kernel};
use crate::line_aligned::LineAligned;
use crate::precision::bf16_bits;
use crate::Float;

/// A `k×n` matrix rounded to bf16, as pairs of rows (see the module documentation).
#[derive(Clone, Debug)]
pub struct Bf16Rows {
    k: usize,
    n: usize,
    /// On whole cache lines (see [`LineAligned`]: the product streams them at every step).
    words: LineAligned<u32>,
}

impl Bf16Rows {
    /// Room for a `k×n` matrix.
    pub fn new(k: usize, n: usize) -> Bf16Rows {
        Bf16Rows { k, n, words: LineAligned::new(k.div_ceil(2) * n) }
    }

    /// Packs the row-major `k×n` matrix `w` (leading dimension `ldw`), rounded to nearest even.
    ///
    /// # Panics
    /// If `w` is too short.
    pub fn pack(&mut self, w: &[f32], ldw: usize) {
        let (k, n) = (self.k, self.n);
        assert!(k == 0 || n == 0 || w.len() >= (k - 1) * ldw + n, "Bf16Rows: W too short");
        self.pack_strided(Strided { data: w, rs: ldw, cs: 1 });
    }

    /// Packs the `k×n` matrix whose element `(p, j)` is `w.data[p·w.rs + j·w.cs]` (a stored
    /// matrix or its transpose), rounded to nearest even.
    ///
    /// # Panics
    /// If `w.data` is too short (an index out of bounds: callers check the shape first).
    pub(crate) fn pack_strided(&mut self, w: Strided<'_>) {
        let (k, n) = (self.k, self.n);
        let at = |p: usize, j: usize| w.data[p * w.rs + j * w.cs];
        for (q, out) in self.words.chunks_exact_mut(n.max(1)).enumerate() {
            for (j, word) in out.iter_mut().enumerate() {
                let odd = if 2 * q + 1 < k { bf16_bits(at(2 * q + 1, j)) } else { 0 };
                *word = u32::from(bf16_bits(at(2 * q, j))) | (u32::from(odd) << 16);
            }
        }
    }

    /// Rows `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The element at row `p`, column `j`, as the `f32` it rounds to.
    fn at(&self, p: usize, j: usize) -> f32 {
        let word = self.words[p / 2 * self.n + j];
        f32::from_bits(if p.is_multiple_of(2) { word << 16 } else { word & 0xffff_0000 })
    }
}

crate::kernel_args! {
    /// `y[j] += Σₚ bf16(x[p])·W[p, j]` for the `k×n` bf16 matrix `w`, summed as the bf16 GEMM
    /// sums one element of `C` (pairs of `p` in order, over the same depth blocks), then added
    /// to `y`. The plain body sums the same rounded products in order with `f32` additions,
    /// which may round differently from `vdpbf16ps` (it flushes subnormals and adds two
    /// products at once): the tests compare them with a tolerance, and the fast path with the
    /// bf16 GEMM bit for bit.
    pub struct GemvBf16<'a, F> {
        pub x: slice,
        pub w: plain<&'a Bf16Rows>,
        pub y: slice_mut,
    }
}

impl<F: Float> Kernel for GemvBf16<'_, F> {
    type Output = ();

    fn check(&self) {
        assert!(self.x.len() >= self.w.k, "GemvBf16: x has {} elements, k is {}", self.x.len(), self.w.k);
        assert!(self.y.len() >= self.w.n, "GemvBf16: y has {} elements, n is {}", self.y.len(), self.w.n);
    }

    unsafe fn plain(self) {
        let GemvBf16 { x, w, y } = self;
        let round = |v: F| F::from_f64(f64::from(crate::Precision::Bf16.round(v.to_f64() as f32)));
        for block in super::depth_blocks(w.k) {
            for (j, yj) in y[..w.n].iter_mut().enumerate() {
                let mut acc = F::zero();
                for p in block.clone() {
                    acc += round(x[p]) * F::from_f64(f64::from(w.at(p, j)));
                }
                *yj += acc;
            }
        }
    }
}

impl FastKernel for GemvBf16<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) {
        if self.w.k == 0 || self.w.n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if level == CpuLevel::Avx512Bf16 {
            assert!(level <= crate::dispatch::detected_level(), "AVX512-BF16 requested on a CPU without it");
            // `check` asserts these too; the unsafe body must not rely on a caller of `fast`.
            assert!(self.x.len() >= self.w.k && self.y.len() >= self.w.n, "GemvBf16: x or y too short");
            for block in super::depth_blocks(self.w.k) {
                // SAFETY: the level (asserted detected) has AVX-512F and AVX512-BF16; x covers
                // k and y covers n (asserted above); `w.words` holds ⌈k/2⌉·n words.
                unsafe { native::columns(&self.x[block.clone()], self.w, block.start, self.y) };
            }
            return;
        }
        let _ = level;
        // SAFETY: this function's own contract: the arguments satisfy `check`.
        unsafe { self.plain() }
    }
}

#[cfg(target_arch = "x86_64")]
mod native {
    use std::arch::x86_64::*;

    use super::Bf16Rows;
    use crate::precision::bf16_bits;

    /// Vectors per column block, as the `f32` product (128 columns).
    const BLOCK: usize = 8;
    /// Most pairs of `x` one depth block holds (a depth block is at most 512 deep).
    const MAX_PAIRS: usize = 256;

    /// `y[..n] += Σ_{p in block} bf16(x[p])·W[first + p, ..]` for the depth block of rows
    /// `first..first + x.len()` (`first` even).
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16 are present; `y.len() >= w.n`; `first + x.len() <= w.k`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn columns(x: &[f32], w: &Bf16Rows, first: usize, y: &mut [f32]) {
        debug_assert!(first.is_multiple_of(2) && x.len() <= 2 * MAX_PAIRS);
        // `x` rounded into pairs once for every column block; an odd end pairs with zero.
        let mut pairs = [0u32; MAX_PAIRS];
        let count = x.len().div_ceil(2);
        for (q, pair) in pairs[..count].iter_mut().enumerate() {
            let odd = x.get(2 * q + 1).map_or(0, |&v| bf16_bits(v));
            *pair = u32::from(bf16_bits(x[2 * q])) | (u32::from(odd) << 16);
        }
        let (pairs, n) = (&pairs[..count], w.n);
        let words = &w.words[first / 2 * n..(first / 2 + count) * n];
        let mut j = 0;
        while j + BLOCK * 16 <= n {
            // SAFETY: the caller's contract; the block lies inside every row of `words` and `y`.
            unsafe { block::<BLOCK, false>(pairs, words, n, j, y) };
            j += BLOCK * 16;
        }
        let (vectors, tail) = ((n - j) / 16, !(n - j).is_multiple_of(16));
        macro_rules! last_block {
            ($($v:literal)*) => {
                // SAFETY: as above; the last block ends at `n`.
                unsafe {
                    match (vectors, tail) {
                        $(
                            ($v, false) => block::<$v, false>(pairs, words, n, j, y),
                            ($v, true) => block::<$v, true>(pairs, words, n, j, y),
                        )*
                        _ => unreachable!("{vectors} whole vectors after the last block"),
                    }
                }
            };
        }
        last_block!(0 1 2 3 4 5 6 7);
    }

    /// 512 bits of bf16 pairs, as the type `vdpbf16ps` takes.
    #[inline(always)]
    fn as_bf16(v: __m512i) -> __m512bh {
        // SAFETY: both types are 512 bits of plain data, every bit pattern valid.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// `V` whole vectors of columns from `j` and, with `TAIL`, the masked rest up to `n`.
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16 are present; `words` holds `pairs.len()` rows of `n` words;
    /// `j + V·16 <= n`, and `j + V·16 + 16 > n` with `TAIL`; `y.len() >= n`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn block<const V: usize, const TAIL: bool>(pairs: &[u32], words: &[u32], n: usize, j: usize, y: &mut [f32]) {
        let tail_at = j + V * 16;
        let tail_mask: __mmask16 = if TAIL { ((1u32 << (n - tail_at)) - 1) as __mmask16 } else { 0 };
        let mut acc = [_mm512_setzero_ps(); V];
        let mut tail_acc = _mm512_setzero_ps();
        for (q, &pair) in pairs.iter().enumerate() {
            let row = words[q * n..].as_ptr();
            let xq = as_bf16(_mm512_set1_epi32(pair as i32));
            for (u, a) in acc.iter_mut().enumerate() {
                // SAFETY: `j + u·16 + 16 <= n`, inside row `q` (the caller's contract).
                let wv = unsafe { _mm512_loadu_si512(row.add(j + u * 16).cast::<__m512i>()) };
                *a = _mm512_dpbf16_ps(*a, xq, as_bf16(wv));
            }
            if TAIL {
                // SAFETY: the masked lanes are `tail_at..n`, inside row `q`; others are not read.
                let wv = unsafe { _mm512_maskz_loadu_epi32(tail_mask, row.add(tail_at).cast::<i32>()) };
                tail_acc = _mm512_dpbf16_ps(tail_acc, xq, as_bf16(wv));
            }
        }
        let out = y.as_mut_ptr();
        for (u, a) in acc.into_iter().enumerate() {
            // SAFETY: `j + u·16 + 16 <= n <= y.len()`.
            unsafe {
                let at = out.add(j + u * 16);
                _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), a));
            }
        }
        if TAIL {
            // SAFETY: only the lanes `tail_at..n` of `y` are read and written.
            unsafe {
                let at = out.add(tail_at);
                let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(tail_mask, at), tail_acc);
                _mm512_mask_storeu_ps(at, tail_mask, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{gemm_rows, random};
    use super::*;
    use crate::dispatch::available_levels;
    use crate::Precision;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// At every level, on odd sizes (odd `k`, tails, short last blocks, two depth blocks),
    /// within rounding of the plain twin and of the f64 sum of the rounded products; at the
    /// native level, bit for bit every row of the bf16 GEMM.
    #[test]
    fn matches_the_twin_and_the_bf16_gemm() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (m, k, n) in [(1, 1, 1), (2, 3, 5), (3, 7, 17), (2, 128, 65), (4, 129, 200), (2, 256, 512), (2, 1031, 40)] {
            let ldw = n + 1;
            let (a, w, c0) = (random(m * k, &mut rng), random(k * ldw, &mut rng), random(m * n, &mut rng));
            let mut rows = Bf16Rows::new(k, n);
            rows.pack(&w, ldw);
            let round = |v: f32| f64::from(Precision::Bf16.round(v));
            for level in available_levels() {
                let gemm_c = gemm_rows(level, Precision::Bf16, (m, k, n), &a, &w, ldw, &c0);
                for i in 0..m {
                    let x = &a[i * k..(i + 1) * k];
                    let mut fast = c0[i * n..(i + 1) * n].to_vec();
                    GemvBf16 { x, w: &rows, y: &mut fast }.run_at(level);
                    let mut plain = c0[i * n..(i + 1) * n].to_vec();
                    GemvBf16 { x, w: &rows, y: &mut plain }.run_plain();
                    for j in 0..n {
                        let exact =
                            f64::from(c0[i * n + j]) + (0..k).map(|p| round(x[p]) * round(w[p * ldw + j])).sum::<f64>();
                        let tol = 1e-5 * (k as f64).sqrt() * (1.0 + exact.abs());
                        assert!((f64::from(fast[j]) - exact).abs() <= tol, "{m}×{k}×{n} at {}", level.name());
                        assert!((f64::from(plain[j]) - exact).abs() <= tol, "plain {m}×{k}×{n}");
                    }
                    if level == CpuLevel::Avx512Bf16 {
                        assert_eq!(fast, gemm_c[i * n..(i + 1) * n], "row {i} of {m}×{k}×{n}: the bf16 GEMM's bits");
                    }
                }
            }
        }
    }
}
