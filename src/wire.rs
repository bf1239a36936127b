//! A client connection's bytes, plain or TLS: the non-blocking read, write and handshake steps over a raw
//! descriptor that the worker's stream attempts and scenario steps share, so neither branches on the protocol.
//! Over TLS 1.3, rustls drives the handshake and the first answer, then hands the keys over and the stream's
//! records are opened by `tls_records` in the caller's buffer (see [`Tls`]).

use std::io;
use std::os::fd::RawFd;

use rustls::{ClientConnection, HandshakeKind, ProtocolVersion};

use crate::recorder::Failure;
use crate::sys;
use crate::tls::{as_user, failure};
use crate::tls_records::{MAX_RECORD_BYTES, MAX_SEAL_BYTES, RecordCut, Records};

/// A read buffer that takes over from rustls must hold a whole record and what follows it.
const HANDOVER_MIN_BUFFER_BYTES: usize = 2 * MAX_RECORD_BYTES;

/// A connection's TLS session: two words in the stream's future, its state boxed.
pub enum Tls {
    /// The handshake and the first answer, driven by rustls.
    Rustls(Box<Handshaking>),
    /// TLS 1.3 after the first answer: the record keys alone, some 700 bytes where rustls kept kilobytes. The
    /// session ticket a reconnect resumes came before the answer, so rustls had it. TLS 1.2 stays with rustls.
    Own(Box<Records>),
    /// A handover that failed: every step fails.
    Lost,
}

/// rustls's connection, and where the socket's byte stream stands in its records: reads for it stop at record
/// ends (`cut`), so that once the answer has begun (`answered`), rustls holds no part of a record and its keys can
/// be taken.
pub struct Handshaking {
    conn: ClientConnection,
    cut: RecordCut,
    answered: bool,
}

impl Tls {
    pub fn new(conn: ClientConnection) -> Tls {
        Tls::Rustls(Box::new(Handshaking { conn, cut: RecordCut::default(), answered: false }))
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self, Tls::Rustls(h) if h.conn.is_handshaking())
    }

    /// The handshake resumed a session.
    pub fn resumed(&self) -> bool {
        matches!(self, Tls::Rustls(h) if h.conn.handshake_kind() == Some(HandshakeKind::Resumed))
    }

    /// rustls is done with everything it read, the answer has begun, and the buffer can hold records: its keys can
    /// go to `Records`.
    fn may_hand_over(&self, buffer_bytes: usize) -> bool {
        let Tls::Rustls(h) = self else { return false };
        let Handshaking { conn, cut, answered } = &**h;
        *answered
            && buffer_bytes >= HANDOVER_MIN_BUFFER_BYTES
            && cut.at_boundary()
            && !conn.is_handshaking()
            && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
            // No plaintext waiting, no close_notify seen, nothing to send.
            && conn.wants_read()
            && !conn.wants_write()
    }

    fn hand_over(&mut self) {
        let Tls::Rustls(h) = std::mem::replace(self, Tls::Lost) else { return };
        // Deprecated for kTLS, where tickets and key updates after the handover would be lost silently; here the
        // ticket has come (it precedes the answer), later ones are skipped, and a key update fails the stream.
        #[allow(deprecated)]
        let secrets = h.conn.dangerous_extract_secrets();
        if let Some(records) = secrets.ok().as_ref().and_then(Records::new) {
            *self = Tls::Own(Box::new(records));
        }
    }
}

/// What the socket must become before a step can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
}

/// What a non-blocking handshake, flush or write came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Done,
    Wait(Want),
    Failed(Failure),
}

/// What one read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Bytes (plaintext, over TLS), copied to the front of the caller's buffer.
    Data(usize),
    /// The connection ended (over TLS with or without `close_notify`: HTTP's framing judges whether the stream
    /// was whole).
    Eof,
    /// Nothing more until the socket is readable again.
    Wait,
    Failed(Failure),
}

/// A non-blocking socket as rustls's `read_tls`/`write_tls` want it. `drained` is set when a read returned less
/// than asked: the socket had no more, and another `recv` would only say `EAGAIN`. Reads stop at the end of the
/// record `cut` is in (a header's 5 bytes, then the body), so rustls never holds part of the next one.
struct FdIo<'c> {
    fd: RawFd,
    drained: bool,
    cut: Option<&'c mut RecordCut>,
}

impl io::Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.cut.as_ref().map_or(buf.len(), |cut| cut.room().min(buf.len()));
        let n = sys::recv(self.fd, &mut buf[..limit])?;
        self.drained = n < limit;
        if let Some(cut) = self.cut.as_deref_mut() {
            cut.took(&buf[..n]);
        }
        Ok(n)
    }
}

