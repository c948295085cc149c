//! Error text quoted from damaged files: parsers (serde_json, safetensors) quote what they
//! found, and a damaged file can put a newline or other control character there. Errors are
//! printed as one `error:` line, so those characters are written as escapes.

/// `text` with every control character escaped (`\n`, `\u{1}`, …).
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(one_line("unknown field `k\nd`, expected `kind`"), "unknown field `k\\nd`, expected `kind`");
        assert_eq!(one_line("a\tb\u{1}c é 😀 \"q\""), "a\\tb\\u{1}c é 😀 \"q\"");
    }
}
