//! The body of `POST /v1/completions` (OpenAI's fields; `max_tokens` counts characters) and
//! its checks against the model and the server's limits: what the engine loop is handed.

use charrnn_engine::data::Vocab;
use charrnn_engine::inference::sample::{SampleMode, SampleOptions, MIN_TEMPERATURE};
use charrnn_engine::Precision;
use serde::Deserialize;

use crate::serve::api_error::ApiError;

/// Characters generated when `max_tokens` is not given (at most `--max-length`).
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// Most stop strings (as OpenAI).
pub const MAX_STOPS: usize = 4;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// Accepted and ignored: the server has one model.
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// 0 is greedy (the most likely character every time).
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub echo: bool,
    /// Leave out prompt characters the model never saw, instead of refusing the request.
    #[serde(default)]
    pub skip_unknown: bool,
}

/// `stop`: one string or a list.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// The server's limits on a request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most characters of a prompt, and most `max_tokens`.
    pub max_length: usize,
    /// Most choices (`n`): the batch's rows.
    pub max_streams: usize,
}

/// A checked request.
#[derive(Debug)]
pub struct Checked {
    pub prompt: Vec<u32>,
    pub options: SampleOptions,
    pub max_tokens: usize,
    pub n: usize,
    pub stops: Vec<Vec<u8>>,
    pub stream: bool,
    pub echo: bool,
}

impl CompletionRequest {
    /// Checks the request against `vocab` and `limits`. Without a seed, `fresh_seed` gives one.
    pub fn check(self, vocab: &Vocab, limits: Limits, fresh_seed: impl FnOnce() -> u64) -> Result<Checked, ApiError> {
        // One model: the name a client gives is not checked.
        let _ = self.model;
        let prompt_chars = self.prompt.chars().count();
        if prompt_chars > limits.max_length {
            return Err(ApiError::bad_request(
                "prompt_too_long",
                format!("the prompt has {prompt_chars} characters; this server takes at most {}", limits.max_length),
            ));
        }
        let prompt = if self.skip_unknown {
            vocab.encode_lossy(&self.prompt)
        } else {
            vocab.encode(&self.prompt).map_err(|e| {
                ApiError::bad_request(
                    "unknown_characters",
                    format!(
                        "the prompt does not fit this model's vocabulary: {e} (\"skip_unknown\": true leaves them out)"
                    ),
                )
            })?
        };
        if prompt.is_empty() {
            return Err(ApiError::bad_request(
                "empty_prompt",
                "the prompt has no character of this model's vocabulary: the first character is drawn after it, so it \
                 needs at least one",
            ));
        }
        let max_tokens = self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS.min(limits.max_length));
        if max_tokens > limits.max_length {
            return Err(ApiError::bad_request(
                "max_tokens_too_large",
                format!("max_tokens is {max_tokens}; this server generates at most {} characters", limits.max_length),
            ));
        }
        let n = self.n.unwrap_or(1);
        if n == 0 || n > limits.max_streams {
            return Err(ApiError::bad_request(
                "invalid_n",
                format!("n must be from 1 to {} (the server's rows); got {n}", limits.max_streams),
            ));
        }
        let temperature = self.temperature.unwrap_or(1.0);
        let mode = if temperature == 0.0 { SampleMode::Argmax } else { SampleMode::Weighted };
        if !(temperature.is_finite() && (temperature == 0.0 || temperature >= MIN_TEMPERATURE)) {
            return Err(ApiError::bad_request(
                "invalid_temperature",
                format!("temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:.2e}; got {temperature}"),
            ));
        }
        if self.top_k == Some(0) {
            return Err(ApiError::bad_request("invalid_top_k", "top_k must be at least 1"));
        }
        let stops = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(list)) => list,
        };
        if stops.len() > MAX_STOPS || stops.iter().any(String::is_empty) {
            return Err(ApiError::bad_request(
                "invalid_stop",
                format!("stop takes at most {MAX_STOPS} strings, none of them empty"),
            ));
        }
        let options = SampleOptions {
            mode,
            temperature: if mode == SampleMode::Argmax { 1.0 } else { temperature },
            top_k: self.top_k,
            seed: self.seed.unwrap_or_else(fresh_seed),
            // The weights' precision is the server's; this one is not read.
            precision: Precision::F32,
        };
        Ok(Checked {
            prompt,
            options,
            max_tokens,
            n,
            stops: stops.into_iter().map(String::into_bytes).collect(),
            stream: self.stream,
            echo: self.echo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        Vocab::from_symbols_chars("abc ".chars().collect()).unwrap()
    }

    fn check(body: &str) -> Result<Checked, String> {
        let request: CompletionRequest = serde_json::from_str(body).map_err(|e| e.to_string())?;
        request.check(&vocab(), Limits { max_length: 10, max_streams: 4 }, || 7).map_err(|e| e.message)
    }

    #[test]
    fn reads_openai_fields() {
        let c = check(r#"{"prompt":"ab","max_tokens":5,"temperature":0.5,"n":2,"stop":["c"],"seed":3,"stream":true}"#)
            .unwrap();
        assert_eq!((c.prompt, c.max_tokens, c.n, c.options.seed, c.stream), (vec![0, 1], 5, 2, 3, true));
        assert_eq!((c.options.mode, c.options.temperature, c.stops), (SampleMode::Weighted, 0.5, vec![b"c".to_vec()]));
        let greedy = check(r#"{"prompt":"a","temperature":0,"stop":"b"}"#).unwrap();
        assert_eq!((greedy.options.mode, greedy.options.seed, greedy.max_tokens), (SampleMode::Argmax, 7, 10));
    }

    #[test]
    fn refuses_bad_requests() {
        for (body, needle) in [
            (r#"{"prompt":"a","bogus":1}"#, "unknown field `bogus`"),
            (r#"{"prompt":"a""#, "EOF"),
            (r#"{"prompt":"xyz a"}"#, "'x', 'y', 'z'"),
            (r#"{"prompt":"aaaaaaaaaaa"}"#, "11 characters"),
            (r#"{"prompt":"a","max_tokens":11}"#, "max_tokens is 11"),
            (r#"{"prompt":"a","n":5}"#, "n must be from 1 to 4"),
            (r#"{"prompt":"a","temperature":-1}"#, "temperature must be"),
            (r#"{"prompt":"a","top_k":0}"#, "top_k"),
            (r#"{"prompt":"a","stop":["a","b","c","d","e"]}"#, "stop takes"),
            (r#"{"prompt":"xyz","skip_unknown":true}"#, "no character"),
        ] {
            let e = check(body).err().unwrap_or_default();
            assert!(e.contains(needle), "{body}: {e}");
        }
        assert_eq!(check(r#"{"prompt":"xa","skip_unknown":true}"#).unwrap().prompt, [0]);
    }
}
