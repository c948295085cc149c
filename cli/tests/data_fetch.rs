//! `charrnn-fast data fetch` and `data list`: copying a corpus with `--from`, checksum
//! failures, unknown names and the offline error. No test touches the network: downloads are
//! pointed at a closed local port through the test-only `CHARRNN_FETCH_URL_OVERRIDE`.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

const TINY_SHA256: &str = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed";

/// A URL nothing listens on (the discard port of the loopback address).
const UNREACHABLE: &str = "http://127.0.0.1:9/input.txt";

fn fetch(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .env("CHARRNN_FETCH_URL_OVERRIDE", UNREACHABLE)
        .args(["data", "fetch"])
        .args(args)
        .output()
        .expect("run charrnn-fast")
}

/// `data fetch ARGS` in an empty directory fails with a clean error containing `needle` and
/// leaves the directory empty.
fn fetch_fails_leaving_nothing(args: &[&str], needle: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(dir.path(), args);
    assert_clean_error(&out, needle);
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    out
}

/// Every file and directory below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn from_a_correct_file_puts_it_in_place_then_reports_it_present() {
    let shared = shipped_tinyshakespeare();
    let dir = tempfile::tempdir().unwrap();
    let from = shared.to_str().unwrap();
    let out = fetch(dir.path(), &["tinyshakespeare", "--from", from]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(TINY_SHA256) && text.contains("train with: charrnn-fast train --data"), "{text}");
    let dest = dir.path().join("data/tinyshakespeare/input.txt");
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&shared).unwrap());
    // No temporary file is left next to it.
    assert_eq!(tree(dir.path()), ["data", "data/tinyshakespeare", "data/tinyshakespeare/input.txt"]);

    // Again: already present and verified, exit 0, nothing copied.
    let out = fetch(dir.path(), &["tinyshakespeare"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("already present, checksum OK"), "{}", stdout(&out));

    // `data list` sees it.
    let out = run_in(dir.path(), &["data", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("tinyshakespeare")).unwrap();
    assert!(line.contains("verified"), "{text}");

    // Damaged afterwards: fetch refuses to overwrite it, list flags it.
    std::fs::write(&dest, "changed").unwrap();
    let out = fetch(dir.path(), &["tinyshakespeare", "--from", from]);
    assert_clean_error(&out, "delete that directory");
    let out = run_in(dir.path(), &["data", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("BAD"), "{}", stdout(&out));
}

#[test]
fn from_a_wrong_file_fails_and_leaves_nothing() {
    // Shorter than the corpus: a checksum mismatch.
    let dir = dir_with(&[("wrong.txt", small_corpus(5000))]);
    let out = fetch(dir.path(), &["tinyshakespeare", "--from", "wrong.txt"]);
    assert_clean_error(&out, "checksum mismatch");
    assert!(stderr(&out).contains(TINY_SHA256) && stderr(&out).contains("5000 bytes"), "{}", stderr(&out));
    assert_eq!(tree(dir.path()), ["wrong.txt"]);

    // Longer than the corpus: stops as soon as it is too long.
    std::fs::write(dir.path().join("big.txt"), small_corpus(2_000_000)).unwrap();
    let out = fetch(dir.path(), &["tinyshakespeare", "--from", "big.txt", "--dir", "corpora"]);
    assert_clean_error(&out, "longer than the expected 1115394 bytes");
    assert_eq!(tree(dir.path()), ["big.txt", "wrong.txt"]);

    // Missing source file.
    let out = fetch(dir.path(), &["tinyshakespeare", "--from", "absent.txt"]);
    assert_clean_error(&out, "absent.txt");
    assert_eq!(tree(dir.path()), ["big.txt", "wrong.txt"]);

    // An enwik8 "zip" that is not one.
    std::fs::write(dir.path().join("enwik8.zip"), b"PK\x03\x04 not really a zip").unwrap();
    let out = fetch(dir.path(), &["enwik8", "--from", "enwik8.zip"]);
    assert_clean_error(&out, "not a readable zip archive");
    assert_eq!(tree(dir.path()), ["big.txt", "enwik8.zip", "wrong.txt"]);
}

#[test]
fn unknown_corpus_is_a_clear_error() {
    fetch_fails_leaving_nothing(&["wikitext"], "unknown corpus 'wikitext' (known: tinyshakespeare, enwik8)");
}

#[cfg(feature = "download")]
#[test]
fn unreachable_download_is_one_line_naming_the_url_and_from() {
    // Neither the corpus directory nor a temporary file is left behind.
    let out = fetch_fails_leaving_nothing(&["enwik8"], UNREACHABLE);
    assert!(stderr(&out).contains("--from FILE"), "{}", stderr(&out));
}

/// tinyshakespeare is built into the binary: fetching it needs no network (the download URL
/// points at a closed port here) and gives the shipped file.
#[test]
fn tinyshakespeare_is_written_from_the_built_in_copy_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(dir.path(), &["tinyshakespeare"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("built-in copy") && stdout(&out).contains(TINY_SHA256), "{}", stdout(&out));
    let dest = dir.path().join("data/tinyshakespeare/input.txt");
    assert_eq!(std::fs::read(dest).unwrap(), std::fs::read(shipped_tinyshakespeare()).unwrap());
    assert_eq!(tree(dir.path()), ["data", "data/tinyshakespeare", "data/tinyshakespeare/input.txt"]);
}

#[cfg(not(feature = "download"))]
#[test]
fn without_the_download_feature_fetch_needs_from() {
    fetch_fails_leaving_nothing(&["enwik8"], "built without download support; use --from FILE");
}

#[test]
fn list_shows_every_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["data", "list", "--dir", "nowhere"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in ["tinyshakespeare", "enwik8"] {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        assert!(line.contains("missing") && line.contains(&format!("data fetch {name}")), "{text}");
    }
    assert!(text.contains("1115394 bytes") && text.contains("100000000 bytes"), "{text}");
    assert!(tree(dir.path()).is_empty());
}
