//! TLS 1.3 records once rustls has handed over a connection's keys: the few hundred bytes an HTTPS stream keeps
//! instead of rustls's kilobytes, the sans-IO steps that open records in place in the caller's buffer and seal a
//! request, and the record boundaries of a byte stream, so that rustls never reads past one before the handover.
//!
//! Why our own: rustls 0.23 keeps per connection a 4 KiB receive buffer, its handshake state, both directions'
//! expanded keys and the server's certificate chain, and allocates a `Vec` per received record (measured: 8.0 KB
//! buffered, 3.9 KB unbuffered, before ssebench's own ~0.8 KB). A stream that only reads events needs the receive
//! key, the two IVs and sequence numbers, and the send key's bytes. The cryptography stays ring's (the AEADs
//! rustls itself uses); this module only frames records (RFC 8446 section 5).

use ring::aead::{self, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets};

use crate::recorder::Failure;

/// A record header: content type, legacy version (2 bytes), length (2 bytes).
pub const HEADER_BYTES: usize = 5;
/// The longest protected record body TLS 1.3 allows: 2^14 bytes of plaintext plus 256 (RFC 8446 section 5.2).
pub const MAX_BODY_BYTES: usize = (1 << 14) + 256;
/// The longest whole record: a reader's buffer must hold one, plus room to make progress.
pub const MAX_RECORD_BYTES: usize = HEADER_BYTES + MAX_BODY_BYTES;
/// The most plaintext one sealed record carries.
const MAX_PLAINTEXT_BYTES: usize = 1 << 14;
/// The most plaintext a writer seals before sending it: one record's worth.
pub const MAX_SEAL_BYTES: usize = MAX_PLAINTEXT_BYTES;
const TAG_BYTES: usize = 16;

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const NEW_SESSION_TICKET: u8 = 4;
const CLOSE_NOTIFY: u8 = 0;
const USER_CANCELED: u8 = 90;
/// A handshake message's header: type (1 byte), length (3 bytes).
const HANDSHAKE_HEADER_BYTES: usize = 4;

/// Where a byte stream stands in its TLS records. Before the handover, reads for rustls are cut at record ends
/// (`room`), so when rustls is done with a record it holds no part of the next one and its keys can go.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordCut {
    header: [u8; HEADER_BYTES],
    /// Header bytes seen of the current record; `HEADER_BYTES` while its body is being read.
    header_got: u8,
    body_left: u16,
}

impl RecordCut {
    /// How many bytes may be read before the current record, or the next one's header, ends.
    pub fn room(&self) -> usize {
        if usize::from(self.header_got) == HEADER_BYTES {
            usize::from(self.body_left)
        } else {
            HEADER_BYTES - usize::from(self.header_got)
        }
    }

    /// Moves past `bytes`, the next ones of the stream.
    pub fn took(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let got = usize::from(self.header_got);
            if got < HEADER_BYTES {
                let n = bytes.len().min(HEADER_BYTES - got);
                self.header[got..got + n].copy_from_slice(&bytes[..n]);
                self.header_got += n as u8;
                bytes = &bytes[n..];
                if usize::from(self.header_got) == HEADER_BYTES {
                    self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]);
                    if self.body_left == 0 {
                        self.header_got = 0;
                    }
                }
            } else {
                let n = bytes.len().min(usize::from(self.body_left));
                self.body_left -= n as u16;
                bytes = &bytes[n..];
                if self.body_left == 0 {
                    self.header_got = 0;
                }
            }
        }
    }

    /// Between two records: nothing of one has been read without all of it.
    pub fn at_boundary(&self) -> bool {
        self.header_got == 0
    }
}

/// What [`Records::open`] made of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Plaintext now at the front of the buffer.
    pub plain: usize,
    /// Bytes of whole records used; the rest of the buffer begins a record still to come, unless `closed`.
    pub used: usize,
    /// The server sent `close_notify`: nothing after it counts.
    pub closed: bool,
}

