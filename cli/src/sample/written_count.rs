//! How much of a sample reached its reader: `sample | head` closes the pipe early, and the
//! report must say what was written, not what was asked for.

use std::io::{self, Write};

/// A writer that counts the symbols its inner writer accepted: characters of UTF-8 text, or
/// bytes for a byte model. Placed under the buffer, it counts what the system took, not what
/// waits in the buffer when the reader goes away.
pub struct CountingWriter<W> {
    inner: W,
    bytes: bool,
    symbols: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Counts characters, or bytes when `bytes`.
    pub fn new(inner: W, bytes: bool) -> Self {
        CountingWriter { inner, bytes, symbols: 0 }
    }

    /// Symbols accepted so far.
    pub fn symbols(&self) -> u64 {
        self.symbols
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.symbols += symbols_in(&buf[..n], self.bytes);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Symbols in `bytes`: every byte, or every UTF-8 character (each starts with a byte that is
/// not a continuation byte `10xxxxxx`).
pub fn symbols_in(bytes: &[u8], as_bytes: bool) -> u64 {
    if as_bytes {
        bytes.len() as u64
    } else {
        bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64
    }
}

/// One sample as written: `before` symbols (a header, the prime), `body` generated symbols,
/// and one newline after them.
#[derive(Clone, Copy)]
pub struct Piece {
    pub before: u64,
    pub body: u64,
}

/// The generated symbols among the first `accepted` symbols of `pieces` written in turn.
pub fn generated_written(accepted: u64, pieces: impl IntoIterator<Item = Piece>) -> u64 {
    let mut left = accepted;
    let mut generated = 0;
    for Piece { before, body } in pieces {
        let in_body = left.saturating_sub(before).min(body);
        generated += in_body;
        left = left.saturating_sub(before + body + 1);
    }
    generated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_the_reader_accepted_in_symbols() {
        assert_eq!(symbols_in("aé€😀".as_bytes(), false), 4);
        assert_eq!(symbols_in("aé".as_bytes(), true), 3);
        let mut w = CountingWriter::new(Vec::new(), false);
        w.write_all("héllo".as_bytes()).unwrap();
        assert_eq!(w.symbols(), 5);
    }

    #[test]
    fn headers_primes_and_newlines_are_not_generated_symbols() {
        let one = [Piece { before: 3, body: 10 }];
        assert_eq!(generated_written(0, one), 0);
        assert_eq!(generated_written(2, one), 0);
        assert_eq!(generated_written(7, one), 4);
        assert_eq!(generated_written(14, one), 10);
        let two = [Piece { before: 5, body: 10 }, Piece { before: 5, body: 10 }];
        // The first sample and its newline (16), then 5 before and 3 of the second.
        assert_eq!(generated_written(24, two), 13);
        assert_eq!(generated_written(u64::MAX, two), 20);
    }
}
