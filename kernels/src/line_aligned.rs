//! [`LineAligned`]: a buffer of fixed length that begins on a boundary of [`LINE_PAIR`] bytes
//! and shares none of its cache lines with any other allocation.
//!
//! Two costs the allocator's 16-byte alignment leaves to the luck of the heap layout, which
//! any change to what is allocated before a buffer reshuffles:
//! - A matrix the one-row kernels stream at every step ([`crate::gemv`]) is read in 64-byte
//!   vectors. At an address that is not a multiple of 64, every such load spans two cache
//!   lines; on Zen 4 (which splits a 512-bit load into two 256-bit halves) offsets 16 and 48
//!   split a half as well. A one-stream sampling step reads each weight once from L2, so the
//!   offset each weight happened to get moved the step by several percent, and a split step
//!   whose parts got different offsets waited at every barrier for the unlucky part.
//! - A buffer one thread writes at every step beside an allocation another thread writes (or
//!   reads) shares the cache line between them: the line moves between the cores at each write
//!   (false sharing). The split step's per-thread buffers and the state it publishes are
//!   `LineAligned`, so each core writes only lines no other core touches but to read them.
//!
//! Whole pairs of lines, not single lines: the L2 prefetchers of Zen and of Intel's cores fetch
//! the adjacent line of a pair with each miss, so a neighbour within the pair still bounces.
//! All of it is safe code: the storage is a `Vec` with a pair of lines' worth of elements to
//! spare at each end, and the buffer is the part of it from the first element on a boundary.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// The bytes a [`LineAligned`] buffer is aligned to: two 64-byte cache lines.
pub const LINE_PAIR: usize = 128;

/// `len` elements of `T`, the first at an address that is a multiple of [`LINE_PAIR`], the
/// line pairs they lie in owned by the buffer alone (see the module documentation). Its length
/// is fixed: it derefs to a slice.
pub struct LineAligned<T> {
    /// The elements and the spare ones around them; never grown, so it never moves.
    storage: Vec<T>,
    /// Where the buffer begins in `storage`.
    start: usize,
    len: usize,
}

impl<T: Default> LineAligned<T> {
    /// `len` elements made by `element(i)`.
    ///
    /// # Panics
    /// If the size of `T` is zero or does not divide [`LINE_PAIR`].
    pub fn from_fn(len: usize, mut element: impl FnMut(usize) -> T) -> LineAligned<T> {
        let spare = Self::spare();
        let mut storage: Vec<T> = Vec::with_capacity(len + 2 * spare);
        // An allocation aligned for `T` reaches a boundary within `spare` elements; were it
        // not to (a `T` less aligned than its size), the buffer is still correct, only unaligned.
        let start = match storage.as_ptr().align_offset(LINE_PAIR) {
            offset if offset < spare => offset,
            _ => 0,
        };
        storage.extend((0..start).map(|_| T::default()));
        storage.extend((0..len).map(&mut element));
        // At least `spare` after the end: the last pair the buffer reaches into ends inside.
        storage.extend((0..2 * spare - start).map(|_| T::default()));
        LineAligned { storage, start, len }
    }

    /// `len` elements of `T::default()` (zeros).
    pub fn new(len: usize) -> LineAligned<T> {
        Self::from_fn(len, |_| T::default())
    }

    /// Elements of `T` a buffer of `len` allocates (memory estimates).
    pub fn allocation(len: usize) -> usize {
        len + 2 * Self::spare()
    }

    /// Elements of `T` in a line pair, spared at each end.
    fn spare() -> usize {
        let size = size_of::<T>();
        assert!(size > 0 && LINE_PAIR.is_multiple_of(size), "LineAligned: elements of {size} bytes");
        LINE_PAIR / size
    }
}

impl<T> Deref for LineAligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for LineAligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// A copy is aligned on its own (a derived `clone` of the storage would keep the offset of the
/// original's allocation, not of its own).
impl<T: Clone + Default> Clone for LineAligned<T> {
    fn clone(&self) -> LineAligned<T> {
        LineAligned::from_fn(self.len, |i| self[i].clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for LineAligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Address of element `i` of `buffer`.
    fn address<T>(buffer: &[T], i: usize) -> usize {
        buffer.as_ptr() as usize + i * size_of::<T>()
    }

    /// Every length (none, less than a line, a pair and more) and element size, after
    /// allocations that leave the heap at every 16-byte offset: the buffer holds its elements,
    /// begins on a boundary, and the pairs it reaches into lie inside its own allocation.
    #[test]
    fn begins_on_a_pair_and_owns_its_pairs() {
        let mut keep = Vec::new();
        for skew in 0..8 {
            keep.push(vec![0u8; 16 * skew + 1]);
            for len in [0, 1, 5, 31, 32, 33, 100, 1000] {
                let floats = LineAligned::from_fn(len, |i| i as f32);
                assert_eq!(floats.len(), len);
                assert!(floats.iter().enumerate().all(|(i, &v)| v == i as f32), "{len}: {floats:?}");
                assert_eq!(address(&floats, 0) % LINE_PAIR, 0, "{len} after {skew}");
                let storage = address(&floats.storage, 0)..address(&floats.storage, floats.storage.len());
                let last_pair_end = address(&floats, len).next_multiple_of(LINE_PAIR);
                assert!(storage.start <= address(&floats, 0) && last_pair_end <= storage.end, "{len} after {skew}");
                let words = LineAligned::<u32>::new(len);
                assert!(words.iter().all(|&w| w == 0));
                assert_eq!(address(&words, 0) % LINE_PAIR, 0);
            }
        }
    }

    /// A clone is aligned by itself and equal; writes through the slice land in the buffer.
    #[test]
    fn clones_are_aligned_and_writes_land() {
        let _skew: Vec<u8> = Vec::with_capacity(40);
        let atomics = LineAligned::<AtomicU32>::new(70);
        atomics[69].store(7, Ordering::Relaxed);
        let mut floats = LineAligned::<f32>::new(70);
        floats[3] = 2.5;
        floats[69] = 1.0;
        let copy = floats.clone();
        assert_eq!((&copy[..], address(&copy, 0) % LINE_PAIR), (&floats[..], 0));
        assert_eq!((copy[3], copy[69], atomics[69].load(Ordering::Relaxed)), (2.5, 1.0, 7));
        assert_eq!(LineAligned::<f32>::allocation(10), 10 + 64);
    }
}
