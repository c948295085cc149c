//! A stream's generated text on its way out: stop strings found as the symbols arrive, text
//! that could still be the start of a stop string held back (OpenAI's `stop`: the stop string
//! and what follows it are never sent), and a byte model's incomplete UTF-8 kept until its
//! last byte.

/// One stream's text between the engine and its client. Its buffers are reserved when the
/// stream starts.
pub struct StopText {
    stops: Vec<Vec<u8>>,
    /// Bytes not sent yet: a possible start of a stop string, or an incomplete character.
    held: Vec<u8>,
}

impl StopText {
    /// A stream that ends at the first of `stops` (none: it never stops early).
    pub fn new(stops: Vec<Vec<u8>>) -> StopText {
        let longest = stops.iter().map(Vec::len).max().unwrap_or(0);
        StopText { stops, held: Vec::with_capacity(longest + 8) }
    }

    /// Takes a symbol's `bytes`: appends to `out` what can be sent now, and returns whether a
    /// stop string ended the stream (`out` then has everything before it).
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        self.held.extend_from_slice(bytes);
        if let Some(at) = self.stop_at() {
            out.extend_from_slice(&self.held[..at]);
            self.held.clear();
            return true;
        }
        let keep = self.possible_stop_start();
        let sendable = whole_characters(&self.held[..self.held.len() - keep]);
        out.extend(self.held.drain(..sendable));
        false
    }

    /// The stream ended without a stop string: appends what was held back to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }

    /// Where a stop string begins in the held bytes (they end with it: the bytes before were
    /// checked as they came).
    fn stop_at(&self) -> Option<usize> {
        let held = &self.held;
        self.stops.iter().filter(|s| !s.is_empty() && held.ends_with(s)).map(|s| held.len() - s.len()).min()
    }

    /// The length of the longest end of the held bytes that a stop string begins with.
    fn possible_stop_start(&self) -> usize {
        let held = &self.held;
        let starts = |s: &Vec<u8>| (1..s.len().min(held.len() + 1)).rev().find(|&k| held.ends_with(&s[..k]));
        self.stops.iter().filter_map(starts).max().unwrap_or(0)
    }
}

/// The length of the longest beginning of `bytes` that does not end inside a UTF-8 character
/// (invalid bytes count as whole: they are sent as U+FFFD).
fn whole_characters(bytes: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match std::str::from_utf8(&bytes[at..]) {
            Ok(_) => return bytes.len(),
            Err(e) => match e.error_len() {
                None => return at + e.valid_up_to(),
                Some(invalid) => at += e.valid_up_to() + invalid,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` one byte at a time; returns what was sent and whether it stopped.
    fn run(stops: &[&str], text: &str) -> (String, bool) {
        let mut stop = StopText::new(stops.iter().map(|s| s.as_bytes().to_vec()).collect());
        let mut out = Vec::new();
        for b in text.bytes() {
            if stop.push(&[b], &mut out) {
                return (String::from_utf8(out).unwrap(), true);
            }
            // What was sent is always whole characters, and never a stop string's start.
            assert!(std::str::from_utf8(&out).is_ok());
        }
        stop.finish(&mut out);
        (String::from_utf8(out).unwrap(), false)
    }

    #[test]
    fn stops_before_the_first_stop_string() {
        assert_eq!(run(&["\n\n"], "ROMEO:\nhi\n\nJULIET"), ("ROMEO:\nhi".into(), true));
        assert_eq!(run(&["king", "and"], "the queen and king"), ("the queen ".into(), true));
        assert_eq!(run(&["abc"], "ababcx"), ("ab".into(), true));
        assert_eq!(run(&["zz"], "no stop"), ("no stop".into(), false));
        assert_eq!(run(&[], "é→ü"), ("é→ü".into(), false));
    }

    #[test]
    fn holds_back_only_what_could_start_a_stop_string() {
        let mut stop = StopText::new(vec![b"END".to_vec()]);
        let mut out = Vec::new();
        for b in b"xxEN" {
            assert!(!stop.push(&[*b], &mut out));
        }
        assert_eq!(out, b"xx");
        assert!(!stop.push(b"x", &mut out));
        assert_eq!(out, b"xxENx");
        // Half a character waits for the rest.
        let mut stop = StopText::new(Vec::new());
        let mut out = Vec::new();
        stop.push(&"é".as_bytes()[..1], &mut out);
        assert!(out.is_empty());
        stop.push(&"é".as_bytes()[1..], &mut out);
        assert_eq!(out, "é".as_bytes());
    }
}
