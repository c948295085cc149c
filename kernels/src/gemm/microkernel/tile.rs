//! The one register-tile body every micro-kernel runs, and the macro that compiles it per kernel.
//!
//! [`register_tile`] is written once, generic over the SIMD level ([`TileLevel`], the
//! [`Simd`] vocabulary of the fused kernels plus raw-pointer loads), the step along `k`
//! ([`TileStep`]: one `f32` multiply-add, or a dot product of bf16 pairs) and the tile shape
//! (`MR` rows, `NV` vectors per row), and marked `#[inline(always)]`. [`micro_kernel!`] defines a
//! kernel type whose `tile` calls it from a thin `#[target_feature]` function, so each kernel
//! gets its own copy compiled for its level, with the accumulators in registers (arrays indexed
//! by loops of constant length, fully unrolled).

use super::CTile;
use crate::gemm::pack::PackWord;
use crate::simd::Simd;

/// What a register tile needs of a SIMD level beyond [`Simd`]. The methods are
/// `#[inline(always)]` for the reason [`register_tile`] is.
pub(crate) trait TileLevel: Simd {
    /// The `LANES` floats at `p`.
    ///
    /// # Safety
    /// `p` points to `LANES` readable floats.
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> Self::V {
        // SAFETY: `p` points to `LANES` readable floats (caller's contract).
        self.load(unsafe { std::slice::from_raw_parts(p, Self::LANES) })
    }

    /// Stores `v` into the `LANES` floats at `p`.
    ///
    /// # Safety
    /// `p` points to `LANES` writable floats, not otherwise borrowed.
    #[inline(always)]
    unsafe fn store_at(self, p: *mut f32, v: Self::V) {
        // SAFETY: `p` points to `LANES` writable, unborrowed floats (caller's contract).
        self.store(unsafe { std::slice::from_raw_parts_mut(p, Self::LANES) }, v)
    }

    /// `alpha·ab + beta_c`, the write-back of a tile: one rounding (FMA), as the x86 kernels
    /// have always computed it; a level that rounds otherwise overrides it.
    #[inline(always)]
    fn scale_add(self, alpha: Self::V, ab: Self::V, beta_c: Self::V) -> Self::V {
        self.mul_add(alpha, ab, beta_c)
    }

    /// Prefetches the line at `p`, a part of `C` that the tile writes (or reads) only after
    /// its `k` loop, at the tile's start. Nothing by default.
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        let _ = p;
    }
}

/// One step along `k` of a register tile on level `S`: per accumulator vector, the product of
/// a broadcast `A` word and a `B` vector of words added in. The methods are
/// `#[inline(always)]` for the reason [`register_tile`] is.
pub(crate) trait TileStep<S: TileLevel> {
    /// What the packed panels hold (one `f32`, or a pair of bf16 along `k`).
    type Word: PackWord;
    /// A vector of `LANES` words.
    type Operand: Copy;

    /// The `LANES` words at `p`.
    ///
    /// # Safety
    /// `p` points to `LANES` readable words; the CPU has the features of the kernel that calls
    /// this (its `#[target_feature]` function, which also inlines this).
    unsafe fn load(s: S, p: *const Self::Word) -> Self::Operand;

    /// The word at `p` in every lane.
    ///
    /// # Safety
    /// As [`TileStep::load`], for one word.
    unsafe fn broadcast(s: S, p: *const Self::Word) -> Self::Operand;

    /// `acc` plus the lane-wise products of `a` and `b` (summed over the depths of a word).
    ///
    /// # Safety
    /// The CPU has the features of the kernel that calls this.
    unsafe fn step(s: S, a: Self::Operand, b: Self::Operand, acc: S::V) -> S::V;
}

/// The `f32` step: one multiply-add per lane and depth, on any level.
pub(crate) struct F32Step;

impl<S: TileLevel> TileStep<S> for F32Step {
    type Word = f32;
    type Operand = S::V;

    #[inline(always)]
    unsafe fn load(s: S, p: *const f32) -> S::V {
        // SAFETY: `p` points to `LANES` readable floats (caller's contract).
        unsafe { s.load_at(p) }
    }

    #[inline(always)]
    unsafe fn broadcast(s: S, p: *const f32) -> S::V {
        // SAFETY: `p` points to a readable float (caller's contract).
        s.splat(unsafe { *p })
    }

