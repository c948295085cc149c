//! The corpora of charrnn-fast: the built-in default (tinyshakespeare, compiled in), the
//! registry of standard corpora with their checksums, and fetching them into a directory —
//! from a local file, the built-in copy or (with the `download` feature) over HTTP — through
//! temporary files renamed into place only when the content's size and SHA-256 match.
//!
//! Kept out of the engine so that the HTTP client (`ureq`) and the zip reader stay out of it.

#![forbid(unsafe_code)]

pub mod builtin;
pub mod fetch;
pub mod installed;
pub mod registry;
mod staged;

pub use fetch::{fetch_into, Progress, Silent};
pub use installed::{check_installed, Installed};
pub use registry::{find_corpus, known_names, CorpusSpec, Layout, CORPORA, INPUT_FILE, TEST_FILE};

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::Write;
    use std::path::Path;

    use charrnn_fileio::chunks::hex;
    use sha2::{Digest, Sha256};

    use super::*;

    /// A corpus spec for `content` with the given layout.
    fn spec_for(content: &[u8], layout: Layout) -> CorpusSpec {
        let mut h = Sha256::new();
        h.update(content);
        let sha: &'static str = Box::leak(hex(&h.finalize()).into_boxed_str());
        CorpusSpec {
            name: "tiny",
            url: "http://127.0.0.1:9/",
            size: content.len() as u64,
            sha256: sha,
            layout,
            train_flags: "",
            about: "test",
            after_fetch: "",
            builtin: None,
        }
    }

    fn content() -> Vec<u8> {
        (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn known_checksums_are_well_formed() {
        for c in CORPORA {
            assert_eq!(c.sha256.len(), 64, "{}", c.name);
            assert!(c.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{}", c.name);
        }
        // The standard enwik8 split: 5M test bytes, input.txt = 95M, and the printed --val-frac
        // holds out exactly 5M of those 95M (the floor the batcher takes).
        let enwik8 = find_corpus("enwik8").unwrap();
        assert_eq!(enwik8.output_limits()[0], 95_000_000);
        let frac: f64 = enwik8.train_flags.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!((95_000_000f64 * frac).floor() as u64, 5_000_000);
        assert!(find_corpus("nope").unwrap_err().to_string().contains("tinyshakespeare, enwik8"));
    }

    #[test]
    fn plain_copy_verifies_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let data = content();
        let src = dir.path().join("src.bin");
        fs::write(&src, &data).unwrap();
        let spec = spec_for(&data, Layout::Plain);
        let out = dir.path().join("tiny");
        fs::create_dir(&out).unwrap();
        let outputs = fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap();
        assert_eq!(outputs, vec![out.join(INPUT_FILE)]);
        assert_eq!(fs::read(&outputs[0]).unwrap(), data);
        assert_eq!(dir_names(&out), vec![INPUT_FILE]);
        assert_eq!(check_installed(&spec, &out), Installed::Verified);
    }

    #[test]
    fn split_from_raw_file_and_from_zip() {
        let data = content();
        let spec = spec_for(&data, Layout::ZipSplit { member: "tiny", test_bytes: 1234 });
        let dir = tempfile::tempdir().unwrap();

        // The raw (unzipped) file.
        let raw = dir.path().join("raw");
        fs::write(&raw, &data).unwrap();
        // A zip archive holding it, deflated, next to another member.
        let zip_path = dir.path().join("tiny.zip");
        {
            let mut w = zip::ZipWriter::new(File::create(&zip_path).unwrap());
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file("readme", opts).unwrap();
            w.write_all(b"hello").unwrap();
            w.start_file("tiny", opts).unwrap();
            w.write_all(&data).unwrap();
            w.finish().unwrap();
        }
        for src in [&raw, &zip_path] {
            let out = dir.path().join(format!("out-{}", src.file_name().unwrap().to_string_lossy()));
            fs::create_dir(&out).unwrap();
            fetch_into(&spec, &out, Some(src), &mut Silent).unwrap();
            assert_eq!(fs::read(out.join(INPUT_FILE)).unwrap(), &data[..data.len() - 1234]);
            assert_eq!(fs::read(out.join(TEST_FILE)).unwrap(), &data[data.len() - 1234..]);
            assert_eq!(dir_names(&out), vec![INPUT_FILE, TEST_FILE]);
            assert_eq!(check_installed(&spec, &out), Installed::Verified);
            // A damaged split is reported, not re-fetched over.
            fs::remove_file(out.join(TEST_FILE)).unwrap();
            assert!(matches!(check_installed(&spec, &out), Installed::Bad(r) if r.contains("test.txt")));
        }

        // A zip without the member.
        let other = spec_for(&data, Layout::ZipSplit { member: "absent", test_bytes: 10 });
        let out = dir.path().join("out-absent");
        fs::create_dir(&out).unwrap();
        let e = fetch_into(&other, &out, Some(&zip_path), &mut Silent).unwrap_err().to_string();
        assert!(e.contains("no member 'absent'"), "{e}");
        assert!(dir_names(&out).is_empty());
    }

    #[test]
    fn wrong_content_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = content();
        let spec = spec_for(&data, Layout::ZipSplit { member: "tiny", test_bytes: 100 });
        let out = dir.path().join("tiny");
        fs::create_dir(&out).unwrap();
        // Same length, one byte different: a checksum mismatch.
        let mut wrong = data.clone();
        wrong[5000] ^= 1;
        let src = dir.path().join("wrong");
        fs::write(&src, &wrong).unwrap();
        let e = fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && e.contains(spec.sha256), "{e}");
        assert!(dir_names(&out).is_empty());
        // Longer: stops early.
        wrong.extend_from_slice(&[0; 100_000]);
        fs::write(&src, &wrong).unwrap();
        let e = fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap_err().to_string();
        assert!(e.contains("longer than the expected 10000 bytes"), "{e}");
        assert!(dir_names(&out).is_empty());
        // Shorter.
        fs::write(&src, &data[..10]).unwrap();
        let e = fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap_err().to_string();
        assert!(e.contains("(10 bytes)"), "{e}");
        assert!(dir_names(&out).is_empty());
    }

    /// A `test.txt` already in the directory (with no `input.txt`) is replaced only by the same
    /// bytes, what an interrupted fetch leaves; someone else's file is refused and left.
    #[test]
    fn an_output_that_is_not_this_corpus_is_never_replaced() {
        let data = content();
        let spec = spec_for(&data, Layout::ZipSplit { member: "tiny", test_bytes: 1234 });
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("raw");
        fs::write(&src, &data).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join(TEST_FILE), b"my own tests").unwrap();
        let e = fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap_err().to_string();
        assert!(e.contains("test.txt' is there already and is not this"), "{e}");
        assert_eq!(fs::read(out.join(TEST_FILE)).unwrap(), b"my own tests");
        assert_eq!(dir_names(&out), vec![TEST_FILE]);

        fs::write(out.join(TEST_FILE), &data[data.len() - 1234..]).unwrap();
        fetch_into(&spec, &out, Some(&src), &mut Silent).unwrap();
        assert_eq!(check_installed(&spec, &out), Installed::Verified);
    }
}
