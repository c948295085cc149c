//! For the `serve` tests: a tiny model trained once per test, a server started on a free
//! loopback port, and a minimal HTTP/1.1 client over `TcpStream` (one request per connection).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A directory with a small corpus and a tiny model trained on it in `model/`.
pub fn trained_model() -> tempfile::TempDir {
    let dir = dir_with_corpus(20_000);
    let out = run_in(dir.path(), &train_with(&[SMALL_MODEL, &["--steps", "30", "--out", "model"]]));
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// A running `serve`; killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    /// Everything it wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `serve --model model --port 0` in `dir` with `extra`, and waits for the address
    /// it prints.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--model", "model", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = spawn_in(dir, &args);
        let pipe = child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = found.send(addr.to_owned());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().expect("an address"),
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {}", stderr.lock().unwrap());
            }
        };
        let server = Server { child: Some(child), addr, stderr };
        let started = Instant::now();
        while server.get("/health").status != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], "")
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        request(self.addr, "POST", path, &[], body)
    }

    /// A metric's value (the first line that starts with `name`, labels included).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").body;
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Waits until `metric` is `value` (at most 20 s).
    pub fn wait_for_metric(&self, name: &str, value: f64) {
        let started = Instant::now();
        while self.metric(name) != value {
            assert!(started.elapsed() < Duration::from_secs(20), "{name} stayed at {}", self.metric(name));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An answer: status, headers (names in lower case), body (chunked bodies decoded).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts an OpenAI-shaped error with `status` whose message contains `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let e = &self.json()["error"];
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle} in {message}");
        assert!(e["type"].is_string() && e["code"].is_string(), "{}", self.body);
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut stream = open(addr, method, path, headers, body);
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read the answer");
    parse(&bytes)
}

/// Sends one request and returns the connection, to read its answer as it comes.
pub fn open(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    stream
}

/// Parses a whole HTTP/1.1 answer.
pub fn parse(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {text}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    body
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or_else(|| panic!("an SSE event without data: {e:?}")).to_owned())
        .collect()
}

/// The text of each choice of a streamed answer, and whether it ended with `[DONE]`.
pub fn streamed_texts(body: &str, n: usize) -> (Vec<String>, bool) {
    let data = sse_data(body);
    let mut texts = vec![String::new(); n];
    for d in &data {
        if d == "[DONE]" {
            continue;
        }
        let chunk: serde_json::Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
        for c in chunk["choices"].as_array().into_iter().flatten() {
            texts[c["index"].as_u64().unwrap() as usize].push_str(c["text"].as_str().unwrap());
        }
    }
    (texts, data.last().is_some_and(|d| d == "[DONE]"))
}
