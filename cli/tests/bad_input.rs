//! Bad input to `prepare`, `train` and `sample`: a one-line error and a non-zero exit, never a
//! panic.

mod common;
use common::*;

#[test]
fn prepare_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_run_fails(dir.path(), &["prepare", "--data", "nope.txt"], "nope.txt");
}

#[test]
fn prepare_empty_file() {
    let dir = dir_with(&[("empty.txt", "")]);
    assert_run_fails(dir.path(), &["prepare", "--data", "empty.txt"], "empty");
}

#[test]
fn prepare_file_shorter_than_one_batch() {
    let dir = dir_with(&[("short.txt", small_corpus(1000)), ("mid.txt", small_corpus(3000))]);
    // 1000 symbols, 950 for training; 50×50 needs 2500.
    assert_run_fails(dir.path(), &["prepare", "--data", "short.txt"], "2500");
    // The validation split gets its own message.
    assert_run_fails(dir.path(), &["prepare", "--data", "mid.txt"], "validation");
    // And it fits with a smaller batch.
    let out = run_in(dir.path(), &["prepare", "--data", "mid.txt", "--batch", "2", "--seq-len", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn prepare_non_utf8_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = small_corpus(5000).into_bytes();
    bytes[1234] = 0xff;
    std::fs::write(dir.path().join("bin.txt"), &bytes).unwrap();
    assert_run_fails(dir.path(), &["prepare", "--data", "bin.txt"], "1234");
    // --bytes accepts it.
    let out = run_in(dir.path(), &["prepare", "--data", "bin.txt", "--bytes", "--batch", "5", "--seq-len", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// With no --data and no checkout around, the binary trains on its built-in tinyshakespeare,
/// written once to the user's cache directory (where its prepared cache goes too).
#[test]
fn train_from_an_empty_directory_uses_the_built_in_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["train", "--steps", "2", "--hidden", "16", "--embed", "8", "--threads", "2"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1115394 characters, vocabulary of 65"), "{err}");
    let copy = dir.path().join(".cache/charrnn-fast/tinyshakespeare/input.txt");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(shipped_tinyshakespeare()).unwrap());
    assert!(dir.path().join(".cache/charrnn-fast/tinyshakespeare/input.txt.charrnn/tokens.bin").exists());
    assert!(dir.path().join("out/model.safetensors").exists());
    assert!(stdout(&out).contains("tokens/s"), "{}", stdout(&out));
}

#[test]
fn train_rejects_bad_hyper_parameters() {
    let dir = dir_with_corpus(20_000);
    let fails = |args: &[&str], needle: &str| assert_run_fails(dir.path(), &train_with(&[args]), needle);
    fails(&["--lr=-1"], "--lr");
    fails(&["--val-frac", "1.5"], "1.5");
    fails(&["--layers", "100000000", "--hidden", "1", "--embed", "1"], "--layers must be at most 1024");
    fails(&["--hidden", "100000", "--embed", "100000"], "parameters");
    fails(&["--clip=-1"], "--clip");
    fails(&["--lr-decay", "1.5"], "--lr-decay");
    // clap's own errors (zero sizes) also exit non-zero without a panic.
    let out = run_in(dir.path(), &train_with(&[&["--hidden", "0"]]));
    assert!(!out.status.success() && !stderr(&out).contains("panicked"));
}

#[test]
fn sample_from_missing_or_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "nomodel"], "nomodel");
    std::fs::create_dir(dir.path().join("bad")).unwrap();
    std::fs::write(dir.path().join("bad/config.json"), "{ not json").unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "bad"], "config.json");
}

#[test]
fn init_from_a_model_of_another_vocabulary() {
    let dir = dir_with(&[("a.txt", small_corpus(20_000)), ("b.txt", small_corpus(20_000).to_uppercase())]);
    let tiny = [TINY_MODEL, &["--steps", "2"]].concat();
    let first = [&["train", "--data", "a.txt", "--out", "ma"][..], &tiny].concat();
    assert!(run_in(dir.path(), &first).status.success());
    let second = [&["train", "--data", "b.txt", "--init-from", "ma", "--out", "mb"][..], &tiny].concat();
    assert_run_fails(dir.path(), &second, "another vocabulary");
}

#[test]
fn a_diverging_run_stops_with_a_message_and_keeps_its_checkpoint() {
    let dir = dir_with_corpus(20_000);
    let diverging = ["--steps", "200", "--lr", "1e38", "--clip", "0", "--checkpoint-every", "1", "--out", "m"];
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &diverging]));
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: training diverged at step") && last.contains("--lr"), "{err}");
    // Whatever checkpoint was written before the divergence still loads.
    let path = dir.path().join("m/checkpoint.safetensors");
    if path.exists() {
        charrnn_engine::files::checkpoint::load_checkpoint(&path).unwrap();
    }
}

/// A positive `--val-frac` whose split cannot hold one validation batch is an error, whether
/// it rounds to some tokens or to none; only `--val-frac 0` turns validation off.
#[test]
fn a_validation_split_too_small_for_one_batch_is_an_error_unless_val_frac_is_zero() {
    let dir = dir_with_corpus(20_000);
    // 20 tokens, and 0 tokens, against batches of 8×16 = 128.
    for frac in ["0.001", "0.00001"] {
        let args = train_with(&[SMALL_MODEL, &["--steps", "2", "--val-frac", frac, "--out", "m"]]);
        let out = assert_run_fails(dir.path(), &args, "not enough validation data");
        assert!(stderr(&out).contains("or --val-frac 0 for no validation"), "{}", stderr(&out));
        assert!(!dir.path().join("m/checkpoint.safetensors").exists());
    }
    let out = run_in(dir.path(), &train_with(&[SMALL_MODEL, &["--steps", "2", "--val-frac", "0", "--out", "m"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("validation loss") && !dir.path().join("m/best").exists(), "{}", stdout(&out));
}

/// Paths are bytes on Linux, but the run's settings are JSON: a corpus path that is not UTF-8
/// is refused before any work, naming it, instead of failing after training with a checkpoint
/// that holds no settings.
#[test]
#[cfg(unix)]
fn a_corpus_path_that_is_not_utf8_is_refused_before_any_work() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("c.txt"), small_corpus(20_000)).unwrap();
    let out = command_in(dir.path())
        .arg("train")
        .arg("--data")
        .arg(bad.join("c.txt"))
        .args(SMALL_MODEL)
        .args(["--steps", "2", "--out", "m9d"])
        .output()
        .unwrap();
    assert_clean_error(&out, "bad\u{fffd}name/c.txt' is not valid UTF-8");
    assert!(!dir.path().join("m9d/checkpoint.safetensors").exists());
    // Nothing was prepared next to the corpus either.
    assert!(!bad.join("c.txt.charrnn").exists());
    // A relative path under a working directory that is not UTF-8 is the same.
    let out = command_in(&bad).args(["train", "--data", "c.txt", "--steps", "2", "--out", "m"]).output().unwrap();
    assert_clean_error(&out, "is not valid UTF-8");
    assert!(!bad.join("m/checkpoint.safetensors").exists() && !bad.join("c.txt.charrnn").exists());
}
