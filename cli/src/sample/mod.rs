//! `charrnn-fast sample`: the command ([`command`]), the prime text ([`prime_text`]) and what
//! the reader took ([`written_count`]).

pub mod command;
pub mod prime_text;
pub mod written_count;
