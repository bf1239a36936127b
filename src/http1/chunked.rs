//! Chunked transfer coding decoder (RFC 9112 section 7.1): a byte-level state machine that hands
//! back ranges of the caller's buffer holding chunk payload.
//!
//! Sans-IO and allocation-free: all state is one small enum and three integers, so the decoder can
//! live in a per-connection struct created at start-up and be [`ChunkedDecoder::reset`] per response.
//! Payload bytes are never copied: each [`ChunkedDecoder::decode`] call returns at most one range of
//! its input, which keeps the contract simple (one call, one slice) at the cost of one call per chunk.
//!
//! Leniency and bounds, chosen for a client measuring servers rather than guarding a proxy:
//! - Line ends are CRLF, but a bare LF is accepted wherever a line may end (size lines, after
//!   chunk data, trailer lines, the final empty line), as curl and browsers do. A CR not followed
//!   by LF, or any other byte where a line end must be, is [`ChunkedError::BadLineEnd`].
//! - Hex digits in either case; leading zeros are fine (the line bound limits them); a value that
//!   does not fit a `u64` is [`ChunkedError::SizeOverflow`].
//! - Whitespace (SP, HTAB) is accepted after the size, before `;` or the line end (RFC 9112's BWS
//!   before extensions). Extensions, quoted or not, are skipped to the line end without being
//!   parsed: a quoted-string cannot contain CR or LF, so the first CR or LF ends the line anyway.
//!   The whole size line, extensions included, is bounded by [`MAX_CHUNK_LINE_BYTES`].
//! - Trailer fields are skipped unparsed; the trailer section, including its line ends and the
//!   final empty line, is bounded by [`MAX_TRAILER_BYTES`].
//! - After an error the decoder keeps returning that error until it is reset.

use std::fmt;
use std::ops::Range;

/// Longest chunk size line accepted, extensions included, line end excluded.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Longest trailer section accepted, counted from after the last-chunk line to the end of the body.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a chunked body was refused. Small and `Copy` so the caller can count failures by variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// The size line does not start with a hex digit, or has a stray byte after the digits.
    BadSize,
    /// The chunk size does not fit a `u64`.
    SizeOverflow,
    /// Something other than CRLF or LF where a line must end.
    BadLineEnd,
    /// A size line longer than [`MAX_CHUNK_LINE_BYTES`].
    LineTooLong,
    /// A trailer section longer than [`MAX_TRAILER_BYTES`].
    TrailerTooLarge,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkedError::BadSize => "invalid chunk size",
            ChunkedError::SizeOverflow => "chunk size overflows u64",
            ChunkedError::BadLineEnd => "invalid line end in chunked body",
            ChunkedError::LineTooLong => "chunk size line too long",
            ChunkedError::TrailerTooLarge => "chunked trailer section too large",
        })
    }
}

impl std::error::Error for ChunkedError {}

/// Where the decoder is in the chunked grammar. Every state but `Data` consumes one byte at a time
/// (`Extension` and `Trailer` skip ahead with memchr); `Data` hands back a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; `line_len` digits so far, so zero means none yet.
    Size,
    /// Whitespace after the digits, before `;` or the line end.
    SizeWs,
    /// Chunk extensions, skipped to the line end.
    Extension,
    /// Saw the CR ending a size line; LF must follow.
    SizeLf,
    /// Inside chunk payload; never zero (a zero-size chunk is the last chunk).
    Data { remaining: u64 },
    /// Payload ended; its line end must follow.
    DataCr,
    /// Saw the CR after payload; LF must follow.
    DataLf,
    /// Start of a trailer field line, or of the empty line that ends the body.
    TrailerStart,
    /// Inside a trailer field line, skipped to its end.
    Trailer,
    /// Saw the CR ending a trailer field line; LF must follow.
    TrailerLf,
    /// Saw the CR of the final empty line; LF must follow.
    EndLf,
    /// The body is complete; nothing more is consumed.
    Done,
    /// A previous call failed; the same error is returned until reset.
    Failed(ChunkedError),
}

