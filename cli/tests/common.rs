//! Helpers shared by the CLI tests: run the binary, make small corpora.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_charrnn-fast"))
}

/// Runs the binary with `args` in `dir`, with the user's cache directory (where the built-in
/// corpus goes outside a checkout) inside `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).env("XDG_CACHE_HOME", dir.join(".cache")).args(args).output().expect("run charrnn-fast")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failure reported the way users should see it: non-zero exit, one line on stderr
/// starting with `error:`, containing `needle`, and no panic.
pub fn assert_clean_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// The per-step training losses a `train` run printed (its `step N/T, epoch E, loss L, …`
/// lines on stderr, written when stderr is not a terminal).
pub fn step_losses(stderr_text: &str) -> Vec<f64> {
    stderr_text
        .lines()
        .filter(|l| l.starts_with("step "))
        .filter_map(|l| l.split("loss ").nth(1)?.split(',').next()?.parse().ok())
        .collect()
}

/// A small model and batch that train in milliseconds a step.
pub const SMALL_MODEL: &[&str] =
    &["--hidden", "24", "--embed", "16", "--batch", "8", "--seq-len", "16", "--threads", "2"];

/// `train --data c.txt` with [`SMALL_MODEL`] and `extra`.
pub fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", "c.txt"];
    args.extend_from_slice(SMALL_MODEL);
    args.extend_from_slice(extra);
    args
}

/// A small English-like corpus of `len` bytes with a regular structure a model can learn.
pub fn small_corpus(len: usize) -> String {
    let words = ["the ", "king ", "and ", "queen ", "of ", "rome ", "speak\n", "ROMEO: ", "JULIET: "];
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < len {
        text.push_str(words[(i * 7 + i / 3) % words.len()]);
        i += 1;
    }
    text.truncate(len);
    text
}

/// The tinyshakespeare corpus the repository ships (`data/tinyshakespeare/input.txt`).
pub fn shipped_tinyshakespeare() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tinyshakespeare/input.txt")
}
