//! `charrnn-fast`: train and sample character-level recurrent language models on a CPU.
//!
//! Thin by design: parse arguments, call the engine, print.

mod bench_cmd;
mod corpus;
mod data_cmd;
mod prepare_cmd;
mod progress;
mod run_log;
mod sample_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "charrnn-fast",
    version,
    about = "Train and sample character-level RNN/LSTM language models on a CPU",
    long_about = "Train and sample character-level recurrent language models (char-rnn) on a CPU.\n\n\
        Typical use:\n  \
        charrnn-fast train --data input.txt --out model   # prepare, train, save\n  \
        charrnn-fast sample --model model --prime 'ROMEO:'"
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
    Train(train_cmd::TrainArgs),
    /// Generate text from a trained model
    Sample(sample_cmd::SampleArgs),
    /// Time full training steps of a named configuration (tokens/s, peak memory)
    Bench(bench_cmd::BenchArgs),
    /// Fetch the standard corpora (tinyshakespeare, enwik8) into data/ and verify them
    Data(data_cmd::DataArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(args) => prepare_cmd::run(args),
        Command::Train(args) => train_cmd::run(args),
        Command::Sample(args) => sample_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Data(args) => data_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
