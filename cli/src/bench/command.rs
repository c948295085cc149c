//! `charrnn-fast bench`: full training steps (forward, backward, clip, Adam) of a named
//! configuration, timed; prints the median tokens/s and the peak resident memory.

use anyhow::{bail, Context, Result};
use charrnn_engine::training::collective::block_rows;
use charrnn_engine::training::memory::training_memory;
use charrnn_engine::training::step_timing::{standard_flops_per_token, time_steps};
use charrnn_engine::training::{Layout, TrainOptions, Trainer};
use charrnn_engine::AdamHyper;
use charrnn_engine::{CellKind, Model, ModelConfig};
use clap::{Args, ValueEnum};

use crate::bench::trace_file::{Trace, TraceFile};
use crate::shared::corpus::{Corpus, CorpusArgs};
use crate::shared::output::{errln, outln, plural};
use crate::shared::precision_arg::{slow_bf16_note, PrecisionArg};
use crate::shared::ranks::Ranks;
use crate::train::args::Cell;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Config {
    /// The tutorial's model: 2 × 128 LSTM, embedding 128, B=50, T=50
    Seed,
    /// 3 × 512 LSTM, embedding 512, B=50, T=100
    Big,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// Named model and batch shape
    #[arg(long, value_enum, default_value_t = Config::Seed)]
    pub config: Config,
    /// Override the configuration's cell
    #[arg(long, value_enum)]
    pub cell: Option<Cell>,
    /// Worker threads [default: all cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Timed steps
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// Untimed steps first
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub warmup: u32,
    /// Corpus to draw batches from [default: the built-in tinyshakespeare]
    #[arg(long, value_name = "FILE")]
    pub data: Option<std::path::PathBuf>,
    /// What the matrix products round their operands to
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Also write the timed steps as a Chrome trace-event file (open it in ui.perfetto.dev or
    /// chrome://tracing): one track per batch part and one for the optimiser, a span per phase.
    /// Only a regular file is replaced (a symbolic link is written through); a directory, a
    /// device or a FIFO is refused before the benchmark runs
    #[arg(long, value_name = "FILE.json")]
    pub trace: Option<std::path::PathBuf>,
}

impl Config {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Config::Seed => "seed",
            Config::Big => "big",
        }
    }
}

/// Model and batch shape of a named configuration.
pub fn shape(config: Config, cell: CellKind, vocab_size: usize) -> (ModelConfig, usize, usize) {
    let (layers, width, batch, seq_len) = match config {
        Config::Seed => (2, 128, 50, 50),
        Config::Big => (3, 512, 50, 100),
    };
    let model = ModelConfig { cell, vocab_size, embed_size: width, hidden_size: width, num_layers: layers };
    (model, batch, seq_len)
}

