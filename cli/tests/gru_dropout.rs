//! `train --cell gru` and `train --dropout P` (and `--output-dropout`, `--weight-drop`,
//! `--state-reset`, `--weight-decay`) end to end: training lowers the loss, the run
//! settings are recorded, the model samples, a dropout run is reproducible, and a bad
//! probability is a clear error.

mod common;
use common::*;

fn train(dir: &std::path::Path, out: &str, extra: &[&str]) -> std::process::Output {
    run_in(dir, &train_with(&[LEARNING_MODEL, &["--threads", "2", "--log-every", "1", "--out", out], extra]))
}

fn losses(out: &std::process::Output) -> Vec<f64> {
    step_losses(&stderr(out))
}

#[test]
fn gru_with_dropout_trains_records_and_samples() {
    let dir = dir_with_corpus(40_000);
    let out = train(dir.path(), "gru", &["--cell", "gru", "--layers", "3", "--dropout", "0.25", "--steps", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let l = losses(&out);
    assert_eq!(l.len(), 60, "{}", stderr(&out));
    assert!(l[0] > 2.0 && l[59] < 0.7 * l[0], "loss {} → {}", l[0], l[59]);
    assert!(stderr(&out).contains("3 × 32 gru"), "{}", stderr(&out));

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gru/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["cell"], "gru", "{config}");
    assert_eq!(config["training"]["dropout"], 0.25, "{config}");
    assert_eq!(config["training"]["weight_drop"], 0.0, "{config}");

    let sample = run_in(dir.path(), &["sample", "--model", "gru", "--prime", "the ", "--length", "50"]);
    assert!(sample.status.success(), "{}", stderr(&sample));
    assert_eq!(stdout(&sample).chars().count(), 4 + 50 + 1);

    // The masks come from (seed, step): the same run gives the same losses; without dropout
    // they differ.
    let again = train(dir.path(), "gru2", &["--cell", "gru", "--layers", "3", "--dropout", "0.25", "--steps", "60"]);
    assert_eq!(losses(&again), l);
    let plain = train(dir.path(), "gru3", &["--cell", "gru", "--layers", "3", "--steps", "60"]);
    assert_ne!(losses(&plain), l);
}

#[test]
fn dropout_outside_zero_to_one_is_a_clear_error() {
    let dir = dir_with_corpus(20_000);
    for flag in ["--dropout", "--output-dropout", "--weight-drop", "--state-reset"] {
        for bad in ["1", "1.5", "-0.1", "nan", "inf"] {
            let arg = format!("{flag}={bad}");
            let out = train(dir.path(), "m", &[&arg, "--steps", "2"]);
            assert_clean_error(&out, &format!("{flag} must be a probability in [0, 1)"));
        }
    }
}

/// `--weight-decay` must be a non-negative number whose product with the rate is below 1 (the
/// factor `1 − lr·λ` must stay positive), with the rate the run takes: one the `--time` rule
/// raises past what the typed flags allowed is refused too.
#[test]
fn a_bad_weight_decay_is_a_clear_error() {
    let dir = dir_with_corpus(20_000);
    let message = "--weight-decay must be 0 (off) or a positive number with --lr × --weight-decay below 1";
    for bad in ["-0.1", "nan", "inf", "500"] {
        let arg = format!("--weight-decay={bad}");
        let out = train(dir.path(), "m", &[&arg, "--steps", "2"]);
        assert_clean_error(&out, message);
    }
    // 400 × the default 0.002 is 0.8; the rule's rate for a small model is 0.004.
    let out = run_in(dir.path(), &["train", "--time", "2s", "--weight-decay", "400", "--out", "sized"]);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains(message) && last.contains("--lr 0.004"), "{err}");
}

/// A GRU run with dropout, state resets and weight decay, stopped and resumed, ends with the same weights as
/// one straight run: the masks and draws depend only on (seed, step), with no RNG state to save.
#[test]
fn dropout_resumes_bit_identically() {
    let dir = dir_with_corpus(30_000);
    let model = [
        "--cell",
        "gru",
        "--layers",
        "2",
        "--dropout",
        "0.3",
        "--output-dropout",
        "0.2",
        "--weight-drop",
        "0.25",
        "--state-reset",
        "0.2",
        "--weight-decay",
        "0.1",
        "--seed",
        "5",
    ];
    let straight = train(dir.path(), "a", &[&model[..], &["--steps", "40"]].concat());
    assert!(straight.status.success(), "{}", stderr(&straight));
    let first = train(dir.path(), "b", &[&model[..], &["--steps", "20"]].concat());
    assert!(first.status.success(), "{}", stderr(&first));
    let resumed = run_in(dir.path(), &["train", "--resume", "b", "--steps", "40", "--threads", "2", "--out", "b"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let wa = std::fs::read(dir.path().join("a/model.safetensors")).unwrap();
    let wb = std::fs::read(dir.path().join("b/model.safetensors")).unwrap();
    assert!(wa == wb, "weights differ after resume");
}

/// `--weight-drop`, `--state-reset` and `--weight-decay` are each recorded, change training,
/// and give the same run twice (the same masks, the same rows reset).
#[test]
fn weight_drop_state_reset_and_weight_decay_are_recorded_and_reproducible() {
    let dir = dir_with_corpus(30_000);
    let plain = losses(&train(dir.path(), "plain", &["--steps", "60"]));
    for (flag, field) in
        [("--weight-drop", "weight_drop"), ("--state-reset", "state_reset"), ("--weight-decay", "weight_decay")]
    {
        let args = [flag, "0.3", "--steps", "60"];
        let out = train(dir.path(), field, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let l = losses(&out);
        assert!(l.len() == 60 && l[59] < 0.8 * l[0], "{flag}: {l:?}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(field).join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["training"][field], 0.3, "{config}");
        assert_eq!(losses(&train(dir.path(), &format!("{field}2"), &args)), l, "{flag}");
        assert_ne!(plain, l, "{flag} changed nothing");
    }
}
