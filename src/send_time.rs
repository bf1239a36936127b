//! `--send-time`: where an event says when it was sent, read from the event without allocating. The built-in
//! server's stamp (the first word of `data`, Unix microseconds), the event's `id`, or a JSON path into `data`
//! (`$.created`, `$.meta.ts`), in seconds, milliseconds, microseconds or nanoseconds since the Unix epoch, told
//! apart by magnitude unless `--send-time-unit` says.

use std::fmt;

use crate::llm::scenario::{JsonPath, Step};

/// Where the send time is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `stamp`: the first word of `data` (what `ssebench serve` writes: Unix microseconds, then padding).
    Stamp,
    /// `id`: the event's `id` field.
    Id,
    /// `$.name...`: a value in the JSON that `data` holds (`$` alone: all of it): a number, or a string holding one.
    Json(JsonPath),
}

/// The unit of the numbers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Told apart by magnitude (see [`Unit::of`]).
    Auto,
    Seconds,
    Millis,
    Micros,
    Nanos,
}

/// `--send-time` and `--send-time-unit`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTime {
    pub source: Source,
    pub unit: Unit,
    /// The flag as given (`stamp`, `id`, `$.meta.ts`), for the report.
    pub text: String,
}

impl fmt::Display for SendTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl SendTime {
    /// Parses `--send-time` (`stamp`, `id` or a JSON path) and `--send-time-unit` (`auto`, `s`, `ms`, `us`, `ns`).
    pub fn parse(source: &str, unit: &str) -> Result<SendTime, String> {
        let text = source.to_string();
        let unit = match unit {
            "auto" => Unit::Auto,
            "s" => Unit::Seconds,
            "ms" => Unit::Millis,
            "us" => Unit::Micros,
            "ns" => Unit::Nanos,
            other => return Err(format!("--send-time-unit {other:?}: expected auto, s, ms, us or ns")),
        };
        let source = match source {
            "stamp" => Source::Stamp,
            "id" => Source::Id,
            path => Source::Json(JsonPath::parse(path).map_err(|_| {
                format!("--send-time {path:?}: expected stamp, id or a JSON path such as $.created or $.meta.ts")
            })?),
        };
        Ok(SendTime { source, unit, text })
    }

    /// The send time of an event, in Unix microseconds: `None` when the event does not carry one that reads as a
    /// time (the caller counts those).
    pub fn read(&self, data: &[u8], id: &[u8]) -> Option<u64> {
        let number = match &self.source {
            Source::Stamp => {
                let end = data.iter().position(|&b| b == b' ').unwrap_or(data.len());
                Number::parse(&data[..end])?
            }
            Source::Id => Number::parse(id)?,
            Source::Json(path) => find(data, path.steps())?,
        };
        number.to_unix_us(self.unit)
    }
}

/// A non-negative decimal number: its integer part and up to 9 digits of fraction, in billionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Number {
    whole: u64,
    nanos: u64,
}

impl Number {
    /// Digits, optionally a `.` and more digits; nothing else (no sign, no exponent).
    fn parse(text: &[u8]) -> Option<Number> {
        let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
            Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
            None => (text, None),
        };
        if whole.is_empty() || whole.len() > 20 || !whole.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let whole = whole.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?;
        let mut nanos = 0;
        if let Some(fraction) = fraction {
            if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut scale = 100_000_000;
            for &b in fraction.iter().take(9) {
                nanos += u64::from(b - b'0') * scale;
                scale /= 10;
            }
        }
        Some(Number { whole, nanos })
    }

    /// The time in Unix microseconds, if it is one: from 2000 on (a sequence number or a count read as seconds
    /// since 1970 is not a send time).
    fn to_unix_us(self, unit: Unit) -> Option<u64> {
        let unit = if unit == Unit::Auto { Unit::of(self.whole) } else { unit };
        let us = match unit {
            Unit::Seconds => self.whole.checked_mul(1_000_000)?.checked_add(self.nanos / 1_000),
            Unit::Millis => self.whole.checked_mul(1_000)?.checked_add(self.nanos / 1_000_000),
            Unit::Micros => Some(self.whole),
            Unit::Nanos | Unit::Auto => Some(self.whole / 1_000),
        }?;
        (us >= YEAR_2000_US).then_some(us)
    }
}

