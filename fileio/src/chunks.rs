//! Reading a stream to its end in chunks, and hashing it: the one loop behind every reader of a
//! corpus, a cache file or a download.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Reads `r` to its end in chunks of up to `chunk` bytes (retrying on `Interrupted`), handing
/// each to `f`; read errors go through `on_read_error`. Returns the number of bytes read.
pub fn for_each_chunk<R: Read, E>(
    mut r: R,
    chunk: usize,
    on_read_error: impl Fn(io::Error) -> E,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut buf = vec![0u8; chunk.max(1)];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(on_read_error(e)),
        };
        f(&buf[..n])?;
        total += n as u64;
    }
}

/// The number of bytes of `r` and their SHA-256 in lowercase hex.
pub fn sha256_hex(r: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let n = for_each_chunk(
        r,
        1 << 20,
        |e| e,
        |bytes| {
            hasher.update(bytes);
            Ok(())
        },
    )?;
    Ok((n, hex(&hasher.finalize())))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that is interrupted before every read and returns 3 bytes at a time.
    struct Stuttering<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Stuttering<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = buf.len().min(3).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn chunks_cover_the_stream_and_interruptions_are_retried() {
        let mut seen = vec![];
        let r = Stuttering { data: b"hello world", interrupt: false };
        let n = for_each_chunk(
            r,
            8,
            |e| e,
            |b: &[u8]| {
                seen.extend_from_slice(b);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((n, seen.as_slice()), (11, &b"hello world"[..]));
        let (n, sha) = sha256_hex(&b"abc"[..]).unwrap();
        assert_eq!((n, sha.as_str()), (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
