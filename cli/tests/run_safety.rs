//! No run lost, mixed or misreported: one run per output directory, the resume contract
//! (where it continues, which flags it takes, which corpus), closed output streams, file-size
//! limits, stale temporary files, and what a stopped run reports.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn logged_steps(dir: &Path) -> Vec<u64> {
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    log.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
}

fn checkpoint_step(dir: &Path) -> u64 {
    charrnn_engine::files::checkpoint::load_checkpoint(&dir.join("checkpoint.safetensors")).unwrap().meta.step
}

fn config_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

/// A second run on a directory in use fails at once, naming the holder; the first is unharmed
/// (its log has each of its steps once, in order) and, once it has ended, the lock is free.
#[test]
fn a_second_run_on_a_held_out_fails_and_the_first_is_unharmed() {
    let dir = dir_with_corpus(30_000);
    let first = start_long_run(dir.path(), "1000000", "m", &[], 3);
    let started = Instant::now();
    let second = run_in(dir.path(), &train_args(&["--steps", "5", "--out", "m"]));
    assert_clean_error(&second, &format!("'m' is in use by another charrnn-fast run (pid {})", first.id()));
    assert!(stderr(&second).contains("choose another --out"), "{}", stderr(&second));
    assert!(started.elapsed() < Duration::from_secs(10), "the refusal took {:?}", started.elapsed());
    interrupt(&first);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let step = checkpoint_step(&dir.path().join("m"));
    assert_eq!(logged_steps(&dir.path().join("m")), (1..=step).collect::<Vec<_>>());
    // A killed run leaves its lock file behind, which does not block.
    let killed = start_long_run(dir.path(), "1000000", "k", &[], 2);
    Command::new("kill").args(["-KILL", &killed.id().to_string()]).status().unwrap();
    let _ = killed.wait_with_output();
    let again = run_in(dir.path(), &train_args(&["--steps", "3", "--out", "k", "--force"]));
    assert!(again.status.success(), "{}", stderr(&again));
}

/// `--resume DIR` alone continues in DIR; `./out` is never touched.
#[test]
fn resume_alone_continues_in_its_directory() {
    let dir = dir_with_corpus(30_000);
    let first = run_in(dir.path(), &train_args(&["--steps", "6", "--out", "int"]));
    assert!(first.status.success(), "{}", stderr(&first));
    let resumed = run_in(dir.path(), &["train", "--resume", "int", "--steps", "10"]);
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("resumed from 'int' into 'int'"), "{err}");
    assert!(err.contains("changed from the checkpoint: --steps 10 (was 6)"), "{err}");
    assert!(!dir.path().join("out").exists());
    assert_eq!(checkpoint_step(&dir.path().join("int")), 10);
    assert_eq!(logged_steps(&dir.path().join("int")), (1..=10).collect::<Vec<_>>());
    // Resumed into another directory, the new one gets the whole log; the old one is unchanged.
    let moved = run_in(dir.path(), &["train", "--resume", "int", "--steps", "12", "--out", "next"]);
    assert!(moved.status.success(), "{}", stderr(&moved));
    assert_eq!(logged_steps(&dir.path().join("next")), (1..=12).collect::<Vec<_>>());
    assert_eq!(checkpoint_step(&dir.path().join("int")), 10);
    assert!(dir.path().join("next/best/model.safetensors").exists());
    // A refused resume into a new directory leaves nothing there; a directory without a
    // checkpoint is no resume.
    let done = run_in(dir.path(), &["train", "--resume", "int", "--out", "later"]);
    assert_clean_error(&done, "nothing left to do");
    assert!(!dir.path().join("later").exists());
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let empty = run_in(dir.path(), &["train", "--resume", "empty"]);
    assert_clean_error(&empty, "cannot resume from 'empty': it holds no checkpoint.safetensors");
    assert_eq!(std::fs::read_dir(dir.path().join("empty")).unwrap().count(), 0);
}

