//! Units and their text: durations, duration ranges and sizes as users write them, and microseconds between instants. A leaf: imports nothing of the crate.

use std::time::{Duration, Instant};

/// A duration in µs as the reports print it: whole `us` below a millisecond, `ms` with `ms_decimals` places below a
/// second, `s` with two above.
pub fn format_micros(us: f64, ms_decimals: usize) -> String {
    if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.*}ms", ms_decimals, us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Microseconds from `from` to `to`, 0 if `to` is earlier. Every latency the recorders hold is one of these.
/// Now on the wall clock, in microseconds since the Unix epoch (0 before it).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

pub fn micros_between(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

/// Parses `250us`, `10ms`, `1.5s`, `5m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 30s, 5m)"))?;
    let scale_s = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("'{s}': unknown unit '{other}' (use us, ms, s, m or h)")),
    };
    let secs = value * scale_s;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("'{s}' is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--stream-duration`: `30s`, or a range `30s..5m` drawn from uniformly per stream.
pub fn parse_duration_range(s: &str) -> Result<(Duration, Duration), String> {
    let (low, high) = match s.split_once("..") {
        Some((low, high)) => (parse_duration(low)?, parse_duration(high)?),
        None => {
            let d = parse_duration(s)?;
            (d, d)
        }
    };
    if low.is_zero() || high < low {
        return Err(format!("'{s}': expected a positive duration or a range LOW..HIGH with LOW <= HIGH"));
    }
    Ok((low, high))
}

/// Parses `512`, `64KiB`, `1MiB`, `1MB`, `4k`: bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: usize = number.parse().map_err(|_| format!("'{s}' is not a size (e.g. 512, 64KiB, 1MiB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("'{s}': unknown unit '{other}' (use KiB, MiB or GiB)")),
    };
    value.checked_mul(scale).ok_or_else(|| format!("'{s}' is too large"))
}

/// ASCII digits only (no sign, no whitespace), at least one, fitting a u64: how HTTP and SSE write their numbers
/// (Content-Length, a chunk's size in decimal contexts, `retry:`).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("250us", Duration::from_micros(250)),
            ("10ms", Duration::from_millis(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("30", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input}");
        }
        for bad in ["", "s", "10x", "-1s", "1e999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duration_ranges() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration_range("30s"), Ok((s(30), s(30))));
        assert_eq!(parse_duration_range("30s..5m"), Ok((s(30), s(300))));
        for bad in ["0s", "5m..30s", "..", "1s..x"] {
            assert!(parse_duration_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }
}
