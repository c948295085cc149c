//! Where the prepared corpus is cached, and that it never takes a model's files.

mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// `--cache` and `--out` on one directory: a later `prepare` of another corpus there leaves
/// the model's vocabulary alone, and the model still samples.
#[test]
fn a_cache_in_a_model_directory_never_replaces_the_models_vocabulary() {
    let dir = dir_with(&[("c.txt", small_corpus(20_000)), ("d.txt", "xyz 0123456789\n".repeat(2_000))]);
    let out = run_in(dir.path(), &train_args(&["--steps", "2", "--cache", "m", "--out", "m"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let vocab = std::fs::read(dir.path().join("m/vocab.json")).unwrap();
    let out = run_in(dir.path(), &["prepare", "--data", "d.txt", "--cache", "m", "--batch", "4", "--seq-len", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("m/vocab.json")).unwrap(), vocab, "the model's vocabulary was replaced");
    let out = run_in(dir.path(), &["sample", "--model", "m", "--length", "20", "--prime", "the "]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An input in a folder that is not writable, not the user's, or a system folder (as root: its
/// owner) is prepared in the user's cache directory, with one line saying so, and nothing is
/// written beside it.
#[test]
fn an_input_in_a_folder_that_is_not_yours_is_cached_in_the_users_cache() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("c.txt"), small_corpus(20_000)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    let prepare = ["prepare", "--data", "ro/c.txt", "--batch", "4", "--seq-len", "8"];
    let out = run_in(dir.path(), &prepare);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: 'ro' is not writable, so the prepared corpus is cached in '"), "{err}");
    assert_eq!(names(&folder), ["c.txt"]);
    let cached = dir.path().join(".cache/charrnn-fast/prepared");
    let entries = names(&cached);
    assert!(entries.len() == 1 && entries[0].ends_with("-c.txt.charrnn"), "{entries:?}");
    assert!(stdout(&out).contains(&entries[0]), "{}", stdout(&out));
    let again = run_in(dir.path(), &prepare);
    assert!(stdout(&again).contains("(reused cache "), "{}", stdout(&again));

    // As root every folder can be written: one of another user's is not root's to fill.
    let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(&folder, Some(65534), None).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = run_in(dir.path(), &["prepare", "--data", "ro/c.txt", "--batch", "4", "--seq-len", "8", "--bytes"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("note: 'ro' belongs to another user (uid 65534, this process runs as 0)"), "{err}");
        assert_eq!(names(&folder), ["c.txt"]);
    }
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An input in a system folder (`/etc/passwd`, read only) is never cached beside it, as root
/// (who may write there) or not.
#[test]
fn an_input_in_a_system_folder_is_cached_in_the_users_cache() {
    let dir = tempfile::tempdir().unwrap();
    let prepare = ["prepare", "--data", "/etc/passwd", "--bytes", "--batch", "1", "--seq-len", "1", "--val-frac", "0"];
    let out = run_in(dir.path(), &prepare);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: '/etc' "), "{err}");
    assert!(!Path::new("/etc/passwd.charrnn-bytes").exists());
    assert_eq!(names(&dir.path().join(".cache/charrnn-fast/prepared")).len(), 1);
}
