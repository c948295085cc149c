//! General matrix multiply, row-major, BLAS-style: `C = alpha·op(A)·op(B) + beta·C`.
//!
//! `f32` runs our own blocked, packed GEMM ([`driver`]) with a SIMD micro-kernel per CPU level
//! ([`microkernel`]), chosen at run time ([`crate::dispatch`]); other types (`f64` for gradient
//! checks) use `matrixmultiply` ([`generic`]). Large products are split by rows of `C` across
//! rayon, so every element is computed by one call over the full `k` and results do not
//! depend on the thread count. [`PackedB`] packs a weight matrix once for reuse across many
//! products (the recurrent weights are multiplied `T` times per step): the GEMM's form of a
//! [`crate::prepared::PreparedMatrix`].
//!
//! A product of [`Precision::Bf16`] rounds both operands to bf16 (nearest even) and
//! accumulates the products in `f32`: at [`CpuLevel::Avx512Bf16`] with the bf16-pair kernels
//! (`vdpbf16ps`), below it with the level's `f32` kernels on operands rounded as they are
//! packed. [`Precision::F32`] runs exactly the `f32` path.

pub(crate) mod driver;
pub(crate) mod generic;
pub(crate) mod microkernel;
pub(crate) mod pack;

pub use microkernel::KernelId;

use crate::dispatch::{cpu_level, CpuLevel};
use crate::kernel::{as_f32, as_f32_mut, is_f32, CastF32, FastKernel, Kernel};
use crate::{Float, Precision};
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
    /// With `precision` [`Precision::Bf16`], `op(A)` and `op(B)` are rounded to bf16 first
    /// (nearest even; products accumulated in `f32`). The plain body is `matrixmultiply`; the
    /// `f32` fast path is ours ([`driver`]).
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
        pub precision: plain<Precision>,
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

    /// Rounds to bf16 by copying the operands: plain bodies serve `f64` gradient checks and
    /// tests only, so this allocation never sits in a training loop.
    unsafe fn plain(mut self) {
        if self.empty_product() {
            return;
        }
        let Gemm { op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, precision } = self;
        let ((rsa, csa), (rsb, csb)) = (strides(op_a, lda), strides(op_b, ldb));
        let (a, b) = (rounded(a, precision), rounded(b, precision));
        generic::gemm_generic(m, k, n, alpha, &a, rsa, csa, &b, rsb, csb, beta, c, ldc)
    }
}

impl FastKernel for Gemm<'_, f32> {
    unsafe fn fast(mut self, level: CpuLevel) {
        if self.empty_product() {
            return;
        }
        f32_path::gemm(KernelId::choose(level, self.precision, self.m, self.n), self)
    }
}

/// Sizes the calling thread's GEMM packing buffers for products of up to `max_n` columns, so
/// that later products on this thread allocate nothing. Call it on every thread of a pool
/// (`rayon::broadcast`) before a loop that must not allocate.
pub fn reserve_scratch(max_n: usize) {
    driver::reserve_scratch(max_n);
}

/// `x` rounded to `precision` (through `f32` for other types: bf16 values are `f32` values).
fn round<F: Float>(x: F, precision: Precision) -> F {
    match precision {
        Precision::F32 => x,
        Precision::Bf16 => F::from_f64(f64::from(precision.round(x.to_f64() as f32))),
    }
}

/// `x` with every element rounded to `precision` (a copy, or `x` itself for `F32`): for the
/// plain bodies only.
fn rounded<F: Float>(x: &[F], precision: Precision) -> std::borrow::Cow<'_, [F]> {
    match precision {
        Precision::F32 => std::borrow::Cow::Borrowed(x),
        Precision::Bf16 => x.iter().map(|&v| round(v, precision)).collect(),
    }
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

/// A `k×n` right-hand operand packed once and multiplied many times ([`GemmPacked`]), for
/// products of one [`Precision`] (a bf16 operand is packed rounded, as bf16 pairs at
/// [`CpuLevel::Avx512Bf16`]). Allocated by [`PackedB::new`]; [`PackedB::pack`] refills it
/// without allocating.
#[derive(Clone, Debug)]
pub struct PackedB<F> {
    k: usize,
    n: usize,
    rows_hint: usize,
    precision: Precision,
    layout: PackedLayout,
    data: Vec<F>,
}

