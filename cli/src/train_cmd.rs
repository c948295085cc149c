//! `charrnn-fast train`: prepare the corpus, train (or resume), checkpoint, log, save.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use charrnn_engine::checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta, CHECKPOINT_FILE};
use charrnn_engine::data::Vocab;
use charrnn_engine::memory::training_memory;
use charrnn_engine::model_dir::{load_model, save_model};
use charrnn_engine::tensor_file::CheckpointError;
use charrnn_engine::train::{
    run as train_run, Control, EvalReport, LrDecay, Observer, Schedule, StepReport, TrainOptions, Trainer,
};
use charrnn_engine::{Model, ModelConfig};
use charrnn_kernels::adam::AdamHyper;
use clap::ArgMatches;

use crate::corpus::{BatchArgs, Corpus};
use crate::output::{errln, outln, plural};
use crate::progress::Progress;
use crate::run_dir::{same_dir, RunDir};
use crate::run_log::RunLog;
use crate::run_settings::{apply_resume_flags, check_init_flags, check_resume_flags, Given, RunRecord};
use crate::threads::init_threads;
use crate::train_args::{check_args, TrainArgs};
use charrnn_corpora::builtin as builtin_corpus;

/// Whether two paths name the same file, by their text once made absolute (the file may not
/// exist).
fn same_file(a: &Path, b: &Path) -> bool {
    std::path::absolute(a).ok() == std::path::absolute(b).ok()
}

/// Where a run goes when neither --out nor --resume names a directory.
const DEFAULT_OUT: &str = "out";

/// The weights a trainer is built from: a model (fresh or `--init-from`), or a whole
/// checkpoint (`--resume`: optimiser and carried state too).
enum Origin {
    Weights(Model<f32>),
    Checkpoint(Box<Checkpoint>),
}

/// What a run starts from besides a fresh initialisation.
enum Start {
    Fresh,
    /// `--init-from`: the model's weights; the optimiser starts fresh.
    Init(Box<(Model<f32>, Vocab)>),
    /// `--resume`: everything, from the checkpoint in `dir`.
    Resume {
        dir: PathBuf,
        checkpoint: Box<Checkpoint>,
        record: Box<RunRecord>,
    },
}

pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    let given = Given(matches);
    check_args(&args)?;
    let threads = init_threads(args.threads)?;
    let out_path = args.out.clone().or_else(|| args.resume.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    if let Some(dir) = &args.resume {
        if !dir.join(CHECKPOINT_FILE).is_file() {
            bail!("cannot resume from '{}': it holds no {CHECKPOINT_FILE}", dir.display());
        }
    }
    // The lock first, so that a second run on the same directory fails at once and touches
    // nothing; an unwritable --out fails here too, before any work.
    let run_dir = RunDir::lock(&out_path)?;

    let start = match (&args.resume, &args.init_from) {
        (Some(dir), _) => {
            let path = dir.join(CHECKPOINT_FILE);
            let checkpoint =
                load_checkpoint(&path).with_context(|| format!("cannot resume from '{}'", dir.display()))?;
            let record: RunRecord = serde_json::from_value(checkpoint.meta.run.clone())
                .with_context(|| format!("'{}' holds no run settings", path.display()))?;
            check_resume_flags(&record, &checkpoint.model.config, &args, &given)?;
            Start::Resume { dir: dir.clone(), checkpoint: Box::new(checkpoint), record: Box::new(record) }
        }
        (None, Some(dir)) => {
            let (model, vocab, _) =
                load_model(dir).with_context(|| format!("cannot start from the model in '{}'", dir.display()))?;
            check_init_flags(&model.config, &args, &given)?;
            Start::Init(Box::new((model, vocab)))
        }
        (None, None) => Start::Fresh,
    };
    let resumed_in_place = matches!(&start, Start::Resume { dir, .. } if same_dir(dir, run_dir.path()));
    if resumed_in_place && args.force {
        bail!("--force would clear the run that --resume continues in '{}'; leave it out", out_path.display());
    }
    // Another run's files are refused now, but cleared (with --force) only once every check
    // below has passed: a run that cannot start destroys nothing.
    let clear_first = !resumed_in_place && run_dir.run_file().is_some();
    if let Some(file) = run_dir.run_file().filter(|_| clear_first && !args.force) {
        let resumable = run_dir.path().join(CHECKPOINT_FILE).is_file();
        bail!(
            "'{}' holds another run ({file}); {}choose another --out, or pass --force to clear it",
            out_path.display(),
            if resumable { format!("continue it with --resume {}, ", out_path.display()) } else { String::new() }
        );
    }

    // The corpus: the checkpoint's (or --data) when resuming, else --data or the built-in one.
    let mut corpus_args = args.corpus.clone();
    if let Start::Resume { dir, record, .. } = &start {
        corpus_args.bytes = record.bytes;
        if corpus_args.data.is_none() {
            let builtin_copy = builtin_corpus::user_copy_path().is_some_and(|copy| same_file(&copy, &record.data));
            if builtin_copy && !record.data.is_file() {
                // The run trained on the built-in corpus, whose copy in the cache is gone.
                builtin_corpus::user_copy()?;
            }
            if !record.data.is_file() {
                bail!(
                    "the corpus of the run in '{}', '{}', is missing (moved or deleted?); pass --data FILE with the same text",
                    dir.display(),
                    record.data.display()
                );
            }
            corpus_args.data = Some(record.data.clone());
        }
    }
    let batch_args = match &start {
        Start::Resume { record, .. } => BatchArgs {
            batch_size: record.batch_size as u32,
            seq_len: record.seq_len as u32,
            val_frac: record.val_frac,
        },
        _ => args.batch.clone(),
    };
    let corpus = Corpus::open(&corpus_args)?;
    let (train, val) = corpus.batchers(&batch_args)?;
    let vocab = &corpus.prepared.vocab;
    let data = std::fs::canonicalize(&corpus.input).unwrap_or_else(|_| corpus.input.clone());
    let tokens_sha256 = corpus.tokens_sha256()?;
    let batches_per_epoch = train.num_batches() as u64;

    let (origin, resumed_from, record) = match start {
        Start::Resume { dir, checkpoint, record } => {
            let mut record = *record;
            if &checkpoint.vocab != vocab {
                bail!(
                    "the checkpoint was trained on another vocabulary than '{}' gives; pass --data FILE with the text of that run",
                    corpus.input.display()
                );
            }
            if record.tokens_sha256.as_ref().is_some_and(|sha| *sha != tokens_sha256) {
                bail!(
                    "the corpus '{}' is not the one the run in '{}' was trained on (its prepared tokens differ); \
                     pass --data FILE with the text of that run",
                    corpus.input.display(),
                    dir.display()
                );
            }
            let changed = apply_resume_flags(&mut record, &args, &given, batches_per_epoch);
            if !changed.is_empty() {
                errln!("changed from the checkpoint: {}", changed.join(", "));
            }
            record.data = data;
            record.tokens_sha256 = Some(tokens_sha256);
            if checkpoint.meta.batch_size != record.batch_size {
                bail!(
                    "the checkpoint in '{}' is damaged: its carried state is for {} batch rows, its settings say {}",
                    dir.display(),
                    checkpoint.meta.batch_size,
                    record.batch_size
                );
            }
            check_memory(&checkpoint.model.config, &record, threads)?;
            let step = checkpoint.meta.step;
            (Origin::Checkpoint(checkpoint), Some((dir, step)), record)
        }
        start => {
            let config = ModelConfig {
                cell: args.cell.kind(),
                vocab_size: vocab.len(),
                embed_size: args.embed as usize,
                hidden_size: args.hidden as usize,
                num_layers: args.layers as usize,
            };
            config.validate()?;
            let record = RunRecord::fresh(&args, data, tokens_sha256, batches_per_epoch);
            let model = match start {
                Start::Init(loaded) => {
                    let (model, model_vocab) = *loaded;
                    if &model_vocab != vocab {
                        bail!(
                            "the model in '{}' was trained on another vocabulary than this corpus's",
                            args.init_from.as_deref().unwrap_or(Path::new("?")).display()
                        );
                    }
                    check_memory(&model.config, &record, threads)?;
                    model
                }
                _ => {
                    check_memory(&config, &record, threads)?;
                    Model::<f32>::with_forget_bias(config, args.seed, args.forget_bias)
                }
            };
            (Origin::Weights(model), None, record)
        }
    };
    let config = match &origin {
        Origin::Weights(model) => model.config,
        Origin::Checkpoint(checkpoint) => checkpoint.model.config,
    };
    let options = TrainOptions {
        batch_size: record.batch_size,
        seq_len: record.seq_len,
        adam: AdamHyper { lr: record.lr, ..AdamHyper::default() },
        clip: record.clip,
        dropout: record.dropout,
        dropout_seed: record.seed,
    };
    if record.dropout > 0.0 && config.num_layers == 1 {
        errln!("warning: --dropout acts between layers; with one layer it does nothing");
    }
    let start_step = resumed_from.as_ref().map_or(0, |(_, step)| *step);
    if start_step >= record.total_steps {
        bail!(
            "the checkpoint is at step {start_step} of {}: nothing left to do (pass --steps N to go further)",
            record.total_steps
        );
    }
    // Every check has passed: only now is anything in --out changed.
    if clear_first {
        run_dir.clear()?;
        errln!("cleared the previous run in '{}' (--force)", out_path.display());
    }
    let stale = run_dir.remove_stale_temporaries();
    if stale > 0 {
        errln!("removed {stale} temporary {} left by an interrupted run", plural(stale, "file", "files"));
    }
    let intact = IntactCheckpoint::default();
    if let Some((dir, step)) = &resumed_from {
        intact.set(dir, *step);
        if !resumed_in_place {
            run_dir.adopt_best(dir).map_err(|e| anyhow!("{e:#}; {}", intact.describe()))?;
        }
    }
    let mut trainer = match origin {
        Origin::Weights(model) => Trainer::new(model, &options),
        Origin::Checkpoint(checkpoint) => Trainer::from_checkpoint(*checkpoint, &options),
    };
    let schedule = Schedule {
        start_step,
        total_steps: record.total_steps,
        eval_every: record.eval_every,
        lr: record.lr,
        lr_decay: (record.lr_decay < 1.0)
            .then_some(LrDecay { factor: record.lr_decay, after_epochs: record.lr_decay_after }),
    };

    errln!("data: {}", corpus.describe());
    errln!(
        "model: {} × {} {}, embedding {}, {} parameters",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.embed_size,
        trainer.model.params.len()
    );
    errln!(
        "training: steps {}..={} ({batches_per_epoch} {} of {}×{} per epoch{}), Adam lr {}, clip {}, {threads} {}{}",
        start_step + 1,
        record.total_steps,
        plural(batches_per_epoch as usize, "batch", "batches"),
        record.batch_size,
        record.seq_len,
        match &val {
            Some(v) => format!(", {} validation {}", v.num_batches(), plural(v.num_batches(), "batch", "batches")),
            None => String::new(),
        },
        record.lr,
        record.clip,
        plural(threads, "thread", "threads"),
        match &resumed_from {
            Some((dir, _)) => format!(", resumed from '{}' into '{}'", dir.display(), out_path.display()),
            None => String::new(),
        }
    );

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        let intact = intact.clone();
        // A second signal stops at once, with exit status 130; the last checkpoint stays
        // intact (atomic writes).
        ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                errln!("\nstopping now, without saving; {}", intact.describe());
                std::process::exit(130);
            }
            errln!("\ninterrupted: finishing this step and saving a checkpoint (again to stop at once)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let log = RunLog::open(run_dir.path(), resumed_from.as_ref().map(|(dir, step)| (dir.as_path(), *step)))?;
    let unit = record.unit();
    let mut observer = TrainObserver {
        progress: Progress::new(record.total_steps, start_step, unit),
        log,
        log_failed: false,
        out: out_path.clone(),
        best: run_dir.best(),
        vocab: vocab.clone(),
        record,
        interrupted: interrupted.clone(),
        last_checkpoint: start_step,
        intact,
    };
    let outcome = train_run(&mut trainer, &train, val.as_ref(), schedule, &mut observer);
    observer.progress.finish();
    observer.flush_log();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => bail!("{:#}; {}", anyhow::Error::from(e), observer.intact()),
    };
    if summary.last_step > observer.last_checkpoint {
        observer.checkpoint(summary.last_step, &trainer).map_err(|e| observer.failed(e))?;
    }
    let plot = match observer.log.plot() {
        Ok(plot) => plot.file_name().map_or(String::new(), |n| format!(", {}", n.to_string_lossy())),
        Err(e) => {
            errln!("warning: {e:#}");
            String::new()
        }
    };
    let mut record = observer.record.clone();

    outln!(
        "trained steps {}..={} in {:.1} s: mean {:.0} tokens/s, last training loss {:.4}",
        start_step + 1,
        summary.last_step,
        summary.train_time.as_secs_f64(),
        summary.tokens_per_sec(),
        summary.last_train_loss
    );
    if let Some(eval) = summary.last_eval {
        let when = if eval.step == summary.last_step { "final".to_owned() } else { "last".to_owned() };
        outln!(
            "{when} validation loss {:.4} nats/{unit} ({:.4} bits/{unit}), after step {}",
            eval.loss,
            eval.bits_per_char(),
            eval.step
        );
    }
    record.steps = summary.last_step;
    record.val_loss = summary.last_eval.map(|e| e.loss);
    record.val_loss_step = summary.last_eval.map(|e| e.step);
    record.tokens_per_sec = Some(summary.tokens_per_sec());
    save_model(run_dir.path(), &trainer.model, vocab, serde_json::to_value(&record)?)
        .map_err(|e| observer.failed(e))?;
    outln!(
        "saved model to {} (checkpoint.safetensors, log.csv{plot}{})",
        out_path.display(),
        if record.best_val_loss.is_some() { ", best/" } else { "" }
    );
    if summary.stopped {
        outln!(
            "stopped at step {} of {}; continue with `charrnn-fast train --resume {}`",
            summary.last_step,
            record.total_steps,
            out_path.display()
        );
    }
    Ok(())
}

