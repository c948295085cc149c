//! What the commands share: printing ([`output`]), the engine's field names as flags
//! ([`flags`]), which corpus and its cache ([`corpus`]), `--precision` ([`precision_arg`]), the
//! thread pool ([`threads`]), this process's place in a run ([`ranks`], [`mpi_group`]), what
//! `--model` names ([`model_source`]) and refusing what will not fit in memory
//! ([`memory_check`]).

pub mod corpus;
pub mod flags;
pub mod memory_check;
pub mod model_source;
#[cfg(feature = "mpi")]
pub mod mpi_group;
pub mod output;
pub mod precision_arg;
pub mod ranks;
pub mod threads;