impl<F: Float> PackedB<F> {
    /// Room for a `k×n` operand in any layout, for products of any number of rows at
    /// `precision`.
    pub fn new(k: usize, n: usize, precision: Precision) -> PackedB<F> {
        // Many rows: the choice then depends on the column padding alone.
        Self::for_rows(k, n, 1 << 30, precision)
    }

    /// Room for a `k×n` operand that will multiply `rows`-row left operands at `precision`:
    /// the micro-kernel is chosen to waste least on `rows×n` results (e.g. 5-row tiles for 25
    /// rows).
    pub fn for_rows(k: usize, n: usize, rows: usize, precision: Precision) -> PackedB<F> {
        let len = Self::capacity(k, n);
        PackedB { k, n, rows_hint: rows, precision, layout: PackedLayout::Empty, data: vec![F::zero(); len] }
    }

    /// Elements a packed `k×n` operand holds: room for the widest panels (Plain needs `k·n`;
    /// bf16 pairs half as many words, and never more).
    pub fn capacity(k: usize, n: usize) -> usize {
        driver::packed_len(k, n, microkernel::MAX_NR)
    }

    /// Packs `op(B)` (stored `k×n` for [`Op::N`], `n×k` for [`Op::T`], leading dimension
    /// `ldb`), rounded to the operand's precision.
    pub fn pack(&mut self, op_b: Op, b: &[F], ldb: usize) {
        self.pack_at(cpu_level(), op_b, b, ldb);
    }

    /// [`PackedB::pack`] for the kernels of `level` (tests prepare operands for every level).
    ///
    /// # Panics
    /// As [`PackedB::pack`], and if `level` is above what this CPU supports.
    pub(crate) fn pack_at(&mut self, level: CpuLevel, op_b: Op, b: &[F], ldb: usize) {
        let (rows, cols) = stored_shape(op_b, self.k, self.n);
        check_matrix("B", b.len(), rows, cols, ldb);
        let (rs, cs) = strides(op_b, ldb);
        let (k, n, precision) = (self.k, self.n, self.precision);
        self.layout = if is_f32::<F>() {
            // Panels for the micro-kernel that wastes least on `rows_hint`-row products.
            let kernel = KernelId::choose(level, precision, self.rows_hint, n);
            let b = Strided { data: as_f32(b), rs, cs };
            f32_path::pack_b(kernel, precision, (k, n), b, as_f32_mut(&mut self.data))
        } else {
            for (p, row) in self.data[..k * n].chunks_exact_mut(n.max(1)).enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = round(b[p * rs + j * cs], precision);
                }
            }
            PackedLayout::Plain
        };
    }

    /// What the operand is rounded to, and the products it takes part in.
    pub fn precision(&self) -> Precision {
        self.precision
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
    /// `C[m×n] = alpha·op(A)·B + beta·C` with a pre-packed `B` (`k×n`, see [`PackedB`]), at
    /// the precision of `b` (`op(A)` rounded likewise).
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

    /// Needs `B` packed plainly (already rounded), as it is for every type but `f32`; rounds
    /// `A` by copying it, as [`Gemm`]'s plain body.
    unsafe fn plain(mut self) {
        if self.empty_product() {
            return;
        }
        assert!(self.b.layout == PackedLayout::Plain, "GemmPacked: the plain body needs a plainly packed B");
        let GemmPacked { op_a, m, alpha, a, lda, b, beta, c, ldc } = self;
        let (rsa, csa) = strides(op_a, lda);
        let a = rounded(a, b.precision);
        generic::gemm_generic(m, b.k, b.n, alpha, &a, rsa, csa, &b.data, b.n, 1, beta, c, ldc)
    }
}

