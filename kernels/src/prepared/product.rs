//! [`PreparedProduct`]: a product by a [`PreparedMatrix`], its kernel chosen from the rows.

use super::matrix::{Form, PreparedMatrix};
use crate::dispatch::CpuLevel;
use crate::gemm::{check_matrix, GemmPacked, Op};
use crate::kernel::{as_f32, as_f32_mut, FastKernel, Kernel};
use crate::Float;

crate::kernel_args! {
    /// `Y[m×n] = X·W`, or with `accumulate` `Y += X·W`, for the `m` rows of `X` (`m×k`,
    /// leading dimension `ldx`) and of `Y` (leading dimension `ldy`), at the precision of `w`
    /// (`X` rounded likewise). One row where `w` has the matrix-vector form runs the
    /// matrix-vector kernel; any other product the GEMM over `w`'s panels. Each element is the
    /// GEMM's: summed over the same depth blocks in the same order, then written (`-0 + s` is
    /// `s` for every `s`, so the matrix-vector kernel adds the sum onto `-0`) or added.
    ///
    /// # Panics
    /// If `w` was never prepared, was prepared for one row and `m` is more, or a slice is too
    /// short for its shape.
    pub struct PreparedProduct<'a, F> {
        pub m: plain<usize>,
        pub x: slice,
        pub ldx: plain<usize>,
        pub w: cast<&'a PreparedMatrix<F>>,
        pub accumulate: plain<bool>,
        pub y: slice_mut,
        pub ldy: plain<usize>,
    }
}

impl<'a, F: Float> PreparedProduct<'a, F> {
    /// The same product as a GEMM over `panels`.
    fn gemm(self, panels: &'a crate::gemm::PackedB<F>) -> GemmPacked<'a, F> {
        let PreparedProduct { m, x, ldx, accumulate, y, ldy, .. } = self;
        let beta = if accumulate { F::one() } else { F::zero() };
        GemmPacked { op_a: Op::N, m, alpha: F::one(), a: x, lda: ldx, b: panels, beta, c: y, ldc: ldy }
    }

    /// The first row of `Y`, made ready for a matrix-vector kernel to add the sum to: kept when
    /// accumulating, else `-0` (the identity of addition), or `0` for an empty sum (as the
    /// GEMM writes it).
    fn vector_row(y: &mut [F], n: usize, k: usize, accumulate: bool) -> &mut [F] {
        let row = &mut y[..n];
        if !accumulate {
            row.fill(if k == 0 { F::zero() } else { -F::zero() });
        }
        row
    }
}

impl<F: Float> Kernel for PreparedProduct<'_, F> {
    type Output = ();

    fn check(&self) {
        let PreparedProduct { m, ldx, w, ldy, .. } = *self;
        if m == 0 || w.n() == 0 {
            return;
        }
        assert!(w.ready, "PreparedProduct: W was never prepared");
        assert!(m == 1 || !w.matrix_vector(), "PreparedProduct: W was prepared for one row, the product has {m}");
        check_matrix("X", self.x.len(), m, w.k(), ldx);
        check_matrix("Y", self.y.len(), m, w.n(), ldy);
    }

    /// The GEMM's plain body over panels packed plainly (every type but `f32`), or the
    /// matrix-vector kernel's plain body.
    unsafe fn plain(self) {
        let (m, k, n) = (self.m, self.w.k(), self.w.n());
        if m == 0 || n == 0 {
            return;
        }
        match &self.w.form {
            // SAFETY: `check` passed: X and Y hold `m×k` and `m×n` at their leading dimensions,
            // which is `GemmPacked::check` for this product; W is prepared (packed).
            Form::Panels(panels) => unsafe { self.gemm(panels).plain() },
            Form::Vector(vector) => {
                // `check` passed with one row: `x` holds `k`, `y` holds `n`. The form exists
                // for `f32` elements only.
                let y = Self::vector_row(self.y, n, k, self.accumulate);
                // SAFETY: `x.len() >= k` and `y.len() >= n` (above).
                unsafe { vector.multiply_add_plain(as_f32(self.x), as_f32_mut(y)) };
            }
        }
    }
}

