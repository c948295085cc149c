//! Packing: copy a block of `op(A)` or `op(B)` from any strided source into the panel order the
//! micro-kernels stream through, zero-padding the last panel. This is also where the three
//! transposition cases (`A·B`, `A·Bᵀ`, `Aᵀ·B`) are absorbed: a transposed operand is just a
//! source with swapped strides.

use std::ops::Range;

use crate::precision::{bf16_bits, Precision};

#[cfg(target_arch = "x86_64")]
mod pairs_avx512;

/// A strided read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl Strided<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Rows of `k` copied into every panel before moving on, where the source is contiguous along
/// the panel width. Panel by panel over all of `k` strides through every source row once per
/// panel; row by row across panels writes to destinations 16 KiB apart, which share an L1 set.
/// A block of 16 rows keeps the source lines in L1 and writes 16 contiguous steps per panel.
const PACK_ROWS: usize = 16;

/// A block of an operand to pack: `len` panel rows from `first` (rows of `op(A)`, columns of
/// `op(B)`), each over the depths `[p0, p0 + kc)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub first: usize,
    pub len: usize,
    pub p0: usize,
    pub kc: usize,
}

/// What a packed panel holds for one row and one step along `k`: an `f32` (one depth, exact
/// or bf16-rounded) or a `u32` holding two bf16 values of consecutive depths (the operand of
/// `vdpbf16ps`: the lower half the even depth). Both are stored in the `f32` packing buffers
/// (same size and alignment, and every bit pattern is a valid value of both), so one set of
/// buffers, sized in floats, serves every kernel.
pub(crate) trait PackWord: Copy + Default + 'static {
    /// Depths of `k` one word holds.
    const KSTEP: usize;

    /// The word for the values `lo` at depth `p` and `hi` at `p + 1` (zero past the block;
    /// ignored when `KSTEP == 1`), rounded to bf16 (nearest even) when `ROUND` (pairs always are).
    fn word<const ROUND: bool>(lo: f32, hi: f32) -> Self;

    /// A packing buffer as words.
    fn words(buf: &[f32]) -> &[Self];

    /// A packing buffer as words, to fill.
    fn words_mut(buf: &mut [f32]) -> &mut [Self];

    /// Words a panel row takes for `kc` depths.
    #[inline(always)]
    fn steps(kc: usize) -> usize {
        kc.div_ceil(Self::KSTEP)
    }

    /// Rows `rows` × depths `[p0, p0 + kc)` of a row-major source (`src.cs == 1`) as words, row
    /// `r` at `out[r·ld..]` (`ld ≥ steps(kc)`): the layout a tile reads in place. Only pairs
    /// need it: an `f32` row is read in the source itself.
    ///
    /// # Safety
    /// The CPU has the features of the kernels that use these words (AVX512-BF16 for pairs).
    ///
    /// # Panics
    /// If the source or `out` is too short, or for words that are read in the source itself.
    unsafe fn convert_rows(src: Strided<'_>, rows: Range<usize>, p0: usize, kc: usize, out: &mut [Self], ld: usize) {
        let _ = (src, rows, p0, kc, out, ld);
        unreachable!("rows of single-depth words are read in place in the source")
    }

    /// [`pack_panels`] for a source contiguous along the panel (`src.rs == 1`), with vector
    /// conversions where these words have them (pairs); `None`: the generic loop does it.
    fn pack_across<const W: usize>(src: Strided<'_>, block: Block, out: &mut [Self]) -> Option<usize> {
        let _ = (src, block, out);
        None
    }
}

impl PackWord for f32 {
    const KSTEP: usize = 1;

    #[inline(always)]
    fn word<const ROUND: bool>(lo: f32, _hi: f32) -> f32 {
        if ROUND {
            Precision::Bf16.round(lo)
        } else {
            lo
        }
    }

    #[inline(always)]
    fn words(buf: &[f32]) -> &[f32] {
        buf
    }

    #[inline(always)]
    fn words_mut(buf: &mut [f32]) -> &mut [f32] {
        buf
    }
}

impl PackWord for u32 {
    const KSTEP: usize = 2;

