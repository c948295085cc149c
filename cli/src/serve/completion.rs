//! Answers to `POST /v1/completions`: the whole text as one JSON object, or Server-Sent Events
//! (`data: {…}` chunks as the text is generated, the usage, `data: [DONE]`). Both read the
//! request's channel from the engine loop; the stream takes every event that is waiting at
//! once, so a busy server sends fewer, longer chunks.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::serve::api_error::ApiError;
use crate::serve::event::{Event, FinishReason};
use crate::serve::metrics::{Metrics, Outcome};
use crate::serve::text_channel::Inbox;

/// Most events one SSE read takes from the channel.
const EVENTS_PER_READ: usize = 1024;

/// What every chunk and the answer name.
pub struct Header {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: usize,
    /// The prompt, when `echo` asks for it at the start of every choice.
    pub echo: Option<String>,
    pub n: usize,
}

/// Counts the request's outcome when it is dropped: a client that goes away drops it early.
struct OutcomeGuard {
    metrics: Arc<Metrics>,
    outcome: Option<Outcome>,
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        self.metrics.finished(self.outcome.unwrap_or(Outcome::ClientGone));
    }
}

/// What a request's events add up to.
struct Choices {
    texts: Vec<String>,
    reasons: Vec<Option<FinishReason>>,
    generated: usize,
}

impl Choices {
    fn new(n: usize) -> Choices {
        Choices { texts: vec![String::new(); n], reasons: vec![None; n], generated: 0 }
    }

    fn take(&mut self, event: Event) {
        match event {
            Event::Text { choice, text } => self.texts[choice].push_str(&text),
            Event::Finished { choice, reason, generated } => {
                self.reasons[choice] = Some(reason);
                self.generated += generated;
            }
        }
    }

    fn all_finished(&self) -> bool {
        self.reasons.iter().all(Option::is_some)
    }

    fn outcome(&self) -> Outcome {
        match self.reasons.contains(&Some(FinishReason::Shutdown)) {
            true => Outcome::Shutdown,
            false => Outcome::Completed,
        }
    }
}

fn usage(header: &Header, generated: usize) -> Value {
    json!({
        "prompt_tokens": header.prompt_tokens,
        "completion_tokens": generated,
        "total_tokens": header.prompt_tokens + generated,
    })
}

/// The answer once every choice has ended.
pub async fn whole(header: Header, mut events: Inbox, metrics: Arc<Metrics>) -> Response {
    let mut guard = OutcomeGuard { metrics, outcome: None };
    let mut choices = Choices::new(header.n);
    while let Some(event) = events.recv().await {
        choices.take(event);
        if choices.all_finished() {
            break;
        }
    }
    if !choices.all_finished() {
        guard.outcome = Some(Outcome::Cut);
        let mut e = ApiError::shutting_down();
        e.status = StatusCode::INTERNAL_SERVER_ERROR;
        e.message = "the engine ended the request before its end".into();
        return e.into_response();
    }
    guard.outcome = Some(choices.outcome());
    let echo = header.echo.as_deref().unwrap_or("");
    let list: Vec<Value> = (0..header.n)
        .map(|i| {
            json!({
                "text": format!("{echo}{}", choices.texts[i]),
                "index": i,
                "logprobs": null,
                "finish_reason": choices.reasons[i].map(FinishReason::as_str),
            })
        })
        .collect();
    let body = json!({
        "id": header.id,
        "object": "text_completion",
        "created": header.created,
        "model": header.model,
        "choices": list,
        "usage": usage(&header, choices.generated),
    });
    axum::Json(body).into_response()
}

/// One SSE event.
fn data(value: &Value, out: &mut String) {
    out.push_str("data: ");
    out.push_str(&value.to_string());
    out.push_str("\n\n");
}

/// A chunk of choice `index`.
fn chunk(header: &Header, index: usize, text: &str, reason: Option<FinishReason>) -> Value {
    json!({
        "id": header.id,
        "object": "text_completion",
        "created": header.created,
        "model": header.model,
        "choices": [{"text": text, "index": index, "logprobs": null, "finish_reason": reason.map(FinishReason::as_str)}],
    })
}

/// The stream's state between reads.
struct Streaming {
    header: Header,
    events: Inbox,
    choices: Choices,
    guard: OutcomeGuard,
    started: bool,
    ended: bool,
}

impl Streaming {
    /// The next piece of the body, `None` at its end.
    async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            if let Some(echo) = &self.header.echo {
                for i in 0..self.header.n {
                    data(&chunk(&self.header, i, echo, None), &mut out);
                }
                return Some(Bytes::from(out));
            }
        }
        let Some(first) = self.events.recv().await else {
            // The engine dropped the request unfinished: this client did not keep up.
            self.ended = true;
            self.guard.outcome = Some(Outcome::Cut);
            let mut e = ApiError::shutting_down();
            e.message = "the stream was cut: the client read more slowly than the text was generated".into();
            e.kind = "server_error";
            e.code = "slow_reader";
            data(&e.body(), &mut out);
            return Some(Bytes::from(out));
        };
        let mut pending = vec![String::new(); self.header.n];
        let mut finished = Vec::new();
        let mut event = Some(first);
        let mut taken = 0;
        while let Some(e) = event.take() {
            match e {
                Event::Text { choice, text } => pending[choice].push_str(&text),
                finish @ Event::Finished { choice, reason, .. } => {
                    finished.push((choice, reason));
                    self.choices.take(finish);
                }
            }
            taken += 1;
            if taken < EVENTS_PER_READ {
                event = self.events.try_recv();
            }
        }
        for (i, text) in pending.iter().enumerate() {
            if !text.is_empty() {
                data(&chunk(&self.header, i, text, None), &mut out);
            }
        }
        for (i, reason) in finished {
            data(&chunk(&self.header, i, "", Some(reason)), &mut out);
        }
        if self.choices.all_finished() {
            self.ended = true;
            self.guard.outcome = Some(self.choices.outcome());
            let last = json!({
                "id": self.header.id,
                "object": "text_completion",
                "created": self.header.created,
                "model": self.header.model,
                "choices": [],
                "usage": usage(&self.header, self.choices.generated),
            });
            data(&last, &mut out);
            out.push_str("data: [DONE]\n\n");
        }
        Some(Bytes::from(out))
    }
}

/// The answer as Server-Sent Events.
pub fn streamed(header: Header, events: Inbox, metrics: Arc<Metrics>) -> Response {
    let n = header.n;
    let state = Streaming {
        header,
        events,
        choices: Choices::new(n),
        guard: OutcomeGuard { metrics, outcome: None },
        started: false,
        ended: false,
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let piece = state.next().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(piece), state))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