    #[inline(always)]
    unsafe fn step(s: S, a: S::V, b: S::V, acc: S::V) -> S::V {
        s.mul_add(a, b, acc)
    }
}

/// Address of row `i` at step `p` of `k` of an `A` panel of `MR` rows, packed or in place
/// (`IN_PLACE`, rows of words `lda` apart). The tile is compiled once for each, so the packed
/// loop keeps its constant offsets.
///
/// # Safety
/// `i < MR` and `p < kc` of a panel that the caller may read ([`super::MicroKernel::tile`]).
#[inline(always)]
unsafe fn a_at<W, const MR: usize, const IN_PLACE: bool>(a: *const W, lda: usize, i: usize, p: usize) -> *const W {
    // SAFETY: in bounds of the panel by the caller's contract.
    unsafe {
        if IN_PLACE {
            a.add(i * lda + p)
        } else {
            a.add(p * MR + i)
        }
    }
}

/// `C[0..MR, 0..NR] = alpha·A·Bp + beta·C` with `NR = NV·LANES`: `MR×NV` vector accumulators,
/// per step of `k` `NV` loads of `B` and `MR` broadcasts of `A`, each accumulator's steps
/// ([`TileStep::step`]) in `k` order; `C` is written once (and read only when `beta != 0`).
///
/// # Safety
/// As [`super::MicroKernel::tile`], for the level of `s` and the features `D` needs: `A` is
/// readable for `MR` rows of `steps(kc)` words (packed, or in place with row stride `lda` when
/// `IN_PLACE`), `b` for `steps(kc)·NR` words, and `c` writable
/// for `MR` rows of `NR` floats at stride `c.ldc`.
#[inline(always)]
pub(crate) unsafe fn register_tile<
    S: TileLevel,
    D: TileStep<S>,
    const MR: usize,
    const NV: usize,
    const IN_PLACE: bool,
>(
    s: S,
    kc: usize,
    a: *const D::Word,
    lda: usize,
    b: *const D::Word,
    c: CTile,
) {
    let nr = NV * S::LANES;
    // SAFETY: (for the whole body) every `A` read is row i < MR at step p < steps(kc), every
    // `B` read the NV vectors of step p (`b + p·NR + j·LANES`, j < NV), and every `C` access
    // the vector j < NV of row i < MR: all inside the ranges of the caller's contract, whose
    // features `D` needs.
    unsafe {
        for i in 0..MR {
            for j in 0..NV {
                s.prefetch(c.ptr.add(i * c.ldc + j * S::LANES));
            }
        }
        let mut acc = [[s.splat(0.0); NV]; MR];
        let mut bp = b;
        for p in 0..<D::Word as PackWord>::steps(kc) {
            let bv: [D::Operand; NV] = std::array::from_fn(|j| D::load(s, bp.add(j * S::LANES)));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = D::broadcast(s, a_at::<D::Word, MR, IN_PLACE>(a, lda, i, p));
                for (r, &bj) in row.iter_mut().zip(&bv) {
                    *r = D::step(s, ai, bj, *r);
                }
            }
            bp = bp.add(nr);
        }
        let va = s.splat(c.alpha);
        if c.beta == 0.0 {
            for (i, row) in acc.iter().enumerate() {
                for (j, &r) in row.iter().enumerate() {
                    s.store_at(c.ptr.add(i * c.ldc + j * S::LANES), s.mul(va, r));
                }
            }
        } else {
            let vb = s.splat(c.beta);
            for (i, row) in acc.iter().enumerate() {
                for (j, &r) in row.iter().enumerate() {
                    let cij = c.ptr.add(i * c.ldc + j * S::LANES);
                    s.store_at(cij, s.scale_add(va, r, s.mul(vb, s.load_at(cij))));
                }
            }
        }
    }
}

