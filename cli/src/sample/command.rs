//! `charrnn-fast sample`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_engine::inference::beam::BeamSearch;
use charrnn_engine::inference::sample::{sample_streams, SampleMode, SampleOptions, Sampler};
use charrnn_fileio::atomic_file::write_atomic_with;
use clap::{Args, ValueEnum};

use crate::sample::prime_text::read_prime;
use crate::sample::written_count::{generated_written, symbols_in, CountingWriter, Piece};
use crate::shared::model_source::ModelSource;
use crate::shared::precision_arg::{slow_bf16_note, PrecisionArg};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Always the most likely character (the tutorial's mode 0)
    #[value(alias = "0")]
    Argmax,
    /// Draw from the predicted distribution (mode 1)
    #[value(alias = "1")]
    Weighted,
    /// Draw after a space, most likely character otherwise (mode 2)
    #[value(alias = "2")]
    Space,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct SampleArgs {
    /// The model: a directory written by `train --out` (or its best/), a run directory that
    /// holds only checkpoint.safetensors (a run stopped before it saved a model), or a
    /// checkpoint file; stderr says which was loaded
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// Text that warms up the state; the output starts with it [default: " "]
    #[arg(long, value_name = "TEXT")]
    pub prime: Option<String>,
    /// Read the prime text from FILE (- for stdin) instead of --prime: a character model needs
    /// UTF-8 text; a --bytes model takes the file's bytes as they are
    #[arg(long, value_name = "FILE", conflicts_with = "prime")]
    pub prime_file: Option<PathBuf>,
    /// Characters to generate after the prime text
    #[arg(long, default_value_t = 4000, value_name = "N")]
    pub length: usize,
    /// How each character is chosen
    #[arg(long, value_enum, default_value_t = Mode::Weighted)]
    pub mode: Mode,
    /// Divide the logits by X before the softmax: < 1 is more conservative, > 1 more surprising
    /// (at least 2.94e-39, whose inverse is the largest f32; --mode argmax for greedy output)
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub temperature: f64,
    /// Draw only among the K most likely characters
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Leave out prime characters the model never saw, instead of failing
    #[arg(long)]
    pub skip_unknown: bool,
    /// Seed of the random draws
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// What the forward pass's matrix products round their operands to
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Independent samples, generated together (one batched step per character). Sample i
    /// draws from its own random stream of --seed, so it is the same whatever N is; they are
    /// printed one after another, each under a header line (or see --output-dir)
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub num_samples: u32,
    /// Write sample i to DIR/sample-i.txt (one file per sample) instead of stdout
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Replace sample files already in --output-dir
    #[arg(long, requires = "output_dir")]
    pub force: bool,
    /// Beam search: keep the W most likely continuations (summed log-probability at
    /// --temperature) and print the best. W = 1 is --mode argmax exactly. There is no end
    /// symbol, so every continuation has --length characters and no length penalty applies
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["num_samples", "output_dir", "top_k", "mode"])]
    pub beam: Option<u32>,
    /// Worker threads [default: all cores]: --num-samples splits the samples between them; one
    /// sample splits each character's step between them (by hidden units, each core reading
    /// its part of the weights) when the model is large enough for it to pay
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
}

/// Most symbols `--num-samples` × `--length` may ask for (4 bytes each are held until written).
const MAX_SYMBOLS: usize = 1 << 30;

