//! Checkpoints: exact resume, Ctrl-C, and SIGKILL at any instant never leaving a broken
//! checkpoint.

mod common;
use common::*;

use std::time::Duration;

/// 2×N steps straight and N steps, save, resume, N more steps give bit-identical weights.
#[test]
fn resume_is_bit_identical() {
    resume_is_bit_identical_in("f32");
}

/// The same in mixed precision: the checkpoint records it and the resumed run keeps it.
#[test]
fn resume_in_bf16_is_bit_identical() {
    resume_is_bit_identical_in("bf16");
}

fn resume_is_bit_identical_in(precision: &str) {
    let dir = dir_with_corpus(30_000);
    let run = |steps: &str, out: &str| {
        run_in(
            dir.path(),
            &train_args(&["--precision", precision, "--steps", steps, "--eval-every", "15", "--out", out]),
        )
    };
    let straight = run("40", "a");
    assert!(straight.status.success(), "{}", stderr(&straight));
    let first = run("20", "b");
    assert!(first.status.success(), "{}", stderr(&first));
    let resumed = run_in(dir.path(), &["train", "--resume", "b", "--steps", "40", "--threads", "2", "--out", "b"]);
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("steps 21..=40"), "{err}");
    assert!(err.contains(&format!("{precision} products")), "{err}");
    let wa = std::fs::read(dir.path().join("a/model.safetensors")).unwrap();
    let wb = std::fs::read(dir.path().join("b/model.safetensors")).unwrap();
    assert!(wa == wb, "weights differ after resume");
    // The log has every step once, and the plot and best model exist.
    let log = std::fs::read_to_string(dir.path().join("b/log.csv")).unwrap();
    let steps: Vec<u64> = log.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect();
    assert_eq!(steps, (1..=40).collect::<Vec<_>>());
    assert!(dir.path().join("b/loss.svg").exists());
    assert!(dir.path().join("b/best/model.safetensors").exists());
    // Nothing left to do is a clear error.
    let again = run_in(dir.path(), &["train", "--resume", "b", "--out", "b"]);
    assert_clean_error(&again, "nothing left to do");
}

/// Ctrl-C finishes the step, writes a checkpoint and exits 0; the run then resumes.
#[test]
fn interrupt_saves_and_resume_finishes() {
    let dir = dir_with_corpus(30_000);
    // Wait until training has started (the log has rows), then interrupt.
    let child = start_long_run(dir.path(), "100000", "m", &[], 4);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("continue with `charrnn-fast train --resume m`"), "{text}");
    let ck = charrnn_engine::files::checkpoint::load_checkpoint(&dir.path().join("m/checkpoint.safetensors")).unwrap();
    let step = ck.meta.step;
    assert!(step >= 4, "checkpoint at step {step}");
    let target = (step + 3).to_string();
    let resumed = run_in(dir.path(), &["train", "--resume", "m", "--steps", &target, "--out", "m"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
}

/// SIGKILL at arbitrary instants, checkpointing every step: whatever checkpoint is on disk
/// always loads.
#[test]
fn sigkill_never_leaves_a_broken_checkpoint() {
    let dir = dir_with_corpus(30_000);
    let path = dir.path().join("m/checkpoint.safetensors");
    let mut loaded = 0;
    for round in 0..12u64 {
        let mut child = bin()
            .current_dir(dir.path())
            .args(train_args(&["--steps", "100000", "--checkpoint-every", "1", "--out", "m"]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different point each round, from early start-up to mid-training.
        std::thread::sleep(Duration::from_millis(150 + 97 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        if path.exists() {
            charrnn_engine::files::checkpoint::load_checkpoint(&path)
                .unwrap_or_else(|e| panic!("round {round}: checkpoint does not load: {e}"));
            loaded += 1;
        }
    }
    assert!(loaded >= 6, "only {loaded} rounds reached a checkpoint");
}