    #[inline(always)]
    fn word<const ROUND: bool>(lo: f32, hi: f32) -> u32 {
        // As `vcvtne2ps2bf16` converts (the rows `convert_rows` writes): a subnormal becomes a
        // zero of its sign, which is what `vdpbf16ps` makes of a subnormal bf16 anyway.
        let half = |x: f32| if x.is_subnormal() { ((x.to_bits() >> 16) & 0x8000) as u16 } else { bf16_bits(x) };
        u32::from(half(lo)) | (u32::from(half(hi)) << 16)
    }

    #[inline(always)]
    fn words(buf: &[f32]) -> &[u32] {
        // SAFETY: `u32` and `f32` have the same size and alignment and every bit pattern is a
        // valid value of both; the view borrows `buf` for its lifetime.
        unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u32>(), buf.len()) }
    }

    #[inline(always)]
    fn words_mut(buf: &mut [f32]) -> &mut [u32] {
        // SAFETY: as in `words`; the exclusive borrow of `buf` moves into the view.
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u32>(), buf.len()) }
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn convert_rows(src: Strided<'_>, rows: Range<usize>, p0: usize, kc: usize, out: &mut [u32], ld: usize) {
        // SAFETY: the CPU has AVX512-BF16 (caller's contract).
        unsafe { pairs_avx512::convert_rows(src, rows, p0, kc, out, ld) }
    }

    #[cfg(target_arch = "x86_64")]
    fn pack_across<const W: usize>(src: Strided<'_>, block: Block, out: &mut [u32]) -> Option<usize> {
        // Pairs are packed for the AVX512-BF16 kernels only; checked here all the same (a
        // cached detection) because the conversion needs the features.
        assert!(crate::dispatch::detected_level() >= crate::dispatch::CpuLevel::Avx512Bf16);
        // SAFETY: the features are present (asserted above).
        Some(unsafe { pairs_avx512::pack_across::<W>(src, block, out) })
    }
}

/// Packs rows `[first, first+len)` × columns `[p0, p0+kc)` of `op(A)` into `ceil(len/MR)`
/// panels of `steps(kc)×MR` words (for each step of `k`, `MR` row words), zero-padded past
/// `len` (and past `kc` in the last pair). Returns the length used.
#[inline(always)]
pub(crate) fn pack_a<const MR: usize, E: PackWord, const ROUND: bool>(
    a: Strided<'_>,
    block: Block,
    out: &mut [E],
) -> usize {
    pack_panels::<MR, E, ROUND>(a, block, out)
}

/// Packs rows `[p0, p0+kc)` × columns `[first, first+len)` of `op(B)` into `ceil(len/NR)`
/// panels of `steps(kc)×NR` words (for each step of `k`, `NR` column words), zero-padded past
/// `len`. Returns the length used. The columns of `op(B)` are the rows of its transpose: the
/// same panels as [`pack_a`] of the swapped-stride view.
#[inline(always)]
pub(crate) fn pack_b<const NR: usize, E: PackWord, const ROUND: bool>(
    b: Strided<'_>,
    block: Block,
    out: &mut [E],
) -> usize {
    pack_panels::<NR, E, ROUND>(Strided { data: b.data, rs: b.cs, cs: b.rs }, block, out)
}

