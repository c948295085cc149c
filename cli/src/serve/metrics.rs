//! What `/metrics` reports, in Prometheus' text format: counters, gauges and histograms kept
//! in atomics, written by the engine loop and the routes without a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How a finished request ended, as `/metrics` counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered in full (every choice reached its length or a stop string).
    Completed,
    /// The client went away before the end.
    ClientGone,
    /// The client read too slowly and its stream was cut.
    Cut,
    /// The server stopped (SIGTERM, Ctrl-C) before the end.
    Shutdown,
    /// Refused: bad input (400, 401, 404).
    Refused,
    /// Refused: the queue was full (429).
    QueueFull,
}

const OUTCOMES: [(Outcome, &str); 6] = [
    (Outcome::Completed, "completed"),
    (Outcome::ClientGone, "client_gone"),
    (Outcome::Cut, "cut"),
    (Outcome::Shutdown, "shutdown"),
    (Outcome::Refused, "refused"),
    (Outcome::QueueFull, "queue_full"),
];

/// A histogram with fixed bucket bounds.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (the last: above every bound), not cumulative.
    counts: Vec<AtomicU64>,
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum: AtomicU64::new(0) }
    }

    /// Records `n` observations of `value`.
    pub fn observe_n(&self, value: f64, n: u64) {
        let bucket = self.bounds.iter().position(|&b| value <= b).unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(n, Ordering::Relaxed);
        let add = value * n as f64;
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + add).to_bits()));
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        self.observe_n(value, 1);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", f64::from_bits(self.sum.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Seconds, from 100 µs to 10 s.
const SECONDS: &[f64] = &[1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Rows of a step.
const ROWS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Everything `/metrics` reports.
pub struct Metrics {
    requests: [AtomicU64; OUTCOMES.len()],
    /// Streams (rows) generating now.
    pub active: AtomicUsize,
    /// Requests waiting for rows.
    pub queued: AtomicUsize,
    /// Characters (symbols) generated.
    pub characters: AtomicU64,
    /// From a request's arrival to its first character.
    pub first_character: Histogram,
    /// Between two characters of a stream being generated (one turn of the engine loop), per
    /// character; they reach the client in pieces, at the flush ticks.
    pub per_character: Histogram,
    /// One batched step: choosing, handing over and feeding every row's character.
    pub step: Histogram,
    /// Rows in a step.
    pub occupancy: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            active: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            characters: AtomicU64::new(0),
            first_character: Histogram::new(SECONDS),
            per_character: Histogram::new(SECONDS),
            step: Histogram::new(SECONDS),
            occupancy: Histogram::new(ROWS),
        }
    }

    /// Counts a finished request.
    pub fn finished(&self, outcome: Outcome) {
        let i = OUTCOMES.iter().position(|(o, _)| *o == outcome).unwrap_or(0);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP charrnn_requests_total Completion requests by outcome.\n# TYPE charrnn_requests_total counter"
        );
        for ((_, name), count) in OUTCOMES.iter().zip(&self.requests) {
            let _ = writeln!(out, "charrnn_requests_total{{outcome=\"{name}\"}} {}", count.load(Ordering::Relaxed));
        }
        let gauges = [
            (
                "charrnn_active_streams",
                "Streams generating now (rows of the batch).",
                self.active.load(Ordering::Relaxed),
            ),
            ("charrnn_queued_requests", "Requests waiting for rows.", self.queued.load(Ordering::Relaxed)),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let name = "charrnn_characters_generated_total";
        let _ = writeln!(
            out,
            "# HELP {name} Characters generated.\n# TYPE {name} counter\n{name} {}",
            self.characters.load(Ordering::Relaxed)
        );
        let histograms = [
            (
                &self.first_character,
                "charrnn_time_to_first_character_seconds",
                "From a request's arrival to its first character.",
            ),
            (&self.per_character, "charrnn_character_latency_seconds", "Between two generated characters of a stream."),
            (&self.step, "charrnn_step_seconds", "One batched step of every active row."),
            (&self.occupancy, "charrnn_batch_rows", "Active rows in a step."),
        ];
        for (histogram, name, help) in histograms {
            histogram.render(name, help, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::new();
        m.step.observe(0.0002);
        m.step.observe_n(0.003, 2);
        m.step.observe(20.0);
        m.finished(Outcome::Cut);
        let text = m.render();
        for line in [
            "charrnn_step_seconds_bucket{le=\"0.0001\"} 0",
            "charrnn_step_seconds_bucket{le=\"0.00025\"} 1",
            "charrnn_step_seconds_bucket{le=\"0.005\"} 3",
            "charrnn_step_seconds_bucket{le=\"10\"} 3",
            "charrnn_step_seconds_bucket{le=\"+Inf\"} 4",
            "charrnn_step_seconds_count 4",
            "charrnn_requests_total{outcome=\"cut\"} 1",
            "charrnn_active_streams 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let sum: f64 = text.lines().find_map(|l| l.strip_prefix("charrnn_step_seconds_sum ")).unwrap().parse().unwrap();
        assert!((sum - 20.0062).abs() < 1e-9);
    }
}
