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

/// A moment as `--start-at` takes it, in Unix microseconds: `+30s` (from `now_us`), Unix seconds (`1764512345`,
/// `1764512345.5`), or RFC 3339 (`2026-11-30T18:30:00Z`, `2026-11-30T19:30:00.250+01:00`).
pub fn parse_time_unix_us(text: &str, now_us: u64) -> Result<u64, String> {
    let bad = || format!("{text:?}: expected +DURATION (+30s), Unix seconds, or RFC 3339 (2026-11-30T18:30:00Z)");
    if let Some(after) = text.strip_prefix('+') {
        return Ok(now_us + parse_duration(after)?.as_micros() as u64);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = text.parse().map_err(|_| bad())?;
        return Ok((seconds * 1e6).round() as u64);
    }
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = text.get(range).ok_or_else(bad)?;
        if digits.bytes().all(|d| d.is_ascii_digit()) { digits.parse().map_err(|_| bad()) } else { Err(bad()) }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut at = 19;
    let mut micros = 0i64;
    if b[at] == b'.' {
        let digits = b[at + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let fraction = &text[at + 1..at + 1 + digits.min(6)];
        micros = fraction.parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - fraction.len() as u32);
        at += 1 + digits;
    }
    let offset_s = match &text[at..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') && zone.as_bytes()[3] == b':' => {
            let (zone_hours, zone_minutes) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if zone_hours > 23 || zone_minutes > 59 {
                return Err(bad());
            }
            let magnitude = zone_hours * 3600 + zone_minutes * 60;
            if zone.starts_with('-') { -magnitude } else { magnitude }
        }
        _ => return Err(bad()),
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    u64::try_from(seconds * 1_000_000 + micros).map_err(|_| bad())
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
    fn start_times_read_as_offsets_unix_seconds_or_rfc3339() {
        let now = 1_764_527_400_000_000;
        assert_eq!(parse_time_unix_us("+30s", now), Ok(now + 30_000_000));
        assert_eq!(parse_time_unix_us("1764527400", now), Ok(1_764_527_400_000_000));
        assert_eq!(parse_time_unix_us("1764527400.25", now), Ok(1_764_527_400_250_000));
        // 2025-11-30T18:30:00Z is 1764527400; the same instant from another zone, and one with a fraction.
        assert_eq!(parse_time_unix_us("2025-11-30T18:30:00Z", now), Ok(1_764_527_400_000_000));
        assert_eq!(parse_time_unix_us("2025-11-30T19:30:00+01:00", now), Ok(1_764_527_400_000_000));
        assert_eq!(parse_time_unix_us("2025-11-30T18:30:00.5-00:00", now), Ok(1_764_527_400_500_000));
        assert_eq!(parse_time_unix_us("2000-03-01T00:00:00Z", now), Ok(951_868_800_000_000));
        assert_eq!(
            parse_time_unix_us(&crate::report::timeline::rfc3339(1_764_527_412_345_678), now),
            Ok(1_764_527_412_345_678),
            "what the report writes reads back"
        );
        assert_eq!(parse_time_unix_us("2024-02-29T00:00:00Z", now), Ok(1_709_164_800_000_000), "a leap day");
        for bad in [
            "tomorrow",
            "2025-11-30",
            "2025-13-01T00:00:00Z",
            "2025-11-30T18:30:00",
            "+3 parsecs",
            "1.2.3",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-04-01T00:00:00+99:99",
        ] {
            assert!(parse_time_unix_us(bad, now).is_err(), "{bad}");
        }
    }

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
