//! What `train` prints: progress lines on a non-terminal every `--log-every` steps, `--quiet`,
//! and `--dry-run`, which prints the run's figures and writes nothing in `--out`.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// The steps of the progress lines (`step N/T, …`) on stderr.
fn progress_steps(err: &str) -> Vec<u64> {
    err.lines().filter_map(|l| l.strip_prefix("step ")?.split('/').next()?.parse().ok()).collect()
}

/// A line every N steps (100 unless --log-every says), the first and the last, and the step of
/// each validation before its line; --quiet: nothing on stderr, the summary on stdout.
#[test]
fn progress_lines_come_every_n_steps_and_quiet_prints_the_summary_only() {
    // 296 batches per epoch: no epoch end within the run.
    let dir = dir_with_corpus(40_000);
    let run = |out: &str, extra: &[&str]| {
        let out = run_in(
            dir.path(),
            &train_args(&[&["--steps", "250", "--eval-every", "120", "--out", out], extra].concat()),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    let default = run("a", &[]);
    let err = stderr(&default);
    assert_eq!(progress_steps(&err), [1, 100, 120, 200, 240, 250], "{err}");
    assert_eq!(err.matches("validation after step").count(), 3, "{err}");
    let every_50 = stderr(&run("b", &["--log-every", "50"]));
    assert_eq!(progress_steps(&every_50), [1, 50, 100, 120, 150, 200, 240, 250], "{every_50}");

    let quiet = run("c", &["--quiet"]);
    assert_eq!(stderr(&quiet), "");
    let summary: Vec<String> =
        stdout(&quiet).lines().map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(summary, ["trained steps", "final validation", "saved model"], "{}", stdout(&quiet));
    // A malformed value is a usage error, as for every flag.
    let zero = run_in(dir.path(), &train_args(&["--log-every", "0"]));
    assert_eq!(zero.status.code(), Some(2));
    assert!(stderr(&zero).contains("invalid value '0' for '--log-every <N>'"), "{}", stderr(&zero));
}

/// Every file under `dir` with its modification time.
fn listing(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(listing(&path));
        }
        files.insert(path.display().to_string(), entry.metadata().unwrap().modified().unwrap());
    }
    files
}

/// --dry-run prints the parameters, memory, steps, threads and precision, exits 0 and writes
/// nothing in --out: no directory for a new run, nothing changed in one it would resume. One
/// too large for memory is refused as the run would be.
#[test]
fn dry_run_prints_the_figures_and_writes_nothing() {
    let dir = dir_with_corpus(30_000);
    let out = run_in(dir.path(), &train_args(&["--steps", "300", "--out", "m", "--dry-run"]));
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    for figure in [
        " parameters",
        "memory: ",
        " needed",
        "steps: 1..=300, 300 in all",
        "batches of 8×16",
        "2 threads",
        "f32 products",
    ] {
        assert!(text.contains(figure), "{figure:?} in {text}");
    }
    assert!(!dir.path().join("m").exists(), "a dry run created --out");

    assert!(run_in(dir.path(), &train_args(&["--steps", "5", "--out", "r"])).status.success());
    let before = listing(&dir.path().join("r"));
    let resume = run_in(dir.path(), &["train", "--resume", "r", "--steps", "9", "--dry-run"]);
    assert!(resume.status.success(), "{}", stderr(&resume));
    assert!(stdout(&resume).contains("steps: 6..=9, 4 in all"), "{}", stdout(&resume));
    assert!(stdout(&resume).contains("output: 'r', where the run goes on"), "{}", stdout(&resume));
    // Refused as the run would be, or told what --force would clear.
    assert_run_fails(dir.path(), &train_args(&["--out", "r", "--dry-run"]), "'r' holds another run");
    let forced = run_in(dir.path(), &train_args(&["--out", "r", "--force", "--dry-run"]));
    assert!(stdout(&forced).contains("whose previous run would be cleared (--force)"), "{}", stdout(&forced));
    assert_eq!(listing(&dir.path().join("r")), before);

    let too_large = command_in(dir.path())
        .env("CHARRNN_TEST_AVAILABLE_MEMORY", "1000")
        .args(train_args(&["--out", "big", "--dry-run"]))
        .output()
        .unwrap();
    assert_clean_error(&too_large, "this configuration needs");
    assert!(!dir.path().join("big").exists());
}

/// `--dry-run` with an `--out` that is a file says so, rather than naming files inside it.
#[test]
fn dry_run_with_an_out_that_is_a_file_says_so() {
    let dir = dir_with_corpus(20_000);
    std::fs::write(dir.path().join("f"), "mine").unwrap();
    let out = run_in(dir.path(), &[train_args(&["--steps", "2", "--out", "f"]).as_slice(), &["--dry-run"]].concat());
    assert_clean_error(&out, "--out 'f' is not a directory");
    assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), "mine");
}