pub fn run(args: SampleArgs) -> Result<()> {
    let source = ModelSource::locate(&args.model)?;
    let (model, vocab, loaded) = source.load("sample")?;
    let model = std::sync::Arc::new(model);
    let prime = read_prime(args.prime.as_deref(), args.prime_file.as_deref(), &vocab, args.skip_unknown)?;
    let options = SampleOptions {
        mode: match args.mode {
            Mode::Argmax => SampleMode::Argmax,
            Mode::Weighted => SampleMode::Weighted,
            Mode::Space => SampleMode::WeightedAfterSpace,
        },
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
        precision: args.precision.precision(),
    };
    if let Some(note) = slow_bf16_note(options.precision) {
        crate::shared::output::errln!("{note}");
    }
    let as_bytes = vocab.bytes().is_some();
    let (one, many) = if as_bytes { ("byte", "bytes") } else { ("character", "characters") };
    let unit = |n: usize| crate::shared::output::plural(n, one, many);
    let length = args.length as u64;
    // What reached the reader, when it closed the output before the end (`| head`).
    let cut_short = |written: u64| -> String {
        match written < length {
            true => format!("; the output was closed after {written} of them were written"),
            false => String::new(),
        }
    };
    let started = std::time::Instant::now();
    options.check()?;
    let threads = crate::shared::threads::init_threads(args.threads)?;
    // Said once every check has passed, so that an error stays the one line on stderr.
    let announce = || crate::shared::output::errln!("loaded {loaded}");
    if let Some(width) = args.beam {
        let width = width as usize;
        let mut search = BeamSearch::new(&model, options.precision, width, args.temperature, args.length)?;
        announce();
        for &id in &prime.ids {
            search.feed(id);
        }
        for _ in 0..args.length {
            search.advance();
        }
        let (best, log_p) = search.best();
        let seconds = started.elapsed().as_secs_f64();
        let mut out = CountingWriter::new(std::io::stdout().lock(), as_bytes);
        ignore_broken_pipe(write_sample(&mut out, &vocab, &prime.echo, &best).and_then(|()| out.flush()))?;
        let written =
            generated_written(out.symbols(), [Piece { before: symbols_in(&prime.echo, as_bytes), body: length }]);
        crate::shared::output::errln!(
            "beam search of width {width}: {} {} in {seconds:.2} s: {:.0} {many}/s; log-probability {log_p:.2} ({:.4} nats/{one}){}",
            args.length,
            unit(args.length),
            args.length as f64 / seconds.max(1e-9),
            -log_p / args.length.max(1) as f64,
            cut_short(written)
        );
        return Ok(());
    }
    let count = args.num_samples as usize;
    if count == 1 && args.output_dir.is_none() {
        let mut sampler = Sampler::new(&model, options, vocab.id_of_char(' '))?;
        announce();
        for &id in &prime.ids {
            sampler.feed(id);
        }
        let started = std::time::Instant::now();
        let (result, accepted) = stream(&mut sampler, threads, &vocab, &prime.echo, args.length);
        ignore_broken_pipe(result)?;
        let seconds = started.elapsed().as_secs_f64();
        let written = generated_written(accepted, [Piece { before: symbols_in(&prime.echo, as_bytes), body: length }]);
        let n = written as usize;
        // Generation stops at the first write the reader refused, so the rate is of what was written.
        crate::shared::output::errln!(
            "sampled {n} {} in {seconds:.2} s: {:.0} {many}/s{}",
            unit(n),
            n as f64 / seconds.max(1e-9),
            match written < length {
                true => format!(" (the output was closed before the --length of {})", args.length),
                false => String::new(),
            }
        );
        return Ok(());
    }
    if count.checked_mul(args.length).is_none_or(|n| n > MAX_SYMBOLS) {
        anyhow::bail!(
            "--num-samples × --length is more than {MAX_SYMBOLS} characters: ask for fewer or shorter samples"
        );
    }
    let files = match &args.output_dir {
        Some(dir) => Some(sample_files(dir, count, args.force)?),
        None => None,
    };
    announce();
    let started = std::time::Instant::now();
    let symbols = sample_streams(&model, options, vocab.id_of_char(' '), &prime.ids, count, args.length)?;
    let seconds = started.elapsed().as_secs_f64();
    let samples = (0..count).map(|i| &symbols[i * args.length..(i + 1) * args.length]);
    let header = |i: usize| format!("=== sample {i} of {count} (seed {}) ===\n", args.seed);
    let written = match files {
        Some(paths) => {
            for (path, sample) in paths.iter().zip(samples) {
                write_atomic_with(
                    path,
                    |e| anyhow::Error::new(e).context(format!("cannot write '{}'", path.display())),
                    |w, _| Ok(write_sample(w, &vocab, &prime.echo, sample)?),
                )?;
            }
            (count as u64) * length
        }
        None => {
            let mut out = std::io::BufWriter::new(CountingWriter::new(std::io::stdout().lock(), as_bytes));
            let write_all = || -> std::io::Result<()> {
                for (i, sample) in samples.enumerate() {
                    out.write_all(header(i).as_bytes())?;
                    write_sample(&mut out, &vocab, &prime.echo, sample)?;
                }
                out.flush()
            };
            let result = write_all();
            // What the buffer still holds after a refused write is not written again.
            let (counted, _) = out.into_parts();
            ignore_broken_pipe(result)?;
            let prime_symbols = symbols_in(&prime.echo, as_bytes);
            let pieces = (0..count)
                .map(|i| Piece { before: symbols_in(header(i).as_bytes(), false) + prime_symbols, body: length });
            generated_written(counted.symbols(), pieces)
        }
    };
    let total = count * args.length;
    crate::shared::output::errln!(
        "sampled {count} × {} {} on {threads} {} in {seconds:.2} s: {:.0} {many}/s in total{}",
        args.length,
        unit(args.length),
        crate::shared::output::plural(threads, "thread", "threads"),
        total as f64 / seconds.max(1e-9),
        match written < total as u64 {
            true => format!("; the output was closed after {written} of the {total} were written"),
            false => String::new(),
        }
    );
    Ok(())
}

