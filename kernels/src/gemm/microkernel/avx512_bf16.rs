//! AVX512-BF16 kernels: the register tiles of [`super::avx512`] (10×32, 5×64, 14×16) with the
//! bf16 step. `A` and `B` are packed as pairs of bf16 along `k` (one `u32` word per row and two
//! depths, the lower half the even depth); per pair of depths, one `vdpbf16ps` adds two exact
//! products per lane into the `f32` accumulator, for the cost of one `f32` multiply-add: twice
//! the products per instruction, and half the packed bytes to stream.
//!
//! `vdpbf16ps` rounds to nearest even whatever MXCSR says, and treats subnormal inputs and
//! results as zero (bf16 subnormals are below 1.2e-38: far from any activation or weight we
//! multiply); otherwise its sums are `f32` additions of exact products, as on the other levels.

use std::arch::x86_64::{__m512, __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_loadu_si512, _mm512_set1_epi32};

use super::tile::{micro_kernel, TileStep};
use crate::simd::avx512::Avx512 as Zmm;

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
