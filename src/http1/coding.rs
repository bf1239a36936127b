//! Content codings, sans IO: a response body compressed with gzip, deflate or br is decoded as it
//! arrives, through a bounded output buffer, and handed on in slices.
//!
//! [`Coding`] is what a head says was applied to its body (`Content-Encoding`, and the transfer
//! codings before a final `chunked`); [`Decoder`] undoes one of them. The caller feeds each
//! payload slice the body framing hands out and gets the decoded bytes back through a callback, at
//! most [`OUT_BYTES`] at a time, so a stream that inflates a thousandfold still costs one bounded
//! buffer. Nothing is kept between calls but the decompressor's own state (its window), and every
//! split point of the input gives the same output.
//!
//! The decompressors are flate2 on miniz_oxide (pure Rust) for deflate, and brotli-decompressor
//! for br; the gzip framing around deflate (RFC 1952: header, CRC-32 and length trailer) is parsed
//! here, because flate2's own gzip readers pull from `io::Read` and buffer on their own.
//!
//! Decisions, after what browsers do:
//! - `deflate` is zlib-wrapped (RFC 1950) as RFC 9110 says, or raw deflate (RFC 1951) when the
//!   first two bytes are no zlib header: some servers send raw deflate and browsers accept it.
//! - `x-gzip` is `gzip` (RFC 9110 section 8.4.1.3).
//! - gzip members may follow one another (RFC 1952 section 2.2); other bytes after the end of a
//!   compressed stream are [`CodingError::Corrupt`], as is a CRC-32, length or Adler-32 that does
//!   not match. The gzip header's own CRC-16 (FHCRC) is skipped, not checked.
//! - A body that ends before its compressed stream does is [`CodingError::Truncated`]; an empty
//!   body is a complete one.
//!
//! Memory, per stream that arrived compressed: the boxed [`Decoder`] (its [`OUT_BYTES`] buffer
//! inline), plus for gzip and deflate miniz_oxide's inflate state (about 43 KiB: the 32 KiB
//! window and its tables), and for br the ring buffer, which grows with the output up to the
//! stream's window (2^WBITS: 4 MiB for the common quality settings, 16 MiB at most; brotli's
//! "large window" extension is refused) plus Huffman tables per meta-block.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Crc, Decompress, FlushDecompress, Status};
use std::fmt;

/// Decoded bytes handed on at once, at most: the decoder's output buffer.
pub const OUT_BYTES: usize = 8 * 1024;

/// What was applied to a response body, as its head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coding {
    /// None at all (or only `identity`).
    #[default]
    Identity,
    Gzip,
    Deflate,
    Br,
    /// A coding this client does not decode (`compress`, `zstd`, an unknown name), or more than
    /// one applied to the same body.
    Unsupported,
}

impl Coding {
    /// The coding a `Content-Encoding` or `Transfer-Encoding` list element names (ASCII
    /// case-insensitive; parameters already removed).
    pub fn named(name: &[u8]) -> Coding {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        if is("identity") {
            Coding::Identity
        } else if is("gzip") || is("x-gzip") {
            Coding::Gzip
        } else if is("deflate") {
            Coding::Deflate
        } else if is("br") {
            Coding::Br
        } else {
            Coding::Unsupported
        }
    }

    /// `self`, then `next` applied on top: one coding at most is decoded, so two are unsupported.
    pub fn then(self, next: Coding) -> Coding {
        match (self, next) {
            (Coding::Identity, coding) | (coding, Coding::Identity) => coding,
            _ => Coding::Unsupported,
        }
    }
}

/// Why a compressed body could not be decoded. Small and `Copy` so the caller can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodingError {
    /// Not valid data of its coding: a bad header, bad compressed data, a checksum or length that
    /// does not match, or bytes after the end of the compressed stream.
    Corrupt,
    /// The body ended before the compressed stream did.
    Truncated,
}

impl fmt::Display for CodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodingError::Corrupt => "corrupt compressed body",
            CodingError::Truncated => "compressed body ended before its compressed stream",
        })
    }
}

impl std::error::Error for CodingError {}

/// Undoes one content coding of one body. Boxed by its owner: it is large, and only compressed
/// streams have one.
pub struct Decoder {
    kind: Kind,
    /// Some compressed byte has arrived: an empty body is complete, a started one must end.
    started: bool,
    /// Decoded bytes on their way to the caller; the bound on what is handed on at once.
    out: [u8; OUT_BYTES],
}