/// A TLS 1.3 connection's state after the handshake, for a client that reads a stream and now and then sends a
/// request.
#[cfg_attr(test, derive(Clone))]
pub struct Records {
    /// Expanded once: every received record needs it.
    rx_key: LessSafeKey,
    rx_iv: [u8; NONCE_LEN],
    rx_seq: u64,
    /// The send key's bytes only: requests are rare, so the key is expanded per request rather than kept expanded
    /// (about 500 bytes) for the stream's life.
    tx_algorithm: &'static aead::Algorithm,
    tx_key: [u8; 32],
    tx_iv: [u8; NONCE_LEN],
    tx_seq: u64,
    /// Bytes of a handshake message (a session ticket) still to skip in the records to come, and the first bytes of
    /// a message header cut by the end of a record (RFC 8446 lets a handshake message split anywhere).
    handshake_left: u32,
    handshake_header: [u8; HANDSHAKE_HEADER_BYTES],
    handshake_header_got: u8,
    closed: bool,
    /// A record begun in one read and not yet whole. Empty, and owning no memory, between records.
    pub partial: Vec<u8>,
    /// Sealed bytes the socket has not taken yet.
    pub unsent: Vec<u8>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("rx_seq", &self.rx_seq).field("tx_seq", &self.tx_seq).finish_non_exhaustive()
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        // The send key is ours to wipe (the receive key is ring's, which keeps no copy of the bytes).
        self.tx_key.fill(0);
        std::hint::black_box(&self.tx_key);
    }
}

/// The ring algorithm, key bytes and IV of one direction's secrets, or `None` for a suite ring does not have.
fn parts(secrets: &ConnectionTrafficSecrets) -> Option<(&'static aead::Algorithm, &[u8], [u8; NONCE_LEN])> {
    let (algorithm, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, key, iv),
        _ => return None,
    };
    Some((algorithm, key.as_ref(), iv.as_ref().try_into().ok()?))
}

