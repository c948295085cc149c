//! What the program writes replaces only a regular file it may replace: a device, a FIFO or a
//! directory at an output path is refused before any work, a symbolic link is written through,
//! and an output that cannot be written is found before the work it would record.

mod common;
use common::*;

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;

const BENCH: &[&str] = &["bench", "--data", "c.txt", "--threads", "1", "--steps", "1", "--warmup", "0", "--trace"];

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// `bench --trace` on a FIFO, or on a link to a character device (/dev/null, refused before
/// anything is written to it), is an error before the benchmark runs, and the node is left as
/// it was; a link to a regular file is written through and stays a link.
#[test]
fn bench_trace_refuses_a_device_or_fifo_and_follows_a_link() {
    let dir = dir_with_corpus(30_000);
    mkfifo(&dir.path().join("fifo.json"));
    let out = run_in(dir.path(), &[BENCH, &["fifo.json"]].concat());
    assert_clean_error(&out, "cannot write the trace 'fifo.json': 'fifo.json' is a FIFO (named pipe)");
    assert!(!stdout(&out).contains("tokens/s"), "the benchmark ran: {}", stdout(&out));
    assert!(std::fs::symlink_metadata(dir.path().join("fifo.json")).unwrap().file_type().is_fifo());

    symlink("/dev/null", dir.path().join("null.json")).unwrap();
    let out = run_in(dir.path(), &[BENCH, &["null.json"]].concat());
    assert_clean_error(&out, "'null.json' (a symbolic link to '/dev/null') is a character device");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::write(dir.path().join("traces/t.json"), b"old").unwrap();
    symlink("traces/t.json", dir.path().join("t.json")).unwrap();
    let out = run_in(dir.path(), &[BENCH, &["t.json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(dir.path().join("t.json")).unwrap().file_type().is_symlink());
    let text = std::fs::read_to_string(dir.path().join("traces/t.json")).unwrap();
    assert!(text.contains("traceEvents"), "{text}");
}

/// A trace in a directory where no file can be created (/proc: not even root can) is refused
/// before the benchmark runs, not after it with its results lost.
#[test]
fn bench_trace_in_an_unwritable_directory_fails_before_the_benchmark() {
    let dir = dir_with_corpus(30_000);
    let out = run_in(dir.path(), &[BENCH, &["/proc/t.json"]].concat());
    assert_clean_error(&out, "cannot write the trace '/proc/t.json': ");
    assert!(!stdout(&out).contains("tokens/s"), "the benchmark ran: {}", stdout(&out));
}

/// `sample --output-dir DIR --force` replaces earlier samples, but a FIFO where a sample goes
/// is refused before sampling, and left.
#[test]
fn sample_force_refuses_a_fifo_in_the_output_directory() {
    let dir = dir_with_corpus(20_000);
    let out = run_in(dir.path(), &train_with(&[TINY_MODEL, &["--steps", "1", "--out", "m"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::create_dir(dir.path().join("s")).unwrap();
    mkfifo(&dir.path().join("s/sample-1.txt"));
    let sample = ["sample", "--model", "m", "--num-samples", "2", "--length", "10", "--output-dir", "s", "--force"];
    let out = run_in(dir.path(), &sample);
    assert_clean_error(&out, "cannot write 's/sample-1.txt': 's/sample-1.txt' is a FIFO (named pipe)");
    assert!(std::fs::symlink_metadata(dir.path().join("s/sample-1.txt")).unwrap().file_type().is_fifo());
    assert!(!dir.path().join("s/sample-0.txt").exists());
}
