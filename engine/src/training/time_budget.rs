//! A wall-clock budget for a whole run (`train --time`): the clock, the learning rate laid over
//! it, and the pacing that decides when to evaluate and when to stop so that the run, its
//! evaluations and its last checkpoint end on time.
//!
//! The schedule is laid over time, not steps: its progress is the share of the budget's
//! training horizon used so far, and the horizon is re-estimated after every step from the
//! measured costs of a step, an evaluation and a save. So the schedule re-fits itself as the
//! run goes (a slower machine, a busy neighbour) and still reaches its floor at the end.

use std::time::{Duration, Instant};

/// The wall-clock time a run has used, over all its sessions (a resumed run goes on from what
/// its checkpoint recorded).
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    used_before: Duration,
    started: Instant,
}

impl RunClock {
    /// A clock running from `started` (this session's start), after `used_before` in earlier
    /// sessions.
    pub fn new(used_before: Duration, started: Instant) -> RunClock {
        RunClock { used_before, started }
    }

    /// Time used so far, earlier sessions included.
    pub fn used(&self) -> Duration {
        self.used_before + self.started.elapsed()
    }
}

/// The budget of a run and how much of it is used.
#[derive(Clone, Copy, Debug)]
pub struct TimeBudget {
    total: Duration,
    clock: RunClock,
}

impl TimeBudget {
    /// A budget of `total` on the run's `clock`.
    pub fn new(total: Duration, clock: RunClock) -> TimeBudget {
        TimeBudget { total, clock }
    }

    /// Starts the clock of a budget now, of which `used_before` went to earlier sessions of
    /// the same run (resume keeps what is left).
    pub fn start(total: Duration, used_before: Duration) -> TimeBudget {
        TimeBudget::new(total, RunClock::new(used_before, Instant::now()))
    }

    /// The whole budget.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time used so far, earlier sessions included.
    pub fn used(&self) -> Duration {
        self.clock.used()
    }

    /// Time left (zero once spent).
    pub fn left(&self) -> Duration {
        self.total.saturating_sub(self.used())
    }
}

/// The learning rate over a budget: a linear warm-up over the first `warmup` of it, then a
/// half cosine from the base rate down to `floor × base` at its end (nanoGPT's schedule, over
/// time instead of iterations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineOverBudget {
    /// Share of the budget spent warming up, in [0, 1).
    pub warmup: f64,
    /// The final rate as a share of the base rate, in [0, 1].
    pub floor: f64,
}

impl CosineOverBudget {
    /// Warm-up over the first 2% of the horizon, decay to a tenth of the base rate (nanoGPT's
    /// `min_lr = learning_rate / 10`).
    pub const DEFAULT: CosineOverBudget = CosineOverBudget { warmup: 0.02, floor: 0.1 };

    /// The rate at `progress` (the share of the horizon used, clamped to [0, 1]).
    pub fn rate(&self, base: f64, progress: f64) -> f64 {
        let p = progress.clamp(0.0, 1.0);
        if p < self.warmup {
            // Never zero: the first step must move the weights.
            return base * ((p / self.warmup).max(0.01));
        }
        let decay = (p - self.warmup) / (1.0 - self.warmup).max(f64::MIN_POSITIVE);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * decay.min(1.0)).cos());
        base * (self.floor + (1.0 - self.floor) * cosine)
    }
}

/// Evaluations take at most about this share of a budget: the next one is due only after
/// this many times the last one's duration has passed.
pub const EVAL_SPACING: f64 = 20.0;

/// At most this many evaluations (besides the last) in a budget, however cheap they are.
pub const EVALS_PER_BUDGET: f64 = 10.0;

/// What the steps, evaluations and saves of a run cost, measured as it goes, and what follows
/// from them for a budget: the training horizon, whether one more step fits, and whether an
/// evaluation is due.
#[derive(Clone, Copy, Debug)]
pub struct BudgetPacer {
    /// Smoothed duration of a training step.
    step: Option<Duration>,
    /// Duration of the last evaluation.
    eval: Option<Duration>,
    /// Duration of the last checkpoint save (with the model and `best/`, the end of a run
    /// writes about three times this).
    save: Option<Duration>,
    /// When (in budget time used) the last evaluation ended.
    last_eval_at: Duration,
    /// Tokens an evaluation reads per token a step trains on, over three: until an evaluation
    /// is timed, its cost is guessed from the step's.
    eval_per_step: f64,
}

