//! Where a step's time goes: a tally per phase (`bench`'s breakdown) and, when asked for, every
//! timed span (`bench --trace`), kept in room reserved beforehand so that a step still
//! allocates nothing. Reading the clock costs nanoseconds.

use std::time::{Duration, Instant};

/// A phase of a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Input projections (layer 0's table and gather, the GEMMs of the layers above).
    InputProjection,
    /// Forward recurrences (per-step products and cells).
    ForwardRecurrence,
    /// Output layer, softmax-cross-entropy and the output layer's backward pass.
    OutputAndLoss,
    /// Backward recurrences.
    BackwardRecurrence,
    /// Weight and bias gradients and the gradients sent to the layer below.
    WeightGradients,
    /// The sum of the gradients over the processes of a data-parallel run (an MPI
    /// allreduce; nothing in one process).
    GradientExchange,
    /// Gradient reduction across batch parts, clipping and Adam.
    Optimiser,
}

impl Phase {
    /// Every phase, in step order.
    pub const ALL: [Phase; 7] = [
        Phase::InputProjection,
        Phase::ForwardRecurrence,
        Phase::OutputAndLoss,
        Phase::BackwardRecurrence,
        Phase::WeightGradients,
        Phase::GradientExchange,
        Phase::Optimiser,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::InputProjection => "input projection",
            Phase::ForwardRecurrence => "forward recurrence",
            Phase::OutputAndLoss => "output + loss",
            Phase::BackwardRecurrence => "backward recurrence",
            Phase::WeightGradients => "weight gradients",
            Phase::GradientExchange => "gradient exchange",
            Phase::Optimiser => "optimiser",
        }
    }

    /// Whether the phase runs once per step on the calling thread, rather than in every batch
    /// part at once.
    pub fn once_per_step(self) -> bool {
        matches!(self, Phase::GradientExchange | Phase::Optimiser)
    }
}

/// One timed stretch of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub phase: Phase,
    pub start: Instant,
    pub end: Instant,
}

/// Time spent in each phase, accumulated until reset, and the spans recorded since the last
/// [`PhaseTimes::drain_spans`] (none unless [`PhaseTimes::record_spans`] made room).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseTimes {
    totals: [Duration; Phase::ALL.len()],
    spans: Vec<Span>,
}

impl PhaseTimes {
    /// The time tallied for `phase`.
    pub fn total(&self, phase: Phase) -> Duration {
        self.totals[phase as usize]
    }

    /// Every phase with its tally, in step order.
    pub fn each(&self) -> [(Phase, Duration); Phase::ALL.len()] {
        Phase::ALL.map(|phase| (phase, self.total(phase)))
    }

    /// Ends a stretch of `phase` now: adds the time since `*mark` to its tally, records the span
    /// if there is room left, and moves the mark to now.
    pub fn lap(&mut self, phase: Phase, mark: &mut Instant) {
        let now = Instant::now();
        self.add_time(phase, now - *mark);
        // Recording never grows the buffer: a step allocates nothing.
        if self.spans.len() < self.spans.capacity() {
            self.spans.push(Span { phase, start: *mark, end: now });
        }
        *mark = now;
    }

    /// Adds `time` to the tally of `phase`.
    pub fn add_time(&mut self, phase: Phase, time: Duration) {
        self.totals[phase as usize] += time;
    }

    /// Adds another tally to this one (its spans stay where they are).
    pub fn add(&mut self, other: &PhaseTimes) {
        for (total, more) in self.totals.iter_mut().zip(other.totals) {
            *total += more;
        }
    }

    /// Clears the tallies, keeping any spans and the room for more.
    pub fn reset_totals(&mut self) {
        self.totals = Default::default();
    }

    /// Makes room for `spans` more spans (allocates: call it before the steps to trace).
    pub fn record_spans(&mut self, spans: usize) {
        self.spans.reserve_exact(spans);
    }

    /// The spans recorded so far, oldest first, removed (the room stays).
    pub fn drain_spans(&mut self) -> std::vec::Drain<'_, Span> {
        self.spans.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_tally_and_record_only_into_reserved_room() {
        let mut times = PhaseTimes::default();
        let mut mark = Instant::now();
        times.lap(Phase::ForwardRecurrence, &mut mark);
        assert_eq!(times.drain_spans().count(), 0, "no room was made");
        times.record_spans(2);
        let room = times.spans.capacity();
        assert!(room >= 2);
        for _ in 0..room + 1 {
            times.lap(Phase::Optimiser, &mut mark);
        }
        let spans: Vec<Span> = times.drain_spans().collect();
        assert_eq!(spans.len(), room, "the last span had no room");
        assert!(spans.iter().all(|s| s.phase == Phase::Optimiser && s.start <= s.end));
        assert!(spans[0].end <= spans[1].start, "consecutive laps do not overlap");
        let total = times.total(Phase::Optimiser);
        assert!(total >= spans[1].end - spans[0].start, "every lap is tallied");
        times.reset_totals();
        assert_eq!(times.total(Phase::Optimiser), Duration::ZERO);
    }
}
