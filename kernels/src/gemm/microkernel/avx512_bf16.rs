//! AVX512-BF16 kernels: the register tiles of [`super::avx512`] (10×32, 5×64, 14×16) with the
//! bf16 step. `A` and `B` are packed as pairs of bf16 along `k` (one `u32` word per row and two
//! depths, the lower half the even depth); per pair of depths, one `vdpbf16ps` adds two exact
//! products per lane into the `f32` accumulator, for the cost of one `f32` multiply-add: twice
//! the products per instruction, and half the packed bytes to stream.
//!
//! `vdpbf16ps` rounds to nearest even whatever MXCSR says, and treats subnormal inputs and
//! results as zero (bf16 subnormals are below 1.2e-38: far from any activation or weight we
//! multiply); otherwise its sums are `f32` additions of exact products, as on the other levels.

use std::arch::x86_64::{
    __m256bh, __m256i, __m512, __m512bh, __m512i, __mmask16, _mm512_cvtepu16_epi32, _mm512_cvtne2ps_pbh,
    _mm512_cvtneps_pbh, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_storeu_epi32,
    _mm512_maskz_loadu_ps, _mm512_or_si512, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_slli_epi32,
    _mm512_storeu_si512,
};
use std::ops::Range;

use super::tile::{micro_kernel, TileStep};
use crate::gemm::pack::{Block, PackWord, Strided};

/// The pair panels of a source contiguous along the panel (`src.rs == 1`: `Aᵀ` stored `k×m`,
/// or a row-major `B`), as the generic packing loop lays them out (for each step of `k`, `W`
/// words; zero past the block's rows and its last depth), 16 rows at a time: the two depths'
/// values loaded (masked past the rows), each converted by `vcvtneps2bf16`, and the halves
/// joined into words. Returns the length used.
///
/// # Safety
/// The CPU has AVX-512F and AVX512-BF16.
///
/// # Panics
/// If `src` lacks a value of the block or `out` is too short.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn pack_across<const W: usize>(src: Strided<'_>, block: Block, out: &mut [u32]) -> usize {
    let Block { first: i0, len: mc, p0, kc } = block;
    let steps = kc.div_ceil(2);
    let len = mc.div_ceil(W) * steps * W;
    assert!(src.rs == 1 && out.len() >= len);
    for (panel, dst) in out[..len].chunks_exact_mut(steps * W).enumerate() {
        let rows = W.min(mc - panel * W);
        for (q, words) in dst.chunks_exact_mut(W).enumerate() {
            for c in (0..W).step_by(16) {
                let (lanes, valid) = ((W - c).min(16), rows.saturating_sub(c).min(16));
                // The `valid` values of depth `p` from row i0 + panel·W + c (bounds-checked),
                // zeros in the other lanes.
                let load = |p: usize| {
                    if valid == 0 || p >= kc {
                        return _mm512_setzero_ps();
                    }
                    let values = &src.data[(p0 + p) * src.cs + i0 + panel * W + c..][..valid];
                    // SAFETY: the masked load reads only the `valid` values of `values`; the
                    // features are present (caller's contract).
                    unsafe { _mm512_maskz_loadu_ps(((1u32 << valid) - 1) as __mmask16, values.as_ptr()) }
                };
                let (lo, hi) = (load(2 * q), load(2 * q + 1));
                // SAFETY: the masked store writes `lanes` words inside `words[c..]` (c + lanes
                // ≤ W); the features are present (caller's contract).
                unsafe {
                    let lo = _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(lo)));
                    let hi = _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(hi)));
                    let pairs = _mm512_or_si512(lo, _mm512_slli_epi32::<16>(hi));
                    _mm512_mask_storeu_epi32(words[c..].as_mut_ptr().cast(), ((1u32 << lanes) - 1) as __mmask16, pairs);
                }
            }
        }
    }
    len
}
use crate::simd::avx512::Avx512 as Zmm;

