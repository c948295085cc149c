//! The processes of a data-parallel run, as the trainer sees them: how many there are, which
//! one this is, and the few collective operations a step needs. The engine knows no network;
//! the command line implements [`Collective`] over MPI (its `mpi` feature), and [`Solo`] is a
//! run of one process.
//!
//! Every operation is collective: each process of the group calls it, in the same order, with
//! buffers of the same length; it returns once every process has contributed.

use std::ops::Range;

/// The group of processes training one model, each on its own block of the batch's rows.
pub trait Collective {
    /// This process's index in `0..size()`; process 0 writes the run's files.
    fn rank(&self) -> usize;

    /// Processes in the group.
    fn size(&self) -> usize;

    /// Replaces `values` by their element-wise sum over the group. Every process gets the same
    /// bits; the order of the terms may depend on the group's size and layout but not on
    /// timing, so a run repeats bit for bit. (With two processes each element is `a + b`, one
    /// addition: the same bits as two parts of a batch summed in one process.)
    fn sum_f32(&self, values: &mut [f32]);

    /// As [`Collective::sum_f32`], for `f64` (losses).
    fn sum_f64(&self, values: &mut [f64]);

    /// Fills `all` with every process's `mine`, in rank order: process `r` contributes
    /// `counts[r]` values (its own `mine.len()`), and `all.len()` is their sum.
    fn all_gather_f32(&self, mine: &[f32], counts: &[usize], all: &mut [f32]);

    /// Replaces `bytes` on every process by process 0's.
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>);
}

/// A run of one process: every operation leaves its input as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _values: &mut [f32]) {}

    fn sum_f64(&self, _values: &mut [f64]) {}

    fn all_gather_f32(&self, mine: &[f32], _counts: &[usize], all: &mut [f32]) {
        all.copy_from_slice(mine);
    }

    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) {}
}

/// Block `index` of `blocks` contiguous blocks of `batch` rows, in order, their sizes differing
/// by at most one: the rows process `index` of `blocks` owns, and (within them) the rows of
/// each of its parts.
pub fn block_rows(batch: usize, blocks: usize, index: usize) -> Range<usize> {
    batch * index / blocks..batch * (index + 1) / blocks
}

/// Whether any process of `group` says yes (a Ctrl-C seen by some of them, say): one small
/// sum, so that every process takes the same decision at the same step.
pub fn any(group: &dyn Collective, mine: bool) -> bool {
    if group.size() == 1 {
        return mine;
    }
    let mut flag = [f64::from(u8::from(mine))];
    group.sum_f64(&mut flag);
    flag[0] > 0.0
}

/// Process 0's `values`, on every process of `group` (one sum, the others adding zeros): for
/// decisions only one clock may take, such as a time budget's, which every process must follow
/// alike.
pub fn from_first(group: &dyn Collective, values: &mut [f64]) {
    if group.size() == 1 {
        return;
    }
    if group.rank() != 0 {
        values.fill(0.0);
    }
    group.sum_f64(values);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks tile the batch in order, whatever the sizes.
    #[test]
    fn blocks_tile_the_batch() {
        for batch in [1, 2, 7, 50] {
            for size in 1..=batch.min(9) {
                let mut next = 0;
                for rank in 0..size {
                    let rows = block_rows(batch, size, rank);
                    assert_eq!(rows.start, next);
                    assert!(rows.len() == batch / size || rows.len() == batch / size + 1);
                    next = rows.end;
                }
                assert_eq!(next, batch);
            }
        }
    }
}
