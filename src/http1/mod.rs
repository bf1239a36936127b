//! Sans-IO HTTP/1.1 client codec: request encoding, response head, chunked / length / close bodies.

pub mod body;
pub mod chunked;
pub mod request;
pub mod response;
