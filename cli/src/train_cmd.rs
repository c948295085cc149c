//! `charrnn-fast train`: prepare the corpus, train (or resume), checkpoint, log, save.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use charrnn_engine::checkpoint::{
    load_checkpoint, load_model, save_checkpoint, save_model, CheckpointMeta, CHECKPOINT_FILE,
};
use charrnn_engine::data::Vocab;
use charrnn_engine::train::{
    run as train_run, Control, EvalReport, LrDecay, Observer, Schedule, StepReport, TrainError, TrainOptions, Trainer,
};
use charrnn_engine::{CellKind, Model, ModelConfig};
use charrnn_kernels::adam::AdamHyper;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::corpus::{BatchArgs, Corpus, CorpusArgs};
use crate::progress::Progress;
use crate::run_log::RunLog;

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Long short-term memory
    Lstm,
    /// Vanilla tanh RNN
    Rnn,
    /// Gated recurrent unit (PyTorch's nn.GRU)
    Gru,
}

impl Cell {
    pub(crate) fn kind(self) -> CellKind {
        match self {
            Cell::Lstm => CellKind::Lstm,
            Cell::Rnn => CellKind::Rnn,
            Cell::Gru => CellKind::Gru,
        }
    }
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
    /// Multiply the learning rate by X after each epoch from --lr-decay-after on (1: no decay)
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub lr_decay: f64,
    /// Epochs at the full learning rate before --lr-decay applies
    #[arg(long, default_value_t = 10, value_name = "EPOCHS")]
    pub lr_decay_after: u64,
    /// Clip gradients to this global L2 norm (0 disables)
    #[arg(long, default_value_t = 5.0, value_name = "X")]
    pub clip: f64,
    /// Dropout probability in [0, 1) on each recurrent layer's output before it feeds the next
    /// layer (inverted dropout, as char-rnn); not on the embedding, not after the last layer,
    /// never in evaluation or sampling. Masks are fixed by --seed and the step (reproducible)
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub dropout: f64,
    /// Passes over the training split
    #[arg(long, default_value_t = 2, value_name = "N", conflicts_with = "steps", value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Train for exactly N steps instead of whole epochs (with --resume: the new total)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Also evaluate on the validation split every N steps (0: only at epoch ends and at the end)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_every: u64,
    /// Save a checkpoint every N steps (0: only at the end and on Ctrl-C)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub checkpoint_every: u64,
    /// Continue exactly where the checkpoint in DIR (a previous --out) stopped: weights,
    /// optimiser, step, carried state and settings all come from it
    #[arg(long, value_name = "DIR", conflicts_with = "init_from")]
    pub resume: Option<PathBuf>,
    /// Worker threads [default: all cores]; the batch is split into one part per thread
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Set the LSTM forget gate's initial bias to X (e.g. 1, as char-rnn does) [default: PyTorch's
    /// uniform initialisation, which trained better on tinyshakespeare]
    #[arg(long, value_name = "X")]
    pub forget_bias: Option<f64>,
    /// Seed of the initial weights
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Start from the weights of a saved model (from `train --out`, or PyTorch through
    /// benches/reference/torch_charrnn.py) instead of a fresh initialisation; the model's shape
    /// comes from it and its vocabulary must be the corpus's. The optimiser starts fresh.
    #[arg(long, value_name = "DIR")]
    pub init_from: Option<PathBuf>,
    /// Directory for the model, checkpoint.safetensors, best/ (best validation), log.csv and
    /// loss.svg
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
}

/// The settings of a run, kept in every checkpoint so that `--resume` continues it exactly,
/// and in the saved model's config.json (`benches/reference/torch_charrnn.py init` reads
/// `data`, `batch_size`, `seq_len`, `val_frac`, `lr`, `clip` and `val_loss` from there).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunRecord {
    data: PathBuf,
    bytes: bool,
    val_frac: f64,
    batch_size: usize,
    seq_len: usize,
    lr: f64,
    lr_decay: f64,
    lr_decay_after: u64,
    clip: f64,
    /// Dropout between layers (absent in checkpoints from before it existed: none).
    #[serde(default)]
    dropout: f64,
    seed: u64,
    #[serde(default)]
    forget_bias: Option<f64>,
    total_steps: u64,
    eval_every: u64,
    checkpoint_every: u64,
    best_val_loss: Option<f64>,
    /// Filled in when a model is saved.
    #[serde(default)]
    steps: u64,
    #[serde(default)]
    val_loss: Option<f64>,
    #[serde(default)]
    tokens_per_sec: Option<f64>,
}

