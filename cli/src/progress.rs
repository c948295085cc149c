//! Training progress: a progress bar on a terminal, one plain line per step otherwise.

use std::io::IsTerminal;

use charrnn_engine::train::{EvalReport, StepReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::errln;

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

/// Width of the terminal on stderr (80 when it cannot be told).
fn terminal_columns() -> u16 {
    console::Term::stderr().size_checked().map_or(80, |(_rows, columns)| columns)
}

pub struct Progress {
    bar: Option<ProgressBar>,
    /// What the losses are per: "char", or "byte" for a byte-level model.
    unit: &'static str,
}

impl Progress {
    pub fn new(total_steps: u64, start_step: u64, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps);
            bar.set_position(start_step);
            bar.set_style(style(terminal_columns(), true));
            bar
        });
        Progress { bar, unit }
    }

    /// Leaves the bar where the run stopped (`finish` would fill it, as if every step had run),
    /// without an estimate of the time left.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_style(style(terminal_columns(), false));
            bar.abandon();
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => errln!("{line}"),
        }
    }

    pub fn on_step(&mut self, r: &StepReport) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.step);
                bar.set_message(format!(
                    "epoch {}, loss {:.4}, {:.0} tok/s",
                    r.epoch, r.outcome.loss, r.tokens_per_sec
                ));
            }
            None => errln!(
                "step {}/{}, epoch {}, loss {:.4}, {:.0} tokens/s",
                r.step,
                r.total_steps,
                r.epoch,
                r.outcome.loss,
                r.tokens_per_sec
            ),
        }
    }

    pub fn on_eval(&mut self, r: &EvalReport) {
        let unit = self.unit;
        self.println(&format!(
            "validation after step {} (epoch {}{}): loss {:.4} nats/{unit}, {:.4} bits/{unit}",
            r.step,
            r.epoch,
            if r.epoch_end { " end" } else { "" },
            r.loss,
            r.bits_per_char()
        ));
    }
}
