//! The vector conversions of bf16 pair packing (AVX512-BF16): whole rows of a row-major source
//! into rows a pair tile reads in place, and panels of a source contiguous along the panel.

use std::arch::x86_64::{
    __m256bh, __m256i, __m512bh, __m512i, __mmask16, _mm512_cvtepu16_epi32, _mm512_cvtne2ps_pbh, _mm512_cvtneps_pbh,
    _mm512_loadu_ps, _mm512_mask_storeu_epi32, _mm512_maskz_loadu_ps, _mm512_or_si512, _mm512_setzero_ps,
    _mm512_slli_epi32, _mm512_storeu_si512,
};
use std::ops::Range;

use super::{Block, PackWord, Strided};

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

/// Rows `rows` × depths `[p0, p0 + kc)` of a row-major `src` (`src.cs == 1`) as bf16 pairs,
/// row `r` at `out[r·ld..]`, the last pair of an odd `kc` padded with zero: the rows a tile
/// reads in place. 32 values at a time with `vcvtne2ps2bf16`, the rest as [`PackWord::word`]
/// makes pairs, which rounds the same way (nearest even, NaN quieted, a subnormal to zero): the
/// words are those [`super::pack_a`] would write, in another order.
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