fn check_args(args: &TrainArgs) -> Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", args.lr);
    }
    if !(args.lr_decay.is_finite() && args.lr_decay > 0.0 && args.lr_decay <= 1.0) {
        bail!("--lr-decay must be in (0, 1] (got {})", args.lr_decay);
    }
    if let Some(bias) = args.forget_bias.filter(|b| !b.is_finite()) {
        bail!("--forget-bias must be a finite number (got {bias})");
    }
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        bail!("--clip must be 0 (off) or a positive number (got {})", args.clip);
    }
    if !(args.dropout.is_finite() && (0.0..1.0).contains(&args.dropout)) {
        bail!("--dropout must be a probability in [0, 1) (got {})", args.dropout);
    }
    // The model's size, before preparing the corpus (with the smallest vocabulary: the real
    // one is checked again once known).
    ModelConfig {
        cell: args.cell.kind(),
        vocab_size: 1,
        embed_size: args.embed as usize,
        hidden_size: args.hidden as usize,
        num_layers: args.layers as usize,
    }
    .validate()?;
    Ok(())
}

pub fn run(args: TrainArgs) -> Result<()> {
    check_args(&args)?;
    let threads = init_threads(args.threads)?;
    let resumed = match &args.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT_FILE);
            let ck = load_checkpoint(&path).with_context(|| format!("cannot resume from '{}'", dir.display()))?;
            let record: RunRecord = serde_json::from_value(ck.meta.run.clone())
                .with_context(|| format!("'{}' holds no run settings", path.display()))?;
            Some((ck, record))
        }
        None => None,
    };

    // Settings: from the checkpoint when resuming (a new --steps or --data may override), else
    // from the arguments.
    let corpus_args = match &resumed {
        Some((_, rec)) => CorpusArgs {
            data: Some(args.corpus.data.clone().unwrap_or_else(|| rec.data.clone())),
            bytes: rec.bytes,
            ..args.corpus.clone()
        },
        None => args.corpus.clone(),
    };
    let batch_args = match &resumed {
        Some((_, rec)) => {
            BatchArgs { batch_size: rec.batch_size as u32, seq_len: rec.seq_len as u32, val_frac: rec.val_frac }
        }
        None => args.batch.clone(),
    };
    let corpus = Corpus::open(&corpus_args)?;
    let (train, val) = corpus.batchers(&batch_args)?;
    let vocab = &corpus.prepared.vocab;

    let (model, start_step, mut record) = match resumed {
        Some((ck, mut rec)) => {
            if &ck.vocab != vocab {
                bail!("the checkpoint was trained on another vocabulary than '{}' gives", corpus.input.display());
            }
            if let Some(steps) = args.steps {
                rec.total_steps = steps;
            }
            rec.data = corpus.input.clone();
            let step = ck.meta.step;
            let model = ck.model.clone();
            (model, Some((step, ck)), rec)
        }
        None => {
            let config = ModelConfig {
                cell: args.cell.kind(),
                vocab_size: vocab.len(),
                embed_size: args.embed as usize,
                hidden_size: args.hidden as usize,
                num_layers: args.layers as usize,
            };
            config.validate()?;
            let model = match &args.init_from {
                None => Model::<f32>::with_forget_bias(config, args.seed, args.forget_bias),
                Some(dir) => {
                    let (model, model_vocab, _) = load_model(dir)
                        .with_context(|| format!("cannot start from the model in '{}'", dir.display()))?;
                    if &model_vocab != vocab {
                        bail!("the model in '{}' was trained on another vocabulary than this corpus's", dir.display());
                    }
                    model
                }
            };
            let rec = RunRecord {
                data: corpus.input.clone(),
                bytes: args.corpus.bytes,
                val_frac: args.batch.val_frac,
                batch_size: args.batch.batch_size as usize,
                seq_len: args.batch.seq_len as usize,
                lr: args.lr,
                lr_decay: args.lr_decay,
                lr_decay_after: args.lr_decay_after,
                clip: args.clip,
                dropout: args.dropout,
                seed: args.seed,
                forget_bias: args.forget_bias,
                total_steps: args.steps.unwrap_or(args.epochs * train.num_batches() as u64),
                eval_every: args.eval_every,
                checkpoint_every: args.checkpoint_every,
                best_val_loss: None,
                steps: 0,
                val_loss: None,
                tokens_per_sec: None,
            };
            (model, None, rec)
        }
    };
    let config = model.config;
    let options = TrainOptions {
        batch_size: record.batch_size,
        seq_len: record.seq_len,
        adam: AdamHyper { lr: record.lr, ..AdamHyper::default() },
        clip: record.clip,
        dropout: record.dropout,
        dropout_seed: record.seed,
    };
    if record.dropout > 0.0 && config.num_layers == 1 {
        eprintln!("warning: --dropout acts between layers; with one layer it does nothing");
    }
    let mut trainer = Trainer::new(model, &options);
    let start = match &start_step {
        Some((step, ck)) => {
            trainer.restore(&ck.adam_m, &ck.adam_v, ck.adam_step, &ck.state);
            *step
        }
        None => 0,
    };
    if start >= record.total_steps {
        bail!(
            "the checkpoint is at step {start} of {}: nothing left to do (pass --steps N to go further)",
            record.total_steps
        );
    }
    let schedule = Schedule {
        start_step: start,
        total_steps: record.total_steps,
        eval_every: record.eval_every,
        lr: record.lr,
        lr_decay: (record.lr_decay < 1.0)
            .then_some(LrDecay { factor: record.lr_decay, after_epochs: record.lr_decay_after }),
    };

    eprintln!("data: {}", corpus.describe());
    eprintln!(
        "model: {} × {} {}, embedding {}, {} parameters",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.embed_size,
        trainer.model.params.len()
    );
    eprintln!(
        "training: steps {}..={} ({} batches of {}×{} per epoch{}), Adam lr {}, clip {}, {threads} threads{}",
        start + 1,
        record.total_steps,
        train.num_batches(),
        record.batch_size,
        record.seq_len,
        match &val {
            Some(v) => format!(", {} validation batches", v.num_batches()),
            None => String::new(),
        },
        record.lr,
        record.clip,
        if start > 0 { format!(", resumed from {}", args.out.display()) } else { String::new() }
    );

    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create '{}'", args.out.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // A second signal stops at once; the last checkpoint stays intact (atomic writes).
        ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\nstopping now");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing this step and saving a checkpoint (again to stop at once)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let mut observer = TrainObserver {
        progress: Progress::new(record.total_steps, start),
        log: RunLog::open(&args.out, start_step.as_ref().map(|(s, _)| *s))?,
        out: args.out.clone(),
        vocab: vocab.clone(),
        record: record.clone(),
        interrupted: interrupted.clone(),
        last_checkpoint: start,
    };
    let outcome = train_run(&mut trainer, &train, val.as_ref(), schedule, &mut observer);
    observer.progress.finish();
    observer.log.flush()?;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e @ (TrainError::NonFiniteLoss { .. } | TrainError::NonFiniteGradient { .. })) => {
            let kept = if observer.last_checkpoint > 0 {
                format!("; the checkpoint of step {} in '{}' is intact", observer.last_checkpoint, args.out.display())
            } else {
                String::new()
            };
            bail!("{e}{kept}");
        }
        Err(e) => return Err(e.into()),
    };
    record = observer.record.clone();
    if summary.last_step > observer.last_checkpoint {
        observer.checkpoint(summary.last_step, &trainer)?;
    }
    let plot = observer.log.plot()?;

    println!(
        "trained steps {}..={} in {:.1} s: mean {:.0} tokens/s, last training loss {:.4}",
        start + 1,
        summary.last_step,
        summary.train_time.as_secs_f64(),
        summary.tokens_per_sec(),
        summary.last_train_loss
    );
    if let Some(eval) = summary.last_eval {
        println!("final validation loss {:.4} nats/char ({:.4} bits/char)", eval.loss, eval.bits_per_char());
    }
    record.steps = summary.last_step;
    record.val_loss = summary.last_eval.map(|e| e.loss);
    record.tokens_per_sec = Some(summary.tokens_per_sec());
    save_model(&args.out, &trainer.model, vocab, serde_json::to_value(&record)?)?;
    println!(
        "saved model to {} (checkpoint.safetensors, log.csv, {}{})",
        args.out.display(),
        plot.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        if record.best_val_loss.is_some() { ", best/" } else { "" }
    );
    if summary.stopped {
        println!(
            "stopped at step {} of {}; continue with --resume {}",
            summary.last_step,
            record.total_steps,
            args.out.display()
        );
    }
    Ok(())
}

