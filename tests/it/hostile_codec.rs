//! Response bodies and heads that are legal but unusual: event streams compressed with gzip, deflate (zlib-wrapped
//! and raw) and br, under Content-Length, chunked, close-delimited and `Transfer-Encoding: <coding>, chunked`
//! framing; corrupt, truncated and unsupported codings; `--compressed`; obsolete line folding; heads with many
//! fields. Each answer comes from a scripted server of the test's own, the compressed bytes made here with the same
//! crates the generator decodes with (flate2, brotli), flushed between events so they arrive in separate reads.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use ssebench::report::{Report, render_text};

use crate::util::{failures, run_args, run_n, scripted_server};

/// Three events, one of them with an id and one with a type: each is one dispatch.
const EVENTS: [&[u8]; 3] = [b"id: 1\ndata: one\n\n", b"data: two\n\n", b"event: x\ndata: three\n\n"];

/// How a test compresses a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    /// `deflate` as RFC 9110 defines it: zlib-wrapped.
    Zlib,
    /// `deflate` as some servers send it: raw, which browsers tolerate.
    RawDeflate,
    Br,
}

const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Zlib, Codec::RawDeflate, Codec::Br];

impl Codec {
    /// The coding's name in a head.
    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zlib | Codec::RawDeflate => "deflate",
            Codec::Br => "br",
        }
    }
}

/// The compressed body, one piece per event: each piece ends in a flush, so it decodes whole on its own, and the
/// last one also carries the end of the compressed stream.
fn compressed(codec: Codec, events: &[&[u8]]) -> Vec<Vec<u8>> {
    fn pieces<W: Write>(mut encoder: W, events: &[&[u8]], take: impl Fn(&mut W) -> Vec<u8>) -> (W, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        for event in events {
            encoder.write_all(event).unwrap();
            encoder.flush().unwrap();
            out.push(take(&mut encoder));
        }
        (encoder, out)
    }
    let level = Compression::default();
    let (tail, mut out) = match codec {
        Codec::Gzip => {
            let (e, out) = pieces(GzEncoder::new(Vec::new(), level), events, |e| std::mem::take(e.get_mut()));
            (e.finish().unwrap(), out)
        }
        Codec::Zlib => {
            let (e, out) = pieces(ZlibEncoder::new(Vec::new(), level), events, |e| std::mem::take(e.get_mut()));
            (e.finish().unwrap(), out)
        }
        Codec::RawDeflate => {
            let (e, out) = pieces(DeflateEncoder::new(Vec::new(), level), events, |e| std::mem::take(e.get_mut()));
            (e.finish().unwrap(), out)
        }
        Codec::Br => {
            let encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            let (e, out) = pieces(encoder, events, |e| std::mem::take(e.get_mut()));
            (e.into_inner(), out)
        }
    };
    out.last_mut().unwrap().extend_from_slice(&tail);
    assert!(out.iter().all(|piece| !piece.is_empty()), "every flush wrote bytes");
    out
}

/// How the scripted server frames the compressed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    /// No framing: the body ends when the server closes.
    Close,
    /// `Transfer-Encoding: <coding>, chunked` and no Content-Encoding.
    TransferCoding,
}

const FRAMINGS: [Framing; 4] = [Framing::Length, Framing::Chunked, Framing::Close, Framing::TransferCoding];

/// Writes `pieces` to `conn` 5 ms apart, so each lands in its own read.
fn write_apart(conn: &mut TcpStream, pieces: &[Vec<u8>]) {
    conn.set_nodelay(true).unwrap();
    for piece in pieces {
        std::thread::sleep(Duration::from_millis(5));
        if conn.write_all(piece).is_err() {
            return;
        }
    }
}

/// The response, as the pieces to write: the head (with `extra` header lines), then the body `pieces` framed.
fn response(coding: &str, framing: Framing, extra: &str, pieces: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n{extra}");
    let body: Vec<Vec<u8>> = match framing {
        Framing::Length => {
            let length: usize = pieces.iter().map(Vec::len).sum();
            head += &format!("Content-Encoding: {coding}\r\nContent-Length: {length}\r\n");
            pieces.to_vec()
        }
        Framing::Close => {
            head += &format!("Content-Encoding: {coding}\r\n");
            pieces.to_vec()
        }
        Framing::Chunked | Framing::TransferCoding => {
            head += &match framing {
                Framing::Chunked => format!("Content-Encoding: {coding}\r\nTransfer-Encoding: chunked\r\n"),
                _ => format!("Transfer-Encoding: {coding}, chunked\r\n"),
            };
            let mut chunks: Vec<Vec<u8>> = pieces
                .iter()
                .map(|piece| {
                    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                    chunk.extend_from_slice(piece);
                    chunk.extend_from_slice(b"\r\n");
                    chunk
                })
                .collect();
            chunks.push(b"0\r\n\r\n".to_vec());
            chunks
        }
    };
    head += "\r\n";
    std::iter::once(head.into_bytes()).chain(body).collect()
}

