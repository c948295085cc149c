//! The engine loop: one thread owns the prepared model and a [`Sampler`] of `--max-streams`
//! rows. Requests arrive over a channel and wait in a queue; each is primed on its own (its
//! prompt through a one-row step) and joins the batch as `n` rows, stream `i` of its seed as
//! `sample --num-samples` draws it. Every turn chooses a character for every row, hands it to
//! the row's client, removes the rows that are done (length, stop string, client gone, a
//! client too slow to read) and steps the rest; freed rows go to the next request in the queue.
//!
//! A client's channel is bounded: when it is full the client is not keeping up, and its rows
//! are dropped (its stream is cut) rather than the batch waiting for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use charrnn_engine::data::Vocab;
use charrnn_engine::inference::sample::{SampleOptions, Sampler};
use charrnn_engine::inference::step::{InferenceStep, InferenceWeights};
use charrnn_engine::{Model, Precision};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use crate::serve::metrics::Metrics;
use crate::serve::stop_text::StopText;

/// Why a choice ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_tokens` characters.
    Length,
    /// A stop string.
    Stop,
    /// The server is stopping.
    Shutdown,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Stop => "stop",
            FinishReason::Shutdown => "shutdown",
        }
    }
}

/// What a request's channel carries.
#[derive(Debug)]
pub enum Event {
    /// More text of choice `choice`.
    Text { choice: usize, text: String },
    /// Choice `choice` ended after `generated` characters.
    Finished { choice: usize, reason: FinishReason, generated: usize },
}

/// A request for the engine.
pub struct Job {
    pub prompt: Vec<u32>,
    pub options: SampleOptions,
    pub max_tokens: usize,
    /// Choices: rows, streams `0..n` of the seed.
    pub n: usize,
    pub stops: Vec<Vec<u8>>,
    pub events: Sender<Event>,
    pub arrived: Instant,
}

/// What the engine loop is sent.
pub enum Message {
    Job(Job),
    /// End every stream (with a last event) and stop.
    Shutdown,
}

/// One row's request.
struct Stream {
    choice: usize,
    events: Sender<Event>,
    left: usize,
    generated: usize,
    stop: StopText,
    arrived: Instant,
}

/// Room for one symbol's bytes and the text it releases.
struct Scratch {
    bytes: Vec<u8>,
    text: Vec<u8>,
}

/// The loop's model and rows.
pub struct EngineLoop {
    model: Arc<Model<f32>>,
    vocab: Arc<Vocab>,
    precision: Precision,
    capacity: usize,
    /// Threads a lone stream's step is split across.
    threads: usize,
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
        EngineLoop { model, vocab, precision, capacity, threads, metrics, ready: Arc::new(AtomicBool::new(false)) }
    }

    /// Runs until a [`Message::Shutdown`] or until every sender is gone.
    pub fn run(self, messages: Receiver<Message>) {
        let weights = Arc::new(InferenceWeights::new(Arc::clone(&self.model), self.capacity, self.precision));
        let space = self.vocab.id_of_char(' ');
        let mut sampler = Sampler::with_capacity(Arc::clone(&weights), space, self.capacity);
        let mut primer = InferenceStep::new(&self.model.config, 1);
        let mut streams: Vec<Stream> = Vec::with_capacity(self.capacity);
        let mut chosen = vec![0u32; self.capacity];
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut scratch = Scratch { bytes: Vec::with_capacity(8), text: Vec::with_capacity(64) };
        self.ready.store(true, Ordering::Release);
        let mut turn = Instant::now();
        loop {
            // Idle: wait for a request rather than spin.
            if streams.is_empty() && waiting.is_empty() {
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
                            self.shut_down(&mut streams, &mut waiting);
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.shut_down(&mut streams, &mut waiting);
                        return;
                    }
                }
            }
            while let Some(job) = waiting.front() {
                if job.events.is_closed() {
                    // The client left while it waited.
                    waiting.pop_front();
                    self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                if sampler.capacity() - sampler.streams() < job.n {
                    break;
                }
                let Some(job) = waiting.pop_front() else { break };
                self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                primer.prime(&weights, &job.prompt);
                for choice in 0..job.n {
                    // The options were checked with the request.
                    if sampler.add_primed(&primer, 0, &job.options, choice as u64).is_ok() {
                        streams.push(Stream {
                            choice,
                            events: job.events.clone(),
                            left: job.max_tokens,
                            generated: 0,
                            stop: StopText::new(job.stops.clone()),
                            arrived: job.arrived,
                        });
                    }
                }
                // Zero characters: finished at once.
                for r in (0..streams.len()).rev() {
                    if streams[r].left == 0 {
                        finish(&mut streams[r], FinishReason::Length, &mut scratch.text);
                        remove(&mut sampler, &mut streams, r);
                    }
                }
            }
            let n = sampler.streams();
            self.metrics.active.store(n, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            if n == 1 && waiting.is_empty() {
                // One stream and no other request: its steps split across the threads where
                // the model is large enough, until it ends or a message arrives.
                let (stream, mut keep, mut message) = (&mut streams[0], true, None);
                sampler.generate_while(stream.left, self.threads, |token| {
                    let now = Instant::now();
                    self.metrics.characters.fetch_add(1, Ordering::Relaxed);
                    self.metrics.per_character.observe(now.duration_since(turn).as_secs_f64());
                    turn = now;
                    keep = self.deliver(stream, token, now, &mut scratch);
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
                    remove(&mut sampler, &mut streams, 0);
                    self.metrics.active.store(0, Ordering::Relaxed);
                }
                let go_on = match message {
                    Some(Some(m)) => self.take(m, &mut waiting),
                    Some(None) => false,
                    None => true,
                };
                if !go_on {
                    self.shut_down(&mut streams, &mut waiting);
                    return;
                }
                continue;
            }
            sampler.choose_all(&mut chosen[..n]);
            self.metrics.characters.fetch_add(n as u64, Ordering::Relaxed);
            let now = Instant::now();
            self.metrics.per_character.observe_n(now.duration_since(turn).as_secs_f64(), n as u64);
            turn = now;
            // From the last row down: a removal moves the last row, already served, into place.
            for r in (0..n).rev() {
                if !self.deliver(&mut streams[r], chosen[r], now, &mut scratch) {
                    remove(&mut sampler, &mut streams, r);
                }
            }
            let rows = sampler.streams();
            self.metrics.active.store(rows, Ordering::Relaxed);
            if rows > 0 {
                let started = Instant::now();
                sampler.feed_chosen();
                self.metrics.step.observe(started.elapsed().as_secs_f64());
                self.metrics.occupancy.observe(rows as f64);
            }
        }
    }

    /// Hands the stream its next symbol `token`: false once it is done (length, stop string)
    /// or its client is gone or not keeping up, when its row should be removed.
    fn deliver(&self, stream: &mut Stream, token: u32, now: Instant, scratch: &mut Scratch) -> bool {
        let Scratch { bytes, text } = scratch;
        bytes.clear();
        self.vocab.decode_into(token, bytes);
        text.clear();
        let stopped = stream.stop.push(bytes, text);
        stream.generated += 1;
        stream.left -= 1;
        if stream.generated == 1 {
            self.metrics.first_character.observe(now.duration_since(stream.arrived).as_secs_f64());
        }
        let done = stopped || stream.left == 0;
        if done && !stopped {
            stream.stop.finish(text);
        }
        let delivered = send_text(stream, text);
        if done && delivered {
            finish(stream, if stopped { FinishReason::Stop } else { FinishReason::Length }, text);
        }
        delivered && !done
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
    fn shut_down(&self, streams: &mut Vec<Stream>, waiting: &mut VecDeque<Job>) {
        let mut text = Vec::new();
        for stream in streams.iter_mut() {
            stream.stop.finish(&mut text);
            if send_text(stream, &text) {
                finish(stream, FinishReason::Shutdown, &mut text);
            }
            text.clear();
        }
        streams.clear();
        for job in waiting.drain(..) {
            self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
            for choice in 0..job.n {
                let _ = job.events.try_send(Event::Finished { choice, reason: FinishReason::Shutdown, generated: 0 });
            }
        }
        self.metrics.active.store(0, Ordering::Relaxed);
    }
}

/// Sends `text` (if any) to the stream's client; false if the client is gone or not keeping
/// up (its rows are then dropped).
fn send_text(stream: &Stream, text: &[u8]) -> bool {
    if text.is_empty() {
        return true;
    }
    let event = Event::Text { choice: stream.choice, text: String::from_utf8_lossy(text).into_owned() };
    match stream.events.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Closed(_)) => false,
    }
}