enum Kind {
    Gzip(Gzip),
    Deflate(Deflate),
    /// Boxed again: brotli's state is 3.6 KB inline, which gzip and deflate decoders need not carry.
    Br(Box<Brotli>),
    /// A call failed; its state is dropped and every later call fails the same way.
    Failed,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Gzip(_) => "gzip",
            Kind::Deflate(_) => "deflate",
            Kind::Br(_) => "br",
            Kind::Failed => "failed",
        };
        f.debug_struct("Decoder").field("kind", &kind).field("started", &self.started).finish()
    }
}

impl Decoder {
    /// A decoder for `coding`; `None` for `Identity` and `Unsupported`, which have none.
    pub fn new(coding: Coding) -> Option<Box<Decoder>> {
        let kind = match coding {
            Coding::Gzip => Kind::Gzip(Gzip::new()),
            Coding::Deflate => Kind::Deflate(Deflate::new()),
            Coding::Br => Kind::Br(Box::new(Brotli::new())),
            Coding::Identity | Coding::Unsupported => return None,
        };
        Some(Box::new(Decoder { kind, started: false, out: [0; OUT_BYTES] }))
    }

    /// Decodes the next compressed bytes of the body, handing every decoded stretch (never empty,
    /// never over [`OUT_BYTES`]) to `on_data` in order. After an error, nothing more is decoded.
    pub fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], on_data: &mut F) -> Result<(), CodingError> {
        if input.is_empty() {
            return Ok(());
        }
        self.started = true;
        let out = &mut self.out;
        let result = match &mut self.kind {
            Kind::Gzip(gzip) => gzip.decode(input, out, on_data),
            Kind::Deflate(deflate) => deflate.decode(input, out, on_data),
            Kind::Br(br) => br.decode(input, out, on_data),
            Kind::Failed => Err(CodingError::Corrupt),
        };
        if result.is_err() {
            self.kind = Kind::Failed;
        }
        result
    }

    /// The body ended: Ok if the compressed stream ended with it (or the body was empty).
    pub fn finish(&self) -> Result<(), CodingError> {
        let ended = match &self.kind {
            Kind::Failed => return Err(CodingError::Corrupt),
            _ if !self.started => true,
            Kind::Gzip(gzip) => gzip.part == GzPart::End,
            Kind::Deflate(deflate) => deflate.ended,
            Kind::Br(br) => br.ended,
        };
        if ended { Ok(()) } else { Err(CodingError::Truncated) }
    }
}

/// Inflates `input` into `out`, handing each decoded stretch to `on_data`. Returns the input bytes
/// used and whether the deflate stream ended (then the rest of `input` is not deflate data).
fn inflate<F: FnMut(&[u8])>(
    inflater: &mut Decompress,
    input: &[u8],
    out: &mut [u8],
    on_data: &mut F,
) -> Result<(usize, bool), CodingError> {
    let mut used = 0;
    // Every pass but the last uses input or hands bytes on, and both are finite, so the loop ends.
    loop {
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater.decompress(&input[used..], out, FlushDecompress::None);
        let consumed = (inflater.total_in() - in_before) as usize;
        let produced = (inflater.total_out() - out_before) as usize;
        used += consumed;
        // What was decoded before an error is handed on, as it would have been had the input
        // been split just before the bad bytes.
        if produced > 0 {
            on_data(&out[..produced]);
        }
        if status.map_err(|_| CodingError::Corrupt)? == Status::StreamEnd {
            return Ok((used, true));
        }
        if consumed == 0 && produced == 0 {
            // Nothing more without more input. Not sooner: miniz_oxide may copy its window out
            // in parts, so a pass that took all input and left room in `out` can still have more.
            return Ok((used, false));
        }
    }
}

