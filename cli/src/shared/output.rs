//! Printing that never stops a run. `println!` and `eprintln!` panic when the stream is closed
//! (`train … | head`, a terminal that went away), which would lose a run before its model is
//! saved; these write and ignore such failures: what was not shown is still in `log.csv` and
//! the saved files.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// `println!` that ignores a closed or failing stdout.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::shared::output::write_line(false, format_args!($($arg)*)) };
}

/// `eprintln!` that ignores a closed or failing stderr.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::shared::output::write_line(true, format_args!($($arg)*)) };
}

/// [`errln!`] for what a run reports as it starts and goes (the corpus, the model, notes), which
/// `train --quiet` leaves out; warnings and errors use [`errln!`].
macro_rules! infoln {
    ($($arg:tt)*) => {
        if !$crate::shared::output::is_quiet() {
            $crate::shared::output::write_line(true, format_args!($($arg)*))
        }
    };
}

pub(crate) use {errln, infoln, outln};

/// Set by `train --quiet`.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Leaves out the lines of [`infoln!`] from now on.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Set in every rank of a multi-process run but rank 0, which alone prints.
static SILENCED: AtomicBool = AtomicBool::new(false);

/// Silences [`outln!`] and [`errln!`] in this process from now on: a rank of an MPI run other
/// than rank 0, whose lines would repeat rank 0's. Its errors still reach stderr, through
/// [`write_error`].
pub fn silence() {
    SILENCED.store(true, Ordering::Relaxed);
}

/// Writes one line to stderr (`to_stderr`) or stdout; a failure is dropped.
pub fn write_line(to_stderr: bool, line: fmt::Arguments<'_>) {
    if SILENCED.load(Ordering::Relaxed) {
        return;
    }
    write_error(to_stderr, line);
}

/// As [`write_line`], even in a silenced process (an error that ends it).
pub fn write_error(to_stderr: bool, line: fmt::Arguments<'_>) {
    let _ = if to_stderr { writeln!(io::stderr(), "{line}") } else { writeln!(io::stdout(), "{line}") };
}
/// `singular` for one, `plural` otherwise.
pub fn plural(n: usize, singular: &'static str, plural: &'static str) -> &'static str {
    if n == 1 {
        singular
    } else {
        plural
    }
}
