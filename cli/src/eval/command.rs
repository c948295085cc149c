//! `charrnn-fast eval`: loads the model and the text, scores it as one stream or in random
//! windows (the engine's [`charrnn_engine::evaluation`]), prints the loss and the speed.

use std::time::Instant;

use anyhow::Result;
use charrnn_engine::evaluation::stream::StreamScorer;
use charrnn_engine::evaluation::windows::{window_starts, WindowScorer};
use charrnn_engine::evaluation::Score;
use serde_json::json;

use crate::eval::args::EvalArgs;
use crate::eval::per_char::PerCharTable;
use crate::eval::text_symbols::{read_text, ScoredText};
use crate::shared::model_source::ModelSource;
use crate::shared::output::{errln, outln, plural};
use crate::shared::precision_arg::slow_bf16_note;

pub fn run(args: EvalArgs) -> Result<()> {
    let (model, vocab, loaded) = ModelSource::locate(&args.model)?.load("score")?;
    let text = read_text(&args.data, &vocab, args.val_frac, args.skip_unknown)?;
    let precision = args.precision.precision();
    let (one, many) = if vocab.bytes().is_some() { ("byte", "bytes") } else { ("character", "characters") };
    let starts = match args.windows {
        Some(width) => Some(window_starts(text.ids.len(), width, args.count, args.seed)?),
        None => None,
    };
    let mut table = match &args.per_char {
        Some(path) => Some(PerCharTable::create(path, &vocab)?),
        None => None,
    };
    let threads = crate::shared::threads::init_threads(args.threads)?;
    if let Some(note) = slow_bf16_note(precision) {
        errln!("{note}");
    }
    let started = Instant::now();
    let (score, mode) = match (&starts, args.windows) {
        (Some(starts), Some(width)) => {
            let mut scorer = WindowScorer::new(&model, precision, width, args.count, threads)?;
            let mode = format!(
                "as {} {} of {width} {} at random starts (seed {}), each from a zero state",
                args.count,
                plural(args.count, "window", "windows"),
                plural(width, one, many),
                args.seed
            );
            (scorer.score(&text.ids, starts)?, mode)
        }
        _ => {
            let mut scorer = StreamScorer::new(&model, precision);
            let score = scorer.score(&text.ids, |i, log_p| {
                if let Some(table) = &mut table {
                    table.push(text.position(i + 1), text.ids[i + 1], log_p);
                }
            })?;
            (score, "as one stream from a zero state".to_owned())
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(table) = table {
        table.commit()?;
    }
    report(&args, &Outcome { text: &text, score, mode, loaded, unit: (one, many), seconds, threads })
}

/// What a scoring did, for the report.
struct Outcome<'a> {
    text: &'a ScoredText,
    score: Score,
    /// The protocol, in words.
    mode: String,
    /// The model, in words.
    loaded: String,
    /// What a symbol is called, singular and plural.
    unit: (&'static str, &'static str),
    seconds: f64,
    threads: usize,
}

/// Prints what was scored and the result: lines for a reader, or one JSON line.
fn report(args: &EvalArgs, outcome: &Outcome<'_>) -> Result<()> {
    let Outcome { text, score, ref mode, ref loaded, unit: (one, many), seconds, threads } = *outcome;
    let per_second = score.predicted as f64 / seconds.max(1e-9);
    let precision = args.precision.precision();
    if args.json {
        let value = json!({
            "data": args.data.display().to_string(),
            "model": args.model.display().to_string(),
            "unit": one,
            "mode": if args.windows.is_some() { "windows" } else { "stream" },
            "first": text.range.start,
            "end": text.range.end,
            "total": text.total,
            "val_frac": args.val_frac,
            "windows": args.windows,
            "count": args.windows.map(|_| args.count),
            "seed": args.windows.map(|_| args.seed),
            "skipped_unknown": text.skipped,
            "predicted": score.predicted,
            "loss_nats": score.mean_nats(),
            "loss_bits": score.mean_bits(),
            "seconds": seconds,
            "per_second": per_second,
            "threads": threads,
            "precision": precision.to_string(),
        });
        outln!("{value}");
        return Ok(());
    }
    let part = match args.val_frac {
        Some(f) => format!(
            "{many} {}..{} of {} (the tail `train --val-frac {f}` holds out)",
            text.range.start, text.range.end, text.total
        ),
        None => format!("all {} {}", text.total, plural(text.total, one, many)),
    };
    outln!("scored '{}': {part}", args.data.display());
    if text.skipped > 0 {
        outln!(
            "left out: {} {} outside the model's vocabulary (--skip-unknown)",
            text.skipped,
            plural(text.skipped, one, many)
        );
    }
    outln!("{mode}: {} {} predicted", score.predicted, plural(score.predicted, one, many));
    outln!("model: {loaded} ({precision} products)");
    outln!("loss: {:.6} nats/{one}, {:.6} bits/{one}", score.mean_nats(), score.mean_bits());
    outln!("speed: {seconds:.2} s, {per_second:.0} {many}/s on {threads} {}", plural(threads, "thread", "threads"));
    Ok(())
}