/// gzip header flags (RFC 1952 section 2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// Where a gzip body stands: a member's header, its deflate data, its trailer, or between members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzPart {
    /// The ten fixed header bytes (ID1 ID2 CM FLG MTIME XFL OS), `at` of them seen.
    Fixed {
        at: u8,
    },
    /// FEXTRA's two-byte little-endian length.
    ExtraLength {
        at: u8,
        length: u16,
    },
    Extra {
        left: u16,
    },
    /// FNAME or FCOMMENT: skipped to its zero byte.
    Text,
    /// FHCRC: two bytes, skipped.
    HeaderCrc {
        at: u8,
    },
    Deflate,
    /// CRC-32 and ISIZE, little-endian, `at` of the eight bytes seen.
    Trailer {
        at: u8,
        crc: u32,
        size: u32,
    },
    /// A member ended: the body may end here, or another member begin.
    End,
}

struct Gzip {
    part: GzPart,
    /// Header flags whose fields are still to come.
    flags: u8,
    inflater: Decompress,
    /// CRC-32 and length (mod 2^32) of the member's decoded bytes, for its trailer.
    crc: Crc,
}

impl Gzip {
    fn new() -> Gzip {
        Gzip { part: GzPart::Fixed { at: 0 }, flags: 0, inflater: Decompress::new(false), crc: Crc::new() }
    }

    fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut [u8], on_data: &mut F) -> Result<(), CodingError> {
        let mut pos = 0;
        // Every pass uses at least one byte, except End -> Fixed, which is followed by one that does.
        while pos < input.len() {
            let byte = input[pos];
            self.part = match self.part {
                GzPart::Fixed { at } => {
                    pos += 1;
                    let valid = match at {
                        0 => byte == 0x1f,
                        1 => byte == 0x8b,
                        // CM 8: deflate, the only method defined.
                        2 => byte == 8,
                        3 => byte & FRESERVED == 0,
                        _ => true,
                    };
                    if !valid {
                        return Err(CodingError::Corrupt);
                    }
                    if at == 3 {
                        self.flags = byte;
                    }
                    if at == 9 { self.next_field() } else { GzPart::Fixed { at: at + 1 } }
                }
                GzPart::ExtraLength { at, length } => {
                    pos += 1;
                    let length = length | u16::from(byte) << (8 * at);
                    match at {
                        0 => GzPart::ExtraLength { at: 1, length },
                        _ if length == 0 => self.next_field(),
                        _ => GzPart::Extra { left: length },
                    }
                }
                GzPart::Extra { left } => {
                    let take = usize::from(left).min(input.len() - pos);
                    pos += take;
                    let left = left - take as u16;
                    if left == 0 { self.next_field() } else { GzPart::Extra { left } }
                }
                GzPart::Text => match memchr::memchr(0, &input[pos..]) {
                    Some(zero) => {
                        pos += zero + 1;
                        self.next_field()
                    }
                    None => {
                        pos = input.len();
                        GzPart::Text
                    }
                },
                GzPart::HeaderCrc { at } => {
                    pos += 1;
                    if at == 1 { self.next_field() } else { GzPart::HeaderCrc { at: 1 } }
                }
                GzPart::Deflate => {
                    let crc = &mut self.crc;
                    let mut checked = |data: &[u8]| {
                        crc.update(data);
                        on_data(data);
                    };
                    let (used, ended) = inflate(&mut self.inflater, &input[pos..], out, &mut checked)?;
                    pos += used;
                    match ended {
                        true => GzPart::Trailer { at: 0, crc: 0, size: 0 },
                        // inflate takes in all it is given until the stream ends.
                        false if pos < input.len() => return Err(CodingError::Corrupt),
                        false => GzPart::Deflate,
                    }
                }
                GzPart::Trailer { at, crc, size } => {
                    pos += 1;
                    let (crc, size) = match at {
                        0..4 => (crc | u32::from(byte) << (8 * at), size),
                        _ => (crc, size | u32::from(byte) << (8 * (at - 4))),
                    };
                    match at {
                        7 if crc != self.crc.sum() || size != self.crc.amount() => return Err(CodingError::Corrupt),
                        7 => GzPart::End,
                        _ => GzPart::Trailer { at: at + 1, crc, size },
                    }
                }
                // Another member: its header must follow.
                GzPart::End => GzPart::Fixed { at: 0 },
            };
        }
        Ok(())
    }

    /// The next header field the flags announce, or the deflate data once there is none.
    fn next_field(&mut self) -> GzPart {
        for (flag, part) in [
            (FEXTRA, GzPart::ExtraLength { at: 0, length: 0 }),
            (FNAME, GzPart::Text),
            (FCOMMENT, GzPart::Text),
            (FHCRC, GzPart::HeaderCrc { at: 0 }),
        ] {
            if self.flags & flag != 0 {
                self.flags &= !flag;
                return part;
            }
        }
        self.inflater.reset(false);
        self.crc.reset();
        GzPart::Deflate
    }
}

