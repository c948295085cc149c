//! `charrnn-fast sample`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use charrnn_engine::data::Vocab;
use charrnn_engine::model_dir::load_model;
use charrnn_engine::sample::{SampleMode, SampleOptions, Sampler};
use clap::{Args, ValueEnum};

use crate::precision_arg::{slow_bf16_note, PrecisionArg};

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
    /// Model directory written by `train --out`
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Text that warms up the state; the output starts with it
    #[arg(long, default_value = " ", value_name = "TEXT")]
    pub prime: String,
    /// Characters to generate after the prime text
    #[arg(long, default_value_t = 4000, value_name = "N")]
    pub length: usize,
    /// How each character is chosen
    #[arg(long, value_enum, default_value_t = Mode::Weighted)]
    pub mode: Mode,
    /// Divide the logits by X before the softmax: < 1 is more conservative, > 1 more surprising
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
}

pub fn run(args: SampleArgs) -> Result<()> {
    let (model, vocab, _) =
        load_model(&args.model).with_context(|| format!("cannot load the model in '{}'", args.model.display()))?;
    if args.prime.is_empty() {
        anyhow::bail!("--prime must not be empty: the first character is drawn after it");
    }
    let prime = if args.skip_unknown {
        let ids = vocab.encode_lossy(&args.prime);
        if ids.is_empty() {
            anyhow::bail!("no character of the prime text is in this model's vocabulary");
        }
        ids
    } else {
        vocab.encode(&args.prime).context(
            "the prime text does not fit this model's vocabulary (--skip-unknown leaves such characters out)",
        )?
    };
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
        crate::output::errln!("{note}");
    }
    let mut sampler = Sampler::new(&model, options, vocab.id_of_char(' '))?;
    for &id in &prime {
        sampler.feed(id);
    }
    let started = std::time::Instant::now();
    match stream(&mut sampler, &vocab, &args.prime, args.length) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    }
    let seconds = started.elapsed().as_secs_f64();
    let (one, many) = if vocab.bytes().is_some() { ("byte", "bytes") } else { ("character", "characters") };
    crate::output::errln!(
        "sampled {} {} in {seconds:.2} s: {:.0} {many}/s",
        args.length,
        crate::output::plural(args.length, one, many),
        args.length as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Writes the prime text and then each generated character as soon as it is drawn.
fn stream(sampler: &mut Sampler<'_>, vocab: &Vocab, prime: &str, length: usize) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(8);
    out.write_all(prime.as_bytes())?;
    for _ in 0..length {
        let id = sampler.sample_next();
        buf.clear();
        vocab.decode_into(id, &mut buf);
        out.write_all(&buf)?;
        out.flush()?;
    }
    writeln!(out)
}
