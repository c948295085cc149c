//! `charrnn-fast data`: fetch the standard corpora into `data/<name>/` and check them.
//!
//! `data fetch NAME` downloads a corpus (with the `download` cargo feature, on by default) or
//! copies a local file (`--from FILE`, which works offline and without the feature), streaming
//! it through temporary files in the corpus directory while hashing it; the temporary files are
//! renamed into place only when the size and SHA-256 of the content match, and deleted
//! otherwise. A corpus already present and verified is left alone. `data list` shows which
//! corpora are present and verified.
//!
//! For tests only, the environment variable `CHARRNN_FETCH_URL_OVERRIDE` replaces the download
//! URL of every corpus (the tests point it at an unreachable local port to check the offline
//! error). It is not meant for users.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_engine::data::chunks::{for_each_chunk, hex};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::builtin_corpus;

/// Test-only: replaces the download URL of every corpus (see the module documentation).
const URL_OVERRIDE_ENV: &str = "CHARRNN_FETCH_URL_OVERRIDE";

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Download a corpus (or copy it with --from FILE) into DIR/NAME/ and verify its SHA-256
    Fetch(FetchArgs),
    /// List the known corpora and whether each is present and verified
    List(ListArgs),
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// The corpus: tinyshakespeare or enwik8 (`data list` shows them)
    #[arg(value_name = "NAME")]
    name: String,
    /// Directory holding one subdirectory per corpus
    #[arg(long, default_value = "data", value_name = "DIR")]
    dir: PathBuf,
    /// Copy this local file instead of downloading (works offline); the checksum is still
    /// verified. For enwik8: either enwik8.zip or the unzipped enwik8 file
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Directory holding one subdirectory per corpus
    #[arg(long, default_value = "data", value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch(args) => fetch(&args),
        DataCommand::List(args) => list(&args),
    }
}

/// A corpus that `data fetch` knows.
#[derive(Clone, Copy, Debug)]
struct CorpusSpec {
    name: &'static str,
    /// Where it is downloaded from.
    url: &'static str,
    /// Size in bytes of the corpus text (for a zip: of the unzipped member).
    size: u64,
    /// SHA-256 of the corpus text (for a zip: of the unzipped member), lowercase hex.
    sha256: &'static str,
    layout: Layout,
    /// Flags of the `train` command printed after a fetch, after `--data DIR/NAME/input.txt`.
    train_flags: &'static str,
    /// One line for `data list`.
    about: &'static str,
    /// Printed after a successful fetch (empty for nothing).
    after_fetch: &'static str,
    /// The text compiled into the binary, written without the network when there is no --from.
    builtin: Option<&'static [u8]>,
}

/// How the downloaded file becomes the files of `DIR/NAME/`.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// The download is the text itself, stored as `input.txt`.
    Plain,
    /// The download is a zip archive with the text as `member`. Its last `test_bytes` go to
    /// `test.txt` (the held-out test split), everything before them to `input.txt`.
    ZipSplit { member: &'static str, test_bytes: u64 },
}

const INPUT_FILE: &str = "input.txt";
const TEST_FILE: &str = "test.txt";

const CORPORA: &[CorpusSpec] = &[
    CorpusSpec {
        name: "tinyshakespeare",
        url: "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        size: 1_115_394,
        sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        layout: Layout::Plain,
        train_flags: "",
        about: "Shakespeare from karpathy/char-rnn, 1.1 MB of ASCII (built in: no download)",
        after_fetch: "",
        builtin: Some(builtin_corpus::TEXT),
    },
    // enwik8: the first 10^8 bytes of an English Wikipedia XML dump (Hutter Prize). What is
    // verified is the *unzipped* file: 100,000,000 bytes, SHA-256 2b49720e…024a8. Matt
    // Mahoney's page publishes its MD5 (a1fa5ffddb56f4953e226637dabbb36a) and SHA-1
    // (57b8363b814821dc9d47aa4d41f58733519076b2); the SHA-256 below is the one several
    // independent public projects pin for the same file. It could not be recomputed from a
    // real download here (no network in the development sandbox). The zip itself is not
    // checked: mirrors have re-packed it over the years (the archive usually seen is
    // 36,445,475 bytes, SHA-256 547994d9…534bc), while its content is what matters.
    //
    // Standard split (e.g. Transformer-XL): train = bytes [0, 90M), valid = [90M, 95M),
    // test = [95M, 100M). input.txt gets the first 95M, so `--val-frac 5/95` holds out exactly
    // the 5M validation bytes; test.txt gets the last 5M.
    CorpusSpec {
        name: "enwik8",
        url: "http://mattmahoney.net/dc/enwik8.zip",
        size: 100_000_000,
        sha256: "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8",
        layout: Layout::ZipSplit { member: "enwik8", test_bytes: 5_000_000 },
        train_flags: " --bytes --val-frac 0.05263157894736842",
        about: "first 100 MB of English Wikipedia XML (Hutter Prize), split 90M/5M/5M",
        after_fetch: "input.txt is the first 95,000,000 bytes (the standard 90M training + 5M validation \
                      splits; that --val-frac, 5/95, holds out exactly the 5M validation bytes); \
                      test.txt is the last 5,000,000 bytes, the standard test split",
        builtin: None,
    },
];