/// Decodes one chunked body. Create once, [`reset`](ChunkedDecoder::reset) per response.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size accumulated from the current size line's hex digits.
    size: u64,
    /// Bytes of the current size line so far, line end excluded. `u32`, like `trailer_len`: both
    /// stop at a bound far below it, and every virtual user holds one decoder (8 B less each).
    line_len: u32,
    /// Bytes of the trailer section so far.
    trailer_len: u32,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder { state: State::Size, size: 0, line_len: 0, trailer_len: 0 }
    }

    /// Decodes from the front of `input`. Returns (consumed, data) where `data` is a range of `input`
    /// holding chunk payload bytes (possibly empty). Call again with input[consumed..] until consumed
    /// reaches the end of the input or is_done(). Never allocates; all state is a few integers.
    ///
    /// `data` always ends at `consumed`: framing bytes come first, then at most one payload range.
    /// Once done, the bytes after the body are never consumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Range<usize>), ChunkedError> {
        let mut pos = 0;
        // Each pass consumes at least one byte or returns, so the loop is bounded by input.len().
        while pos < input.len() {
            if let Some(framing) = self.between_chunks(&input[pos..]) {
                pos += framing;
                continue;
            }
            match self.state {
                State::Data { remaining } => {
                    debug_assert!(remaining > 0);
                    let available = input.len() - pos;
                    // min() in u64 first: `remaining` may exceed usize on 32-bit targets.
                    let take = remaining.min(available as u64) as usize;
                    self.state = match remaining - take as u64 {
                        0 => State::DataCr,
                        remaining => State::Data { remaining },
                    };
                    return Ok((pos + take, pos..pos + take));
                }
                State::Done => return Ok((pos, pos..pos)),
                State::Failed(error) => return Err(error),
                State::Extension | State::Trailer => {
                    // Skipped content: jump to the next CR or LF instead of stepping byte by byte.
                    let rest = &input[pos..];
                    let skip = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                    self.count(skip).inspect_err(|&error| self.state = State::Failed(error))?;
                    pos += skip;
                    if pos == input.len() {
                        break;
                    }
                }
                _ => {}
            }
            let byte = input[pos];
            pos += 1;
            self.step(byte).inspect_err(|&error| self.state = State::Failed(error))?;
        }
        Ok((pos, pos..pos))
    }

    /// The framing between two chunks in one step, as the byte-by-byte grammar would take it: the CRLF after a
    /// chunk's data (alone, when the input ends there), then a size line of 1 to 15 hex digits and CRLF for a chunk
    /// that is not the last. Returns the bytes taken, or None for anything else (whitespace, an extension, a bare LF,
    /// the last chunk, a line the input cuts), which goes byte by byte from where it was. A stream of small events
    /// is mostly this framing, 6 to 8 bytes per event, and stepping through it byte by byte was a third of the
    /// decoding's instructions.
    fn between_chunks(&mut self, input: &[u8]) -> Option<usize> {
        let start = match self.state {
            State::DataCr if input.starts_with(b"\r\n") => 2,
            State::Size if self.line_len == 0 => 0,
            _ => return None,
        };
        if start == input.len() {
            self.state = self.start_size_line();
            return Some(start);
        }
        let line = &input[start..];
        let digits = line.iter().take(16).take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 || line.get(digits..digits + 2) != Some(b"\r\n") {
            return None;
        }
        let size = line[..digits].iter().fold(0u64, |size, &b| size << 4 | u64::from(hex_value(b).unwrap_or(0)));
        if size == 0 {
            return None;
        }
        (self.size, self.line_len) = (size, digits as u32);
        self.state = State::Data { remaining: size };
        Some(start + digits + 2)
    }

    /// True once the last chunk, the trailers and the final empty line have all been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Back to the start of a body, for the next response on the same connection.
    pub fn reset(&mut self) {
        *self = ChunkedDecoder::new();
    }

    /// Counts `len` skipped bytes of the line being read against its bound.
    fn count(&mut self, len: usize) -> Result<(), ChunkedError> {
        // Saturating: a count past u32::MAX is past the bound all the same.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        match self.state {
            State::Size | State::SizeWs | State::Extension => {
                self.line_len = self.line_len.saturating_add(len);
                if self.line_len as usize > MAX_CHUNK_LINE_BYTES {
                    return Err(ChunkedError::LineTooLong);
                }
            }
            _ => {
                self.trailer_len = self.trailer_len.saturating_add(len);
                if self.trailer_len as usize > MAX_TRAILER_BYTES {
                    return Err(ChunkedError::TrailerTooLarge);
                }
            }
        }
        Ok(())
    }

    /// Advances the grammar by one framing byte (any state but Data, Done, Failed).
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        let is_line_end = byte == b'\r' || byte == b'\n';
        // In Size every byte so far was a digit, so a non-empty line means digits were seen.
        let has_digits = self.line_len > 0;
        match self.state {
            State::Size | State::SizeWs | State::Extension if !is_line_end => self.count(1)?,
            State::TrailerStart | State::Trailer | State::TrailerLf | State::EndLf => self.count(1)?,
            _ => {}
        }
        self.state = match (self.state, byte) {
            (State::Size, _) if hex_value(byte).is_some() => {
                // Leading zeros never overflow; a 17th significant digit does.
                if self.size >> 60 != 0 {
                    return Err(ChunkedError::SizeOverflow);
                }
                self.size = self.size << 4 | u64::from(hex_value(byte).unwrap_or(0));
                State::Size
            }
            // Anything but a digit before the first digit is not a size.
            (State::Size, _) if !has_digits => return Err(ChunkedError::BadSize),
            (State::Size | State::SizeWs, b' ' | b'\t') => State::SizeWs,
            (State::Size | State::SizeWs, b';') => State::Extension,
            (State::Size | State::SizeWs, _) if !is_line_end => return Err(ChunkedError::BadSize),
            (State::Extension, _) if !is_line_end => State::Extension,
            (State::Size | State::SizeWs | State::Extension, b'\r') => State::SizeLf,
            (State::Size | State::SizeWs | State::Extension | State::SizeLf, b'\n') => self.end_size_line(),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => self.start_size_line(),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::EndLf, b'\n') => State::Done,
            (State::TrailerStart | State::Trailer, _) if !is_line_end => State::Trailer,
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::Trailer | State::TrailerLf, b'\n') => State::TrailerStart,
            (State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::EndLf, _) => {
                return Err(ChunkedError::BadLineEnd);
            }
            (State::Data { .. } | State::Done | State::Failed(_), _) => {
                unreachable!("decode() handles {:?} without step()", self.state)
            }
            // Every (state, line end) pair is listed above; this arm only satisfies the compiler.
            (State::Size | State::SizeWs | State::Extension | State::TrailerStart | State::Trailer, _) => {
                unreachable!("line end {byte:#x} in {:?}", self.state)
            }
        };
        Ok(())
    }

    fn end_size_line(&mut self) -> State {
        if self.size == 0 {
            self.trailer_len = 0;
            State::TrailerStart
        } else {
            State::Data { remaining: self.size }
        }
    }

    fn start_size_line(&mut self) -> State {
        self.size = 0;
        self.line_len = 0;
        State::Size
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What feeding a whole input produced. `consumed` is None after an error, because how much a
    /// failing call had consumed is not reported and so depends on where the input was split.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        payload: Vec<u8>,
        consumed: Option<usize>,
        done: bool,
        error: Option<ChunkedError>,
    }

    /// Feeds `pieces` in order the way a connection would, looping on each until it is consumed.
    fn feed<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut decoder = ChunkedDecoder::new();
        let mut outcome = Outcome { payload: Vec::new(), consumed: Some(0), done: false, error: None };
        let mut total = 0;
        'pieces: for piece in pieces {
            let mut pos = 0;
            // A call consumes at least one byte unless done, so piece.len() + 1 calls suffice.
            for _ in 0..=piece.len() {
                if decoder.is_done() || pos == piece.len() {
                    break;
                }
                match decoder.decode(&piece[pos..]) {
                    Ok((consumed, data)) => {
                        assert!(consumed > 0 || decoder.is_done(), "no progress");
                        assert!(data.end == consumed && data.start <= data.end);
                        outcome.payload.extend_from_slice(&piece[pos..][data]);
                        pos += consumed;
                        total += consumed;
                    }
                    Err(error) => {
                        // Sticky: asking again gives the same error.
                        assert_eq!(decoder.decode(&piece[pos..]), Err(error));
                        outcome.error = Some(error);
                        outcome.consumed = None;
                        break 'pieces;
                    }
                }
            }
            assert!(pos == piece.len() || decoder.is_done());
        }
        if outcome.error.is_none() {
            outcome.consumed = Some(total);
        }
        outcome.done = decoder.is_done();
        outcome
    }

    /// What a table row expects; `Done` and `Pending` consume the whole input unless told otherwise.
    enum Expect {
        Done(&'static str),
        DoneAt(&'static str, usize),
        Pending(&'static str),
        Failed(&'static str, ChunkedError),
    }

    impl Expect {
        fn outcome(&self, input_len: usize) -> Outcome {
            let (payload, consumed, done, error) = match *self {
                Expect::Done(payload) => (payload, Some(input_len), true, None),
                Expect::DoneAt(payload, consumed) => (payload, Some(consumed), true, None),
                Expect::Pending(payload) => (payload, Some(input_len), false, None),
                Expect::Failed(payload, error) => (payload, None, false, Some(error)),
            };
            Outcome { payload: payload.into(), consumed, done, error }
        }
    }

    /// The table: (name, encoded input, what any feeding of it must produce).
    /// Not rustfmt'ed so that each row stays one line.
    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
        use ChunkedError::*;
        use Expect::*;
        let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE_BYTES - 2));
        let too_long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE_BYTES - 1));
        let many_zeros = format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(MAX_CHUNK_LINE_BYTES - 1));
        let too_many_zeros = format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(MAX_CHUNK_LINE_BYTES));
        // Trailer section = "X: " + filler + CRLF + final CRLF: exactly `len` bytes.
        let trailer = |len: usize| format!("0\r\nX: {}\r\n\r\n", "t".repeat(len - 7));
        let s = |text: &str| text.as_bytes().to_vec();
        vec![
            ("single", s("5\r\nhello\r\n0\r\n\r\n"), Done("hello")),
            ("multiple", s("5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"), Done("hello world")),
            ("empty body", s("0\r\n\r\n"), Done("")),
            ("lower hex", s("a\r\n0123456789\r\n0\r\n\r\n"), Done("0123456789")),
            ("upper hex", s("A\r\n0123456789\r\n0\r\n\r\n"), Done("0123456789")),
            ("two hex digits, both cases", s("1b\r\nabcdefghijklmnopqrstuvwxyz!\r\n1B\r\nabcdefghijklmnopqrstuvwxyz?\r\n0\r\n\r\n"),
                Done("abcdefghijklmnopqrstuvwxyz!abcdefghijklmnopqrstuvwxyz?")),
            ("leading zeros", s("0005\r\nhello\r\n000\r\n\r\n"), Done("hello")),
            ("fifteen digits", s("00000000000000a\r\n0123456789\r\n0\r\n\r\n"), Done("0123456789")),
            ("sixteen digits", s("000000000000000a\r\n0123456789\r\n000000000000000\r\n\r\n"), Done("0123456789")),
            ("crlf then a stray byte", s("1\r\na\r\n\r\n"), Failed("a", BadSize)),
            ("leading zeros at line bound", s(&many_zeros), Done("hello")),
            ("leading zeros over line bound", s(&too_many_zeros), Failed("", LineTooLong)),
            ("extension", s("5;name=value\r\nhello\r\n0;last\r\n\r\n"), Done("hello")),
            ("quoted extension with ;", s("5;a=\"x;y\\\"z\";b\r\nhello\r\n0\r\n\r\n"), Done("hello")),
            ("whitespace before ;", s("5 \t;a=b\r\nhello\r\n0 ;c\r\n\r\n"), Done("hello")),
            ("whitespace before line end", s("5 \r\nhello\r\n0\t\r\n\r\n"), Done("hello")),
            ("extension at line bound", s(&long_ext), Done("a")),
            ("extension over line bound", s(&too_long_ext), Failed("", LineTooLong)),
            ("trailers", s("5\r\nhello\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\n"), Done("hello")),
            ("trailer at bound", s(&trailer(MAX_TRAILER_BYTES)), Done("")),
            ("trailer over bound", s(&trailer(MAX_TRAILER_BYTES + 1)), Failed("", TrailerTooLarge)),
            ("bare lf", s("5\nhello\n0\nX: y\n\n"), Done("hello")),
            ("mixed line ends", s("5\r\nhello\n2;e\nab\r\n0\n\r\n"), Done("helloab")),
            ("bytes after terminator", s("5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"), DoneAt("hello", 15)),
            ("bytes after bare lf terminator", s("0\n\nrest"), DoneAt("", 3)),
            ("payload holds line ends", s("4\r\n\r\n\r\n\r\n0\r\n\r\n"), Done("\r\n\r\n")),
            ("max size", s("ffffffffffffffff\r\nab"), Pending("ab")),
            ("incomplete size line", s("5"), Pending("")),
            ("incomplete extension", s("5;a=\"b"), Pending("")),
            ("incomplete data", s("5\r\nhel"), Pending("hel")),
            ("incomplete trailer", s("0\r\nX: y\r\n"), Pending("")),
            ("missing final line", s("5\r\nhello\r\n0\r\n"), Pending("hello")),
            ("bad size letter", s("g\r\n"), Failed("", BadSize)),
            ("bad size empty", s("\r\nhello"), Failed("", BadSize)),
            ("bad size bare lf", s("\nhello"), Failed("", BadSize)),
            ("bad size extension only", s(";a\r\n"), Failed("", BadSize)),
            ("bad size leading space", s(" 5\r\nhello\r\n"), Failed("", BadSize)),
            ("bad size after digits", s("5x\r\nhello\r\n"), Failed("", BadSize)),
            ("bad size digit after space", s("5 5\r\nhello\r\n"), Failed("", BadSize)),
            ("bad size sign", s("-5\r\n"), Failed("", BadSize)),
            ("bad size in second chunk", s("1\r\na\r\nz\r\n"), Failed("a", BadSize)),
            ("overflow", s("10000000000000000\r\n"), Failed("", SizeOverflow)),
            ("overflow after zeros", s("0001ffffffffffffffff\r\n"), Failed("", SizeOverflow)),
            ("cr without lf on size line", s("5\rhello"), Failed("", BadLineEnd)),
            ("cr without lf after extension", s("5;a\rhello"), Failed("", BadLineEnd)),
            ("data longer than size", s("5\r\nhello!\r\n"), Failed("hello", BadLineEnd)),
            ("cr without lf after data", s("5\r\nhello\rx"), Failed("hello", BadLineEnd)),
            ("cr without lf in trailer", s("0\r\nX: y\rZ"), Failed("", BadLineEnd)),
            ("cr without lf at end", s("0\r\n\rX"), Failed("", BadLineEnd)),
        ]
    }

    #[test]
    fn table_one_shot() {
        for (name, input, expect) in cases() {
            assert_eq!(feed([&input[..]]), expect.outcome(input.len()), "{name}");
        }
    }

    #[test]
    fn table_every_split_point() {
        for (name, input, expect) in cases() {
            let expected = expect.outcome(input.len());
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(feed([a, b]), expected, "{name} split at {split}");
            }
        }
    }

    #[test]
    fn table_byte_by_byte() {
        for (name, input, expect) in cases() {
            assert_eq!(feed(input.chunks(1)), expect.outcome(input.len()), "{name}");
        }
    }

    #[test]
    fn one_range_per_call_and_done_consumes_nothing() {
        let mut decoder = ChunkedDecoder::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\ntail";
        assert_eq!(decoder.decode(input), Ok((6, 3..6)));
        assert_eq!(decoder.decode(&input[6..]), Ok((7, 5..7)));
        assert_eq!(decoder.decode(&input[13..]), Ok((7, 7..7)));
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(b"tail"), Ok((0, 0..0)));
        assert_eq!(decoder.decode(b""), Ok((0, 0..0)));
    }

    #[test]
    fn reset_starts_a_new_body() {
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(decoder.decode(b"zz"), Err(ChunkedError::BadSize));
        assert_eq!(decoder.decode(b"0\r\n\r\n"), Err(ChunkedError::BadSize));
        decoder.reset();
        assert_eq!(decoder.decode(b"0\r\n\r\n"), Ok((5, 5..5)));
        assert!(decoder.is_done());
        decoder.reset();
        assert!(!decoder.is_done());
    }

    /// One chunk as a test generates it: payload plus how its size line is spelled.
    #[derive(Debug, Clone)]
    struct Chunk {
        payload: Vec<u8>,
        upper: bool,
        zeros: usize,
        extension: &'static str,
        bare_lf: bool,
    }

    const EXTENSIONS: &[&str] = &["", ";a", ";name=value", " ;q=\"x;y\"", "\t; a = \"b\\\"c\" ;d"];

    fn chunk() -> impl Strategy<Value = Chunk> {
        (
            prop::collection::vec(any::<u8>(), 1..200),
            any::<bool>(),
            0..3usize,
            prop::sample::select(EXTENSIONS),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(payload, upper, zeros, extension, bare_lf)| Chunk {
                payload,
                upper,
                zeros,
                extension,
                bare_lf,
            })
    }

    /// The reference encoder the decoder is checked against.
    fn encode(chunks: &[Chunk], last_extension: &str, trailers: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            let end: &[u8] = if chunk.bare_lf { b"\n" } else { b"\r\n" };
            let size =
                if chunk.upper { format!("{:X}", chunk.payload.len()) } else { format!("{:x}", chunk.payload.len()) };
            out.extend_from_slice("0".repeat(chunk.zeros).as_bytes());
            out.extend_from_slice(size.as_bytes());
            out.extend_from_slice(chunk.extension.as_bytes());
            out.extend_from_slice(end);
            out.extend_from_slice(&chunk.payload);
            out.extend_from_slice(end);
        }
        out.extend_from_slice(format!("0{last_extension}\r\n").as_bytes());
        for trailer in trailers {
            out.extend_from_slice(trailer.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest! {
        #[test]
        fn random_encodings_decode_at_any_splits(
            chunks in prop::collection::vec(chunk(), 0..8),
            last_extension in prop::sample::select(EXTENSIONS),
            trailers in prop::collection::vec("[A-Za-z-]{1,10}: [ -~]{0,20}", 0..3),
            after in prop::collection::vec(any::<u8>(), 0..8),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let encoded = encode(&chunks, last_extension, &trailers);
            let mut input = encoded.clone();
            input.extend_from_slice(&after);
            let mut cuts: Vec<usize> = splits.iter().map(|index| index.index(input.len() + 1)).collect();
            cuts.push(0);
            cuts.push(input.len());
            cuts.sort_unstable();
            let pieces = cuts.windows(2).map(|w| &input[w[0]..w[1]]);
            let expected: Vec<u8> = chunks.iter().flat_map(|c| c.payload.iter().copied()).collect();
            let outcome = feed(pieces);
            prop_assert_eq!(outcome.error, None);
            prop_assert!(outcome.done);
            prop_assert_eq!(outcome.consumed, Some(encoded.len()));
            prop_assert_eq!(outcome.payload, expected);
        }
    }
}
