//! The built-in server's wire format: the response head and each event, encoded into a reused buffer.
//!
//! Every event is `id: <sequence number>` plus `data: <send time, Unix µs> <padding>`, sent as one
//! HTTP chunk, so a client can check sequence numbers and compute delivery lag from the data alone.

use crate::http1::request::decimal;

/// The response head of a generated stream. `X-Accel-Buffering: no` asks nginx not to buffer it.
pub const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n";
/// The chunk that ends a finite stream.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends one event, framed as an HTTP chunk, to `out` (cleared first). The `data` value is the
/// send time in Unix microseconds, then (if `size_bytes` is longer than it) a space and `x`
/// padding so the value is exactly `size_bytes` long; it is never shorter than the timestamp.
pub fn encode_event(out: &mut Vec<u8>, seq: u64, sent_unix_us: u64, size_bytes: usize) {
    let mut seq_digits = [0u8; 20];
    let seq_text = decimal(seq, &mut seq_digits);
    let mut time_digits = [0u8; 20];
    let time_text = decimal(sent_unix_us, &mut time_digits);
    // Room for the space is room for padding, even if the padding is empty.
    let padded = size_bytes > time_text.len();
    let padding = size_bytes.saturating_sub(time_text.len() + 1);
    let data_len = if padded { size_bytes } else { time_text.len() };
    let payload_len = b"id: ".len() + seq_text.len() + b"\ndata: ".len() + data_len + b"\n\n".len();
    out.clear();
    push_hex(out, payload_len);
    out.extend_from_slice(b"\r\nid: ");
    out.extend_from_slice(seq_text);
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(time_text);
    if padded {
        out.push(b' ');
        out.resize(out.len() + padding, b'x');
    }
    out.extend_from_slice(b"\n\n\r\n");
}

fn push_hex(out: &mut Vec<u8>, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(n >> (shift * 4)) & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_one_chunk_with_id_and_timestamp() {
        let mut out = Vec::new();
        encode_event(&mut out, 7, 1_700_000_000_000_000, 20);
        let text = String::from_utf8(out).unwrap();
        let payload = "id: 7\ndata: 1700000000000000 xxx\n\n";
        assert_eq!(text, format!("{:x}\r\n{payload}\r\n", payload.len()));
    }

    #[test]
    fn small_size_keeps_the_whole_timestamp() {
        let mut out = Vec::new();
        encode_event(&mut out, 1, 42, 0);
        assert_eq!(out, b"10\r\nid: 1\ndata: 42\n\n\r\n");
        encode_event(&mut out, 10, 42, 3);
        assert_eq!(out, b"12\r\nid: 10\ndata: 42 \n\n\r\n", "room for the space, none for padding");
    }

    #[test]
    fn data_value_is_exactly_size_bytes() {
        let mut out = Vec::new();
        for size in [16, 17, 18, 100, 4096, 70_000] {
            encode_event(&mut out, 123, 1_763_900_000_000_000, size);
            let text = std::str::from_utf8(&out).unwrap();
            let data = text.split("data: ").nth(1).unwrap().split('\n').next().unwrap();
            assert_eq!(data.len(), size);
            let (len_hex, rest) = text.split_once("\r\n").unwrap();
            assert_eq!(usize::from_str_radix(len_hex, 16).unwrap(), rest.len() - 2);
        }
    }
}
