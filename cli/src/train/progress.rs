//! Training progress: a progress bar on a terminal; elsewhere (a log file, a pipe) a plain line
//! every `--log-every` steps, at each evaluation, and at the first and last steps; nothing of
//! it with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use charrnn_engine::training::{EvalReport, StepReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::shared::output::errln;
use crate::train::duration_arg::show_duration;

/// Steps between progress lines where there is no terminal and `--log-every` is not given: a
/// line per step would bury the evaluations of a long run in a log.
pub const DEFAULT_LOG_EVERY: u64 = 100;

/// The bar's layout for a terminal `columns` wide: the fixed part must leave room, because
/// `wide_msg` takes what is left and cuts the message to it, so the line never wraps.
fn style(columns: u16, with_eta: bool) -> ProgressStyle {
    let time = if with_eta { "[{elapsed} < {eta}]" } else { "[{elapsed}]" };
    let template = match columns {
        70.. => format!("{{bar:24.cyan/blue}} {{pos}}/{{len}} {time} {{wide_msg}}"),
        40..70 => format!("{{pos}}/{{len}} {time} {{wide_msg}}"),
        _ => "{pos}/{len} {wide_msg}".to_owned(),
    };
    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The bar of a time-budgeted run: filled by the time used, the steps in the message.
fn budget_style(columns: u16) -> ProgressStyle {
    let template = match columns {
        70.. => "{bar:24.cyan/blue} {wide_msg}",
        _ => "{wide_msg}",
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Width of the terminal on stderr (80 when it cannot be told).
fn terminal_columns() -> u16 {
    console::Term::stderr().size_checked().map_or(80, |(_rows, columns)| columns)
}

/// How progress is shown.
enum Display {
    Bar(ProgressBar),
    Lines {
        every: u64,
        /// The first step of this run (resumed runs start past 1).
        first: u64,
        /// The line of the last step, when it was not printed: printed before an evaluation's
        /// line and when the run ends, so that the last step always shows.
        pending: Option<String>,
    },
    /// `--quiet`: nothing but warnings.
    Quiet,
}

/// What a run's progress is measured against.
pub struct ProgressPlan {
    /// The last step (with a budget, only a cap).
    pub total_steps: u64,
    /// The step the run starts after (resumed runs start past 0).
    pub start_step: u64,
    /// A time budget and what earlier sessions of the run used of it: the bar then fills with
    /// time, and the lines say the time left.
    pub budget: Option<(Duration, Duration)>,
}

pub struct Progress {
    display: Display,
    /// Whether the run has a time budget.
    budgeted: bool,
    /// What the losses are per: "char", or "byte" for a byte-level model.
    unit: &'static str,
}

impl Progress {
    /// Progress for steps `start_step + 1..=total_steps`: a bar on a terminal, otherwise a line
    /// every `log_every` steps ([`DEFAULT_LOG_EVERY`] if `None`); nothing when `quiet`.
    pub fn new(plan: ProgressPlan, unit: &'static str, log_every: Option<u64>, quiet: bool) -> Progress {
        let ProgressPlan { total_steps, start_step, budget } = plan;
        let display = if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = match budget {
                Some((total, used)) => {
                    let bar = ProgressBar::new(total.as_secs().max(1));
                    bar.set_position(used.as_secs());
                    bar.set_style(budget_style(terminal_columns()));
                    bar
                }
                None => {
                    let bar = ProgressBar::new(total_steps);
                    bar.set_position(start_step);
                    bar.set_style(style(terminal_columns(), true));
                    bar
                }
            };
            Display::Bar(bar)
        } else {
            Display::Lines {
                every: log_every.unwrap_or(DEFAULT_LOG_EVERY).max(1),
                first: start_step + 1,
                pending: None,
            }
        };
        Progress { display, budgeted: budget.is_some(), unit }
    }

    /// Leaves the bar where the run stopped (`finish` would fill it, as if every step had run),
    /// without an estimate of the time left; in lines, prints the last step's if not yet shown.
    pub fn finish(&mut self) {
        match &mut self.display {
            Display::Bar(bar) => {
                if !self.budgeted {
                    bar.set_style(style(terminal_columns(), false));
                }
                bar.abandon();
            }
            Display::Lines { pending, .. } => {
                if let Some(line) = pending.take() {
                    errln!("{line}");
                }
            }
            Display::Quiet => {}
        }
    }

    /// Prints a line (a warning) without breaking the bar; printed even when quiet.
    pub fn println(&self, line: &str) {
        match &self.display {
            Display::Bar(bar) => bar.println(line),
            _ => errln!("{line}"),
        }
    }

    pub fn on_step(&mut self, r: &StepReport) {
        match &mut self.display {
            Display::Bar(bar) => match r.time {
                Some(time) => {
                    bar.set_position(time.used.as_secs());
                    bar.set_message(format!(
                        "{} left, step {}, epoch {}, loss {:.4}, {:.0} tok/s",
                        show_duration(time.left()),
                        r.step,
                        r.epoch,
                        r.outcome.loss,
                        r.tokens_per_sec
                    ));
                }
                None => {
                    bar.set_position(r.step);
                    bar.set_message(format!(
                        "epoch {}, loss {:.4}, {:.0} tok/s",
                        r.epoch, r.outcome.loss, r.tokens_per_sec
                    ));
                }
            },
            Display::Lines { every, first, pending } => {
                let line = match r.time {
                    Some(time) => format!(
                        "step {}, {} left, epoch {}, loss {:.4}, {:.0} tokens/s",
                        r.step,
                        show_duration(time.left()),
                        r.epoch,
                        r.outcome.loss,
                        r.tokens_per_sec
                    ),
                    None => format!(
                        "step {}/{}, epoch {}, loss {:.4}, {:.0} tokens/s",
                        r.step, r.total_steps, r.epoch, r.outcome.loss, r.tokens_per_sec
                    ),
                };
                if r.step == *first || r.step.is_multiple_of(*every) || r.step == r.total_steps {
                    *pending = None;
                    errln!("{line}");
                } else {
                    *pending = Some(line);
                }
            }
            Display::Quiet => {}
        }
    }

    pub fn on_eval(&mut self, r: &EvalReport) {
        let unit = self.unit;
        let line = format!(
            "validation after step {} (epoch {}{}): loss {:.4} nats/{unit}, {:.4} bits/{unit}",
            r.step,
            r.epoch,
            if r.epoch_end { " end" } else { "" },
            r.loss,
            r.bits_per_char()
        );
        match &mut self.display {
            Display::Bar(bar) => bar.println(line),
            Display::Lines { pending, .. } => {
                // The step it was measured after, first.
                if let Some(step_line) = pending.take() {
                    errln!("{step_line}");
                }
                errln!("{line}");
            }
            Display::Quiet => {}
        }
    }
}
