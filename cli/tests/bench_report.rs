//! What `bench` reports besides its speed: the CPU and kernel level, the precision, and the
//! Chrome trace of its steps.

mod common;
use common::*;

/// `--trace` writes a trace-event file with a named track per batch part and one for the
/// optimiser, and a span of every phase on every part's track for every timed step.
#[test]
fn trace_has_every_phase_of_every_part_and_step() {
    let dir = dir_with_corpus(30_000);
    let args = ["bench", "--data", "c.txt", "--threads", "2", "--steps", "2", "--warmup", "1"];
    let out = run_in(dir.path(), &[&args[..], &["--precision", "bf16", "--trace", "t.json"]].concat());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("bf16 products") && err.contains("kernels (the CPU has up to"), "{err}");
    assert!(err.contains("trace: t.json"), "{err}");
    assert!(stdout(&out).contains("kernels=") && stdout(&out).contains("precision=bf16"), "{}", stdout(&out));

    let text = std::fs::read_to_string(dir.path().join("t.json")).unwrap();
    let trace: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let names: Vec<&str> =
        events.iter().filter(|e| e["ph"] == "M").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["batch part 0", "batch part 1", "optimiser (calling thread)"]);
    let spans: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for step in 1..=2 {
        for (track, phases) in [
            (
                0,
                &["input projection", "forward recurrence", "output + loss", "backward recurrence", "weight gradients"]
                    [..],
            ),
            (
                1,
                &["input projection", "forward recurrence", "output + loss", "backward recurrence", "weight gradients"],
            ),
            (2, &["optimiser"]),
        ] {
            for phase in phases {
                assert!(
                    spans.iter().any(|e| e["tid"] == track && e["name"] == *phase && e["args"]["step"] == step),
                    "no {phase} span on track {track} in step {step}"
                );
            }
        }
    }
    assert!(spans.iter().all(|e| e["dur"].as_f64().unwrap() >= 0.0 && e["ts"].as_f64().unwrap() >= 0.0));
    assert!(!spans.iter().any(|e| e["args"]["step"] == 3 || e["args"]["step"] == 0), "warm-up or extra steps traced");
}

/// A trace that could not be written is refused before the benchmark runs.
#[test]
fn an_unwritable_trace_path_is_refused_at_once() {
    let dir = dir_with_corpus(30_000);
    let args = ["bench", "--data", "c.txt", "--steps", "1", "--warmup", "0", "--trace"];
    let missing = run_in(dir.path(), &[&args[..], &["no/such/dir/t.json"]].concat());
    assert_clean_error(&missing, "the directory 'no/such/dir' does not exist");
    assert!(!stdout(&missing).contains("tokens/s"), "the benchmark ran: {}", stdout(&missing));
    let directory = run_in(dir.path(), &[&args[..], &["."]].concat());
    assert_clean_error(&directory, "is a directory");
}
