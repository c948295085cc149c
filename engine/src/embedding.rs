//! Embedding layer: a row gather forward, a scatter-add backward.

use charrnn_kernels::Float;

/// `out[m] = table[ids[m]]` for each of the `ids.len()` rows; `table` is `[V, E]`.
pub fn embedding_forward<F: Float>(table: &[F], embed: usize, ids: &[u32], out: &mut [F]) {
    for (row, &id) in out.chunks_exact_mut(embed).zip(ids) {
        let id = id as usize;
        row.copy_from_slice(&table[id * embed..(id + 1) * embed]);
    }
}

/// `dtable[ids[m]] += d_out[m]` (rows of repeated ids accumulate).
pub fn embedding_backward<F: Float>(dtable: &mut [F], embed: usize, ids: &[u32], d_out: &[F]) {
    for (row, &id) in d_out.chunks_exact(embed).zip(ids) {
        let id = id as usize;
        charrnn_kernels::reduce::add_assign(&mut dtable[id * embed..(id + 1) * embed], row);
    }
}
