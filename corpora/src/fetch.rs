//! Bringing a corpus into its directory: from a local file (`--from`, plain or zip), from the
//! copy built into the binary, or over HTTP (the `download` feature), streamed through
//! [`Staged`] temporary files that are renamed into place only once the content checks out.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use charrnn_fileio::chunks::for_each_chunk;

use crate::registry::{CorpusSpec, Layout};
use crate::staged::Staged;

/// What a fetch reports as it goes (the CLI draws bars; tests pass [`Silent`]).
pub trait Progress {
    /// A new phase, e.g. "copying FILE", with its size in bytes when known.
    fn begin(&mut self, what: &str, total: Option<u64>);
    /// `bytes` more of the current phase are done.
    fn advance(&mut self, bytes: u64);
    /// The current phase is over.
    fn end(&mut self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&mut self, _what: &str, _total: Option<u64>) {}
    fn advance(&mut self, _bytes: u64) {}
    fn end(&mut self) {}
}

/// Brings the corpus `spec` into the existing directory `dir`, from `from` when given, else
/// from the built-in copy or the network; returns the output paths (`input.txt` first). On any
/// failure nothing is left in `dir`.
pub fn fetch_into(
    spec: &CorpusSpec,
    dir: &Path,
    from: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<Vec<PathBuf>> {
    let mut staged = Staged::new(spec, dir)?;
    match from {
        Some(path) => {
            let mut file = File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let source = path.display().to_string();
            match spec.layout {
                Layout::ZipSplit { member, .. } if is_zip(&mut file).map_err(read_err(&source))? => {
                    extract_zip(file, member, &source, &mut staged, progress)?;
                }
                _ => {
                    progress.begin(&format!("copying {source}"), Some(spec.size));
                    copy_into(file, &mut staged, &source, progress, read_err(&source))?;
                }
            }
        }
        None => match spec.builtin {
            Some(text) => {
                progress.begin("writing the built-in copy", Some(spec.size));
                copy_into(text, &mut staged, "the built-in copy", progress, read_err("the built-in copy"))?;
            }
            None => download(spec, dir, &mut staged, progress)?,
        },
    }
    progress.end();
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
fn extract_zip(file: File, member: &str, source: &str, staged: &mut Staged, progress: &mut dyn Progress) -> Result<()> {
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("'{source}' is not a readable zip archive"))?;
    let entry = archive.by_name(member).with_context(|| format!("'{source}' has no member '{member}'"))?;
    progress.begin(&format!("extracting {member} from {source}"), Some(entry.size()));
    copy_into(entry, staged, source, progress, read_err(source))
}

/// Copies `r` into `staged`, reporting progress; read errors go through `on_read_err`.
fn copy_into(
    r: impl Read,
    staged: &mut Staged,
    source: &str,
    progress: &mut dyn Progress,
    on_read_err: impl Fn(io::Error) -> anyhow::Error,
) -> Result<()> {
    for_each_chunk(r, 1 << 16, on_read_err, |bytes| {
        staged.write(bytes, source)?;
        progress.advance(bytes.len() as u64);
        Ok(())
    })?;
    Ok(())
}

/// The error for a local file that cannot be read.
fn read_err(source: &str) -> impl Fn(io::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot read '{source}': {e}")
}

#[cfg(feature = "download")]
fn download(spec: &CorpusSpec, dir: &Path, staged: &mut Staged, progress: &mut dyn Progress) -> Result<()> {
    use std::io::Write;
    use std::time::Duration;

    let url = spec.url();
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
    progress.begin(&format!("downloading {url}"), body.content_length());
    let reader = body.into_reader();
    match spec.layout {
        Layout::Plain => copy_into(reader, staged, &url, progress, |e| offline(&e))?,
        Layout::ZipSplit { member, .. } => {
            // The archive needs seeking: download it to a temporary file first (removed on drop,
            // never renamed into place).
            let mut zip_tmp = charrnn_fileio::atomic_file::PendingFile::create(&dir.join("download.zip"))
                .with_context(|| format!("cannot write in '{}'", dir.display()))?;
            let tmp_path = zip_tmp.temp_path().to_path_buf();
            for_each_chunk(
                reader,
                1 << 16,
                |e| offline(&e),
                |bytes| {
                    zip_tmp
                        .writer()
                        .write_all(bytes)
                        .with_context(|| format!("cannot write '{}'", tmp_path.display()))?;
                    progress.advance(bytes.len() as u64);
                    Ok(())
                },
            )?;
            zip_tmp.writer().flush().with_context(|| format!("cannot write '{}'", tmp_path.display()))?;
            progress.end();
            let file = File::open(&tmp_path).with_context(|| format!("cannot read '{}'", tmp_path.display()))?;
            extract_zip(file, member, &url, staged, progress)?;
        }
    }
    Ok(())
}

#[cfg(not(feature = "download"))]
fn download(spec: &CorpusSpec, _dir: &Path, _staged: &mut Staged, _progress: &mut dyn Progress) -> Result<()> {
    anyhow::bail!(
        "built without download support; use --from FILE with a copy of {} (or rebuild with the `download` feature)",
        spec.url()
    )
}
