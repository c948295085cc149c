//! The text `sample` warms the state up on: `--prime TEXT` or `--prime-file FILE` (`-`: stdin).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use charrnn_engine::data::Vocab;

/// The prime as it is echoed at the start of the output, and the ids it feeds.
pub struct Prime {
    /// The bytes as given (a character model's are UTF-8).
    pub echo: Vec<u8>,
    /// The symbols fed to the model (unknown ones left out with `skip_unknown`).
    pub ids: Vec<u32>,
}

/// The prime of `text` or of the file `file`, in `vocab`'s symbols. A byte model takes the
/// file's bytes as they are (any bytes); a character model needs UTF-8 text. Unknown symbols
/// are an error, or left out with `skip_unknown`.
pub fn read_prime(text: Option<&str>, file: Option<&Path>, vocab: &Vocab, skip_unknown: bool) -> Result<Prime> {
    let (echo, named) = match file {
        Some(path) if path == Path::new("-") => {
            let mut bytes = vec![];
            std::io::stdin().lock().read_to_end(&mut bytes).context("cannot read the prime text from stdin")?;
            (bytes, "the prime text on stdin".to_owned())
        }
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read --prime-file '{}'", path.display()))?;
            (bytes, format!("the prime file '{}'", path.display()))
        }
        None => (text.unwrap_or(" ").as_bytes().to_vec(), "--prime".to_owned()),
    };
    if echo.is_empty() {
        bail!("{named} is empty: the first character is drawn after the prime text, so it needs at least one");
    }
    let ids = match vocab.bytes() {
        Some(_) => byte_ids(&echo, vocab, skip_unknown)?,
        None => {
            let text = std::str::from_utf8(&echo).map_err(|e| {
                anyhow::anyhow!(
                    "{named} is not UTF-8 text (invalid byte at offset {}): this model reads characters (a --bytes \
                     model takes any bytes)",
                    e.valid_up_to()
                )
            })?;
            if skip_unknown {
                vocab.encode_lossy(text)
            } else {
                vocab.encode(text).context(
                    "the prime text does not fit this model's vocabulary (--skip-unknown leaves such characters out)",
                )?
            }
        }
    };
    if ids.is_empty() {
        bail!("no character of the prime text is in this model's vocabulary");
    }
    Ok(Prime { echo, ids })
}

/// A byte model's ids of raw `bytes`: every byte is a symbol, whether or not it is UTF-8.
fn byte_ids(bytes: &[u8], vocab: &Vocab, skip_unknown: bool) -> Result<Vec<u32>> {
    let mut ids = Vec::with_capacity(bytes.len());
    let mut unknown: Vec<u8> = vec![];
    for &b in bytes {
        match vocab.id_of_byte(b) {
            Some(id) => ids.push(id),
            None if !unknown.contains(&b) => unknown.push(b),
            None => {}
        }
    }
    if !unknown.is_empty() && !skip_unknown {
        let listed: Vec<String> = unknown
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { format!("'{}'", b as char) } else { format!("0x{b:02x}") })
            .collect();
        bail!(
            "the prime text does not fit this model's vocabulary: {} {} not in it (--skip-unknown leaves such bytes out)",
            listed.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(ids)
}
