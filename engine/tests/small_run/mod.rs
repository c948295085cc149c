//! Shared setup of the engine tests that train small models on generated text: the prepared
//! corpus, a thread pool, and the model and options of each cell they try. A test binary gets
//! it with `mod small_run;`.
#![allow(dead_code)]

use charrnn_engine::data::{prepare, PrepareOptions, Prepared, TokenStream};
use charrnn_engine::training::TrainOptions;
use charrnn_engine::AdamHyper;
use charrnn_engine::Precision;
use charrnn_engine::{CellKind, ModelConfig};

/// A corpus prepared in a temporary directory, and its tokens.
pub struct SmallCorpus {
    pub prepared: Prepared,
    pub stream: TokenStream,
    /// Where the corpus and its cache lie; other files may go there too. Dropped last.
    pub dir: tempfile::TempDir,
}

/// `words` words of a five-word text ("the cat sat\non mat "), prepared.
pub fn small_corpus(words: usize) -> SmallCorpus {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.txt");
    let text: String = (0..words).map(|i| ["the ", "cat ", "sat\n", "on ", "mat "][i % 5]).collect();
    std::fs::write(&input, text).unwrap();
    let prepared = prepare(&PrepareOptions { input, cache_dir: None, bytes: false, force: false }).unwrap();
    let stream = TokenStream::open_prepared(&prepared).unwrap();
    SmallCorpus { prepared, stream, dir }
}

/// A pool of `threads` threads to run training steps in.
pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Every cell kind, each without dropout and with `dropout`.
pub fn cells_with_and_without(dropout: f64) -> impl Iterator<Item = (CellKind, f64)> {
    [CellKind::Lstm, CellKind::Rnn, CellKind::Gru].into_iter().flat_map(move |c| [(c, 0.0), (c, dropout)])
}

/// A three-layer model of `cell` over the vocabulary of `corpus`.
pub fn three_layers(cell: CellKind, corpus: &SmallCorpus, embed_size: usize, hidden_size: usize) -> ModelConfig {
    ModelConfig { cell, vocab_size: corpus.prepared.vocab.len(), embed_size, hidden_size, num_layers: 3 }
}

/// Default Adam, clipping at 5, `dropout` between layers, on the last layer's output and on the
/// recurrent weights, and as the probability of a state reset, masks of seed 1.
pub fn train_options(batch_size: usize, seq_len: usize, dropout: f64) -> TrainOptions {
    let (precision, output_dropout, adam) = (Precision::F32, dropout, AdamHyper::default());
    let weight_drop = dropout;
    TrainOptions {
        batch_size,
        seq_len,
        adam,
        clip: 5.0,
        dropout,
        output_dropout,
        weight_drop,
        state_reset: dropout,
        dropout_seed: 1,
        precision,
    }
}
