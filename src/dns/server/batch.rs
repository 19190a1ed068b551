//! The Linux UDP loop: after the socket turns readable, one recvmmsg takes up to `BATCH`
//! queries, they are answered inline, and one sendmmsg sends the answers.
//!
//! Under load the per-packet loop spends most of its CPU in the recvfrom and sendto system
//! calls, not in the handler (an answer cache hit is a few hundred instructions); batching
//! turns two system calls per query into two per burst. At low load a burst is one query and
//! this costs what the per-packet loop does. Recursion answers that are not ready at once are
//! sent one by one from their tasks (`Udp::send`), as in the per-packet loop.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{MAX_MESSAGE, Udp};
use crate::dns::handler::{DnsHandler, Reply, Transport};
use crate::dns::rrl::ResponseClass;

/// Datagrams per system call: enough that the call's fixed cost is spread thin, few enough
/// that the first query of a burst does not wait long for the last one's answer.
pub(super) const BATCH: usize = 32;

pub(super) async fn serve_udp(udp: Udp, handler: DnsHandler, shutdown: CancellationToken) {
    let mut inbox = Inbox::new();
    let mut outbox = Outbox::new();
    let mut response = Vec::with_capacity(4096);
    let mut truncated = Vec::new();
    let fd = udp.socket.as_raw_fd();
    loop {
        let ready = tokio::select! {
            _ = shutdown.cancelled() => return,
            ready = udp.socket.readable() => ready,
        };
        if let Err(error) = ready {
            // Only when the runtime's I/O driver is gone: nothing more will arrive.
            tracing::debug!(%error, "udp socket no longer readable");
            return;
        }
        // try_io clears the readiness when recvmmsg says EAGAIN, so `readable` waits again.
        let received = match udp.socket.try_io(Interest::READABLE, || inbox.receive(fd)) {
            Ok(received) => received,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                // ICMP errors from earlier sends surface here; the socket itself is fine.
                tracing::debug!(%error, "udp receive error");
                continue;
            }
        };
        for index in 0..received {
            let (packet, src) = inbox.datagram(index);
            // No source (not an IP socket address) or port 0 cannot be answered; port 0 is
            // also a classic reflection trick.
            let Some(src) = src.filter(|src| src.port() != 0) else {
                continue;
            };
            match handler.respond(packet, src, Transport::Udp, &mut response) {
                Reply::Send(class) => outbox.admit(&udp, &response, class, src, &mut truncated),
                Reply::Drop => {}
                Reply::Recurse(pending) => {
                    if let Some((Reply::Send(class), answer)) = udp.recurse(&handler, pending, src)
                    {
                        outbox.admit(&udp, &answer, class, src, &mut truncated);
                    }
                }
            }
        }
        outbox.flush(&udp.socket).await;
    }
}

/// The datagrams of one recvmmsg, and the buffers it writes into.
struct Inbox {
    /// `BATCH` slots of `MAX_MESSAGE` bytes in one allocation: large enough to be mapped
    /// lazily, so only the pages datagrams land in become resident.
    buffers: Vec<u8>,
    /// Length and source of each datagram received, in slot order.
    received: Vec<(usize, Option<SocketAddr>)>,
}

impl Inbox {
    fn new() -> Inbox {
        Inbox {
            buffers: vec![0; BATCH * MAX_MESSAGE],
            received: Vec::with_capacity(BATCH),
        }
    }

    /// Receives whatever is queued, up to `BATCH` datagrams, without blocking.
    fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut slots = self.buffers.chunks_exact_mut(MAX_MESSAGE);
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
        let mut headers = headers(BATCH);
        let messages = recvmmsg(fd, &mut headers, &mut slices, MsgFlags::empty(), None)?;
        self.received.clear();
        self.received
            .extend(messages.map(|message| (message.bytes, message.address.and_then(socket_addr))));
        Ok(self.received.len())
    }

    /// The `index`th datagram of the last `receive` and its source.
    fn datagram(&self, index: usize) -> (&[u8], Option<SocketAddr>) {
        let (len, src) = self.received[index];
        let start = index * MAX_MESSAGE;
        (&self.buffers[start..start + len], src)
    }
}

/// Answers waiting for one sendmmsg.
struct Outbox {
    /// The answers back to back.
    bytes: Vec<u8>,
    /// Where each answer sits in `bytes` and where it goes.
    messages: Vec<(Range<usize>, SocketAddr)>,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            bytes: Vec::with_capacity(BATCH * 512),
            messages: Vec::with_capacity(BATCH),
        }
    }

    /// Queues `response` (of `class`) for `dst` as response rate limiting lets it out (or not).
    fn admit(
        &mut self,
        udp: &Udp,
        response: &[u8],
        class: ResponseClass,
        dst: SocketAddr,
        truncated: &mut Vec<u8>,
    ) {
        if let Some(out) = udp.admit(response, class, dst, truncated) {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(out);
            self.messages.push((start..self.bytes.len(), dst));
        }
    }

    /// Sends everything with one sendmmsg; what it did not take (a full send buffer, or an
    /// error at one destination) goes one datagram at a time, waiting for the socket.
    async fn flush(&mut self, socket: &UdpSocket) {
        if self.messages.is_empty() {
            return;
        }
        let fd = socket.as_raw_fd();
        let sent = match socket.try_io(Interest::WRITABLE, || self.send(fd)) {
            Ok(sent) => sent,
            Err(error) => {
                if error.kind() != io::ErrorKind::WouldBlock {
                    tracing::debug!(%error, "udp sendmmsg error; sending one by one");
                }
                0
            }
        };
        for (range, dst) in &self.messages[sent..] {
            if let Err(error) = socket.send_to(&self.bytes[range.clone()], *dst).await {
                tracing::debug!(%error, %dst, "udp send error");
            }
        }
        self.bytes.clear();
        self.messages.clear();
    }

    /// One sendmmsg of the first `BATCH` messages (there are no more: one answer per query
    /// received); returns how many the kernel took, a prefix.
    fn send(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut slices = [[IoSlice::new(&[])]; BATCH];
        let mut addresses = [None; BATCH];
        for (index, (range, dst)) in self.messages.iter().take(BATCH).enumerate() {
            slices[index] = [IoSlice::new(&self.bytes[range.clone()])];
            addresses[index] = Some(SockaddrStorage::from(*dst));
        }
        let count = self.messages.len().min(BATCH);
        let no_control: [ControlMessage<'_>; 0] = [];
        let mut headers = headers(count);
        let sent = sendmmsg(
            fd,
            &mut headers,
            &slices[..count],
            &addresses[..count],
            no_control,
            MsgFlags::empty(),
        )?;
        // Counting walks the kernel's headers; it reads no address (sendmmsg writes none).
        Ok(sent.count())
    }
}

/// Fresh kernel message headers for `count` datagrams, with room for an IPv4 or IPv6 address
/// each, made per system call: nix's headers hold raw pointers, so they cannot be kept in the
/// loop's future (which must be `Send`), and a reused set would keep the address length the
/// kernel wrote last (nix resets only the buffer pointers), cutting a longer address short.
fn headers(count: usize) -> MultiHeaders<SockaddrStorage> {
    MultiHeaders::preallocate(count, None)
}

/// The standard library's form of a received source address (IPv4, or IPv6 including
/// v4-mapped addresses on a dual-stack socket).
fn socket_addr(storage: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    storage.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}