/// Refuses a run that will not fit in the memory available, before allocating it.
fn check_memory(config: &ModelConfig, record: &RunRecord, threads: usize) -> Result<()> {
    let parts = threads.min(record.batch_size);
    let need = training_memory(config, record.batch_size, record.seq_len, parts, threads, record.dropout > 0.0);
    crate::memory_check::refuse_if_too_large(need.total(), "use a smaller --hidden, --batch or --seq-len")
}

/// Prints progress, logs, saves checkpoints and the best model, and stops on Ctrl-C.
struct TrainObserver {
    progress: Progress,
    log: RunLog,
    /// Whether writing `log.csv` has failed (warned once, not at every step).
    log_failed: bool,
    out: PathBuf,
    best: PathBuf,
    vocab: Vocab,
    record: RunRecord,
    interrupted: Arc<AtomicBool>,
    /// The last step checkpointed in `out` (the start step when resuming).
    last_checkpoint: u64,
    intact: IntactCheckpoint,
}

/// The newest checkpoint on disk, which a failure or a second Ctrl-C leaves intact: the one
/// resumed from until this run has written its own. Shared with the Ctrl-C handler.
#[derive(Clone, Default)]
struct IntactCheckpoint(Arc<Mutex<Option<(PathBuf, u64)>>>);

