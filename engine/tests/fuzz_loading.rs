//! Property ("fuzz") tests of everything that reads a file: the vocabulary, the token file,
//! `prepare` (its input and its cache) and model directories. Arbitrary bytes, and random
//! mutations of valid files (bit flips, overwritten, inserted, removed and duplicated bytes,
//! truncation, extension, and edits of the JSON structure), must give `Ok` or a typed error:
//! never a panic, an out-of-bounds read or an abort.
//!
//! Case counts are modest so the file runs in a few seconds in a debug build; raise them with
//! `PROPTEST_CASES=10000 cargo test -p charrnn-engine --test fuzz_loading` for a longer run.
//! Failures are not persisted to files (the shrunk input is printed instead).

use std::fs;
use std::path::Path;

use charrnn_engine::data::{prepare, DataError, PrepareOptions, TokenStream, TokenWidth, Vocab};
use charrnn_engine::files::model_dir::{load_model, save_model, CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE};
use charrnn_engine::{CellKind, Model, ModelConfig};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// `cases` cases, no failure-persistence files; `PROPTEST_CASES` still overrides the count.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// -------------------------------------------------------------------------------------------
// Mutations
// -------------------------------------------------------------------------------------------

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Insert bytes at a position.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes from a position.
    Remove(Index, usize),
    /// Repeat a slice of up to `n` bytes in place.
    Duplicate(Index, usize),
    /// Keep only a prefix.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
}

/// Bytes that matter to the parsers: JSON punctuation, digits, signs, escapes, UTF-8 lead and
/// continuation bytes, and the extremes.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"0123456789-+.eE\"\\{}[],: nu\x00\x7f\x80\xbf\xc3\xe2\xf0\xf4\xff".to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = || proptest::collection::vec(interesting_byte(), 1..8);
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), bytes()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        bytes().prop_map(Mutation::Extend),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..5)
}

/// `i` as a position in `0..len` (0 when empty).
fn pos(i: &Index, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        i.index(len)
    }
}

fn apply(original: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut b = original.to_vec();
    for edit in edits {
        match edit {
            Mutation::Flip(i, m) if !b.is_empty() => {
                let p = pos(i, b.len());
                b[p] ^= m;
            }
            Mutation::Set(i, v) if !b.is_empty() => {
                let p = pos(i, b.len());
                b[p] = *v;
            }
            Mutation::Flip(..) | Mutation::Set(..) => {}
            Mutation::Insert(i, bytes) => {
                let p = pos(i, b.len() + 1);
                b.splice(p..p, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let p = pos(i, b.len());
                let end = (p + n).min(b.len());
                b.drain(p..end);
            }
            Mutation::Duplicate(i, n) => {
                let p = pos(i, b.len());
                let end = (p + n).min(b.len());
                let piece: Vec<u8> = b[p..end].to_vec();
                b.splice(end..end, piece);
            }
            Mutation::Truncate(i) => {
                let p = pos(i, b.len() + 1);
                b.truncate(p);
            }
            Mutation::Extend(bytes) => b.extend_from_slice(bytes),
        }
    }
    b
}

/// A JSON value to put somewhere a valid file had another one.
fn json_leaf() -> impl Strategy<Value = Value> {
    let numbers = proptest::sample::select(vec![
        Value::from(0),
        Value::from(1),
        Value::from(2),
        Value::from(3),
        Value::from(5),
        Value::from(255),
        Value::from(256),
        Value::from(257),
        Value::from(65_535),
        Value::from(65_536),
        Value::from(65_537),
        Value::from(-1),
        Value::from(i64::MIN),
        Value::from(u32::MAX),
        Value::from(u64::MAX),
        Value::from(1.5),
        Value::from(-0.0),
        Value::from(1e300),
    ]);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        numbers,
        any::<i64>().prop_map(Value::from),
        ".{0,3}".prop_map(Value::from),
        proptest::sample::select(vec![
            "lstm",
            "rnn",
            "gru",
            "chars",
            "bytes",
            "charrnn-fast model",
            "F32",
            "F64",
            "I8"
        ])
        .prop_map(Value::from),
        Just(Value::Array(vec![])),
        Just(serde_json::json!({})),
        Just(serde_json::json!([0, 0])),
    ]
}

