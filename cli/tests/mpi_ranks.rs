//! `train` and `bench` under `mpiexec` (the `mpi` feature; CI installs MPICH and runs these):
//! two ranks of one thread train byte for byte as one process of two threads, three ranks
//! repeat bit for bit, a checkpoint of two ranks resumes in one process and in two, a killed
//! rank ends the job at once with its checkpoint intact, Ctrl-C stops every rank at the same
//! step, and a rank with another corpus is refused at the start. Built only with the feature
//! (`required-features` in Cargo.toml): `cargo test -p charrnn-cli --features mpi --test mpi_ranks`.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpiexec` with `ranks` processes of the binary and `args`, in `dir`.
fn mpiexec(dir: &Path, ranks: usize, args: &[&str]) -> Command {
    let mut command = Command::new("mpiexec");
    command
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .args(["-n", &ranks.to_string(), env!("CARGO_BIN_EXE_charrnn-fast")])
        .args(args);
    command
}

fn run_ranks(dir: &Path, ranks: usize, args: &[&str]) -> Output {
    mpiexec(dir, ranks, args).output().expect("run mpiexec (install MPICH: mpich libmpich-dev)")
}

/// A directory holding tinyshakespeare as `c.txt`.
fn dir_with_tinyshakespeare() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shipped_tinyshakespeare(), dir.path().join("c.txt")).unwrap();
    dir
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn assert_ok(out: &Output) -> String {
    let err = stderr(out);
    assert!(out.status.success(), "{err}");
    err
}

/// The gate: the default model, 30 steps, `mpiexec -n 2 … --threads 1` against one
/// process of `--threads 2`; rank 0 alone prints.
#[test]
fn two_ranks_train_byte_for_byte_as_two_threads() {
    let dir = dir_with_tinyshakespeare();
    let one = run_in(dir.path(), &["train", "--data", "c.txt", "--threads", "2", "--steps", "30", "--out", "a"]);
    assert_ok(&one);
    let two = run_ranks(dir.path(), 2, &["train", "--data", "c.txt", "--threads", "1", "--steps", "30", "--out", "b"]);
    let err = assert_ok(&two);
    assert!(err.contains("2 ranks × 1 thread"), "{err}");
    assert_eq!(stdout(&two).matches("saved model to").count(), 1, "{}", stdout(&two));
    assert_eq!(err.matches("step 30/30").count(), 1, "{err}");
    assert!(read(&dir.path().join("a"), "model.safetensors") == read(&dir.path().join("b"), "model.safetensors"));
    assert_eq!(
        stdout(&one).lines().find(|l| l.contains("validation")),
        stdout(&two).lines().find(|l| l.contains("validation"))
    );
}

/// Three ranks over a batch of 50 (blocks of 16, 17 and 17 rows): the same bits on every run.
#[test]
fn three_ranks_repeat_bit_for_bit() {
    let dir = dir_with_corpus(40_000);
    let args = |out: &'static str| {
        [
            "train",
            "--data",
            "c.txt",
            "--batch",
            "50",
            "--seq-len",
            "20",
            "--hidden",
            "32",
            "--embed",
            "16",
            "--threads",
            "1",
            "--steps",
            "12",
            "--out",
            out,
        ]
    };
    assert_ok(&run_ranks(dir.path(), 3, &args("a")));
    assert_ok(&run_ranks(dir.path(), 3, &args("b")));
    assert!(read(&dir.path().join("a"), "model.safetensors") == read(&dir.path().join("b"), "model.safetensors"));
    // Close to one process (another order of the sums).
    assert_ok(&run_in(dir.path(), &args("c")));
    let weights = |run: &str| -> Vec<f32> {
        let bytes = read(&dir.path().join(run), "model.safetensors");
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        bytes[8 + header..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    };
    let max = weights("a").iter().zip(weights("c")).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-4, "three ranks and one process differ by {max}");
}

const RESUME_MODEL: &[&str] =
    &["--data", "c.txt", "--batch", "8", "--seq-len", "16", "--hidden", "24", "--embed", "16"];

fn train_args_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train"];
    args.extend_from_slice(RESUME_MODEL);
    args.extend_from_slice(extra);
    args
}

/// A checkpoint of two ranks holds every row's carried state: it resumes in one process of
/// two threads and under two ranks, each equal to the run that never stopped.
#[test]
fn a_checkpoint_of_two_ranks_resumes_anywhere() {
    let dir = dir_with_corpus(30_000);
    let straight =
        run_in(dir.path(), &train_args_with(&["--threads", "2", "--steps", "40", "--eval-every", "15", "--out", "a"]));
    assert_ok(&straight);
    for (run, resume_ranks) in [("b", 1), ("c", 2)] {
        let first = run_ranks(
            dir.path(),
            2,
            &train_args_with(&["--threads", "1", "--steps", "20", "--eval-every", "15", "--out", run]),
        );
        assert_ok(&first);
        let resume = ["train", "--resume", run, "--steps", "40"];
        let resumed = if resume_ranks == 1 {
            run_in(dir.path(), &[&resume[..], &["--threads", "2"]].concat())
        } else {
            run_ranks(dir.path(), 2, &[&resume[..], &["--threads", "1"]].concat())
        };
        let err = assert_ok(&resumed);
        assert!(err.contains("steps 21..=40"), "{err}");
        assert!(
            read(&dir.path().join("a"), "model.safetensors") == read(&dir.path().join(run), "model.safetensors"),
            "resumed under {resume_ranks} rank(s): weights differ"
        );
        let log = String::from_utf8(read(&dir.path().join(run), "log.csv")).unwrap();
        let steps: Vec<u64> = log.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect();
        assert_eq!(steps, (1..=40).collect::<Vec<_>>());
    }
}