/// Packs rows `[first, first+len)` (the panel dimension) × columns `[p0, p0+kc)` (the `k`
/// dimension) of `src` into `ceil(len/W)` panels of `steps(kc)×W` words, zero-padded past
/// `len`. Returns the length used.
#[inline(always)]
fn pack_panels<const W: usize, E: PackWord, const ROUND: bool>(src: Strided<'_>, block: Block, out: &mut [E]) -> usize {
    let Block { first: i0, len: mc, p0, kc } = block;
    let steps = E::steps(kc);
    let panels = mc.div_ceil(W);
    let len = panels * steps * W;
    // The second depth of step `q`, when the word holds one that lies in the block.
    let second = |q: usize| (E::KSTEP == 2 && q * E::KSTEP + 1 < kc).then_some(q * E::KSTEP + 1);
    // The W values of one k are contiguous (Aᵀ, or row-major B): rows of W words, PACK_ROWS
    // steps of k at a time across all full panels.
    let contiguous = src.rs == 1 && src.cs != 1;
    if contiguous {
        if let Some(len) = E::pack_across::<W>(src, block, out) {
            return len;
        }
    }
    let full = if contiguous { mc / W } else { 0 };
    // Depth `p`'s `n` contiguous values from panel row `i`.
    let run = |p: usize, i: usize, n: usize| &src.data[(p0 + p) * src.cs + i..][..n];
    for q_block in (0..steps).step_by(PACK_ROWS) {
        let q_end = (q_block + PACK_ROWS).min(steps);
        for panel in 0..full {
            let dst = &mut out[(panel * steps + q_block) * W..(panel * steps + q_end) * W];
            for (q, d) in (q_block..q_end).zip(dst.as_chunks_mut::<W>().0) {
                let lo = run(q * E::KSTEP, i0 + panel * W, W);
                if E::KSTEP == 1 && !ROUND {
                    // Exact `f32`: a plain copy (the per-value loop below compiled to scalar
                    // moves through the stack: 22% of `Aᵀ·dG` [128×2500]·[2500×512]).
                    d.copy_from_slice(E::words(lo));
                    continue;
                }
                match second(q) {
                    Some(p) => {
                        for ((x, &l), &h) in d.iter_mut().zip(lo).zip(run(p, i0 + panel * W, W)) {
                            *x = E::word::<ROUND>(l, h);
                        }
                    }
                    None => {
                        for (x, &l) in d.iter_mut().zip(lo) {
                            *x = E::word::<ROUND>(l, 0.0);
                        }
                    }
                }
            }
        }
    }
    for (panel, dst) in out[..len].chunks_exact_mut(steps * W).enumerate().skip(full) {
        let rows = W.min(mc - panel * W);
        let ibase = i0 + panel * W;
        let (dst, _) = dst.as_chunks_mut::<W>();
        if contiguous {
            // The last, cut panel: `rows` contiguous values per k, zero-padded.
            for (q, d) in dst.iter_mut().enumerate() {
                let lo = run(q * E::KSTEP, ibase, rows);
                for (ii, x) in d.iter_mut().enumerate() {
                    *x = if ii < rows {
                        E::word::<ROUND>(lo[ii], second(q).map_or(0.0, |p| run(p, ibase, rows)[ii]))
                    } else {
                        E::default()
                    };
                }
            }
        } else if rows == W && src.cs == 1 {
            // Contiguous along k (row-major A, or Bᵀ stored n×k): W source rows, each read once,
            // written with stride W.
            let rows_src: [&[f32]; W] = std::array::from_fn(|ii| &src.data[(ibase + ii) * src.rs + p0..][..kc]);
            for (q, d) in dst.iter_mut().enumerate() {
                let p = q * E::KSTEP;
                for ii in 0..W {
                    // SAFETY: p = q·KSTEP < kc (q < steps(kc)), `second(q)` is below kc, and
                    // every rows_src[ii] has length kc.
                    d[ii] = unsafe {
                        let hi = second(q).map_or(0.0, |p1| *rows_src[ii].get_unchecked(p1));
                        E::word::<ROUND>(*rows_src[ii].get_unchecked(p), hi)
                    };
                }
            }
        } else {
            for (q, d) in dst.iter_mut().enumerate() {
                let p = q * E::KSTEP;
                for (ii, x) in d.iter_mut().enumerate() {
                    *x = if ii < rows {
                        let hi = second(q).map_or(0.0, |p1| src.at(ibase + ii, p0 + p1));
                        E::word::<ROUND>(src.at(ibase + ii, p0 + p), hi)
                    } else {
                        E::default()
                    };
                }
            }
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first: usize, len: usize, p0: usize, kc: usize) -> Block {
        Block { first, len, p0, kc }
    }

    #[test]
    fn packs_panels_with_zero_padding() {
        // 3×2 matrix [[1,2],[3,4],[5,6]] as A (m=3, k=2) with mr=2.
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let a = Strided { data: &data, rs: 2, cs: 1 };
        let mut out = [9.0f32; 8];
        assert_eq!(pack_a::<2, f32, false>(a, block(0, 3, 0, 2), &mut out), 8);
        assert_eq!(out, [1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0]);
        // Same data as B (k=3, n=2) with nr=4: one panel, two columns padded.
        let b = Strided { data: &data, rs: 2, cs: 1 };
        let mut out = [9.0f32; 12];
        assert_eq!(pack_b::<4, f32, false>(b, block(0, 2, 0, 3), &mut out), 12);
        assert_eq!(out, [1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0]);
        // Transposed source (cs != 1) gives the same panels as the row-major copy.
        let t = [1.0, 3.0, 5.0, 2.0, 4.0, 6.0];
        let bt = Strided { data: &t, rs: 1, cs: 3 };
        let mut out_t = [9.0f32; 12];
        pack_b::<4, f32, false>(bt, block(0, 2, 0, 3), &mut out_t);
        assert_eq!(out_t, out);
        // Full panels take the fast paths: row-major and transposed sources agree.
        let (k, n) = (5, 8);
        let rm: Vec<f32> = (0..k * n).map(|x| x as f32).collect();
        let tr: Vec<f32> = (0..n * k).map(|x| ((x % k) * n + x / k) as f32).collect();
        let (mut p1, mut p2) = (vec![0.0; k * n], vec![0.0; k * n]);
        pack_b::<4, f32, false>(Strided { data: &rm, rs: n, cs: 1 }, block(0, n, 0, k), &mut p1);
        pack_b::<4, f32, false>(Strided { data: &tr, rs: 1, cs: k }, block(0, n, 0, k), &mut p2);
        assert_eq!(p1, p2);
        let (mut q1, mut q2) = (vec![0.0; 64], vec![0.0; 64]);
        pack_a::<4, f32, false>(Strided { data: &rm, rs: n, cs: 1 }, block(0, k, 0, n), &mut q1);
        pack_a::<4, f32, false>(Strided { data: &tr, rs: 1, cs: k }, block(0, k, 0, n), &mut q2);
        assert_eq!(q1, q2);
    }

    /// bf16 pairs along `k`: depth `2q` in the lower half, `2q + 1` in the upper, rounded to
    /// nearest even; an odd last depth paired with zero; every source layout agrees.
    #[test]
    fn packs_bf16_pairs_along_k() {
        // op(A) 2×3 (m = 2, k = 3): rows [x, 1, 2] and [3, 4, 5] with x = 1 + 2⁻⁸ (a tie: to 1).
        let x = 1.0 + 2f32.powi(-8);
        let data = [x, 1.0, 2.0, 3.0, 4.0, 5.0];
        let bits = |v: f32| u32::from(bf16_bits(v));
        let pair = |lo: f32, hi: f32| bits(lo) | (bits(hi) << 16);
        let want = [pair(1.0, 1.0), pair(3.0, 4.0), pair(2.0, 0.0), pair(5.0, 0.0)];
        let mut out = [7u32; 4];
        assert_eq!(pack_a::<2, u32, true>(Strided { data: &data, rs: 3, cs: 1 }, block(0, 2, 0, 3), &mut out), 4);
        assert_eq!(out, want);
        // Aᵀ stored: the same panels from the contiguous-along-rows path.
        let t = [x, 3.0, 1.0, 4.0, 2.0, 5.0];
        let mut out_t = [7u32; 4];
        pack_a::<2, u32, true>(Strided { data: &t, rs: 1, cs: 2 }, block(0, 2, 0, 3), &mut out_t);
        assert_eq!(out_t, want);
        // A cut panel (2 of 4 rows) and the strided path agree, zero-padded.
        let mut cut = [7u32; 8];
        pack_a::<4, u32, true>(Strided { data: &t, rs: 1, cs: 2 }, block(0, 2, 0, 3), &mut cut);
        assert_eq!(cut, [want[0], want[1], 0, 0, want[2], want[3], 0, 0]);
        // f32 words rounded in place of pairs.
        let mut rounded = [0.0f32; 6];
        pack_a::<2, f32, true>(Strided { data: &data, rs: 3, cs: 1 }, block(0, 2, 0, 3), &mut rounded);
        assert_eq!(rounded, [1.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
