//! `train --time` with the model's size left out: the engine's rule
//! (`training::model_sizing`) chooses it for the budget, the corpus and this machine; every
//! flag typed keeps its value.

use charrnn_engine::training::model_sizing::{machine_peak_flops, run_of_width, size_for_budget, SizingInputs};
use charrnn_engine::Precision;

use crate::shared::corpus::Corpus;
use crate::shared::precision_arg::PrecisionArg;
use crate::train::args::TrainArgs;
use crate::train::settings::Given;

/// The flags the rule sets when they are not typed (clap's ids).
const SIZED: [&str; 11] = [
    "hidden",
    "layers",
    "embed",
    "dropout",
    "output_dropout",
    "state_reset",
    "weight_decay",
    "batch_size",
    "seq_len",
    "lr",
    "precision",
];

/// Sets in `args` the sizes the rule chooses for a new `--time` run whose flags leave any of
/// them out, and returns the line that says what it chose and why; `None` (and `args` as they
/// are) without `--time`, or when every size is typed. `threads`: every worker of the run.
pub fn apply_budget_size(args: &mut TrainArgs, given: &Given<'_>, corpus: &Corpus, threads: usize) -> Option<String> {
    let budget = args.time?;
    if SIZED.iter().all(|id| given.has(id)) {
        return None;
    }
    let bf16_native = Precision::Bf16.is_native();
    let precision = match args.precision {
        Some(p) => p.precision(),
        None if bf16_native => Precision::Bf16,
        None => Precision::F32,
    };
    let train_tokens = (corpus.stream.len() as f64 * (1.0 - args.batch.val_frac)) as u64;
    let inputs = SizingInputs {
        budget,
        train_tokens,
        vocab_size: corpus.prepared.vocab.len(),
        threads,
        bf16_native: precision == Precision::Bf16,
        peak_flops: machine_peak_flops(precision),
    };
    // A typed width keeps the rest of the rule's run for that width.
    let sized = match given.has("hidden") {
        true => run_of_width(&inputs, args.hidden as usize),
        false => size_for_budget(&inputs),
    };
    let set = |id: &str| !given.has(id);
    if set("hidden") {
        args.hidden = sized.config.hidden_size as u32;
    }
    if set("layers") {
        args.layers = sized.config.num_layers as u32;
    }
    if set("embed") {
        args.embed = sized.config.embed_size as u32;
    }
    if set("dropout") {
        args.dropout = sized.dropout;
    }
    if set("output_dropout") {
        args.output_dropout = sized.output_dropout;
    }
    if set("state_reset") {
        args.state_reset = sized.state_reset;
    }
    if set("weight_decay") {
        args.weight_decay = sized.weight_decay;
    }
    if set("batch_size") {
        args.batch.batch_size = sized.batch_size as u32;
    }
    if set("seq_len") {
        args.batch.seq_len = sized.seq_len as u32;
    }
    if set("lr") {
        args.lr = sized.lr;
    }
    if args.precision.is_none() {
        args.precision = Some(PrecisionArg::of(sized.precision));
    }
    // More passes than the rule allows: the run ends after them, its schedule laid over them.
    if let (Some(steps), false) = (sized.max_steps, given.has("steps")) {
        args.steps = Some(steps);
    }
    Some(sized.describe(budget, given.has("hidden")))
}
