//! `charrnn-fast sample`: the command ([`command`]), what `--model` names ([`model_source`]),
//! the prime text ([`prime_text`]) and what the reader took ([`written_count`]).

pub mod command;
pub mod model_source;
pub mod prime_text;
pub mod written_count;
