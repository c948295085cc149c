//! `charrnn-fast bench`: the command ([`command`]) and its Chrome trace ([`trace_file`]).

pub mod command;
pub mod trace_file;
