//! What `sample` reads and reports: a model directory, a run directory holding only its
//! checkpoint, or a checkpoint file; the prime text from a file or stdin (raw bytes for a byte
//! model); weights that are not finite; a reader that closes early; the temperature's limit.

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

/// A directory with the corpus `c.txt` and a tiny model trained for 3 steps in `m` (whose
/// checkpoint is of the same step as its model).
fn trained() -> tempfile::TempDir {
    let dir = dir_with_corpus(20_000);
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--steps", "3", "--out", "m"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// `sample` in `dir` with the seed fixed and `extra`.
fn sample(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sample", "--length", "40", "--seed", "7"];
    args.extend_from_slice(extra);
    run_in(dir, &args)
}

#[test]
fn a_run_directory_with_only_a_checkpoint_or_the_checkpoint_file_samples_its_weights() {
    let dir = trained();
    std::fs::create_dir(dir.path().join("killed")).unwrap();
    std::fs::copy(dir.path().join("m/checkpoint.safetensors"), dir.path().join("killed/checkpoint.safetensors"))
        .unwrap();
    let from_model = sample(dir.path(), &["--model", "m"]);
    assert!(from_model.status.success(), "{}", stderr(&from_model));
    assert!(stderr(&from_model).contains("loaded the model in 'm'"), "{}", stderr(&from_model));
    for source in ["killed", "killed/checkpoint.safetensors"] {
        let out = sample(dir.path(), &["--model", source]);
        assert!(out.status.success(), "{source}: {}", stderr(&out));
        assert!(stderr(&out).contains("from the checkpoint 'killed/checkpoint.safetensors'"), "{}", stderr(&out));
        assert!(stderr(&out).contains("step 3"), "{}", stderr(&out));
        // The checkpoint of step 3 holds the weights of the model saved after step 3.
        assert_eq!(stdout(&out), stdout(&from_model), "{source}");
    }
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "empty"], "holds no model");
}

#[test]
fn the_prime_text_comes_from_a_file_or_stdin() {
    let dir = trained();
    std::fs::write(dir.path().join("prime.txt"), "the king ").unwrap();
    let from_flag = sample(dir.path(), &["--model", "m", "--prime", "the king "]);
    assert!(from_flag.status.success(), "{}", stderr(&from_flag));
    assert!(stdout(&from_flag).starts_with("the king "), "{}", stdout(&from_flag));
    let from_file = sample(dir.path(), &["--model", "m", "--prime-file", "prime.txt"]);
    assert_eq!(stdout(&from_file), stdout(&from_flag), "{}", stderr(&from_file));
    let mut child = command_in(dir.path())
        .args(["sample", "--length", "40", "--seed", "7", "--model", "m", "--prime-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"the king ").unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert_eq!(stdout(&from_stdin), stdout(&from_flag), "{}", stderr(&from_stdin));

    // Both at once is a usage error; an empty or non-UTF-8 file for a character model is a
    // clean error naming it.
    let both = run_in(dir.path(), &["sample", "--model", "m", "--prime", "a", "--prime-file", "prime.txt"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "m", "--prime-file", "empty.txt"], "'empty.txt' is empty");
    std::fs::write(dir.path().join("bin.txt"), b"the \xff").unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "m", "--prime-file", "bin.txt"], "'bin.txt' is not UTF-8");
    assert_run_fails(dir.path(), &["sample", "--model", "m", "--prime-file", "nope.txt"], "nope.txt");
}

