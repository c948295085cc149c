//! What the threads of a split step share: the state each layer publishes, the logits, the
//! symbol to feed, and the meeting points (a spinning barrier of per-thread counters).
//!
//! During a run, a thread reads nothing of another's but these, and each thread writes its own
//! cache lines of them: the counters and the buffers are on lines of their own
//! ([`LineAligned`], `#[repr(align(128))]`), and the parts' ranges of a published buffer begin
//! on a line (where the split is aligned, as it is for every model that is split).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use charrnn_kernels::line_aligned::{LineAligned, LINE_PAIR};

use crate::model::workspace::State;

/// Spins at a meeting point before a wait yields the core (about 20–50 µs).
const SPINS_BEFORE_YIELD: u32 = 1 << 12;
/// Yields before a wait sleeps (the thread waited for is writing output that blocks, say).
const YIELDS_BEFORE_SLEEP: u32 = 1 << 10;
/// How long each sleep of a long wait is.
const SLEEP: std::time::Duration = std::time::Duration::from_micros(200);

/// A counter on its own pair of cache lines: one per thread, written by it alone.
#[repr(align(128))]
struct Progress(AtomicUsize);

/// What the threads share. Aligned, so that none of the calling thread's other locals is on
/// its lines: during a run only `token` changes on them.
#[repr(align(128))]
pub(super) struct Shared {
    /// Per layer, the published hidden state (as bits), in two buffers used in turn: step `t`
    /// reads buffer `t % 2` and writes `(t + 1) % 2`. `[layers][2][stride]`, each buffer `H`
    /// long and beginning on a line pair.
    h: LineAligned<AtomicU32>,
    hidden: usize,
    stride: usize,
    /// The logits of the last step (as bits).
    pub(super) logits: LineAligned<AtomicU32>,
    /// The symbol the next step reads.
    pub(super) token: AtomicU32,
    /// Per thread, how many meeting points it has passed.
    progress: Vec<Progress>,
    /// Set (before a meeting point) to end the helpers.
    pub(super) stop: AtomicBool,
}

const _: () = assert!(align_of::<Progress>() == LINE_PAIR && align_of::<Shared>() == LINE_PAIR);

impl Shared {
    /// For `parts` threads stepping from `state` (its `h` published as buffer 0), with
    /// `vocab` logits.
    pub(super) fn new(state: &State<f32>, hidden: usize, vocab: usize, parts: usize) -> Shared {
        let layers = state.slabs.len();
        let stride = hidden.next_multiple_of(LINE_PAIR / size_of::<AtomicU32>());
        let h = LineAligned::from_fn(layers * 2 * stride, |i| {
            let (buffer, unit) = (i / stride, i % stride);
            let first = buffer.is_multiple_of(2) && unit < hidden;
            AtomicU32::new(if first { state.h(buffer / 2)[unit].to_bits() } else { 0 })
        });
        Shared {
            h,
            hidden,
            stride,
            logits: LineAligned::new(vocab),
            token: AtomicU32::new(0),
            progress: (0..parts).map(|_| Progress(AtomicUsize::new(0))).collect(),
            stop: AtomicBool::new(false),
        }
    }

    /// Buffer `buffer` (0 or 1) of layer `layer`'s published state.
    pub(super) fn h(&self, layer: usize, buffer: usize) -> &[AtomicU32] {
        let at = (2 * layer + buffer) * self.stride;
        &self.h[at..at + self.hidden]
    }

    /// Marks meeting point `point` as reached by thread `part`, and waits for every thread.
    pub(super) fn meet(&self, part: usize, point: usize) {
        self.progress[part].0.store(point, Ordering::Release);
        for other in &self.progress {
            let mut waits = 0u32;
            while other.0.load(Ordering::Acquire) < point {
                // Spin (the others are a fraction of a microsecond away), but give the core up
                // after a while: a busy machine may have descheduled the thread waited for;
                // and sleep once the wait is long (the calling thread's output is blocked).
                waits = waits.saturating_add(1);
                if waits < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else if waits < SPINS_BEFORE_YIELD + YIELDS_BEFORE_SLEEP {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(SLEEP);
                }
            }
        }
    }

    /// Passes every meeting point for thread `part` and ends the run (see [`StopOnDrop`]).
    fn leave(&self, part: usize) {
        self.stop.store(true, Ordering::Release);
        self.progress[part].0.store(usize::MAX, Ordering::Release);
    }
}

/// Writes `from` into the published elements `to`.
pub(super) fn publish(to: &[AtomicU32], from: &[f32]) {
    for (t, &v) in to.iter().zip(from) {
        t.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// Copies the published elements `from` into `to`.
pub(super) fn read(from: &[AtomicU32], to: &mut [f32]) {
    for (t, f) in to.iter_mut().zip(from) {
        *t = f32::from_bits(f.load(Ordering::Relaxed));
    }
}

/// Ends the run when its thread leaves it, however (done, an error, a panic): sets `stop` and
/// passes every meeting point for part `part`, so that no thread waits for it again; the
/// helpers go on to the next step's start, see `stop` and return, and the calling thread
/// stops at its next meeting point.
pub(super) struct StopOnDrop<'s> {
    pub(super) shared: &'s Shared,
    pub(super) part: usize,
    /// The meeting points this thread has passed.
    pub(super) point: usize,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.leave(self.part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{CellKind, ModelConfig};

    /// Every layer's two buffers begin on a line pair, apart from each other: buffer 0 holds
    /// the state's `h`, buffer 1 zeros; a published range reads back.
    #[test]
    fn each_buffer_is_on_lines_of_its_own() {
        for (hidden, layers) in [(37, 3), (64, 1), (130, 2)] {
            let config = ModelConfig {
                cell: CellKind::Lstm,
                vocab_size: 5,
                embed_size: 3,
                hidden_size: hidden,
                num_layers: layers,
            };
            let mut state = State::zeros(&config, 1);
            for (l, layer) in state.slabs.iter_mut().enumerate() {
                layer[0].iter_mut().enumerate().for_each(|(u, v)| *v = (100 * l + u) as f32 + 0.5);
            }
            let shared = Shared::new(&state, hidden, 5, 2);
            let mut ends = Vec::new();
            for l in 0..layers {
                for buffer in 0..2 {
                    let published = shared.h(l, buffer);
                    let at = published.as_ptr() as usize;
                    assert_eq!(
                        (published.len(), at % LINE_PAIR),
                        (hidden, 0),
                        "H {hidden}, layer {l}, buffer {buffer}"
                    );
                    ends.push(at..at + hidden * size_of::<AtomicU32>());
                    let mut got = vec![1.0; hidden];
                    read(published, &mut got);
                    let want: Vec<f32> = if buffer == 0 { state.h(l).to_vec() } else { vec![0.0; hidden] };
                    assert_eq!(got, want, "H {hidden}, layer {l}, buffer {buffer}");
                }
            }
            assert!(ends.windows(2).all(|w| w[0].end <= w[1].start), "{ends:?}");
            publish(&shared.h(layers - 1, 1)[3..5], &[7.0, 8.0]);
            let mut got = vec![0.0; hidden];
            read(shared.h(layers - 1, 1), &mut got);
            assert_eq!(&got[2..6], [0.0, 7.0, 8.0, 0.0]);
        }
    }
}
