//! `charrnn-fast train`: prepare the corpus, train (or resume), checkpoint, log, save.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use charrnn_engine::data::Batcher;
use charrnn_engine::files::checkpoint::CHECKPOINT_FILE;
use charrnn_engine::files::model_dir::{load_model, save_model};
use charrnn_engine::files::tensor_file::f32_bytes;
use charrnn_engine::training::collective::block_rows;
use charrnn_engine::training::memory::Bytes;
use charrnn_engine::training::run_settings::{check_recordable_path, RunRecord};
use charrnn_engine::training::{run as train_run, Layout, RunError, RunSummary, Schedule, Trainer};
use charrnn_engine::ModelConfig;
use charrnn_fileio::chunks::sha256_hex;
use clap::ArgMatches;

use crate::shared::corpus::{BatchArgs, Corpus};
use crate::shared::output::{errln, infoln, outln, plural};
use crate::shared::precision_arg::{bf16_hint, slow_bf16_note};
use crate::shared::ranks::Ranks;
use crate::shared::threads::init_threads;
use crate::train::args::{check_args, TrainArgs};
use crate::train::budget_size::apply_budget_size;
use crate::train::duration_arg::show_duration;
use crate::train::observer::{FollowerObserver, IntactCheckpoint, TrainObserver};
use crate::train::progress::{Progress, ProgressPlan};
use crate::train::run_dir::{same_path, survey_of, RunDir};
use crate::train::run_log::RunLog;
use crate::train::settings::Given;
use crate::train::start::{corpus_for, load_start, memory_needed, settle, Settled, Start, Workers};
use crate::train::stop_request::{StopRequest, StoppedBeforeTraining};

/// Where a run goes when neither --out nor --resume names a directory.
const DEFAULT_OUT: &str = "out";

