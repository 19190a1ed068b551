//! HTTP/1.x minor versions above 1 read as HTTP/1.1 (RFC 9110 2.5: a recipient treats a higher
//! minor version of a major version it implements as the highest minor version it does). hyper
//! refuses any version but 1.0 and 1.1 with 400, so the first request line of a connection is
//! read before hyper reads it (`Versioned::read_first`): `HTTP/1.2` .. `HTTP/1.9` becomes
//! `HTTP/1.1`, and that connection is served without keep-alive (`Connection: close` on its
//! response), so that no later request of it, which could not be looked at safely, needs the
//! same.
//!
//! Only the request line is ever changed, and only at the start of a connection, where the
//! bytes can be nothing else; a body is never looked at.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The longest first line looked at; a longer one is passed on as it is (hyper answers it).
const MAX_LINE: usize = 16 * 1024 + 64;

/// A connection's stream with its first request line's version settled.
pub(super) struct Versioned<T> {
    inner: T,
    /// The first bytes read, settled, still to be handed on; then nothing.
    first: Vec<u8>,
    handed: usize,
}

impl<T: AsyncRead + Unpin> Versioned<T> {
    /// Reads until the first line is complete (or the client stops sending, or the line is
    /// too long to be a request line); the stream, and whether the line was rewritten.
    pub(super) async fn read_first(mut inner: T) -> io::Result<(Versioned<T>, bool)> {
        let mut first = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = inner.read(&mut chunk).await?;
            first.extend_from_slice(&chunk[..n]);
            if n == 0 || first.contains(&b'\n') || first.len() >= MAX_LINE {
                break;
            }
        }
        let rewritten = settle(&mut first);
        let stream = Versioned {
            inner,
            first,
            handed: 0,
        };
        Ok((stream, rewritten))
    }
}

/// Rewrites a request line ending in `HTTP/1.2` .. `HTTP/1.9` in place; whether it did.
fn settle(first: &mut [u8]) -> bool {
    let Some(end) = first.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = first[..end].strip_suffix(b"\r").unwrap_or(&first[..end]);
    let Some(version) = line.len().checked_sub(8) else {
        return false;
    };
    let tail = &line[version..];
    let is_request = line.first().is_some_and(u8::is_ascii_uppercase)
        && version > 0
        && line[version - 1] == b' ';
    if is_request && tail.starts_with(b"HTTP/1.") && (b'2'..=b'9').contains(&tail[7]) {
        first[version + 7] = b'1';
        return true;
    }
    false
}

impl<T: AsyncRead + Unpin> AsyncRead for Versioned<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.handed < this.first.len() {
            let n = (this.first.len() - this.handed).min(buf.remaining());
            buf.put_slice(&this.first[this.handed..this.handed + n]);
            this.handed += n;
            if this.handed == this.first.len() {
                this.first = Vec::new();
                this.handed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Versioned<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(line: &str) -> (bool, String) {
        let mut bytes = line.as_bytes().to_vec();
        let changed = settle(&mut bytes);
        (changed, String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn higher_minor_versions_read_as_1_1_and_nothing_else_changes() {
        for (line, expect) in [
            (
                "GET / HTTP/1.2\r\nHost: a\r\n",
                (true, "GET / HTTP/1.1\r\nHost: a\r\n"),
            ),
            ("POST /x?y HTTP/1.9\n", (true, "POST /x?y HTTP/1.1\n")),
            ("GET / HTTP/1.1\r\n", (false, "GET / HTTP/1.1\r\n")),
            ("GET / HTTP/1.0\r\n", (false, "GET / HTTP/1.0\r\n")),
            ("GET / HTTP/2.0\r\n", (false, "GET / HTTP/2.0\r\n")),
            (
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                (false, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ),
            ("GET / HTTP/1.2", (false, "GET / HTTP/1.2")),
            ("HTTP/1.2\r\n", (false, "HTTP/1.2\r\n")),
            ("GET /HTTP/1.2\r\n", (false, "GET /HTTP/1.2\r\n")),
            ("", (false, "")),
        ] {
            let (changed, text) = settled(line);
            assert_eq!((changed, text.as_str()), expect, "{line:?}");
        }
    }
}
