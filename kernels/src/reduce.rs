//! Reductions and small vector operations over flat buffers.

use crate::Float;

/// `Σ x²`, accumulated in `f64` (for the global gradient norm).
pub fn sum_squares<F: Float>(x: &[F]) -> f64 {
    x.iter()
        .map(|&v| {
            let v = v.to_f64();
            v * v
        })
        .sum()
}

/// `x *= s`.
pub fn scale<F: Float>(x: &mut [F], s: F) {
    for v in x {
        *v *= s;
    }
}

/// `out[j] += Σ_r x[r·cols + j]`: column sums of a `[rows, cols]` matrix (bias gradients).
pub fn col_sums_accumulate<F: Float>(rows: usize, cols: usize, x: &[F], out: &mut [F]) {
    assert!(x.len() >= rows * cols && out.len() >= cols);
    for row in x.chunks_exact(cols).take(rows) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Sets every row of a `[rows, cols]` matrix to `bias` (before a GEMM accumulates onto it).
pub fn broadcast_rows<F: Float>(rows: usize, cols: usize, bias: &[F], out: &mut [F]) {
    assert!(out.len() >= rows * cols && bias.len() == cols);
    for row in out.chunks_exact_mut(cols).take(rows) {
        row.copy_from_slice(bias);
    }
}

/// Sets every row of a `[rows, cols]` matrix to `a + b` (two biases summed on the fly).
pub fn broadcast_rows_sum<F: Float>(rows: usize, cols: usize, a: &[F], b: &[F], out: &mut [F]) {
    assert!(out.len() >= rows * cols && a.len() == cols && b.len() == cols);
    for row in out.chunks_exact_mut(cols).take(rows) {
        for ((o, &x), &y) in row.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }
}

/// `out[j] += x[j]`.
pub fn add_assign<F: Float>(out: &mut [F], x: &[F]) {
    assert_eq!(out.len(), x.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col_sums_and_broadcast() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [1.0f32, 1.0, 1.0];
        col_sums_accumulate(2, 3, &x, &mut out);
        assert_eq!(out, [6.0, 8.0, 10.0]);
        let mut m = [0.0f32; 6];
        broadcast_rows(2, 3, &[7.0, 8.0, 9.0], &mut m);
        assert_eq!(m, [7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
        broadcast_rows_sum(2, 3, &[1.0, 2.0, 3.0], &[0.5, 0.5, 1.0], &mut m);
        assert_eq!(m, [1.5, 2.5, 4.0, 1.5, 2.5, 4.0]);
    }

    #[test]
    fn sum_squares_and_scale() {
        let mut x = [3.0f32, -4.0];
        assert_eq!(sum_squares(&x), 25.0);
        scale(&mut x, 0.5);
        assert_eq!(x, [1.5, -2.0]);
        let mut y = [1.0f32, 1.0];
        add_assign(&mut y, &x);
        assert_eq!(y, [2.5, -1.0]);
    }
}
