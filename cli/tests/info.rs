//! `charrnn-fast info`: the facts of a model directory, a run directory and a checkpoint file,
//! as text and as JSON with stable keys.

mod common;
use common::*;

use serde_json::Value;

fn info_json(dir: &std::path::Path, path: &str) -> Value {
    let out = run_in(dir, &["info", path, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn info_describes_a_run_its_best_model_and_a_bare_checkpoint() {
    let dir = dir_with_corpus(20_000);
    let args = train_with(&[TINY_MODEL, &["--cell", "gru", "--layers", "1", "--steps", "4", "--eval-every", "2"]]);
    let out = run_in(dir.path(), &[args.as_slice(), &["--out", "run"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));

    let run = info_json(dir.path(), "run");
    let keys: Vec<&str> = run.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "path",
        "kind",
        "cell",
        "layers",
        "hidden",
        "embed",
        "vocab_size",
        "vocab_kind",
        "parameters",
        "precision",
        "steps",
        "total_steps",
        "val_loss",
        "val_loss_step",
        "best_val_loss",
        "corpus",
        "model",
        "checkpoint",
        "best",
    ];
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(run["kind"], "run");
    assert_eq!((run["cell"].as_str(), run["layers"].as_u64(), run["hidden"].as_u64()), (Some("gru"), Some(1), Some(8)));
    assert_eq!((run["embed"].as_u64(), run["vocab_kind"].as_str()), (Some(4), Some("characters")));
    // A GRU of 8 over an embedding of 4 and the vocabulary V: 4·V + 3·8·(4+8+2) + 8·V + V.
    let v = run["vocab_size"].as_u64().unwrap();
    assert_eq!(run["parameters"].as_u64(), Some(4 * v + 3 * 8 * (4 + 8 + 2) + 9 * v));
    assert_eq!((run["steps"].as_u64(), run["total_steps"].as_u64()), (Some(4), Some(4)));
    assert_eq!((run["precision"].as_str(), run["val_loss_step"].as_u64()), (Some("f32"), Some(4)));
    assert!(run["val_loss"].as_f64().unwrap() > 0.0);
    assert!(run["corpus"].as_str().unwrap().ends_with("c.txt"));
    assert_eq!((run["model"].as_bool(), run["checkpoint"]["step"].as_u64()), (Some(true), Some(4)));
    assert!(run["best"]["val_loss"].as_f64().is_some(), "{run}");

    let best = info_json(dir.path(), "run/best");
    assert_eq!(
        (best["kind"].as_str(), best["checkpoint"].is_null(), best["best"].is_null()),
        (Some("model"), true, true)
    );
    assert_eq!(best["val_loss"], run["best"]["val_loss"]);

    // A killed run: only its checkpoint.
    std::fs::create_dir(dir.path().join("killed")).unwrap();
    std::fs::copy(dir.path().join("run/checkpoint.safetensors"), dir.path().join("killed/checkpoint.safetensors"))
        .unwrap();
    for path in ["killed", "killed/checkpoint.safetensors"] {
        let ck = info_json(dir.path(), path);
        assert_eq!((ck["model"].as_bool(), ck["steps"].as_u64()), (Some(false), Some(4)), "{path}");
        assert_eq!(
            (ck["parameters"].clone(), ck["vocab_kind"].clone()),
            (run["parameters"].clone(), run["vocab_kind"].clone())
        );
    }
    assert_eq!(info_json(dir.path(), "killed/checkpoint.safetensors")["kind"], "checkpoint");

    let text = run_in(dir.path(), &["info", "run"]);
    let text = stdout(&text);
    for line in [
        "run: a training run (a saved model, a checkpoint of step 4, best/)",
        "model: 1 × 8 gru, embedding 4",
        "steps: 4 of 4",
        "measured after step 4",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    std::fs::create_dir(dir.path().join("empty")).unwrap();
    assert_run_fails(dir.path(), &["info", "empty"], "holds no model");
    assert_run_fails(dir.path(), &["info", "nothing"], "'nothing' does not exist");
    assert_run_fails(dir.path(), &["info", "c.txt"], "c.txt");
}

/// Sizes in a damaged `config.json` are read, not trusted: a parameter count that overflows,
/// or a layer count that would take forever to add up, is an error line, never a panic or a
/// hang.
#[test]
fn info_on_a_config_with_absurd_sizes_is_an_error() {
    let dir = dir_with_corpus(20_000);
    let out = run_in(dir.path(), &[train_with(&[TINY_MODEL, &["--steps", "2"]]).as_slice(), &["--out", "m"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let config = dir.path().join("m/config.json");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    for (field, value) in [("hidden_size", Value::from(1u64 << 40)), ("num_layers", Value::from(u64::MAX))] {
        let mut damaged = original.clone();
        damaged["model"][field] = value;
        std::fs::write(&config, serde_json::to_vec(&damaged).unwrap()).unwrap();
        let out = run_in(dir.path(), &["info", "m"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{field}: {err}");
        assert!(err.starts_with("error: ") && err.contains("config.json") && !err.contains("panicked"), "{err}");
    }
}