/// Whether two bytes open a zlib stream (RFC 1950 section 2.2): method 8 (deflate), a window of
/// at most 32 KiB, and the check bits.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// Where a deflate body stands on its first two bytes, which say zlib-wrapped or raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniff {
    Start,
    /// One byte seen and held back.
    One(u8),
    Decided,
}

struct Deflate {
    sniff: Sniff,
    inflater: Decompress,
    ended: bool,
}

impl Deflate {
    fn new() -> Deflate {
        Deflate { sniff: Sniff::Start, inflater: Decompress::new(true), ended: false }
    }

    fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut [u8], on_data: &mut F) -> Result<(), CodingError> {
        if self.ended {
            return Err(CodingError::Corrupt);
        }
        match self.sniff {
            Sniff::Start if input.len() == 1 => {
                self.sniff = Sniff::One(input[0]);
                return Ok(());
            }
            Sniff::Start => {
                self.inflater.reset(is_zlib_header(input[0], input[1]));
                self.sniff = Sniff::Decided;
            }
            Sniff::One(first) => {
                self.inflater.reset(is_zlib_header(first, input[0]));
                self.sniff = Sniff::Decided;
                self.inflate(&[first], out, on_data)?;
            }
            Sniff::Decided => {}
        }
        self.inflate(input, out, on_data)
    }

    fn inflate<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut [u8], on_data: &mut F) -> Result<(), CodingError> {
        if self.ended {
            return Err(CodingError::Corrupt);
        }
        let (used, ended) = inflate(&mut self.inflater, input, out, on_data)?;
        self.ended = ended;
        // Bytes after the end, or bytes inflate would not take.
        if used < input.len() { Err(CodingError::Corrupt) } else { Ok(()) }
    }
}

struct Brotli {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    ended: bool,
}

impl Brotli {
    fn new() -> Brotli {
        Brotli {
            state: BrotliState::new(StandardAlloc::default(), StandardAlloc::default(), StandardAlloc::default()),
            ended: false,
        }
    }

