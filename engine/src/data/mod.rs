//! The data pipeline: vocabulary, streaming `prepare` with an on-disk cache, a memory-mapped
//! token stream, the train/validation split and the char-rnn batcher.
//!
//! ```text
//! input.txt --prepare--> input.txt.charrnn/{corpus-vocab.json, tokens.bin, meta.json}
//!           --TokenStream::open_prepared--> mmap --split_train_val + Batcher::fill--> ids
//! ```

mod batcher;
pub mod cache_place;
mod error;
mod prepare;
mod scan;
mod token_stream;
mod vocab;

pub use batcher::{split_train_val, validation_part, Batcher, MAX_VALIDATION_SYMBOLS};
pub use error::DataError;
pub use prepare::{
    default_cache_dir, prepare, prepare_until, PrepareOptions, Prepared, CACHE_FORMAT_VERSION, CACHE_VOCAB_FILE,
};
pub use token_stream::TokenStream;
pub use vocab::{TokenWidth, Vocab, VocabKind, MAX_VOCAB};
