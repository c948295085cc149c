//! The engine loop: one thread owns the prepared model and `--max-streams` rows, in one
//! [`RowBlock`] per thread of `--threads`, all stepped at once every turn. Requests arrive
//! over a channel and wait in a queue; each is primed on its own (its prompt through a one-row
//! step) and joins the batch as `n` rows, stream `i` of its seed as `sample --num-samples`
//! draws it, each row in the block with the fewest. Every turn chooses a character for every
//! row, hands it to the row's stream, removes the rows that are done (length, stop string,
//! client gone, a client too slow to read) and steps the rest; freed rows go to the next
//! request in the queue. A lone stream, with no request waiting, has its step split across
//! the threads instead.
//!
//! Streams hand their text over at flush ticks, [`FLUSH_INTERVAL`] apart for up to
//! [`STREAMS_PER_FLUSH`] streams and further apart with more (their first character and their
//! end at once), so the server's tasks wake per piece of text, not per character. A
//! client's channel is bounded by the text it leaves unread: past [`crate::serve::args::STREAM_BUFFER`]
//! the client is not keeping up, and its rows are dropped (its stream is cut) rather than the
//! batch waiting for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charrnn_engine::data::Vocab;
use charrnn_engine::inference::sample::SampleOptions;
use charrnn_engine::inference::step::{InferenceStep, InferenceWeights};
use charrnn_engine::{Model, Precision};
use rayon::prelude::*;

use crate::serve::event::{Event, FinishReason};
use crate::serve::metrics::Metrics;
use crate::serve::row_block::{active, count_active, Handover, RowBlock, Stream};
use crate::serve::stop_text::StopText;
use crate::serve::text_channel::Outbox;

/// Longest a stream's generated text waits before it is handed over, with up to
/// [`STREAMS_PER_FLUSH`] streams.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(2);
/// Streams per [`FLUSH_INTERVAL`] of the flush ticks' spacing: with more, the ticks are spaced
/// further apart (32 ms for 64 streams), so that the server hands over at most about 2,000
/// pieces of text a second (each wakes the stream's task, a socket write and its client: at
/// one a character they took most of the cores from the step). On the 2-core Zen 4, 64
/// streaming clients of the default model made 367k characters/s at 4 streams per tick
/// against 343k at 8 (medians of 5, both servers in one run; `sample --num-samples 64`:
/// 410k).
pub const STREAMS_PER_FLUSH: usize = 4;

/// Rows of a block's step the weights' panels are chosen for: 64 streams on two threads
/// (panels for the 128 rows of a default block padded such steps by a quarter).
const TYPICAL_BLOCK_ROWS: usize = 32;

/// A request for the engine.
pub struct Job {
    pub prompt: Vec<u32>,
    pub options: SampleOptions,
    pub max_tokens: usize,
    /// Choices: rows, streams `0..n` of the seed.
    pub n: usize,
    pub stops: Vec<Vec<u8>>,
    pub events: Outbox,
    pub arrived: Instant,
}

/// What the engine loop is sent.
pub enum Message {
    Job(Job),
    /// End every stream (with a last event) and stop.
    Shutdown,
}

/// The loop's model and rows.
pub struct EngineLoop {
    model: Arc<Model<f32>>,
    vocab: Arc<Vocab>,
    precision: Precision,
    capacity: usize,
    /// Threads the batched step runs on (a block of rows each), and a lone stream's step is
    /// split across.
    threads: usize,
    /// Longest a stream's text waits to be handed over ([`FLUSH_INTERVAL`]).
    flush_interval: Duration,
    metrics: Arc<Metrics>,
    /// Set once the weights are prepared (`/health`).
    pub ready: Arc<AtomicBool>,
}

impl EngineLoop {
    pub fn new(
        model: Arc<Model<f32>>,
        vocab: Arc<Vocab>,
        precision: Precision,
        capacity: usize,
        threads: usize,
        metrics: Arc<Metrics>,
    ) -> EngineLoop {
        let ready = Arc::new(AtomicBool::new(false));
        let threads = threads.max(1);
        EngineLoop { model, vocab, precision, capacity, threads, flush_interval: FLUSH_INTERVAL, metrics, ready }
    }

