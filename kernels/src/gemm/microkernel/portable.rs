//! Portable kernel, 4×16, on `wide::f32x8` (SSE2 on baseline x86-64, NEON on aarch64): the
//! fallback for CPUs without AVX2, and the path that compiles everywhere.

use wide::f32x8;

use super::{a_at, APanel, KernelId, MicroKernel};

pub(crate) struct Portable;

impl MicroKernel for Portable {
    const ID: KernelId = KernelId::Portable;

    super::packing_for!(Portable);

    #[inline]
    unsafe fn tile(kc: usize, a: APanel, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        // SAFETY: forwarded contract (pointers valid for the stated ranges).
        unsafe { super::tile_for_panel!(tile_4x16(kc, a, b, c, ldc, alpha, beta)) }
    }
}

/// # Safety
/// `A` is readable for 4 rows of `kc` values (packed, or in place with row stride `lda`), `b`
/// has kc·16 readable floats and `c` 4 rows of 16 writable floats at stride `ldc`; no target
/// feature is needed.
#[inline]
unsafe fn tile_4x16<const IN_PLACE: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = 4;
    // SAFETY: `b` has kc·16 readable floats (caller's contract).
    let b = unsafe { std::slice::from_raw_parts(b, kc * 16) };
    let mut acc = [[f32x8::ZERO; 2]; MR];
    for (p, bp) in b.chunks_exact(16).enumerate() {
        let b0 = f32x8::from(std::array::from_fn::<f32, 8, _>(|j| bp[j]));
        let b1 = f32x8::from(std::array::from_fn::<f32, 8, _>(|j| bp[8 + j]));
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: i < 4 and p < kc: inside the panel (caller's contract).
            let ai = f32x8::splat(unsafe { *a_at::<MR, IN_PLACE>(a, lda, i, p) });
            row[0] = ai.mul_add(b0, row[0]);
            row[1] = ai.mul_add(b1, row[1]);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: row i of C is 16 writable floats at c + i·ldc (caller's contract).
        let cr = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), 16) };
        let vals: [f32; 16] = {
            let (lo, hi) = (row[0].to_array(), row[1].to_array());
            std::array::from_fn(|j| if j < 8 { lo[j] } else { hi[j - 8] })
        };
        for (cj, v) in cr.iter_mut().zip(vals) {
            *cj = if beta == 0.0 { alpha * v } else { alpha * v + beta * *cj };
        }
    }
}
