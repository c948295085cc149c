//! `charrnn-fast train`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use charrnn_engine::checkpoint::{load_model, save_model};
use charrnn_engine::params::DEFAULT_FORGET_BIAS;
use charrnn_engine::train::{run as train_run, Schedule, TrainOptions, Trainer};
use charrnn_engine::{CellKind, Model, ModelConfig};
use charrnn_kernels::adam::AdamHyper;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::corpus::{BatchArgs, Corpus, CorpusArgs};
use crate::progress::Progress;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Cell {
    /// Long short-term memory
    Lstm,
    /// Vanilla tanh RNN
    Rnn,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Recurrent cell
    #[arg(long, value_enum, default_value_t = Cell::Lstm)]
    pub cell: Cell,
    /// Width of each recurrent layer's state
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: u32,
    /// Number of stacked recurrent layers
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub layers: u32,
    /// Width of the character embedding
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub embed: u32,
    /// Adam learning rate
    #[arg(long, default_value_t = 0.002, value_name = "X")]
    pub lr: f64,
    /// Clip gradients to this global L2 norm (0 disables)
    #[arg(long, default_value_t = 5.0, value_name = "X")]
    pub clip: f64,
    /// Passes over the training split
    #[arg(long, default_value_t = 2, value_name = "N", conflicts_with = "steps", value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Train for exactly N steps instead of whole epochs
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Also evaluate on the validation split every N steps (0: only at epoch ends and at the end)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_every: u64,
    /// Worker threads [default: all cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Initial LSTM forget-gate bias (the other biases start uniform, as in PyTorch)
    #[arg(long, default_value_t = DEFAULT_FORGET_BIAS, value_name = "X")]
    pub forget_bias: f64,
    /// Seed of the initial weights
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Start from the weights of a saved model (from `train --out`, or PyTorch through
    /// benches/reference/torch_charrnn.py) instead of a fresh initialisation; the model's shape
    /// comes from it and its vocabulary must be the corpus's. The optimiser starts fresh.
    #[arg(long, value_name = "DIR")]
    pub init_from: Option<PathBuf>,
    /// Directory to save the trained model in
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: TrainArgs) -> Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", args.lr);
    }
    if !args.forget_bias.is_finite() {
        bail!("--forget-bias must be a finite number (got {})", args.forget_bias);
    }
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        bail!("--clip must be 0 (off) or a positive number (got {})", args.clip);
    }
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot start the thread pool")?;

    let corpus = Corpus::open(&args.corpus)?;
    let (train, val) = corpus.batchers(&args.batch)?;
    let vocab = &corpus.prepared.vocab;
    let config = ModelConfig {
        cell: match args.cell {
            Cell::Lstm => CellKind::Lstm,
            Cell::Rnn => CellKind::Rnn,
        },
        vocab_size: vocab.len(),
        embed_size: args.embed as usize,
        hidden_size: args.hidden as usize,
        num_layers: args.layers as usize,
    };
    config.validate()?;
    let options = TrainOptions {
        batch_size: args.batch.batch_size as usize,
        seq_len: args.batch.seq_len as usize,
        adam: AdamHyper { lr: args.lr, ..AdamHyper::default() },
        clip: args.clip,
    };
    let total_steps = args.steps.unwrap_or(args.epochs * train.num_batches() as u64);
    let schedule = Schedule { total_steps, eval_every: args.eval_every };

    let model = match &args.init_from {
        None => Model::<f32>::with_forget_bias(config, args.seed, args.forget_bias),
        Some(dir) => {
            let (model, model_vocab, _) =
                load_model(dir).with_context(|| format!("cannot start from the model in '{}'", dir.display()))?;
            if &model_vocab != vocab {
                bail!("the model in '{}' was trained on another vocabulary than this corpus's", dir.display());
            }
            model
        }
    };
    let config = model.config;
    eprintln!("data: {}", corpus.describe());
    eprintln!(
        "model: {} × {} {}, embedding {}, {} parameters",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.embed_size,
        model.params.len()
    );
    eprintln!(
        "training: {total_steps} steps ({} batches of {}×{} per epoch{}), Adam lr {}, clip {}, {threads} threads",
        train.num_batches(),
        options.batch_size,
        options.seq_len,
        match &val {
            Some(v) => format!(", {} validation batches", v.num_batches()),
            None => String::new(),
        },
        args.lr,
        args.clip
    );

    let mut trainer = Trainer::new(model, &options);
    let mut progress = Progress::new(total_steps);
    let outcome = train_run(&mut trainer, &train, val.as_ref(), schedule, &mut progress);
    progress.finish();
    let summary = outcome?;

    println!(
        "trained {} steps in {:.1} s: mean {:.0} tokens/s, last training loss {:.4}",
        summary.steps,
        summary.train_time.as_secs_f64(),
        summary.tokens_per_sec(),
        summary.last_train_loss
    );
    if let Some(eval) = summary.last_eval {
        println!("final validation loss {:.4} nats/char ({:.4} bits/char)", eval.loss, eval.bits_per_char());
    }
    let record = json!({
        "data": corpus.input.display().to_string(),
        "batch_size": options.batch_size,
        "seq_len": options.seq_len,
        "lr": args.lr,
        "clip": args.clip,
        "seed": args.seed,
        "forget_bias": args.forget_bias,
        "val_frac": args.batch.val_frac,
        "steps": summary.steps,
        "tokens_per_sec": summary.tokens_per_sec(),
        "last_train_loss": summary.last_train_loss,
        "val_loss": summary.last_eval.map(|e| e.loss),
    });
    save_model(&args.out, &trainer.model, vocab, record)?;
    println!("saved model to {}", args.out.display());
    Ok(())
}

/// Sizes the global rayon pool: `requested`, or every core. Returns the thread count.
pub fn init_threads(requested: Option<u32>) -> Result<usize> {
    let threads = match requested {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot start the thread pool")?;
    Ok(threads)
}
