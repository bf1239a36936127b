//! Response head parsing: status line and header fields -> status, head length, body framing,
//! content coding, keep-alive.
//!
//! Sans-IO: the caller owns the read buffer and calls [`parse_head`] again after every read until
//! it returns a [`Head`]. httparse does the tokenising with its headers array on our stack; this
//! module only interprets the few fields that decide how the body is framed (RFC 9112 section 6.3)
//! and whether the connection can carry the next request. Nothing here allocates.
//!
//! The head is bounded by [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`], set to what browsers and curl
//! accept of real servers rather than to what is common. Re-parsing from the start after every read
//! would be quadratic in the head size, so the caller parses a head that spans reads again only
//! once a blank line may have arrived ([`may_end_head`]; httparse: "avoid retry loops on a growing
//! buffer without size/time limits").
//!
//! Decisions where the RFCs leave room, for a client that sent a GET or POST:
//! - Status outside 100..=599 is [`HeadError::Malformed`] (RFC 9110 section 15: "invalid").
//! - 1xx, 204 and 304 have no body whatever the framing fields say, and those fields are not
//!   validated. A 1xx head is interim: the caller skips `head_len` bytes and parses the next head
//!   from there. (101 Switching Protocols only follows an Upgrade request, which we never send.)
//! - Transfer-Encoding in an HTTP/1.0 response is [`HeadError::BadTransferEncoding`]: RFC 9112
//!   section 6.1 says to treat such framing as faulty.
//! - Transfer-Encoding with no coding at all, a coding name that is not a token, or `chunked`
//!   applied twice (RFC 9112 section 6.1 forbids it) is [`HeadError::BadTransferEncoding`].
//!   `chunked` present but not final is read-until-close, as section 6.3 says.
//! - Transfer-Encoding together with Content-Length: Transfer-Encoding decides the framing and
//!   Content-Length is ignored (not even validated, like hyper), but the connection is not reused,
//!   because section 6.3 calls such a message a possible smuggling attempt.
//! - Content-Length: digits only, no sign, no empty list elements; a value that does not fit a
//!   `u64` is [`HeadError::BadContentLength`]. Equal repeated values are one value (RFC 9110
//!   section 8.6 allows either rejecting or collapsing them; collapsing is the common choice).
//! - Several Content-Type fields (invalid, it is a singleton): the last one decides, as the Fetch
//!   standard that browsers' EventSource follows does when it extracts a MIME type.
//! - `Connection: close` beats `keep-alive` when both appear.
//! - Obsolete line folding (a field value continued on a line that starts with a space or tab) is
//!   accepted and unfolded, as RFC 9112 section 5.2 requires of a user agent: httparse leaves the
//!   CRLF and whitespace in the value, and every value interpreted here is split on commas or
//!   semicolons and trimmed of ASCII whitespace, where a fold counts as the space it stands for.
//! - The body's coding ([`Coding`]) is Content-Encoding's codings, then the transfer codings
//!   before a final `chunked` (`Transfer-Encoding: gzip, chunked`); `identity` is none. More than
//!   one coding, an unknown one, or `chunked` followed by another transfer coding (read until
//!   close, but not decodable) is [`Coding::Unsupported`]. A response without a body has none.

use std::fmt;
use std::mem::MaybeUninit;

use super::coding::Coding;
use crate::units::parse_decimal;

/// A head larger than this is [`HeadError::TooLarge`]; it bounds both memory and re-parse work.
/// 64 KiB: curl takes heads up to 100 KiB, browsers up to 256 KiB (Chromium) or more.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The status that ends an event source: it fails the stream, and a browser stops reconnecting.
pub const NO_CONTENT: u16 = 204;

/// More header fields than this is [`HeadError::TooManyHeaders`]; it sizes the stack array httparse
/// fills (256 x 32 B = 8 KiB of stack per parse, left uninitialised; nothing per stream).
pub const MAX_HEADERS: usize = 256;

/// How the body of a response ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding` whose final coding is `chunked`.
    Chunked,
    /// `Content-Length` bytes.
    Length(u64),
    /// The body runs until the server closes the connection.
    Close,
    /// No body at all: 1xx, 204, 304.
    NoBody,
}