impl io::Write for FdIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.fd, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads into `out`: plain bytes from the socket, or over TLS what rustls holds already, else records from the
/// socket (after a TLS 1.3 handover, records opened in `out` itself). `drained` carries over between calls of one
/// wake-up: once a `recv` came back short the socket is empty, and another would only say `EAGAIN`. Over TLS the
/// caller must not wait for readability while [`has_plaintext`] is true: those bytes are no longer in the socket.
/// `user` names whose session a TLS 1.3 ticket arriving now is kept for.
pub fn read(fd: RawFd, tls: Option<&mut Tls>, out: &mut [u8], drained: &mut bool, user: Option<u64>) -> Read {
    let Some(tls) = tls else {
        if *drained {
            return Read::Wait;
        }
        loop {
            return match sys::recv(fd, out) {
                Ok(0) => Read::Eof,
                Ok(n) => {
                    *drained = n < out.len();
                    Read::Data(n)
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Read::Wait,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => Read::Failed(sys::io_failure(&err)),
            };
        }
    };
    if let Tls::Rustls(h) = tls
        && h.answered
        && out.len() >= HANDOVER_MIN_BUFFER_BYTES
    {
        // A key update the server asked to be answered waits inside rustls until the next write, unseen by
        // `wants_write`, though rustls already sends with the new key: an empty write queues the answer, sent here,
        // and the handover waits until it has gone.
        let _ = io::Write::write(&mut h.conn.writer(), &[]);
        if let Step::Failed(failure) = flush(fd, &mut h.conn) {
            return Read::Failed(failure);
        }
    }
    if tls.may_hand_over(out.len()) {
        tls.hand_over();
    }
    match tls {
        Tls::Rustls(h) => {
            let got = read_rustls(fd, &mut h.conn, &mut h.cut, out, drained, user);
            h.answered |= matches!(got, Read::Data(_));
            got
        }
        Tls::Own(records) => read_records(fd, records, out, drained),
        Tls::Lost => Read::Failed(Failure::TlsError),
    }
}

fn read_rustls(
    fd: RawFd,
    tls: &mut ClientConnection,
    cut: &mut RecordCut,
    out: &mut [u8],
    drained: &mut bool,
    user: Option<u64>,
) -> Read {
    loop {
        match io::Read::read(&mut tls.reader(), out) {
            Ok(0) => return Read::Eof,
            Ok(n) => return Read::Data(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Read::Eof,
            Err(_) => return Read::Failed(Failure::TlsError),
        }
        if *drained {
            return Read::Wait;
        }
        // TLS 1.2 is never handed over: its reads need not stop at record ends.
        let may_go = tls.is_handshaking() || tls.protocol_version() == Some(ProtocolVersion::TLSv1_3);
        let mut io = FdIo { fd, drained: false, cut: may_go.then_some(&mut *cut) };
        match tls.read_tls(&mut io) {
            // EOF: rustls notes it, and the reader above says so once the plaintext is drained.
            Ok(0) => {}
            Ok(_) => {
                *drained = io.drained;
                let processed = as_user(user, || tls.process_new_packets());
                // A key update or an alert may be queued: send it if the socket takes it now.
                let sent = flush(fd, tls);
                if let Err(err) = processed {
                    return Read::Failed(failure(&err));
                }
                if let Step::Failed(failure) = sent {
                    return Read::Failed(failure);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Read::Wait,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Read::Failed(sys::io_failure(&err)),
        }
    }
}

/// After the handover: a record left partial by the last read goes to the front of `out`, the socket's bytes
/// after it, and the whole records among them are opened in place. The plaintext is what the caller gets; a
/// read that brought only a session ticket or part of a record reads on.
fn read_records(fd: RawFd, records: &mut Records, out: &mut [u8], drained: &mut bool) -> Read {
    if out.len() < HANDOVER_MIN_BUFFER_BYTES {
        // Only a buffer that holds a whole record and more was handed over to; a smaller one cannot go on.
        return Read::Failed(Failure::TlsError);
    }
    loop {
        if records.closed() {
            return Read::Eof;
        }
        if *drained {
            return Read::Wait;
        }
        let kept = records.partial.len();
        out[..kept].copy_from_slice(&records.partial);
        let n = match sys::recv(fd, &mut out[kept..]) {
            // A record cut short by the end of the connection is dropped: HTTP's framing judges the stream.
            Ok(0) => return Read::Eof,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Read::Wait,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Read::Failed(sys::io_failure(&err)),
        };
        *drained = n < out.len() - kept;
        let whole = &mut out[..kept + n];
        let opened = match records.open(whole) {
            Ok(opened) => opened,
            Err(failure) => return Read::Failed(failure),
        };
        records.partial.clear();
        if !opened.closed && opened.used < whole.len() {
            records.partial.extend_from_slice(&whole[opened.used..]);
        } else if records.partial.capacity() > 0 {
            // Between records a stream owns no buffer.
            records.partial = Vec::new();
        }
        if opened.plain > 0 {
            return Read::Data(opened.plain);
        }
    }
}

/// Writes `parts` (one after the other, as one byte string) from `*written` on, as far as the socket allows: plain, in
/// one `sendmsg` per try, or sealed as records (by rustls, or by `Records` after a handover). `written` counts the
/// bytes taken (plaintext, over TLS), so a call after a wait carries on where this one stopped. Parts let a
/// request's head and its body, shared by every core, go out without being copied together.
pub fn write(fd: RawFd, tls: Option<&mut Tls>, parts: [&[u8]; 2], written: &mut usize) -> Step {
    let total = parts[0].len() + parts[1].len();
    // What is left of each part after the first `written` bytes.
    let rest = |written: usize| {
        let first = &parts[0][written.min(parts[0].len())..];
        let second = &parts[1][written.saturating_sub(parts[0].len())..];
        [first, second]
    };
    let next = |written: usize| {
        let [first, second] = rest(written);
        if first.is_empty() { second } else { first }
    };
    match tls {
        None => {
            while *written < total {
                let [first, second] = rest(*written);
                let slices = [io::IoSlice::new(first), io::IoSlice::new(second)];
                let sent = if second.is_empty() { sys::send(fd, first) } else { sys::send_vectored(fd, &slices) };
                match sent {
                    Ok(n) => *written += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Write),
                    Err(err) => return Step::Failed(sys::io_failure(&err)),
                }
            }
            Step::Done
        }
        Some(Tls::Rustls(h)) => loop {
            let conn = &mut h.conn;
            match flush(fd, conn) {
                Step::Done => {}
                other => return other,
            }
            if *written >= total {
                return Step::Done;
            }
            // Takes what fits under rustls's buffer limit; the flush above makes room for the rest.
            match io::Write::write(&mut conn.writer(), next(*written)) {
                Ok(0) if !conn.wants_write() => return Step::Failed(Failure::TlsError),
                Ok(n) => *written += n,
                Err(_) => return Step::Failed(Failure::TlsError),
            }
        },
        Some(Tls::Own(records)) => loop {
            while !records.unsent.is_empty() {
                match sys::send(fd, &records.unsent) {
                    Ok(n) => drop(records.unsent.drain(..n)),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Write),
                    Err(err) => return Step::Failed(sys::io_failure(&err)),
                }
            }
            if *written >= total {
                // Sent: the stream keeps no buffer for it.
                records.unsent = Vec::new();
                return Step::Done;
            }
            // A record at a time, sent before the next is sealed: a stream never holds more than one sealed.
            let part = next(*written);
            let part = &part[..part.len().min(MAX_SEAL_BYTES)];
            if let Err(failure) = records.seal(part) {
                return Step::Failed(failure);
            }
            *written += part.len();
        },
        Some(Tls::Lost) => Step::Failed(Failure::TlsError),
    }
}

/// Drives the TLS handshake as far as the socket allows, on behalf of `user` (whose session it may resume and
/// keep).
pub fn handshake(fd: RawFd, tls: &mut Tls, user: Option<u64>) -> Step {
    let Tls::Rustls(h) = tls else { return Step::Done };
    let Handshaking { conn: tls, cut, .. } = &mut **h;
    loop {
        match flush(fd, tls) {
            Step::Done => {}
            other => return other,
        }
        if !tls.is_handshaking() {
            return Step::Done;
        }
        let mut io = FdIo { fd, drained: false, cut: Some(&mut *cut) };
        match tls.read_tls(&mut io) {
            // The server hung up mid-handshake: not a TLS server, or one that gave up on us without an alert.
            Ok(0) => return Step::Failed(Failure::TlsError),
            Ok(_) => {
                if let Err(err) = as_user(user, || tls.process_new_packets()) {
                    // rustls queued an alert saying why; the peer may as well learn it.
                    let _ = flush(fd, tls);
                    return Step::Failed(failure(&err));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Read),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Step::Failed(sys::io_failure(&err)),
        }
    }
}

/// Sends what rustls has queued (handshake messages, records, alerts).
fn flush(fd: RawFd, tls: &mut ClientConnection) -> Step {
    let mut io = FdIo { fd, drained: false, cut: None };
    while tls.wants_write() {
        match tls.write_tls(&mut io) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Write),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Step::Failed(sys::io_failure(&err)),
        }
    }
    Step::Done
}

/// Something waits that is no longer in the socket: plaintext inside rustls, or (either way) the server's
/// close_notify, which the next read reports without touching the socket. After a handover no plaintext waits:
/// records are opened straight into the caller's buffer.
pub fn has_plaintext(tls: &Tls) -> bool {
    match tls {
        Tls::Rustls(h) => !h.conn.wants_read(),
        Tls::Own(records) => records.closed(),
        Tls::Lost => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use rustls::pki_types::ServerName;
    use rustls::{ServerConnection, StreamOwned};

    use super::*;
    use crate::tls_records::testing;

    /// Waits until `fd` can do what a step wants.
    fn wait(fd: RawFd, want: Want) {
        let events = if want == Want::Read { libc::POLLIN } else { libc::POLLOUT };
        let mut poll = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut poll, 1, 5_000) };
    }

    /// Reads until `want` bytes of plaintext came, waiting as `read` asks.
    fn read_exactly(fd: RawFd, tls: &mut Tls, want: usize) -> Vec<u8> {
        let mut out = vec![0; HANDOVER_MIN_BUFFER_BYTES];
        let mut got = Vec::new();
        while got.len() < want {
            let mut drained = false;
            match read(fd, Some(tls), &mut out, &mut drained, None) {
                Read::Data(n) => got.extend_from_slice(&out[..n]),
                Read::Wait => wait(fd, Want::Read),
                other => panic!("{other:?} after {} bytes", got.len()),
            }
        }
        got
    }

    fn write_all(fd: RawFd, tls: &mut Tls, request: &[u8]) {
        let mut written = 0;
        loop {
            match write(fd, Some(tls), [request, &[]], &mut written) {
                Step::Done => return,
                Step::Wait(want) => wait(fd, want),
                Step::Failed(failure) => panic!("{failure:?}"),
            }
        }
    }

    #[test]
    fn a_stream_moves_to_its_own_records_after_the_first_answer_and_reads_and_writes_on() {
        // Also: the server's key update asked for an answer before the answer began, so the handover waits for it.
        let (client, server) = testing::configs(None);
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        // The server's records leave in pieces of 7 bytes, so records arrive split across reads.
        let events: Vec<u8> = (0..200).flat_map(|i| format!("data: event {i}\n\n").into_bytes()).collect();
        let expected = events.clone();
        let serving = std::thread::spawn(move || {
            let mut tls = StreamOwned::new(ServerConnection::new(server).unwrap(), theirs);
            let mut request = [0; 6];
            tls.read_exact(&mut request).unwrap();
            assert_eq!(&request, b"first\n");
            // A key update the client must answer before the handover, or "again" below would not decrypt here.
            tls.conn.refresh_traffic_keys().unwrap();
            tls.write_all(b"head\n").unwrap();
            for event in events.chunks(100) {
                tls.conn.writer().write_all(event).unwrap();
                let mut records = Vec::new();
                tls.conn.write_tls(&mut records).unwrap();
                for piece in records.chunks(7) {
                    tls.sock.write_all(piece).unwrap();
                }
            }
            tls.read_exact(&mut request).unwrap();
            assert_eq!(&request, b"again\n");
            tls.conn.send_close_notify();
            tls.flush().unwrap();
        });
        let fd = ours.as_raw_fd();
        let conn = ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
        let mut tls = Tls::new(conn);
        loop {
            match handshake(fd, &mut tls, None) {
                Step::Done => break,
                Step::Wait(want) => wait(fd, want),
                Step::Failed(failure) => panic!("{failure:?}"),
            }
        }
        write_all(fd, &mut tls, b"first\n");
        assert_eq!(read_exactly(fd, &mut tls, 5), b"head\n");
        assert!(matches!(tls, Tls::Rustls(_)), "rustls reads the first answer");
        assert_eq!(read_exactly(fd, &mut tls, expected.len()), expected);
        assert!(matches!(tls, Tls::Own(_)), "the keys were handed over");
        write_all(fd, &mut tls, b"again\n");
        let mut out = vec![0; HANDOVER_MIN_BUFFER_BYTES];
        loop {
            match read(fd, Some(&mut tls), &mut out, &mut false, None) {
                Read::Eof => break,
                Read::Wait => wait(fd, Want::Read),
                other => panic!("{other:?} where close_notify was due"),
            }
        }
        serving.join().unwrap();
        let Tls::Own(records) = &tls else { unreachable!() };
        assert!(records.partial.capacity() == 0 && records.unsent.capacity() == 0, "no buffer kept between records");
    }
}
