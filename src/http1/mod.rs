//! Sans-IO HTTP/1.1 client codec: request encoding, response heads, chunked bodies and body framing.
//!
//! Layered like hyper's `proto/h1`: [`request`] encodes the request once per run; [`response`] turns
//! the bytes of a head into a [`response::Head`] whose [`response::Framing`] picks a
//! [`body::BodyDecoder`], which for chunked bodies drives a [`chunked::ChunkedDecoder`], and whose
//! [`coding::Coding`] says whether a [`coding::Decoder`] must decompress the payload. Every parser
//! is fed `&[u8]` by the caller and answers "need more", a result, or a small `Copy` error counted
//! by variant.
//!
//! Architecture Invariant: nothing in `http1` does IO or awaits; response parsing never allocates,
//! and every input it buffers or skips has a bound (head size, header count, chunk size line,
//! trailer section, decoded bytes handed on at once). Only `request::encode`, run once per run,
//! allocates, [`exchange`], which keeps a `--scenario` step's whole (bounded) answer once per
//! journey, and [`coding::Decoder`], once per compressed stream (a br decoder's ring buffer also
//! grows with the stream's output, up to its window), never per event.
pub(crate) mod body;
pub mod chunked;
pub mod coding;
pub(crate) mod exchange;
pub(crate) mod request;
pub mod response;