/// What the client needs from a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head including the blank line; the body starts at buf[head_len..].
    pub head_len: usize,
    pub framing: Framing,
    /// Content-Type's media type (before any ';', trimmed) equals text/event-stream, ASCII case-insensitive. False when absent.
    pub is_event_stream: bool,
    /// The connection may be reused after this response: HTTP/1.1 without a `close` token in Connection, or HTTP/1.0 with `keep-alive`; never when framing is Close.
    pub keep_alive: bool,
    /// What was applied to the body on top of its framing; `Identity` when nothing (or no body).
    pub coding: Coding,
    /// A 3xx head's `Location` field, found in the same parse (`Absent` for any other status).
    pub location: Location,
}

/// Where a 3xx head's `Location` field is: offsets into the head's bytes (the `buf` given to [`parse_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Location {
    #[default]
    Absent,
    At {
        start: usize,
        end: usize,
    },
    /// More than one `Location` field: which to follow is not said.
    Several,
}

impl Location {
    fn of(headers: &[httparse::Header<'_>], buf: &[u8]) -> Location {
        let mut found = Location::Absent;
        for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("location")) {
            if found != Location::Absent {
                return Location::Several;
            }
            // httparse hands out slices of `buf`: the value's place in it.
            let start = header.value.as_ptr() as usize - buf.as_ptr() as usize;
            found = Location::At { start, end: start + header.value.len() };
        }
        found
    }
}

impl Head {
    /// An interim (1xx) head: another head follows at `buf[head_len..]`.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Why a response head was refused. Small and `Copy` so the caller can count failures by variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// No complete head within [`MAX_HEAD_BYTES`].
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// Not an HTTP/1.x response head (bad status line, bad header syntax, status outside 100..=599).
    Malformed,
    /// Content-Length is not digits, overflows, or repeats with different values.
    BadContentLength,
    /// Transfer-Encoding that cannot frame a body (see the module notes).
    BadTransferEncoding,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadError::TooLarge => "response head too large",
            HeadError::TooManyHeaders => "too many response header fields",
            HeadError::Malformed => "malformed response head",
            HeadError::BadContentLength => "invalid Content-Length",
            HeadError::BadTransferEncoding => "invalid Transfer-Encoding",
        })
    }
}

impl std::error::Error for HeadError {}

/// Parses a response head from the start of `buf` with httparse (headers array on the stack).
/// Ok(None): incomplete, read more (but Err(TooLarge) once buf.len() >= MAX_HEAD_BYTES without a complete head).
///
/// For a 1xx head the caller drops `head_len` bytes and parses the next head; see [`Head::is_interim`].
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    // Never look past the bound: body bytes (or a hostile endless head) after it cost nothing.
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    // Uninitialised: httparse writes only the fields it finds, so a 20-field head does not pay for
    // clearing all 256 slots (8 KiB) first.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    let head_len = match config.parse_response_with_uninit_headers(&mut response, window, &mut headers) {
        Ok(httparse::Status::Complete(head_len)) => head_len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Malformed),
    };
    debug_assert!(head_len <= MAX_HEAD_BYTES);
    // httparse fills both once the status line is complete; check rather than unwrap.
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return Err(HeadError::Malformed);
    };
    if !(100..=599).contains(&status) {
        return Err(HeadError::Malformed);
    }
    let fields = Fields::scan(response.headers);
    let http11 = version == 1;
    let framing = framing(status, http11, &fields)?;
    let persistent =
        if http11 { !fields.connection_close } else { fields.connection_keep_alive && !fields.connection_close };
    let keep_alive = persistent
        && framing != Framing::Close
        && !(fields.transfer_encoding.is_some() && fields.content_length.is_some());
    let coding = if framing == Framing::NoBody { Coding::Identity } else { fields.coding() };
    let location = if (300..400).contains(&status) { Location::of(response.headers, window) } else { Location::Absent };
    let is_event_stream = fields.is_event_stream;
    Ok(Some(Head { status, head_len, framing, is_event_stream, keep_alive, coding, location }))
}

/// Whether bytes appended to a partial head at `buf[from..]` may have completed it: a blank line
/// (`\n\n` or `\n\r\n`) ends there, or the buffer reached [`MAX_HEAD_BYTES`]. Otherwise the head
/// cannot be complete yet, so a caller that buffers a head across reads re-parses only when this
/// is true: linear work, not quadratic. (A syntax error in the new bytes is then found when the
/// blank line or the bound arrives, not at once; the head timeout still runs meanwhile.)
pub fn may_end_head(buf: &[u8], from: usize) -> bool {
    // A blank line may start up to two bytes before the new ones.
    let tail = &buf[from.saturating_sub(2).min(buf.len())..];
    buf.len() >= MAX_HEAD_BYTES
        || memchr::memmem::find(tail, b"\n\n").is_some()
        || memchr::memmem::find(tail, b"\n\r\n").is_some()
}