impl IntactCheckpoint {
    fn set(&self, dir: &Path, step: u64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((dir.to_path_buf(), step));
    }

    fn describe(&self) -> String {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((dir, step)) => format!(
                "the checkpoint of step {step} in '{}' is intact: continue with `charrnn-fast train --resume {}`",
                dir.display(),
                dir.display()
            ),
            None => "no checkpoint had been written yet".to_owned(),
        }
    }
}

impl TrainObserver {
    fn checkpoint(&mut self, step: u64, trainer: &Trainer) -> Result<(), CheckpointError> {
        let run = serde_json::to_value(&self.record).unwrap_or_default();
        save_checkpoint(
            &self.out.join(CHECKPOINT_FILE),
            &trainer.snapshot(),
            &self.vocab,
            CheckpointMeta::new(step, run),
        )?;
        self.last_checkpoint = step;
        self.intact.set(&self.out, step);
        Ok(())
    }

    /// Which checkpoint survives a failure now, and how to continue from it.
    fn intact(&self) -> String {
        self.intact.describe()
    }

    /// A failed write as the error the run ends with: the cause, then what survives.
    fn failed(&self, e: CheckpointError) -> anyhow::Error {
        anyhow!("{:#}; {}", anyhow::Error::from(e), self.intact())
    }

    fn flush_log(&mut self) {
        if let Err(e) = self.log.flush() {
            if !std::mem::replace(&mut self.log_failed, true) {
                self.progress.println(&format!("warning: {e:#} (training goes on; checkpoints are written apart)"));
            }
        }
    }
}

impl Observer for TrainObserver {
    type Error = CheckpointError;

    fn on_step(&mut self, r: &StepReport) {
        self.progress.on_step(r);
        self.log.step(r.step, r.epoch, r.outcome.loss, r.tokens_per_sec, r.lr);
    }

    fn on_eval(&mut self, r: &EvalReport, trainer: &Trainer) -> Result<(), CheckpointError> {
        self.progress.on_eval(r);
        self.log.eval(r.step, r.loss);
        if self.record.best_val_loss.is_none_or(|best| r.loss < best) {
            self.record.best_val_loss = Some(r.loss);
            let mut rec = self.record.clone();
            rec.steps = r.step;
            rec.val_loss = Some(r.loss);
            rec.val_loss_step = Some(r.step);
            save_model(&self.best, &trainer.model, &self.vocab, serde_json::to_value(&rec).unwrap_or_default())?;
        }
        Ok(())
    }

    fn after_step(&mut self, step: u64, trainer: &Trainer) -> Result<Control, CheckpointError> {
        // The log is flushed every step so that it survives a crash.
        self.flush_log();
        let every = self.record.checkpoint_every;
        let stop = self.interrupted.load(Ordering::SeqCst);
        if stop || (every > 0 && step.is_multiple_of(every)) {
            self.checkpoint(step, trainer)?;
        }
        Ok(if stop { Control::Stop } else { Control::Continue })
    }
}
