//! HTTP/2 over TLS with its writes gathered until the connection's task has done its round.
//!
//! h2 writes a DATA frame of 256 bytes or more (a body it does not copy into its buffer) and
//! then flushes before it buffers the next frame, and tokio-rustls sends every write to the
//! socket at once: one system call per response (strace: 20,251 `writev` for 20,000 h2load
//! requests of 1 KiB objects over 50 connections x 10 streams), and one per 16 KiB record of a
//! large body (7 per 100 KiB object). Corked, h2's small writes and its flushes only gather the
//! plaintext; writes of `PASS_THROUGH` bytes or more (a large body's frames) are not copied but
//! sealed by rustls at once, behind what was gathered, into its send buffer. The connection's
//! task ([`super::streams::Drive`]) sends the records when it has polled the connection and the
//! streams that were ready, so the responses of one round leave together; a write that finds
//! rustls's send buffer full (64 KiB, its default) sends it first, in one `writev`. For 5,000
//! h2load requests of 100 KiB objects, strace counted 2,142 `writev` instead of 35,150, and the
//! server's CPU per request fell by a quarter or more. A larger buffer (128 KiB to 1 MiB) sent
//! fewer, larger bursts that h2load took more slowly (10-12k instead of 13.5k requests per
//! second), 32 KiB too.

use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

/// Plaintext gathered at most before it is sealed regardless (a TLS record's worth).
const CORK_LIMIT: usize = 16 * 1024;
/// Writes at least this large are not copied into the gathered plaintext: rustls seals them
/// at once, after what was gathered (a large body's DATA frames, 16 KiB each).
const PASS_THROUGH: usize = 4 * 1024;

/// The stream hyper reads and writes; `Uncork` is the task's handle on the same stream.
pub(super) struct Corked<T> {
    shared: Arc<Mutex<Cork<T>>>,
}

struct Cork<T> {
    tls: TlsStream<T>,
    gathered: Vec<u8>,
    /// Bytes of `gathered` already sealed.
    sealed: usize,
}

/// Sends what was gathered: the connection's task calls it after each round.
pub(super) trait Uncork: Send {
    fn poll_uncork(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

pub(super) fn cork<T>(tls: TlsStream<T>) -> (Corked<T>, Box<dyn Uncork>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Mutex::new(Cork {
        tls,
        gathered: Vec::with_capacity(CORK_LIMIT),
        sealed: 0,
    }));
    let uncork = Box::new(Corked {
        shared: Arc::clone(&shared),
    });
    (Corked { shared }, uncork)
}

impl<T> Corked<T> {
    fn lock(&self) -> MutexGuard<'_, Cork<T>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Cork<T> {
    /// Sends every sealed record to the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    /// Seals what was gathered (sending records first while rustls's buffer is full).
    fn poll_seal_gathered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sealed < self.gathered.len() {
            let n = self
                .tls
                .get_mut()
                .1
                .writer()
                .write(&self.gathered[self.sealed..])?;
            if n == 0 {
                ready!(self.poll_send(cx))?;
            }
            self.sealed += n;
        }
        self.gathered.clear();
        self.sealed = 0;
        Poll::Ready(Ok(()))
    }

    /// Seals what was gathered, then (some of) `bufs`; the bytes of `bufs` sealed.
    fn poll_seal(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        ready!(self.poll_seal_gathered(cx))?;
        loop {
            let n = self.tls.get_mut().1.writer().write_vectored(bufs)?;
            if n > 0 || bufs.iter().all(|b| b.is_empty()) {
                return Poll::Ready(Ok(n));
            }
            ready!(self.poll_send(cx))?;
        }
    }

    /// Seals what was gathered and sends every record.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_seal_gathered(cx))?;
        self.poll_send(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Uncork for Corked<T> {
    fn poll_uncork(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().poll_drain(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Corked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().tls).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Corked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut cork = self.lock();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len >= PASS_THROUGH {
            return cork.poll_seal(cx, bufs);
        }
        if cork.gathered.len() + len > CORK_LIMIT {
            ready!(cork.poll_seal_gathered(cx))?;
        }
        for buf in bufs {
            cork.gathered.extend_from_slice(buf);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Gathered only: the connection's task writes it after its round.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut cork = self.lock();
        ready!(cork.poll_drain(cx))?;
        Pin::new(&mut cork.tls).poll_shutdown(cx)
    }
}