impl Default for BudgetPacer {
    fn default() -> BudgetPacer {
        BudgetPacer::new()
    }
}

impl BudgetPacer {
    /// Nothing measured yet.
    pub fn new() -> BudgetPacer {
        BudgetPacer { step: None, eval: None, save: None, last_eval_at: Duration::ZERO, eval_per_step: 10.0 }
    }

    /// Sets what an evaluation reads (`eval_tokens`) against what a step trains on
    /// (`step_tokens`), for the guess of its cost before one is timed: a forward pass without
    /// the backward one and the update, about a third of a step per token.
    pub fn expect_evaluations(&mut self, eval_tokens: usize, step_tokens: usize) {
        self.eval_per_step = eval_tokens as f64 / step_tokens.max(1) as f64 / 3.0;
    }

    /// The last evaluation's duration, or before one is timed the guess from a step's.
    fn eval_time(&self) -> Duration {
        self.eval.unwrap_or_else(|| self.step.unwrap_or(Duration::ZERO).mul_f64(self.eval_per_step))
    }

    /// Records a step's duration (an exponential average: a step's cost drifts with the
    /// machine's load, and one slow step should not end a run early).
    pub fn record_step(&mut self, took: Duration) {
        self.step = Some(match self.step {
            None => took,
            Some(avg) => avg.mul_f64(0.9) + took.mul_f64(0.1),
        });
    }

    /// Records an evaluation that ended at `at` (budget time used) and took `took`.
    pub fn record_eval(&mut self, took: Duration, at: Duration) {
        self.eval = Some(took);
        self.last_eval_at = at;
    }

    /// Records a checkpoint save's duration.
    pub fn record_save(&mut self, took: Duration) {
        self.save = Some(self.save.map_or(took, |s| s.max(took)));
    }

    /// The smoothed step duration, once one step is measured.
    pub fn step_time(&self) -> Option<Duration> {
        self.step
    }

    /// What the end of the run needs after its last step: the last evaluation and the final
    /// writes (checkpoint, model, `best/`), with a margin of half again. Before they are
    /// measured, an evaluation is guessed from the step (see
    /// [`expect_evaluations`](Self::expect_evaluations)) and a save at two steps.
    pub fn reserve(&self) -> Duration {
        let step = self.step.unwrap_or(Duration::ZERO);
        let eval = self.eval_time();
        let save = self.save.unwrap_or(step * 2).max(Duration::from_millis(50));
        (eval + save * 3).mul_f64(1.5)
    }

    /// The time training steps may run to: the budget less the [`reserve`](Self::reserve).
    pub fn horizon(&self, budget: &TimeBudget) -> Duration {
        budget.total().saturating_sub(self.reserve())
    }

    /// The share of the horizon used, for the learning-rate schedule.
    pub fn progress(&self, budget: &TimeBudget) -> f64 {
        let horizon = self.horizon(budget).as_secs_f64();
        if horizon <= 0.0 {
            1.0
        } else {
            budget.used().as_secs_f64() / horizon
        }
    }

    /// Whether one more step fits before the horizon. The first step always runs (nothing is
    /// measured before it).
    pub fn room_for_step(&self, budget: &TimeBudget) -> bool {
        match self.step {
            None => true,
            Some(step) => budget.used() + step <= self.horizon(budget),
        }
    }