/// One process, or one rank of an MPI run: every rank trains, rank 0 alone owns `--out` (its
/// lock, log, checkpoints and model) and prints.
pub fn run(mut args: TrainArgs, matches: &ArgMatches, ranks: &Ranks) -> Result<()> {
    // A time budget counts from here: preparing the corpus is part of the run.
    let started = Instant::now();
    let requested = Given(matches).requested(&args);
    check_args(&args)?;
    if args.quiet {
        crate::shared::output::set_quiet();
    }
    let leader = ranks.is_leader();
    let threads = init_threads(args.threads.or(ranks.default_threads()))?;
    // Caught from the start: preparing a large corpus takes minutes. The checkpoint that a
    // second Ctrl-C leaves intact is the one resumed from until this run writes its own.
    let intact = IntactCheckpoint::default();
    let stop = StopRequest::install(intact.clone())?;
    let out_path = args.out.clone().or_else(|| args.resume.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    if let Some(dir) = args.resume.as_ref().filter(|_| leader) {
        if !dir.join(CHECKPOINT_FILE).is_file() {
            bail!("cannot resume from '{}': it holds no {CHECKPOINT_FILE}", dir.display());
        }
    }
    // The lock first, so that a second run on the same directory fails at once and touches
    // nothing; an unwritable --out fails here too, before any work. A dry run writes nothing
    // there, not even the lock.
    let run_dir = (leader && !args.dry_run).then(|| RunDir::lock(&out_path)).transpose()?;
    let start = load_start(&args, &requested, ranks)?;
    if let Start::Resume { dir, checkpoint, .. } = &start {
        intact.set(dir, checkpoint.meta.step);
    }
    let out_plan = leader.then(|| plan_out_dir(&args, &start, &out_path)).transpose()?;

    let (corpus_args, batch_args) = corpus_for(&start, &args)?;
    // The corpus path goes into the run's settings: one they cannot record is refused before
    // the corpus is prepared (settle checks the resolved path again).
    if let Some(data) = &corpus_args.data {
        check_recordable_path(&std::path::absolute(data).unwrap_or_else(|_| data.clone()))?;
    }
    let corpus = match ranks.local_first(|| Corpus::open_until(&corpus_args, &|| stop.is_requested())) {
        Err(_) if stop.is_requested() => return Err(StoppedBeforeTraining.into()),
        corpus => corpus?,
    };
    // A new --time run with sizes left out: the rule chooses them now that the corpus is known.
    let sized = match start {
        Start::Fresh => apply_budget_size(&mut args, &Given(matches), &corpus, threads * ranks.size),
        _ => None,
    };
    let batch_args = match sized {
        Some(_) => BatchArgs { batch_size: args.batch.batch_size, seq_len: args.batch.seq_len, ..batch_args },
        None => batch_args,
    };
    let (train, val) = corpus.batchers(&batch_args)?;
    if (batch_args.batch_size as usize) < ranks.size {
        bail!(
            "--batch {} is fewer rows than the {} ranks: each rank needs at least one",
            batch_args.batch_size,
            ranks.size
        );
    }
    let batches_per_epoch = train.num_batches() as u64;
    let workers = Workers {
        threads,
        rows: block_rows(batch_args.batch_size as usize, ranks.size, ranks.rank).len(),
        processes_here: ranks.local_size,
    };
    let Settled { origin, resumed_from, mut record } =
        settle(start, &corpus, &args, &requested, workers, batches_per_epoch)?;
    if let Some(line) = &sized {
        infoln!("sized for the budget: {line}");
        record.sized = Some(line.clone());
    }
    ranks.check_same(record.tokens_sha256.as_deref().unwrap_or_default(), |leader, mine| {
        format!(
            "the corpus '{}' here differs from rank 0's (prepared tokens sha256 {mine}, rank 0 has {leader}): every \
             machine must hold the same text at the same path",
            corpus.input.display()
        )
    })?;
    if record.dropout > 0.0 && origin.config().num_layers == 1 {
        errln!("warning: --dropout acts between layers; with one layer it does nothing");
    }
    let start_step = resumed_from.as_ref().map_or(0, |(_, step)| *step);
    let schedule = record.schedule(start_step, started)?;
    if args.dry_run {
        let config = origin.config();
        let memory = memory_needed(&config, &record, workers).on_machine;
        let out = out_plan.map(|plan| (out_path.as_path(), plan));
        describe_dry_run(&config, &schedule, &record, (&train, val.as_ref()), memory, &ranks.describe(threads), out);
        return Ok(());
    }

    // Every check has passed: only now is anything in --out changed, unless a stop was asked
    // for meanwhile (then nothing is, and the lock goes with a directory this run created).
    // The ranks of an MPI run decide together: rank 0 must not clear --out while another rank
    // stops.
    if ranks.any(stop.is_requested()) {
        return Err(StoppedBeforeTraining.into());
    }
    if let (Some(run_dir), Some(plan)) = (&run_dir, out_plan) {
        prepare_out_dir(run_dir, plan, resumed_from.as_ref(), &intact)?;
    }
    let interrupted = stop.training_starts();
    let mut trainer = Trainer::new(origin, &record.train_options(), Layout { parts: threads, group: ranks.group() });
    // Every rank starts from rank 0's weights, or the ranks would drift apart unseen (an
    // --init-from model that differs between machines, say).
    ranks.check_same(&weights_sha256(&trainer.model().params), |_, _| {
        "the starting weights here differ from rank 0's: --init-from must name the same model on every machine"
            .to_owned()
    })?;
    infoln!("data: {}", corpus.describe());
    let config = trainer.model().config;
    infoln!(
        "model: {} × {} {}, embedding {}, {} parameters",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.embed_size,
        trainer.model().params.len()
    );
    let out_dir = run_dir.as_ref().map_or(out_path.as_path(), RunDir::path);
    let resumed = resumed_from.as_ref().map(|(dir, _)| (dir.as_path(), out_dir));
    infoln!(
        "training: {}",
        describe_training(&schedule, &record, &train, val.as_ref(), &ranks.describe(threads), resumed)
    );
    for note in [bf16_hint(record.precision), slow_bf16_note(record.precision)].into_iter().flatten() {
        infoln!("{note}");
    }

    let Some(run_dir) = run_dir else {
        train_run(&mut trainer, &train, val.as_ref(), schedule, &mut FollowerObserver { interrupted })
            .map_err(|e| anyhow!("{}", crate::shared::flags::link(&e)))?;
        return Ok(());
    };
    let log = RunLog::open(run_dir.path(), resumed_from.as_ref().map(|(dir, step)| (dir.as_path(), *step)))?;
    let mut observer = TrainObserver {
        progress: Progress::new(
            ProgressPlan {
                total_steps: record.total_steps,
                start_step,
                budget: schedule.time.map(|t| (t.total, Duration::from_secs_f64(record.time_used_secs))),
            },
            record.unit(),
            args.log_every,
            args.quiet,
        ),
        log,
        log_failed: false,
        out: out_path,
        best: run_dir.best(),
        vocab: corpus.prepared.vocab.clone(),
        record,
        interrupted,
        intact,
        clock: None,
        budget_spent: false,
    };
    let outcome = train_run(&mut trainer, &train, val.as_ref(), schedule, &mut observer);
    observer.progress.finish();
    observer.flush_log();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(RunError::Train(e)) => bail!("{}; {}", crate::shared::flags::link(&e), observer.intact()),
        Err(RunError::Observer(e)) => return Err(observer.failed(e)),
    };
    finish(&mut observer, &trainer, &summary, start_step)
}