fn find_corpus(name: &str) -> Result<&'static CorpusSpec> {
    match CORPORA.iter().find(|c| c.name == name) {
        Some(c) => Ok(c),
        None => bail!("unknown corpus '{name}' (known: {})", known_names()),
    }
}

fn known_names() -> String {
    CORPORA.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

impl CorpusSpec {
    /// The files of `dir` the corpus is stored in, in content order: `input.txt` first.
    fn outputs(&self, dir: &Path) -> Vec<PathBuf> {
        match self.layout {
            Layout::Plain => vec![dir.join(INPUT_FILE)],
            Layout::ZipSplit { .. } => vec![dir.join(INPUT_FILE), dir.join(TEST_FILE)],
        }
    }

    /// How many bytes of content each output gets (`u64::MAX` for "all the rest").
    fn output_limits(&self) -> Vec<u64> {
        match self.layout {
            Layout::Plain => vec![u64::MAX],
            Layout::ZipSplit { test_bytes, .. } => vec![self.size.saturating_sub(test_bytes), u64::MAX],
        }
    }

    fn url(&self) -> String {
        std::env::var(URL_OVERRIDE_ENV).unwrap_or_else(|_| self.url.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// Checking what is on disk
// ---------------------------------------------------------------------------------------------

/// The state of a corpus directory.
#[derive(Debug, PartialEq, Eq)]
enum Installed {
    /// `input.txt` is absent: fetch it.
    Missing,
    /// Every output is present and the content matches the size and SHA-256.
    Verified,
    /// `input.txt` is there, but something is wrong (the reason).
    Bad(String),
}

/// Hashes the outputs of `spec` in `dir`, in order, as one stream.
fn check_installed(spec: &CorpusSpec, dir: &Path) -> Installed {
    let outputs = spec.outputs(dir);
    if !outputs[0].exists() {
        return Installed::Missing;
    }
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    for path in &outputs {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Installed::Bad(format!("'{}' is missing", path.display()));
            }
            Err(e) => return Installed::Bad(format!("cannot read '{}': {e}", path.display())),
        };
        match hash_reader(file, &mut hasher) {
            Ok(n) => total += n,
            Err(e) => return Installed::Bad(format!("cannot read '{}': {e}", path.display())),
        }
    }
    let got = hex(&hasher.finalize());
    if total == spec.size && got == spec.sha256 {
        Installed::Verified
    } else {
        Installed::Bad(format!(
            "its content is {total} bytes with sha256 {got}, expected {} bytes with sha256 {}",
            spec.size, spec.sha256
        ))
    }
}

fn hash_reader(r: impl Read, hasher: &mut Sha256) -> io::Result<u64> {
    for_each_chunk(
        r,
        1 << 16,
        |e| e,
        |bytes| {
            hasher.update(bytes);
            Ok(())
        },
    )
}

fn list(args: &ListArgs) -> Result<()> {
    let width = CORPORA.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for spec in CORPORA {
        let dir = args.dir.join(spec.name);
        let status = match check_installed(spec, &dir) {
            Installed::Missing => format!("missing   fetch it with `charrnn-fast data fetch {}`", spec.name),
            Installed::Verified => format!("verified  {}", dir.join(INPUT_FILE).display()),
            Installed::Bad(reason) => format!("BAD       {}: {reason}", dir.display()),
        };
        println!("{:width$}  {status}", spec.name);
        println!("{:width$}  {} bytes; {}", "", spec.size, spec.about);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------------------------

fn fetch(args: &FetchArgs) -> Result<()> {
    let spec = find_corpus(&args.name)?;
    let dir = args.dir.join(spec.name);
    match check_installed(spec, &dir) {
        Installed::Verified => {
            println!("{}: already present, checksum OK", dir.display());
            return Ok(());
        }
        Installed::Bad(reason) => bail!(
            "'{}' holds a damaged or different {}: {reason}; delete that directory and run again",
            dir.display(),
            spec.name
        ),
        Installed::Missing => {}
    }
    // The outermost directory this run creates, to remove again on failure.
    let first_created =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).last().map(Path::to_path_buf);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let result = fetch_into(spec, &dir, args.from.as_deref());
    if let (Err(_), Some(top)) = (&result, &first_created) {
        // Leave nothing behind: the temporary files are gone already, so this only removes
        // the directories this run created (`remove_dir` fails on a non-empty one).
        for d in dir.ancestors() {
            let _ = fs::remove_dir(d);
            if d == top {
                break;
            }
        }
    }
    let outputs = result?;
    for path in &outputs {
        println!("{}: OK", path.display());
    }
    println!("{}: {} bytes, sha256 {} verified", spec.name, spec.size, spec.sha256);
    println!("train with: charrnn-fast train --data {}{}", outputs[0].display(), spec.train_flags);
    if !spec.after_fetch.is_empty() {
        println!("{}", spec.after_fetch);
    }
    Ok(())
}

/// Brings the corpus into `dir` from `from` or the network; returns the output paths.
fn fetch_into(spec: &CorpusSpec, dir: &Path, from: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut staged = Staged::new(spec, dir)?;
    match from {
        Some(path) => {
            let mut file = File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let source = path.display().to_string();
            match spec.layout {
                Layout::ZipSplit { member, .. } if is_zip(&mut file).map_err(read_err(&source))? => {
                    println!("extracting {member} from {source}");
                    extract_zip(file, member, &source, &mut staged)?;
                }
                _ => {
                    println!("copying {source}");
                    let bar = progress_bar(Some(spec.size));
                    copy_into(file, &mut staged, &source, &bar, read_err(&source))?;
                    bar.finish_and_clear();
                }
            }
        }
        None => match spec.builtin {
            Some(text) => {
                println!("writing the built-in copy");
                copy_into(
                    text,
                    &mut staged,
                    "the built-in copy",
                    &ProgressBar::hidden(),
                    read_err("the built-in copy"),
                )?;
            }
            None => download(spec, dir, &mut staged)?,
        },
    }
    staged.commit()
}

/// Whether `file` starts with a zip local-file header; rewinds it.
fn is_zip(file: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    file.rewind()?;
    Ok(filled == 4 && magic == *b"PK\x03\x04")
}

/// Streams `member` of the zip archive `file` into `staged`.
fn extract_zip(file: File, member: &str, source: &str, staged: &mut Staged) -> Result<()> {
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("'{source}' is not a readable zip archive"))?;
    let entry = archive.by_name(member).with_context(|| format!("'{source}' has no member '{member}'"))?;
    let bar = progress_bar(Some(entry.size()));
    copy_into(entry, staged, source, &bar, read_err(source))?;
    bar.finish_and_clear();
    Ok(())
}

/// Copies `r` into `staged`, advancing `bar`; read errors go through `on_read_err`.
fn copy_into(
    r: impl Read,
    staged: &mut Staged,
    source: &str,
    bar: &ProgressBar,
    on_read_err: impl Fn(io::Error) -> anyhow::Error,
) -> Result<()> {
    pump(r, bar, on_read_err, |bytes| staged.write(bytes, source))
}

/// Reads `r` to its end in chunks, handing each to `sink` and advancing `bar`.
fn pump(
    r: impl Read,
    bar: &ProgressBar,
    on_read_err: impl Fn(io::Error) -> anyhow::Error,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    for_each_chunk(r, 1 << 16, on_read_err, |bytes| {
        sink(bytes)?;
        bar.inc(bytes.len() as u64);
        Ok(())
    })?;
    Ok(())
}

/// The error for a local file that cannot be read.
fn read_err(source: &str) -> impl Fn(io::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot read '{source}': {e}")
}

/// A byte-count progress bar on a terminal, hidden otherwise.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match total {
        Some(total) => {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {bytes}/{total_bytes} [{elapsed_precise} < {eta_precise}] {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            let style = ProgressStyle::with_template("{spinner} {bytes} [{elapsed_precise}] {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar
        }
    }
}

#[cfg(feature = "download")]
fn download(spec: &CorpusSpec, dir: &Path, staged: &mut Staged) -> Result<()> {
    use std::time::Duration;

    let url = spec.url();
    println!("downloading {url}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let offline = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot download {url}: {e}; check the network, or get the file another way and pass --from FILE"
        )
    };
    let response = agent.get(&url).call().map_err(|e| offline(&e))?;
    let body = response.into_body();
    let bar = progress_bar(body.content_length());
    let reader = body.into_reader();
    match spec.layout {
        Layout::Plain => copy_into(reader, staged, &url, &bar, |e| offline(&e))?,
        Layout::ZipSplit { member, .. } => {
            // The archive needs seeking: download it to a temporary file first (deleted on drop).
            let mut zip_tmp = TempFile::create(dir, "download.zip")?;
            let tmp_path = zip_tmp.path.clone();
            pump(
                reader,
                &bar,
                |e| offline(&e),
                |bytes| zip_tmp.file.write_all(bytes).with_context(|| format!("cannot write '{}'", tmp_path.display())),
            )?;
            bar.finish_and_clear();
            let file = File::open(&tmp_path).with_context(|| format!("cannot read '{}'", tmp_path.display()))?;
            println!("extracting {member}");
            extract_zip(file, member, &url, staged)?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

#[cfg(not(feature = "download"))]
fn download(spec: &CorpusSpec, _dir: &Path, _staged: &mut Staged) -> Result<()> {
    bail!(
        "built without download support; use --from FILE with a copy of {} (or rebuild with the `download` feature)",
        spec.url()
    )
}

// ---------------------------------------------------------------------------------------------
// Temporary files, verification and the atomic rename
// ---------------------------------------------------------------------------------------------

/// A temporary file next to its destination, deleted on drop unless persisted.
struct TempFile {
    file: File,
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn create(dir: &Path, name: &str) -> Result<TempFile> {
        let path = dir.join(format!(".{name}.part-{}", std::process::id()));
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot create '{}'", path.display()))?;
        Ok(TempFile { file, path, keep: false })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The outputs of a corpus being written: content bytes are routed to the temporary output
/// files by offset, hashed on the way, and renamed into place by [`Staged::commit`] only when
/// the whole content matches.
struct Staged {
    spec: CorpusSpec,
    temps: Vec<TempFile>,
    dests: Vec<PathBuf>,
    /// Bytes each output takes before the next one starts.
    limits: Vec<u64>,
    /// The output being written, and how many bytes it has.
    current: usize,
    in_current: u64,
    total: u64,
    hasher: Sha256,
}

impl Staged {
    fn new(spec: &CorpusSpec, dir: &Path) -> Result<Staged> {
        let dests = spec.outputs(dir);
        let temps = dests
            .iter()
            .map(|d| TempFile::create(dir, &d.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Staged {
            spec: *spec,
            temps,
            dests,
            limits: spec.output_limits(),
            current: 0,
            in_current: 0,
            total: 0,
            hasher: Sha256::new(),
        })
    }

    /// Appends content; fails as soon as the content is longer than the corpus.
    fn write(&mut self, mut bytes: &[u8], source: &str) -> Result<()> {
        self.total += bytes.len() as u64;
        if self.total > self.spec.size {
            bail!(
                "'{source}' is not {}: it is longer than the expected {} bytes; nothing was written",
                self.spec.name,
                self.spec.size
            );
        }
        self.hasher.update(bytes);
        while !bytes.is_empty() {
            let room = self.limits[self.current] - self.in_current;
            if room == 0 {
                self.current += 1;
                self.in_current = 0;
                continue;
            }
            let n = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let temp = &mut self.temps[self.current];
            temp.file.write_all(&bytes[..n]).with_context(|| format!("cannot write '{}'", temp.path.display()))?;
            self.in_current += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Verifies size and SHA-256, then renames the outputs into place: `input.txt` last, so
    /// its presence means the corpus is complete. On a mismatch every temporary file is
    /// deleted.
    fn commit(mut self) -> Result<Vec<PathBuf>> {
        let got = hex(&std::mem::take(&mut self.hasher).finalize());
        if self.total != self.spec.size || got != self.spec.sha256 {
            bail!(
                "checksum mismatch for {}: expected sha256 {} ({} bytes), got {got} ({} bytes); nothing was written",
                self.spec.name,
                self.spec.sha256,
                self.spec.size,
                self.total
            );
        }
        for temp in &mut self.temps {
            temp.file.sync_all().with_context(|| format!("cannot write '{}'", temp.path.display()))?;
        }
        for (temp, dest) in self.temps.iter_mut().zip(&self.dests).rev() {
            fs::rename(&temp.path, dest)
                .with_context(|| format!("cannot rename '{}' to '{}'", temp.path.display(), dest.display()))?;
            temp.keep = true;
        }
        if let Some(dir) = self.dests[0].parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(self.dests.clone())
    }
}

#[cfg(test)]
mod tests {
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
        let outputs = fetch_into(&spec, &out, Some(&src)).unwrap();
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
            fetch_into(&spec, &out, Some(src)).unwrap();
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
        let e = fetch_into(&other, &out, Some(&zip_path)).unwrap_err().to_string();
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
        let e = fetch_into(&spec, &out, Some(&src)).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && e.contains(spec.sha256), "{e}");
        assert!(dir_names(&out).is_empty());
        // Longer: stops early.
        wrong.extend_from_slice(&[0; 100_000]);
        fs::write(&src, &wrong).unwrap();
        let e = fetch_into(&spec, &out, Some(&src)).unwrap_err().to_string();
        assert!(e.contains("longer than the expected 10000 bytes"), "{e}");
        assert!(dir_names(&out).is_empty());
        // Shorter.
        fs::write(&src, &data[..10]).unwrap();
        let e = fetch_into(&spec, &out, Some(&src)).unwrap_err().to_string();
        assert!(e.contains("(10 bytes)"), "{e}");
        assert!(dir_names(&out).is_empty());
    }
}