impl FastKernel for GemmPacked<'_, f32> {
    unsafe fn fast(mut self, _level: CpuLevel) {
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
pub(crate) fn strides(op: Op, ld: usize) -> (usize, usize) {
    match op {
        Op::N => (ld, 1),
        Op::T => (1, ld),
    }
}

/// Shape as stored in memory of an operand whose logical shape is `rows×cols`.
pub(crate) fn stored_shape(op: Op, rows: usize, cols: usize) -> (usize, usize) {
    match op {
        Op::N => (rows, cols),
        Op::T => (cols, rows),
    }
}

/// Asserts that a `rows×cols` matrix with leading dimension `ld` fits in `len` elements.
pub(crate) fn check_matrix(name: &str, len: usize, rows: usize, cols: usize, ld: usize) {
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
        let Gemm { op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, precision } = gemm;
        let (a, b) = (operand(op_a, a, lda), BSource::Strided(operand(op_b, b, ldb)));
        gemm_f32(kernel, Product { m, n, k, alpha, a, b, beta, precision }, c, ldc);
    }

    /// [`GemmPacked`] (non-empty, bounds checked) with the micro-kernel and precision `B` was
    /// packed for.
    pub(crate) fn gemm_packed(gemm: GemmPacked<'_, f32>) {
        let GemmPacked { op_a, m, alpha, a, lda, b, beta, c, ldc } = gemm;
        let PackedLayout::Panels(kernel) = b.layout() else { unreachable!("f32 operands are always packed in panels") };
        let (a, n, k, precision) = (operand(op_a, a, lda), b.n(), b.k(), b.precision());
        gemm_f32(kernel, Product { m, n, k, alpha, a, b: BSource::Packed(b.data()), beta, precision }, c, ldc);
    }

    /// The strided view of the logical operand `op(X)` of a stored row-major `X`.
    fn operand(op: Op, data: &[f32], ld: usize) -> Strided<'_> {
        let (rs, cs) = strides(op, ld);
        Strided { data, rs, cs }
    }

    /// Every kernel this CPU can run for products of `precision` (the bf16-pair ones for
    /// bf16 only).
    #[cfg(test)]
    pub(crate) fn available_kernels(precision: crate::Precision) -> Vec<KernelId> {
        let top = crate::dispatch::detected_level();
        KernelId::ALL
            .into_iter()
            .filter(|k| {
                k.level() <= top
                    && (cfg!(target_arch = "x86_64") || k.level() == crate::dispatch::CpuLevel::Portable)
                    && (!k.native_bf16() || precision == crate::Precision::Bf16)
            })
            .collect()
    }

    /// Packs `op(B)` (`k×n`, viewed by `b`) into `out` for `kernel` at `precision`.
    pub(crate) fn pack_b(
        kernel: KernelId,
        precision: crate::Precision,
        (k, n): (usize, usize),
        b: Strided<'_>,
        out: &mut [f32],
    ) -> PackedLayout {
        debug_assert!(out.len() >= packed_len(k, n, kernel.tile().1));
        pack_b_whole(kernel, precision, b, (k, n), out);
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
        precision: Precision,
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
            Case { op_a, op_b, m, n, k, lda, ldb, ldc, a, b, c0, beta, precision: Precision::F32 }
        }

        /// The same product at `precision`.
        fn at(self, precision: Precision) -> Case {
            Case { precision, ..self }
        }

        /// The product, into `c`.
        fn gemm<'a>(&'a self, c: &'a mut [f32]) -> Gemm<'a, f32> {
            let Case { op_a, op_b, m, n, k, lda, ldb, ldc, beta, precision, .. } = *self;
            Gemm { op_a, op_b, m, n, k, alpha: 0.7, a: &self.a, lda, b: &self.b, ldb, beta, c, ldc, precision }
        }

        /// The product with `B` packed in `b`, into `c`.
        fn gemm_packed<'a>(&'a self, b: &'a PackedB<f32>, c: &'a mut [f32]) -> GemmPacked<'a, f32> {
            let Case { op_a, m, lda, ldc, beta, .. } = *self;
            GemmPacked { op_a, m, alpha: 0.7, a: &self.a, lda, b, beta, c, ldc }
        }

        /// `C` as `kernel` computes it, with `B` strided and pre-packed (which must give the
        /// same bits).
        fn run_kernel(&self, kernel: KernelId) -> Vec<f32> {
            let Case { op_a, op_b, m, n, k, ldb, precision, .. } = *self;
            let (mut c, mut c_packed) = (self.c0.clone(), self.c0.clone());
            f32_path::gemm(kernel, self.gemm(&mut c));
            let mut packed = PackedB::<f32>::new(k, n, precision);
            let (rs, cs) = strides(op_b, ldb);
            let b = Strided { data: &self.b, rs, cs };
            packed.layout = f32_path::pack_b(kernel, precision, (k, n), b, &mut packed.data);
            f32_path::gemm_packed(self.gemm_packed(&packed, &mut c_packed));
            assert_eq!(c_packed, c, "{kernel:?} {op_a:?}{op_b:?} m{m} n{n} k{k}: packed differs");
            c
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
            let want: Vec<f64> = self.reference().iter().map(|&x| f64::from(x)).collect();
            let tol = f64::from(1e-5 * (self.k as f32).sqrt().max(1.0) * 4.0);
            self.assert_close(c, &want, &vec![tol; want.len()], what);
        }

        /// Asserts that every element of `c` is within `tol` of `want` (same layout), and that
        /// the padding of `C` was left alone.
        fn assert_close(&self, c: &[f32], want: &[f64], tol: &[f64], what: &str) {
            let Case { op_a, op_b, m, n, k, ldc, .. } = *self;
            for i in 0..m {
                for j in 0..ldc {
                    let idx = i * ldc + j;
                    if j >= n {
                        assert_eq!(c[idx], self.c0[idx], "{what}: padding written at ({i},{j})");
                    } else {
                        let (x, y) = (f64::from(c[idx]), want[idx]);
                        let bound = tol[idx];
                        assert!(
                            (x - y).abs() <= bound,
                            "{what} {op_a:?}{op_b:?} m{m} n{n} k{k}: ({i},{j}) {x} vs {y} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    /// Every transposition case of each shape, unpadded with `beta` 0 and padded with `beta`
    /// 0.5, at `precision`.
    fn cases(shapes: &[(usize, usize, usize)], precision: Precision) -> impl Iterator<Item = Case> + '_ {
        let ops = [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N), (Op::T, Op::T)];
        shapes.iter().flat_map(move |&(m, n, k)| {
            ops.into_iter().flat_map(move |(op_a, op_b)| {
                [(0usize, 0.0f32), (2, 0.5)].into_iter().map(move |(pad, beta)| {
                    let seed = (m * 31 + n * 7 + k) as u64;
                    Case::new(seed, (op_a, op_b), (m, n, k), pad, beta).at(precision)
                })
            })
        })
    }

    /// A row-major product `C[m×n] = A·B + beta·C` without padding.
    fn row_major<'a>(
        (m, n, k): (usize, usize, usize),
        a: &'a [f32],
        b: &'a [f32],
        beta: f32,
        c: &'a mut [f32],
    ) -> Gemm<'a, f32> {
        Gemm {
            op_a: Op::N,
            op_b: Op::N,
            m,
            n,
            k,
            alpha: 1.0,
            a,
            lda: k,
            b,
            ldb: n,
            beta,
            c,
            ldc: n,
            precision: Precision::F32,
        }
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
        // 513 columns where the L2 is 1 MiB (Zen 4), more where it is larger.
        let m = 515;
        let (n, k) = ((driver::blocking().c_cached / m + 1).max(513), 530);
        assert!(m * n > driver::blocking().c_cached && k > driver::KC_MAX);
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
        for kernel in f32_path::available_kernels(Precision::F32) {
            for case in cases(&shapes, Precision::F32) {
                case.assert_matches_reference(&case.run_kernel(kernel), &format!("{kernel:?}"));
            }
        }
    }

    /// The bf16 twin of a product: `op(A)` and `op(B)` rounded to bf16 (nearest even), the
    /// products summed in `f64`; and per element the bound on an `f32` accumulation of those
    /// products. Products of two bf16 values are exact in `f32`, so only the `k` additions
    /// (at most `k·u·Σ|a||b|`, u = 2⁻²⁴, in any order), the scaling by `alpha` and the
    /// addition of `beta·C` (a few more `u` of `|alpha|·Σ|a||b| + |beta·C|`) round: the bound
    /// is `(k + 4)·u·(|alpha|·Σ|a||b| + |beta·C|)`.
    fn bf16_twin(case: &Case) -> (Vec<f64>, Vec<f64>) {
        let Case { op_a, op_b, m, n, k, lda, ldb, ldc, beta, .. } = *case;
        let alpha = 0.7f64;
        let ((rsa, csa), (rsb, csb)) = (strides(op_a, lda), strides(op_b, ldb));
        let r = |x: f32| f64::from(Precision::Bf16.round(x));
        let u = 2f64.powi(-24);
        let (mut want, mut tol) = (vec![0.0; m * ldc], vec![0.0; m * ldc]);
        for i in 0..m {
            for j in 0..n {
                let (mut sum, mut abs) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let prod = r(case.a[i * rsa + p * csa]) * r(case.b[p * rsb + j * csb]);
                    sum += prod;
                    abs += prod.abs();
                }
                let c0 = f64::from(beta) * f64::from(case.c0[i * ldc + j]);
                want[i * ldc + j] = alpha * sum + c0;
                tol[i * ldc + j] = (k as f64 + 4.0) * u * (alpha * abs + c0.abs());
            }
        }
        (want, tol)
    }

    /// Asserts that `c` is within the bound of the bf16 twin and left the padding alone.
    fn assert_matches_bf16_twin(case: &Case, c: &[f32], what: &str) {
        let (want, tol) = bf16_twin(case);
        case.assert_close(c, &want, &tol, what);
    }

    /// Shapes that cut every tile (rows and columns), have odd depths (a last bf16 pair
    /// padded with zero), depths past 512 (256-deep blocks with a cut last one), and columns
    /// past `NC`.
    const BF16_SHAPES: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (3, 17, 5),
        (11, 33, 300),
        (23, 65, 513),
        (37, 129, 1101),
        (129, 7, 1),
        (29, 64, 700),
        (17, 4128, 3),
        (50, 512, 128),
    ];

    /// Every kernel of this CPU for bf16 products (the pair kernels at Avx512Bf16, the `f32`
    /// kernels of every level on rounded operands) against the bf16 twin, for all
    /// transposition cases, `beta` 0 and accumulating, `alpha` 0.7, and with `B` pre-packed
    /// (which must give the same bits).
    #[test]
    fn bf16_every_kernel_matches_twin() {
        for kernel in f32_path::available_kernels(Precision::Bf16) {
            for case in cases(&BF16_SHAPES, Precision::Bf16) {
                assert_matches_bf16_twin(&case, &case.run_kernel(kernel), &format!("{kernel:?}"));
            }
        }
    }

    /// A row-major `A`, whose full panels the pair kernels read as rows converted whole
    /// (`vcvtne2ps2bf16`), and the same `A` stored transposed, which they pack pair by pair,
    /// give the same bits: the same words in another order, for depths that cut a conversion
    /// of 32 values, odd depths, deep blocks, and values that round specially (subnormals, which
    /// become zeros, ties to even, negative zero).
    #[test]
    fn bf16_rows_converted_whole_equal_rows_packed_in_pairs() {
        let pair_kernels: Vec<KernelId> = f32_path::available_kernels(Precision::Bf16)
            .into_iter()
            .filter(|k| k.level() == CpuLevel::Avx512Bf16)
            .collect();
        for kernel in pair_kernels {
            let (mr, nr) = kernel.tile();
            for (k, n) in [1, 31, 32, 33, 67, 600].into_iter().flat_map(|k| [(k, 2 * nr), (k, 2 * nr + 3)]) {
                // A cut last row panel (packed), whole or cut column panels (rows in place).
                let m = 3 * mr + 1;
                let mut case = Case::new(9, (Op::N, Op::N), (m, n, k), 0, 0.5).at(Precision::Bf16);
                let specials = [1e-39, -3e-40, 1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), -0.0];
                for (x, s) in case.a.iter_mut().step_by(7).zip(specials.iter().cycle()) {
                    *x = *s;
                }
                let rows = case.run_kernel(kernel);
                let a_t: Vec<f32> = (0..k * m).map(|i| case.a[(i % m) * k + i / m]).collect();
                let transposed = Case { op_a: Op::T, lda: m, a: a_t, ..case };
                let pairs = transposed.run_kernel(kernel);
                let same = rows.iter().zip(&pairs).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{kernel:?} m{m} n{n} k{k}: converted rows and packed pairs differ");
            }
        }
    }

    /// The public entry points at every level this CPU has, the plain body (`f32` and `f64`),
    /// and a pre-packed `B` through [`PackedB::pack`], against the bf16 twin.
    #[test]
    fn bf16_every_level_and_the_plain_body_match_twin() {
        for &(m, n, k) in &[(3, 17, 5), (23, 65, 513), (37, 129, 1101)] {
            for (op_a, op_b) in [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N), (Op::T, Op::T)] {
                let case = Case::new(5, (op_a, op_b), (m, n, k), 1, 0.5).at(Precision::Bf16);
                for level in crate::dispatch::available_levels() {
                    let mut c = case.c0.clone();
                    case.gemm(&mut c).run_at(level);
                    assert_matches_bf16_twin(&case, &c, level.name());
                }
                let mut c = case.c0.clone();
                case.gemm(&mut c).run_plain();
                assert_matches_bf16_twin(&case, &c, "plain");
                let mut c = case.c0.clone();
                let mut packed = PackedB::<f32>::for_rows(k, n, m, Precision::Bf16);
                packed.pack(op_b, &case.b, case.ldb);
                assert_eq!(packed.precision(), Precision::Bf16);
                case.gemm_packed(&packed, &mut c).run();
                assert_matches_bf16_twin(&case, &c, "packed");
                // f64 (gradient checks) rounds through f32 to the same bf16 values.
                let w = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
                let (a64, b64, mut c64) = (w(&case.a), w(&case.b), w(&case.c0));
                let Case { lda, ldb, ldc, beta, .. } = case;
                let (alpha, beta) = (0.7, f64::from(beta));
                let (a, b, c) = (&a64[..], &b64[..], &mut c64[..]);
                Gemm { op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, precision: Precision::Bf16 }.run();
                let mut p64 = PackedB::<f64>::new(k, n, Precision::Bf16);
                p64.pack(op_b, &b64, ldb);
                let mut c64_packed = w(&case.c0);
                let c = &mut c64_packed[..];
                GemmPacked { op_a, m, alpha, a: &a64, lda, b: &p64, beta, c, ldc }.run();
                let (want, tol) = bf16_twin(&case);
                for i in 0..m {
                    for j in 0..n {
                        let (x, y) = (c64[i * ldc + j], c64_packed[i * ldc + j]);
                        assert!((x - want[i * ldc + j]).abs() <= tol[i * ldc + j], "f64 ({i},{j})");
                        assert!((y - want[i * ldc + j]).abs() <= tol[i * ldc + j], "f64 packed ({i},{j})");
                    }
                }
            }
        }
    }

    /// Operands that bf16 rounds up (`1 + 2⁻⁸ + 2⁻¹²` → `1 + 2⁻⁷`), with sums exact in `f32`:
    /// every kernel and the plain body give the rounded product exactly, so no path multiplies
    /// unrounded values (a check the bound above is too loose for).
    #[test]
    fn bf16_rounds_the_operands_exactly() {
        let x = 1.0 + 2f32.powi(-8) + 2f32.powi(-12);
        let r = 1.0 + 2f32.powi(-7);
        assert_eq!(Precision::Bf16.round(x), r);
        for &(m, n, k) in &[(13, 37, 5), (11, 66, 513)] {
            for (op_a, op_b) in [(Op::N, Op::N), (Op::T, Op::T)] {
                let mut case = Case::new(1, (op_a, op_b), (m, n, k), 0, 0.0).at(Precision::Bf16);
                case.a.fill(x);
                case.b.fill(x);
                // k·r² = k + k·2⁻⁶ + k·2⁻¹⁴ and every partial sum fit in 24 bits.
                let want = 0.7 * (k as f32 * r * r);
                for kernel in f32_path::available_kernels(Precision::Bf16) {
                    let mut c = case.c0.clone();
                    f32_path::gemm(kernel, case.gemm(&mut c));
                    assert!(c.iter().all(|&v| v == want), "{kernel:?} m{m} n{n} k{k}: {} vs {want}", c[0]);
                }
                let mut c = case.c0.clone();
                case.gemm(&mut c).run_plain();
                assert!(c.iter().all(|&v| v == want), "plain m{m} n{n} k{k}: {} vs {want}", c[0]);
            }
        }
    }

    /// FNV-1a over the bits of every result of a fixed set of `f32` products (cut tiles,
    /// deep blocks, `NC` blocks, all transposition cases, `beta` 0 and 0.5, `B` strided and
    /// pre-packed) with `kernel`.
    fn f32_fingerprint(kernel: KernelId) -> u64 {
        let shapes =
            [(1, 1, 1), (3, 17, 5), (23, 65, 513), (50, 512, 128), (29, 64, 700), (37, 129, 1100), (17, 4128, 3)];
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for case in cases(&shapes, Precision::F32) {
            let c = case.run_kernel(kernel);
            // Each result twice, as recorded: strided and pre-packed `B` (equal, asserted).
            for x in c.iter().chain(&c) {
                for byte in x.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        hash
    }

    /// `Precision::F32` products are bit-identical to the `f32` path before bf16 existed: the
    /// fingerprints were recorded with the same products at 3ee80aa (the commit before it).
    /// Since the AVX-512 edge-column tiles sum each column in one chain (as every full tile
    /// does, for the sampling paths' sake), the AVX-512 kernels give the AVX2 kernel's bits:
    /// every element of `C` is one fused multiply-add chain over `k` in order, whatever the
    /// tile (before: `0x55ff_3dcd_07c5_747d` for 14×32 and 5×64, `0xefcc_879f_2bb9_ddd5` for
    /// 10×16).
    #[test]
    fn f32_results_are_unchanged_by_precision() {
        let one_chain_per_element = 0x991f_c242_682c_02d5u64;
        let before = [
            (KernelId::Portable, 0x0f11_1574_4a5f_1779u64),
            (KernelId::Avx2, one_chain_per_element),
            (KernelId::Avx512Tall, one_chain_per_element),
            (KernelId::Avx512Wide, one_chain_per_element),
            (KernelId::Avx512Narrow, one_chain_per_element),
        ];
        for kernel in f32_path::available_kernels(Precision::F32) {
            let want = before.iter().find(|(id, _)| *id == kernel).map(|&(_, h)| h);
            assert_eq!(Some(f32_fingerprint(kernel)), want, "{kernel:?}");
        }
    }

    #[test]
    fn kernel_choice_minimises_padding() {
        use crate::dispatch::CpuLevel;
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 50, 512), KernelId::Avx512Tall);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 25, 512), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 2500, 65), KernelId::Avx512Narrow);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 2500, 512), KernelId::Avx512Tall);
        // Ties on wide results go to 5×64; a clear difference in work still decides.
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 5000, 2048), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 50, 2048), KernelId::Avx512Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 5000, 2080), KernelId::Avx512Tall);
        // A last column as a few-column tile costs one vector per row panel: fewer for 10 rows.
        assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::F32, 5000, 2049), KernelId::Avx512Tall);
        assert_eq!(KernelId::choose(CpuLevel::Avx2, Precision::F32, 25, 512), KernelId::Avx2);
        assert_eq!(KernelId::choose(CpuLevel::Portable, Precision::F32, 25, 512), KernelId::Portable);
        // `f32` products at Avx512Bf16 are the Avx512 ones; bf16 products take the pair kernels
        // there, and the level's `f32` kernels below it.
        for (m, n) in [(50, 512), (25, 512), (2500, 65), (5000, 2048), (5000, 2049)] {
            let f32_kernel = KernelId::choose(CpuLevel::Avx512, Precision::F32, m, n);
            assert_eq!(KernelId::choose(CpuLevel::Avx512Bf16, Precision::F32, m, n), f32_kernel);
            assert_eq!(KernelId::choose(CpuLevel::Avx512, Precision::Bf16, m, n), f32_kernel);
            let bf16_kernel = KernelId::choose(CpuLevel::Avx512Bf16, Precision::Bf16, m, n);
            assert!(bf16_kernel.native_bf16() && bf16_kernel.tile() == f32_kernel.tile() || n % 16 == 1, "{m}×{n}");
        }
        assert_eq!(KernelId::choose(CpuLevel::Avx512Bf16, Precision::Bf16, 50, 512), KernelId::Avx512Bf16Tall);
        assert_eq!(KernelId::choose(CpuLevel::Avx512Bf16, Precision::Bf16, 25, 512), KernelId::Avx512Bf16Wide);
        assert_eq!(KernelId::choose(CpuLevel::Avx2, Precision::Bf16, 25, 512), KernelId::Avx2);
    }

    #[test]
    fn packed_operand_through_the_public_api() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (m, n, k) = (7, 40, 9);
        let a = random(&mut rng, m * k);
        let w = random(&mut rng, n * k); // stored n×k, used transposed
        let mut packed = PackedB::<f32>::new(k, n, Precision::F32);
        packed.pack(Op::T, &w, k);
        let mut c = vec![0.0f32; m * n];
        let mut c_ref = vec![0.0f32; m * n];
        GemmPacked { op_a: Op::N, m, alpha: 1.0, a: &a, lda: k, b: &packed, beta: 0.0, c: &mut c, ldc: n }.run();
        Gemm { op_b: Op::T, ldb: k, ..row_major((m, n, k), &a, &w, 0.0, &mut c_ref) }.run();
        assert_eq!(c, c_ref);
        // f64 takes the plain layout and agrees too.
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        let w64: Vec<f64> = w.iter().map(|&x| x as f64).collect();
        let mut p64 = PackedB::<f64>::new(k, n, Precision::F32);
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
