//! A plain (non-SSE) HTTP/1.1 response read whole, sans IO: a `--scenario` HTTP step's answer, head and bounded body.

use crate::http1::body::BodyDecoder;
use crate::http1::response::{self, Framing, MAX_HEAD_BYTES};

/// The most body a step's answer may have: it is parsed as JSON for a token, not streamed.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Where a response stands after some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    NeedMore,
    /// The whole response is in: its final status (the body is in [`Response::body`]).
    Done {
        status: u16,
    },
    Failed(ExchangeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// A head or body framing that breaks HTTP/1.1, or a head over `MAX_HEAD_BYTES`.
    Malformed,
    /// A body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection closed before the response was complete.
    Truncated,
}

/// One response, fed the bytes of each read.
#[derive(Debug)]
pub struct Response {
    /// Bytes not yet parsed as a head (a head, and what follows it, may span reads).
    pending: Vec<u8>,
    status: Option<u16>,
    decoder: BodyDecoder,
    body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

impl Response {
    pub fn new() -> Response {
        Response { pending: Vec::new(), status: None, decoder: BodyDecoder::NoBody, body: Vec::new() }
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn on_bytes(&mut self, input: &[u8]) -> Exchange {
        if self.status.is_some() {
            return self.on_body(input);
        }
        if self.pending.len() + input.len() > MAX_HEAD_BYTES + MAX_BODY_BYTES {
            return Exchange::Failed(ExchangeError::TooLarge);
        }
        self.pending.extend_from_slice(input);
        loop {
            let head = match response::parse_head(&self.pending) {
                Ok(Some(head)) => head,
                Ok(None) => return Exchange::NeedMore,
                Err(_) => return Exchange::Failed(ExchangeError::Malformed),
            };
            let rest = self.pending.split_off(head.head_len);
            self.pending = rest;
            if head.is_interim() {
                continue;
            }
            self.status = Some(head.status);
            self.decoder = BodyDecoder::new(head.framing);
            let rest = std::mem::take(&mut self.pending);
            if head.framing == Framing::NoBody || !rest.is_empty() {
                return self.on_body(&rest);
            }
            return Exchange::NeedMore;
        }
    }

    /// The peer closed the connection.
    pub fn on_eof(&mut self) -> Exchange {
        match self.status {
            Some(status) if self.decoder.on_eof().is_ok() => Exchange::Done { status },
            _ => Exchange::Failed(ExchangeError::Truncated),
        }
    }

    fn on_body(&mut self, input: &[u8]) -> Exchange {
        let body = &mut self.body;
        let mut too_large = false;
        let decoded = self.decoder.decode(input, |data| {
            if body.len() + data.len() > MAX_BODY_BYTES {
                too_large = true;
            } else {
                body.extend_from_slice(data);
            }
        });
        match decoded {
            Err(_) => Exchange::Failed(ExchangeError::Malformed),
            Ok(_) if too_large => Exchange::Failed(ExchangeError::TooLarge),
            Ok(_) if self.decoder.is_done() => Exchange::Done { status: self.status.unwrap_or(0) },
            Ok(_) => Exchange::NeedMore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `response` split at every point (and byte by byte), then EOF if it still needs more.
    fn check(response: &str, want: Exchange, body: &str) {
        let bytes = response.as_bytes();
        let mut cuts: Vec<Vec<usize>> = (0..=bytes.len()).map(|i| vec![i]).collect();
        cuts.push((0..=bytes.len()).collect());
        for cut in cuts {
            let mut r = Response::new();
            let mut from = 0;
            let mut got = Exchange::NeedMore;
            for &to in cut.iter().chain([bytes.len()].iter()) {
                if got == Exchange::NeedMore && to >= from {
                    got = r.on_bytes(&bytes[from..to]);
                    from = to;
                }
            }
            if got == Exchange::NeedMore {
                got = r.on_eof();
            }
            assert_eq!(got, want, "{response:?} cut at {cut:?}");
            if matches!(want, Exchange::Done { .. }) {
                assert_eq!(r.body(), body.as_bytes());
            }
        }
    }

    #[test]
    fn bodies_by_every_framing() {
        let json = r#"{"access_token":"t0k"}"#;
        let with_length = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{json}", json.len());
        check(&with_length, Exchange::Done { status: 200 }, json);
        let chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
        check(chunked, Exchange::Done { status: 201 }, "{\"a\":1}");
        let closed = "HTTP/1.0 200 OK\r\n\r\n{}";
        check(closed, Exchange::Done { status: 200 }, "{}");
        let interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        check(interim, Exchange::Done { status: 204 }, "");
    }

    #[test]
    fn broken_answers_fail_by_class() {
        check("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", Exchange::Failed(ExchangeError::Truncated), "");
        check("HTTP/1.1 200 OK\r\n", Exchange::Failed(ExchangeError::Truncated), "");
        check("NOT HTTP\r\n\r\n", Exchange::Failed(ExchangeError::Malformed), "");
        let mut r = Response::new();
        r.on_bytes(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("100000\r\n{}\r\n", "x".repeat(0x10_0000));
        assert_eq!(r.on_bytes(chunk.as_bytes()), Exchange::NeedMore);
        assert_eq!(r.on_bytes(b"1\r\nx\r\n"), Exchange::Failed(ExchangeError::TooLarge));
    }
}
