//! `train --time`: a wall-clock budget for the whole run.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The run's settings recorded in its model's config.json.
fn training_record(out: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("config.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["training"].clone()
}

/// The `elapsed_s` column of a run's log.
fn elapsed_column(out: &std::path::Path) -> Vec<f64> {
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("step,epoch,train_loss,val_loss,tokens_per_sec,lr,elapsed_s"));
    lines.map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap()).collect()
}

/// A 3 s budget ends on time (the whole process, preparing and the final writes included,
/// with a second of slack for a loaded machine), with validation, the time in the log and the
/// budget in the record; the rate follows the budget's cosine down to its floor.
#[test]
fn a_budget_ends_the_run_on_time() {
    let dir = dir_with_corpus(60_000);
    let started = Instant::now();
    let out = run_in(dir.path(), &train_with(&[LEARNING_MODEL, &["--time", "3s", "--out", "r"]]));
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took < Duration::from_secs(4), "a 3 s budget took {took:?}");
    let text = stdout(&out);
    assert!(text.contains("of the 3.0s budget"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("training: time 3.0s"), "{err}");
    assert!(err.contains("left, epoch"), "progress lines say the time left: {err}");
    assert!(err.contains("validation after step"), "{err}");
    let elapsed = elapsed_column(&dir.path().join("r"));
    assert!(elapsed.len() > 20, "only {} steps", elapsed.len());
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]) && *elapsed.last().unwrap() < 3.0, "{elapsed:?}");
    let record = training_record(&dir.path().join("r"));
    assert_eq!(record["time_budget_secs"], 3.0);
    assert_eq!(record["time_used_secs"], 3.0, "a run that ended on its budget has used it all");
    let log = std::fs::read_to_string(dir.path().join("r/log.csv")).unwrap();
    let last_lr: f64 = log.lines().last().unwrap().split(',').nth(5).unwrap().parse().unwrap();
    assert!(last_lr < 0.002 * 0.2, "the rate ends near a tenth of --lr, not at {last_lr}");
}

/// A resumed budgeted run has what is left of its budget; one with nothing left says so, and
/// a longer --time gives it more.
#[test]
fn resume_keeps_what_is_left_of_the_budget() {
    let dir = dir_with_corpus(60_000);
    let first = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--time", "2s", "--out", "r"]]));
    assert!(first.status.success(), "{}", stderr(&first));
    let steps = elapsed_column(&dir.path().join("r")).len();
    assert_run_fails(dir.path(), &["train", "--resume", "r"], "budget: nothing left to do (pass --time");
    let more = run_in(dir.path(), &["train", "--resume", "r", "--time", "4s"]);
    assert!(more.status.success(), "{}", stderr(&more));
    let err = stderr(&more);
    assert!(err.contains("--time 4s"), "the change is reported: {err}");
    assert!(err.contains("training: time 4.0s ("), "with the time left: {err}");
    let elapsed = elapsed_column(&dir.path().join("r"));
    assert!(elapsed.len() > steps, "the resumed run trained");
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "the clock goes on from the checkpoint: {elapsed:?}");
    assert!(*elapsed.last().unwrap() < 4.0);
}

#[test]
fn bad_budgets_are_one_error_line() {
    let dir = dir_with_corpus(20_000);
    for (time, says) in [("0s", "at least 1s"), ("10x", "unknown unit"), ("1h30", "needs a unit"), ("9999h", "a week")]
    {
        let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--time", time, "--out", "r"]]));
        assert_eq!(out.status.code(), Some(2), "clap's usage error for {time}");
        assert!(stderr(&out).contains(says), "{time}: {}", stderr(&out));
    }
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--time", "10s", "--epochs", "2", "--out", "r"]]));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
    assert!(!dir.path().join("r").exists());
}

/// A dry run of a budgeted run says its length in time.
#[test]
fn a_dry_run_shows_the_budget() {
    let dir = dir_with_corpus(20_000);
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--time", "90s", "--steps", "500", "--dry-run"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("length: time 1m30s, at most to step 500"), "{}", stdout(&out));
}