/// Defines the micro-kernel type `$name` for the tile [`super::KernelId`]`::$id` on the SIMD
/// level `$level` (built by `$token`) with the step `$step` ([`TileStep`]): its `tile` is
/// [`register_tile`] compiled with `$features` (none: the baseline target), once for a packed
/// and once for an in-place `A`; its `pack_b` packs in the kernel's own vector width (compiled
/// for the same features); the items after `;` complete the [`super::MicroKernel`] impl.
macro_rules! micro_kernel {
    (
        $name:ident = $id:ident on $level:ty, step $step:ty, token $token:expr $(, features $features:literal)?
        $(; $($extra:tt)*)?
    ) => {
        pub(crate) struct $name;

        impl $crate::gemm::microkernel::MicroKernel for $name {
            const ID: $crate::gemm::microkernel::KernelId = $crate::gemm::microkernel::KernelId::$id;
            type Word = <$step as $crate::gemm::microkernel::tile::TileStep<$level>>::Word;

            #[inline]
            unsafe fn tile(
                kc: usize,
                a: $crate::gemm::microkernel::APanel<Self::Word>,
                b: *const Self::Word,
                c: $crate::gemm::microkernel::CTile,
            ) {
                use $crate::gemm::microkernel::MicroKernel;
                type Word = <$name as MicroKernel>::Word;
                /// # Safety
                /// The contract of [`MicroKernel::tile`]: the kernel's features are present;
                /// `a` (rows `lda` words apart when in place) and `b` hold the panels and `c`
                /// the tile of this kernel's MR, NR over `kc` depths.
                $(#[target_feature(enable = $features)])?
                unsafe fn compiled<const IN_PLACE: bool>(
                    kc: usize,
                    a: *const Word,
                    lda: usize,
                    b: *const Word,
                    c: $crate::gemm::microkernel::CTile,
                ) {
                    const MR: usize = <$name as MicroKernel>::MR;
                    const NV: usize = <$name as MicroKernel>::NR / <$level as $crate::simd::Simd>::LANES;
                    const { assert!(NV * <$level as $crate::simd::Simd>::LANES == <$name as MicroKernel>::NR) };
                    // SAFETY: forwarded contract of `tile`: the level's features are present
                    // (which also makes `$token` sound), and the panels and `C` are valid for
                    // this kernel's MR, NR.
                    unsafe {
                        $crate::gemm::microkernel::tile::register_tile::<$level, $step, MR, NV, IN_PLACE>(
                            $token, kc, a, lda, b, c,
                        )
                    }
                }
                // SAFETY: forwarded contract (features present, pointers valid for the stated
                // ranges); `lda` is only read for a panel in place.
                unsafe {
                    match a {
                        $crate::gemm::microkernel::APanel::Packed(a) => compiled::<false>(kc, a, 0, b, c),
                        $crate::gemm::microkernel::APanel::Rows(a, lda) => compiled::<true>(kc, a, lda, b, c),
                    }
                }
            }

            // `pack_a` stays on the baseline instruction set: with AVX-512 enabled, the compiler
            // vectorizes its row-interleaving loop with `vscatterdps` (seen in the disassembly),
            // slow on Zen 4; the baseline code was no slower in our timings, and perf puts
            // `pack_a` at 2–3% of a product.
            fn pack_a(
                a: $crate::gemm::pack::Strided<'_>,
                block: $crate::gemm::pack::Block,
                out: &mut [Self::Word],
                precision: $crate::Precision,
            ) -> usize {
                const MR: usize = <$name as $crate::gemm::microkernel::MicroKernel>::MR;
                match precision {
                    $crate::Precision::F32 => $crate::gemm::pack::pack_a::<MR, Self::Word, false>(a, block, out),
                    $crate::Precision::Bf16 => $crate::gemm::pack::pack_a::<MR, Self::Word, true>(a, block, out),
                }
            }

            fn pack_b(
                b: $crate::gemm::pack::Strided<'_>,
                block: $crate::gemm::pack::Block,
                out: &mut [Self::Word],
                precision: $crate::Precision,
            ) -> usize {
                use $crate::gemm::pack::{Block, Strided};
                type Word = <$name as $crate::gemm::microkernel::MicroKernel>::Word;
                /// # Safety
                /// The CPU has the kernel's features.
                $(#[target_feature(enable = $features)])?
                unsafe fn compiled<const ROUND: bool>(b: Strided<'_>, block: Block, out: &mut [Word]) -> usize {
                    const NR: usize = <$name as $crate::gemm::microkernel::MicroKernel>::NR;
                    $crate::gemm::pack::pack_b::<NR, Word, ROUND>(b, block, out)
                }
                assert!(<Self as $crate::gemm::microkernel::MicroKernel>::supported());
                // SAFETY: the features are present (asserted above; cached detection).
                unsafe {
                    match precision {
                        $crate::Precision::F32 => compiled::<false>(b, block, out),
                        $crate::Precision::Bf16 => compiled::<true>(b, block, out),
                    }
                }
            }

            $($($extra)*)?
        }
    };
}
pub(crate) use micro_kernel;
