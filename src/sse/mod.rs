//! Server-Sent Events: a sans-IO parser for `text/event-stream` bodies.
//!
//! The parser is fed the decoded body bytes in whatever pieces the socket
//! delivered them and calls back once per dispatched event. It owns bounded,
//! reusable buffers and never touches IO, time or the allocator once its
//! buffers have grown to the working size.

mod parser;

pub use parser::{Event, IdField, Parser, SseError};
