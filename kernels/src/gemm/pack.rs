//! Packing: copy a block of `op(A)` or `op(B)` from any strided source into the panel order the
//! micro-kernels stream through, zero-padding the last panel. This is also where the three
//! transposition cases (`A·B`, `A·Bᵀ`, `Aᵀ·B`) are absorbed: a transposed operand is just a
//! source with swapped strides.

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

/// Packs rows `[first, first+len)` × columns `[p0, p0+kc)` of `op(A)` into `ceil(len/MR)`
/// panels of `kc×MR` (for each `k`, `MR` row values), zero-padded past `len`. Returns the
/// length used.
#[inline(always)]
pub(crate) fn pack_a<const MR: usize>(a: Strided<'_>, block: Block, out: &mut [f32]) -> usize {
    pack_panels::<MR>(a, block, out)
}

/// Packs rows `[p0, p0+kc)` × columns `[first, first+len)` of `op(B)` into `ceil(len/NR)`
/// panels of `kc×NR` (for each `k`, `NR` column values), zero-padded past `len`. Returns the
/// length used. The columns of `op(B)` are the rows of its transpose: the same panels as
/// [`pack_a`] of the swapped-stride view.
#[inline(always)]
pub(crate) fn pack_b<const NR: usize>(b: Strided<'_>, block: Block, out: &mut [f32]) -> usize {
    pack_panels::<NR>(Strided { data: b.data, rs: b.cs, cs: b.rs }, block, out)
}

/// Packs rows `[first, first+len)` (the panel dimension) × columns `[p0, p0+kc)` (the `k`
/// dimension) of `src` into `ceil(len/W)` panels of `kc×W`, zero-padded past `len`. Returns the
/// length used.
#[inline(always)]
fn pack_panels<const W: usize>(src: Strided<'_>, block: Block, out: &mut [f32]) -> usize {
    let Block { first: i0, len: mc, p0, kc } = block;
    let panels = mc.div_ceil(W);
    let len = panels * kc * W;
    // The W values of one k are contiguous (Aᵀ, or row-major B): fixed-size copies (a few
    // vector moves each), PACK_ROWS values of k at a time across all full panels.
    let contiguous = src.rs == 1 && src.cs != 1;
    let full = if contiguous { mc / W } else { 0 };
    for p_block in (0..kc).step_by(PACK_ROWS) {
        let p_end = (p_block + PACK_ROWS).min(kc);
        for panel in 0..full {
            let dst = &mut out[panel * kc * W + p_block * W..panel * kc * W + p_end * W];
            for (p, d) in (p_block..p_end).zip(dst.as_chunks_mut::<W>().0) {
                d.copy_from_slice(&src.data[(p0 + p) * src.cs + i0 + panel * W..][..W]);
            }
        }
    }
    for (panel, dst) in out[..len].chunks_exact_mut(kc * W).enumerate().skip(full) {
        let rows = W.min(mc - panel * W);
        let ibase = i0 + panel * W;
        let (dst, _) = dst.as_chunks_mut::<W>();
        if contiguous {
            // The last, cut panel: `rows` contiguous values per k, zero-padded.
            for (p, d) in dst.iter_mut().enumerate() {
                d[..rows].copy_from_slice(&src.data[(p0 + p) * src.cs + ibase..][..rows]);
                d[rows..].fill(0.0);
            }
        } else if rows == W && src.cs == 1 {
            // Contiguous along k (row-major A, or Bᵀ stored n×k): W source rows, each read once,
            // written with stride W.
            let rows_src: [&[f32]; W] = std::array::from_fn(|ii| &src.data[(ibase + ii) * src.rs + p0..][..kc]);
            for (p, d) in dst.iter_mut().enumerate() {
                for ii in 0..W {
                    // SAFETY: p < kc (dst has kc chunks) and every rows_src[ii] has length kc.
                    d[ii] = unsafe { *rows_src[ii].get_unchecked(p) };
                }
            }
        } else {
            for (p, d) in dst.iter_mut().enumerate() {
                for (ii, x) in d.iter_mut().enumerate() {
                    *x = if ii < rows { src.at(ibase + ii, p0 + p) } else { 0.0 };
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
        assert_eq!(pack_a::<2>(a, block(0, 3, 0, 2), &mut out), 8);
        assert_eq!(out, [1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0]);
        // Same data as B (k=3, n=2) with nr=4: one panel, two columns padded.
        let b = Strided { data: &data, rs: 2, cs: 1 };
        let mut out = [9.0f32; 12];
        assert_eq!(pack_b::<4>(b, block(0, 2, 0, 3), &mut out), 12);
        assert_eq!(out, [1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0]);
        // Transposed source (cs != 1) gives the same panels as the row-major copy.
        let t = [1.0, 3.0, 5.0, 2.0, 4.0, 6.0];
        let bt = Strided { data: &t, rs: 1, cs: 3 };
        let mut out_t = [9.0f32; 12];
        pack_b::<4>(bt, block(0, 2, 0, 3), &mut out_t);
        assert_eq!(out_t, out);
        // Full panels take the fast paths: row-major and transposed sources agree.
        let (k, n) = (5, 8);
        let rm: Vec<f32> = (0..k * n).map(|x| x as f32).collect();
        let tr: Vec<f32> = (0..n * k).map(|x| ((x % k) * n + x / k) as f32).collect();
        let (mut p1, mut p2) = (vec![0.0; k * n], vec![0.0; k * n]);
        pack_b::<4>(Strided { data: &rm, rs: n, cs: 1 }, block(0, n, 0, k), &mut p1);
        pack_b::<4>(Strided { data: &tr, rs: 1, cs: k }, block(0, n, 0, k), &mut p2);
        assert_eq!(p1, p2);
        let (mut q1, mut q2) = (vec![0.0; 64], vec![0.0; 64]);
        pack_a::<4>(Strided { data: &rm, rs: n, cs: 1 }, block(0, k, 0, n), &mut q1);
        pack_a::<4>(Strided { data: &tr, rs: 1, cs: k }, block(0, k, 0, n), &mut q2);
        assert_eq!(q1, q2);
    }
}