    fn decode<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut [u8], on_data: &mut F) -> Result<(), CodingError> {
        if self.ended {
            return Err(CodingError::Corrupt);
        }
        let mut available_in = input.len();
        let mut input_offset = 0;
        // NeedsMoreOutput means `out` was filled, so every pass but the last hands on OUT_BYTES.
        loop {
            let mut available_out = out.len();
            let mut output_offset = 0;
            let mut total_out = 0;
            let result = BrotliDecompressStream(
                &mut available_in,
                &mut input_offset,
                input,
                &mut available_out,
                &mut output_offset,
                out,
                &mut total_out,
                &mut self.state,
            );
            if output_offset > 0 {
                on_data(&out[..output_offset]);
            }
            match result {
                BrotliResult::NeedsMoreOutput => continue,
                BrotliResult::NeedsMoreInput => return Ok(()),
                BrotliResult::ResultSuccess => {
                    self.ended = true;
                    // Bytes after the end of the stream.
                    return if available_in == 0 { Ok(()) } else { Err(CodingError::Corrupt) };
                }
                BrotliResult::ResultFailure => return Err(CodingError::Corrupt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use proptest::prelude::*;
    use std::io::Write;

    /// How a test compresses.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Codec {
        Gzip,
        Zlib,
        Raw,
        Br,
    }

    const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Zlib, Codec::Raw, Codec::Br];

    impl Codec {
        fn coding(self) -> Coding {
            match self {
                Codec::Gzip => Coding::Gzip,
                Codec::Zlib | Codec::Raw => Coding::Deflate,
                Codec::Br => Coding::Br,
            }
        }
    }

    /// `pieces` compressed with a flush after each, as a server that sends events as they come.
    fn compress(codec: Codec, pieces: &[&[u8]]) -> Vec<u8> {
        fn run<W: Write>(mut w: W, pieces: &[&[u8]]) -> W {
            for piece in pieces {
                w.write_all(piece).unwrap();
                w.flush().unwrap();
            }
            w
        }
        let level = Compression::default();
        match codec {
            Codec::Gzip => run(GzEncoder::new(Vec::new(), level), pieces).finish().unwrap(),
            Codec::Zlib => run(ZlibEncoder::new(Vec::new(), level), pieces).finish().unwrap(),
            Codec::Raw => run(DeflateEncoder::new(Vec::new(), level), pieces).finish().unwrap(),
            Codec::Br => run(brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22), pieces).into_inner(),
        }
    }

    /// Decodes `body` fed in pieces cut at `splits`; the decoded bytes and the first error (or
    /// `finish`'s verdict). Checks the output bound on the way.
    fn decode_at(coding: Coding, body: &[u8], splits: &[usize]) -> (Vec<u8>, Result<(), CodingError>) {
        let mut decoder = Decoder::new(coding).unwrap();
        let mut decoded = Vec::new();
        let mut on_data = |data: &[u8]| {
            assert!(!data.is_empty() && data.len() <= OUT_BYTES, "{} bytes handed on", data.len());
            decoded.extend_from_slice(data);
        };
        let mut start = 0;
        for &end in splits.iter().filter(|&&s| s > 0 && s < body.len()).chain([&body.len()]) {
            if let Err(error) = decoder.decode(&body[start..end], &mut on_data) {
                assert_eq!(decoder.decode(b"x", &mut on_data), Err(CodingError::Corrupt), "failed stays failed");
                return (decoded, Err(error));
            }
            start = end;
        }
        (decoded, decoder.finish())
    }

    /// One shot, every single split point, and byte by byte all give `want`.
    fn check(what: &str, coding: Coding, body: &[u8], want: (&[u8], Result<(), CodingError>)) {
        let (decoded, verdict) = decode_at(coding, body, &[]);
        assert_eq!((&decoded[..], verdict), want, "{what} ({coding:?}) in one piece");
        for split in 1..body.len() {
            let (decoded, verdict) = decode_at(coding, body, &[split]);
            assert_eq!((&decoded[..], verdict), want, "{what} ({coding:?}) split at {split}");
        }
        let every: Vec<usize> = (1..body.len()).collect();
        let (decoded, verdict) = decode_at(coding, body, &every);
        assert_eq!((&decoded[..], verdict), want, "{what} ({coding:?}) byte by byte");
    }

    const EVENTS: [&[u8]; 3] = [b"id: 1\ndata: one\n\n", b"data: two\n\n", b"event: x\ndata: three\n\n"];

    #[test]
    fn every_codec_decodes_at_every_split_point() {
        let plain = EVENTS.concat();
        for codec in CODECS {
            check("events", codec.coding(), &compress(codec, &EVENTS), (&plain, Ok(())));
        }
    }

    #[test]
    fn each_flushed_piece_decodes_whole_before_the_next_arrives() {
        // What lets a compressed stream's events be timed by the read that brought them.
        for codec in CODECS {
            let mut decoder = Decoder::new(codec.coding()).unwrap();
            let mut encoded_so_far = 0;
            for (i, _) in EVENTS.iter().enumerate() {
                // The stream up to the flush after event i, without its end.
                let prefix = compress_prefix(codec, &EVENTS[..=i]);
                let mut decoded = Vec::new();
                decoder.decode(&prefix[encoded_so_far..], &mut |d: &[u8]| decoded.extend_from_slice(d)).unwrap();
                encoded_so_far = prefix.len();
                assert_eq!(decoded, EVENTS[i], "{codec:?} event {i}");
            }
        }
    }

    /// The bytes a flushing encoder has written after `pieces`, before it is finished.
    fn compress_prefix(codec: Codec, pieces: &[&[u8]]) -> Vec<u8> {
        fn run<W: Write>(mut w: W, pieces: &[&[u8]], take: impl Fn(&mut W) -> Vec<u8>) -> Vec<u8> {
            for piece in pieces {
                w.write_all(piece).unwrap();
                w.flush().unwrap();
            }
            take(&mut w)
        }
        let level = Compression::default();
        match codec {
            Codec::Gzip => run(GzEncoder::new(Vec::new(), level), pieces, |w| std::mem::take(w.get_mut())),
            Codec::Zlib => run(ZlibEncoder::new(Vec::new(), level), pieces, |w| std::mem::take(w.get_mut())),
            Codec::Raw => run(DeflateEncoder::new(Vec::new(), level), pieces, |w| std::mem::take(w.get_mut())),
            Codec::Br => {
                run(brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22), pieces, |w| std::mem::take(w.get_mut()))
            }
        }
    }

    #[test]
    fn every_strict_prefix_is_truncated_and_an_empty_body_is_complete() {
        for codec in CODECS {
            let body = compress(codec, &EVENTS);
            for end in 1..body.len() {
                let (_, verdict) = decode_at(codec.coding(), &body[..end], &[]);
                assert_eq!(verdict, Err(CodingError::Truncated), "{codec:?} prefix {end} of {}", body.len());
            }
            assert_eq!(decode_at(codec.coding(), b"", &[]), (Vec::new(), Ok(())), "{codec:?} empty");
        }
    }

    #[test]
    fn output_is_handed_on_in_bounded_pieces() {
        // 1 MiB of one byte compresses to about a kilobyte: one read inflates to 128 buffers' worth.
        let big = vec![b'a'; 1 << 20];
        for codec in CODECS {
            let body = compress(codec, &[&big]);
            assert!(body.len() < 8 * 1024, "{codec:?}: {} bytes", body.len());
            let (decoded, verdict) = decode_at(codec.coding(), &body, &[]);
            assert_eq!((decoded.len(), verdict), (big.len(), Ok(())), "{codec:?}");
            let (decoded, verdict) = decode_at(codec.coding(), &body, &[body.len() / 2]);
            assert_eq!((decoded == big, verdict), (true, Ok(())), "{codec:?} split");
        }
    }

    /// A gzip member built by hand: `flags` and the fields they announce, raw deflate, trailer.
    fn gzip_member(flags: u8, fields: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut member = vec![0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3];
        member.extend_from_slice(fields);
        member.extend_from_slice(&compress(Codec::Raw, &[plain]));
        let mut crc = Crc::new();
        crc.update(plain);
        member.extend_from_slice(&crc.sum().to_le_bytes());
        member.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        member
    }

    #[test]
    fn gzip_header_fields_are_skipped() {
        let plain = b"data: x\n\n";
        // FEXTRA (5 bytes), FNAME, FCOMMENT, FHCRC, in the order RFC 1952 lays them out.
        let fields = b"\x05\x00ab\x00cdname.txt\x00a comment\x00\x12\x34";
        let all = gzip_member(FEXTRA | FNAME | FCOMMENT | FHCRC, fields, plain);
        check("every field", Coding::Gzip, &all, (plain, Ok(())));
        check("empty extra", Coding::Gzip, &gzip_member(FEXTRA, b"\x00\x00", plain), (plain, Ok(())));
        check("empty name", Coding::Gzip, &gzip_member(FNAME, b"\x00", plain), (plain, Ok(())));
        // FTEXT is a hint only.
        check("FTEXT", Coding::Gzip, &gzip_member(0x01, b"", plain), (plain, Ok(())));
    }

    #[test]
    fn gzip_members_may_follow_one_another() {
        let mut body = gzip_member(0, b"", b"data: a\n\n");
        body.extend_from_slice(&gzip_member(FNAME, b"b\x00", b"data: b\n\n"));
        check("two members", Coding::Gzip, &body, (b"data: a\n\ndata: b\n\n", Ok(())));
    }

    #[test]
    fn corrupt_gzip_is_refused_at_every_split_point() {
        let plain = b"data: x\n\n";
        let good = gzip_member(0, b"", plain);
        let corrupt = |at: usize, byte: u8| {
            let mut body = good.clone();
            body[at] = byte;
            body
        };
        let len = good.len();
        let crc_low = good[len - 8];
        let size_low = good[len - 4];
        for (what, body, decoded) in [
            ("ID1", corrupt(0, 0x1e), &b""[..]),
            ("ID2", corrupt(1, 0x8c), b""),
            ("CM", corrupt(2, 7), b""),
            ("reserved flag", corrupt(3, 0x20), b""),
            ("CRC-32", corrupt(len - 8, crc_low ^ 1), plain),
            ("ISIZE", corrupt(len - 4, size_low ^ 1), plain),
        ] {
            check(what, Coding::Gzip, &body, (decoded, Err(CodingError::Corrupt)));
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        check("bytes after a member", Coding::Gzip, &trailing, (plain, Err(CodingError::Corrupt)));
        // A reserved deflate block type (BTYPE 11).
        let mut bad_block = good[..10].to_vec();
        bad_block.extend_from_slice(&[0x07, 0, 0, 0]);
        check("reserved block type", Coding::Gzip, &bad_block, (b"", Err(CodingError::Corrupt)));
    }

    #[test]
    fn deflate_is_zlib_wrapped_or_raw_by_its_first_two_bytes() {
        assert!(is_zlib_header(0x78, 0x9c) && is_zlib_header(0x78, 0x01) && is_zlib_header(0x78, 0xda));
        assert!(!is_zlib_header(0x78, 0x9d), "check bits");
        assert!(!is_zlib_header(0x88, 28), "a window over 32 KiB, though the check bits fit");
        let plain = EVENTS.concat();
        let zlib = compress(Codec::Zlib, &EVENTS);
        let raw = compress(Codec::Raw, &EVENTS);
        assert!(is_zlib_header(zlib[0], zlib[1]) && !is_zlib_header(raw[0], raw[1]));
        check("zlib", Coding::Deflate, &zlib, (&plain, Ok(())));
        check("raw", Coding::Deflate, &raw, (&plain, Ok(())));
    }

    #[test]
    fn corrupt_deflate_and_br_are_refused_at_every_split_point() {
        let plain = EVENTS.concat();
        let mut bad_adler = compress(Codec::Zlib, &EVENTS);
        *bad_adler.last_mut().unwrap() ^= 1;
        check("Adler-32", Coding::Deflate, &bad_adler, (&plain, Err(CodingError::Corrupt)));
        check("reserved block type", Coding::Deflate, &[0x07, 0, 0, 0], (b"", Err(CodingError::Corrupt)));
        for codec in [Codec::Zlib, Codec::Raw, Codec::Br] {
            let mut trailing = compress(codec, &EVENTS);
            trailing.extend_from_slice(b"junk");
            check("bytes after the end", codec.coding(), &trailing, (&plain, Err(CodingError::Corrupt)));
        }
        check("garbage", Coding::Br, &[0xff; 16], (b"", Err(CodingError::Corrupt)));
    }

    #[test]
    fn coding_names_and_layers() {
        use Coding::*;
        let cases: [(&[u8], Coding); 9] = [
            (b"gzip", Gzip),
            (b"X-GZIP", Gzip),
            (b"Deflate", Deflate),
            (b"br", Br),
            (b"identity", Identity),
            (b"compress", Unsupported),
            (b"zstd", Unsupported),
            (b"gzip2", Unsupported),
            (b"", Unsupported),
        ];
        for (name, coding) in cases {
            assert_eq!(Coding::named(name), coding, "{:?}", String::from_utf8_lossy(name));
        }
        assert_eq!(Identity.then(Gzip), Gzip);
        assert_eq!(Br.then(Identity), Br);
        assert_eq!(Gzip.then(Gzip), Unsupported);
        assert_eq!(Unsupported.then(Identity), Unsupported);
        assert!(Decoder::new(Identity).is_none() && Decoder::new(Unsupported).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Any bytes, flushed in any pieces and read at any split points, come back whole.
        #[test]
        fn any_body_round_trips_at_any_splits(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6),
            splits in prop::collection::vec(0usize..2000, 0..6),
            codec in prop::sample::select(CODECS.to_vec()),
        ) {
            let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let body = compress(codec, &pieces);
            let mut splits = splits;
            splits.sort_unstable();
            let (decoded, verdict) = decode_at(codec.coding(), &body, &splits);
            prop_assert_eq!(decoded, pieces.concat());
            prop_assert_eq!(verdict, Ok(()));
        }

        /// Garbage never panics, and a verdict never depends on how the bytes were split.
        #[test]
        fn garbage_is_refused_the_same_at_any_split(
            body in prop::collection::vec(any::<u8>(), 0..200),
            split in 0usize..200,
            coding in prop::sample::select(vec![Coding::Gzip, Coding::Deflate, Coding::Br]),
        ) {
            let whole = decode_at(coding, &body, &[]).1;
            prop_assert_eq!(decode_at(coding, &body, &[split]).1, whole);
        }
    }
}
