//! `charrnn-fast`: train and sample character-level recurrent language models on a CPU.
//!
//! Thin by design: parse arguments, call the engine, print.

#![forbid(unsafe_code)]

mod bench;
mod data;
mod eval;
mod info;
mod prepare;
mod sample;
mod serve;
mod shared;
mod train;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::shared::output::errln;

#[derive(Parser)]
#[command(
    name = "charrnn-fast",
    version,
    about = "Train and sample character-level RNN/LSTM language models on a CPU",
    long_about = "Train and sample character-level recurrent language models (char-rnn) on a CPU.\n\n\
        Typical use:\n  \
        charrnn-fast train --data input.txt --out model   # prepare, train, save\n  \
        charrnn-fast sample --model model --prime 'ROMEO:'\n\n\
        Exit status: 0 on success (and after Ctrl-C or SIGTERM, once the checkpoint is saved), 1 for \
        bad input or a failure (one `error:` line), 2 for a usage error (an unknown flag or a malformed \
        value), 130 when stopped without saving: a second Ctrl-C (more than a second after the first), \
        or a Ctrl-C before training began."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the vocabulary and token file of a corpus (train does this too, reusing the cache)
    Prepare(prepare::PrepareArgs),
    /// Train a model on a corpus and save it
    Train(train::args::TrainArgs),
    /// Generate text from a trained model
    Sample(sample::command::SampleArgs),
    /// Serve a model over HTTP: OpenAI-style /v1/completions (streamed or whole) with
    /// continuous batching, /v1/score, /health, Prometheus /metrics and a web page at /
    Serve(serve::args::ServeArgs),
    /// Score a text with a trained model: its loss in nats and bits per character, as one
    /// stream or over random windows (`eval --help` says which to use when)
    Eval(eval::args::EvalArgs),
    /// Time full training steps of a named configuration (tokens/s, peak memory)
    Bench(bench::command::BenchArgs),
    /// What a model directory, a run directory or a checkpoint holds: shape, parameters,
    /// steps, validation loss, corpus (--json for scripts)
    Info(info::InfoArgs),
    /// Fetch the standard corpora (tinyshakespeare is built in; enwik8) into data/ and verify them
    Data(data::DataArgs),
}

fn main() -> ExitCode {
    // A file-size limit (`ulimit -f`) would kill the process with SIGXFSZ in the middle of a
    // write, with no message and a temporary file left; with the signal caught the write fails
    // with EFBIG instead, which every command reports like a full disk.
    let file_size_signal = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, file_size_signal) {
        errln!("warning: cannot catch SIGXFSZ ({e}): a file-size limit will end the process without a message");
    }
    // The matches are kept beside the parsed arguments: `train --resume` needs to know which
    // flags were typed rather than defaulted.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `train` and `bench` run as one rank of several under `mpiexec` (the `mpi` feature).
    let ranks = match cli.command {
        Command::Train(_) | Command::Bench(_) => match shared::ranks::Ranks::start() {
            Ok(ranks) => {
                if !ranks.is_leader() {
                    // Rank 0 prints for the run.
                    shared::output::silence();
                }
                ranks
            }
            Err(e) => {
                errln!("error: {}", shared::flags::describe(&e));
                return ExitCode::FAILURE;
            }
        },
        _ => shared::ranks::Ranks::solo(),
    };
    let result = match cli.command {
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => match matches.subcommand_matches("train") {
            Some(train_matches) => train::command::run(args, train_matches, &ranks),
            None => Err(anyhow::anyhow!("internal error: no arguments of train")),
        },
        Command::Sample(args) => sample::command::run(args),
        Command::Serve(args) => serve::command::run(args),
        Command::Eval(args) => eval::command::run(args),
        Command::Bench(args) => bench::command::run(args, &ranks),
        Command::Data(args) => data::run(args),
        Command::Info(args) => info::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<train::stop_request::StoppedBeforeTraining>() => {
            ranks.fail(&e.to_string(), train::stop_request::STOPPED_STATUS)
        }
        Err(e) => ranks.fail(&format!("error: {}", shared::flags::describe(&e)), 1),
    }
}
