//! Fixed-size chunking of flat buffers for the threaded elementwise kernels (Adam, squared
//! norm, scaling).
//!
//! Work is cut into chunks of [`CHUNK`] elements whatever the number of threads, so results
//! never depend on it: elementwise kernels trivially, and reductions because [`tree_sum`]
//! combines the per-chunk partial sums in a binary tree whose shape depends only on the length.
//! Buffers shorter than [`PARALLEL_MIN`] are processed on the calling thread.

/// Elements per chunk (128 KiB of `f32`).
pub(crate) const CHUNK: usize = 32 * 1024;

/// Below this many elements the kernels do not spawn rayon tasks.
pub(crate) const PARALLEL_MIN: usize = 2 * CHUNK;

// The docs of `adam_step_f32`, `sum_squares_f32` and `scale_f32` quote these sizes.
const _: () = assert!(CHUNK == 32 * 1024 && PARALLEL_MIN == 64 * 1024);

/// `Σ leaf(chunk)` over the [`CHUNK`]-sized chunks of `x` (the last may be shorter), added in a
/// fixed binary tree over chunk indices: the left half holds the first `⌊chunks/2⌋` chunks.
/// The result is bit-identical for any thread count, and whether `parallel` or not.
pub(crate) fn tree_sum<L>(x: &[f32], parallel: bool, leaf: &L) -> f64
where
    L: Fn(&[f32]) -> f64 + Sync,
{
    let chunks = x.len().div_ceil(CHUNK);
    if chunks <= 1 {
        return leaf(x);
    }
    let (left, right) = x.split_at((chunks / 2) * CHUNK);
    let (a, b) = if parallel {
        rayon::join(|| tree_sum(left, true, leaf), || tree_sum(right, true, leaf))
    } else {
        (tree_sum(left, false, leaf), tree_sum(right, false, leaf))
    };
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sum_visits_every_chunk_once_in_a_fixed_tree() {
        // Leaves return their length, so the sum is the total length and exact.
        for n in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17] {
            let x = vec![0.0f32; n];
            let leaf = |c: &[f32]| {
                assert!(c.len() <= CHUNK);
                c.len() as f64
            };
            assert_eq!(tree_sum(&x, false, &leaf), n as f64);
            assert_eq!(tree_sum(&x, true, &leaf), n as f64);
        }
    }
}
