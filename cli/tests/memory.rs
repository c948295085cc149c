//! The corpus is never copied whole into memory: on a generated 256 MB corpus, `train --steps 5`
//! (which prepares first) keeps its anonymous resident memory (`RssAnon`; mapped file pages do
//! not count) under 150 MB. Linux only: it reads /proc.

mod common;
use common::*;

use std::io::Write;
use std::time::Duration;

fn rss_anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_256_mb_corpus_trains_in_little_anonymous_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        println!("skipped: no /proc on this system");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        // 1 MiB blocks of text with a few multi-byte characters, varied per block.
        let base = small_corpus(1 << 20).replace("rome", "römé");
        for i in 0..256u32 {
            f.write_all(base.as_bytes()).unwrap();
            writeln!(f, "block {i}").unwrap();
        }
    }
    assert!(std::fs::metadata(&path).unwrap().len() > 256 << 20);

    let mut child = bin()
        .current_dir(dir.path())
        .args([
            "train",
            "--data",
            "big.txt",
            "--hidden",
            "32",
            "--embed",
            "32",
            "--steps",
            "5",
            "--val-frac",
            "0",
            "--out",
            "m",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0u64;
    let status = loop {
        if let Some(kib) = rss_anon_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{err}");
    assert!(peak > 0, "never read RssAnon");
    println!("peak RssAnon {:.1} MB", peak as f64 / 1024.0);
    assert!(peak < 150 * 1024, "peak RssAnon {peak} KiB");
}