impl Unit {
    /// The unit a time since the epoch is most likely in: below 10^11 seconds (until the year 5138), below 10^14
    /// milliseconds, below 10^17 microseconds, else nanoseconds. Today is about 1.8 x 10^9 s.
    fn of(whole: u64) -> Unit {
        match whole {
            0..100_000_000_000 => Unit::Seconds,
            100_000_000_000..100_000_000_000_000 => Unit::Millis,
            100_000_000_000_000..100_000_000_000_000_000 => Unit::Micros,
            _ => Unit::Nanos,
        }
    }
}

/// 2000-01-01T00:00:00Z: the earliest send time taken for one.
const YEAR_2000_US: u64 = 946_684_800_000_000;

/// Deepest nesting walked; deeper input reads as no send time.
const MAX_DEPTH: u32 = 32;

/// The number at `path` in the JSON text `data`, or the number a string there holds. Keys are compared as written
/// (a key spelled with escapes does not match).
fn find(data: &[u8], path: &[Step]) -> Option<Number> {
    let mut cursor = Cursor { bytes: data, at: 0 };
    cursor.ws();
    for step in path {
        match step {
            Step::Key(name) => cursor.member(name.as_bytes())?,
            Step::Index(index) => cursor.element(*index)?,
        }
        cursor.ws();
    }
    cursor.number()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// At an object: moves to the value of member `name`.
    fn member(&mut self, name: &[u8]) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            self.ws();
            if key == name {
                return Some(());
            }
            self.skip(0)?;
            self.ws();
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// At an array: moves to element `index`.
    fn element(&mut self, index: usize) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        for _ in 0..index {
            self.ws();
            self.skip(0)?;
            self.ws();
            if !self.eat(b',') {
                return None;
            }
        }
        self.ws();
        (self.peek() != Some(b']')).then_some(())
    }

    /// A string's raw contents (escapes left as written), the cursor past its closing quote.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            let offset = memchr::memchr2(b'"', b'\\', self.bytes.get(self.at..)?)?;
            self.at += offset;
            if self.bytes[self.at] == b'\\' {
                self.at += 2;
                continue;
            }
            let end = self.at;
            self.at += 1;
            let bytes: &'a [u8] = self.bytes;
            return bytes.get(start..end);
        }
    }

    /// Skips one value of any kind.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                self.ws();
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        if !self.eat(b':') {
                            return None;
                        }
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.eat(close) {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                    self.ws();
                }
            }
            _ => {
                let end = self.bytes[self.at..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(self.bytes.len() - self.at);
                (end > 0).then(|| self.at += end)
            }
        }
    }

    /// The number here, bare or inside a string.
    fn number(&mut self) -> Option<Number> {
        if self.peek() == Some(b'"') {
            return Number::parse(self.string()?);
        }
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|b| !(b.is_ascii_digit() || *b == b'.')).unwrap_or(rest.len());
        // An exponent or a sign makes it something other than a plain time.
        if matches!(rest.get(end), Some(b'e' | b'E' | b'-' | b'+')) {
            return None;
        }
        Number::parse(&rest[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: &str, data: &str) -> Option<u64> {
        SendTime::parse(source, "auto").unwrap().read(data.as_bytes(), b"")
    }

    #[test]
    fn the_built_in_stamp_is_the_first_word_of_data() {
        assert_eq!(at("stamp", "1764512345123456 xxxxx"), Some(1_764_512_345_123_456));
        assert_eq!(at("stamp", "1764512345123456"), Some(1_764_512_345_123_456));
        assert_eq!(at("stamp", "hello 1764512345123456"), None);
        assert_eq!(at("stamp", ""), None);
    }

    #[test]
    fn units_are_told_apart_by_magnitude_or_given() {
        let us = 1_764_512_345_123_456;
        assert_eq!(at("$.t", r#"{"t": 1764512345}"#), Some(1_764_512_345_000_000));
        assert_eq!(at("$.t", r#"{"t": 1764512345.123456}"#), Some(us));
        assert_eq!(at("$.t", r#"{"t": 1764512345123}"#), Some(1_764_512_345_123_000));
        assert_eq!(at("$.t", r#"{"t": 1764512345123456}"#), Some(us));
        assert_eq!(at("$.t", r#"{"t": 1764512345123456789}"#), Some(us));
        let ms = SendTime::parse("$.t", "ms").unwrap();
        assert_eq!(ms.read(br#"{"t": 1764512345123}"#, b""), Some(1_764_512_345_123_000));
        // Sequence numbers, counts: no time since 2000, so no send time.
        assert_eq!(ms.read(br#"{"t": 5}"#, b""), None);
        assert_eq!(at("$.t", r#"{"t": 17}"#), None);
        assert!(SendTime::parse("$.t", "minutes").unwrap_err().contains("--send-time-unit"));
    }

    #[test]
    fn a_json_path_finds_nested_members_and_elements_past_others() {
        let data =
            r#"{"a": "x\"}", "b": [1, {"c": [2, 3]}], "meta": {"skip": {"deep": [[], {}]}, "ts": "1764512345.5"}}"#;
        assert_eq!(at("$.meta.ts", data), Some(1_764_512_345_500_000));
        assert_eq!(at("$.b[1].c[1]", r#"{"b": [1, {"c": [2, 1764512345]}]}"#), Some(1_764_512_345_000_000));
        assert_eq!(at("$.missing", data), None);
        assert_eq!(at("$.a", data), None, "a string that is no number");
        assert_eq!(at("$.t", r#"{"t": -5}"#), None);
        assert_eq!(at("$.t", r#"{"t": 1.7e9}"#), None);
        assert_eq!(at("$.t", "not json"), None);
        assert_eq!(at("$.t", r#"{"t": 1764512345"#), Some(1_764_512_345_000_000), "a number cut short still reads");
        assert_eq!(at("$.b[5]", r#"{"b": [1]}"#), None);
        assert_eq!(at("$", "1764512345"), Some(1_764_512_345_000_000), "$ alone: data is the number");
    }

    #[test]
    fn the_id_is_read_when_asked() {
        let id = SendTime::parse("id", "auto").unwrap();
        assert_eq!(id.read(b"anything", b"1764512345123"), Some(1_764_512_345_123_000));
        assert_eq!(id.read(b"anything", b"abc"), None);
        assert_eq!(id.read(b"anything", b"42"), None, "a sequence number is not a time");
    }

    #[test]
    fn bad_paths_name_the_flag() {
        for bad in ["created", "$.", "$[x]", "$.a[1", "$..a"] {
            let err = SendTime::parse(bad, "auto").unwrap_err();
            assert!(err.starts_with("--send-time"), "{bad}: {err}");
        }
        assert_eq!(SendTime::parse("$.meta.ts", "auto").unwrap().to_string(), "$.meta.ts");
    }

    #[test]
    fn any_bytes_read_without_panicking() {
        let path = SendTime::parse("$.a[2].b", "auto").unwrap();
        let samples: [&[u8]; 8] =
            [b"{", b"{\"", b"{\"a\"", b"{\"a\":[", b"{\"a\":[1,", b"\"\\", b"[[[[", b"{\"a\":\"\\"];
        for sample in samples {
            let _ = path.read(sample, b"");
        }
        // A backslash as the last byte, inside a key and inside a value, on a path that reaches both.
        let t = SendTime::parse("$.t", "auto").unwrap();
        for sample in [&b"{\"\\"[..], b"{\"x\":\"\\", b"{\"a\":1,\"b\\"] {
            assert_eq!(t.read(sample, b""), None);
        }
        let deep = format!("{{\"x\":{}1{}, \"a\":[0,0,{{\"b\":7}}]}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(path.read(deep.as_bytes(), b""), None, "too deep to skip");
    }
}