/// One process, or one rank of an MPI run (the global batch split across the ranks; rank 0
/// prints and writes the trace).
pub fn run(args: BenchArgs, ranks: &Ranks) -> Result<()> {
    // Opened before any work: an output that cannot be written is found now, not after the
    // benchmark.
    let trace_file = args.trace.as_deref().filter(|_| ranks.is_leader()).map(TraceFile::create).transpose()?;
    let threads = crate::shared::threads::init_threads(args.threads.or(ranks.default_threads()))?;
    let cell = args.cell.map_or(CellKind::Lstm, Cell::kind);
    let corpus_args = CorpusArgs { data: args.data.clone(), cache: None, bytes: false, rebuild_cache: false };
    let corpus = ranks.local_first(|| Corpus::open(&corpus_args))?;
    let vocab_size = corpus.prepared.vocab.len();
    let (config, batch, seq_len) = shape(args.config, cell, vocab_size);
    config.validate()?;
    if batch < ranks.size {
        bail!("a batch of {batch} rows cannot be split across {} ranks", ranks.size);
    }
    // This rank's rows, and every rank on this machine needing about as much.
    let rows = block_rows(batch, ranks.size, ranks.rank).len();
    let need = training_memory(&config, rows, seq_len, threads.min(rows), threads, false, false);
    let need_here = need.total() * ranks.local_size as u64;
    crate::shared::memory_check::refuse_if_too_large(need_here, need.total(), "use --config seed or fewer --threads")?;
    let options = TrainOptions {
        batch_size: batch,
        seq_len,
        adam: AdamHyper::default(),
        clip: 5.0,
        dropout: 0.0,
        output_dropout: 0.0,
        weight_drop: 0.0,
        state_reset: 0.0,
        dropout_seed: 42,
        precision: args.precision.precision(),
    };
    let mut trainer =
        Trainer::new(Model::<f32>::new(config, 42), &options, Layout { parts: threads, group: ranks.group() });
    let level = charrnn_kernels::dispatch::cpu_level();
    let cpu = charrnn_kernels::dispatch::cpu_model_name().unwrap_or_else(|| "an unnamed CPU".to_owned());
    let caches = charrnn_kernels::cpu_caches::cache_sizes();
    errln!(
        "bench: {cpu}, {} kernels (the CPU has up to {}), caches per core: L1d {} KiB, L2 {} KiB{}",
        level.name(),
        charrnn_kernels::dispatch::detected_level().name(),
        caches.l1d >> 10,
        caches.l2 >> 10,
        if caches.reported { "" } else { " (assumed: the CPU does not report them)" }
    );
    errln!(
        "bench: {} config, {} × {} {}, embedding {}, B={batch}, T={seq_len}, {} products, {}, data: {}",
        args.config.name(),
        config.num_layers,
        config.hidden_size,
        cell.name(),
        config.embed_size,
        options.precision,
        ranks.describe(threads),
        corpus.input.display()
    );
    if let Some(note) = slow_bf16_note(options.precision) {
        errln!("{note}");
    }

    let mut trace = args.trace.as_ref().map(|_| {
        // Per step and part: two stretches per layer each way, and the output's.
        trainer.record_spans(8 * config.num_layers + 8);
        Trace::new(trainer.num_parts())
    });
    if corpus.stream.len() < 2 {
        bail!("the corpus is too short to benchmark on");
    }
    let timed = time_steps(&mut trainer, &corpus.stream, args.warmup, args.steps, |step, track, span| {
        if let Some(trace) = trace.as_mut() {
            trace.add(step, track, span);
        }
    })
    .context("benchmark step")?;
    if let (Some(trace), Some(file)) = (&trace, trace_file) {
        let path = file.path().to_path_buf();
        trace.write(file)?;
        errln!("trace: {} (open it in ui.perfetto.dev or chrome://tracing)", path.display());
    }
    let (rates, median) = (&timed.rates, timed.median());
    let peak_rss_mb = peak_rss_kib().map(|k| k as f64 / 1024.0);
    let per_token = standard_flops_per_token(&config);
    let gflops = median * per_token / 1e9;
    // Every rank's cores: the ranks' machines are assumed alike.
    let cores = threads * ranks.size;
    let peak = charrnn_kernels::peak::peak_flops(level, options.precision) * cores as f64 / 1e9;
    outln!(
        "median {median:.0} tokens/s over {} {} (min {:.0}, max {:.0}), peak RSS {}",
        rates.len(),
        plural(rates.len(), "step", "steps"),
        rates[0],
        rates[rates.len() - 1],
        peak_rss_mb.map_or("unknown".to_owned(), |m| format!("{m:.1} MB"))
    );
    outln!(
        "{gflops:.1} GFLOP/s by the standard count of {:.3} MFLOP/token (3 × forward: 2·G·H·(E_l+H) per layer + 2·H·V), \
         {:.0}% of the measured {} peak ({peak:.1} GFLOP/s: {cores} × one {} core)",
        per_token / 1e6,
        100.0 * gflops / peak,
        charrnn_kernels::peak::peak_instruction(level, options.precision),
        level.name(),
    );
    let per_step = timed.phase_ms_per_step();
    let total: f64 = per_step.iter().map(|(_, ms)| ms).sum();
    let parts = timed.parts;
    outln!("per-phase time per step (mean over the {parts} batch parts running in parallel):");
    for (phase, ms) in &per_step {
        outln!("  {:<20} {ms:>9.3} ms  {:>5.1}%", phase.name(), 100.0 * ms / total);
    }
    outln!(
        "RESULT impl=charrnn-fast config={} threads={threads}{} tokens_per_sec={median:.1} peak_rss_mb={} kernels={} \
         precision={}",
        args.config.name(),
        if ranks.size > 1 { format!(" ranks={}", ranks.size) } else { String::new() },
        peak_rss_mb.map_or("nan".to_owned(), |m| format!("{m:.1}")),
        level.name(),
        options.precision
    );
    Ok(())
}

/// Peak resident set size (`VmHWM`), where /proc exists.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}
