//! `charrnn-fast serve`: an HTTP server for a model, with continuous batching (requests join
//! and leave one batched step between any two characters), OpenAI's `/v1/completions`
//! (streamed as Server-Sent Events or whole), `/v1/score`, `/health`, Prometheus `/metrics`
//! and a web page at `/`.

pub mod api_error;
pub mod args;
pub mod command;
mod completion;
mod engine_loop;
mod event;
mod metrics;
mod request;
mod routes;
mod row_block;
mod stop_text;
mod text_channel;
