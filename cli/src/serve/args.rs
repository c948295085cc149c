//! `serve`'s flags.

use std::path::PathBuf;

use clap::Args;

use crate::shared::precision_arg::PrecisionArg;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model: a directory written by `train --out` (or its best/), a run directory, or a
    /// checkpoint file
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub host: String,
    /// Port to listen on (0: a free port, printed at start)
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub port: u16,
    /// Rows of the batched step: most streams generated at once (a request of n choices takes n)
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_streams: u32,
    /// What the step's matrix products round their operands to
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Worker threads of the batched step [default: all cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Most requests waiting for rows; more are refused with 429 and Retry-After
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_queue: usize,
    /// Most characters of a prompt, of a scored text, and of max_tokens
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_length: u64,
    /// Require 'Authorization: Bearer KEY' on /v1/ routes (401 otherwise)
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
}

/// Bytes of text (characters of most vocabularies) a streaming client may leave unread before
/// its stream is cut (an SSE error event, then the stream ends): a slow reader never holds up
/// the batch. A lone stream of the default model comes at about 175k characters/s, so this is
/// about 1.5 s of it: a reader that keeps up is not cut when the server's own tasks are held
/// up for a moment on a busy machine (8 KiB gave it about 50 ms).
pub const STREAM_BUFFER: usize = 1 << 18;
