//! One thread's share of the engine loop's rows: a [`Sampler`] over the shared prepared
//! weights and the streams of its rows. Every turn, each block chooses a character for each of
//! its rows, hands it to the row's stream, removes the rows that are done and steps the rest,
//! all blocks at once on the engine's threads, as `sample --num-samples` steps its blocks (a
//! row's values do not depend on the block it is in, nor on the rows beside it).
//!
//! A stream's text is handed over in pieces: its characters gather in the stream and go to
//! the client at the loop's flush ticks (one event per stream and tick, rather than one per
//! character), at once for its first character, and at its end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use charrnn_engine::data::Vocab;
use charrnn_engine::inference::sample::Sampler;
use charrnn_engine::inference::step::InferenceWeights;

use crate::serve::event::{Event, FinishReason};
use crate::serve::metrics::Metrics;
use crate::serve::stop_text::StopText;
use crate::serve::text_channel::Outbox;

/// One row's request.
pub struct Stream {
    pub choice: usize,
    pub outbox: Outbox,
    pub left: usize,
    pub generated: usize,
    pub stop: StopText,
    pub arrived: Instant,
    /// Text released by the stop strings and not handed over yet.
    pub pending: Vec<u8>,
}

/// What every block reads while it hands characters over.
pub struct Handover<'a> {
    pub vocab: &'a Vocab,
    pub metrics: &'a Metrics,
    /// When this turn's characters were chosen.
    pub now: Instant,
    /// A flush tick: every stream hands over what it holds.
    pub flush: bool,
}

/// A sampler and the streams of its rows (row `r` is `streams[r]`).
pub struct RowBlock {
    pub sampler: Sampler,
    pub streams: Vec<Stream>,
    chosen: Vec<u32>,
    /// Room for one symbol's bytes.
    bytes: Vec<u8>,
}

impl RowBlock {
    pub fn new(weights: Arc<InferenceWeights>, space: Option<u32>, capacity: usize) -> RowBlock {
        RowBlock {
            sampler: Sampler::with_capacity(weights, space, capacity),
            streams: Vec::with_capacity(capacity),
            chosen: vec![0; capacity],
            bytes: Vec::with_capacity(8),
        }
    }

    /// Rows free.
    pub fn room(&self) -> usize {
        self.sampler.capacity() - self.sampler.streams()
    }

    /// One character for every row: chosen, handed over, the finished rows removed, the rest
    /// stepped.
    pub fn turn(&mut self, handover: &Handover) {
        let n = self.sampler.streams();
        if n == 0 {
            return;
        }
        self.sampler.choose_all(&mut self.chosen[..n]);
        // From the last row down: a removal moves the last row, already served, into place.
        for r in (0..n).rev() {
            if !handover.deliver(&mut self.streams[r], self.chosen[r], &mut self.bytes) {
                self.remove(r);
            }
        }
        if self.sampler.streams() > 0 {
            self.sampler.feed_chosen();
        }
    }

    /// Removes row `r` and its stream (the last row moves into its place in both).
    pub fn remove(&mut self, r: usize) {
        self.sampler.remove_stream(r);
        self.streams.swap_remove(r);
    }

    /// Removes the streams that are done before their first character (zero characters
    /// asked for), ending them.
    pub fn end_empty_streams(&mut self) {
        for r in (0..self.streams.len()).rev() {
            if self.streams[r].left == 0 {
                finish(&mut self.streams[r], FinishReason::Length);
                self.remove(r);
            }
        }
    }

    /// Ends every stream with `reason` (what it holds handed over first), and removes it.
    pub fn end_all(&mut self, reason: FinishReason) {
        for stream in &mut self.streams {
            stream.stop.finish(&mut stream.pending);
            if flush(stream) {
                finish(stream, reason);
            }
        }
        while !self.streams.is_empty() {
            self.remove(self.streams.len() - 1);
        }
    }
}

impl Handover<'_> {
    /// Hands the stream its next symbol `token` (`bytes`: room for its bytes): false once it
    /// is done (length, stop string) or its client is gone or not keeping up, when its row
    /// should be removed.
    pub fn deliver(&self, stream: &mut Stream, token: u32, bytes: &mut Vec<u8>) -> bool {
        bytes.clear();
        self.vocab.decode_into(token, bytes);
        let stopped = stream.stop.push(bytes, &mut stream.pending);
        stream.generated += 1;
        stream.left -= 1;
        if stream.generated == 1 {
            self.metrics.first_character.observe(self.now.duration_since(stream.arrived).as_secs_f64());
        }
        let done = stopped || stream.left == 0;
        if done && !stopped {
            stream.stop.finish(&mut stream.pending);
        }
        let delivered = match self.flush || done || stream.generated == 1 {
            true => flush(stream),
            false => !stream.outbox.is_closed(),
        };
        if done && delivered {
            finish(stream, if stopped { FinishReason::Stop } else { FinishReason::Length });
        }
        delivered && !done
    }
}

/// Hands over the text the stream holds: false if its client is gone or not keeping up.
fn flush(stream: &mut Stream) -> bool {
    let sent = stream.outbox.send_text(stream.choice, &stream.pending);
    stream.pending.clear();
    sent
}

/// Sends the stream's last event.
fn finish(stream: &mut Stream, reason: FinishReason) {
    stream.outbox.send_end(Event::Finished { choice: stream.choice, reason, generated: stream.generated });
}

/// The active rows of every block: the metrics' `active`.
pub fn active(blocks: &[RowBlock]) -> usize {
    blocks.iter().map(|b| b.sampler.streams()).sum()
}

/// Stores the active rows in the metrics and returns them.
pub fn count_active(blocks: &[RowBlock], metrics: &Metrics) -> usize {
    let n = active(blocks);
    metrics.active.store(n, Ordering::Relaxed);
    n
}
