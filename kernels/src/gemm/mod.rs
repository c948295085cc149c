//! General matrix multiply, row-major, BLAS-style: `C = alpha·op(A)·op(B) + beta·C`.
//!
//! `f32` runs our own blocked, packed GEMM ([`driver`]) with a SIMD micro-kernel per CPU level
//! ([`microkernel`]), chosen at run time ([`crate::dispatch`]); other types (`f64` for gradient
//! checks) use `matrixmultiply` ([`generic`]). Large products are split by rows of `C` across
//! rayon, so every element is computed by one call over the full `k` and results do not
//! depend on the thread count. [`PackedB`] packs a weight matrix once for reuse across many
//! products (the recurrent weights are multiplied `T` times per step).

pub(crate) mod driver;
pub(crate) mod generic;
pub(crate) mod microkernel;
pub(crate) mod pack;

pub use microkernel::KernelId;

use crate::dispatch::{cpu_level, CpuLevel};
use crate::kernel::{as_f32, as_f32_mut, is_f32, CastF32, FastKernel, Kernel};
use crate::Float;
use pack::Strided;

/// Whether an operand is used as stored (`N`) or transposed (`T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use the transpose of the stored matrix.
    T,
}

crate::kernel_args! {
    /// `C[m×n] = alpha * op(A)·op(B) + beta * C`, all row-major.
    ///
    /// `op(A)` is `m×k`: stored `m×k` with leading dimension `lda` for [`Op::N`], stored `k×m`
    /// for [`Op::T`]. `op(B)` is `k×n`: stored `k×n` (`N`) or `n×k` (`T`) with leading dimension
    /// `ldb`. `C` is `m×n` with leading dimension `ldc`. With `beta == 0`, `C` is only written.
    /// The plain body is `matrixmultiply`; the `f32` fast path is ours ([`driver`]).
    ///
    /// # Panics
    /// If a leading dimension is smaller than its row or a slice is too short for its shape.
    pub struct Gemm<'a, F> {
        pub op_a: plain<Op>,
        pub op_b: plain<Op>,
        pub m: plain<usize>,
        pub n: plain<usize>,
        pub k: plain<usize>,
        pub alpha: value,
        pub a: slice,
        pub lda: plain<usize>,
        pub b: slice,
        pub ldb: plain<usize>,
        pub beta: value,
        pub c: slice_mut,
        pub ldc: plain<usize>,
    }
}

impl<F: Float> Gemm<'_, F> {
    /// Handles the products with nothing to multiply (`m` or `n` zero: nothing to do; `k` zero:
    /// `C = beta·C`); says whether this was one.
    fn empty_product(&mut self) -> bool {
        if self.m == 0 || self.n == 0 {
            return true;
        }
        if self.k == 0 {
            scale_only(self.m, self.n, self.beta, self.c, self.ldc);
            return true;
        }
        false
    }
}

impl<F: Float> Kernel for Gemm<'_, F> {
    type Output = ();

    fn check(&self) {
        if self.m == 0 || self.n == 0 {
            return;
        }
        let (a_rows, a_cols) = stored_shape(self.op_a, self.m, self.k);
        let (b_rows, b_cols) = stored_shape(self.op_b, self.k, self.n);
        check_matrix("A", self.a.len(), a_rows, a_cols, self.lda);
        check_matrix("B", self.b.len(), b_rows, b_cols, self.ldb);
        check_matrix("C", self.c.len(), self.m, self.n, self.ldc);
    }

    fn plain(mut self) {
        if self.empty_product() {
            return;
        }
        let Gemm { op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc } = self;
        let ((rsa, csa), (rsb, csb)) = (strides(op_a, lda), strides(op_b, ldb));
        generic::gemm_generic(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, ldc)
    }
}

impl FastKernel for Gemm<'_, f32> {
    fn fast(mut self, level: CpuLevel) {
        if self.empty_product() {
            return;
        }
        f32_path::gemm(KernelId::choose(level, self.m, self.n), self)
    }
}