    /// Hands text over at most every `interval` rather than [`FLUSH_INTERVAL`] (zero: every
    /// character as it comes).
    #[cfg(test)]
    pub fn flush_every(mut self, interval: Duration) -> EngineLoop {
        self.flush_interval = interval;
        self
    }

    /// Runs until a [`Message::Shutdown`] or until every sender is gone, on a pool of the
    /// loop's threads built for it.
    pub fn run(self, messages: Receiver<Message>) {
        match rayon::ThreadPoolBuilder::new().num_threads(self.threads).thread_name(|i| format!("engine-{i}")).build() {
            Ok(pool) => pool.install(|| self.serve(messages)),
            // No threads to be had: the blocks take turns on this one.
            Err(_) => self.serve(messages),
        }
    }

    fn serve(self, messages: Receiver<Message>) {
        let blocks = self.threads.min(self.capacity).max(1);
        let per_block = self.capacity.div_ceil(blocks);
        let hint = per_block.min(TYPICAL_BLOCK_ROWS);
        let weights =
            Arc::new(InferenceWeights::with_rows_hint(Arc::clone(&self.model), per_block, hint, self.precision));
        let space = self.vocab.id_of_char(' ');
        let mut blocks: Vec<RowBlock> =
            (0..blocks).map(|_| RowBlock::new(Arc::clone(&weights), space, per_block)).collect();
        let mut primer = InferenceStep::new(&self.model.config, 1);
        let mut waiting: VecDeque<Job> = VecDeque::new();
        self.ready.store(true, Ordering::Release);
        let mut turn = Instant::now();
        let mut next_flush = turn;
        loop {
            // Idle: wait for a request rather than spin.
            if active(&blocks) == 0 && waiting.is_empty() {
                match messages.recv() {
                    Ok(message) => {
                        if !self.take(message, &mut waiting) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
                turn = Instant::now();
            }
            loop {
                match messages.try_recv() {
                    Ok(message) => {
                        if !self.take(message, &mut waiting) {
                            self.shut_down(&mut blocks, &mut waiting);
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.shut_down(&mut blocks, &mut waiting);
                        return;
                    }
                }
            }
            self.admit(&mut waiting, &mut blocks, &mut primer, &weights);
            let n = count_active(&blocks, &self.metrics);
            if n == 0 {
                continue;
            }
            if n == 1 && waiting.is_empty() {
                let Some(block) = blocks.iter_mut().find(|b| !b.streams.is_empty()) else { continue };
                let go_on = self.run_alone(block, &messages, &mut waiting, &mut turn, &mut next_flush);
                if !go_on {
                    self.shut_down(&mut blocks, &mut waiting);
                    return;
                }
                continue;
            }
            let now = Instant::now();
            self.metrics.characters.fetch_add(n as u64, Ordering::Relaxed);
            self.metrics.per_character.observe_n(now.duration_since(turn).as_secs_f64(), n as u64);
            turn = now;
            let flush = now >= next_flush;
            if flush {
                next_flush = now + self.flush_interval * n.div_ceil(STREAMS_PER_FLUSH) as u32;
            }
            let handover = Handover { vocab: &self.vocab, metrics: &self.metrics, now, flush };
            blocks.par_iter_mut().for_each(|block| block.turn(&handover));
            self.metrics.step.observe(now.elapsed().as_secs_f64());
            self.metrics.occupancy.observe(n as f64);
            count_active(&blocks, &self.metrics);
        }
    }

    /// Moves the waiting requests that have rows free into the blocks, each row in the block
    /// with the fewest.
    fn admit(
        &self,
        waiting: &mut VecDeque<Job>,
        blocks: &mut [RowBlock],
        primer: &mut InferenceStep,
        weights: &InferenceWeights,
    ) {
        while let Some(job) = waiting.front() {
            if job.events.is_closed() {
                // The client left while it waited.
                waiting.pop_front();
                self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            if self.capacity - active(blocks) < job.n {
                break;
            }
            let Some(job) = waiting.pop_front() else { break };
            self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
            primer.prime(weights, &job.prompt);
            for choice in 0..job.n {
                let Some(block) = blocks.iter_mut().max_by_key(|b| b.room()) else { break };
                // The options were checked with the request.
                if block.sampler.add_primed(primer, 0, &job.options, choice as u64).is_ok() {
                    block.streams.push(Stream {
                        choice,
                        outbox: job.events.clone(),
                        left: job.max_tokens,
                        generated: 0,
                        stop: StopText::new(job.stops.clone()),
                        arrived: job.arrived,
                        pending: Vec::with_capacity(64),
                    });
                }
            }
            // Zero characters: finished at once.
            blocks.iter_mut().for_each(RowBlock::end_empty_streams);
        }
    }

    /// One stream and no other request: its steps split across the threads where the model
    /// is large enough, until it ends or a message arrives. Returns false to stop the loop.
    fn run_alone(
        &self,
        block: &mut RowBlock,
        messages: &Receiver<Message>,
        waiting: &mut VecDeque<Job>,
        turn: &mut Instant,
        next_flush: &mut Instant,
    ) -> bool {
        let RowBlock { sampler, streams, .. } = block;
        let (stream, mut keep, mut message) = (&mut streams[0], true, None);
        let mut bytes = Vec::with_capacity(8);
        sampler.generate_while(stream.left, self.threads, |token| {
            let now = Instant::now();
            self.metrics.characters.fetch_add(1, Ordering::Relaxed);
            self.metrics.per_character.observe(now.duration_since(*turn).as_secs_f64());
            *turn = now;
            let flush = now >= *next_flush;
            if flush {
                *next_flush = now + self.flush_interval;
            }
            let handover = Handover { vocab: &self.vocab, metrics: &self.metrics, now, flush };
            keep = handover.deliver(stream, token, &mut bytes);
            if !keep {
                return false;
            }
            match messages.try_recv() {
                Ok(m) => message = Some(Some(m)),
                Err(TryRecvError::Disconnected) => message = Some(None),
                Err(TryRecvError::Empty) => {}
            }
            message.is_none()
        });
        if !keep {
            block.remove(0);
            self.metrics.active.store(0, Ordering::Relaxed);
        }
        match message {
            Some(Some(m)) => self.take(m, waiting),
            Some(None) => false,
            None => true,
        }
    }

    /// Queues a job; false for [`Message::Shutdown`].
    fn take(&self, message: Message, waiting: &mut VecDeque<Job>) -> bool {
        match message {
            Message::Job(job) => {
                waiting.push_back(job);
                true
            }
            Message::Shutdown => false,
        }
    }

    /// Ends every stream and every waiting request with a last event.
    fn shut_down(&self, blocks: &mut [RowBlock], waiting: &mut VecDeque<Job>) {
        blocks.iter_mut().for_each(|b| b.end_all(FinishReason::Shutdown));
        for job in waiting.drain(..) {
            self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
            for choice in 0..job.n {
                job.events.send_end(Event::Finished { choice, reason: FinishReason::Shutdown, generated: 0 });
            }
        }
        self.metrics.active.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use charrnn_engine::inference::sample::{sample_streams, SampleMode};
    use charrnn_engine::{CellKind, ModelConfig};

    use crate::serve::text_channel::{text_channel, Inbox};

    fn setup() -> (Arc<Model<f32>>, Arc<Vocab>) {
        let vocab = Vocab::from_symbols_chars("abcdefgh ".chars().collect()).unwrap();
        let config = ModelConfig {
            cell: CellKind::Lstm,
            vocab_size: vocab.len(),
            embed_size: 4,
            hidden_size: 16,
            num_layers: 2,
        };
        (Arc::new(Model::new(config, 3)), Arc::new(vocab))
    }

    /// An engine loop over `model` with `capacity` rows on 2 threads, handing text over every
    /// `flush`, running on its own thread: its message sender, its thread and its metrics.
    fn start(
        model: &Arc<Model<f32>>,
        vocab: &Arc<Vocab>,
        capacity: usize,
        flush: Duration,
    ) -> (std::sync::mpsc::Sender<Message>, std::thread::JoinHandle<()>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let engine =
            EngineLoop::new(Arc::clone(model), Arc::clone(vocab), Precision::F32, capacity, 2, Arc::clone(&metrics))
                .flush_every(flush);
        let (sender, messages) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || engine.run(messages));
        (sender, thread, metrics)
    }

    fn options(seed: u64) -> SampleOptions {
        SampleOptions { mode: SampleMode::Weighted, temperature: 1.0, top_k: None, seed, precision: Precision::F32 }
    }

    /// A job whose client may leave `unread` characters unread (they are one byte each).
    fn job(n: usize, seed: u64, max_tokens: usize, unread: usize) -> (Job, Inbox) {
        let (events, receiver) = text_channel(unread);
        let job = Job {
            prompt: vec![1, 2],
            options: options(seed),
            max_tokens,
            n,
            stops: Vec::new(),
            events,
            arrived: Instant::now(),
        };
        (job, receiver)
    }

    /// Reads a request's events to its end: each choice's text, and its finish reasons.
    fn collect(mut receiver: Inbox, n: usize) -> (Vec<String>, Vec<FinishReason>) {
        let (mut texts, mut reasons) = (vec![String::new(); n], Vec::new());
        while let Some(event) = receiver.blocking_recv() {
            match event {
                Event::Text { choice, text } => texts[choice].push_str(&text),
                Event::Finished { reason, .. } => reasons.push(reason),
            }
        }
        (texts, reasons)
    }

    /// Requests served together give each choice the text `sample_streams` gives its stream,
    /// whatever else is in the batch; a client that leaves frees its rows; a full queue of
    /// more choices than rows is served as rows free up.
    #[test]
    fn serves_seeded_streams_as_sample_does() {
        let (model, vocab) = setup();
        let (sender, thread, metrics) = start(&model, &vocab, 4, Duration::ZERO);
        let mut receivers = Vec::new();
        // A client that goes away at once, and one that never reads (it may leave 3 characters unread).
        let (gone, gone_receiver) = job(2, 1, 5000, 1000);
        drop(gone_receiver);
        let (slow, slow_receiver) = job(1, 1, 5000, 3);
        for (seed, n) in [(5u64, 3usize), (6, 1), (7, 2), (8, 4)] {
            let (job, receiver) = job(n, seed, 40, 1000);
            metrics.queued.fetch_add(1, Ordering::Relaxed);
            sender.send(Message::Job(job)).unwrap();
            receivers.push((seed, n, receiver));
        }
        for j in [gone, slow] {
            metrics.queued.fetch_add(1, Ordering::Relaxed);
            sender.send(Message::Job(j)).unwrap();
        }
        for (seed, n, receiver) in receivers {
            let (texts, reasons) = collect(receiver, n);
            let want = sample_streams(&model, options(seed), vocab.id_of_char(' '), &[1, 2], n, 40).unwrap();
            for (i, text) in texts.iter().enumerate() {
                let mut bytes = Vec::new();
                want[i * 40..(i + 1) * 40].iter().for_each(|&id| vocab.decode_into(id, &mut bytes));
                assert_eq!(text.as_bytes(), bytes, "seed {seed}, choice {i}");
            }
            assert_eq!(reasons, vec![FinishReason::Length; n]);
        }
        let (texts, reasons) = collect(slow_receiver, 1);
        assert!(reasons.is_empty() && texts[0].chars().count() == 3, "a slow reader is cut: {texts:?}");
        sender.send(Message::Shutdown).unwrap();
        thread.join().unwrap();
        assert_eq!(metrics.active.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.queued.load(Ordering::Relaxed), 0);
    }

    /// A lone stream of a model large enough to split its step gives `sample`'s text, and so
    /// does it when a second request arrives in the middle and the batch takes over.
    #[test]
    fn a_lone_split_stream_hands_over_to_the_batch() {
        let vocab = Arc::new(Vocab::from_symbols_chars((32u8..97).map(char::from).collect()).unwrap());
        let config =
            ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 128, num_layers: 2 };
        let model = Arc::new(Model::new(config, 3));
        let (sender, thread, _) = start(&model, &vocab, 4, Duration::ZERO);
        // The first is long enough to be running still when the second arrives.
        let (long, length) = (100_000, 3000);
        let (first, mut first_events) = job(1, 5, long, long + 2);
        sender.send(Message::Job(first)).unwrap();
        let mut early = String::new();
        while early.chars().count() < 50 {
            match first_events.blocking_recv() {
                Some(Event::Text { text, .. }) => early.push_str(&text),
                other => panic!("{other:?}"),
            }
        }
        let (second, second_events) = job(1, 6, length, length + 2);
        sender.send(Message::Job(second)).unwrap();
        let (rest, _) = collect(first_events, 1);
        let (other, _) = collect(second_events, 1);
        for (seed, text, length) in [(5, early + &rest[0], long), (6, other[0].clone(), length)] {
            let want = sample_streams(&model, options(seed), vocab.id_of_char(' '), &[1, 2], 1, length).unwrap();
            let mut bytes = Vec::new();
            want.iter().for_each(|&id| vocab.decode_into(id, &mut bytes));
            assert_eq!(text.as_bytes(), bytes, "seed {seed}");
        }
        sender.send(Message::Shutdown).unwrap();
        thread.join().unwrap();
    }

    /// A shutdown ends every stream with a last event.
    #[test]
    fn shutdown_ends_every_stream() {
        let (model, vocab) = setup();
        let (sender, thread, metrics) = start(&model, &vocab, 2, Duration::ZERO);
        let (long, mut receiver) = job(2, 1, 1_000_000_000, 1 << 20);
        metrics.queued.fetch_add(1, Ordering::Relaxed);
        sender.send(Message::Job(long)).unwrap();
        assert!(matches!(receiver.blocking_recv(), Some(Event::Text { .. })));
        sender.send(Message::Shutdown).unwrap();
        thread.join().unwrap();
        let mut reasons = Vec::new();
        while let Some(event) = receiver.blocking_recv() {
            if let Event::Finished { reason, .. } = event {
                reasons.push(reason);
            }
        }
        assert_eq!(reasons, [FinishReason::Shutdown; 2]);
    }

    /// Text is handed over in pieces, not a character at a time, the first character at
    /// once, in the batch (rows in both blocks) and for a lone stream, and the text is
    /// `sample`'s.
    #[test]
    fn text_comes_in_pieces_but_the_first_character_at_once() {
        let (model, vocab) = setup();
        let (sender, thread, _) = start(&model, &vocab, 4, Duration::from_millis(20));
        let length = 3000;
        for (seed, n) in [(5u64, 3usize), (6, 1)] {
            let (job, mut receiver) = job(n, seed, length, usize::MAX);
            sender.send(Message::Job(job)).unwrap();
            let (mut texts, mut pieces) = (vec![String::new(); n], vec![0; n]);
            while let Some(event) = receiver.blocking_recv() {
                if let Event::Text { choice, text } = event {
                    if pieces[choice] == 0 {
                        assert_eq!(text.chars().count(), 1, "seed {seed}: the first character alone");
                    }
                    pieces[choice] += 1;
                    texts[choice].push_str(&text);
                }
            }
            let want = sample_streams(&model, options(seed), vocab.id_of_char(' '), &[1, 2], n, length).unwrap();
            for (i, text) in texts.iter().enumerate() {
                let mut bytes = Vec::new();
                want[i * length..(i + 1) * length].iter().for_each(|&id| vocab.decode_into(id, &mut bytes));
                assert_eq!(text.as_bytes(), bytes, "seed {seed}, choice {i}");
                // At most one piece per 20 ms tick besides the first and the last: 3000
                // characters of this model take far less than 10 s.
                assert!(pieces[i] < length / 6, "seed {seed}, choice {i}: {} pieces", pieces[i]);
            }
        }
        sender.send(Message::Shutdown).unwrap();
        thread.join().unwrap();
    }
}