/// Prints progress, logs, saves checkpoints and the best model, and stops on Ctrl-C.
struct TrainObserver {
    progress: Progress,
    log: RunLog,
    out: PathBuf,
    vocab: Vocab,
    record: RunRecord,
    interrupted: Arc<AtomicBool>,
    last_checkpoint: u64,
}

impl TrainObserver {
    fn checkpoint(&mut self, step: u64, trainer: &Trainer) -> Result<(), TrainError> {
        let run = serde_json::to_value(&self.record).unwrap_or_default();
        save_checkpoint(&self.out.join(CHECKPOINT_FILE), trainer, &self.vocab, CheckpointMeta::new(step, run))?;
        self.last_checkpoint = step;
        Ok(())
    }
}

impl Observer for TrainObserver {
    fn on_step(&mut self, r: &StepReport) {
        self.progress.on_step(r);
        self.log.step(r.step, r.epoch, r.outcome.loss, r.tokens_per_sec, r.lr);
    }

    fn on_eval(&mut self, r: &EvalReport, trainer: &Trainer) -> Result<(), TrainError> {
        self.progress.on_eval(r);
        self.log.eval(r.step, r.loss);
        if self.record.best_val_loss.is_none_or(|best| r.loss < best) {
            self.record.best_val_loss = Some(r.loss);
            let mut rec = self.record.clone();
            rec.steps = r.step;
            rec.val_loss = Some(r.loss);
            save_model(
                &best_dir(&self.out),
                &trainer.model,
                &self.vocab,
                serde_json::to_value(&rec).unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    fn after_step(&mut self, step: u64, trainer: &Trainer) -> Result<Control, TrainError> {
        // The log is flushed every step so that it survives a crash.
        if let Err(e) = self.log.flush() {
            self.progress.println(&format!("warning: {e:#}"));
        }
        let every = self.record.checkpoint_every;
        let stop = self.interrupted.load(Ordering::SeqCst);
        if stop || (every > 0 && step.is_multiple_of(every)) {
            self.checkpoint(step, trainer)?;
        }
        Ok(if stop { Control::Stop } else { Control::Continue })
    }
}

fn best_dir(out: &Path) -> PathBuf {
    out.join("best")
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
