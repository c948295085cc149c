//! A global allocator for the tests that watch the heap: it forwards to the system allocator
//! and counts allocations, frees, live bytes and their peak. A test binary gets it with
//! `mod counting_alloc;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

pub static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
pub static FREES: AtomicUsize = AtomicUsize::new(0);
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
pub static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Allocations and frees (reallocations count as allocations) by this thread: for tests
    /// whose work runs on one thread, while the test harness's own threads may allocate.
    static THREAD_COUNTS: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Allocations and frees this thread has made so far.
pub fn this_thread_counts() -> (usize, usize) {
    THREAD_COUNTS.with(|c| c.get())
}

/// Counts one allocation (`alloc`) or free on this thread. `try_with`: a thread's last frees
/// can come after its thread-locals are gone.
fn count_on_thread(alloc: bool) {
    let _ = THREAD_COUNTS.try_with(|c| {
        let (a, f) = c.get();
        c.set(if alloc { (a + 1, f) } else { (a, f + 1) });
    });
}

struct Counting;

fn grow(bytes: isize) {
    let now = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call forwards to the system allocator unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        count_on_thread(true);
        grow(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        count_on_thread(false);
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        count_on_thread(true);
        grow(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