/// One structural edit of a JSON document.
#[derive(Clone, Debug)]
enum JsonEdit {
    /// Replace the value at one of the document's paths.
    Replace(Index, Value),
    /// Remove the value at one of the paths (an object member or an array element).
    Remove(Index),
    /// Add a member or element next to the value at one of the paths.
    Add(Index, String, Value),
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        3 => (any::<Index>(), json_leaf()).prop_map(|(i, v)| JsonEdit::Replace(i, v)),
        1 => any::<Index>().prop_map(JsonEdit::Remove),
        1 => (any::<Index>(), "[a-z_]{1,12}", json_leaf()).prop_map(|(i, k, v)| JsonEdit::Add(i, k, v)),
    ]
}

fn json_edits() -> impl Strategy<Value = Vec<JsonEdit>> {
    proptest::collection::vec(json_edit(), 1..4)
}

/// JSON pointers of every value below the root.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn apply_json(doc: &mut Value, edits: &[JsonEdit]) {
    for edit in edits {
        let mut paths = Vec::new();
        pointers(doc, String::new(), &mut paths);
        let pick = |i: &Index| (!paths.is_empty()).then(|| paths[i.index(paths.len())].clone());
        match edit {
            JsonEdit::Replace(i, v) => match pick(i) {
                Some(p) => *doc.pointer_mut(&p).expect("listed path") = v.clone(),
                None => *doc = v.clone(),
            },
            JsonEdit::Remove(i) => {
                if let Some(p) = pick(i) {
                    let (parent, last) = p.rsplit_once('/').expect("pointer has a slash");
                    match doc.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&last.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(k) = last.parse::<usize>() {
                                if k < a.len() {
                                    a.remove(k);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            JsonEdit::Add(i, key, v) => {
                let parent = pick(i).map(|p| p.rsplit_once('/').expect("pointer has a slash").0.to_owned());
                let target = match parent.as_deref() {
                    Some(p) => doc.pointer_mut(p),
                    None => Some(&mut *doc),
                };
                match target {
                    Some(Value::Object(m)) => {
                        m.insert(key.clone(), v.clone());
                    }
                    Some(Value::Array(a)) => a.push(v.clone()),
                    _ => {}
                }
            }
        }
    }
}

/// Either arbitrary bytes, byte mutations of `valid`, or (when it parses) JSON edits of it.
#[derive(Clone, Debug)]
enum Damage {
    Arbitrary(Vec<u8>),
    Bytes(Vec<Mutation>),
    Json(Vec<JsonEdit>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(Damage::Arbitrary),
        3 => mutations().prop_map(Damage::Bytes),
        3 => json_edits().prop_map(Damage::Json),
    ]
}

fn damaged(valid: &[u8], damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Arbitrary(bytes) => bytes.clone(),
        Damage::Bytes(edits) => apply(valid, edits),
        Damage::Json(edits) => {
            let mut doc: Value = serde_json::from_slice(valid).expect("valid JSON");
            apply_json(&mut doc, edits);
            serde_json::to_vec_pretty(&doc).expect("serialise JSON")
        }
    }
}

/// For model.safetensors: JSON edits apply to its header, keeping the length prefix right so
/// the edit reaches the tensor checks instead of failing at the prefix.
fn damaged_safetensors(valid: &[u8], damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Json(edits) => {
            let n = u64::from_le_bytes(valid[..8].try_into().expect("8 bytes")) as usize;
            let mut header: Value = serde_json::from_slice(&valid[8..8 + n]).expect("valid header");
            apply_json(&mut header, edits);
            let mut text = serde_json::to_vec(&header).expect("serialise JSON");
            while !text.len().is_multiple_of(8) {
                text.push(b' ');
            }
            let mut out = (text.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(&text);
            out.extend_from_slice(&valid[8 + n..]);
            out
        }
        other => damaged(valid, other),
    }
}

// -------------------------------------------------------------------------------------------
// Vocabulary
// -------------------------------------------------------------------------------------------

/// A loaded vocabulary must be self-consistent: every id's symbol maps back to that id.
fn check_vocab(v: &Vocab) {
    assert!(!v.is_empty());
    let mut out = Vec::new();
    for id in 0..v.len() as u32 {
        out.clear();
        v.decode_into(id, &mut out);
        match (v.chars(), v.bytes()) {
            (Some(chars), None) => assert_eq!(v.id_of_char(chars[id as usize]), Some(id)),
            (None, Some(bytes)) => assert_eq!(v.id_of_byte(bytes[id as usize]), Some(id)),
            _ => panic!("a vocabulary is chars or bytes"),
        }
    }
    let _ = v.encode("The quick brown fox\n\u{e9}\u{1F600}");
    let _ = v.encode_lossy("The quick brown fox\n\u{e9}\u{1F600}");
}

fn valid_vocab_files() -> Vec<Vec<u8>> {
    let chars = Vocab::from_symbols_chars("e tao\n\"\\é😀".chars().collect()).unwrap();
    let bytes = Vocab::from_symbols_bytes(vec![32, 101, 0, 255, 10, 128]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    [chars, bytes]
        .iter()
        .map(|v| {
            let p = dir.path().join("vocab.json");
            v.save(&p).unwrap();
            fs::read(&p).unwrap()
        })
        .collect()
}

fn load_vocab_bytes(dir: &Path, bytes: &[u8]) -> Result<Vocab, DataError> {
    let p = dir.join("vocab.json");
    fs::write(&p, bytes).unwrap();
    Vocab::load(&p)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn vocab_load_never_panics(which in 0usize..2, damage in damage()) {
        let valid = &valid_vocab_files()[which];
        let dir = tempfile::tempdir().unwrap();
        let bytes = damaged(valid, &damage);
        match load_vocab_bytes(dir.path(), &bytes) {
            Ok(v) => check_vocab(&v),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(matches!(e, DataError::InvalidVocabFile { .. }), "{msg}");
                prop_assert!(msg.contains("vocab.json") && !msg.contains('\n'), "{msg}");
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Token file
// -------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn token_file_open_and_get_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.bin");
        fs::write(&p, &bytes).unwrap();
        for width in [TokenWidth::U8, TokenWidth::U16] {
            match TokenStream::open(&p, width) {
                Ok(ts) => {
                    let w = width.bytes();
                    prop_assert!(!bytes.is_empty() && bytes.len().is_multiple_of(w));
                    prop_assert_eq!(ts.len(), bytes.len() / w);
                    let mut max = 0;
                    for i in 0..ts.len() {
                        let expected = match width {
                            TokenWidth::U8 => u32::from(bytes[i]),
                            TokenWidth::U16 => u32::from(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
                        };
                        prop_assert_eq!(ts.get(i), expected);
                        max = max.max(expected);
                    }
                    prop_assert_eq!(ts.max_id(), max);
                }
                Err(e) => {
                    prop_assert!(bytes.is_empty() || !bytes.len().is_multiple_of(width.bytes()), "{e}");
                    prop_assert!(matches!(e, DataError::InvalidTokenFile { .. }), "{e}");
                }
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// prepare: arbitrary input, and a damaged cache
// -------------------------------------------------------------------------------------------

/// Input files: arbitrary bytes, or text (often multi-byte) with a few byte mutations.
fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        "(?s).{0,200}".prop_map(String::into_bytes),
        ("(?s).{0,200}", mutations()).prop_map(|(s, m)| apply(s.as_bytes(), &m)),
    ]
}

/// Prepares `input` in `dir`; on success checks that the token file decodes back to the input.
fn prepare_and_check(dir: &Path, input: &[u8], bytes: bool) -> Result<(), TestCaseError> {
    let path = dir.join("input.txt");
    fs::write(&path, input).unwrap();
    let opts = PrepareOptions { input: path, cache_dir: None, bytes, force: false };
    match prepare(&opts) {
        Ok(p) => {
            prop_assert!(!input.is_empty() && (bytes || std::str::from_utf8(input).is_ok()));
            let ts = TokenStream::open_prepared(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut out = Vec::new();
            for i in 0..ts.len() {
                p.vocab.decode_into(ts.get(i), &mut out);
            }
            prop_assert_eq!(out, input);
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{msg}");
            if input.is_empty() {
                prop_assert!(matches!(e, DataError::EmptyInput { .. }), "{msg}");
            } else if !bytes {
                let offset = std::str::from_utf8(input).expect_err("valid UTF-8 prepares").valid_up_to() as u64;
                prop_assert!(matches!(e, DataError::InvalidUtf8 { offset: o, .. } if o == offset), "{msg}");
            } else {
                return Err(TestCaseError::fail(format!("bytes mode failed on non-empty input: {msg}")));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn prepare_arbitrary_input_never_panics(input in input_bytes(), bytes in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        prepare_and_check(dir.path(), &input, bytes)?;
    }

    /// A cache whose corpus-vocab.json, tokens.bin or meta.json was damaged after a good prepare: the
    /// next prepare reuses or rebuilds it, and opening the token stream either fails cleanly
    /// or gives ids that all decode.
    #[test]
    fn prepare_with_damaged_cache_never_panics(
        bytes in any::<bool>(),
        file in proptest::sample::select(vec!["corpus-vocab.json", "tokens.bin", "meta.json"]),
        damage in damage(),
        byte_edits in mutations(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.txt");
        fs::write(&input, "Hello, world! Ça va? 😀\nthe king and the queen\n".repeat(3)).unwrap();
        let opts = PrepareOptions { input, cache_dir: None, bytes, force: false };
        let first = prepare(&opts).unwrap();
        let target = first.cache_dir.join(file);
        let valid = fs::read(&target).unwrap();
        let damage = match (&damage, file) {
            // tokens.bin is not JSON.
            (Damage::Json(_), "tokens.bin") => Damage::Bytes(byte_edits),
            _ => damage,
        };
        fs::write(&target, damaged(&valid, &damage)).unwrap();
        if let Ok(p) = prepare(&opts) {
            if let Ok(ts) = TokenStream::open_prepared(&p) {
                let mut out = Vec::new();
                for i in 0..ts.len() {
                    p.vocab.decode_into(ts.get(i), &mut out);
                }
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Model directories
// -------------------------------------------------------------------------------------------

/// A valid model directory's three files, for a few small shapes.
fn valid_model_files(cell: CellKind, layers: usize, bytes_vocab: bool) -> [(&'static str, Vec<u8>); 3] {
    let dir = tempfile::tempdir().unwrap();
    let vocab = if bytes_vocab {
        Vocab::from_symbols_bytes(vec![10, 32, 97, 98, 255]).unwrap()
    } else {
        Vocab::from_symbols_chars("ab\né😀".chars().collect()).unwrap()
    };
    let config = ModelConfig { cell, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: layers };
    save_model(dir.path(), &Model::<f32>::new(config, 7), &vocab, serde_json::json!({"steps": 1})).unwrap();
    [WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE].map(|name| (name, fs::read(dir.path().join(name)).unwrap()))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn load_model_with_one_damaged_file_never_panics(
        cell in proptest::sample::select(vec![CellKind::Lstm, CellKind::Rnn]),
        layers in 1usize..3,
        bytes_vocab in any::<bool>(),
        which in 0usize..3,
        damage in damage(),
    ) {
        let files = valid_model_files(cell, layers, bytes_vocab);
        let dir = tempfile::tempdir().unwrap();
        for (i, (name, valid)) in files.iter().enumerate() {
            let content = match (i == which, *name) {
                (false, _) => valid.clone(),
                (true, WEIGHTS_FILE) => damaged_safetensors(valid, &damage),
                (true, _) => damaged(valid, &damage),
            };
            fs::write(dir.path().join(name), content).unwrap();
        }
        match load_model(dir.path()) {
            Ok((model, vocab, _file)) => {
                prop_assert_eq!(model.params.len(), model.layout.total);
                prop_assert_eq!(vocab.len(), model.config.vocab_size);
                prop_assert!(model.config.validate().is_ok());
                check_vocab(&vocab);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.contains('\n'), "{msg}");
                let named = [WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE].iter().any(|f| msg.contains(f));
                prop_assert!(named, "the error names no file: {msg}");
            }
        }
    }
}

/// A missing file of the three is an I/O error naming it.
#[test]
fn load_model_with_a_missing_file_is_an_error() {
    let files = valid_model_files(CellKind::Lstm, 2, false);
    for which in 0..files.len() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (name, valid)) in files.iter().enumerate() {
            if i != which {
                fs::write(dir.path().join(name), valid).unwrap();
            }
        }
        let msg = load_model(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(files[which].0), "{msg}");
    }
}

/// A damaged `config.json` with `"num_layers": 18446744073709551615` is rejected at once (it
/// once made `ModelConfig::validate` loop per layer, and smaller huge counts allocated per-layer
/// bookkeeping until the process aborted).
#[test]
fn load_model_rejects_a_huge_layer_count_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, valid) in valid_model_files(CellKind::Lstm, 2, false) {
        fs::write(dir.path().join(name), valid).unwrap();
    }
    let config = dir.path().join(CONFIG_FILE);
    let text = fs::read_to_string(&config).unwrap();
    let huge = text.replace("\"num_layers\": 2", &format!("\"num_layers\": {}", u64::MAX));
    assert_ne!(huge, text);
    fs::write(&config, huge).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load_model(&path).map(|_| ()).map_err(|e| e.to_string()));
    });
    let result = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("load_model did not return within 10 s");
    let msg = result.expect_err("a huge num_layers must be rejected");
    assert!(msg.contains("config.json"), "{msg}");
}
