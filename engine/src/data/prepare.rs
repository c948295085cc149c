//! `prepare`: turn a text file into a cached vocabulary and token file, streaming.
//!
//! The cache directory (`--cache DIR`, else [`default_cache_place`]: `<input>.charrnn`, or
//! `<input>.charrnn-bytes` with `--bytes`, when the input's folder is the user's, else in the
//! user's cache directory) holds `corpus-vocab.json`, `tokens.bin` (raw little-endian ids, `u8`
//! when the vocabulary has at most 256 entries, else `u16`) and `meta.json`. The vocabulary is
//! not named `vocab.json`, the name of a model's vocabulary: a cache and a model may share a
//! directory without one overwriting the other. The cache is reused when `meta.json` parses and
//! its format version, kind, input size and the SHA-256 of the whole input all match, and
//! `tokens.bin` has the recorded length. Otherwise it is rebuilt. The input is hashed whole on
//! every use (about a second per GB): a cheaper key (size and modification time, or the ends
//! of the file) misses an edit that keeps both, and the model would train on stale tokens.
//!
//! Crash safety: a rebuild first deletes `meta.json`, writes `tokens.bin` and the vocabulary via
//! temporary files (fsync + rename), and writes `meta.json` last (also atomically). An
//! interrupted prepare therefore never leaves a cache that looks valid.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache_place::default_cache_place;
use super::error::DataError;
use super::scan::{count_symbols, encode_stream, DEFAULT_CHUNK};
use super::vocab::{TokenWidth, Vocab, VocabKind, MAX_VOCAB};
use charrnn_fileio::atomic_file::write_atomic_with;
use charrnn_fileio::chunks::sha256_hex;

/// Version of the cache layout; bump it when the meaning of any cached file changes (2: the
/// whole input's hash, and `corpus-vocab.json`; a cache of version 1 is rebuilt once).
pub const CACHE_FORMAT_VERSION: u32 = 2;

/// The cache's vocabulary (not `vocab.json`: see the module documentation).
pub const CACHE_VOCAB_FILE: &str = "corpus-vocab.json";
const VOCAB_FILE: &str = CACHE_VOCAB_FILE;
const TOKENS_FILE: &str = "tokens.bin";
const META_FILE: &str = "meta.json";

/// What to prepare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareOptions {
    /// The input text (or any file, with `bytes`).
    pub input: PathBuf,
    /// Where the cache files go; `None` for [`default_cache_dir`] (the CLI names it, to say
    /// where it went).
    pub cache_dir: Option<PathBuf>,
    /// Treat the input as raw bytes instead of UTF-8 characters.
    pub bytes: bool,
    /// Rebuild even if a valid cache exists.
    pub force: bool,
}

/// A prepared corpus: its vocabulary and where its token file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The vocabulary (ids by descending frequency).
    pub vocab: Vocab,
    /// The cache directory.
    pub cache_dir: PathBuf,
    /// `cache_dir/tokens.bin`.
    pub tokens_path: PathBuf,
    /// Number of tokens in `tokens.bin`.
    pub n_tokens: u64,
    /// Width of each id in `tokens.bin`.
    pub token_width: TokenWidth,
    /// True when an existing cache was reused, false when it was (re)built.
    pub reused: bool,
}

/// The default cache directory: see [`default_cache_place`].
pub fn default_cache_dir(input: &Path, bytes: bool) -> PathBuf {
    default_cache_place(input, bytes).dir
}

/// Identifies one version of the input: its size and the SHA-256 of all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    input_size: u64,
    input_sha256: String,
}

/// Contents of `meta.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Meta {
    format_version: u32,
    kind: VocabKind,
    #[serde(flatten)]
    fingerprint: Fingerprint,
    n_tokens: u64,
    token_width: TokenWidth,
    vocab_size: usize,
    /// For information only; never compared.
    input_path: String,
}

/// Prepares `opts.input`: reuses a valid cache or builds one. See the module documentation.
pub fn prepare(opts: &PrepareOptions) -> Result<Prepared, DataError> {
    prepare_until(opts, &|| false)
}