/// Sends the stream's last event.
fn finish(stream: &mut Stream, reason: FinishReason, text: &mut Vec<u8>) {
    text.clear();
    let _ = stream.events.try_send(Event::Finished { choice: stream.choice, reason, generated: stream.generated });
}

/// Removes row `r` and its stream (the last row moves into its place in both).
fn remove(sampler: &mut Sampler, streams: &mut Vec<Stream>, r: usize) {
    sampler.remove_stream(r);
    streams.swap_remove(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use charrnn_engine::inference::sample::{sample_streams, SampleMode};
    use charrnn_engine::{CellKind, ModelConfig};

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

    fn options(seed: u64) -> SampleOptions {
        SampleOptions { mode: SampleMode::Weighted, temperature: 1.0, top_k: None, seed, precision: Precision::F32 }
    }

    fn job(n: usize, seed: u64, max_tokens: usize, capacity: usize) -> (Job, tokio::sync::mpsc::Receiver<Event>) {
        let (events, receiver) = tokio::sync::mpsc::channel(capacity);
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
    fn collect(mut receiver: tokio::sync::mpsc::Receiver<Event>, n: usize) -> (Vec<String>, Vec<FinishReason>) {
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
        let metrics = Arc::new(Metrics::new());
        let engine =
            EngineLoop::new(Arc::clone(&model), Arc::clone(&vocab), Precision::F32, 4, 2, Arc::clone(&metrics));
        let (sender, messages) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || engine.run(messages));
        let mut receivers = Vec::new();
        // A client that goes away at once, and one that never reads (its 3-event buffer fills).
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
        let metrics = Arc::new(Metrics::new());
        let engine =
            EngineLoop::new(Arc::clone(&model), Arc::clone(&vocab), Precision::F32, 4, 2, Arc::clone(&metrics));
        let (sender, messages) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || engine.run(messages));
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
        let metrics = Arc::new(Metrics::new());
        let engine = EngineLoop::new(model, vocab, Precision::F32, 2, 2, Arc::clone(&metrics));
        let (sender, messages) = std::sync::mpsc::channel();
        let (long, mut receiver) = job(2, 1, 1_000_000_000, 1 << 20);
        metrics.queued.fetch_add(1, Ordering::Relaxed);
        sender.send(Message::Job(long)).unwrap();
        let thread = std::thread::spawn(move || engine.run(messages));
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
}
