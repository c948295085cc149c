//! Errors in OpenAI's JSON shape, `{"error": {"message", "type", "code"}}`, with their HTTP
//! status: every refusal is an answer, never a dropped connection.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// OpenAI's `code`.
    pub code: &'static str,
    /// Seconds a client should wait before trying again (429, 503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// 400: the request is malformed or out of limits.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            code,
            retry_after: None,
        }
    }

    /// 401: no API key, or a wrong one.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "a valid API key is needed: send the header 'Authorization: Bearer KEY'".into(),
            kind: "invalid_request_error",
            code: "invalid_api_key",
            retry_after: None,
        }
    }

    /// 429: every row is taken and the queue is full.
    pub fn queue_full(max_queue: usize) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("the server is busy: {max_queue} requests are waiting already; try again shortly"),
            kind: "rate_limit_error",
            code: "queue_full",
            retry_after: Some(1),
        }
    }

    /// 503: the server is stopping.
    pub fn shutting_down() -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server is shutting down".into(),
            kind: "server_error",
            code: "shutting_down",
            retry_after: Some(1),
        }
    }

    /// 404: no such route.
    pub fn not_found(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no route {path}: see GET /v1/models, POST /v1/completions, POST /v1/score"),
            kind: "invalid_request_error",
            code: "not_found",
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