/// [`prepare`] that gives up when `stop` says so (a Ctrl-C, say), polled before each read of
/// the input (every MiB): a large corpus takes minutes to prepare. The build then ends with
/// [`DataError::ReadInput`] (the caller knows why), its temporary file removed and the old
/// cache invalidated, so that nothing half-written is ever reused.
pub fn prepare_until(opts: &PrepareOptions, stop: &dyn Fn() -> bool) -> Result<Prepared, DataError> {
    prepare_in_chunks(opts, DEFAULT_CHUNK, stop)
}

/// [`prepare`] with an explicit read-buffer size (tests use tiny ones).
#[cfg(test)]
pub(crate) fn prepare_with_chunk(opts: &PrepareOptions, chunk: usize) -> Result<Prepared, DataError> {
    prepare_in_chunks(opts, chunk, &|| false)
}

fn prepare_in_chunks(opts: &PrepareOptions, chunk: usize, stop: &dyn Fn() -> bool) -> Result<Prepared, DataError> {
    let input = opts.input.as_path();
    let kind = if opts.bytes { VocabKind::Bytes } else { VocabKind::Chars };
    let fingerprint = fingerprint(input)?;
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(|| default_cache_dir(input, opts.bytes));

    if !opts.force {
        if let Some(prepared) = try_reuse(&cache_dir, kind, &fingerprint) {
            return Ok(prepared);
        }
    }
    build(input, kind, &cache_dir, &fingerprint, chunk, stop)
}

/// Reads `inner` until `stop` says to stop, then fails every read.
struct UntilStopped<'a, R> {
    inner: R,
    stop: &'a dyn Fn() -> bool,
}

impl<R: Read> Read for UntilStopped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if (self.stop)() {
            // Not `ErrorKind::Interrupted`, which readers retry.
            return Err(io::Error::other("stopped on request"));
        }
        self.inner.read(buf)
    }
}

fn read_err(path: &Path) -> impl Fn(io::Error) -> DataError + '_ {
    move |source| DataError::ReadInput { path: path.to_path_buf(), source }
}

fn cache_err(path: &Path) -> impl Fn(io::Error) -> DataError + '_ {
    move |source| DataError::CacheIo { path: path.to_path_buf(), source }
}

