//! The file helpers that the engine, the corpora and the command line share, kept apart so that
//! `charrnn-corpora` needs none of the engine: atomic writes that replace only a regular file
//! ([`atomic_file`]), the one chunked-read loop and SHA-256 of a stream ([`chunks`]), and the
//! user's cache directory ([`user_dirs`]).

#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod chunks;
pub mod user_dirs;
