//! Training progress: a progress bar on a terminal, one plain line per step otherwise.

use std::io::IsTerminal;

use charrnn_engine::train::{EvalReport, StepReport};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total_steps: u64, start_step: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps);
            bar.set_position(start_step);
            let style = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

impl Progress {
    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn on_step(&mut self, r: &StepReport) {
        let line = format!("epoch {}, loss {:.4}, {:.0} tokens/s", r.epoch, r.outcome.loss, r.tokens_per_sec);
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.step);
                bar.set_message(line);
            }
            None => eprintln!("step {}/{}, {line}", r.step, r.total_steps),
        }
    }

    pub fn on_eval(&mut self, r: &EvalReport) {
        let line = format!(
            "validation after step {} (epoch {}{}): loss {:.4} nats/char, {:.4} bits/char",
            r.step,
            r.epoch,
            if r.epoch_end { " end" } else { "" },
            r.loss,
            r.bits_per_char()
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