    /// Whether an evaluation is due now: at most [`EVALS_PER_BUDGET`] in the budget, spaced so
    /// that they take at most about 1/[`EVAL_SPACING`] of it.
    pub fn eval_due(&self, budget: &TimeBudget) -> bool {
        let since = budget.used().saturating_sub(self.last_eval_at);
        let spacing = budget.total().div_f64(EVALS_PER_BUDGET).max(self.eval_time().mul_f64(EVAL_SPACING));
        since >= spacing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_its_floor() {
        let s = CosineOverBudget { warmup: 0.1, floor: 0.1 };
        assert!((s.rate(1.0, 0.0) - 0.01).abs() < 1e-12, "never a zero rate");
        assert!((s.rate(1.0, 0.05) - 0.5).abs() < 1e-12);
        assert!((s.rate(1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((s.rate(1.0, 0.55) - 0.55).abs() < 1e-12, "half way down the cosine: floor + half the span");
        assert!((s.rate(1.0, 1.0) - 0.1).abs() < 1e-12);
        assert!((s.rate(1.0, 3.0) - 0.1).abs() < 1e-12, "past the horizon: the floor");
        let rates: Vec<f64> = (10..=100).map(|i| s.rate(2.0, i as f64 / 100.0)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "decays monotonically after the warm-up");
    }

    #[test]
    fn the_horizon_leaves_room_for_the_last_evaluation_and_saves() {
        let budget = TimeBudget::start(Duration::from_secs(60), Duration::ZERO);
        let mut pacer = BudgetPacer::new();
        assert!(pacer.room_for_step(&budget), "the first step always runs");
        pacer.record_step(Duration::from_millis(100));
        pacer.record_eval(Duration::from_secs(2), Duration::from_secs(1));
        pacer.record_save(Duration::from_millis(200));
        // (2 s + 3 × 0.2 s) × 1.5 = 3.9 s.
        assert_eq!(pacer.reserve(), Duration::from_millis(3900));
        assert_eq!(pacer.horizon(&budget), Duration::from_millis(56_100));
        assert!(pacer.room_for_step(&budget));
        let spent = TimeBudget::start(Duration::from_secs(60), Duration::from_millis(56_050));
        assert!(!pacer.room_for_step(&spent), "a step of 100 ms would run past the horizon");
        assert!(pacer.progress(&spent) > 0.99);
    }

    /// Before an evaluation is timed, its cost is guessed from a step's: a large validation
    /// split (here 30 steps' tokens: 10 steps' work) keeps the first evaluation from coming
    /// before the run can afford it, and is reserved at the end.
    #[test]
    fn an_evaluation_not_yet_timed_is_guessed_from_the_step() {
        let mut pacer = BudgetPacer::new();
        pacer.expect_evaluations(3000, 100);
        pacer.record_step(Duration::from_millis(100));
        pacer.record_save(Duration::from_millis(100));
        // (1 s + 3 × 0.1 s) × 1.5 = 1.95 s.
        assert_eq!(pacer.reserve(), Duration::from_millis(1950));
        // Spacing: 20 × the guessed 1 s, beyond a tenth of a 100 s budget.
        assert!(!pacer.eval_due(&TimeBudget::start(Duration::from_secs(100), Duration::from_secs(19))));
        assert!(pacer.eval_due(&TimeBudget::start(Duration::from_secs(100), Duration::from_secs(20))));
    }

    #[test]
    fn resume_keeps_what_is_left() {
        let budget = TimeBudget::start(Duration::from_secs(600), Duration::from_secs(590));
        assert!(budget.left() <= Duration::from_secs(10));
        let over = TimeBudget::start(Duration::from_secs(600), Duration::from_secs(700));
        assert_eq!(over.left(), Duration::ZERO);
    }

    #[test]
    fn evaluations_are_spaced_by_the_budget_and_by_their_cost() {
        let mut pacer = BudgetPacer::new();
        // A tenth of a 100 s budget is 10 s; an evaluation of 1 s needs 20 s of spacing.
        let early = TimeBudget::start(Duration::from_secs(100), Duration::from_secs(9));
        assert!(!pacer.eval_due(&early));
        let later = TimeBudget::start(Duration::from_secs(100), Duration::from_secs(10));
        assert!(pacer.eval_due(&later));
        pacer.record_eval(Duration::from_secs(1), Duration::from_secs(10));
        let next = TimeBudget::start(Duration::from_secs(100), Duration::from_secs(25));
        assert!(!pacer.eval_due(&next), "15 s after a 1 s evaluation: not yet");
        let due = TimeBudget::start(Duration::from_secs(100), Duration::from_secs(30));
        assert!(pacer.eval_due(&due));
    }
}