/// SHA-256 of the weights' bytes.
fn weights_sha256(params: &[f32]) -> String {
    sha256_hex(f32_bytes(params)).map_or_else(|e| e.to_string(), |(_, sha)| sha)
}

/// What a run may do to its `--out` before it starts.
struct OutDirPlan {
    /// The run continues in the directory it resumes from.
    resumed_in_place: bool,
    /// The directory holds this program's files of another run, to be cleared once every
    /// check has passed: a run (with `--force`), or the leftovers of one that saved nothing.
    clear_first: bool,
    /// What is cleared holds a run (a checkpoint or a model), not only leftovers.
    clears_a_run: bool,
}

/// Refuses an `--out` that holds another run (unless `--force`), that `--force` would clear
/// under the run it resumes, or that holds a file of someone else's under a name the run
/// writes (which the run would replace); clears nothing yet, so that a run that cannot start
/// destroys nothing. A directory whose files of ours hold no run (a log of a run that failed
/// before its first checkpoint) is not refused: its leftovers are cleared. It looks without
/// the lock, so that `--dry-run` can tell what would happen.
fn plan_out_dir(args: &TrainArgs, start: &Start, out_path: &Path) -> Result<OutDirPlan> {
    // A real run has locked it by now (which needs a directory); a dry run has not, and must
    // not blame files inside something that is not a directory.
    if out_path.exists() && !out_path.is_dir() {
        bail!("--out '{}' is not a directory", out_path.display());
    }
    let survey = survey_of(out_path);
    if !survey.in_the_way.is_empty() {
        let files: Vec<String> =
            survey.in_the_way.iter().map(|f| format!("'{}'", out_path.join(f).display())).collect();
        let (are, them) = if files.len() == 1 { ("is", "it") } else { ("are", "them") };
        bail!(
            "{} {are} not this program's, and this run would replace {them}; move {them} away, or choose another --out",
            files.join(", ")
        );
    }
    let resumed_in_place = matches!(start, Start::Resume { dir, .. } if same_path(dir, out_path));
    if resumed_in_place && args.force {
        bail!("--force would clear the run that --resume continues in '{}'; leave it out", out_path.display());
    }
    if let Some(file) = survey.run.as_ref().filter(|_| !resumed_in_place && !args.force) {
        let resumable = survey.ours.iter().any(|f| f == CHECKPOINT_FILE);
        bail!(
            "'{}' holds another run ({file}); {}choose another --out, or pass --force to clear it",
            out_path.display(),
            if resumable { format!("continue it with --resume {}, ", out_path.display()) } else { String::new() }
        );
    }
    Ok(OutDirPlan {
        resumed_in_place,
        clear_first: !resumed_in_place && !survey.ours.is_empty(),
        clears_a_run: survey.run.is_some(),
    })
}