impl FastKernel for PreparedProduct<'_, f32> {
    unsafe fn fast(self, level: CpuLevel) {
        let (m, k, n) = (self.m, self.w.k(), self.w.n());
        if m == 0 || n == 0 {
            return;
        }
        match &self.w.form {
            // SAFETY: as in `plain`: `check` covers `GemmPacked::check`. The panels are for the
            // level `w` was prepared at, whatever `level` (as `GemmPacked`'s).
            Form::Panels(panels) => unsafe { self.gemm(panels).fast(level) },
            Form::Vector(vector) => {
                let y = Self::vector_row(self.y, n, k, self.accumulate);
                // SAFETY: `check` passed with one row: `x.len() >= k`, `y.len() >= n`; `level`
                // is supported by `FastKernel::fast`'s contract.
                unsafe { vector.multiply_add(level, self.x, y) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::available_levels;
    use crate::reference;
    use crate::Precision;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// A product `Y (+)= X·op(W)`: `X` `m×k` with two columns of padding, `W` stored for `op`,
    /// `Y` `m×n` with one, from the generator seeded with `seed`.
    struct Case {
        m: usize,
        k: usize,
        n: usize,
        op: Op,
        x: Vec<f32>,
        w: Vec<f32>,
        ldw: usize,
        y0: Vec<f32>,
    }

    impl Case {
        fn new(seed: u64, (m, k, n): (usize, usize, usize), op: Op) -> Case {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let ldw = if op == Op::N { n + 3 } else { k + 3 };
            let stored_rows = if op == Op::N { k } else { n };
            let (x, w, y0) =
                (random(&mut rng, m * (k + 2)), random(&mut rng, stored_rows * ldw), random(&mut rng, m * (n + 1)));
            Case { m, k, n, op, x, w, ldw, y0 }
        }

        /// `W` prepared at `level` for products of `rows` rows.
        fn prepared(&self, level: CpuLevel, precision: Precision, rows: usize) -> PreparedMatrix<f32> {
            let mut w = PreparedMatrix::new_at(level, self.k, self.n, precision, rows);
            w.prepare(self.op, &self.w, self.ldw);
            w
        }

        /// `Y` after `rows` rows of the product from row `first`, run at `level` (`None`: by
        /// `run`).
        fn run(
            &self,
            w: &PreparedMatrix<f32>,
            first: usize,
            rows: usize,
            accumulate: bool,
            level: Option<CpuLevel>,
        ) -> Vec<f32> {
            let (ldx, ldy) = (self.k + 2, self.n + 1);
            let mut y = self.y0.clone();
            let product = PreparedProduct {
                m: rows,
                x: &self.x[first * ldx..],
                ldx,
                w,
                accumulate,
                y: &mut y[first * ldy..],
                ldy,
            };
            match level {
                Some(level) => product.run_at(level),
                None => product.run(),
            }
            y
        }

        /// Element `(i, j)` of the reference twin (`f64` sums of the operands rounded to
        /// `precision`) and its bound: `(k + 4)·2⁻²⁴·(Σ|x||w| + |y|)`, the rounding of an `f32`
        /// sum in any order (products of bf16 values are exact in `f32`), plus for `f32` the
        /// rounding of each product.
        fn twin(&self, precision: Precision, accumulate: bool) -> (Vec<f64>, Vec<f64>) {
            let Case { m, k, n, op, ldw, .. } = *self;
            let r = |v: f32| f64::from(precision.round(v));
            let x64: Vec<f64> = self.x.iter().map(|&v| r(v)).collect();
            let w64: Vec<f64> = self.w.iter().map(|&v| r(v)).collect();
            let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<f64>>();
            let beta = if accumulate { 1.0 } else { 0.0 };
            let (ldx, ldy) = (k + 2, n + 1);
            let mut want: Vec<f64> = self.y0.iter().map(|&v| f64::from(v)).collect();
            reference::gemm(Op::N, op, m, n, k, 1.0, &x64, ldx, &w64, ldw, beta, &mut want, ldy);
            let mut bound: Vec<f64> = self.y0.iter().map(|&v| f64::from(v).abs()).collect();
            reference::gemm(Op::N, op, m, n, k, 1.0, &abs(&x64), ldx, &abs(&w64), ldw, beta, &mut bound, ldy);
            let tol = bound.iter().map(|b| (k as f64 + 4.0) * 2f64.powi(-24) * b * 2.0).collect();
            (want, tol)
        }
    }

    /// Odd sizes: tails of every length, more than one depth block (k > 512), one column,
    /// results cut in every tile.
    const SHAPES: [(usize, usize, usize); 6] =
        [(3, 1, 1), (5, 7, 17), (11, 33, 65), (2, 129, 200), (9, 513, 31), (4, 700, 3)];

    /// At every level this CPU has, in both precisions, for `W` stored and transposed, written
    /// and accumulated: one row (a matrix-vector kernel where the precision is native there)
    /// and many rows (the GEMM) against the reference twin, with the padding of `Y` and the
    /// rows outside the product left alone.
    #[test]
    fn both_branches_match_the_reference_twin_at_every_level() {
        for level in available_levels() {
            for precision in [Precision::F32, Precision::Bf16] {
                for (seed, &(m, k, n)) in SHAPES.iter().enumerate() {
                    for op in [Op::N, Op::T] {
                        let case = Case::new(seed as u64, (m, k, n), op);
                        let (one, many) = (case.prepared(level, precision, 1), case.prepared(level, precision, m));
                        let vector = precision.is_native_at(level);
                        assert_eq!((one.matrix_vector(), many.matrix_vector()), (vector, false));
                        for accumulate in [false, true] {
                            let (want, tol) = case.twin(precision, accumulate);
                            let what =
                                format!("{} {precision} {m}×{k}×{n} {op:?} accumulate {accumulate}", level.name());
                            let first = m / 2;
                            let rows = [(case.run(&one, first, 1, accumulate, Some(level)), first..first + 1)];
                            let all = [(case.run(&many, 0, m, accumulate, Some(level)), 0..m)];
                            for (y, rows) in rows.iter().chain(&all) {
                                for (idx, &v) in y.iter().enumerate() {
                                    let (i, j) = (idx / (n + 1), idx % (n + 1));
                                    if j < n && rows.contains(&i) {
                                        let (w, t) = (want[idx], tol[idx]);
                                        assert!(
                                            (f64::from(v) - w).abs() <= t,
                                            "{what}: ({i},{j}) {v} vs {w} (bound {t})"
                                        );
                                    } else {
                                        assert_eq!(v, case.y0[idx], "{what}: ({i},{j}) outside the product written");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A row's values do not depend on the rows beside it: row `i` of an `m`-row product (the
    /// GEMM) equals the same row multiplied alone (the matrix-vector kernel, where the
    /// precision is native), bit for bit, at every level, written and accumulated.
    #[test]
    fn one_row_gives_the_bits_of_a_row_of_many() {
        for level in available_levels() {
            for precision in [Precision::F32, Precision::Bf16] {
                for (seed, &(m, k, n)) in SHAPES.iter().enumerate() {
                    let case = Case::new(100 + seed as u64, (m, k, n), Op::N);
                    let (one, many) = (case.prepared(level, precision, 1), case.prepared(level, precision, m));
                    for accumulate in [false, true] {
                        let all = case.run(&many, 0, m, accumulate, Some(level));
                        for i in 0..m {
                            let alone = case.run(&one, i, 1, accumulate, Some(level));
                            let row = i * (n + 1)..i * (n + 1) + n;
                            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                            let what =
                                format!("{} {precision} {m}×{k}×{n} row {i} accumulate {accumulate}", level.name());
                            assert_eq!(bits(&alone[row.clone()]), bits(&all[row]), "{what}");
                        }
                    }
                }
            }
        }
    }

    /// The public entry point (this process's level), and `f64` operands through the plain
    /// GEMM body, against the reference.
    #[test]
    fn run_and_the_plain_body_match_the_reference() {
        for (seed, &(m, k, n)) in SHAPES.iter().enumerate() {
            let case = Case::new(200 + seed as u64, (m, k, n), Op::T);
            for rows in [1, m] {
                let mut w = PreparedMatrix::new(k, n, Precision::F32, rows);
                w.prepare(Op::T, &case.w, case.ldw);
                let (want, tol) = case.twin(Precision::F32, true);
                let y = case.run(&w, 0, rows, true, None);
                let w64: Vec<f64> = case.w.iter().map(|&v| f64::from(v)).collect();
                let x64: Vec<f64> = case.x.iter().map(|&v| f64::from(v)).collect();
                let mut y64: Vec<f64> = case.y0.iter().map(|&v| f64::from(v)).collect();
                let mut p64 = PreparedMatrix::<f64>::new(k, n, Precision::F32, rows);
                p64.prepare(Op::T, &w64, case.ldw);
                assert!(!p64.matrix_vector(), "only f32 has a matrix-vector form");
                let (ldx, ldy) = (k + 2, n + 1);
                PreparedProduct { m: rows, x: &x64, ldx, w: &p64, accumulate: true, y: &mut y64, ldy }.run_plain();
                for i in 0..rows {
                    for j in 0..n {
                        let idx = i * ldy + j;
                        assert!((f64::from(y[idx]) - want[idx]).abs() <= tol[idx], "{rows} rows ({i},{j})");
                        assert!((y64[idx] - want[idx]).abs() <= tol[idx], "f64, {rows} rows ({i},{j})");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "prepared for one row")]
    fn a_matrix_prepared_for_one_row_refuses_more() {
        let mut w = PreparedMatrix::<f32>::new(3, 4, Precision::F32, 1);
        w.prepare(Op::N, &[0.5; 12], 4);
        let mut y = [0.0f32; 8];
        PreparedProduct { m: 2, x: &[1.0; 6], ldx: 3, w: &w, accumulate: false, y: &mut y, ldy: 4 }.run();
    }

    #[test]
    #[should_panic(expected = "never prepared")]
    fn an_unprepared_matrix_is_refused() {
        let w = PreparedMatrix::<f32>::new(3, 4, Precision::F32, 5);
        let mut y = [0.0f32; 8];
        PreparedProduct { m: 2, x: &[1.0; 6], ldx: 3, w: &w, accumulate: false, y: &mut y, ldy: 4 }.run();
    }

    #[test]
    fn an_empty_sum_writes_zeros() {
        for rows in [1, 3] {
            let mut w = PreparedMatrix::<f32>::new(0, 4, Precision::F32, rows);
            w.prepare(Op::N, &[], 4);
            let mut y = vec![2.0f32; 4 * rows];
            PreparedProduct { m: rows, x: &[], ldx: 0, w: &w, accumulate: true, y: &mut y, ldy: 4 }.run();
            assert!(y.iter().all(|&v| v == 2.0), "{rows} rows: {y:?}");
            PreparedProduct { m: rows, x: &[], ldx: 0, w: &w, accumulate: false, y: &mut y, ldy: 4 }.run();
            assert!(y.iter().all(|&v| v.to_bits() == 0), "{rows} rows: {y:?}");
        }
    }
}