/// An --out holding another run is refused without --force, and cleared with it: the new log
/// holds the new run alone.
#[test]
fn an_out_holding_another_run_is_refused_unless_forced() {
    let dir = dir_with_corpus(30_000);
    assert!(run_in(dir.path(), &train_args(&["--steps", "8", "--out", "m"])).status.success());
    std::fs::write(dir.path().join("m/notes.txt"), "mine").unwrap();
    let again = run_in(dir.path(), &train_args(&["--steps", "3", "--cell", "gru", "--out", "m"]));
    assert_clean_error(&again, "'m' holds another run (checkpoint.safetensors)");
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(checkpoint_step(&dir.path().join("m")), 8);
    // --force clears only a run that can start: a failing one leaves the old run whole.
    for bad in [&["--data", "nosuch.txt"][..], &["--steps", "3", "--batch", "100000"][..]] {
        let mut args = train_args(&["--out", "m", "--force"]);
        args.extend_from_slice(bad);
        let failed = run_in(dir.path(), &args);
        assert!(!failed.status.success() && !stderr(&failed).contains("cleared"), "{}", stderr(&failed));
        assert_eq!(checkpoint_step(&dir.path().join("m")), 8);
        assert_eq!(logged_steps(&dir.path().join("m")).len(), 8);
    }
    let forced = run_in(dir.path(), &train_args(&["--steps", "3", "--cell", "gru", "--out", "m", "--force"]));
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(logged_steps(&dir.path().join("m")), [1, 2, 3]);
    assert_eq!(config_json(&dir.path().join("m"))["model"]["cell"], "gru");
    // Only the run's own files were cleared.
    assert_eq!(std::fs::read_to_string(dir.path().join("m/notes.txt")).unwrap(), "mine");
}

/// Flags that contradict the checkpoint (or the --init-from model) are errors naming them;
/// those that may change are applied and said.
#[test]
fn contradicting_flags_are_errors_and_changeable_ones_are_applied() {
    let dir = dir_with_corpus(30_000);
    assert!(run_in(dir.path(), &train_args(&["--steps", "4", "--out", "m"])).status.success());
    let bad = run_in(dir.path(), &["train", "--resume", "m", "--hidden", "64", "--cell", "gru", "--lr", "0.1"]);
    assert_clean_error(&bad, "--cell gru (it has lstm), --hidden 64 (it has 24) contradict the checkpoint");
    let batch = run_in(dir.path(), &["train", "--resume", "m", "--steps", "6", "--batch", "4"]);
    assert_clean_error(&batch, "--batch 4 (it has 8)");
    // The same values as the checkpoint's are no contradiction.
    let same = run_in(dir.path(), &["train", "--resume", "m", "--steps", "6", "--hidden", "24", "--lr", "0.01"]);
    let err = stderr(&same);
    assert!(same.status.success(), "{err}");
    assert!(err.contains("changed from the checkpoint: --lr 0.01 (was 0.002), --steps 6 (was 4)"), "{err}");
    assert!(err.contains("Adam lr 0.01"), "{err}");
    assert_eq!(config_json(&dir.path().join("m"))["training"]["lr"], 0.01);

    let init = ["train", "--data", "c.txt", "--init-from", "m", "--steps", "2", "--out", "n"];
    let out = run_in(dir.path(), &[&init[..], &["--hidden", "32"]].concat());
    assert_clean_error(&out, "--hidden 32 (it has 24) contradicts the model of --init-from");
    let init = run_in(dir.path(), &[&init[..], &["--forget-bias", "1"]].concat());
    assert_clean_error(&init, "--forget-bias");
}