/// Starts a long two-rank run into `out` and waits until its log has `rows` steps.
fn start_ranks(dir: &Path, out: &str, extra: &[&str], rows: usize) -> Child {
    let args = train_args_with(&[&["--threads", "1", "--steps", "100000", "--out", out], extra].concat());
    let child = mpiexec(dir, 2, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start mpiexec");
    wait_for_log_rows(&dir.join(out), rows);
    child
}

/// The process of rank `rank` among this machine's charrnn-fast processes writing to `out`
/// (its environment has the launcher's `PMI_RANK`).
fn pid_of_rank(out: &str, rank: usize) -> u32 {
    let wanted = format!("PMI_RANK={rank}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has = |bytes: &[u8], s: &str| bytes.split(|&b| b == 0).any(|w| w == s.as_bytes());
        if has(&cmdline, out)
            && has(&environ, &wanted)
            && cmdline.starts_with(env!("CARGO_BIN_EXE_charrnn-fast").as_bytes())
        {
            return pid;
        }
    }
    panic!("no process of rank {rank} writing to {out}");
}

/// SIGKILL on one rank mid-run: the job ends within seconds, not zero, and its last
/// checkpoint resumes.
#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes() {
    let dir = dir_with_corpus(30_000);
    let out = dir.path().join("k").to_string_lossy().into_owned();
    let mut child = start_ranks(dir.path(), &out, &["--checkpoint-every", "10"], 25);
    let killed = Instant::now();
    let status = Command::new("kill").args(["-KILL", &pid_of_rank(&out, 1).to_string()]).status().unwrap();
    assert!(status.success());
    let ended = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "the job outlived its killed rank by 15 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!ended.success());
    // On a loaded machine the job may train well past step 25 before it ends: resume to 10
    // steps beyond its last checkpoint, whichever that is.
    let (meta, _) =
        charrnn_engine::files::checkpoint::read_checkpoint_meta(&Path::new(&out).join("checkpoint.safetensors"))
            .unwrap();
    let target = (meta.step + 10).to_string();
    let resumed = run_in(dir.path(), &["train", "--resume", &out, "--steps", &target, "--threads", "2"]);
    let err = assert_ok(&resumed);
    assert!(err.contains("resumed from"), "{err}");
}

/// Ctrl-C to `mpiexec` (which forwards it to every rank): the ranks agree on the step to stop
/// after (were they to stop at different steps, the one still training would wait forever on
/// the others, and the job would not end), rank 0 saves, and the job exits 0; the run then
/// resumes under two ranks.
#[test]
fn ctrl_c_on_mpiexec_stops_every_rank_and_saves() {
    let dir = dir_with_corpus(30_000);
    let mut child = start_ranks(dir.path(), "m", &["--checkpoint-every", "0"], 4);
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let interrupted = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if interrupted.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the ranks did not stop within a minute of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let report = stdout(&out);
    let stopped: u64 = report
        .split("stopped at step ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no stop reported: {report}"));
    let log = String::from_utf8(read(&dir.path().join("m"), "log.csv")).unwrap();
    let steps: Vec<u64> = log.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect();
    assert_eq!(steps, (1..=stopped).collect::<Vec<_>>());
    let more = (stopped + 10).to_string();
    let resumed = run_ranks(dir.path(), 2, &["train", "--resume", "m", "--steps", &more, "--threads", "1"]);
    let err = assert_ok(&resumed);
    assert!(err.contains(&format!("steps {}..={more}", stopped + 1)), "{err}");
}

/// A rank whose corpus differs (here, another file: `mpiexec`'s `:` starts two programs) is
/// refused at the start with its own message, and the job ends.
#[test]
fn a_rank_with_another_corpus_is_refused() {
    let dir = dir_with(&[("a.txt", small_corpus(20_000)), ("b.txt", small_corpus(20_001)[1..].to_owned())]);
    let bin = env!("CARGO_BIN_EXE_charrnn-fast");
    let common =
        ["train", "--steps", "5", "--batch", "4", "--seq-len", "8", "--hidden", "8", "--embed", "4", "--out", "o"];
    let started = Instant::now();
    let out = Command::new("mpiexec")
        .current_dir(dir.path())
        .args(["-n", "1", bin])
        .args(common)
        .args(["--data", "a.txt", ":", "-n", "1", bin])
        .args(common)
        .args(["--data", "b.txt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("rank 1 of 2") && err.contains("differs from rank 0's"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// `bench` under two ranks: one report, naming the ranks.
#[test]
fn bench_runs_on_two_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ranks(dir.path(), 2, &["bench", "--threads", "1", "--steps", "3", "--warmup", "1"]);
    assert_ok(&out);
    let report = stdout(&out);
    assert_eq!(report.matches("RESULT").count(), 1, "{report}");
    assert!(report.contains("ranks=2"), "{report}");
}
