//! Portable kernel, 4×16, on `wide::f32x8` (SSE2 on baseline x86-64, NEON on aarch64): the
//! fallback for CPUs without AVX2, and the path that compiles everywhere.

use wide::f32x8;

use super::MicroKernel;

pub(crate) struct Portable;

impl MicroKernel for Portable {
    const MR: usize = 4;
    const NR: usize = 16;

    const LEVEL: crate::dispatch::CpuLevel = crate::dispatch::CpuLevel::Portable;

    super::packing_for!(4, 16);

    #[inline]
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        const MR: usize = 4;
        // SAFETY: the caller guarantees `a` has kc·4 and `b` kc·16 readable floats, and `c`
        // 4 rows of 16 writable floats at stride `ldc`; no target feature is needed.
        let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * 16)) };
        let mut acc = [[f32x8::ZERO; 2]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(16)) {
            let b0 = f32x8::from(std::array::from_fn::<f32, 8, _>(|j| bp[j]));
            let b1 = f32x8::from(std::array::from_fn::<f32, 8, _>(|j| bp[8 + j]));
            for (row, &x) in acc.iter_mut().zip(ap) {
                let ai = f32x8::splat(x);
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
}
