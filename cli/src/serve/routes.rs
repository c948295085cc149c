//! The HTTP routes: what each endpoint reads, checks and answers. The generation itself is the
//! engine loop's ([`crate::serve::engine_loop`]); scoring runs on a blocking thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use charrnn_engine::data::Vocab;
use charrnn_engine::evaluation::stream::StreamScorer;
use charrnn_engine::{Model, Precision};
use serde::Deserialize;
use serde_json::json;

use crate::serve::api_error::ApiError;
use crate::serve::args::STREAM_BUFFER;
use crate::serve::completion::{streamed, whole, Header};
use crate::serve::engine_loop::{Job, Message};
use crate::serve::metrics::{Metrics, Outcome};
use crate::serve::request::{CompletionRequest, Limits};
use crate::serve::text_channel::{text_channel, Inbox};

/// What every route shares.
pub struct AppState {
    pub engine: Sender<Message>,
    pub metrics: Arc<Metrics>,
    pub model: Arc<Model<f32>>,
    pub vocab: Arc<Vocab>,
    pub precision: Precision,
    pub limits: Limits,
    pub max_queue: usize,
    pub api_key: Option<String>,
    /// The engine loop has prepared the weights.
    pub ready: Arc<AtomicBool>,
    /// A stop was asked for: new requests are refused.
    pub stopping: AtomicBool,
    /// The name `/v1/models` gives the model.
    pub model_id: String,
    /// `info --json`'s facts about the model.
    pub facts: serde_json::Value,
    /// Numbers completion ids.
    pub next_id: AtomicU64,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/score", post(score))
        .fallback(not_found)
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.stopping.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "stopping"}))).into_response()
    } else if state.ready.load(Ordering::Acquire) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "loading"}))).into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else { return Ok(()) };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match given.and_then(|v| v.strip_prefix("Bearer ")) {
        Some(k) if k == key => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

/// A JSON body, with serde's message (unknown fields named) as a 400.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not a valid request: {e}")))
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let model = json!({
        "id": state.model_id,
        "object": "model",
        "created": 0,
        "owned_by": "charrnn-fast",
        "facts": state.facts,
        "limits": {"max_length": state.limits.max_length, "max_streams": state.limits.max_streams},
    });
    Ok(Json(json!({"object": "list", "data": [model]})).into_response())
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = Instant::now();
    let (header, receiver, stream) = match start_completion(&state, &headers, &body, arrived) {
        Ok(started) => started,
        Err(e) => {
            let outcome = if e.status == StatusCode::TOO_MANY_REQUESTS { Outcome::QueueFull } else { Outcome::Refused };
            state.metrics.finished(outcome);
            return e.into_response();
        }
    };
    let metrics = Arc::clone(&state.metrics);
    match stream {
        true => streamed(header, receiver, metrics),
        false => whole(header, receiver, metrics).await,
    }
}

/// Checks a completion request and hands it to the engine loop: what the answer needs, the
/// channel its text comes on, and whether it is streamed.
fn start_completion(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    arrived: Instant,
) -> Result<(Header, Inbox, bool), ApiError> {
    authorize(state, headers)?;
    if state.stopping.load(Ordering::Relaxed) {
        return Err(ApiError::shutting_down());
    }
    let request: CompletionRequest = parse(body)?;
    let number = state.next_id.fetch_add(1, Ordering::Relaxed);
    let fresh_seed = || {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        nanos ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    };
    let prompt_text = request.prompt.clone();
    let checked = request.check(&state.vocab, state.limits, fresh_seed)?;
    let queued = state.metrics.queued.fetch_add(1, Ordering::Relaxed);
    if queued >= state.max_queue {
        state.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::queue_full(state.max_queue));
    }
    // A stream's reader may fall behind by STREAM_BUFFER bytes; a whole answer is read as it
    // comes, so its channel holds all its text.
    let most_unread = match checked.stream {
        true => STREAM_BUFFER,
        false => usize::MAX,
    };
    let (events, receiver) = text_channel(most_unread);
    let header = Header {
        id: format!("cmpl-{number}"),
        created: unix_seconds(),
        model: state.model_id.clone(),
        prompt_tokens: checked.prompt.len(),
        echo: checked.echo.then_some(prompt_text),
        n: checked.n,
    };
    let stream = checked.stream;
    let job = Job {
        prompt: checked.prompt,
        options: checked.options,
        max_tokens: checked.max_tokens,
        n: checked.n,
        stops: checked.stops,
        events,
        arrived,
    };
    if state.engine.send(Message::Job(job)).is_err() {
        state.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::shutting_down());
    }
    Ok((header, receiver, stream))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    #[serde(default)]
    model: Option<String>,
    text: String,
    /// Also each character's log-probability.
    #[serde(default)]
    per_char: bool,
    #[serde(default)]
    skip_unknown: bool,
}

async fn score(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let request: ScoreRequest = parse(&body)?;
    let _ = request.model;
    let chars = request.text.chars().count();
    if chars > state.limits.max_length {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("the text has {chars} characters; this server scores at most {}", state.limits.max_length),
        ));
    }
    let ids = match request.skip_unknown {
        true => state.vocab.encode_lossy(&request.text),
        false => state.vocab.encode(&request.text).map_err(|e| {
            ApiError::bad_request("unknown_characters", format!("the text does not fit this model's vocabulary: {e}"))
        })?,
    };
    if ids.len() < 2 {
        return Err(ApiError::bad_request(
            "text_too_short",
            "the text needs at least two characters of the vocabulary: the first is read, the rest are scored",
        ));
    }
    let (model, precision) = (Arc::clone(&state.model), state.precision);
    let scored = tokio::task::spawn_blocking(move || {
        let mut each = Vec::new();
        let score = StreamScorer::new(&*model, precision).score(&ids, |_, log_p| each.push(log_p));
        (score, each, ids)
    })
    .await;
    let (score, each, ids) = scored.map_err(|e| ApiError::bad_request("internal", e.to_string()))?;
    let score = score.map_err(|e| ApiError::bad_request("invalid_text", e.to_string()))?;
    let mut answer = json!({
        "object": "score",
        "model": state.model_id,
        "characters": ids.len(),
        "predicted": score.predicted,
        "log_probability": -score.nats,
        "nats_per_character": score.mean_nats(),
        "bits_per_character": score.mean_bits(),
    });
    if request.per_char {
        let mut bytes = Vec::new();
        let list: Vec<_> = ids[1..]
            .iter()
            .zip(&each)
            .map(|(&id, &log_p)| {
                bytes.clear();
                state.vocab.decode_into(id, &mut bytes);
                json!({"text": String::from_utf8_lossy(&bytes), "log_probability": log_p})
            })
            .collect();
        answer["per_character"] = json!(list);
    }
    Ok(Json(answer).into_response())
}