/// Stats the input (must be a non-empty regular file) and hashes it.
fn fingerprint(input: &Path) -> Result<Fingerprint, DataError> {
    let md = fs::metadata(input).map_err(read_err(input))?;
    if !md.is_file() {
        return Err(DataError::ReadInput {
            path: input.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    let size = md.len();
    if size == 0 {
        return Err(DataError::EmptyInput { path: input.to_path_buf() });
    }
    let f = File::open(input).map_err(read_err(input))?;
    let (read, input_sha256) = sha256_hex(f).map_err(read_err(input))?;
    if read != size {
        return Err(DataError::InputChanged { path: input.to_path_buf() });
    }
    Ok(Fingerprint { input_size: size, input_sha256 })
}

/// The cached result if the cache is complete and matches the input; `None` means rebuild.
fn try_reuse(cache_dir: &Path, kind: VocabKind, fp: &Fingerprint) -> Option<Prepared> {
    let meta: Meta = serde_json::from_slice(&fs::read(cache_dir.join(META_FILE)).ok()?).ok()?;
    if meta.format_version != CACHE_FORMAT_VERSION || meta.kind != kind || meta.fingerprint != *fp {
        return None;
    }
    let vocab = Vocab::load(&cache_dir.join(VOCAB_FILE)).ok()?;
    if vocab.kind() != kind
        || vocab.len() != meta.vocab_size
        || TokenWidth::for_vocab_len(vocab.len()) != meta.token_width
        || meta.n_tokens == 0
    {
        return None;
    }
    let tokens_path = cache_dir.join(TOKENS_FILE);
    let expected_len = meta.n_tokens.checked_mul(meta.token_width.bytes() as u64)?;
    if fs::metadata(&tokens_path).ok()?.len() != expected_len {
        return None;
    }
    Some(Prepared {
        vocab,
        cache_dir: cache_dir.to_path_buf(),
        tokens_path,
        n_tokens: meta.n_tokens,
        token_width: meta.token_width,
        reused: true,
    })
}

fn build(
    input: &Path,
    kind: VocabKind,
    cache_dir: &Path,
    fp: &Fingerprint,
    chunk: usize,
    stop: &dyn Fn() -> bool,
) -> Result<Prepared, DataError> {
    let changed = || DataError::InputChanged { path: input.to_path_buf() };

    // Pass 1: count symbols (this also validates UTF-8 before anything is written).
    let file = UntilStopped { inner: File::open(input).map_err(read_err(input))?, stop };
    let (counts, n_bytes) = count_symbols(file, kind, chunk, input)?;
    if n_bytes != fp.input_size {
        return Err(changed());
    }
    let distinct = counts.distinct();
    if distinct > MAX_VOCAB {
        return Err(DataError::TooManySymbols { path: input.to_path_buf(), count: distinct, max: MAX_VOCAB });
    }
    let expected_tokens = counts.total();
    let vocab = counts.to_vocab()?;
    drop(counts);
    let width = TokenWidth::for_vocab_len(vocab.len());

    // Invalidate any old cache before touching its files.
    fs::create_dir_all(cache_dir).map_err(cache_err(cache_dir))?;
    let meta_path = cache_dir.join(META_FILE);
    match fs::symlink_metadata(&meta_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(cache_err(&meta_path)(e)),
        // Only a regular file (what a prepare wrote) is removed; anything else is refused.
        Ok(meta) if !meta.is_file() => {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file; it is left as it is");
            return Err(cache_err(&meta_path)(e));
        }
        Ok(_) => fs::remove_file(&meta_path).map_err(cache_err(&meta_path))?,
    }

    // Pass 2: write the token ids.
    let tokens_path = cache_dir.join(TOKENS_FILE);
    let n_tokens = write_atomic_with(&tokens_path, cache_err(&tokens_path), |w, tmp| {
        let file = UntilStopped { inner: File::open(input).map_err(read_err(input))?, stop };
        let n = encode_stream(file, &vocab, width, chunk, input, w, tmp)?;
        if n != expected_tokens {
            return Err(changed());
        }
        Ok(n)
    })?;
    vocab.save(&cache_dir.join(VOCAB_FILE))?;

    if fingerprint(input)? != *fp {
        return Err(changed());
    }
    let meta = Meta {
        format_version: CACHE_FORMAT_VERSION,
        kind,
        fingerprint: fp.clone(),
        n_tokens,
        token_width: width,
        vocab_size: vocab.len(),
        input_path: fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf()).display().to_string(),
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| cache_err(&meta_path)(e.into()))?;
    write_atomic_with(&meta_path, cache_err(&meta_path), |w, tmp| {
        w.write_all(&json).and_then(|()| w.write_all(b"\n")).map_err(cache_err(tmp))
    })?;

    Ok(Prepared { vocab, cache_dir: cache_dir.to_path_buf(), tokens_path, n_tokens, token_width: width, reused: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenStream;
    use std::time::{Duration, SystemTime};

    fn opts(input: &Path) -> PrepareOptions {
        PrepareOptions { input: input.to_path_buf(), cache_dir: None, bytes: false, force: false }
    }

    /// Decodes the whole token file back to bytes.
    fn decode_all(p: &Prepared) -> Vec<u8> {
        let ts = TokenStream::open_prepared(p).unwrap();
        let mut out = Vec::new();
        for i in 0..ts.len() {
            p.vocab.decode_into(ts.get(i), &mut out);
        }
        out
    }

    fn set_mtime(path: &Path, t: SystemTime) {
        File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn builds_cache_next_to_input_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.txt");
        let text = "hello, wörld!\nthe end é€😀\n";
        fs::write(&input, text).unwrap();

        let p = prepare(&opts(&input)).unwrap();
        assert!(!p.reused);
        assert_eq!(p.cache_dir, dir.path().join("input.txt.charrnn"));
        assert_eq!(p.tokens_path, p.cache_dir.join("tokens.bin"));
        assert_eq!(p.n_tokens, text.chars().count() as u64);
        assert_eq!(p.token_width, TokenWidth::U8);
        assert_eq!(p.vocab.kind(), VocabKind::Chars);
        // ' ' x4, then 'e' x3 and 'l' x3 (tie: 'e' < 'l'), then '\n', 'd', 'h' x2 each.
        assert_eq!(&p.vocab.chars().unwrap()[..4], &[' ', 'e', 'l', '\n']);
        assert_eq!(decode_all(&p), text.as_bytes());
        for f in [CACHE_VOCAB_FILE, "tokens.bin", "meta.json"] {
            assert!(p.cache_dir.join(f).is_file(), "{f}");
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(p.cache_dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["format_version"], 2);
        assert_eq!(meta["kind"], "chars");
        assert_eq!(meta["input_size"], text.len() as u64);
        assert_eq!(meta["token_width"], "u8");
        assert_eq!(meta["input_sha256"], charrnn_fileio::chunks::sha256_hex(text.as_bytes()).unwrap().1);

        let again = prepare(&opts(&input)).unwrap();
        assert!(again.reused);
        assert_eq!(again, Prepared { reused: true, ..p.clone() });

        let forced = prepare(&PrepareOptions { force: true, ..opts(&input) }).unwrap();
        assert!(!forced.reused);
        assert_eq!(forced, p);
        // No stray temporary files.
        assert_eq!(fs::read_dir(&p.cache_dir).unwrap().count(), 3);
    }

    #[test]
    fn rebuilds_when_the_content_changes_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, "aaab").unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        set_mtime(&input, t0);
        let first = prepare(&opts(&input)).unwrap();
        assert!(!first.reused);
        assert!(prepare(&opts(&input)).unwrap().reused);

        // Same size and same mtime, different content: caught by the hash.
        fs::write(&input, "bbba").unwrap();
        set_mtime(&input, t0);
        let p = prepare(&opts(&input)).unwrap();
        assert!(!p.reused);
        assert_eq!(decode_all(&p), b"bbba");
        assert_eq!(p.vocab.chars().unwrap(), &['b', 'a']);
        assert!(prepare(&opts(&input)).unwrap().reused);

        // Same content, new mtime (a `touch`, a copy): still the same corpus.
        set_mtime(&input, t0 + Duration::from_secs(1));
        assert!(prepare(&opts(&input)).unwrap().reused);
    }

    /// A same-size edit in the middle of a large file that keeps its modification time (an
    /// editor restoring it, `touch -r`, `rsync -t`) is noticed: the whole input is hashed, not
    /// its size, time and ends.
    #[test]
    fn a_same_size_same_mtime_edit_in_the_middle_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        let mut big = vec![b'x'; 5 << 20];
        fs::write(&input, &big).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        set_mtime(&input, t0);
        assert!(!prepare(&opts(&input)).unwrap().reused);
        let middle = big.len() / 2;
        big[middle] = b'y';
        fs::write(&input, &big).unwrap();
        set_mtime(&input, t0);
        let p = prepare(&opts(&input)).unwrap();
        assert!(!p.reused, "the edited corpus was taken for the cached one");
        assert_eq!(p.vocab.len(), 2);
        assert!(prepare(&opts(&input)).unwrap().reused);
    }

    #[test]
    fn interrupted_or_damaged_cache_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, "some text to prepare\n").unwrap();
        let p = prepare(&opts(&input)).unwrap();
        let meta_path = p.cache_dir.join("meta.json");
        let good_meta = fs::read(&meta_path).unwrap();

        // Interrupted before meta.json was written.
        fs::remove_file(&meta_path).unwrap();
        let r = prepare(&opts(&input)).unwrap();
        assert!(!r.reused);
        assert_eq!(fs::read(&meta_path).unwrap(), good_meta);

        // Truncated tokens.bin.
        let tokens = fs::read(&p.tokens_path).unwrap();
        fs::write(&p.tokens_path, &tokens[..tokens.len() - 1]).unwrap();
        let r = prepare(&opts(&input)).unwrap();
        assert!(!r.reused);
        assert_eq!(fs::read(&p.tokens_path).unwrap(), tokens);

        // Garbage meta.json, corrupt vocab.json, wrong format version.
        fs::write(&meta_path, b"{").unwrap();
        assert!(!prepare(&opts(&input)).unwrap().reused);
        fs::write(p.cache_dir.join(CACHE_VOCAB_FILE), b"[]").unwrap();
        assert!(!prepare(&opts(&input)).unwrap().reused);
        let mut m: serde_json::Value = serde_json::from_slice(&good_meta).unwrap();
        m["format_version"] = 999.into();
        fs::write(&meta_path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(!prepare(&opts(&input)).unwrap().reused);
        assert!(prepare(&opts(&input)).unwrap().reused);
    }

    /// A prepare stopped in either pass (a Ctrl-C) leaves no temporary file and no cache that
    /// a later prepare reuses; that one builds the cache whole.
    #[test]
    fn a_stopped_prepare_leaves_nothing_to_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let text = "some text to prepare, read a few bytes at a time\n".repeat(20);
        let whole = dir.path().join("whole.txt");
        fs::write(&whole, &text).unwrap();
        let tokens = fs::read(prepare(&opts(&whole)).unwrap().tokens_path).unwrap();
        // In chunks of 64 bytes each pass reads 17 times: stopped in pass 1, then in pass 2.
        for reads_before_stop in [3, 30] {
            let input = dir.path().join(format!("in{reads_before_stop}.txt"));
            fs::write(&input, &text).unwrap();
            let reads = std::cell::Cell::new(0);
            let stop = || {
                reads.set(reads.get() + 1);
                reads.get() > reads_before_stop
            };
            let stopped = prepare_in_chunks(&opts(&input), 64, &stop);
            assert!(matches!(stopped, Err(DataError::ReadInput { .. })), "{stopped:?}");
            let cache_dir = default_cache_dir(&input, false);
            // Pass 2 has begun when the cache directory exists.
            assert_eq!(cache_dir.exists(), reads_before_stop > 17);
            let names: Vec<String> = fs::read_dir(&cache_dir)
                .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            assert!(!names.iter().any(|n| n.contains(".tmp-") || n == META_FILE), "{names:?}");
            let again = prepare(&opts(&input)).unwrap();
            assert!(!again.reused);
            assert_eq!(fs::read(&again.tokens_path).unwrap(), tokens);
        }
    }

    #[test]
    fn explicit_cache_dir_and_bytes_mode_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.bin");
        let data: Vec<u8> = vec![0xFF, 0xFE, b'a', 0x00, 0xFF, 0xC3];
        fs::write(&input, &data).unwrap();

        // Not UTF-8: chars mode fails at offset 0 and writes no cache.
        let err = prepare(&opts(&input)).unwrap_err();
        assert!(matches!(err, DataError::InvalidUtf8 { offset: 0, .. }), "{err:?}");
        assert!(!default_cache_dir(&input, false).exists());

        let p = prepare(&PrepareOptions { bytes: true, ..opts(&input) }).unwrap();
        assert_eq!(p.cache_dir, dir.path().join("in.bin.charrnn-bytes"));
        assert_eq!(p.vocab.kind(), VocabKind::Bytes);
        assert_eq!(p.vocab.bytes().unwrap()[0], 0xFF);
        assert_eq!(decode_all(&p), data);

        let custom = dir.path().join("cache here");
        let q = prepare(&PrepareOptions { bytes: true, cache_dir: Some(custom.clone()), ..opts(&input) }).unwrap();
        assert!(!q.reused);
        assert_eq!(q.tokens_path, custom.join("tokens.bin"));
        // A bytes cache is never reused for chars mode, even in the same directory.
        fs::write(&input, "now text").unwrap();
        let r = prepare(&PrepareOptions { cache_dir: Some(custom.clone()), ..opts(&input) }).unwrap();
        assert!(!r.reused);
        assert_eq!(r.vocab.kind(), VocabKind::Chars);
    }

    #[test]
    fn tiny_chunks_give_the_same_cache() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        let text = "Ünïcödé 😀 text, € and more.\n".repeat(7);
        fs::write(&input, &text).unwrap();
        let reference = prepare(&opts(&input)).unwrap();
        let tokens = fs::read(&reference.tokens_path).unwrap();
        for chunk in 1..=7 {
            let p = prepare_with_chunk(&PrepareOptions { force: true, ..opts(&input) }, chunk).unwrap();
            assert_eq!(p, reference, "chunk {chunk}");
            assert_eq!(fs::read(&p.tokens_path).unwrap(), tokens, "chunk {chunk}");
        }
    }

    /// `n` distinct non-ASCII chars starting at U+0100 (all 2 or 3 bytes, no surrogates).
    fn many_chars(n: usize) -> String {
        (0x100u32..).filter_map(char::from_u32).take(n).collect()
    }

    #[test]
    fn wide_vocabulary_uses_u16() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        let text = format!("{}aa", many_chars(299));
        fs::write(&input, &text).unwrap();
        let p = prepare(&opts(&input)).unwrap();
        assert_eq!(p.vocab.len(), 300);
        assert_eq!(p.token_width, TokenWidth::U16);
        assert_eq!(fs::metadata(&p.tokens_path).unwrap().len(), 2 * 301);
        assert_eq!(p.vocab.chars().unwrap()[0], 'a');
        assert_eq!(decode_all(&p), text.as_bytes());
        assert!(prepare(&opts(&input)).unwrap().reused);
    }

    #[test]
    fn too_many_symbols_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("huge-vocab.txt");
        fs::write(&input, many_chars(MAX_VOCAB + 1)).unwrap();
        let err = prepare(&opts(&input)).unwrap_err();
        assert!(matches!(err, DataError::TooManySymbols { count: 65537, max: 65536, .. }), "{err:?}");
        assert!(err.to_string().contains("huge-vocab.txt"));
        // Exactly the maximum is fine.
        fs::write(&input, many_chars(MAX_VOCAB)).unwrap();
        let p = prepare(&opts(&input)).unwrap();
        assert_eq!(p.vocab.len(), MAX_VOCAB);
        assert_eq!(p.token_width, TokenWidth::U16);
    }

    #[test]
    fn empty_missing_and_directory_inputs_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.txt");
        fs::write(&empty, b"").unwrap();
        let err = prepare(&opts(&empty)).unwrap_err();
        assert!(matches!(err, DataError::EmptyInput { .. }));
        assert_eq!(err.to_string(), format!("'{}' is empty: nothing to train on", empty.display()));

        let missing = dir.path().join("missing.txt");
        let err = prepare(&opts(&missing)).unwrap_err();
        assert!(matches!(err, DataError::ReadInput { .. }));
        // The message names the file; the cause is the error's source (printed after it by the
        // CLI, as "cannot read 'x': No such file or directory").
        let msg = err.to_string();
        assert_eq!(msg, format!("cannot read '{}'", missing.display()));
        assert!(std::error::Error::source(&err).is_some());

        let err = prepare(&opts(dir.path())).unwrap_err();
        let cause = std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default();
        assert!(cause.contains("not a regular file"), "{err}: {cause}");
        // No cache directories were created for any of them.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn invalid_utf8_in_the_middle_names_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("bad.txt");
        let mut data = "ok é ".repeat(1000).into_bytes();
        let offset = data.len();
        data.extend_from_slice(b"\xF0\x9F\x98 more");
        fs::write(&input, &data).unwrap();
        for chunk in [1, 3, 7, DEFAULT_CHUNK] {
            let err = prepare_with_chunk(&opts(&input), chunk).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("byte offset {offset}")) && msg.contains("bad.txt"), "{msg}");
        }
    }

    #[test]
    fn cache_io_errors_name_the_cache_path() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, "text").unwrap();
        // The cache "directory" is an existing regular file.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, "x").unwrap();
        let err = prepare(&PrepareOptions { cache_dir: Some(blocker.clone()), ..opts(&input) }).unwrap_err();
        assert!(matches!(err, DataError::CacheIo { .. }), "{err:?}");
        assert!(err.to_string().contains("blocker"), "{err}");
    }

    #[test]
    fn token_width_and_default_dir() {
        assert_eq!(TokenWidth::for_vocab_len(256), TokenWidth::U8);
        assert_eq!(TokenWidth::for_vocab_len(257), TokenWidth::U16);
        assert_eq!(
            default_cache_dir(Path::new("data/tinyshakespeare/input.txt"), false),
            PathBuf::from("data/tinyshakespeare/input.txt.charrnn")
        );
        assert_eq!(default_cache_dir(Path::new("x"), true), PathBuf::from("x.charrnn-bytes"));
    }
}
