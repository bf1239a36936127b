//! Benchmarks for the HTTP/1.1 client codec: response head parsing (ns per head) and chunked body
//! decoding (throughput of encoded input).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ssebench::http1::chunked::ChunkedDecoder;
use ssebench::http1::response::{Framing, parse_head};

/// What a typical SSE server answers: ~200 bytes, 6 header fields.
const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream; charset=utf-8\r\n\
Cache-Control: no-cache\r\n\
Connection: keep-alive\r\n\
Transfer-Encoding: chunked\r\n\
Date: Sun, 23 Nov 2025 18:57:00 GMT\r\n\
X-Accel-Buffering: no\r\n\
\r\n";

/// A head behind a CDN and a framework: ~1 KiB, 20 header fields.
const LARGE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Sun, 23 Nov 2025 18:57:00 GMT\r\n\
Content-Type: text/event-stream; charset=utf-8\r\n\
Transfer-Encoding: chunked\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache, no-store, must-revalidate, private, max-age=0\r\n\
Pragma: no-cache\r\n\
Expires: 0\r\n\
X-Accel-Buffering: no\r\n\
Server: nginx/1.25.3\r\n\
Vary: Origin, Accept-Encoding, Authorization\r\n\
Access-Control-Allow-Origin: https://dashboard.example.com\r\n\
Access-Control-Allow-Credentials: true\r\n\
Access-Control-Expose-Headers: X-Request-Id, X-RateLimit-Remaining, X-RateLimit-Reset\r\n\
Strict-Transport-Security: max-age=63072000; includeSubDomains; preload\r\n\
X-Content-Type-Options: nosniff\r\n\
X-Frame-Options: DENY\r\n\
X-Request-Id: 7f3c9a2e-4b1d-4e8a-9c6f-2d5b8e1a0c37\r\n\
X-RateLimit-Remaining: 4999\r\n\
Set-Cookie: session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c; Path=/; HttpOnly; Secure; SameSite=Strict\r\n\
Content-Security-Policy: default-src 'self'; script-src 'self' https://cdn.example.com; connect-src 'self' https://events.example.com; img-src 'self' data:\r\n\
\r\n";

fn bench_parse_head(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_head");
    for (name, head) in [("sse_6_headers", SSE_HEAD), ("large_20_headers", LARGE_HEAD)] {
        // Check the input once so the benchmark measures a successful parse.
        let parsed = parse_head(head).expect("valid head").expect("complete head");
        assert_eq!((parsed.head_len, parsed.framing), (head.len(), Framing::Chunked));
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}_{}_bytes", head.len()), |b| b.iter(|| parse_head(black_box(head))));
    }
    group.finish();
}

/// 100-byte chunks (`64\r\n<100 bytes>\r\n`) making up 64 KiB of payload, then the last chunk.
fn chunked_body() -> (Vec<u8>, usize) {
    const CHUNK_BYTES: usize = 100;
    let chunks = 64 * 1024 / CHUNK_BYTES;
    let mut body = Vec::with_capacity(chunks * (CHUNK_BYTES + 6) + 5);
    for i in 0..chunks {
        body.extend_from_slice(b"64\r\n");
        body.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, CHUNK_BYTES));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    (body, chunks * CHUNK_BYTES)
}

/// Decodes the whole body, returning the payload byte count so nothing is optimised away.
fn decode_all(decoder: &mut ChunkedDecoder, body: &[u8]) -> usize {
    decoder.reset();
    let mut pos = 0;
    let mut payload_bytes = 0;
    while pos < body.len() && !decoder.is_done() {
        let (consumed, data) = decoder.decode(&body[pos..]).expect("valid chunked body");
        payload_bytes += black_box(&body[pos..][data]).len();
        pos += consumed;
    }
    payload_bytes
}

fn bench_chunked(c: &mut Criterion) {
    let (body, payload_bytes) = chunked_body();
    let mut decoder = ChunkedDecoder::new();
    assert_eq!(decode_all(&mut decoder, &body), payload_bytes);
    let mut group = c.benchmark_group("chunked");
    // Throughput of encoded input: that is what the decoder walks through.
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("100_byte_chunks_64KiB_payload", |b| b.iter(|| decode_all(&mut decoder, black_box(&body))));
    group.finish();
}

criterion_group!(benches, bench_parse_head, bench_chunked);
criterion_main!(benches);
