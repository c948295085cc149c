//! The one register-tile body every micro-kernel runs, and the macro that compiles it per kernel.
//!
//! [`register_tile`] is written once, generic over the SIMD level ([`TileLevel`], the
//! [`Simd`] vocabulary of the fused kernels plus raw-pointer loads) and the tile shape (`MR`
//! rows, `NV` vectors per row), and marked `#[inline(always)]`. [`micro_kernel!`] defines a
//! kernel type whose `tile` calls it from a thin `#[target_feature]` function, so each kernel
//! gets its own copy compiled for its level, with the accumulators in registers (arrays indexed
//! by loops of constant length, fully unrolled).

use super::CTile;
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

/// Address of row `i` at depth `p` of an `A` panel of `MR` rows, packed or in place
/// (`IN_PLACE`, row stride `lda`). The tile is compiled once for each, so the packed loop keeps
/// its constant offsets.
///
/// # Safety
/// `i < MR` and `p < kc` of a panel that the caller may read ([`super::MicroKernel::tile`]).
#[inline(always)]
unsafe fn a_at<const MR: usize, const IN_PLACE: bool>(a: *const f32, lda: usize, i: usize, p: usize) -> *const f32 {
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
/// per `k` `NV` loads of `B` and `MR` broadcasts of `A`, each accumulator's multiply-adds in
/// `k` order; `C` is written once (and read only when `beta != 0`).
///
/// # Safety
/// As [`super::MicroKernel::tile`], for the level of `s`: `A` is readable for `MR` rows of
/// `kc` values (packed, or in place with row stride `lda`), `b` for `kc·NR` floats, and `c`
/// writable for `MR` rows of `NR` floats at stride `c.ldc`.
#[inline(always)]
pub(crate) unsafe fn register_tile<S: TileLevel, const MR: usize, const NV: usize, const IN_PLACE: bool>(
    s: S,
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: CTile,
) {
    let nr = NV * S::LANES;
    // SAFETY: (for the whole body) every `A` read is row i < MR at depth p < kc, every `B`
    // read the NV vectors of step p < kc (`b + p·NR + j·LANES`, j < NV), and every `C` access
    // the vector j < NV of row i < MR: all inside the ranges of the caller's contract.
    unsafe {
        for i in 0..MR {
            for j in 0..NV {
                s.prefetch(c.ptr.add(i * c.ldc + j * S::LANES));
            }
        }
        let mut acc = [[s.splat(0.0); NV]; MR];
        let mut bp = b;
        for p in 0..kc {
            let mut bv = [s.splat(0.0); NV];
            for (j, v) in bv.iter_mut().enumerate() {
                *v = s.load_at(bp.add(j * S::LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = s.splat(*a_at::<MR, IN_PLACE>(a, lda, i, p));
                for (r, &bj) in row.iter_mut().zip(&bv) {
                    *r = s.mul_add(ai, bj, *r);
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
/// level `$level` (built by `$token`): its `tile` is [`register_tile`] compiled with
/// `$features` (none: the baseline target), once for a packed and once for an in-place `A`;
/// its `pack_b` copies in the kernel's own vector width (compiled for the same features); the
/// items after `;` complete the [`super::MicroKernel`] impl.
macro_rules! micro_kernel {
    (
        $name:ident = $id:ident on $level:ty, token $token:expr $(, features $features:literal)?
        $(; $($extra:tt)*)?
    ) => {
        pub(crate) struct $name;

        impl $crate::gemm::microkernel::MicroKernel for $name {
            const ID: $crate::gemm::microkernel::KernelId = $crate::gemm::microkernel::KernelId::$id;

            #[inline]
            unsafe fn tile(
                kc: usize,
                a: $crate::gemm::microkernel::APanel,
                b: *const f32,
                c: $crate::gemm::microkernel::CTile,
            ) {
                use $crate::gemm::microkernel::MicroKernel;
                $(#[target_feature(enable = $features)])?
                unsafe fn compiled<const IN_PLACE: bool>(
                    kc: usize,
                    a: *const f32,
                    lda: usize,
                    b: *const f32,
                    c: $crate::gemm::microkernel::CTile,
                ) {
                    const MR: usize = <$name as MicroKernel>::MR;
                    const NV: usize = <$name as MicroKernel>::NR / <$level as $crate::simd::Simd>::LANES;
                    const { assert!(NV * <$level as $crate::simd::Simd>::LANES == <$name as MicroKernel>::NR) };
                    // SAFETY: forwarded contract of `tile`: the level's features are present
                    // (which also makes `$token` sound), and the panels and `C` are valid for
                    // this kernel's MR, NR.
                    unsafe {
                        $crate::gemm::microkernel::tile::register_tile::<$level, MR, NV, IN_PLACE>(
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
                out: &mut [f32],
            ) -> usize {
                $crate::gemm::pack::pack_a::<{ <$name as $crate::gemm::microkernel::MicroKernel>::MR }>(a, block, out)
            }

            fn pack_b(
                b: $crate::gemm::pack::Strided<'_>,
                block: $crate::gemm::pack::Block,
                out: &mut [f32],
            ) -> usize {
                use $crate::gemm::pack::{Block, Strided};
                /// # Safety
                /// The CPU has the kernel's features.
                $(#[target_feature(enable = $features)])?
                unsafe fn compiled(b: Strided<'_>, block: Block, out: &mut [f32]) -> usize {
                    $crate::gemm::pack::pack_b::<{ <$name as $crate::gemm::microkernel::MicroKernel>::NR }>(b, block, out)
                }
                assert!(<Self as $crate::gemm::microkernel::MicroKernel>::supported());
                // SAFETY: the features are present (asserted above; cached detection).
                unsafe { compiled(b, block, out) }
            }

            $($($extra)*)?
        }
    };
}
pub(crate) use micro_kernel;