/// Rows `rows` × depths `[p0, p0 + kc)` of a row-major `src` (`src.cs == 1`) as bf16 pairs,
/// row `r` at `out[r·ld..]`, the last pair of an odd `kc` padded with zero: the rows a tile
/// reads in place. 32 values at a time with `vcvtne2ps2bf16`, the rest as [`PackWord::word`]
/// makes pairs, which rounds the same way (nearest even, NaN quieted, a subnormal to zero): the
/// words are those [`super::super::pack::pack_a`] would write, in another order.
///
/// # Safety
/// The CPU has AVX-512F and AVX512-BF16.
///
/// # Panics
/// If `src` lacks a value of the block, or `out` is shorter than `(rows.len() − 1)·ld +
/// ceil(kc/2)` or `ld < ceil(kc/2)`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn convert_rows(
    src: Strided<'_>,
    rows: Range<usize>,
    p0: usize,
    kc: usize,
    out: &mut [u32],
    ld: usize,
) {
    let steps = kc.div_ceil(2);
    assert!(src.cs == 1 && ld >= steps);
    for (r, i) in rows.enumerate() {
        let row = &src.data[i * src.rs + p0..][..kc];
        let dst = &mut out[r * ld..][..steps];
        let mut p = 0;
        while p + 32 <= kc {
            // SAFETY: `row[p..p + 32]` and `dst[p/2..p/2 + 16]` are in bounds (p + 32 ≤ kc, and
            // dst holds ceil(kc/2) words); the features are present (caller's contract). The
            // conversion puts the first operand's values in the upper half: word j of the
            // result holds depths p + 2j (lower half) and p + 2j + 1, as a pair word does.
            unsafe {
                let lo = _mm512_loadu_ps(row.as_ptr().add(p));
                let hi = _mm512_loadu_ps(row.as_ptr().add(p + 16));
                let pairs = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(dst.as_mut_ptr().add(p / 2).cast::<__m512i>(), pairs);
            }
            p += 32;
        }
        for (q, word) in dst.iter_mut().enumerate().skip(p / 2) {
            let hi = if 2 * q + 1 < kc { row[2 * q + 1] } else { 0.0 };
            *word = u32::word::<true>(row[2 * q], hi);
        }
    }
}

/// The bf16 step: per lane, the dot product of two bf16 pairs added into the `f32` accumulator.
pub(crate) struct Bf16Step;

impl TileStep<Zmm> for Bf16Step {
    type Word = u32;
    type Operand = __m512bh;

    #[inline(always)]
    unsafe fn load(_: Zmm, p: *const u32) -> __m512bh {
        // SAFETY: `p` points to 16 readable words (caller's contract) and AVX-512F is present
        // (the `Zmm` token); `__m512i` and `__m512bh` are both 512 bits of plain data.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(p.cast::<__m512i>())) }
    }

    #[inline(always)]
    unsafe fn broadcast(_: Zmm, p: *const u32) -> __m512bh {
        // SAFETY: `p` points to a readable word (caller's contract), AVX-512F is present (the
        // token); the transmute is between two 512-bit plain-data vectors.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*p as i32)) }
    }

    #[inline(always)]
    unsafe fn step(_: Zmm, a: __m512bh, b: __m512bh, acc: __m512) -> __m512 {
        // SAFETY: the calling kernel is compiled for, and only run on, AVX-512F with
        // AVX512-BF16 (caller's contract).
        unsafe { _mm512_dpbf16_ps(acc, a, b) }
    }
}

micro_kernel!(Avx512Bf16 = Avx512Bf16Tall on Zmm, step Bf16Step, token Zmm::new_unchecked(), features "avx512f,avx512bf16");
micro_kernel!(Avx512Bf16Wide = Avx512Bf16Wide on Zmm, step Bf16Step, token Zmm::new_unchecked(), features "avx512f,avx512bf16");
micro_kernel!(Avx512Bf16Narrow = Avx512Bf16Narrow on Zmm, step Bf16Step, token Zmm::new_unchecked(), features "avx512f,avx512bf16");
