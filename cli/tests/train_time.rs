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
    // A step cap far away: over this small corpus the rule would cut the run to 10 passes.
    let out = run_in(dir.path(), &train_with(&[LEARNING_MODEL, &["--time", "3s", "--steps", "1000000", "--out", "r"]]));
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
    let lr = record["lr"].as_f64().unwrap();
    assert!(last_lr < lr * 0.2, "the rate ends near a tenth of the run's {lr}, not at {last_lr}");
}

/// With --steps as well, the run ends after them, long before its budget, and its rate's decay
/// ends with them: the schedule is laid over whichever comes first.
#[test]
fn a_step_cap_before_the_budget_ends_the_schedule() {
    let dir = dir_with_corpus(60_000);
    let started = Instant::now();
    let out = run_in(dir.path(), &train_with(&[LEARNING_MODEL, &["--time", "60s", "--steps", "40", "--out", "r"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "40 steps took {:?}", started.elapsed());
    let record = training_record(&dir.path().join("r"));
    let lr = record["lr"].as_f64().unwrap();
    let log = std::fs::read_to_string(dir.path().join("r/log.csv")).unwrap();
    let rates: Vec<f64> = log.lines().skip(1).map(|l| l.split(',').nth(5).unwrap().parse().unwrap()).collect();
    assert_eq!(rates.len(), 40, "{log}");
    assert!(rates[20] < 0.7 * lr && rates[20] > 0.3 * lr, "halfway through the steps, not the time: {rates:?}");
    assert!(rates[39] < 0.2 * lr, "the rate ends near a tenth of the run's {lr}: {rates:?}");
}

/// With --time and no size flags, the budget chooses the model, says so in one line and
/// records it; a flag typed keeps its value, and the rest is the rule's for that width.
#[test]
fn a_budget_without_sizes_chooses_the_model_and_typed_flags_win() {
    let dir = dir_with_corpus(60_000);
    let out = run_in(dir.path(), &["train", "--time", "2s", "--out", "auto", "--log-every", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("sized for the budget: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("LSTM") && line.contains("tokens per parameter") && line.contains("explicit flags win"),
        "{line}"
    );
    let record = training_record(&dir.path().join("auto"));
    assert_eq!(record["sized"].as_str(), line.strip_prefix("sized for the budget: "));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("auto/config.json")).unwrap()).unwrap();
    let hidden = model["model"]["hidden_size"].as_u64().unwrap();
    assert!(line.contains(&format!("× {hidden} LSTM")), "{line} vs hidden {hidden}");
    assert!(line.contains("state reset 0.1") && record["state_reset"] == 0.1, "{line}");
    let decay = record["weight_decay"].as_f64().unwrap();
    assert!(line.contains(&format!("weight decay {decay},")), "the line says the decay recorded: {line}");

    let typed = run_in(dir.path(), &["train", "--time", "2s", "--out", "typed", "--hidden", "24", "--lr", "0.01"]);
    assert!(typed.status.success(), "{}", stderr(&typed));
    let err = stderr(&typed);
    assert!(err.contains("the rule's settings for the width given"), "{err}");
    let record = training_record(&dir.path().join("typed"));
    assert_eq!(record["lr"], 0.01);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("typed/config.json")).unwrap()).unwrap();
    assert_eq!(model["model"]["hidden_size"], 24);

    // Every size typed: no choice at all.
    let all = [
        "--hidden",
        "24",
        "--layers",
        "1",
        "--embed",
        "8",
        "--dropout",
        "0",
        "--output-dropout",
        "0",
        "--state-reset",
        "0",
        "--weight-decay",
        "0",
    ];
    let rest = ["--batch", "8", "--seq-len", "16", "--lr", "0.01", "--precision", "f32"];
    let given = run_in(dir.path(), &[&["train", "--time", "1s", "--out", "given"][..], &all, &rest].concat());
    assert!(given.status.success(), "{}", stderr(&given));
    assert!(!stderr(&given).contains("sized for the budget"), "{}", stderr(&given));
    assert!(training_record(&dir.path().join("given"))["sized"].is_null());
}

/// A resumed budgeted run has what is left of its budget; one with nothing left says so, and
/// a longer --time gives it more.
#[test]
fn resume_keeps_what_is_left_of_the_budget() {
    let dir = dir_with_corpus(60_000);
    let first = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--time", "2s", "--steps", "1000000", "--out", "r"]]));
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

/// A budget that would pass over a small corpus more than 10 times is cut to 10 passes: the
/// line says so and the run's length is that many steps; a typed --steps wins.
#[test]
fn a_small_corpus_cuts_a_long_budget_to_ten_passes() {
    let dir = dir_with_corpus(200_000);
    let out = run_in(dir.path(), &train_with(&[&["--time", "10m", "--dry-run"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("sized for the budget: ")).unwrap_or_else(|| panic!("{err}"));
    let steps = line.split("ends after ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{line}"));
    assert!(stdout(&out).contains(&format!("at most to step {steps}")), "{}", stdout(&out));
    let typed = run_in(dir.path(), &train_with(&[&["--time", "10m", "--steps", "7", "--dry-run"]]));
    assert!(stdout(&typed).contains("at most to step 7"), "{}", stdout(&typed));
}
