//! Arguments shared by `prepare` and `train`: which corpus, its cache, and the batch shape it
//! must fit.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use charrnn_engine::data::cache_place::default_cache_place;
use charrnn_engine::data::{
    prepare_until, split_train_val, validation_part, Batcher, DataError, PrepareOptions, Prepared, TokenStream,
};
use charrnn_fileio::chunks::sha256_hex;
use clap::Args;

use charrnn_corpora::builtin as builtin_corpus;

use crate::shared::output::errln;

#[derive(Args, Clone, Debug)]
pub struct CorpusArgs {
    /// Text file to train on [default: tinyshakespeare, built in: data/tinyshakespeare/input.txt
    /// in a checkout, else a copy in the user's cache directory]
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Directory for the prepared corpus (corpus-vocab.json, tokens.bin, meta.json: it may be a
    /// model's directory too) [default: next to the input, FILE.charrnn, when its folder is
    /// yours, writable and not a system folder; else in your cache directory,
    /// $XDG_CACHE_HOME/charrnn-fast/prepared/ or ~/.cache/charrnn-fast/prepared/]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Byte-level vocabulary: accepts any file, not only UTF-8 text
    #[arg(long)]
    pub bytes: bool,
    /// Rebuild the prepared files even if the cache is up to date
    #[arg(long)]
    pub rebuild_cache: bool,
}

#[derive(Args, Clone, Debug)]
pub struct BatchArgs {
    /// Sequences per batch (B)
    #[arg(long = "batch", default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Time steps per batch: the truncated-BPTT length (T)
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub seq_len: u32,
    /// Fraction of the corpus, taken from its end, held out for validation; it must hold at
    /// least one batch (0: no validation, no best/ model)
    #[arg(long, default_value_t = 0.05, value_name = "X")]
    pub val_frac: f64,
}

/// A prepared corpus with its token stream mapped.
pub struct Corpus {
    pub prepared: Prepared,
    pub stream: TokenStream,
    pub input: PathBuf,
}

impl Corpus {
    /// Prepares (or reuses the cache of) the corpus named by `args`.
    pub fn open(args: &CorpusArgs) -> Result<Corpus> {
        Self::open_until(args, &|| false)
    }

    /// [`Corpus::open`] that gives up, with an error, once `stop` says so (see
    /// [`prepare_until`]).
    pub fn open_until(args: &CorpusArgs, stop: &dyn Fn() -> bool) -> Result<Corpus> {
        let input = match &args.data {
            Some(path) => path.clone(),
            None => builtin_corpus::default_corpus()?,
        };
        let cache_dir = match &args.cache {
            Some(dir) => dir.clone(),
            None => {
                let place = default_cache_place(&input, args.bytes);
                if let Some(why) = &place.moved {
                    errln!("note: {why}, so the prepared corpus is cached in '{}'", place.dir.display());
                }
                place.dir
            }
        };
        let options = PrepareOptions {
            input: input.clone(),
            cache_dir: Some(cache_dir),
            bytes: args.bytes,
            force: args.rebuild_cache,
        };
        let prepared = prepare_until(&options, stop)
        .map_err(|e| match e {
            DataError::CacheIo { path, source } => anyhow!(
                "cannot use the prepared-corpus cache '{}': {source}; pass --cache DIR to keep it in a writable directory",
                path.display()
            ),
            e => e.into(),
        })?;
        let stream = TokenStream::open_prepared(&prepared)?;
        Ok(Corpus { prepared, stream, input })
    }

    /// The training and (when `val_frac > 0`) validation batchers; a clear error when either
    /// split is too short for one batch.
    pub fn batchers(&self, batch: &BatchArgs) -> Result<(Batcher<'_>, Option<Batcher<'_>>)> {
        let (b, t) = (batch.batch_size as usize, batch.seq_len as usize);
        let (train_range, val_range) = split_train_val(self.stream.len(), batch.val_frac)?;
        let train = Batcher::new(&self.stream, train_range, b, t, "training")
            .with_context(|| format!("'{}' is too short", self.input.display()))?;
        // Only an explicit 0 means no validation: a positive fraction too small for one batch
        // (even one that rounds to no tokens at all) is the same error as any other too-short
        // split, not validation silently switched off.
        let val = if batch.val_frac == 0.0 {
            None
        } else {
            Some(
                Batcher::new(&self.stream, validation_part(val_range), b, t, "validation")
                    .with_context(|| format!("'{}' is too short", self.input.display()))?,
            )
        };
        Ok((train, val))
    }

    /// SHA-256 of the prepared token file: what a resumed run checks to know it trains on the
    /// same corpus.
    pub fn tokens_sha256(&self) -> Result<String> {
        let path = &self.prepared.tokens_path;
        let file = std::fs::File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
        let (_, sha) = sha256_hex(file).with_context(|| format!("cannot read '{}'", path.display()))?;
        Ok(sha)
    }

    /// One line describing the corpus.
    pub fn describe(&self) -> String {
        let p = &self.prepared;
        format!(
            "{}: {} {}, vocabulary of {} ({} cache {})",
            self.input.display(),
            p.n_tokens,
            if self.prepared.vocab.bytes().is_some() { "bytes" } else { "characters" },
            p.vocab.len(),
            if p.reused { "reused" } else { "built" },
            p.cache_dir.display()
        )
    }
}