/// RFC 9112 section 6.3, steps 1-2 (HEAD and CONNECT do not apply), 3-7.
fn framing(status: u16, http11: bool, fields: &Fields) -> Result<Framing, HeadError> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::NoBody);
    }
    if let Some(te) = fields.transfer_encoding {
        if !http11 || te.invalid || te.codings == 0 || te.chunked_count > 1 {
            return Err(HeadError::BadTransferEncoding);
        }
        return Ok(if te.last_is_chunked { Framing::Chunked } else { Framing::Close });
    }
    match fields.content_length {
        Some(ContentLength::Value(length)) => Ok(Framing::Length(length)),
        Some(ContentLength::Invalid) => Err(HeadError::BadContentLength),
        None => Ok(Framing::Close),
    }
}

/// The framing-relevant header fields, gathered in one pass. Validation errors are recorded, not
/// raised, because whether they matter depends on the status and on the other fields.
#[derive(Default)]
struct Fields {
    transfer_encoding: Option<TransferEncoding>,
    content_length: Option<ContentLength>,
    /// Content-Encoding's codings, in order, folded with [`Coding::then`].
    content_coding: Coding,
    connection_close: bool,
    connection_keep_alive: bool,
    is_event_stream: bool,
}

#[derive(Default, Clone, Copy)]
struct TransferEncoding {
    /// Non-empty list elements over all Transfer-Encoding lines.
    codings: u32,
    chunked_count: u32,
    last_is_chunked: bool,
    /// Some coding name was not a token.
    invalid: bool,
    /// The codings other than `chunked`, folded with [`Coding::then`].
    applied: Coding,
}

#[derive(Clone, Copy)]
enum ContentLength {
    Value(u64),
    Invalid,
}

