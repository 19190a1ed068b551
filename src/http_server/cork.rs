//! HTTP/2 over TLS with its writes gathered until the connection's task has done its round.
//!
//! h2 writes a DATA frame of 256 bytes or more (a body it does not copy into its buffer) and
//! then flushes before it buffers the next frame, and rustls sends every write to the socket at
//! once: one system call per response (strace: 20,251 `writev` for 20,000 h2load requests of
//! 1 KiB objects over 50 connections x 10 streams). Corked, h2's writes and flushes only gather
//! the plaintext; the connection's task ([`super::streams::Drive`]) writes it when it has
//! polled the connection and the streams that were ready, so the responses of one round leave
//! together. Writes of `PASS_THROUGH` bytes or more (a large body's frames) are not copied:
//! they go out at once, behind what was gathered, in the same call.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Plaintext gathered at most before it is written regardless (a TLS record's worth).
const CORK_LIMIT: usize = 16 * 1024;
/// Writes at least this large are not copied: they go to the stream at once, after what was
/// gathered and in the same call (a large body's DATA frames, 16 KiB each).
const PASS_THROUGH: usize = 4 * 1024;
/// Slices handed to the stream in one call (h2 writes a buffer and a DATA frame's payload).
const MAX_SLICES: usize = 8;

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

    /// Writes what was gathered and then `bufs`, in one call when the stream takes it all;
    /// the bytes of `bufs` written.
    fn poll_write_through(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            let pending = &self.gathered[self.written..];
            if pending.is_empty() {
                self.gathered.clear();
                self.written = 0;
                return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            slices[0] = IoSlice::new(pending);
            let count = bufs.len().min(MAX_SLICES - 1);
            slices[1..=count].copy_from_slice(&bufs[..count]);
            let pending_len = pending.len();
            let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..=count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n <= pending_len {
                self.written += n;
                continue;
            }
            self.gathered.clear();
            self.written = 0;
            return Poll::Ready(Ok(n - pending_len));
        }
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
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut cork = self.lock();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len < PASS_THROUGH && cork.gathered.len() + len <= CORK_LIMIT {
            for buf in bufs {
                cork.gathered.extend_from_slice(buf);
            }
            return Poll::Ready(Ok(len));
        }
        cork.poll_write_through(cx, bufs)
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
        Pin::new(&mut cork.io).poll_shutdown(cx)
    }
}
