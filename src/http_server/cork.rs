//! HTTP/2 over TLS with its writes gathered until the connection's task has done its round.
//!
//! h2 writes a DATA frame of 256 bytes or more (a body it does not copy into its buffer) and
//! then flushes before it buffers the next frame, and rustls sends every write to the socket at
//! once: one system call per response (strace: 20,251 `writev` for 20,000 h2load requests of
//! 1 KiB objects over 50 connections x 10 streams). Corked, h2's writes and flushes only gather
//! the plaintext; the connection's task ([`super::streams::Drive`]) writes it when it has
//! polled the connection and the streams that were ready, so the responses of one round leave
//! together. More than `CORK_LIMIT` bytes gathered are written at once.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Plaintext gathered before it is written regardless (a TLS record's worth).
const CORK_LIMIT: usize = 16 * 1024;

/// The stream hyper reads and writes; `Uncork` is the task's handle on the same stream.
pub(super) struct Corked<T> {
    shared: Arc<Mutex<Cork<T>>>,
}

struct Cork<T> {
    io: T,
    gathered: Vec<u8>,
    /// Bytes of `gathered` already written.
    written: usize,
}

/// Writes what was gathered: the connection's task calls it after each round.
pub(super) trait Uncork: Send {
    fn poll_uncork(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

pub(super) fn cork<T>(io: T) -> (Corked<T>, Box<dyn Uncork>)
where
    T: AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Mutex::new(Cork {
        io,
        gathered: Vec::with_capacity(CORK_LIMIT),
        written: 0,
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

impl<T: AsyncWrite + Unpin> Cork<T> {
    /// Writes everything gathered, then flushes the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.gathered.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.gathered[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.gathered.clear();
        self.written = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<T: AsyncWrite + Unpin + Send> Uncork for Corked<T> {
    fn poll_uncork(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().poll_drain(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Corked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Corked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut cork = self.lock();
        if cork.gathered.len() + buf.len() > CORK_LIMIT {
            ready!(cork.poll_drain(cx))?;
        }
        if buf.len() > CORK_LIMIT {
            return Pin::new(&mut cork.io).poll_write(cx, buf);
        }
        cork.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// Gathered only: the connection's task writes it after its round.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut cork = self.lock();
        ready!(cork.poll_drain(cx))?;
        Pin::new(&mut cork.io).poll_shutdown(cx)
    }
}
