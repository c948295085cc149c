//! What a run removes or replaces in its `--out`: only files this program wrote, recognised by
//! their content; a directory whose run saved nothing does not block the next run.

mod common;
use common::*;

/// `--force` removes the previous run's files and leaves the user's: a photo in `best/` (and
/// `best/` with it, said on stderr) and notes beside the run.
#[test]
fn force_removes_only_this_programs_files() {
    let dir = dir_with_corpus(20_000);
    let first = run_in(dir.path(), &train_args(&["--steps", "2", "--out", "m"]));
    assert!(first.status.success(), "{}", stderr(&first));
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join("best")).unwrap();
    std::fs::write(m.join("best/photo.jpg"), b"\xff\xd8\xff").unwrap();
    std::fs::write(m.join("notes.txt"), b"mine").unwrap();

    let forced = run_in(dir.path(), &train_args(&["--steps", "2", "--cell", "gru", "--out", "m", "--force"]));
    let err = stderr(&forced);
    assert!(forced.status.success(), "{err}");
    assert!(err.contains("cleared the previous run in 'm' (--force)"), "{err}");
    assert!(err.contains("left 'm/best/photo.jpg', which is not this program's"), "{err}");
    assert_eq!(std::fs::read(m.join("best/photo.jpg")).unwrap(), b"\xff\xd8\xff");
    assert_eq!(std::fs::read(m.join("notes.txt")).unwrap(), b"mine");
    let config = std::fs::read_to_string(m.join("config.json")).unwrap();
    assert!(config.contains("\"gru\""), "{config}");
}

/// The user's own `config.json` and `log.csv` in `--out` would be replaced by the run's: the
/// run is refused, with or without `--force`, and they stay as they were.
#[test]
fn a_foreign_file_under_a_run_files_name_refuses_the_run() {
    let dir = dir_with_corpus(20_000);
    let m = dir.path().join("m");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(m.join("config.json"), br#"{"lr": 0.1}"#).unwrap();
    std::fs::write(m.join("log.csv"), b"date,weight\n").unwrap();
    for force in [&[][..], &["--force"]] {
        let out = run_in(dir.path(), &train_args(&[&["--steps", "2", "--out", "m"][..], force].concat()));
        assert_clean_error(
            &out,
            "'m/config.json', 'm/log.csv' are not this program's, and this run would replace them; move them away, \
             or choose another --out",
        );
    }
    assert_eq!(std::fs::read(m.join("config.json")).unwrap(), br#"{"lr": 0.1}"#);
    assert_eq!(std::fs::read(m.join("log.csv")).unwrap(), b"date,weight\n");
    assert_eq!(names(&m), [".charrnn-fast.lock", "config.json", "log.csv"]);
}

/// A run killed before its first checkpoint leaves a log and no run: the same command then
/// runs, removing that log (this program's) and leaving the user's file.
#[test]
fn a_run_that_saved_nothing_does_not_block_the_next() {
    let dir = dir_with_corpus(20_000);
    let mut child = start_long_run(dir.path(), "100000", "m", &[], 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let m = dir.path().join("m");
    assert!(!m.join("checkpoint.safetensors").exists() && m.join("log.csv").exists());
    std::fs::write(m.join("notes.txt"), b"mine").unwrap();

    let again = run_in(dir.path(), &train_args(&["--steps", "2", "--out", "m"]));
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("removed the files of an earlier run in 'm' that saved no checkpoint or model"), "{err}");
    assert!(m.join("checkpoint.safetensors").is_file());
    assert_eq!(std::fs::read(m.join("notes.txt")).unwrap(), b"mine");
    let log = std::fs::read_to_string(m.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
}