/// A scripted server that answers every request with `pieces`, written apart.
fn serve_pieces(pieces: Vec<Vec<u8>>) -> SocketAddr {
    scripted_server(move |conn, _| write_apart(conn, &pieces)).0
}

/// `streams.compressed` as the JSON report has it.
fn compressed_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(report).unwrap()["streams"]["compressed"].clone()
}

#[test]
fn gzip_deflate_and_br_streams_are_decoded_under_every_framing() {
    for codec in CODECS {
        let pieces = compressed(codec, &EVENTS);
        for framing in FRAMINGS {
            let what = format!("{codec:?} with {framing:?} framing");
            let addr = serve_pieces(response(codec.name(), framing, "", &pieces));
            let report = run_n(addr, 1, 2);
            let streams = &report.figures.streams;
            assert_eq!((streams.completed, streams.failed), (2, 0), "{what}: {:?}", streams.failures);
            assert_eq!(report.figures.events.received, 6, "{what}: every event, counted after decoding");
            let mut want = serde_json::json!({ "gzip": 0, "deflate": 0, "br": 0 });
            want[codec.name()] = 2.into();
            assert_eq!(compressed_json(&report), want, "{what}");
            let text = render_text(&report);
            assert!(text.contains(&format!("{} 2", codec.name())), "{what}: the text report says so:\n{text}");
        }
    }
}

#[test]
fn events_split_across_compressed_pieces_are_counted_once() {
    // Flushes in the middle of events: no piece holds a whole event, and one read may end inside a line.
    let body: Vec<u8> = EVENTS.concat();
    let split: Vec<&[u8]> = body.chunks(4).collect();
    for codec in CODECS {
        let addr = serve_pieces(response(codec.name(), Framing::Chunked, "", &compressed(codec, &split)));
        let report = run_n(addr, 1, 1);
        assert_eq!((report.figures.streams.completed, report.figures.events.received), (1, 3), "{codec:?}");
    }
}

#[test]
fn compressed_flag_sends_accept_encoding_and_without_it_none_is_sent() {
    let pieces = compressed(Codec::Gzip, &EVENTS);
    let (addr, requests) =
        scripted_server(move |conn, _| write_apart(conn, &response("gzip", Framing::Length, "", &pieces)));
    let url = format!("http://{addr}/events");
    let report = run_args(&[&url, "-n", "1", "-c", "1", "--compressed"]);
    let head = requests.recv().unwrap().head;
    assert!(head.contains("\r\nAccept-Encoding: gzip, deflate, br\r\n"), "{head}");
    assert_eq!(report.figures.events.received, 3);
    assert!(render_text(&report).contains("Accept-Encoding: gzip, deflate, br"), "the report shows what was sent");
    // Like curl without --compressed: ask for nothing, and still decode what arrives.
    let report = run_args(&[&url, "-n", "1", "-c", "1"]);
    let head = requests.recv().unwrap().head;
    assert!(!head.to_ascii_lowercase().contains("accept-encoding"), "{head}");
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (1, 3));
}

#[test]
fn a_user_accept_encoding_header_replaces_the_flags() {
    let (addr, requests) = scripted_server(|conn, _| write_apart(conn, &response("gzip", Framing::Close, "", &[])));
    let url = format!("http://{addr}/events");
    run_args(&[&url, "-n", "1", "-c", "1", "--compressed", "-H", "accept-encoding: gzip"]);
    let head = requests.recv().unwrap().head;
    assert!(head.contains("\r\naccept-encoding: gzip\r\n") && !head.contains("deflate"), "{head}");
}

#[test]
fn corrupt_compressed_bodies_are_bad_encoding() {
    let gzip = compressed(Codec::Gzip, &EVENTS).concat();
    // The CRC-32 in the gzip trailer (the last 8 bytes are CRC-32 and length) no longer matches.
    let mut bad_crc = gzip.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xff;
    // Not a gzip member at all.
    let bad_magic = b"\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03".to_vec();
    // A zlib stream whose Adler-32 does not match.
    let mut bad_adler = compressed(Codec::Zlib, &EVENTS).concat();
    *bad_adler.last_mut().unwrap() ^= 0xff;
    // Deflate data with a reserved block type (BTYPE 11).
    let bad_block = vec![0x07, 0x00, 0x00, 0x00];
    let bad_br = vec![0xff; 16];
    // Bytes after the end of a br stream.
    let mut br_trailing = compressed(Codec::Br, &EVENTS).concat();
    br_trailing.extend_from_slice(b"junk");
    let cases = [
        ("gzip", bad_crc),
        ("gzip", bad_magic),
        ("deflate", bad_adler),
        ("deflate", bad_block),
        ("br", bad_br),
        ("br", br_trailing),
    ];
    for (i, (coding, body)) in cases.into_iter().enumerate() {
        let addr = serve_pieces(response(coding, Framing::Length, "", &[body]));
        let report = run_n(addr, 1, 2);
        assert_eq!(failures(&report, "bad_encoding"), 2, "case {i} ({coding}): {:?}", report.figures.streams.failures);
        assert_eq!(report.figures.streams.failed, 2, "case {i}");
        assert_eq!(compressed_json(&report)[coding], 2, "case {i}: it arrived compressed all the same");
    }
}