/// The corpus path is stored absolute, so a run resumes from any directory; a moved or changed
/// corpus is named, with --data as the way out.
#[test]
fn resume_from_another_directory_and_a_moved_or_changed_corpus() {
    let dir = dir_with_corpus(30_000);
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    assert!(run_in(dir.path(), &train_args(&["--steps", "4", "--out", "m"])).status.success());
    let elsewhere = dir.path().join("elsewhere");
    let resumed = run_in(&elsewhere, &["train", "--resume", "../m", "--steps", "6"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(checkpoint_step(&dir.path().join("m")), 6);
    let data = config_json(&dir.path().join("m"))["training"]["data"].as_str().unwrap().to_owned();
    assert!(Path::new(&data).is_absolute(), "{data}");

    std::fs::rename(dir.path().join("c.txt"), dir.path().join("moved.txt")).unwrap();
    let missing = run_in(&elsewhere, &["train", "--resume", "../m", "--steps", "8"]);
    assert_clean_error(&missing, "is missing (moved or deleted?); pass --data FILE");
    let found = run_in(&elsewhere, &["train", "--resume", "../m", "--steps", "8", "--data", "../moved.txt"]);
    assert!(found.status.success(), "{}", stderr(&found));

    // Same characters, other text: the prepared tokens differ.
    let mut text = small_corpus(30_000).into_bytes();
    text.reverse();
    std::fs::write(dir.path().join("other.txt"), text).unwrap();
    let changed = run_in(dir.path(), &["train", "--resume", "m", "--steps", "10", "--data", "other.txt"]);
    assert_clean_error(&changed, "is not the one the run in 'm' was trained on");
}

/// Closed stdout and stderr (`train | head`, a terminal gone) never stop a run: it finishes
/// and saves its model.
#[test]
fn closed_output_streams_do_not_lose_the_run() {
    let dir = dir_with_corpus(30_000);
    let mut child = spawn_in(dir.path(), &train_args(&["--steps", "30", "--eval-every", "10", "--out", "m"]));
    // Close both read ends at once, as `| head -0` would.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("m/model.safetensors").exists());
    assert_eq!(checkpoint_step(&dir.path().join("m")), 30);
}

/// A configuration that will not fit in memory is refused before anything is allocated or
/// written (the test pins what the machine reports to 16 GB, so it reads the same anywhere).
#[test]
fn a_configuration_too_large_for_memory_is_refused_at_once() {
    let dir = dir_with_corpus(30_000);
    let started = Instant::now();
    let out = bin()
        .current_dir(dir.path())
        .env("CHARRNN_TEST_AVAILABLE_MEMORY", "16000000000")
        .args(train_with(&[&["--hidden", "12000", "--batch", "8", "--seq-len", "16", "--steps", "1"]]))
        .output()
        .unwrap();
    assert_clean_error(&out, "GB, but 16.0 GB is available; use a smaller --hidden, --batch or --seq-len");
    assert!(stderr(&out).contains("this configuration needs"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(!dir.path().join("out").exists(), "a refused run left its directory");
}

/// More threads than CPUs are capped with a note, in train and in bench (whose peak figure
/// then counts real cores).
#[test]
fn threads_beyond_the_cpus_are_capped() {
    let dir = dir_with_corpus(30_000);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let too_many_threads = ["--threads", "1000", "--steps", "1", "--hidden", "8", "--batch", "8", "--seq-len", "16"];
    let out = run_in(dir.path(), &train_with(&[&too_many_threads]));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("note: --threads 1000 is more than the {cpus}")), "{err}");
    let threads = if cpus == 1 { "1 thread".to_owned() } else { format!("{cpus} threads") };
    assert!(err.contains(&format!("clip 5, f32 products, {threads}")), "{err}");
    let bench = run_in(dir.path(), &["bench", "--data", "c.txt", "--threads", "1000", "--steps", "1", "--warmup", "0"]);
    assert!(bench.status.success(), "{}", stderr(&bench));
    assert!(stdout(&bench).contains(&format!("{cpus} × one")), "{}", stdout(&bench));
    assert!(stdout(&bench).contains("over 1 step (min"), "{}", stdout(&bench));
    assert!(stderr(&bench).contains("bench: seed config"), "{}", stderr(&bench));
}

/// Under a file-size limit the checkpoint write fails like a full disk (no death by
/// SIGXFSZ): one error line naming the cause, the checkpoint that is intact and the command
/// that continues from it; no temporary file is left.
#[test]
fn a_file_size_limit_is_an_error_that_names_the_intact_checkpoint() {
    let dir = dir_with_corpus(30_000);
    let model = ["--hidden", "64", "--embed", "16", "--batch", "8", "--seq-len", "16", "--threads", "2"];
    assert!(run_in(dir.path(), &train_with(&[&["--steps", "4", "--out", "m"], &model])).status.success());
    let size = std::fs::metadata(dir.path().join("m/checkpoint.safetensors")).unwrap().len();
    // A limit (bash's `ulimit -f` counts KiB) below the checkpoint's size (weights and two
    // moments) but above the model's (weights).
    let limit_kib = size * 2 / 3 / 1024;
    let out = with_file_size_limit(
        dir.path(),
        limit_kib,
        "train --resume m --steps 20 --checkpoint-every 2 --eval-every 100",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: cannot write 'm/checkpoint.safetensors': File too large"), "{err}");
    assert!(
        last.ends_with("the checkpoint of step 4 in 'm' is intact: continue with `charrnn-fast train --resume m`"),
        "{err}"
    );
    assert_eq!(checkpoint_step(&dir.path().join("m")), 4);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");

    // Resumed into another directory, the intact checkpoint is the one resumed from until
    // the new directory has one of its own.
    let out = with_file_size_limit(dir.path(), limit_kib, "train --resume m --out n --steps 20 --checkpoint-every 2");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.trim_end()
            .ends_with("the checkpoint of step 4 in 'm' is intact: continue with `charrnn-fast train --resume m`"),
        "{err}"
    );

    // Preparing a corpus larger than the limit fails the same way, leaving no temporary file.
    std::fs::write(dir.path().join("big.txt"), small_corpus(4 * size as usize)).unwrap();
    let out = with_file_size_limit(dir.path(), limit_kib, "prepare --data big.txt --batch 8 --seq-len 16");
    assert_clean_error(&out, "File too large");
    let cache = dir.path().join("big.txt.charrnn");
    let left: Vec<String> = std::fs::read_dir(&cache)
        .map_or(vec![], |d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect());
    assert!(!left.iter().any(|n| n.contains(".tmp-")), "{left:?}");
}

/// Runs `charrnn-fast ARGS` (split on spaces) in `dir` under bash's `ulimit -f KIB`.
fn with_file_size_limit(dir: &Path, kib: u64, args: &str) -> std::process::Output {
    let script = format!("ulimit -f {kib} && exec \"$0\" {args}");
    Command::new("bash").current_dir(dir).args(["-c", &script, env!("CARGO_BIN_EXE_charrnn-fast")]).output().unwrap()
}

/// Temporary files that a killed run left are removed by the next run in that directory.
#[test]
fn stale_temporary_files_are_removed() {
    let dir = dir_with_corpus(30_000);
    assert!(run_in(dir.path(), &train_args(&["--steps", "4", "--eval-every", "2", "--out", "m"])).status.success());
    let stale = [
        dir.path().join("m/.checkpoint.safetensors.tmp-29496-0"),
        dir.path().join("m/best/.model.safetensors.tmp-29496-1"),
    ];
    for path in &stale {
        std::fs::write(path, b"half a file").unwrap();
    }
    let resumed = run_in(dir.path(), &["train", "--resume", "m", "--steps", "6"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("removed 2 temporary files left by an interrupted run"), "{}", stderr(&resumed));
    for path in &stale {
        assert!(!path.exists(), "{}", path.display());
    }
}

/// After Ctrl-C the figures are the run's own: the validation loss is labelled with the step
/// it was measured after, in the output and in config.json (an abandoned validation is not
/// one).
#[test]
fn ctrl_c_reports_the_step_of_its_last_validation_loss() {
    let dir = dir_with_corpus(30_000);
    let child = start_long_run(dir.path(), "1000000", "m", &["--eval-every", "7"], 10);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let stopped = checkpoint_step(&dir.path().join("m"));
    // The last evaluation every 7 steps; but a Ctrl-C that lands in the validation of the step
    // it stops after abandons that validation, and the one before is the last.
    let mut evaluated = stopped / 7 * 7;
    if evaluated == stopped && text.contains(&format!("after step {}\n", stopped - 7)) {
        evaluated -= 7;
    }
    let word = if evaluated == stopped { "final" } else { "last" };
    assert!(text.contains(&format!("{word} validation loss")), "{text}");
    assert!(text.contains("nats/char") && text.contains(&format!("after step {evaluated}\n")), "{text}");
    assert!(text.contains(&format!("stopped at step {stopped} of 1000000")), "{text}");
    let config = config_json(&dir.path().join("m"));
    assert_eq!(config["training"]["steps"], stopped);
    assert_eq!(config["training"]["val_loss_step"], evaluated);
}

/// Byte-level runs speak of bytes.
#[test]
fn byte_level_runs_report_per_byte() {
    let dir = dir_with_corpus(30_000);
    let out = run_in(dir.path(), &train_args(&["--bytes", "--steps", "3", "--out", "m"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nats/byte") && stdout(&out).contains("bits/byte"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("/char") && !stderr(&out).contains("/char"), "{}", stderr(&out));
}

/// An --out or a cache that cannot be written fails before any training step, naming --cache
/// for the cache.
#[test]
fn unwritable_out_or_cache_fail_before_training() {
    let dir = dir_with_corpus(30_000);
    let out = run_in(dir.path(), &train_args(&["--out", "c.txt/m"]));
    assert_clean_error(&out, "cannot create --out 'c.txt/m'");
    let out = run_in(dir.path(), &train_args(&["--cache", "c.txt/cache", "--out", "m"]));
    assert_clean_error(&out, "pass --cache DIR to keep it in a writable directory");
    assert!(!dir.path().join("m").exists());
}