impl Fields {
    fn scan(headers: &[httparse::Header<'_>]) -> Fields {
        debug_assert!(headers.len() <= MAX_HEADERS);
        let mut fields = Fields::default();
        for header in headers {
            // Header names are case-insensitive (RFC 9110 section 5.1); str::eq_ignore_ascii_case
            // compares lengths first and allocates nothing.
            let name = header.name;
            if name.eq_ignore_ascii_case("transfer-encoding") {
                let te = fields.transfer_encoding.get_or_insert_default();
                for coding in list_elements(header.value) {
                    // A coding may carry parameters (`gzip;q=1`); only its name matters here.
                    let coding_name = before_semicolon(coding);
                    let is_chunked = coding_name.eq_ignore_ascii_case(b"chunked");
                    te.invalid |= !is_token(coding_name);
                    te.codings += 1;
                    te.chunked_count += u32::from(is_chunked);
                    te.last_is_chunked = is_chunked;
                    if !is_chunked {
                        te.applied = te.applied.then(Coding::named(coding_name));
                    }
                }
            } else if name.eq_ignore_ascii_case("content-encoding") {
                for coding in list_elements(header.value) {
                    fields.content_coding = fields.content_coding.then(Coding::named(coding));
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                fields.content_length = Some(merge_content_length(fields.content_length, header.value));
            } else if name.eq_ignore_ascii_case("connection") {
                for option in list_elements(header.value) {
                    fields.connection_close |= option.eq_ignore_ascii_case(b"close");
                    fields.connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("content-type") {
                fields.is_event_stream =
                    before_semicolon(header.value.trim_ascii()).eq_ignore_ascii_case(b"text/event-stream");
            }
        }
        fields
    }

    /// The coding of the body: Content-Encoding's, then the transfer codings before `chunked`.
    fn coding(&self) -> Coding {
        let content = self.content_coding;
        match self.transfer_encoding {
            None => content,
            // Chunked, then something else on top of it: read until close, but not decodable.
            Some(te) if te.chunked_count > 0 && !te.last_is_chunked => Coding::Unsupported,
            Some(te) => content.then(te.applied),
        }
    }
}

/// Folds one Content-Length line (itself possibly a comma list) into what earlier lines gave.
fn merge_content_length(seen: Option<ContentLength>, value: &[u8]) -> ContentLength {
    let mut merged = seen;
    // Empty elements count: `Content-Length: 5,` is refused rather than guessed at.
    for element in value.split(|&b| b == b',') {
        let parsed = match parse_decimal(element.trim_ascii()) {
            Some(length) => ContentLength::Value(length),
            None => ContentLength::Invalid,
        };
        merged = Some(match (merged, parsed) {
            (None, parsed) => parsed,
            (Some(ContentLength::Value(a)), ContentLength::Value(b)) if a == b => parsed,
            _ => ContentLength::Invalid,
        });
    }
    merged.unwrap_or(ContentLength::Invalid)
}

/// The non-empty, OWS-trimmed elements of a comma list (RFC 9110 section 5.6.1: recipients
/// accept and ignore empty elements).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|element| !element.is_empty())
}

fn before_semicolon(value: &[u8]) -> &[u8] {
    match memchr::memchr(b';', value) {
        Some(end) => value[..end].trim_ascii(),
        None => value,
    }
}

/// RFC 9110 section 5.6.2 token.
fn is_token(value: &[u8]) -> bool {
    !value.is_empty()
        && value.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::Coding::{Br, Deflate, Gzip, Unsupported};
    use super::Framing::{Chunked, Close, Length, NoBody};
    use super::*;
    use proptest::prelude::*;

    /// Flags for the expected head, so table rows stay one line each.
    const NONE: u8 = 0;
    /// is_event_stream
    const ES: u8 = 1;
    /// keep_alive
    const KA: u8 = 2;

    type Want = Result<(u16, Framing, bool, bool, Coding), HeadError>;

    fn want(status: u16, framing: Framing, flags: u8) -> Want {
        coded(status, framing, flags, Coding::Identity)
    }

    /// A head whose body has a coding.
    fn coded(status: u16, framing: Framing, flags: u8, coding: Coding) -> Want {
        Ok((status, framing, flags & ES != 0, flags & KA != 0, coding))
    }

    fn head_bytes(lines: &[&str]) -> Vec<u8> {
        let mut head = String::new();
        for line in lines {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Parses the head built from `lines` and compares with `expected`; every strict prefix must be
    /// Ok(None) (nothing is decided before the blank line, except the syntax errors httparse sees
    /// early, which the table does not expect at a prefix), and the head must end at the blank line
    /// even with body bytes behind it.
    fn check(lines: &[&str], expected: Want) {
        let head = head_bytes(lines);
        match (parse_head(&head), expected) {
            (Ok(Some(h)), Ok((status, framing, is_event_stream, keep_alive, coding))) => {
                let want = Head {
                    status,
                    head_len: head.len(),
                    framing,
                    is_event_stream,
                    keep_alive,
                    coding,
                    location: Location::Absent,
                };
                assert_eq!(h, want, "{lines:?}");
            }
            (Err(e), Err(want)) => assert_eq!(e, want, "{lines:?}"),
            (got, want) => panic!("{lines:?}: got {got:?}, want {want:?}"),
        }
        // httparse may refuse bad syntax before the blank line arrives, so Malformed rows skip this.
        if expected != Err(HeadError::Malformed) {
            for end in 0..head.len() {
                assert_eq!(parse_head(&head[..end]), Ok(None), "{lines:?} prefix {end}");
            }
        }
        let mut with_body = head.clone();
        with_body.extend_from_slice(b"data: x\n\nHTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(parse_head(&with_body), parse_head(&head), "{lines:?} with body");
    }

    macro_rules! heads {
        ($($name:ident: [$($line:expr),* $(,)?] => $expected:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    check(&[$($line),*], $expected);
                }
            )*
        };
    }

    heads! {
        chunked_sse: ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked"]
            => want(200, Chunked, ES | KA);
        content_length: ["HTTP/1.1 200 OK", "Content-Length: 5"] => want(200, Length(5), KA);
        content_length_zero: ["HTTP/1.1 200 OK", "content-length: 0"] => want(200, Length(0), KA);
        content_length_leading_zeros: ["HTTP/1.1 200 OK", "Content-Length: 007"] => want(200, Length(7), KA);
        content_length_max: ["HTTP/1.1 200 OK", "Content-Length: 18446744073709551615"]
            => want(200, Length(u64::MAX), KA);
        close_delimited: ["HTTP/1.1 200 OK", "Content-Type: text/event-stream"] => want(200, Close, ES);
        no_reason_phrase: ["HTTP/1.1 200", "Content-Length: 1"] => want(200, Length(1), KA);
        http10_default_close: ["HTTP/1.0 200 OK", "Content-Length: 5"] => want(200, Length(5), NONE);
        http10_keep_alive: ["HTTP/1.0 200 OK", "Connection: Keep-Alive", "Content-Length: 5"]
            => want(200, Length(5), KA);
        http10_close_delimited_never_keep_alive: ["HTTP/1.0 200 OK", "Connection: keep-alive"]
            => want(200, Close, NONE);
        http10_transfer_encoding: ["HTTP/1.0 200 OK", "Transfer-Encoding: chunked"]
            => Err(HeadError::BadTransferEncoding);
        connection_close: ["HTTP/1.1 200 OK", "Connection: close", "Content-Length: 5"]
            => want(200, Length(5), NONE);
        connection_close_in_list: ["HTTP/1.1 200 OK", "Connection: Upgrade, CLOSE", "Transfer-Encoding: chunked"]
            => want(200, Chunked, NONE);
        connection_close_beats_keep_alive: ["HTTP/1.1 200 OK", "Connection: keep-alive", "Connection: close",
            "Content-Length: 1"] => want(200, Length(1), NONE);
        connection_closed_is_not_close: ["HTTP/1.1 200 OK", "Connection: closed", "Content-Length: 1"]
            => want(200, Length(1), KA);
        content_type_mixed_case_with_params: ["HTTP/1.1 200 OK", "Content-Type: Text/Event-Stream; charset=utf-8",
            "Content-Length: 1"] => want(200, Length(1), ES | KA);
        content_type_spaces: ["HTTP/1.1 200 OK", "Content-Type:   text/event-stream   ", "Content-Length: 1"]
            => want(200, Length(1), ES | KA);
        content_type_space_before_params: ["HTTP/1.1 200 OK", "Content-Type: text/event-stream ;charset=utf-8",
            "Content-Length: 1"] => want(200, Length(1), ES | KA);
        content_type_longer_is_not: ["HTTP/1.1 200 OK", "Content-Type: text/event-streamx", "Content-Length: 1"]
            => want(200, Length(1), KA);
        content_type_plain: ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 1"]
            => want(200, Length(1), KA);
        content_type_last_wins: ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Type: text/event-stream",
            "Content-Length: 1"] => want(200, Length(1), ES | KA);
        content_type_absent: ["HTTP/1.1 200 OK", "Content-Length: 1"] => want(200, Length(1), KA);
        no_content: ["HTTP/1.1 204 No Content", "Content-Length: 10"] => want(204, NoBody, KA);
        not_modified: ["HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked"] => want(304, NoBody, KA);
        no_body_ignores_bad_framing: ["HTTP/1.1 204 No Content", "Content-Length: x"] => want(204, NoBody, KA);
        continue_interim: ["HTTP/1.1 100 Continue"] => want(100, NoBody, KA);
        early_hints_interim: ["HTTP/1.1 103 Early Hints", "Link: </a>; rel=preload"] => want(103, NoBody, KA);
        error_status_with_body: ["HTTP/1.1 503 Service Unavailable", "Content-Length: 3"]
            => want(503, Length(3), KA);
        te_gzip_chunked: ["HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"] => coded(200, Chunked, KA, Gzip);
        te_chunked_gzip: ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip"]
            => coded(200, Close, NONE, Unsupported);
        te_gzip_only: ["HTTP/1.1 200 OK", "Transfer-Encoding: gzip"] => coded(200, Close, NONE, Gzip);
        te_two_lines: ["HTTP/1.1 200 OK", "Transfer-Encoding: gzip", "Transfer-Encoding: CHUNKED"]
            => coded(200, Chunked, KA, Gzip);
        te_two_lines_chunked_first: ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"]
            => coded(200, Close, NONE, Unsupported);
        te_empty_elements: ["HTTP/1.1 200 OK", "Transfer-Encoding: ,gzip ,, chunked ,"]
            => coded(200, Chunked, KA, Gzip);
        te_with_parameters: ["HTTP/1.1 200 OK", "Transfer-Encoding: foo;q=1, chunked"]
            => coded(200, Chunked, KA, Unsupported);
        te_deflate_br: ["HTTP/1.1 200 OK", "Transfer-Encoding: Deflate, chunked"] => coded(200, Chunked, KA, Deflate);
        te_identity: ["HTTP/1.1 200 OK", "Transfer-Encoding: identity, chunked"] => want(200, Chunked, KA);
        te_two_codings: ["HTTP/1.1 200 OK", "Transfer-Encoding: gzip, br, chunked"]
            => coded(200, Chunked, KA, Unsupported);
        ce_gzip: ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Content-Encoding: gzip"]
            => coded(200, Close, ES, Gzip);
        ce_x_gzip: ["HTTP/1.1 200 OK", "content-encoding: X-Gzip", "Content-Length: 3"] => coded(200, Length(3), KA, Gzip);
        ce_deflate_chunked: ["HTTP/1.1 200 OK", "Content-Encoding: deflate", "Transfer-Encoding: chunked"]
            => coded(200, Chunked, KA, Deflate);
        ce_br: ["HTTP/1.1 200 OK", "Content-Encoding: br", "Content-Length: 3"] => coded(200, Length(3), KA, Br);
        ce_identity: ["HTTP/1.1 200 OK", "Content-Encoding: identity", "Content-Length: 3"] => want(200, Length(3), KA);
        ce_identity_then_gzip: ["HTTP/1.1 200 OK", "Content-Encoding: identity, gzip", "Content-Length: 3"]
            => coded(200, Length(3), KA, Gzip);
        ce_empty: ["HTTP/1.1 200 OK", "Content-Encoding: ", "Content-Length: 3"] => want(200, Length(3), KA);
        ce_unknown: ["HTTP/1.1 200 OK", "Content-Encoding: zstd", "Content-Length: 3"]
            => coded(200, Length(3), KA, Unsupported);
        ce_two: ["HTTP/1.1 200 OK", "Content-Encoding: gzip, br", "Content-Length: 3"]
            => coded(200, Length(3), KA, Unsupported);
        ce_two_lines: ["HTTP/1.1 200 OK", "Content-Encoding: gzip", "Content-Encoding: gzip", "Content-Length: 3"]
            => coded(200, Length(3), KA, Unsupported);
        ce_and_te: ["HTTP/1.1 200 OK", "Content-Encoding: br", "Transfer-Encoding: gzip, chunked"]
            => coded(200, Chunked, KA, Unsupported);
        ce_without_body: ["HTTP/1.1 304 Not Modified", "Content-Encoding: gzip"] => want(304, NoBody, KA);
        folded_content_type: ["HTTP/1.1 200 OK", "Content-Type:", " text/event-stream;", "\tcharset=utf-8",
            "Content-Length: 1"] => want(200, Length(1), ES | KA);
        folded_transfer_encoding: ["HTTP/1.1 200 OK", "Transfer-Encoding: gzip,", "  chunked"]
            => coded(200, Chunked, KA, Gzip);
        folded_content_encoding: ["HTTP/1.1 200 OK", "Content-Encoding:", " br", "Content-Length: 1"]
            => coded(200, Length(1), KA, Br);
        folded_content_length: ["HTTP/1.1 200 OK", "Content-Length: 5", " ", "X-After: y"] => want(200, Length(5), KA);
        folded_connection: ["HTTP/1.1 200 OK", "Connection: keep-alive,", " close", "Content-Length: 1"]
            => want(200, Length(1), NONE);
        folded_other_field: ["HTTP/1.1 200 OK", "X-Long: a", " b", "\tc", "Content-Length: 1"] => want(200, Length(1), KA);
        folded_inside_a_token_is_a_space: ["HTTP/1.1 200 OK", "Content-Type: text/event-", " stream", "Content-Length: 1"]
            => want(200, Length(1), KA);
        malformed_fold_first_line: ["HTTP/1.1 200 OK", " folded: x"] => Err(HeadError::Malformed);
        te_chunked_twice: ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked"]
            => Err(HeadError::BadTransferEncoding);
        te_empty: ["HTTP/1.1 200 OK", "Transfer-Encoding: "] => Err(HeadError::BadTransferEncoding);
        te_not_token: ["HTTP/1.1 200 OK", "Transfer-Encoding: gz ip, chunked"] => Err(HeadError::BadTransferEncoding);
        cl_and_te: ["HTTP/1.1 200 OK", "Content-Length: 10", "Transfer-Encoding: chunked"] => want(200, Chunked, NONE);
        cl_bad_and_te: ["HTTP/1.1 200 OK", "Content-Length: x", "Transfer-Encoding: chunked"] => want(200, Chunked, NONE);
        cl_equal_list: ["HTTP/1.1 200 OK", "Content-Length: 42, 42"] => want(200, Length(42), KA);
        cl_equal_lines: ["HTTP/1.1 200 OK", "Content-Length: 42", "content-length: 42"] => want(200, Length(42), KA);
        cl_unequal_list: ["HTTP/1.1 200 OK", "Content-Length: 42, 43"] => Err(HeadError::BadContentLength);
        cl_unequal_lines: ["HTTP/1.1 200 OK", "Content-Length: 42", "Content-Length: 43"]
            => Err(HeadError::BadContentLength);
        cl_non_digit: ["HTTP/1.1 200 OK", "Content-Length: 4x"] => Err(HeadError::BadContentLength);
        cl_sign: ["HTTP/1.1 200 OK", "Content-Length: +5"] => Err(HeadError::BadContentLength);
        cl_hex: ["HTTP/1.1 200 OK", "Content-Length: 0x10"] => Err(HeadError::BadContentLength);
        cl_empty: ["HTTP/1.1 200 OK", "Content-Length: "] => Err(HeadError::BadContentLength);
        cl_empty_element: ["HTTP/1.1 200 OK", "Content-Length: 5,"] => Err(HeadError::BadContentLength);
        cl_overflow: ["HTTP/1.1 200 OK", "Content-Length: 18446744073709551616"] => Err(HeadError::BadContentLength);
        malformed_version: ["HTTP/2.0 200 OK"] => Err(HeadError::Malformed);
        malformed_status_letters: ["HTTP/1.1 2x0 OK"] => Err(HeadError::Malformed);
        malformed_status_short: ["HTTP/1.1 20 OK"] => Err(HeadError::Malformed);
        malformed_status_range: ["HTTP/1.1 099 Low"] => Err(HeadError::Malformed);
        malformed_status_high: ["HTTP/1.1 600 High"] => Err(HeadError::Malformed);
        malformed_not_http: ["ICY 200 OK"] => Err(HeadError::Malformed);
        malformed_header_name: ["HTTP/1.1 200 OK", "Bad Name: x"] => Err(HeadError::Malformed);
    }

    #[test]
    fn location_is_found_once() {
        let head = |fields: &str| format!("HTTP/1.1 302 Found\r\n{fields}Content-Length: 0\r\n\r\n");
        let location = |head: &str| {
            let parsed = parse_head(head.as_bytes()).unwrap().unwrap();
            match parsed.location {
                Location::At { start, end } => Ok(Some(head.as_bytes()[start..end].to_vec())),
                Location::Absent => Ok(None),
                Location::Several => Err(()),
            }
        };
        assert_eq!(location(&head("LOCATION: /a\r\n")), Ok(Some(b"/a".to_vec())));
        assert_eq!(location(&head("")), Ok(None));
        assert_eq!(location(&head("Location: /a\r\nLocation: /b\r\n")), Err(()));
    }

    #[test]
    fn bare_lf_line_ends() {
        let head = b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc";
        let want = Head {
            status: 200,
            head_len: 35,
            framing: Length(3),
            is_event_stream: false,
            keep_alive: true,
            coding: Coding::Identity,
            location: Location::Absent,
        };
        assert_eq!(parse_head(head), Ok(Some(want)));
    }

    #[test]
    fn body_after_head() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(b"5\r\nhello\r\n");
        let parsed = parse_head(&buf).unwrap().unwrap();
        assert_eq!(parsed.head_len, head.len());
        assert_eq!(&buf[parsed.head_len..], b"5\r\nhello\r\n");
    }

    #[test]
    fn interim_then_final() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let interim = parse_head(buf).unwrap().unwrap();
        assert!(interim.is_interim());
        let last = parse_head(&buf[interim.head_len..]).unwrap().unwrap();
        assert!(!last.is_interim());
        assert_eq!(last.framing, Length(2));
        assert_eq!(&buf[interim.head_len + last.head_len..], b"ok");
    }

    fn many_headers(count: usize) -> Vec<u8> {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..count {
            head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    #[test]
    fn header_count_bound() {
        let at_limit = many_headers(MAX_HEADERS);
        assert_eq!(parse_head(&at_limit).unwrap().unwrap().head_len, at_limit.len());
        for end in 0..at_limit.len() {
            assert_eq!(parse_head(&at_limit[..end]), Ok(None), "prefix {end}");
        }
        assert_eq!(parse_head(&many_headers(MAX_HEADERS + 1)), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn head_size_bound() {
        let fill = |len: usize| {
            let mut head = b"HTTP/1.1 200 OK\r\nX-Fill: ".to_vec();
            head.resize(len - 4, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            head
        };
        let at_limit = fill(MAX_HEAD_BYTES);
        assert_eq!(parse_head(&at_limit).unwrap().unwrap().head_len, MAX_HEAD_BYTES);
        assert_eq!(parse_head(&at_limit[..MAX_HEAD_BYTES - 1]), Ok(None));
        let over = fill(MAX_HEAD_BYTES + 1);
        assert_eq!(parse_head(&over[..MAX_HEAD_BYTES - 1]), Ok(None));
        assert_eq!(parse_head(&over[..MAX_HEAD_BYTES]), Err(HeadError::TooLarge));
        assert_eq!(parse_head(&over), Err(HeadError::TooLarge));
        // A complete small head followed by a large body is fine: only the head is bounded.
        let mut big_body = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big_body.resize(4 * MAX_HEAD_BYTES, b'x');
        assert_eq!(parse_head(&big_body).unwrap().unwrap().head_len, 19);
    }

    /// Header lines a real server might send, valid or not, to mix with random names and values.
    fn header_line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z0-9-]{0,15}: [ -~]{0,30}",
            Just("Content-Type: text/event-stream".to_owned()),
            Just("content-type: Text/Event-Stream; charset=utf-8".to_owned()),
            Just("Transfer-Encoding: chunked".to_owned()),
            Just("Transfer-Encoding: gzip".to_owned()),
            Just("Content-Encoding: br".to_owned()),
            Just("X-Folded: a\r\n b,\r\n\tc".to_owned()),
            "Content-Length: [0-9]{1,4}",
            Just("Connection: close".to_owned()),
            Just("Connection: keep-alive".to_owned()),
        ]
    }

    prop_compose! {
        fn valid_head()(
            version in 0..2u8,
            status in prop::sample::select(vec![100u16, 103, 200, 201, 204, 206, 301, 304, 404, 500, 503]),
            reason in "[ -~]{0,20}",
            lines in prop::collection::vec(header_line(), 0..24),
            body in prop::collection::vec(any::<u8>(), 0..16),
        ) -> (Vec<u8>, usize) {
            let mut head = format!("HTTP/1.{version} {status} {reason}\r\n");
            for line in &lines {
                head.push_str(line);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let head_len = head.len();
            let mut buf = head.into_bytes();
            buf.extend_from_slice(&body);
            (buf, head_len)
        }
    }

    #[test]
    fn a_head_may_end_only_where_a_blank_line_arrives() {
        let head = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
        let bare = b"HTTP/1.1 200 OK\nA: b\n\n";
        for buf in [&head[..], &bare[..]] {
            for end in 0..=buf.len() {
                for from in 0..=end {
                    let ends = parse_head(&buf[..end]) != Ok(None);
                    let incomplete_before = parse_head(&buf[..from]) == Ok(None);
                    if ends && incomplete_before {
                        assert!(may_end_head(&buf[..end], from), "{end} after {from}");
                    }
                }
                // Only bytes that bring the blank line count.
                assert_eq!(may_end_head(&buf[..end], end.saturating_sub(1)), end == buf.len(), "{end}");
            }
        }
        let mut full = vec![b'a'; MAX_HEAD_BYTES];
        assert!(may_end_head(&full, MAX_HEAD_BYTES - 1), "the bound is an end too");
        full.pop();
        assert!(!may_end_head(&full, 0));
    }

    proptest! {
        /// The re-parse rule never skips the read that completes (or breaks) a valid head.
        #[test]
        fn may_end_head_never_misses_an_end((buf, _) in valid_head(), cut in 0usize..64) {
            for end in 0..=buf.len() {
                let from = end.saturating_sub(cut % (end + 1));
                if parse_head(&buf[..from]) == Ok(None) && parse_head(&buf[..end]) != Ok(None) {
                    prop_assert!(may_end_head(&buf[..end], from), "{} after {}", end, from);
                }
            }
        }

        #[test]
        fn every_prefix_is_incomplete_then_the_same_head((buf, head_len) in valid_head()) {
            let whole = parse_head(&buf);
            // Syntactically valid: any error is a semantic one decided at the blank line.
            prop_assert!(!matches!(whole, Err(HeadError::Malformed | HeadError::TooLarge | HeadError::TooManyHeaders)));
            if let Ok(Some(head)) = whole {
                prop_assert_eq!(head.head_len, head_len);
            }
            for end in 0..head_len {
                prop_assert_eq!(parse_head(&buf[..end]), Ok(None), "prefix {}", end);
            }
            prop_assert_eq!(parse_head(&buf[..head_len]), whole);
        }
    }
}
