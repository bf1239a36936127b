//! STUB
#![allow(dead_code, unused_variables, clippy::all)]
pub mod request;
pub mod response {
    pub const MAX_HEAD_BYTES: usize = 16 * 1024;
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Framing {
        Chunked,
        Length(u64),
        Close,
        NoBody,
    }
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Head {
        pub status: u16,
        pub head_len: usize,
        pub framing: Framing,
        pub is_event_stream: bool,
        pub keep_alive: bool,
    }
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum HeadError {
        TooLarge,
        TooManyHeaders,
        Malformed,
        BadContentLength,
        BadTransferEncoding,
    }
    pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
        todo!()
    }
}
pub mod chunked {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ChunkedError {
        BadSize,
        SizeOverflow,
        BadLineEnd,
        LineTooLong,
        TrailerTooLarge,
    }
    pub struct ChunkedDecoder;
}
pub mod body {
    use super::chunked::*;
    use super::response::Framing;
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BodyError {
        Chunked(ChunkedError),
        PrematureEof,
    }
    pub enum BodyDecoder {
        Chunked(ChunkedDecoder),
        Length { remaining: u64 },
        Close,
        NoBody,
    }
    impl BodyDecoder {
        pub fn new(framing: Framing) -> Self {
            todo!()
        }
        pub fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], on_data: F) -> Result<usize, BodyError> {
            todo!()
        }
        pub fn is_done(&self) -> bool {
            todo!()
        }
        pub fn on_eof(&self) -> Result<(), BodyError> {
            todo!()
        }
    }
}
