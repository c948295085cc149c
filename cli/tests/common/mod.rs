//! Helpers shared by the CLI tests: run the binary, make small corpora.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_charrnn-fast"))
}

/// The binary, to run in `dir`, with the user's cache directory (where the built-in corpus
/// goes outside a checkout) inside `dir`.
pub fn command_in(dir: &Path) -> Command {
    let mut command = bin();
    command.current_dir(dir).env("XDG_CACHE_HOME", dir.join(".cache"));
    command
}

/// Runs the binary with `args` in `dir` (see [`command_in`]) to its end.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    command_in(dir).args(args).output().expect("run charrnn-fast")
}

/// Starts the binary with `args` in `dir` (see [`command_in`]), its stdout and stderr piped.
pub fn spawn_in(dir: &Path, args: &[&str]) -> Child {
    command_in(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start charrnn-fast")
}

/// Runs `args` in `dir` and asserts it fails with a clean error containing `needle`
/// (see [`assert_clean_error`]).
pub fn assert_run_fails(dir: &Path, args: &[&str], needle: &str) -> Output {
    let out = run_in(dir, args);
    assert_clean_error(&out, needle);
    out
}

/// A temporary directory holding `files` (name, content).
pub fn dir_with<C: AsRef<[u8]>>(files: &[(&str, C)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

/// A temporary directory holding `c.txt`, a [`small_corpus`] of `len` bytes.
pub fn dir_with_corpus(len: usize) -> tempfile::TempDir {
    dir_with(&[("c.txt", small_corpus(len))])
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
/// lines on stderr, written when stderr is not a terminal: every step with `--log-every 1`).
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

/// A model large enough to learn [`small_corpus`] well in a few hundred steps.
pub const LEARNING_MODEL: &[&str] = &["--hidden", "32", "--embed", "16", "--batch", "16", "--seq-len", "20"];

/// The smallest model worth running: a few steps of it only show that a run starts.
pub const TINY_MODEL: &[&str] = &["--hidden", "8", "--embed", "4", "--batch", "4", "--seq-len", "8"];

/// `train --data c.txt` followed by each of `parts` in turn.
pub fn train_with<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", "c.txt"];
    for part in parts {
        args.extend_from_slice(part);
    }
    args
}

/// `train --data c.txt` with [`SMALL_MODEL`] and `extra`.
pub fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    train_with(&[SMALL_MODEL, extra])
}

/// Starts a `train` run of [`SMALL_MODEL`] for `steps` steps without periodic checkpoints
/// into `out`, with `extra`, and waits until its log has `rows` steps.
pub fn start_long_run(dir: &Path, steps: &str, out: &str, extra: &[&str], rows: usize) -> Child {
    let child =
        spawn_in(dir, &train_with(&[SMALL_MODEL, &["--steps", steps, "--checkpoint-every", "0", "--out", out], extra]));
    wait_for_log_rows(&dir.join(out), rows);
    child
}

/// Waits until the `log.csv` in `out` has `rows` steps (at most a minute).
pub fn wait_for_log_rows(out: &Path, rows: usize) {
    let log = out.join("log.csv");
    let started = Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < rows + 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "training did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT (Ctrl-C) to `child`.
pub fn interrupt(child: &Child) {
    signal(child, "INT");
}

/// Sends the signal `name` (`INT`, `TERM`, …) to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for `child` (started by [`spawn_in`]) to end, for at most `limit` (then kills it and
/// fails); returns its output and how long it took. Its pipes are read meanwhile, so that a
/// full pipe never holds it up.
pub fn wait_at_most(mut child: Child, limit: Duration) -> (Output, Duration) {
    use std::io::Read;
    let started = Instant::now();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for charrnn-fast") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("still running after {limit:?}; stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let output = Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() };
    (output, took)
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
