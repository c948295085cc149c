//! Where a `train` run starts: from scratch, from a model (`--init-from`) or from a checkpoint
//! (`--resume`); which corpus and batch shape follow from that; and the weights and settings
//! the trainer is built from, once every check against the corpus has passed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use charrnn_corpora::builtin as builtin_corpus;
use charrnn_engine::data::Vocab;
use charrnn_engine::files::checkpoint::{parse_checkpoint, Checkpoint, CHECKPOINT_FILE};
use charrnn_engine::files::model_dir::load_model;
use charrnn_engine::training::memory::training_memory;
use charrnn_engine::training::run_plan::ResumeCorpus;
use charrnn_engine::training::run_settings::{check_recordable_path, Requested, RunRecord};
use charrnn_engine::training::Origin;
use charrnn_engine::{Model, ModelConfig};

use crate::shared::corpus::{BatchArgs, Corpus, CorpusArgs};
use crate::shared::output::infoln;
use crate::shared::ranks::Ranks;
use crate::train::args::{check_weight_decay, TrainArgs};
use crate::train::run_dir::same_path;
use crate::train::settings::{check_init_flags, check_resume_flags, describe_changes, fresh_record};

/// What a run starts from besides a fresh initialisation.
pub enum Start {
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

/// Loads what `args` start from (checkpoint or model) and refuses requested settings that
/// contradict it.
/// In a run of several ranks, rank 0 reads the checkpoint and hands its bytes to the others.
pub fn load_start(args: &TrainArgs, requested: &Requested, ranks: &Ranks) -> Result<Start> {
    Ok(match (&args.resume, &args.init_from) {
        (Some(dir), _) => {
            let path = dir.join(CHECKPOINT_FILE);
            let checkpoint = ranks
                .read_on_leader(&path)
                .and_then(|bytes| Ok(parse_checkpoint(&bytes, &path)?))
                .with_context(|| format!("cannot resume from '{}'", dir.display()))?;
            let record: RunRecord = serde_json::from_value(checkpoint.meta.run.clone())
                .with_context(|| format!("'{}' holds no run settings", path.display()))?;
            check_resume_flags(&record, &checkpoint.model.config, requested)?;
            Start::Resume { dir: dir.clone(), checkpoint: Box::new(checkpoint), record: Box::new(record) }
        }
        (None, Some(dir)) => {
            let (model, vocab, _) =
                load_model(dir).with_context(|| format!("cannot start from the model in '{}'", dir.display()))?;
            check_init_flags(&model.config, requested)?;
            Start::Init(Box::new((model, vocab)))
        }
        (None, None) => Start::Fresh,
    })
}

/// The corpus and batch shape of the run: the checkpoint's when resuming (`--data` may name
/// the same text elsewhere; a built-in corpus whose cached copy is gone is written again), the
/// arguments' otherwise.
pub fn corpus_for(start: &Start, args: &TrainArgs) -> Result<(CorpusArgs, BatchArgs)> {
    let mut corpus_args = args.corpus.clone();
    if let Start::Resume { dir, record, .. } = &start {
        corpus_args.bytes = record.bytes;
        if corpus_args.data.is_none() {
            let builtin_copy = builtin_corpus::user_copy_path().is_some_and(|copy| same_path(&copy, &record.data));
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
    Ok((corpus_args, batch_args))
}

/// What a run is built from, once the checkpoint or model is known to fit the corpus and the
/// memory available.
pub struct Settled {
    /// The weights (and, resuming, the optimiser and carried state).
    pub origin: Origin,
    /// The directory and step resumed from.
    pub resumed_from: Option<(PathBuf, u64)>,
    /// The run's settings.
    pub record: RunRecord,
}

/// The [`Settled`] start of a run over `corpus`.
pub fn settle(
    start: Start,
    corpus: &Corpus,
    args: &TrainArgs,
    requested: &Requested,
    workers: Workers,
    batches_per_epoch: u64,
) -> Result<Settled> {
    let vocab = &corpus.prepared.vocab;
    let data = std::fs::canonicalize(&corpus.input).unwrap_or_else(|_| corpus.input.clone());
    // Recorded in every checkpoint: refused now, not when the first one is written.
    check_recordable_path(&data)?;
    let tokens_sha256 = corpus.tokens_sha256()?;
    let settled = match start {
        Start::Resume { dir, checkpoint, record } => {
            let mut record = *record;
            let resume_corpus = ResumeCorpus { path: &corpus.input, vocab, tokens_sha256: &tokens_sha256 };
            record.check_resume_corpus(&checkpoint, &resume_corpus, &dir)?;
            let changed = record.apply_resume(requested, batches_per_epoch);
            if !changed.is_empty() {
                infoln!("changed from the checkpoint: {}", describe_changes(&changed));
            }
            record.data = data;
            record.tokens_sha256 = Some(tokens_sha256);
            check_memory(&checkpoint.model.config, &record, workers)?;
            let step = checkpoint.meta.step;
            Settled { origin: Origin::Checkpoint(checkpoint), resumed_from: Some((dir, step)), record }
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
            let record = fresh_record(args, data, tokens_sha256, batches_per_epoch);
            let model = match start {
                Start::Init(loaded) => {
                    let (model, model_vocab) = *loaded;
                    if &model_vocab != vocab {
                        bail!(
                            "the model in '{}' was trained on another vocabulary than this corpus's",
                            args.init_from.as_deref().unwrap_or(Path::new("?")).display()
                        );
                    }
                    check_memory(&model.config, &record, workers)?;
                    model
                }
                _ => {
                    check_memory(&config, &record, workers)?;
                    Model::<f32>::with_forget_bias(config, args.seed, args.forget_bias)
                }
            };
            Settled { origin: Origin::Weights(model), resumed_from: None, record }
        }
    };
    check_weight_decay(settled.record.weight_decay, settled.record.lr)?;
    Ok(settled)
}

/// Who trains on this machine: `threads` per process, and in an MPI run its rank's rows and the
/// ranks sharing the machine.
#[derive(Clone, Copy)]
pub struct Workers {
    pub threads: usize,
    /// Rows of the batch this process trains on.
    pub rows: usize,
    /// Processes of the run on this machine (each needs about as much).
    pub processes_here: usize,
}

/// Refuses a run that will not fit in the memory available, before allocating it.
fn check_memory(config: &ModelConfig, record: &RunRecord, workers: Workers) -> Result<()> {
    let need = memory_needed(config, record, workers);
    crate::shared::memory_check::refuse_if_too_large(
        need.on_machine,
        need.in_process,
        "use a smaller --hidden, --batch or --seq-len",
    )
}

/// The bytes a run needs at its peak.
#[derive(Clone, Copy)]
pub struct MemoryNeed {
    /// This process's need, plus, in an MPI run, the staging copy of the gradients it sends.
    pub in_process: u64,
    /// That times the processes of the run on this machine.
    pub on_machine: u64,
}

/// What a run needs in this process and on this machine (see [`MemoryNeed`]).
pub fn memory_needed(config: &ModelConfig, record: &RunRecord, workers: Workers) -> MemoryNeed {
    let Workers { threads, rows, processes_here } = workers;
    let parts = threads.min(rows);
    let need = training_memory(
        config,
        rows,
        record.seq_len,
        parts,
        threads,
        record.dropout > 0.0 || record.output_dropout > 0.0,
        record.weight_drop > 0.0,
    );
    let staging = if processes_here > 1 { 4 * config.num_params() as u64 } else { 0 };
    let in_process = need.total() + staging;
    MemoryNeed { in_process, on_machine: in_process * processes_here as u64 }
}
