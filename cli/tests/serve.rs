//! `serve` end to end, on loopback with a tiny model trained here: completions whole and
//! streamed (a seeded request is `sample`'s text, alone and among many), every bad input's
//! error, the other routes, clients that leave, a full queue, a slow reader, and SIGTERM.

mod common;
mod serve_support;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use serve_support::*;

/// What `sample` prints after `prime` for `seed` (without the prime and the last newline).
fn sampled(dir: &std::path::Path, prime: &str, seed: u64, length: usize) -> String {
    let (seed, length) = (seed.to_string(), length.to_string());
    let out = run_in(dir, &["sample", "--model", "model", "--prime", prime, "--seed", &seed, "--length", &length]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    text.strip_prefix(prime).unwrap().strip_suffix('\n').unwrap().to_owned()
}

fn completion(server: &Server, body: serde_json::Value) -> Response {
    server.post("/v1/completions", &body.to_string())
}

#[test]
fn completions_routes_and_bad_input() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--max-length", "300", "--max-streams", "8"]);

    // Whole: `sample`'s text for the seed, with the usage counted.
    let want = sampled(dir.path(), "the ", 11, 120);
    let answer = completion(&server, json!({"prompt": "the ", "max_tokens": 120, "seed": 11}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["choices"][0]["text"], want.as_str());
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"], json!({"prompt_tokens": 4, "completion_tokens": 120, "total_tokens": 124}));
    let echoed = completion(&server, json!({"prompt": "the ", "max_tokens": 120, "seed": 11, "echo": true}));
    assert_eq!(echoed.json()["choices"][0]["text"], format!("the {want}"));

    // Streamed: SSE `data:` events, the same text, `[DONE]` last; n choices are streams 0..n.
    let answer = completion(&server, json!({"prompt": "the ", "max_tokens": 120, "seed": 11, "stream": true, "n": 3}));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let (texts, done) = streamed_texts(&answer.body, 3);
    assert!(done, "{}", answer.body);
    assert_eq!(texts[0], want);
    assert!(texts.iter().all(|t| t.chars().count() == 120) && texts[1] != texts[2], "{texts:?}");
    let data = sse_data(&answer.body);
    let usage: serde_json::Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 360);

    // A stop string ends a choice before it; greedy is temperature 0.
    let stop_at = want.char_indices().nth(30).map(|(i, _)| i).unwrap();
    let stop: String = want[stop_at..].chars().take(3).collect();
    let first = want.find(&stop).unwrap();
    let stopped = completion(&server, json!({"prompt": "the ", "max_tokens": 120, "seed": 11, "stop": [stop]}));
    assert_eq!(stopped.json()["choices"][0]["text"], &want[..first]);
    assert_eq!(stopped.json()["choices"][0]["finish_reason"], "stop");
    let greedy = sampled_greedy(dir.path());
    assert_eq!(
        completion(&server, json!({"prompt": "the ", "max_tokens": 50, "temperature": 0})).json()["choices"][0]["text"],
        greedy.as_str()
    );

    // Every bad input: an OpenAI-shaped error with its status.
    server.post("/v1/completions", "{\"prompt\": \"the \"").assert_error(400, "EOF");
    completion(&server, json!({"prompt": "the ", "colour": 1})).assert_error(400, "unknown field `colour`");
    completion(&server, json!({"prompt": "the ÿ€"})).assert_error(400, "'ÿ', '€'");
    let skipped = completion(&server, json!({"prompt": "the ÿ", "seed": 11, "max_tokens": 120, "skip_unknown": true}));
    assert_eq!(skipped.json()["choices"][0]["text"], want.as_str());
    completion(&server, json!({"prompt": "e".repeat(301)})).assert_error(400, "301 characters");
    completion(&server, json!({"prompt": "the ", "max_tokens": 301})).assert_error(400, "max_tokens is 301");
    completion(&server, json!({"prompt": "the ", "n": 9})).assert_error(400, "n must be from 1 to 8");
    completion(&server, json!({"prompt": "the ", "temperature": -1})).assert_error(400, "temperature");
    completion(&server, json!({"prompt": "the ", "stop": [""]})).assert_error(400, "stop");
    server.get("/v1/nothing").assert_error(404, "no route");

    // The other routes.
    assert_eq!(server.get("/health").json(), json!({"status": "ready"}));
    let models = server.get("/v1/models").json();
    assert_eq!(models["data"][0]["facts"]["hidden"], 24);
    let page = server.get("/");
    assert!(page.status == 200 && page.body.contains("<title>charrnn-fast</title>"), "{}", page.body);
    let score = server.post("/v1/score", &json!({"text": "the king", "per_char": true}).to_string()).json();
    let each: Vec<f64> =
        score["per_character"].as_array().unwrap().iter().map(|c| c["log_probability"].as_f64().unwrap()).collect();
    assert_eq!((score["predicted"].as_u64(), each.len()), (Some(7), 7));
    assert!((each.iter().sum::<f64>() - score["log_probability"].as_f64().unwrap()).abs() < 1e-6);
    assert!(each.iter().all(|&p| p < 0.0));
    server.post("/v1/score", &json!({"text": "t"}).to_string()).assert_error(400, "at least two");
    server.post("/v1/score", &json!({"text": "the ÿ"}).to_string()).assert_error(400, "'ÿ'");

    // /metrics parses: every sample line is a name (with labels) and a number.
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    for line in metrics.body.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("charrnn_") && value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(server.metric("charrnn_characters_generated_total") >= 120.0 * 5.0);
    assert!(server.metric("charrnn_requests_total{outcome=\"refused\"}") >= 8.0);
    assert!(server.metric("charrnn_time_to_first_character_seconds_count") >= 7.0);
}

