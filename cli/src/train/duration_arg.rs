//! Wall-clock durations on the command line: `90s`, `10m`, `1h`, `1h30m`, `2.5m`, or a bare
//! number of seconds.

use std::time::Duration;

/// The longest budget accepted: a week (beyond that a typo is likelier than a plan).
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses a duration for clap's `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage = "a duration such as 90s, 10m, 1h or 1h30m";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("expected {usage}"));
    }
    let mut seconds = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("'{text}' is not {usage}"));
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| format!("'{text}' is not {usage}"))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "" if number_len == text.len() => 1.0,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("'{text}': every number needs a unit (s, m or h) in {usage}")),
            other => return Err(format!("'{text}': unknown unit '{other}' (use s, m or h, as in {usage})")),
        };
        rest = &rest[unit_len..];
        seconds += number * unit;
    }
    if !(seconds.is_finite() && seconds >= 1.0) {
        return Err(format!("'{text}' is shorter than a second; the budget must be at least 1s"));
    }
    let duration = Duration::from_secs_f64(seconds);
    if duration > LONGEST {
        return Err(format!("'{text}' is longer than a week, the longest budget accepted"));
    }
    Ok(duration)
}

/// A duration as the progress line shows it: `4.2s`, `4m05s`, `1h02m`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_forms_users_type() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("10m"), Ok(600.0));
        assert_eq!(secs("1h"), Ok(3600.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("2.5m"), Ok(150.0));
        assert_eq!(secs("45"), Ok(45.0));
        assert_eq!(secs(" 3min "), Ok(180.0));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        for (text, says) in [
            ("", "expected"),
            ("m", "is not"),
            ("10x", "unknown unit 'x'"),
            ("1h30", "needs a unit"),
            ("0s", "at least 1s"),
            ("0.5s", "at least 1s"),
            ("200h", "longer than a week"),
            ("1..5m", "is not"),
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn durations_shown_compactly() {
        assert_eq!(show_duration(Duration::from_millis(59_240)), "59.2s");
        assert_eq!(show_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(show_duration(Duration::from_secs(3720)), "1h02m");
    }
}