/// The nonce of record `seq`: the IV with the sequence number XORed into its last 8 bytes (RFC 8446 section 5.3).
fn nonce(iv: &[u8; NONCE_LEN], seq: u64) -> Nonce {
    let mut bytes = *iv;
    for (b, s) in bytes[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    Nonce::assume_unique_for_key(bytes)
}

impl Records {
    /// The state of a TLS 1.3 connection whose secrets rustls handed over. `None`: a suite ring does not have.
    pub fn new(secrets: &ExtractedSecrets) -> Option<Records> {
        let (rx_seq, rx) = &secrets.rx;
        let (tx_seq, tx) = &secrets.tx;
        let (rx_algorithm, rx_key, rx_iv) = parts(rx)?;
        let (tx_algorithm, tx_bytes, tx_iv) = parts(tx)?;
        let mut tx_key = [0; 32];
        tx_key.get_mut(..tx_bytes.len())?.copy_from_slice(tx_bytes);
        Some(Records {
            rx_key: LessSafeKey::new(UnboundKey::new(rx_algorithm, rx_key).ok()?),
            rx_iv,
            rx_seq: *rx_seq,
            tx_algorithm,
            tx_key,
            tx_iv,
            tx_seq: *tx_seq,
            handshake_left: 0,
            handshake_header: [0; HANDSHAKE_HEADER_BYTES],
            handshake_header_got: 0,
            closed: false,
            partial: Vec::new(),
            unsent: Vec::new(),
        })
    }

    /// The server said `close_notify`.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Opens the whole records at the front of `buf` in place, moving their application data to the front of it.
    /// Session tickets are skipped (the ticket a reconnect resumes came with the handshake, which rustls handled);
    /// a key update ends the connection as a TLS error, since only the record keys were handed over, not the
    /// secret a new key derives from.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Opened, Failure> {
        let (mut at, mut plain) = (0, 0);
        while !self.closed && buf.len() - at >= HEADER_BYTES {
            let header: [u8; HEADER_BYTES] = buf[at..at + HEADER_BYTES].try_into().unwrap_or_default();
            let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if length > MAX_BODY_BYTES {
                return Err(Failure::TlsError);
            }
            let body_at = at + HEADER_BYTES;
            if buf.len() - body_at < length {
                break;
            }
            let body = &mut buf[body_at..body_at + length];
            at = body_at + length;
            // Once records are protected every one is application data on the outside (RFC 8446 section 5); an
            // alert in the clear now is no more the server's than any other unauthenticated byte.
            if header[0] != APPLICATION_DATA {
                return Err(Failure::TlsError);
            }
            let nonce = nonce(&self.rx_iv, self.rx_seq);
            let opened = self.rx_key.open_in_place(nonce, Aad::from(header), body).map_err(|_| Failure::TlsError)?;
            self.rx_seq += 1;
            // The content type is the last non-zero byte; zeros after it are padding.
            let Some(end) = opened.iter().rposition(|&b| b != 0) else { return Err(Failure::TlsError) };
            let content = end;
            match opened[end] {
                APPLICATION_DATA => {
                    buf.copy_within(body_at..body_at + content, plain);
                    plain += content;
                }
                ALERT => self.on_alert(&opened[..content])?,
                HANDSHAKE => self.on_handshake(&opened[..content])?,
                // A change_cipher_spec is refused after the handshake, as anything else unknown.
                _ => return Err(Failure::TlsError),
            }
        }
        Ok(Opened { plain, used: at, closed: self.closed })
    }

    fn on_alert(&mut self, alert: &[u8]) -> Result<(), Failure> {
        match alert {
            [_, CLOSE_NOTIFY] => {
                self.closed = true;
                Ok(())
            }
            // A warning that a close_notify follows.
            [_, USER_CANCELED] => Ok(()),
            _ => Err(Failure::TlsAlert),
        }
    }

    /// Handshake messages after the handshake: session tickets, skipped even when split across records; anything
    /// else (a key update) cannot be followed.
    fn on_handshake(&mut self, mut messages: &[u8]) -> Result<(), Failure> {
        while !messages.is_empty() {
            if self.handshake_left > 0 {
                let skip = messages.len().min(self.handshake_left as usize);
                self.handshake_left -= skip as u32;
                messages = &messages[skip..];
                continue;
            }
            let got = usize::from(self.handshake_header_got);
            let take = messages.len().min(HANDSHAKE_HEADER_BYTES - got);
            self.handshake_header[got..got + take].copy_from_slice(&messages[..take]);
            self.handshake_header_got += take as u8;
            messages = &messages[take..];
            if usize::from(self.handshake_header_got) < HANDSHAKE_HEADER_BYTES {
                break;
            }
            self.handshake_header_got = 0;
            let [kind, a, b, c] = self.handshake_header;
            if kind != NEW_SESSION_TICKET {
                return Err(Failure::TlsError);
            }
            self.handshake_left = u32::from_be_bytes([0, a, b, c]);
        }
        Ok(())
    }

    /// Seals `plain` as application data records onto the end of `unsent` (callers hand at most
    /// [`MAX_SEAL_BYTES`] at a time, so a stream holds at most that much sealed).
    pub fn seal(&mut self, plain: &[u8]) -> Result<(), Failure> {
        let unbound = UnboundKey::new(self.tx_algorithm, &self.tx_key[..self.tx_algorithm.key_len()])
            .map_err(|_| Failure::TlsError)?;
        let key = LessSafeKey::new(unbound);
        for chunk in plain.chunks(MAX_PLAINTEXT_BYTES) {
            let length = (chunk.len() + 1 + TAG_BYTES) as u16;
            let [hi, lo] = length.to_be_bytes();
            let header = [APPLICATION_DATA, 3, 3, hi, lo];
            self.unsent.extend_from_slice(&header);
            let body_at = self.unsent.len();
            self.unsent.extend_from_slice(chunk);
            self.unsent.push(APPLICATION_DATA);
            let nonce = nonce(&self.tx_iv, self.tx_seq);
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(header), &mut self.unsent[body_at..])
                .map_err(|_| Failure::TlsError)?;
            self.unsent.extend_from_slice(tag.as_ref());
            self.tx_seq += 1;
        }
        Ok(())
    }
}

