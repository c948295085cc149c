//! `charrnn-fast prepare`.

use anyhow::Result;
use clap::Args;

use crate::shared::corpus::{BatchArgs, Corpus, CorpusArgs};
use crate::shared::output::{outln, plural};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
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
    outln!("{}", corpus.describe());
    outln!(
        "{} training {} of {}×{}{}",
        train.num_batches(),
        plural(train.num_batches(), "batch", "batches"),
        train.batch_size(),
        train.seq_len(),
        match &val {
            Some(v) => format!(", {} validation {}", v.num_batches(), plural(v.num_batches(), "batch", "batches")),
            None => String::from(", no validation split"),
        }
    );
    Ok(())
}