fn sampled_greedy(dir: &std::path::Path) -> String {
    let out = run_in(dir, &["sample", "--model", "model", "--prime", "the ", "--mode", "argmax", "--length", "50"]);
    stdout(&out).strip_prefix("the ").unwrap().trim_end_matches('\n').to_owned()
}

/// An API key: none or a wrong one is 401; the page and /health stay open.
#[test]
fn api_key() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--api-key", "s3cret"]);
    let body = json!({"prompt": "the ", "max_tokens": 5}).to_string();
    server.post("/v1/completions", &body).assert_error(401, "API key");
    let wrong = request(server.addr, "POST", "/v1/completions", &[("Authorization", "Bearer nope")], &body);
    wrong.assert_error(401, "API key");
    let right = request(server.addr, "POST", "/v1/completions", &[("Authorization", "Bearer s3cret")], &body);
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(server.get("/health").status, 200);
}

/// A seeded request gives the same text alone and among 63 concurrent streaming requests.
#[test]
fn a_seeded_request_is_the_same_among_many() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--max-length", "1000"]);
    let body = |seed: u64| json!({"prompt": "king ", "max_tokens": 400, "seed": seed, "stream": true}).to_string();
    let alone = streamed_texts(&server.post("/v1/completions", &body(7)).body, 1).0.remove(0);
    assert_eq!(alone.chars().count(), 400);
    let addr = server.addr;
    let clients: Vec<_> = (0..64u64)
        .map(|i| {
            let body = body(if i == 40 { 7 } else { 100 + i });
            std::thread::spawn(move || request(addr, "POST", "/v1/completions", &[], &body))
        })
        .collect();
    let texts: Vec<String> =
        clients.into_iter().map(|c| streamed_texts(&c.join().unwrap().body, 1).0.remove(0)).collect();
    assert_eq!(texts[40], alone);
    assert!(texts.iter().all(|t| t.chars().count() == 400));
    server.wait_for_metric("charrnn_active_streams", 0.0);
}

/// Clients killed mid-stream free their rows, and the server keeps serving.
#[test]
fn clients_that_leave_free_their_rows() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--max-length", "100000000", "--max-streams", "8"]);
    let body = json!({"prompt": "the ", "max_tokens": 100_000_000, "stream": true, "n": 2}).to_string();
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let mut stream = open(server.addr, "POST", "/v1/completions", &[], &body);
            let mut some = [0u8; 256];
            stream.read_exact(&mut some).unwrap();
            // Keep reading until the client leaves, so no stream is cut as a slow reader.
            let mut reader = stream.try_clone().unwrap();
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            stream
        })
        .collect();
    assert_eq!(server.metric("charrnn_active_streams"), 8.0);
    for stream in &streams {
        stream.shutdown(std::net::Shutdown::Both).unwrap();
    }
    drop(streams);
    server.wait_for_metric("charrnn_active_streams", 0.0);
    server.wait_for_metric("charrnn_requests_total{outcome=\"client_gone\"}", 4.0);
    let after = completion(&server, json!({"prompt": "the ", "max_tokens": 20}));
    assert_eq!(after.json()["choices"][0]["text"].as_str().unwrap().chars().count(), 20);
}

