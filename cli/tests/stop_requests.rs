//! Stop requests (Ctrl-C, SIGTERM): signals a moment apart are one request, which saves; a
//! second Ctrl-C a second later stops at once; a request during validation is seen at once.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn checkpoint_step(dir: &Path) -> u64 {
    charrnn_engine::files::checkpoint::load_checkpoint(&dir.join("checkpoint.safetensors")).unwrap().meta.step
}

fn logged_steps(dir: &Path) -> Vec<u64> {
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    log.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
}

/// `timeout` signals the process and then its group, a terminal may deliver SIGINT twice: two
/// signals a few milliseconds apart are one request to stop, which saves and exits 0 (they
/// used to count as a second Ctrl-C, which exits 130 without saving).
#[test]
fn signals_a_moment_apart_are_one_stop_request() {
    let dir = dir_with_corpus(30_000);
    for (round, (name, gap_ms)) in
        [("INT", 0), ("INT", 2), ("INT", 10), ("INT", 200), ("TERM", 5)].into_iter().enumerate()
    {
        let out_dir = format!("m{round}");
        let child = start_long_run(dir.path(), "100000000", &out_dir, &[], 2);
        let pid = child.id().to_string();
        if gap_ms == 0 {
            // Both from one `kill`: as close together as signals come (the kernel may merge them
            // into one; the other gaps are two deliveries for certain).
            assert!(Command::new("kill").args([&format!("-{name}"), &pid, &pid]).status().unwrap().success());
        } else {
            signal(&child, name);
            std::thread::sleep(Duration::from_millis(gap_ms));
            signal(&child, name);
        }
        let (out, _) = wait_at_most(child, Duration::from_secs(60));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "SIG{name} twice {gap_ms} ms apart: {err}");
        let step = checkpoint_step(&dir.path().join(&out_dir));
        assert!(stdout(&out).contains(&format!("stopped at step {step} of 100000000")), "{}", stdout(&out));
        // The last step shows in the progress lines, whatever --log-every.
        let last_line = err.lines().rfind(|l| l.starts_with("step ")).unwrap_or_default();
        assert!(last_line.starts_with(&format!("step {step}/")), "{err}");
    }
}

/// A second Ctrl-C more than a second after the first is the user's: it stops at once, with
/// exit status 130, saying what is on disk.
#[test]
fn a_second_ctrl_c_a_second_later_stops_at_once() {
    let dir = dir_with_corpus(100_000);
    // Steps long enough (a second or more) that the run is still in step 2 when the second
    // Ctrl-C comes; the process is held stopped in between, so that the step cannot end first
    // however fast the machine.
    let args = train_with(&[
        &["--hidden", "256", "--embed", "16", "--batch", "16", "--seq-len", "2000", "--threads", "1"],
        &["--val-frac", "0", "--steps", "1000", "--checkpoint-every", "0", "--out", "m"],
    ]);
    let child = spawn_in(dir.path(), &args);
    wait_for_log_rows(&dir.path().join("m"), 1);
    interrupt(&child);
    // Time for the handler thread to take it (microseconds when the machine is idle; ample on a
    // loaded one), far less than the step.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "STOP");
    std::thread::sleep(Duration::from_millis(1100));
    interrupt(&child);
    signal(&child, "CONT");
    let (out, took) = wait_at_most(child, Duration::from_secs(60));
    let err = stderr(&out);
    // Stopped in step 2, which does not end (its row is not logged). The time allows for a
    // loaded machine.
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopping now, without saving; no checkpoint had been written yet"), "{err}");
    assert_eq!(logged_steps(&dir.path().join("m")), [1]);
    assert!(took < Duration::from_secs(3), "took {took:?} to stop");
}

/// Ctrl-C during a long validation is seen at once: the validation is abandoned (its loss is
/// reported nowhere), the step checkpointed, the run exits 0 and resumes. It used to wait for
/// the whole validation split (on a large corpus, minutes).
#[test]
fn ctrl_c_during_validation_stops_at_once() {
    // A validation split of 5.4 MB in batches of 2×4 symbols: several seconds to evaluate, so
    // that the Ctrl-C lands in step 2's validation even on a loaded machine.
    let dir = dir_with(&[("v.txt", small_corpus(6_000_000))]);
    let model = ["--hidden", "8", "--embed", "4", "--batch", "2", "--seq-len", "4", "--threads", "1"];
    let args = [
        &["train", "--data", "v.txt"][..],
        &model,
        &["--val-frac", "0.9", "--eval-every", "1", "--steps", "1000000", "--checkpoint-every", "0", "--out", "m"],
    ]
    .concat();
    let child = spawn_in(dir.path(), &args);
    // The log has step 1 once its validation is done: step 2's is then under way.
    wait_for_log_rows(&dir.path().join("m"), 1);
    interrupt(&child);
    let (out, took) = wait_at_most(child, Duration::from_secs(60));
    let (err, text) = (stderr(&out), stdout(&out));
    assert!(out.status.success(), "{err}");
    // Within a validation batch or two, and the checkpoint write (seconds allow for a loaded
    // machine; the rest of the validation takes seconds more, and the lines below tell).
    assert!(took < Duration::from_secs(4), "took {took:?} to stop");
    assert_eq!(checkpoint_step(&dir.path().join("m")), 2);
    assert!(text.contains("last validation loss") && text.contains("after step 1\n"), "{text}");
    assert!(text.contains("stopped at step 2 of 1000000"), "{text}");
    assert!(!err.contains("validation after step 2"), "{err}");
    let resumed = run_in(dir.path(), &["train", "--resume", "m", "--steps", "3"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("steps 3..=3"), "{}", stderr(&resumed));
}

/// Ctrl-C while the corpus is being prepared (minutes for a large one) stops at once, with exit
/// status 130 and nothing left behind: no temporary file, no cache that a later run would
/// trust, no --out. (It used to kill the process mid-write, leaving its temporary file.)
#[test]
fn ctrl_c_while_preparing_stops_at_once_and_leaves_nothing() {
    let dir = dir_with(&[("big.txt", small_corpus(30_000_000))]);
    let cache = dir.path().join("big.txt.charrnn");
    let temporaries = || {
        std::fs::read_dir(&cache).map_or(0, |entries| {
            entries.flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).count()
        })
    };
    let args = [&["train", "--data", "big.txt"][..], TINY_MODEL, &["--steps", "3", "--out", "m"]].concat();
    let child = spawn_in(dir.path(), &args);
    // The token file is being written: hold the process there while Ctrl-C arrives.
    let started = std::time::Instant::now();
    while temporaries() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the token file was never written");
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, "STOP");
    interrupt(&child);
    signal(&child, "CONT");
    let (out, took) = wait_at_most(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?} to stop");
    assert!(err.contains("stopped before training began: nothing was trained or saved"), "{err}");
    assert_eq!(temporaries(), 0);
    assert!(!cache.join("meta.json").exists(), "a cache that looks complete");
    assert!(!dir.path().join("m").exists(), "--out left behind");
    let again = run_in(dir.path(), &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("(built cache"), "{}", stderr(&again));
}