/// Sizes the calling thread's GEMM packing buffers for products of up to `max_n` columns, so
/// that later products on this thread allocate nothing. Call it on every thread of a pool
/// (`rayon::broadcast`) before a loop that must not allocate.
pub fn reserve_scratch(max_n: usize) {
    driver::reserve_scratch(max_n);
}

/// Bytes [`reserve_scratch`] sets aside on one thread (for memory estimates).
pub fn scratch_bytes(max_n: usize) -> usize {
    let (a, b) = driver::scratch_lens(max_n);
    (a + b) * std::mem::size_of::<f32>()
}

/// How a [`PackedB`] holds its matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedLayout {
    /// Nothing packed yet.
    Empty,
    /// `op(B)` copied row-major (`k×n`), for types without a fast path.
    Plain,
    /// Panels for this micro-kernel.
    Panels(KernelId),
}

/// A `k×n` right-hand operand packed once and multiplied many times ([`gemm_packed`]).
/// Allocated by [`PackedB::new`]; [`PackedB::pack`] refills it without allocating.
#[derive(Clone, Debug)]
pub struct PackedB<F> {
    k: usize,
    n: usize,
    rows_hint: usize,
    layout: PackedLayout,
    data: Vec<F>,
}

impl<F: Float> PackedB<F> {
    /// Room for a `k×n` operand in any layout, for products of any number of rows.
    pub fn new(k: usize, n: usize) -> PackedB<F> {
        // Many rows: the choice then depends on the column padding alone.
        Self::for_rows(k, n, 1 << 30)
    }

    /// Room for a `k×n` operand that will multiply `rows`-row left operands: the micro-kernel
    /// is chosen to waste least on `rows×n` results (e.g. 5-row tiles for 25 rows).
    pub fn for_rows(k: usize, n: usize, rows: usize) -> PackedB<F> {
        let len = Self::capacity(k, n);
        PackedB { k, n, rows_hint: rows, layout: PackedLayout::Empty, data: vec![F::zero(); len] }
    }

    /// Elements a packed `k×n` operand holds: room for the widest panels (Plain needs `k·n`).
    pub fn capacity(k: usize, n: usize) -> usize {
        driver::packed_len(k, n, microkernel::MAX_NR)
    }

    /// Packs `op(B)` (stored `k×n` for [`Op::N`], `n×k` for [`Op::T`], leading dimension `ldb`).
    pub fn pack(&mut self, op_b: Op, b: &[F], ldb: usize) {
        let (rows, cols) = stored_shape(op_b, self.k, self.n);
        check_matrix("B", b.len(), rows, cols, ldb);
        let (rs, cs) = strides(op_b, ldb);
        let (k, n) = (self.k, self.n);
        self.layout = if is_f32::<F>() {
            // Panels for the micro-kernel that wastes least on `rows_hint`-row products.
            let kernel = KernelId::choose(cpu_level(), self.rows_hint, n);
            f32_path::pack_b(kernel, k, n, Strided { data: as_f32(b), rs, cs }, as_f32_mut(&mut self.data))
        } else {
            for (p, row) in self.data[..k * n].chunks_exact_mut(n.max(1)).enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = b[p * rs + j * cs];
                }
            }
            PackedLayout::Plain
        };
    }

    /// Rows `k` of `op(B)`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n` of `op(B)`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// How the data is laid out.
    pub fn layout(&self) -> PackedLayout {
        self.layout
    }

    /// The packed data (layout-specific).
    pub fn data(&self) -> &[F] {
        &self.data
    }
}

impl<'a, F: Float> CastF32 for &'a PackedB<F> {
    type F32 = &'a PackedB<f32>;

    fn cast_f32(self) -> &'a PackedB<f32> {
        assert!(is_f32::<F>(), "a packed operand of another type taken as f32");
        // SAFETY: `F` is `f32` (asserted above), so `PackedB<F>` is `PackedB<f32>`.
        unsafe { &*(self as *const PackedB<F>).cast::<PackedB<f32>>() }
    }
}

