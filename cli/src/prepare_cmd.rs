//! `charrnn-fast prepare`.

use anyhow::Result;
use clap::Args;

use crate::corpus::{BatchArgs, Corpus, CorpusArgs};

#[derive(Args, Debug)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// The batch shape the corpus is checked against
    #[command(flatten)]
    pub batch: BatchArgs,
}

pub fn run(args: PrepareArgs) -> Result<()> {
    let corpus = Corpus::open(&args.corpus)?;
    let (train, val) = corpus.batchers(&args.batch)?;
    println!("{}", corpus.describe());
    println!(
        "{} training batches of {}×{}{}",
        train.num_batches(),
        train.batch_size(),
        train.seq_len(),
        match &val {
            Some(v) => format!(", {} validation batches", v.num_batches()),
            None => String::from(", no validation split"),
        }
    );
    Ok(())
}
