//! A load test of `charrnn-fast serve`, on loopback, bounded in time and request count.
//!
//! Streaming mode: `--clients C` concurrent streaming requests of `--chars N` characters each;
//! prints total characters/s and the median and p99 time to first character, as JSON.
//!
//! ```sh
//! cargo run --release -p charrnn-cli --example serve_load -- --addr 127.0.0.1:8080 --clients 64 --chars 2000
//! ```
//!
//! RSS mode: `--rss-requests M --pid PID` sends M short requests (by `--clients` workers) and
//! prints the server's resident memory (from /proc/PID/status) every tenth of them, as JSON.
//!
//! Every request gives up after `--timeout-s` seconds (default 120).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    addr: String,
    clients: usize,
    chars: usize,
    prompt: String,
    timeout: Duration,
    rss_requests: usize,
    pid: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:8080".into(),
        clients: 64,
        chars: 2000,
        prompt: "\n".into(),
        timeout: Duration::from_secs(120),
        rss_requests: 0,
        pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--addr" => o.addr = value.clone(),
            "--clients" => o.clients = number()?.max(1),
            "--chars" => o.chars = number()?,
            "--prompt" => o.prompt = value.clone(),
            "--timeout-s" => o.timeout = Duration::from_secs(number()? as u64),
            "--rss-requests" => o.rss_requests = number()?,
            "--pid" => o.pid = Some(number()? as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

/// One streaming request: (characters received, time to the first one).
fn stream(o: &Options, seed: usize) -> Result<(usize, Duration), String> {
    let body = format!(
        r#"{{"prompt":{},"max_tokens":{},"seed":{seed},"stream":true}}"#,
        serde_json::to_string(&o.prompt).map_err(|e| e.to_string())?,
        o.chars
    );
    let started = Instant::now();
    let mut connection = TcpStream::connect(&o.addr).map_err(|e| format!("connect {}: {e}", o.addr))?;
    connection.set_read_timeout(Some(o.timeout)).map_err(|e| e.to_string())?;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        o.addr,
        body.len()
    );
    connection
        .write_all(head.as_bytes())
        .and_then(|()| connection.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let (mut chars, mut first) = (0, None);
    for line in BufReader::new(connection).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if started.elapsed() > o.timeout {
            return Err("timed out".into());
        }
        let Some(data) = line.strip_prefix("data: ") else { continue };
        if data == "[DONE]" {
            break;
        }
        let chunk: serde_json::Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        if chunk.get("error").is_some() {
            return Err(format!("error event: {data}"));
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let n = choice["text"].as_str().map_or(0, |t| t.chars().count());
            if n > 0 && first.is_none() {
                first = Some(started.elapsed());
            }
            chars += n;
        }
    }
    Ok((chars, first.unwrap_or_default()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

fn main() {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if o.rss_requests > 0 {
        let pid = o.pid.unwrap_or_else(|| {
            eprintln!("error: --rss-requests needs --pid of the server");
            std::process::exit(1);
        });
        let next = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(std::sync::Mutex::new(vec![(0usize, rss_kib(pid))]));
        let workers: Vec<_> = (0..o.clients)
            .map(|_| {
                let (o, next, samples) = (Arc::clone(&o), Arc::clone(&next), Arc::clone(&samples));
                std::thread::spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= o.rss_requests {
                        return;
                    }
                    let short = Options { chars: 20, prompt: o.prompt.clone(), addr: o.addr.clone(), ..*o };
                    if let Err(e) = stream(&short, i) {
                        eprintln!("request {i}: {e}");
                    }
                    if (i + 1) % (o.rss_requests / 10).max(1) == 0 {
                        samples.lock().unwrap().push((i + 1, rss_kib(pid)));
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| drop(w.join()));
        let mut samples = samples.lock().unwrap();
        samples.sort_by_key(|(n, _)| *n);
        let list: Vec<_> = samples.iter().map(|(n, kib)| serde_json::json!({"requests": n, "rss_kib": kib})).collect();
        println!("{}", serde_json::json!({"mode": "rss", "requests": o.rss_requests, "samples": list}));
        return;
    }
    let started = Instant::now();
    let clients: Vec<_> = (0..o.clients)
        .map(|i| {
            let o = Arc::clone(&o);
            std::thread::spawn(move || stream(&o, i))
        })
        .collect();
    let (mut chars, mut firsts, mut failed) = (0, Vec::new(), 0);
    for client in clients {
        match client.join() {
            Ok(Ok((n, first))) => {
                chars += n;
                firsts.push(first);
            }
            Ok(Err(e)) => {
                eprintln!("client: {e}");
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    firsts.sort();
    println!(
        "{}",
        serde_json::json!({
            "mode": "stream",
            "clients": o.clients,
            "chars_per_client": o.chars,
            "failed": failed,
            "characters": chars,
            "seconds": seconds,
            "characters_per_second": chars as f64 / seconds,
            "first_character_ms": {"median": percentile(&firsts, 0.5), "p99": percentile(&firsts, 0.99)},
        })
    );
}
