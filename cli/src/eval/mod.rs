//! `charrnn-fast eval`: its flags ([`args`]), the command ([`command`]), the text it scores
//! ([`text_symbols`]) and the table of each character's log-probability ([`per_char`]).

pub mod args;
pub mod command;
pub mod per_char;
pub mod text_symbols;