#[test]
fn a_byte_model_takes_the_prime_files_bytes_as_they_are() {
    let mut corpus = small_corpus(20_000).into_bytes();
    for i in (0..corpus.len()).step_by(97) {
        corpus[i] = 0xff;
    }
    let dir = dir_with(&[("c.txt", corpus)]);
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--bytes", "--steps", "2", "--out", "m"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(dir.path().join("prime.bin"), b"the \xffking").unwrap();
    let out = run_in(dir.path(), &["sample", "--model", "m", "--length", "20", "--prime-file", "prime.bin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.starts_with(b"the \xffking"), "{:?}", out.stdout);
    assert_eq!(out.stdout.len(), 9 + 20 + 1, "prime, 20 bytes, newline");
    // A byte the corpus never held is named as a byte.
    std::fs::write(dir.path().join("other.bin"), b"the \x01").unwrap();
    assert_run_fails(dir.path(), &["sample", "--model", "m", "--prime-file", "other.bin"], "0x01 is not in it");
}

/// Overwrites the first value of tensor `name` of the safetensors file `path` with `value`.
fn patch_tensor(path: &Path, name: &str, value: f32) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + header_len + start;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor_and_the_file() {
    let dir = trained();
    patch_tensor(&dir.path().join("m/model.safetensors"), "decoder.bias", f32::NAN);
    let needle = "model.safetensors' is not a valid charrnn-fast model file: tensor 'decoder.bias' holds 1 non-finite value (the first, NaN";
    assert_run_fails(dir.path(), &["sample", "--model", "m"], needle);
    assert_run_fails(dir.path(), &["sample", "--model", "m", "--beam", "2"], needle);
    assert_run_fails(
        dir.path(),
        &train_with(&[TINY_MODEL, &["--steps", "3", "--init-from", "m", "--out", "again"]]),
        needle,
    );
    // A checkpoint's optimiser moments too: resuming would train on them.
    patch_tensor(&dir.path().join("m/checkpoint.safetensors"), "adam.v", f32::INFINITY);
    assert_run_fails(dir.path(), &["train", "--resume", "m", "--steps", "5"], "tensor 'adam.v' holds 1 non-finite");
    assert_run_fails(dir.path(), &["sample", "--model", "m/checkpoint.safetensors"], "'adam.v'");
}

/// Starts `sample` with `extra`, reads 16 bytes of its output, closes it, and returns stderr.
fn read_then_close(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["sample", "--model", "m", "--threads", "1"];
    args.extend_from_slice(extra);
    let mut child = spawn_in(dir, &args);
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success() && !err.contains("error"), "{extra:?}: {err}");
    err
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    let rest = text.split(before).nth(1).unwrap_or_else(|| panic!("no {before:?} in {text}"));
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn a_reader_that_closes_early_gets_what_was_written_reported() {
    let dir = trained();
    // One stream: generation stops at the refused write.
    let err = read_then_close(dir.path(), &["--length", "5000000"]);
    let written = number_after(&err, "sampled ");
    assert!((15..5_000_000).contains(&written), "{err}");
    assert!(err.contains("the output was closed before the --length of 5000000"), "{err}");
    // Several samples and a beam are generated first, then written.
    let err = read_then_close(dir.path(), &["--length", "400000", "--num-samples", "2"]);
    let written = number_after(&err, "the output was closed after ");
    assert!(written < 800_000 && err.contains(&format!("after {written} of the 800000 were written")), "{err}");
    let err = read_then_close(dir.path(), &["--length", "400000", "--beam", "2"]);
    let written = number_after(&err, "the output was closed after ");
    assert!(written < 400_000, "{err}");
    // A reader that takes everything sees no such note.
    let out = sample(dir.path(), &["--model", "m"]);
    assert!(stderr(&out).contains("sampled 40 characters") && !stderr(&out).contains("closed"), "{}", stderr(&out));
}

#[test]
fn a_tiny_positive_temperature_is_refused_naming_the_limit() {
    let dir = trained();
    let out = assert_run_fails(dir.path(), &["sample", "--model", "m", "--temperature", "1e-40"], "at least 2.94e-39");
    assert!(!stderr(&out).contains("positive"), "{}", stderr(&out));
    let out = sample(dir.path(), &["--model", "m", "--temperature", "3e-39"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `--model` naming a file that is not a checkpoint (a large text file, say) is refused by its
/// header, read alone, before its size is weighed against memory or its bytes are read.
#[test]
fn a_model_file_that_is_not_a_checkpoint_is_refused_by_its_header() {
    let dir = dir_with(&[("big.txt", "not a checkpoint\n".repeat(100_000))]);
    // Less memory than three times the file: weighed first, it would be "too large".
    let out = command_in(dir.path())
        .args(["sample", "--model", "big.txt"])
        .env("CHARRNN_TEST_AVAILABLE_MEMORY", "2000000")
        .output()
        .unwrap();
    assert_clean_error(&out, "cannot load the checkpoint 'big.txt': 'big.txt' is not a valid charrnn-fast model file");
    assert!(!stderr(&out).contains("too large"), "{}", stderr(&out));
}
