//! Response body decoding by framing: chunked, Content-Length, close-delimited or none; payload
//! slices go to a callback, and the bytes after the body are left for whatever follows.
//!
//! Sans-IO: the caller feeds what it read and learns how much belonged to this body; on EOF it asks
//! [`BodyDecoder::on_eof`] whether the body was complete. Payload is handed out as slices of the
//! caller's buffer, never copied or allocated.

use std::fmt;

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::response::Framing;

/// Why a body could not be read to its end. Small and `Copy` so the caller can count by variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    Chunked(ChunkedError),
    /// The connection ended before the framing said the body had.
    PrematureEof,
}

impl From<ChunkedError> for BodyError {
    fn from(error: ChunkedError) -> Self {
        BodyError::Chunked(error)
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Chunked(error) => error.fmt(f),
            BodyError::PrematureEof => f.write_str("connection closed before the body ended"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Decodes one response body according to its [`Framing`].
#[derive(Debug, Clone)]
pub enum BodyDecoder {
    Chunked(ChunkedDecoder),
    /// Content-Length framing; `remaining` bytes still to come.
    Length {
        remaining: u64,
    },
    /// Everything until EOF is body.
    Close,
    /// 1xx, 204, 304: the body is empty by definition.
    NoBody,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
            Framing::Length(remaining) => BodyDecoder::Length { remaining },
            Framing::Close => BodyDecoder::Close,
            Framing::NoBody => BodyDecoder::NoBody,
        }
    }

    /// Feeds raw body bytes; calls on_data for each payload slice in order. Returns the number of input bytes consumed
    /// (less than input.len() only once the body is complete: the rest belongs to whatever follows the response).
    ///
    /// `on_data` is never called with an empty slice.
    pub fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], mut on_data: F) -> Result<usize, BodyError> {
        match self {
            BodyDecoder::Chunked(decoder) => {
                let mut pos = 0;
                // Each call consumes at least one byte until the body is done, so this many suffice.
                for _ in 0..=input.len() {
                    if pos == input.len() || decoder.is_done() {
                        break;
                    }
                    let (consumed, data) = decoder.decode(&input[pos..])?;
                    debug_assert!(consumed > 0 || decoder.is_done());
                    if !data.is_empty() {
                        on_data(&input[pos..][data]);
                    }
                    pos += consumed;
                }
                debug_assert!(pos == input.len() || decoder.is_done());
                Ok(pos)
            }
            BodyDecoder::Length { remaining } => {
                // min() in u64 first: `remaining` may exceed usize on 32-bit targets.
                let take = (*remaining).min(input.len() as u64) as usize;
                *remaining -= take as u64;
                if take > 0 {
                    on_data(&input[..take]);
                }
                Ok(take)
            }
            BodyDecoder::Close => {
                if !input.is_empty() {
                    on_data(input);
                }
                Ok(input.len())
            }
            BodyDecoder::NoBody => Ok(0),
        }
    }

    /// True once the body has ended by its own framing (last chunk + trailers, Length reached, NoBody). Close is never done before EOF.
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Chunked(decoder) => decoder.is_done(),
            BodyDecoder::Length { remaining } => *remaining == 0,
            BodyDecoder::Close => false,
            BodyDecoder::NoBody => true,
        }
    }

    /// The connection reached EOF: Ok for Close framing (that is its normal end) or if already done; Err(PrematureEof) otherwise.
    pub fn on_eof(&self) -> Result<(), BodyError> {
        if matches!(self, BodyDecoder::Close) || self.is_done() { Ok(()) } else { Err(BodyError::PrematureEof) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` in order, stopping at the first error, and returns
    /// (payload, total consumed, is_done, the first error).
    fn feed(framing: Framing, pieces: &[&[u8]]) -> (Vec<u8>, usize, bool, Option<BodyError>) {
        let mut decoder = BodyDecoder::new(framing);
        let mut payload = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            match decoder.decode(piece, |data| {
                assert!(!data.is_empty());
                payload.extend_from_slice(data);
            }) {
                Ok(n) => {
                    assert!(n == piece.len() || decoder.is_done(), "stopped early but not done");
                    consumed += n;
                }
                Err(error) => return (payload, consumed, decoder.is_done(), Some(error)),
            }
        }
        (payload, consumed, decoder.is_done(), decoder.on_eof().err())
    }

    /// One table row: framing, pieces fed in order, then the expected payload, bytes consumed,
    /// is_done, and the error from decode or (if none) from on_eof.
    type Row = (Framing, &'static [&'static [u8]], &'static [u8], usize, bool, Option<BodyError>);

    #[test]
    fn framings() {
        use BodyError::PrematureEof;
        use Framing::*;
        // One row a line.
        #[rustfmt::skip]
        let cases: &[Row] = &[
            (Length(5), &[b"hel", b"lo"], b"hello", 5, true, None),
            (Length(5), &[b"hello"], b"hello", 5, true, None),
            (Length(5), &[b"hel"], b"hel", 3, false, Some(PrematureEof)),
            (Length(5), &[b"hello, next response"], b"hello", 5, true, None),
            (Length(5), &[b"hel", b"lo!!", b"more"], b"hello", 5, true, None),
            (Length(0), &[b"next"], b"", 0, true, None),
            (Close, &[b"abc", b"", b"def"], b"abcdef", 6, false, None),
            (Close, &[], b"", 0, false, None),
            (NoBody, &[b"HTTP/1.1 200 OK\r\n"], b"", 0, true, None),
            (Chunked, &[b"3\r\nabc\r\n", b"0\r\n\r\n"], b"abc", 13, true, None),
            (Chunked, &[b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1"], b"abc", 13, true, None),
            (Chunked, &[b"3\r\nabc\r\n"], b"abc", 8, false, Some(PrematureEof)),
            (Chunked, &[b"3\r\nab"], b"ab", 5, false, Some(PrematureEof)),
            (Chunked, &[b"3\r\nabc\r\n0\r\n"], b"abc", 11, false, Some(PrematureEof)),
            (Chunked, &[b"3\r\nabc\r\nx"], b"abc", 0, false, Some(BodyError::Chunked(ChunkedError::BadSize))),
        ];
        for (i, &(framing, pieces, payload, consumed, done, error)) in cases.iter().enumerate() {
            let got = feed(framing, pieces);
            assert_eq!(got, (payload.to_vec(), consumed, done, error), "case {i}: {framing:?}");
        }
    }

    #[test]
    fn chunked_payload_arrives_in_order_across_calls() {
        let input = b"3\r\nabc\r\n4;x=1\r\ndefg\r\n1\r\nh\r\n0\r\nT: v\r\n\r\nrest";
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let (payload, consumed, done, error) = feed(Framing::Chunked, &[a, b]);
            assert_eq!((payload.as_slice(), consumed, done, error), (&b"abcdefgh"[..], input.len() - 4, true, None));
        }
    }

    #[test]
    fn done_bodies_consume_nothing_more() {
        let mut decoder = BodyDecoder::new(Framing::Length(2));
        assert_eq!(decoder.decode(b"ok", |_| {}), Ok(2));
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(b"more", |_| panic!("no payload after the end")), Ok(0));
        assert_eq!(decoder.on_eof(), Ok(()));
    }

    #[test]
    fn close_is_complete_only_at_eof() {
        let mut decoder = BodyDecoder::new(Framing::Close);
        assert_eq!(decoder.decode(b"data: x\n\n", |_| {}), Ok(9));
        assert!(!decoder.is_done());
        assert_eq!(decoder.on_eof(), Ok(()));
    }
}
