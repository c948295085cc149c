//! `charrnn-fast`: train and sample character-level recurrent language models on a CPU.
//!
//! Thin by design: parse arguments, call the engine, print.

#![forbid(unsafe_code)]

mod bench_cmd;
mod corpus;
mod data_cmd;
mod flags;
mod info_cmd;
mod memory_check;
mod model_source;
#[cfg(feature = "mpi")]
mod mpi_group;
mod output;
mod precision_arg;
mod prepare_cmd;
mod prime_text;
mod progress;
mod ranks;
mod run_dir;
mod run_log;
mod run_settings;
mod run_start;
mod sample_cmd;
mod stop_request;
mod threads;
mod trace_file;
mod train_args;
mod train_cmd;
mod train_observer;
mod written_count;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::output::errln;

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
    Prepare(prepare_cmd::PrepareArgs),
    /// Train a model on a corpus and save it
    Train(train_args::TrainArgs),
    /// Generate text from a trained model
    Sample(sample_cmd::SampleArgs),
    /// Time full training steps of a named configuration (tokens/s, peak memory)
    Bench(bench_cmd::BenchArgs),
    /// What a model directory, a run directory or a checkpoint holds: shape, parameters,
    /// steps, validation loss, corpus (--json for scripts)
    Info(info_cmd::InfoArgs),
    /// Fetch the standard corpora (tinyshakespeare is built in; enwik8) into data/ and verify them
    Data(data_cmd::DataArgs),
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
        Command::Train(_) | Command::Bench(_) => match ranks::Ranks::start() {
            Ok(ranks) => {
                if !ranks.is_leader() {
                    // Rank 0 prints for the run.
                    output::silence();
                }
                ranks
            }
            Err(e) => {
                errln!("error: {}", flags::describe(&e));
                return ExitCode::FAILURE;
            }
        },
        _ => ranks::Ranks::solo(),
    };
    let result = match cli.command {
        Command::Prepare(args) => prepare_cmd::run(args),
        Command::Train(args) => match matches.subcommand_matches("train") {
            Some(train_matches) => train_cmd::run(args, train_matches, &ranks),
            None => Err(anyhow::anyhow!("internal error: no arguments of train")),
        },
        Command::Sample(args) => sample_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args, &ranks),
        Command::Data(args) => data_cmd::run(args),
        Command::Info(args) => info_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<stop_request::StoppedBeforeTraining>() => {
            ranks.fail(&e.to_string(), stop_request::STOPPED_STATUS)
        }
        Err(e) => ranks.fail(&format!("error: {}", flags::describe(&e)), 1),
    }
}
