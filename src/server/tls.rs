//! `serve --tls-cert`: one accepted connection wrapped in a rustls server session, read and written through
//! monoio's owned-buffer traits so the connection code serves HTTP and HTTPS alike.

use std::io::{self, Read, Write};
use std::sync::Arc;

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, RawBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

/// Ciphertext read from the socket in one go: a TLS record and its header fit.
const CIPHERTEXT_READ_BYTES: usize = 17 * 1024;

pub struct TlsStream {
    tcp: TcpStream,
    tls: Box<ServerConnection>,
    /// Ciphertext read but not yet handed to rustls (it takes what its buffers allow), from `fed` on. Emptied
    /// and freed once handed over: an idle stream holds no read buffer.
    cipher_in: Vec<u8>,
    fed: usize,
    /// Ciphertext on its way to the socket, reused for every write.
    cipher_out: Vec<u8>,
}

impl TlsStream {
    /// Accepts a TLS session on `tcp` and completes its handshake; `None` if the client did not.
    pub async fn accept(tcp: TcpStream, config: &Arc<ServerConfig>) -> Option<TlsStream> {
        let tls = Box::new(ServerConnection::new(config.clone()).ok()?);
        let mut stream = TlsStream { tcp, tls, cipher_in: Vec::new(), fed: 0, cipher_out: Vec::new() };
        while stream.tls.is_handshaking() {
            stream.send_pending().await.ok()?;
            if !stream.tls.is_handshaking() {
                break;
            }
            if !stream.receive().await.ok()? {
                return None;
            }
        }
        stream.send_pending().await.ok()?;
        Some(stream)
    }

    /// Writes every record rustls has queued.
    async fn send_pending(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.cipher_out.clear();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut self.cipher_out)?;
            }
            let (result, buf) = self.tcp.write_all(std::mem::take(&mut self.cipher_out)).await;
            self.cipher_out = buf;
            result?;
        }
        Ok(())
    }

    /// Hands rustls more ciphertext (reading the socket when none is left) and processes it. False on EOF.
    async fn receive(&mut self) -> io::Result<bool> {
        if self.fed == self.cipher_in.len() {
            let (result, buf) = self.tcp.read(Vec::with_capacity(CIPHERTEXT_READ_BYTES)).await;
            if result? == 0 {
                return Ok(false);
            }
            self.cipher_in = buf;
            self.fed = 0;
        }
        let mut pending = &self.cipher_in[self.fed..];
        let taken = self.tls.read_tls(&mut pending)?;
        self.fed += taken;
        if self.fed == self.cipher_in.len() {
            self.cipher_in = Vec::new();
            self.fed = 0;
        }
        let processed = self.tls.process_new_packets();
        // Whatever rustls has to say (handshake messages, an alert on error) goes out first.
        self.send_pending().await?;
        processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(true)
    }

    /// Copies decrypted bytes into `dst`, receiving records until there are some. 0 at the end of the stream.
    async fn read_plain(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(dst) {
                Ok(n) => return Ok(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // The client closed without close_notify: to HTTP, an end like any other.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(err) => return Err(err),
            }
            if !self.receive().await? {
                return Ok(0);
            }
        }
    }

    /// Encrypts `src` and sends it.
    async fn write_plain(&mut self, src: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(src)?;
        self.send_pending().await?;
        Ok(n)
    }
}

impl AsyncReadRent for TlsStream {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: the buffer is valid for `bytes_total` bytes; we set exactly the bytes written as initialised.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.write_ptr(), buf.bytes_total()) };
        let result = self.read_plain(dst).await;
        if let Ok(n) = result {
            unsafe { buf.set_init(n) };
        }
        (result, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: as in `read`, on the first buffer of the vector.
        let result = match unsafe { RawBuf::new_from_iovec_mut(&mut buf) } {
            Some(mut raw) => {
                let dst = unsafe { std::slice::from_raw_parts_mut(raw.write_ptr(), raw.bytes_total()) };
                self.read_plain(dst).await
            }
            None => Ok(0),
        };
        if let Ok(n) = result {
            unsafe { buf.set_init(n) };
        }
        (result, buf)
    }
}

impl AsyncWriteRent for TlsStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: the buffer's first `bytes_init` bytes are initialised and live as long as `buf`.
        let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let result = self.write_plain(src).await;
        (result, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: as in `write`, on the first buffer of the vector.
        let result = match unsafe { RawBuf::new_from_iovec(&buf) } {
            Some(raw) => {
                let src = unsafe { std::slice::from_raw_parts(raw.read_ptr(), raw.bytes_init()) };
                self.write_plain(src).await
            }
            None => Ok(0),
        };
        (result, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send_pending().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.tls.send_close_notify();
        self.send_pending().await?;
        self.tcp.shutdown().await
    }
}