/// TLS 1.3 settings for tests on both sides: a fresh self-signed certificate for `localhost`, trusted by the
/// client, which may hand its keys over.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, ServerConfig, SupportedCipherSuite};

    /// The client's and the server's configs, limited to `suite` if given.
    pub(crate) fn configs(suite: Option<SupportedCipherSuite>) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        let provider = || {
            let mut provider = rustls::crypto::ring::default_provider();
            if let Some(suite) = suite {
                provider.cipher_suites = vec![suite];
            }
            Arc::new(provider)
        };
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = CertificateDer::from(issued.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(issued.signing_key.serialize_der()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.enable_secret_extraction = true;
        (Arc::new(client), Arc::new(server))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, ServerConnection};

    use super::*;

    /// A client and a server connected through memory, handshake done, the client's keys handed over before the
    /// server's session tickets reach it (they are the first thing the server sends after its handshake).
    fn handed_over(suite: rustls::SupportedCipherSuite) -> (Records, ServerConnection) {
        let (client, server) = testing::configs(Some(suite));
        let mut server = ServerConnection::new(server).unwrap();
        let mut client = ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
        while client.is_handshaking() {
            pass(&mut client, &mut server);
            pass(&mut server, &mut client);
        }
        // The client's Finished reaches the server, which answers with its tickets: those stay in `server`.
        pass(&mut client, &mut server);
        #[allow(deprecated)]
        let secrets = client.dangerous_extract_secrets().unwrap();
        (Records::new(&secrets).unwrap(), server)
    }

    /// Moves what `from` has to send into `to`, and lets `to` process it.
    fn pass<A, B>(from: &mut rustls::ConnectionCommon<A>, to: &mut rustls::ConnectionCommon<B>) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut wire = &wire[..];
        while !wire.is_empty() {
            to.read_tls(&mut wire).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    fn sent(server: &mut ServerConnection) -> Vec<u8> {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        wire
    }

    /// What `open` makes of `wire` when it arrives cut at `split`, kept the way the reader keeps a partial record.
    fn open_split(records: &mut Records, wire: &[u8], split: usize) -> Result<(Vec<u8>, bool), Failure> {
        let mut plaintext = Vec::new();
        for piece in [&wire[..split], &wire[split..]] {
            let mut buf = std::mem::take(&mut records.partial);
            buf.extend_from_slice(piece);
            let opened = records.open(&mut buf)?;
            plaintext.extend_from_slice(&buf[..opened.plain]);
            records.partial = buf[opened.used..].to_vec();
        }
        Ok((plaintext, records.closed()))
    }

    #[test]
    fn events_come_out_whole_at_every_split_point_with_tickets_skipped() {
        for suite in [
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ] {
            let (records, mut server) = handed_over(suite);
            let mut wire = sent(&mut server);
            assert!(!wire.is_empty(), "the server's session tickets come first");
            server.writer().write_all(b"data: one\n\n").unwrap();
            wire.extend(sent(&mut server));
            server.writer().write_all(b"data: two\n\n").unwrap();
            server.send_close_notify();
            wire.extend(sent(&mut server));
            for split in 0..=wire.len() {
                let mut records = records.clone();
                let (plaintext, closed) = open_split(&mut records, &wire, split).unwrap();
                assert_eq!(plaintext, b"data: one\n\ndata: two\n\n", "{suite:?} split at {split}");
                assert!(closed);
                assert!(records.partial.is_empty());
            }
        }
    }

    #[test]
    fn a_tampered_record_or_a_key_update_is_a_tls_error() {
        let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
        let (mut records, mut server) = handed_over(suite);
        let mut wire = sent(&mut server);
        server.writer().write_all(b"data: x\n\n").unwrap();
        wire.extend(sent(&mut server));
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert_eq!(records.open(&mut wire), Err(Failure::TlsError));

        let (mut records, mut server) = handed_over(suite);
        let mut wire = sent(&mut server);
        server.refresh_traffic_keys().unwrap();
        wire.extend(sent(&mut server));
        assert_eq!(records.open(&mut wire), Err(Failure::TlsError));
    }

    /// `plain` of inner content type `kind` as the server's next record, sealed with the key `records` opens with.
    fn server_record(records: &Records, plain: &[u8], kind: u8) -> Vec<u8> {
        let mut body = [plain, &[kind]].concat();
        let length = (body.len() + TAG_BYTES) as u16;
        let [hi, lo] = length.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, hi, lo];
        let tag = records
            .rx_key
            .seal_in_place_separate_tag(nonce(&records.rx_iv, records.rx_seq), Aad::from(header), &mut body)
            .unwrap();
        [&header[..], &body, tag.as_ref()].concat()
    }

    #[test]
    fn a_protected_fatal_alert_is_counted_as_one_and_one_in_the_clear_is_refused() {
        let (mut records, mut server) = handed_over(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        let mut wire = sent(&mut server);
        let opened = records.open(&mut wire).unwrap();
        assert_eq!(opened, Opened { plain: 0, used: wire.len(), closed: false });
        let mut clear = [ALERT, 3, 3, 0, 2, 2, 0];
        assert_eq!(records.clone().open(&mut clear), Err(Failure::TlsError), "a close_notify anyone could inject");
        let mut alert = server_record(&records, &[2, 40], ALERT);
        assert_eq!(records.open(&mut alert), Err(Failure::TlsAlert));
    }

    #[test]
    fn a_ticket_split_across_records_anywhere_is_skipped() {
        let (records, _) = handed_over(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        let ticket = [&[NEW_SESSION_TICKET, 0, 0, 6][..], b"ticket"].concat();
        for split in 1..ticket.len() {
            let mut records = records.clone();
            let mut wire = server_record(&records, &ticket[..split], HANDSHAKE);
            records.rx_seq += 1;
            wire.extend(server_record(&records, &ticket[split..], HANDSHAKE));
            records.rx_seq += 1;
            wire.extend(server_record(&records, b"data: x\n\n", APPLICATION_DATA));
            records.rx_seq -= 2;
            let opened = records.open(&mut wire).unwrap();
            assert_eq!(&wire[..opened.plain], b"data: x\n\n", "split at {split}");
        }
    }

    #[test]
    fn a_sealed_request_reads_back_at_the_server() {
        let (mut records, mut server) = handed_over(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        let request = vec![b'r'; MAX_PLAINTEXT_BYTES + 100];
        records.seal(&request).unwrap();
        records.seal(b"second").unwrap();
        let mut wire = &records.unsent[..];
        while !wire.is_empty() {
            server.read_tls(&mut wire).unwrap();
            server.process_new_packets().unwrap();
        }
        let mut got = Vec::new();
        let _ = server.reader().read_to_end(&mut got);
        assert_eq!(got, [&request[..], b"second"].concat());
    }

    #[test]
    fn an_oversized_or_foreign_record_is_refused() {
        let (mut records, _) = handed_over(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        let mut huge = [APPLICATION_DATA, 3, 3, 0xff, 0xff];
        assert_eq!(records.open(&mut huge), Err(Failure::TlsError));
        let mut foreign = [HANDSHAKE, 3, 3, 0, 1, 0];
        assert_eq!(records.open(&mut foreign), Err(Failure::TlsError));
        // Part of a record: nothing used yet.
        let mut part = [APPLICATION_DATA, 3, 3, 0, 40, 1, 2];
        assert_eq!(records.open(&mut part), Ok(Opened { plain: 0, used: 0, closed: false }));
    }

    #[test]
    fn a_cut_stops_at_every_record_end_whatever_the_read_sizes() {
        // Records of 3, 0 and 2 body bytes.
        let stream = [23, 3, 3, 0, 3, 1, 2, 3, 23, 3, 3, 0, 0, 23, 3, 3, 0, 2, 9, 9];
        let ends = [8, 13, 20];
        for step in 1..=stream.len() {
            let mut cut = RecordCut::default();
            let mut at = 0;
            let mut boundaries = Vec::new();
            while at < stream.len() {
                let n = cut.room().min(step).min(stream.len() - at);
                assert!(n > 0);
                cut.took(&stream[at..at + n]);
                at += n;
                if cut.at_boundary() {
                    boundaries.push(at);
                }
            }
            assert_eq!(boundaries, ends, "reads of up to {step} bytes");
        }
    }
}