/// Every row taken and the queue full: 429 with Retry-After.
#[test]
fn a_full_queue_is_429() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--max-length", "100000000", "--max-streams", "1", "--max-queue", "1"]);
    // Whole answers, not streams: a whole answer's text waits in the server however slowly its
    // client reads, so the long request keeps its row for the whole test without a reader
    // (a stream left unread is cut and frees its row; one read as fast as it comes kept a
    // 2-core CI machine so busy that the third request went unanswered for a minute).
    let long = json!({"prompt": "the ", "max_tokens": 100_000_000}).to_string();
    let _running = open(server.addr, "POST", "/v1/completions", &[], &long);
    server.wait_for_metric("charrnn_active_streams", 1.0);
    let _waiting = open(server.addr, "POST", "/v1/completions", &[], &long);
    server.wait_for_metric("charrnn_queued_requests", 1.0);
    let refused = completion(&server, json!({"prompt": "the "}));
    refused.assert_error(429, "busy");
    assert_eq!(refused.header("retry-after"), Some("1"));
}

/// A client that does not read is cut (an error event ends its stream); the batch goes on.
#[test]
fn a_slow_reader_is_cut() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &["--max-length", "1000000000"]);
    let body = json!({"prompt": "the ", "max_tokens": 1_000_000_000, "stream": true}).to_string();
    let mut stream = open(server.addr, "POST", "/v1/completions", &[], &body);
    let mut some = [0u8; 64];
    stream.read_exact(&mut some).unwrap();
    server.wait_for_metric("charrnn_active_streams", 1.0);
    // The engine drops the row once the stream's buffer is full.
    server.wait_for_metric("charrnn_active_streams", 0.0);
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    server.wait_for_metric("charrnn_requests_total{outcome=\"cut\"}", 1.0);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("slow_reader") && !text.contains("[DONE]"), "{}", &text[text.len().saturating_sub(500)..]);
    assert_eq!(completion(&server, json!({"prompt": "the ", "max_tokens": 5})).status, 200);
}

/// SIGTERM mid-stream: the stream gets a last event and `[DONE]`, the server exits 0 within a
/// second or so.
#[test]
fn sigterm_mid_stream_ends_cleanly() {
    let dir = trained_model();
    let mut server = Server::start(dir.path(), &["--max-length", "100000000"]);
    let body = json!({"prompt": "the ", "max_tokens": 100_000_000, "stream": true}).to_string();
    let mut stream = open(server.addr, "POST", "/v1/completions", &[], &body);
    let mut some = [0u8; 256];
    stream.read_exact(&mut some).unwrap();
    let child = server.child.take().unwrap();
    signal(&child, "TERM");
    let started = Instant::now();
    let mut bytes = some.to_vec();
    stream.read_to_end(&mut bytes).unwrap();
    let (out, took) = wait_at_most(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", server.stderr.lock().unwrap());
    assert!(took < Duration::from_secs(3) && started.elapsed() < Duration::from_secs(3), "{took:?}");
    let answer = parse(&bytes);
    let data = sse_data(&answer.body);
    let last_text = &data[data.len().saturating_sub(3)..];
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{last_text:?}");
    assert!(answer.body.contains("\"finish_reason\":\"shutdown\""), "{last_text:?}");
}

/// A port in use is one error line and exit 1.
#[test]
fn a_taken_port_is_an_error() {
    let dir = trained_model();
    let server = Server::start(dir.path(), &[]);
    let port = server.addr.port().to_string();
    let out = run_in(dir.path(), &["serve", "--model", "model", "--port", &port]);
    assert_clean_error(&out, &format!("cannot listen on 127.0.0.1:{port}"));
}
