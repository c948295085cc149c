//! `charrnn-fast train`: prepare the corpus, train (or resume), checkpoint, log, save.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use charrnn_engine::checkpoint::CHECKPOINT_FILE;
use charrnn_engine::model_dir::save_model;
use charrnn_engine::train::{run as train_run, LrDecay, RunError, Schedule, TrainOptions, Trainer};
use charrnn_kernels::adam::AdamHyper;
use clap::ArgMatches;

use crate::corpus::Corpus;
use crate::output::{errln, outln, plural};
use crate::progress::Progress;
use crate::run_dir::{same_path, RunDir};
use crate::run_log::RunLog;
use crate::run_settings::Given;
use crate::run_start::{corpus_for, load_start, settle, Origin, Settled, Start};
use crate::threads::init_threads;
use crate::train_args::{check_args, TrainArgs};
use crate::train_observer::{IntactCheckpoint, TrainObserver};

/// Where a run goes when neither --out nor --resume names a directory.
const DEFAULT_OUT: &str = "out";

pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    let requested = Given(matches).requested(&args);
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

    let start = load_start(&args, &requested)?;
    let resumed_in_place = matches!(&start, Start::Resume { dir, .. } if same_path(dir, run_dir.path()));
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

    let (corpus_args, batch_args) = corpus_for(&start, &args)?;
    let corpus = Corpus::open(&corpus_args)?;
    let (train, val) = corpus.batchers(&batch_args)?;
    let vocab = &corpus.prepared.vocab;
    let batches_per_epoch = train.num_batches() as u64;

    let Settled { origin, resumed_from, record } =
        settle(start, &corpus, &args, &requested, threads, batches_per_epoch)?;
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
        Err(RunError::Train(e)) => bail!("{}; {}", crate::flags::link(&e), observer.intact()),
        Err(RunError::Observer(e)) => return Err(observer.failed(e)),
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