#[test]
fn unknown_or_stacked_codings_are_unsupported_encoding() {
    let cases = [
        "Content-Encoding: zstd\r\n",
        "Content-Encoding: compress\r\n",
        // Two codings on one body: not decoded (one layer is what servers send).
        "Content-Encoding: gzip, br\r\n",
        "Content-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: compress, chunked\r\n",
    ];
    for extra in cases {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{extra}\r\ndata: x\n\n");
        let addr = serve_pieces(vec![head.into_bytes()]);
        let report = run_n(addr, 1, 2);
        assert_eq!(failures(&report, "unsupported_encoding"), 2, "{extra:?}: {:?}", report.figures.streams.failures);
        assert_eq!(report.figures.events.received, 0, "{extra:?}: nothing parsed from bytes we cannot read");
    }
    // `identity` is no coding at all.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: identity\r\n\r\ndata: x\n\n";
    let report = run_n(serve_pieces(vec![head.as_bytes().to_vec()]), 1, 1);
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (1, 1));
}

#[test]
fn a_compressed_stream_cut_before_its_end_is_a_premature_eof() {
    // Every event arrived whole, but the gzip member never ended: the server (or a proxy) cut the stream.
    let mut pieces = compressed(Codec::Gzip, &EVENTS);
    pieces.pop();
    let addr = serve_pieces(response("gzip", Framing::Close, "", &pieces));
    let report = run_n(addr, 1, 2);
    assert_eq!(failures(&report, "premature_eof"), 2, "{:?}", report.figures.streams.failures);
    assert_eq!(report.figures.events.received, 4, "the events that arrived still count");
}

#[test]
fn a_folded_header_is_unfolded() {
    // RFC 9112 section 5.2: a user agent replaces each obs-fold with a space.
    let head = "HTTP/1.1 200 OK\r\nContent-Type:\r\n text/event-stream;\r\n\tcharset=utf-8\r\nX-Note: a\r\n b\r\n\
                Transfer-Encoding: gzip,\r\n chunked\r\n\r\n";
    let pieces = compressed(Codec::Gzip, &EVENTS);
    let body = response("gzip", Framing::TransferCoding, "", &pieces).split_off(1);
    let addr = serve_pieces(std::iter::once(head.as_bytes().to_vec()).chain(body).collect());
    let report = run_n(addr, 1, 2);
    assert_eq!(
        (report.figures.streams.completed, report.figures.streams.failed),
        (2, 0),
        "{:?}",
        report.figures.streams.failures
    );
    assert_eq!(report.figures.events.received, 6);
}

/// A head with `fields` header fields in all (Content-Type and Connection among them) and an SSE body.
fn head_with_fields(fields: usize, value: &str) -> Vec<u8> {
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n");
    for i in 2..fields {
        head += &format!("X-Field-{i}: {value}\r\n");
    }
    head += "\r\ndata: x\n\n";
    head.into_bytes()
}

#[test]
fn heads_with_80_and_256_fields_are_accepted() {
    for fields in [80, 256] {
        let report = run_n(serve_pieces(vec![head_with_fields(fields, "v")]), 1, 2);
        assert_eq!((report.figures.streams.completed, report.figures.events.received), (2, 2), "{fields} fields");
    }
    // A 60 KiB head, split over many reads: under the 64 KiB bound.
    let big = head_with_fields(60, &"v".repeat(1000));
    let pieces: Vec<Vec<u8>> = big.chunks(7000).map(<[u8]>::to_vec).collect();
    let report = run_n(serve_pieces(pieces), 1, 2);
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (2, 2), "60 KiB head");
}

#[test]
fn heads_over_the_bounds_are_malformed_http() {
    let too_many = head_with_fields(300, "v");
    // 70 fields of 1 KiB: a 70 KiB head, in one write or in many.
    let too_big = head_with_fields(70, &"v".repeat(1024));
    let too_big_pieces: Vec<Vec<u8>> = too_big.chunks(5000).map(<[u8]>::to_vec).collect();
    for (what, pieces) in
        [("300 fields", vec![too_many]), ("70 KiB", vec![too_big]), ("70 KiB in pieces", too_big_pieces)]
    {
        let report = run_n(serve_pieces(pieces), 1, 2);
        assert_eq!(failures(&report, "malformed_http"), 2, "{what}: {:?}", report.figures.streams.failures);
    }
}
