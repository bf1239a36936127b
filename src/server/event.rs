//! The built-in server's wire format: the response heads, each event (encoded into a reused buffer) and the heartbeat.
//!
//! Every event is `id: <sequence number>` plus `data: <send time, Unix µs> <padding>`, sent as one
//! HTTP chunk, so a client can check sequence numbers and compute delivery lag from the data alone.

use crate::http1::request::decimal;

use super::config::AccelBuffering;

/// A streaming response head with `$accel` (a whole header line, or nothing) among its fields.
macro_rules! stream_head {
    ($accel:literal) => {
        concat!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n",
            $accel,
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes()
    };
}

/// The response head of every stream the server sends (generated events and `--openai` answers alike), one static
/// head per `--x-accel-buffering` choice: nothing is built per connection.
pub fn stream_head(accel: AccelBuffering) -> &'static [u8] {
    match accel {
        AccelBuffering::No => stream_head!("X-Accel-Buffering: no\r\n"),
        AccelBuffering::Yes => stream_head!("X-Accel-Buffering: yes\r\n"),
        AccelBuffering::Omit => stream_head!(""),
    }
}

/// `--heartbeat`'s SSE comment, one chunk: clients ignore it (no event), but a proxy sees bytes move.
pub const HEARTBEAT: &[u8] = b"d\r\n: heartbeat\n\n\r\n";
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
    fn heads_differ_only_in_x_accel_buffering() {
        let text = |accel| std::str::from_utf8(stream_head(accel)).unwrap().to_string();
        assert!(text(AccelBuffering::No).contains("\r\nX-Accel-Buffering: no\r\n"));
        assert!(text(AccelBuffering::Yes).contains("\r\nX-Accel-Buffering: yes\r\n"));
        assert!(!text(AccelBuffering::Omit).to_ascii_lowercase().contains("x-accel"));
        for accel in [AccelBuffering::No, AccelBuffering::Yes, AccelBuffering::Omit] {
            let head = text(accel);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("chunked\r\n\r\n"), "{head}");
            assert_eq!(
                head.replace("X-Accel-Buffering: no\r\n", "").replace("X-Accel-Buffering: yes\r\n", ""),
                text(AccelBuffering::Omit)
            );
        }
    }

    #[test]
    fn heartbeat_is_one_chunk_holding_one_comment() {
        let text = std::str::from_utf8(HEARTBEAT).unwrap();
        let (len_hex, rest) = text.split_once("\r\n").unwrap();
        let payload = rest.strip_suffix("\r\n").unwrap();
        assert_eq!(usize::from_str_radix(len_hex, 16).unwrap(), payload.len());
        assert_eq!(payload, ": heartbeat\n\n");
    }

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