/// A reader that stops early (`| head`) is not an error.
fn ignore_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The prime text, the sample's characters and a newline.
fn write_sample(out: &mut impl Write, vocab: &Vocab, prime: &[u8], sample: &[u32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(prime.len() + sample.len() + 1);
    bytes.extend_from_slice(prime);
    for &id in sample {
        vocab.decode_into(id, &mut bytes);
    }
    bytes.push(b'\n');
    out.write_all(&bytes)
}

/// The files of `count` samples in `dir` (created if missing): `sample-0.txt`, … with the
/// index padded to one width. Without `force`, each is claimed now by creating it empty
/// (`create_new`, which fails if the file exists), so that two runs sharing `dir` cannot both
/// write a sample; the sample later replaces the claim atomically.
fn sample_files(dir: &Path, count: usize, force: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the output directory '{}'", dir.display()))?;
    let digits = (count - 1).to_string().len();
    let paths: Vec<PathBuf> = (0..count).map(|i| dir.join(format!("sample-{i:0digits$}.txt"))).collect();
    if force {
        // Only a regular file is replaced: anything else is refused now, before the sampling.
        for path in &paths {
            charrnn_fileio::atomic_file::resolve_destination(path)
                .with_context(|| format!("cannot write '{}'", path.display()))?;
        }
    } else {
        if let Some(taken) = paths.iter().find(|p| p.exists()) {
            anyhow::bail!(
                "'{}' exists already: use another --output-dir, or --force to replace the samples there",
                taken.display()
            );
        }
        for path in &paths {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
                    "'{}' was just created by another run: use another --output-dir, or --force to replace the samples there",
                    path.display()
                ),
                Err(e) => return Err(e).with_context(|| format!("cannot create '{}'", path.display())),
            }
        }
    }
    Ok(paths)
}

/// How long written characters may wait in the buffer: a terminal still sees the text flow.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Writes the prime text and then each generated character, buffered: flushed at each newline
/// and at least every [`FLUSH_EVERY`], so that the output streams without a write per
/// character. Returns the outcome and the symbols the output accepted (prime included).
fn stream(
    sampler: &mut Sampler,
    threads: usize,
    vocab: &Vocab,
    prime: &[u8],
    length: usize,
) -> (std::io::Result<()>, u64) {
    let stdout = std::io::stdout();
    let mut out =
        std::io::BufWriter::with_capacity(1 << 16, CountingWriter::new(stdout.lock(), vocab.bytes().is_some()));
    let result = stream_into(&mut out, sampler, threads, vocab, prime, length);
    // After a refused write the rest of the buffer is dropped, not written again.
    let (counted, _) = out.into_parts();
    (result, counted.symbols())
}

fn stream_into(
    out: &mut impl Write,
    sampler: &mut Sampler,
    threads: usize,
    vocab: &Vocab,
    prime: &[u8],
    length: usize,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8);
    out.write_all(prime)?;
    let mut flushed = std::time::Instant::now();
    sampler.generate(length, threads, |id| {
        buf.clear();
        vocab.decode_into(id, &mut buf);
        out.write_all(&buf)?;
        // The clock is read at every character (tens of nanoseconds, against microseconds of
        // generation): a slow model's text is flushed on time too.
        if buf.contains(&b'\n') || flushed.elapsed() >= FLUSH_EVERY {
            out.flush()?;
            flushed = std::time::Instant::now();
        }
        Ok::<(), std::io::Error>(())
    })?;
    writeln!(out)?;
    out.flush()
}
