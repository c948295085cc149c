//! `charrnn-fast train`: its flags ([`args`]), the run in order ([`command`]), where it starts
//! from ([`start`]), the flags as the engine's settings ([`settings`]), what it does as it goes
//! ([`observer`], [`progress`], [`run_log`]), its output directory ([`run_dir`]) and stop
//! requests ([`stop_request`]).

pub mod args;
pub mod budget_size;
pub mod command;
pub mod duration_arg;
pub mod observer;
pub mod progress;
pub mod run_dir;
pub mod run_log;
pub mod settings;
pub mod start;
pub mod stop_request;
