//! Bad input to `prepare`, `train` and `sample`: a one-line error and a non-zero exit, never a
//! panic.

mod common;
use common::*;

#[test]
fn prepare_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["prepare", "--data", "nope.txt"]);
    assert_clean_error(&out, "nope.txt");
}

#[test]
fn prepare_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    let out = run_in(dir.path(), &["prepare", "--data", "empty.txt"]);
    assert_clean_error(&out, "empty");
}

#[test]
fn prepare_file_shorter_than_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.txt"), small_corpus(1000)).unwrap();
    let out = run_in(dir.path(), &["prepare", "--data", "short.txt"]);
    // 1000 symbols, 950 for training; 50×50 needs 2500.
    assert_clean_error(&out, "2500");
    // The validation split gets its own message.
    std::fs::write(dir.path().join("mid.txt"), small_corpus(3000)).unwrap();
    let out = run_in(dir.path(), &["prepare", "--data", "mid.txt"]);
    assert_clean_error(&out, "validation");
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
    let out = run_in(dir.path(), &["prepare", "--data", "bin.txt"]);
    assert_clean_error(&out, "1234");
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
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), small_corpus(20_000)).unwrap();
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--lr=-1"]);
    assert_clean_error(&out, "--lr");
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--val-frac", "1.5"]);
    assert_clean_error(&out, "1.5");
    let out =
        run_in(dir.path(), &["train", "--data", "c.txt", "--layers", "100000000", "--hidden", "1", "--embed", "1"]);
    assert_clean_error(&out, "--layers must be at most 1024");
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--hidden", "100000", "--embed", "100000"]);
    assert_clean_error(&out, "parameters");
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--clip=-1"]);
    assert_clean_error(&out, "--clip");
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--lr-decay", "1.5"]);
    assert_clean_error(&out, "--lr-decay");
    // clap's own errors (zero sizes) also exit non-zero without a panic.
    let out = run_in(dir.path(), &["train", "--data", "c.txt", "--hidden", "0"]);
    assert!(!out.status.success() && !stderr(&out).contains("panicked"));
}

#[test]
fn sample_from_missing_or_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["sample", "--model", "nomodel"]);
    assert_clean_error(&out, "nomodel");
    std::fs::create_dir(dir.path().join("bad")).unwrap();
    std::fs::write(dir.path().join("bad/config.json"), "{ not json").unwrap();
    let out = run_in(dir.path(), &["sample", "--model", "bad"]);
    assert_clean_error(&out, "config.json");
}

#[test]
fn init_from_a_model_of_another_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), small_corpus(20_000)).unwrap();
    std::fs::write(dir.path().join("b.txt"), small_corpus(20_000).to_uppercase()).unwrap();
    let tiny = ["--hidden", "8", "--embed", "4", "--batch", "4", "--seq-len", "8", "--steps", "2"];
    let mut first = vec!["train", "--data", "a.txt", "--out", "ma"];
    first.extend(tiny);
    assert!(run_in(dir.path(), &first).status.success());
    let mut second = vec!["train", "--data", "b.txt", "--init-from", "ma", "--out", "mb"];
    second.extend(tiny);
    let out = run_in(dir.path(), &second);
    assert_clean_error(&out, "another vocabulary");
}

#[test]
fn a_diverging_run_stops_with_a_message_and_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), small_corpus(20_000)).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "train",
            "--data",
            "c.txt",
            "--hidden",
            "8",
            "--embed",
            "4",
            "--batch",
            "4",
            "--seq-len",
            "8",
            "--steps",
            "200",
            "--lr",
            "1e38",
            "--clip",
            "0",
            "--checkpoint-every",
            "1",
            "--out",
            "m",
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: training diverged at step") && last.contains("--lr"), "{err}");
    // Whatever checkpoint was written before the divergence still loads.
    let path = dir.path().join("m/checkpoint.safetensors");
    if path.exists() {
        charrnn_engine::checkpoint::load_checkpoint(&path).unwrap();
    }
}
