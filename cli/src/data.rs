//! `charrnn-fast data`: fetch the standard corpora into `data/<name>/` and check them; the
//! corpus logic is the `charrnn-corpora` crate, this is its command line.
//!
//! `data fetch NAME` downloads a corpus (with the `download` cargo feature, on by default),
//! writes the built-in tinyshakespeare, or copies a local file (`--from FILE`, which works
//! offline and without the feature). A corpus already present and verified is left alone.
//! `data list` shows which corpora are present and verified.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_corpora::{check_installed, fetch_into, find_corpus, Installed, Progress, CORPORA, INPUT_FILE};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::shared::output::outln;

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

fn list(args: &ListArgs) -> Result<()> {
    let width = CORPORA.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for spec in CORPORA {
        let dir = args.dir.join(spec.name);
        let status = match check_installed(spec, &dir) {
            Installed::Missing => format!("missing   fetch it with `charrnn-fast data fetch {}`", spec.name),
            Installed::Verified => format!("verified  {}", dir.join(INPUT_FILE).display()),
            Installed::Bad(reason) => format!("BAD       {}: {reason}", dir.display()),
        };
        outln!("{:width$}  {status}", spec.name);
        outln!("{:width$}  {} bytes; {}", "", spec.size, spec.about);
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
            outln!("{}: already present, checksum OK", dir.display());
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
    let result = fetch_into(spec, &dir, args.from.as_deref(), &mut Bars::default());
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
        outln!("{}: OK", path.display());
    }
    outln!("{}: {} bytes, sha256 {} verified", spec.name, spec.size, spec.sha256);
    outln!("train with: charrnn-fast train --data {}{}", outputs[0].display(), spec.train_flags);
    if !spec.after_fetch.is_empty() {
        outln!("{}", spec.after_fetch);
    }
    Ok(())
}

/// Progress of a fetch: each phase's name on stdout, and a byte-count bar on a terminal.
#[derive(Default)]
struct Bars {
    bar: Option<ProgressBar>,
}

impl Progress for Bars {
    fn begin(&mut self, what: &str, total: Option<u64>) {
        self.end();
        outln!("{what}");
        if !std::io::stderr().is_terminal() {
            return;
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{bar:30.cyan/blue} {bytes}/{total_bytes} [{elapsed_precise} < {eta_precise}] {bytes_per_sec}",
            ),
            None => (ProgressBar::new_spinner(), "{spinner} {bytes} [{elapsed_precise}] {bytes_per_sec}"),
        };
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