crate::kernel_args! {
    /// `C[m×n] = alpha·op(A)·B + beta·C` with a pre-packed `B` (`k×n`, see [`PackedB`]).
    ///
    /// # Panics
    /// If `b` was never packed, or on shape errors as [`Gemm`].
    pub struct GemmPacked<'a, F> {
        pub op_a: plain<Op>,
        pub m: plain<usize>,
        pub alpha: value,
        pub a: slice,
        pub lda: plain<usize>,
        pub b: cast<&'a PackedB<F>>,
        pub beta: value,
        pub c: slice_mut,
        pub ldc: plain<usize>,
    }
}

impl<F: Float> GemmPacked<'_, F> {
    /// As [`Gemm::empty_product`].
    fn empty_product(&mut self) -> bool {
        if self.m == 0 || self.b.n == 0 {
            return true;
        }
        if self.b.k == 0 {
            scale_only(self.m, self.b.n, self.beta, self.c, self.ldc);
            return true;
        }
        false
    }
}

impl<F: Float> Kernel for GemmPacked<'_, F> {
    type Output = ();

    fn check(&self) {
        let (k, n) = (self.b.k, self.b.n);
        if self.m == 0 || n == 0 {
            return;
        }
        assert!(self.b.layout != PackedLayout::Empty, "GemmPacked: B was never packed");
        let (a_rows, a_cols) = stored_shape(self.op_a, self.m, k);
        check_matrix("A", self.a.len(), a_rows, a_cols, self.lda);
        check_matrix("C", self.c.len(), self.m, n, self.ldc);
    }

    /// Needs `B` packed plainly, as it is for every type but `f32`.
    fn plain(mut self) {
        if self.empty_product() {
            return;
        }
        assert!(self.b.layout == PackedLayout::Plain, "GemmPacked: the plain body needs a plainly packed B");
        let GemmPacked { op_a, m, alpha, a, lda, b, beta, c, ldc } = self;
        let (rsa, csa) = strides(op_a, lda);
        generic::gemm_generic(m, b.k, b.n, alpha, a, rsa, csa, &b.data, b.n, 1, beta, c, ldc)
    }
}

impl FastKernel for GemmPacked<'_, f32> {
    fn fast(mut self, _level: CpuLevel) {
        // The level was fixed when `B` was packed: its panels are for one micro-kernel.
        if self.empty_product() {
            return;
        }
        f32_path::gemm_packed(self)
    }
}

/// A product over an empty inner dimension is zero: `C = beta * C` (only written when
/// `beta == 0`), without calling the backend.
fn scale_only<F: Float>(m: usize, n: usize, beta: F, c: &mut [F], ldc: usize) {
    for row in c.chunks_mut(ldc).take(m) {
        for x in &mut row[..n] {
            *x = if beta == F::zero() { F::zero() } else { *x * beta };
        }
    }
}

/// (row stride, column stride) of the *logical* operand for a stored row-major matrix.
fn strides(op: Op, ld: usize) -> (usize, usize) {
    match op {
        Op::N => (ld, 1),
        Op::T => (1, ld),
    }
}

/// Shape as stored in memory of an operand whose logical shape is `rows×cols`.
fn stored_shape(op: Op, rows: usize, cols: usize) -> (usize, usize) {
    match op {
        Op::N => (rows, cols),
        Op::T => (cols, rows),
    }
}

fn check_matrix(name: &str, len: usize, rows: usize, cols: usize, ld: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(ld >= cols, "gemm: {name} has leading dimension {ld} < {cols} columns");
    let needed = (rows - 1) * ld + cols;
    assert!(len >= needed, "gemm: {name} ({rows}×{cols}, ld {ld}) needs {needed} elements, slice has {len}");
}

/// The `f32` entry points behind the [`Float`] hooks, at an explicit level (tests use every
/// level the CPU has).
pub(crate) mod f32_path {
    use super::driver::{gemm_f32, pack_b_whole, packed_len, BSource, Product};
    use super::pack::Strided;
    use super::{strides, Gemm, GemmPacked, KernelId, Op, PackedLayout};

    /// [`Gemm`] (non-empty, bounds checked) with a given micro-kernel.
    pub(crate) fn gemm(kernel: KernelId, gemm: Gemm<'_, f32>) {
        let Gemm { op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc } = gemm;
        let (a, b) = (operand(op_a, a, lda), BSource::Strided(operand(op_b, b, ldb)));
        gemm_f32(kernel, Product { m, n, k, alpha, a, b, beta }, c, ldc);
    }