/// Readies `--out` for a run that has passed every check: removes temporaries an interrupted
/// run left, clears another run's files (or a failed run's leftovers) when planned, and carries
/// `best/` over from the run resumed from (a failure names the checkpoint `intact` holds, the
/// one resumed from).
fn prepare_out_dir(
    run_dir: &RunDir,
    plan: OutDirPlan,
    resumed_from: Option<&(PathBuf, u64)>,
    intact: &IntactCheckpoint,
) -> Result<()> {
    let stale = run_dir.remove_stale_temporaries();
    if stale > 0 {
        infoln!("removed {stale} temporary {} left by an interrupted run", plural(stale, "file", "files"));
    }
    if plan.clear_first {
        let left = run_dir.clear()?;
        let out = run_dir.path().display();
        if plan.clears_a_run {
            infoln!("cleared the previous run in '{out}' (--force)");
        } else {
            infoln!("removed the files of an earlier run in '{out}' that saved no checkpoint or model");
        }
        for file in left {
            errln!("left '{}', which is not this program's", run_dir.path().join(file).display());
        }
    }
    if let Some((dir, _)) = resumed_from.filter(|_| !plan.resumed_in_place) {
        run_dir.adopt_best(dir).map_err(|e| anyhow!("{e:#}; {}", intact.describe()))?;
    }
    Ok(())
}

/// The `training:` line: steps, batches, optimiser, threads, and where a resumed run came
/// from (`resumed`: the directory resumed from and the one it goes on in).
fn describe_training(
    schedule: &Schedule,
    record: &RunRecord,
    train: &Batcher<'_>,
    val: Option<&Batcher<'_>>,
    workers: &str,
    resumed: Option<(&Path, &Path)>,
) -> String {
    let batches_per_epoch = train.num_batches();
    format!(
        "{} ({batches_per_epoch} {} of {}×{} per epoch{}), Adam lr {}{}{}, clip {}, {} products, {workers}{}",
        describe_length(schedule, record),
        plural(batches_per_epoch, "batch", "batches"),
        record.batch_size,
        record.seq_len,
        match val {
            Some(v) => format!(", {} validation {}", v.num_batches(), plural(v.num_batches(), "batch", "batches")),
            None => String::new(),
        },
        record.lr,
        if schedule.time.is_some() { " (warm-up, cosine to a tenth over the budget)" } else { "" },
        match record.weight_decay {
            0.0 => String::new(),
            decay => format!(", weight decay {decay} (decoupled, as AdamW)"),
        },
        record.clip,
        record.precision,
        match resumed {
            Some((from, out)) => format!(", resumed from '{}' into '{}'", from.display(), out.display()),
            None => String::new(),
        }
    )
}

/// How long the run is: its steps, or its time budget (with what is left of it and the cap on
/// its steps, if any).
fn describe_length(schedule: &Schedule, record: &RunRecord) -> String {
    let from = schedule.start_step + 1;
    let Some(time) = schedule.time else {
        return format!("steps {from}..={}", schedule.total_steps);
    };
    let used = Duration::from_secs_f64(record.time_used_secs);
    let mut text = format!("time {}", show_duration(time.total));
    if !used.is_zero() {
        text += &format!(" ({} left)", show_duration(time.total.saturating_sub(used)));
    }
    if from > 1 {
        text += &format!(" from step {from}");
    }
    if schedule.total_steps != u64::MAX {
        text += &format!(", at most to step {}", schedule.total_steps);
    }
    text
}