    /// [`GemmPacked`] (non-empty, bounds checked) with the micro-kernel `B` was packed for.
    pub(crate) fn gemm_packed(gemm: GemmPacked<'_, f32>) {
        let GemmPacked { op_a, m, alpha, a, lda, b, beta, c, ldc } = gemm;
        let PackedLayout::Panels(kernel) = b.layout() else { unreachable!("f32 operands are always packed in panels") };
        let (a, n, k) = (operand(op_a, a, lda), b.n(), b.k());
        gemm_f32(kernel, Product { m, n, k, alpha, a, b: BSource::Packed(b.data()), beta }, c, ldc);
    }

    /// The strided view of the logical operand `op(X)` of a stored row-major `X`.
    fn operand(op: Op, data: &[f32], ld: usize) -> Strided<'_> {
        let (rs, cs) = strides(op, ld);
        Strided { data, rs, cs }
    }

    /// Every kernel this CPU can run.
    #[cfg(test)]
    pub(crate) fn available_kernels() -> Vec<KernelId> {
        let top = crate::dispatch::detected_level();
        KernelId::ALL
            .into_iter()
            .filter(|k| {
                k.level() <= top && (cfg!(target_arch = "x86_64") || k.level() == crate::dispatch::CpuLevel::Portable)
            })
            .collect()
    }

    /// Packs `op(B)` (`k×n`, viewed by `b`) into `out` for `kernel`.
    pub(crate) fn pack_b(kernel: KernelId, k: usize, n: usize, b: Strided<'_>, out: &mut [f32]) -> PackedLayout {
        debug_assert!(out.len() >= packed_len(k, n, kernel.tile().1));
        pack_b_whole(kernel, b, k, n, out);
        PackedLayout::Panels(kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// A product `C = 0.7·op(A)·op(B) + beta·C` of random operands, stored for `op_a`, `op_b`
    /// with every row padded by `pad` elements.
    struct Case {
        op_a: Op,
        op_b: Op,
        m: usize,
        n: usize,
        k: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        a: Vec<f32>,
        b: Vec<f32>,
        c0: Vec<f32>,
        beta: f32,
    }

    impl Case {
        /// `A`, `B` and the initial `C`, in that order, from the generator seeded with `seed`.
        fn new(seed: u64, (op_a, op_b): (Op, Op), (m, n, k): (usize, usize, usize), pad: usize, beta: f32) -> Case {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (ar, ac) = stored_shape(op_a, m, k);
            let (br, bc) = stored_shape(op_b, k, n);
            let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
            let a = random(&mut rng, ar * lda);
            let b = random(&mut rng, br * ldb);
            let c0 = random(&mut rng, m * ldc);
            Case { op_a, op_b, m, n, k, lda, ldb, ldc, a, b, c0, beta }
        }

        /// The product, into `c`.
        fn gemm<'a>(&'a self, c: &'a mut [f32]) -> Gemm<'a, f32> {
            let Case { op_a, op_b, m, n, k, lda, ldb, ldc, beta, .. } = *self;
            Gemm { op_a, op_b, m, n, k, alpha: 0.7, a: &self.a, lda, b: &self.b, ldb, beta, c, ldc }
        }

        /// The product with `B` packed in `b`, into `c`.
        fn gemm_packed<'a>(&'a self, b: &'a PackedB<f32>, c: &'a mut [f32]) -> GemmPacked<'a, f32> {
            let Case { op_a, m, lda, ldc, beta, .. } = *self;
            GemmPacked { op_a, m, alpha: 0.7, a: &self.a, lda, b, beta, c, ldc }
        }

        /// `C` as the reference computes it.
        fn reference(&self) -> Vec<f32> {
            let Case { op_a, op_b, m, n, k, lda, ldb, ldc, beta, .. } = *self;
            let mut c = self.c0.clone();
            reference::gemm(op_a, op_b, m, n, k, 0.7, &self.a, lda, &self.b, ldb, beta, &mut c, ldc);
            c
        }

        /// Asserts that `c` matches the reference within rounding and left the padding alone.
        fn assert_matches_reference(&self, c: &[f32], what: &str) {
            let c_ref = self.reference();
            let Case { op_a, op_b, m, n, k, ldc, .. } = *self;
            let tol = 1e-5 * (k as f32).sqrt().max(1.0) * 4.0;
            for i in 0..m {
                for j in 0..ldc {
                    let idx = i * ldc + j;
                    if j >= n {
                        assert_eq!(c[idx], self.c0[idx], "{what}: padding written at ({i},{j})");
                    } else {
                        let (x, y) = (c[idx], c_ref[idx]);
                        assert!((x - y).abs() <= tol, "{what} {op_a:?}{op_b:?} m{m} n{n} k{k}: ({i},{j}) {x} vs {y}");
                    }
                }
            }
        }
    }

    /// A row-major product `C[m×n] = A·B + beta·C` without padding.
    fn row_major<'a>(
        (m, n, k): (usize, usize, usize),
        a: &'a [f32],
        b: &'a [f32],
        beta: f32,
        c: &'a mut [f32],
    ) -> Gemm<'a, f32> {
        Gemm { op_a: Op::N, op_b: Op::N, m, n, k, alpha: 1.0, a, lda: k, b, ldb: n, beta, c, ldc: n }
    }

    fn check(op_a: Op, op_b: Op, m: usize, n: usize, k: usize, pad: usize, beta: f32) {
        let case = Case::new((m * 1000 + n * 10 + k) as u64, (op_a, op_b), (m, n, k), pad, beta);
        let mut c = case.c0.clone();
        case.gemm(&mut c).run();
        case.assert_matches_reference(&c, "run");
    }

    /// A result too large to stay in cache with `k > 512` takes 512-deep blocks (and a cut
    /// last one): the path of `dG·Wᵀ` in the big config, against the reference.
    #[test]
    fn large_results_with_deep_blocks_match_reference() {
        let (m, n, k) = (515, 513, 530);
        assert!(m * n > driver::C_CACHED && k > driver::KC_MAX);
        assert_eq!(driver::depth_block(k, m * n), driver::KC_MAX);
        // One thread, so the whole result is one part (split in two, each half is cached).
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("thread pool");
        one.install(|| {
            check(Op::N, Op::N, m, n, k, 0, 0.0);
            check(Op::N, Op::T, m, n, k, 3, 0.5);
        });
    }

    /// Every micro-kernel this CPU has against the reference, on shapes that cut
    /// tiles, deep blocks (k > 512 with a small result: 256-deep, with a cut last block) and
    /// `NC` blocks (n > 4096), for all transposition cases. Row-major `A` with whole column
    /// panels is read in place beside a packed cut last panel: (50, 512, 128), (29, 64, 700)
    /// (with deep blocks) and (17, 4128, 3) (an `NC` block in place, the next one packed for
    /// the 64-wide kernel).
    #[test]
    fn every_level_matches_reference() {
        let shapes = [
            (1, 1, 1),
            (3, 17, 5),
            (11, 33, 300),
            (50, 512, 128),
            (23, 65, 513),
            (37, 129, 1100),
            (3, 4100, 5),
            (129, 7, 1),
            (29, 64, 700),
            (17, 4128, 3),
        ];
        for kernel in f32_path::available_kernels() {
            for &(m, n, k) in &shapes {
                for op_a in [Op::N, Op::T] {
                    for op_b in [Op::N, Op::T] {
                        for &(pad, beta) in &[(0usize, 0.0f32), (2, 0.5)] {
                            let seed = (m * 31 + n * 7 + k) as u64;
                            let case = Case::new(seed, (op_a, op_b), (m, n, k), pad, beta);
                            let (mut c, mut c_packed) = (case.c0.clone(), case.c0.clone());
                            f32_path::gemm(kernel, case.gemm(&mut c));
                            let mut packed = PackedB::<f32>::new(k, n);
                            let (rs, cs) = strides(op_b, case.ldb);
                            let b = Strided { data: &case.b, rs, cs };
                            packed.layout = f32_path::pack_b(kernel, k, n, b, &mut packed.data);
                            f32_path::gemm_packed(case.gemm_packed(&packed, &mut c_packed));
                            case.assert_matches_reference(&c, &format!("{kernel:?}"));
                            assert_eq!(c_packed, c, "{kernel:?} {op_a:?}{op_b:?} m{m} n{n} k{k}: packed differs");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn kernel_choice_minimises_padding() {
        use crate::dispatch::CpuLevel;
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 50, 512), KernelId::Avx512Tall);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 25, 512), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 2500, 65), KernelId::Avx512Narrow);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 2500, 512), KernelId::Avx512Tall);
        // Ties on wide results go to 5×64; a clear difference in work still decides.
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 5000, 2048), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 50, 2048), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 5000, 2080), KernelId::Avx512Tall);
        // A last column as a few-column tile costs one vector per row panel: fewer for 10 rows.
        assert_eq!(KernelId::choose(CpuLevel::Avx512, 5000, 2049), KernelId::Avx512Tall);
        assert_eq!(KernelId::choose(CpuLevel::Avx2, 25, 512), KernelId::Avx2);
        assert_eq!(KernelId::choose(CpuLevel::Portable, 25, 512), KernelId::Portable);
    }

    #[test]
    fn packed_operand_through_the_public_api() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (m, n, k) = (7, 40, 9);
        let a = random(&mut rng, m * k);
        let w = random(&mut rng, n * k); // stored n×k, used transposed
        let mut packed = PackedB::<f32>::new(k, n);
        packed.pack(Op::T, &w, k);
        let mut c = vec![0.0f32; m * n];
        let mut c_ref = vec![0.0f32; m * n];
        GemmPacked { op_a: Op::N, m, alpha: 1.0, a: &a, lda: k, b: &packed, beta: 0.0, c: &mut c, ldc: n }.run();
        Gemm { op_b: Op::T, ldb: k, ..row_major((m, n, k), &a, &w, 0.0, &mut c_ref) }.run();
        assert_eq!(c, c_ref);
        // f64 takes the plain layout and agrees too.
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        let w64: Vec<f64> = w.iter().map(|&x| x as f64).collect();
        let mut p64 = PackedB::<f64>::new(k, n);
        p64.pack(Op::T, &w64, k);
        assert_eq!(p64.layout(), PackedLayout::Plain);
        let mut c64 = vec![0.0f64; m * n];
        GemmPacked { op_a: Op::N, m, alpha: 1.0, a: &a64, lda: k, b: &p64, beta: 0.0, c: &mut c64, ldc: n }.run();
        for (x, y) in c64.iter().zip(&c_ref) {
            assert!((*x as f32 - y).abs() < 1e-5);
        }
    }

    #[test]
    fn matches_reference_on_odd_shapes() {
        for &(m, n, k) in &[(1, 1, 1), (3, 17, 5), (17, 3, 65), (65, 127, 3), (129, 33, 17), (2, 129, 1)] {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    check(op_a, op_b, m, n, k, 0, 0.0);
                    check(op_a, op_b, m, n, k, 3, 0.5);
                }
            }
        }
    }

    #[test]
    fn large_products_split_across_threads_match_reference() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            check(Op::N, Op::N, 200, 256, 64, 1, 1.0);
            check(Op::T, Op::N, 130, 100, 300, 0, 0.0);
        });
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (m, n, k) = (301, 128, 96);
        let a = random(&mut rng, m * k);
        let b = random(&mut rng, k * n);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![0.0f32; m * n];
            pool.install(|| row_major((m, n, k), &a, &b, 0.0, &mut c).run());
            c
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32, 4.0];
        let mut c = [f32::NAN];
        row_major((1, 1, 2), &a, &b, 0.0, &mut c).run();
        assert_eq!(c[0], 11.0);
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = [2.0f32, 4.0];
        Gemm { lda: 1, ..row_major((1, 2, 0), &[], &[], 0.5, &mut c) }.run();
        assert_eq!(c, [1.0, 2.0]);
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn short_slice_panics() {
        let mut c = [0.0f32; 4];
        row_major((2, 2, 2), &[0.0; 3], &[0.0; 4], 0.0, &mut c).run();
    }
}