/// After the last step and its checkpoint: the plot, the summary lines, and the model with the
/// run's record. A time-budgeted run's model is its best validation's.
fn finish(observer: &mut TrainObserver, trainer: &Trainer, summary: &RunSummary, start_step: u64) -> Result<()> {
    let plot = match observer.log.plot() {
        Ok(plot) => plot.file_name().map_or(String::new(), |n| format!(", {}", n.to_string_lossy())),
        Err(e) => {
            errln!("warning: {e:#}");
            String::new()
        }
    };
    observer.record_time_used();
    let mut record = observer.record.clone();
    let unit = record.unit();
    outln!(
        "trained steps {}..={} in {:.1} s: mean {:.0} tokens/s, last training loss {:.4}",
        start_step + 1,
        summary.last_step,
        summary.train_time.as_secs_f64(),
        summary.tokens_per_sec(),
        summary.last_train_loss
    );
    if let Some(eval) = summary.last_eval {
        let when = if eval.step == summary.last_step { "final" } else { "last" };
        outln!(
            "{when} validation loss {:.4} nats/{unit} ({:.4} bits/{unit}), after step {}",
            eval.loss,
            eval.bits_per_char(),
            eval.step
        );
    }
    if let Some(time) = summary.time {
        outln!("used {} of the {} budget", show_duration(time.used), show_duration(time.total));
    }
    record.record_outcome(summary);
    match best_as_result(observer, &record, summary)? {
        Some((best, step, loss)) => {
            outln!("the model is the best validation's: step {step}, loss {loss:.4} nats/{unit}");
            record.val_loss = Some(loss);
            record.val_loss_step = Some(step);
            save_model(&observer.out, &best, &observer.vocab, record.to_json()?)
        }
        None => save_model(&observer.out, trainer.model(), &observer.vocab, record.to_json()?),
    }
    .map_err(|e| observer.failed(e))?;
    let out = observer.out.display();
    outln!(
        "saved model to {out} (checkpoint.safetensors, log.csv{plot}{})",
        if record.best_val_loss.is_some() { ", best/" } else { "" }
    );
    if summary.stopped {
        outln!(
            "stopped at step {} of {}; continue with `charrnn-fast train --resume {out}`",
            summary.last_step,
            record.total_steps
        );
    }
    Ok(())
}

/// A time-budgeted run's result is its best validation model (`best/`), when an evaluation
/// before the last found a lower loss than the last: its weights, step and loss.
fn best_as_result(
    observer: &TrainObserver,
    record: &RunRecord,
    summary: &RunSummary,
) -> Result<Option<(charrnn_engine::Model<f32>, u64, f64)>> {
    let (Some(_), Some(best), Some(last)) = (summary.time, record.best_val_loss, summary.last_eval) else {
        return Ok(None);
    };
    if best >= last.loss {
        return Ok(None);
    }
    let (model, _, file) = load_model(&observer.best).map_err(|e| observer.failed(e))?;
    let step = file.training.get("val_loss_step").and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok(Some((model, step, best)))
}

/// What `train --dry-run` prints, on stdout: the run that would start, in figures, and what
/// it would do to its `--out` (`out`, on rank 0).
fn describe_dry_run(
    config: &ModelConfig,
    schedule: &Schedule,
    record: &RunRecord,
    (train, val): (&Batcher<'_>, Option<&Batcher<'_>>),
    memory: u64,
    workers: &str,
    out: Option<(&Path, OutDirPlan)>,
) {
    let per_epoch = train.num_batches() as u64;
    let steps = schedule.total_steps - schedule.start_step;
    outln!(
        "model: {} × {} {}, embedding {}, vocabulary {}: {} parameters",
        config.num_layers,
        config.hidden_size,
        config.cell.name(),
        config.embed_size,
        config.vocab_size,
        config.num_params()
    );
    let available = match crate::shared::memory_check::available() {
        Some(available) => format!(" of {} available", Bytes(available)),
        None => String::new(),
    };
    outln!("memory: {} needed{available}", Bytes(memory));
    let validation = match val {
        Some(v) => format!("; validation {} {}", v.num_batches(), plural(v.num_batches(), "batch", "batches")),
        None => String::new(),
    };
    if schedule.time.is_some() {
        outln!(
            "length: {} (epochs of {per_epoch} {} of {}×{}){validation}",
            describe_length(schedule, record),
            plural(per_epoch as usize, "batch", "batches"),
            record.batch_size,
            record.seq_len,
        );
    } else {
        outln!(
            "steps: {}..={}, {steps} in all ({:.2} epochs of {per_epoch} {} of {}×{}){validation}",
            schedule.start_step + 1,
            schedule.total_steps,
            steps as f64 / per_epoch as f64,
            plural(per_epoch as usize, "batch", "batches"),
            record.batch_size,
            record.seq_len,
        );
    }
    outln!("workers: {workers}; {} products", record.precision);
    if let Some((dir, plan)) = out {
        let what = if plan.resumed_in_place {
            ", where the run goes on"
        } else if plan.clears_a_run {
            ", whose previous run would be cleared (--force)"
        } else if plan.clear_first {
            ", whose leftovers of a run that saved nothing would be removed"
        } else {
            ""
        };
        outln!("output: '{}'{what}", dir.display());
    }
    outln!("dry run: nothing trained, nothing written in --out");
}
