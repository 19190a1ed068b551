//! DNS listeners: UDP sockets (one per core, SO_REUSEPORT) and TCP listeners on the same port,
//! each served by a loop that calls `DnsHandler::respond` inline.
//!
//! hickory-server's `Server` spawns a task per UDP packet and re-encodes through its own
//! response encoder; answering inline from one receive loop per core costs about half the CPU
//! per answer, and lets `wire` truncate at RRset boundaries. On Linux the UDP loop batches its
//! system calls (`batch`: one recvmmsg and one sendmmsg per burst of queries).

#[cfg(target_os = "linux")]
mod batch;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::tasks::{Kind, Tasks};
use tokio_util::sync::CancellationToken;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::handler::{DnsHandler, Pending, Reply, Transport};
use super::rrl::{self, ResponseClass, Rrl, Verdict};
use crate::metrics::ActionLabels;

/// Bound DNS sockets, UDP and TCP on the same port for each configured address.
pub struct DnsListeners {
    /// Several per address (SO_REUSEPORT), so that every core receives.
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

/// How a UDP loop talks to its socket (config `dns.udp_batch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpSyscalls {
    /// One recvmmsg and one sendmmsg per burst of up to `batch::BATCH` datagrams (Linux only).
    Batched,
    /// One recvfrom and one sendto per datagram.
    PerPacket,
}

impl UdpSyscalls {
    /// `Batched` where the OS has recvmmsg/sendmmsg and the config asks for it.
    pub fn from_config(udp_batch: bool) -> UdpSyscalls {
        match udp_batch && cfg!(target_os = "linux") {
            true => UdpSyscalls::Batched,
            false => UdpSyscalls::PerPacket,
        }
    }
}

/// TCP limits (config `dns.tcp_idle_timeout`, `dns.tcp_max_connections`,
/// `dns.tcp_max_connections_per_prefix`, `dns.tcp_ipv4_prefix`, `dns.tcp_ipv6_prefix`).
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Between queries, for a query's body, and for an answer's write.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_prefix: usize,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

/// Kernel receive buffer for UDP sockets: absorbs bursts while the loops catch up.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// How often to retry when port 0 gave a UDP port whose TCP twin is taken.
const PORT_ATTEMPTS: usize = 16;
/// Largest DNS message (a TCP frame's length field is 16 bits; UDP datagrams are smaller).
const MAX_MESSAGE: usize = 65_535;

impl DnsListeners {
    /// Binds every address; with port 0 the OS picks one port that is then used for UDP and
    /// TCP alike, so one printed address serves both.
    pub async fn bind(addrs: &[SocketAddr]) -> io::Result<DnsListeners> {
        let per_address = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut listeners = DnsListeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr, per_address)?;
            listeners.udp.extend(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    /// One address per UDP port (the SO_REUSEPORT siblings share it).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect();
        addrs.dedup();
        addrs
    }

    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Spawns the receive and accept loops into `tasks`; they stop on `shutdown`, TCP
    /// connections after their current query.
    pub fn serve(
        self,
        handler: DnsHandler,
        udp_setup: UdpSetup,
        limits: TcpLimits,
        shutdown: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        for socket in self.udp {
            let udp = Udp {
                socket: Arc::new(socket),
                rrl: udp_setup.rrl.clone(),
                rrl_metric: handler.metrics().rrl.clone(),
                background: udp_setup.background.clone(),
            };
            let (handler, shutdown) = (handler.clone(), shutdown.clone());
            match udp_setup.syscalls {
                #[cfg(target_os = "linux")]
                UdpSyscalls::Batched => tasks.spawn(batch::serve_udp(udp, handler, shutdown)),
                _ => tasks.spawn(serve_udp(udp, handler, shutdown)),
            };
        }
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        let prefixes = Arc::new(crate::prefix_limit::PrefixLimiter::new(
            limits.max_per_prefix,
            limits.ipv4_prefix,
            limits.ipv6_prefix,
        ));
        for listener in self.tcp {
            let (handler, shutdown) = (handler.clone(), shutdown.clone());
            let open = OpenConnections {
                all: Arc::clone(&connections),
                by_prefix: Arc::clone(&prefixes),
            };
            tasks.spawn(serve_tcp(listener, handler, limits, open, shutdown));
        }
    }
}

/// How the UDP listeners run: their syscalls, response rate limiting, and where answers
/// that wait for recursion are finished (`tasks::Kind::Recursion`).
pub struct UdpSetup {
    pub syscalls: UdpSyscalls,
    pub rrl: Option<Arc<Rrl>>,
    pub background: Tasks,
}

/// One UDP socket and what every response sent on it passes through.
#[derive(Clone)]
struct Udp {
    socket: Arc<UdpSocket>,
    rrl: Option<Arc<Rrl>>,
    rrl_metric: Family<ActionLabels, Counter>,
    background: Tasks,
}

/// The portable loop: one recvfrom and one sendto per query.
async fn serve_udp(udp: Udp, handler: DnsHandler, shutdown: CancellationToken) {
    let mut packet = vec![0u8; MAX_MESSAGE];
    let mut response = Vec::with_capacity(4096);
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = udp.socket.recv_from(&mut packet) => received,
        };
        let (len, src) = match received {
            Ok(pair) => pair,
            Err(error) => {
                // ICMP errors from earlier sends surface here; the socket itself is fine.
                tracing::debug!(%error, "udp receive error");
                continue;
            }
        };
        // Port 0 cannot be answered, and is a classic reflection trick.
        if src.port() == 0 {
            continue;
        }
        match handler.respond(&packet[..len], src, Transport::Udp, &mut response) {
            Reply::Recurse(pending) => {
                if let Some((reply, response)) = udp.recurse(&handler, pending, src) {
                    udp.send(reply, &response, src).await;
                }
            }
            reply => udp.send(reply, &response, src).await,
        }
    }
}

impl Udp {
    /// Recursion may wait on upstreams. A cache hit is ready at the first poll and is returned
    /// to be answered inline; anything else continues in a task that sends its own answer, so
    /// the receive loop keeps receiving.
    fn recurse(
        &self,
        handler: &DnsHandler,
        pending: Box<Pending>,
        src: SocketAddr,
    ) -> Option<(Reply, Vec<u8>)> {
        let recursion = handler.clone();
        let mut answer = Box::pin(async move {
            let mut response = Vec::new();
            let reply = recursion.recurse(*pending, &mut response).await;
            (reply, response)
        });
        if let Some(ready) = (&mut answer).now_or_never() {
            return Some(ready);
        }
        let udp = self.clone();
        let finish = async move {
            let (reply, response) = answer.await;
            udp.send(reply, &response, src).await;
        };
        // At the bound the query is dropped, as if lost: the client retries, or asks another
        // server (`edgenode_tasks_refused_total{kind="recursion"}`).
        let _ = self.background.spawn(Kind::Recursion, finish);
        None
    }

    /// Sends a response, unless response rate limiting holds it back (or slips it).
    async fn send(&self, reply: Reply, response: &[u8], dst: SocketAddr) {
        let Reply::Send(class) = reply else {
            return;
        };
        let mut truncated = Vec::new();
        let Some(out) = self.admit(response, class, dst, &mut truncated) else {
            return;
        };
        if let Err(error) = self.socket.send_to(out, dst).await {
            tracing::debug!(%error, %dst, "udp send error");
        }
    }

    /// What response rate limiting lets out for `dst`: the response (of `class`), its
    /// truncated form (built in `truncated`) or nothing.
    fn admit<'a>(
        &self,
        response: &'a [u8],
        class: ResponseClass,
        dst: SocketAddr,
        truncated: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        let verdict = match &self.rrl {
            Some(rrl) => rrl.check(dst.ip(), class),
            None => Verdict::Send,
        };
        match verdict {
            Verdict::Send => Some(response),
            Verdict::Slip if rrl::truncate(response, truncated) => {
                self.count("slipped");
                Some(truncated)
            }
            Verdict::Slip | Verdict::Drop => {
                self.count("dropped");
                None
            }
        }
    }

    fn count(&self, action: &'static str) {
        self.rrl_metric
            .get_or_create(&ActionLabels { action })
            .inc();
    }
}

/// The TCP connection limits shared by every DNS listener: over all clients, and per client
/// network.
struct OpenConnections {
    all: Arc<Semaphore>,
    by_prefix: Arc<crate::prefix_limit::PrefixLimiter>,
}

async fn serve_tcp(
    listener: TcpListener,
    handler: DnsHandler,
    limits: TcpLimits,
    connections: OpenConnections,
    shutdown: CancellationToken,
) {
    let mut open = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, src) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "tcp accept error");
                continue;
            }
        };
        // At a limit a new connection is closed at once rather than queued; the network's
        // own limit first, so that one network never holds the global places.
        let Some(network_permit) = connections.by_prefix.admit(src.ip()) else {
            tracing::debug!(%src, "tcp connection limit of its network reached; closing");
            continue;
        };
        let Ok(permit) = Arc::clone(&connections.all).try_acquire_owned() else {
            tracing::debug!(%src, "tcp connection limit reached; closing");
            continue;
        };
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        open.spawn(async move {
            let _permits = (permit, network_permit);
            if let Err(error) =
                serve_connection(stream, src, &handler, limits.idle_timeout, &shutdown).await
            {
                tracing::debug!(%error, %src, "tcp connection ended");
            }
        });
        while open.try_join_next().is_some() {}
    }
    while open.join_next().await.is_some() {}
}

/// Length-prefixed messages (RFC 1035 section 4.2.2, RFC 7766), answered in order.
async fn serve_connection(
    mut stream: TcpStream,
    src: SocketAddr,
    handler: &DnsHandler,
    idle_timeout: Duration,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut response = Vec::with_capacity(4096);
    let mut frame = Vec::with_capacity(4096);
    loop {
        let len = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            read = tokio::time::timeout(idle_timeout, stream.read_u16()) => match read {
                Err(_) => return Ok(()), // idle: close (RFC 7766 section 6.2.3)
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(result) => usize::from(result?),
            },
        };
        let body = &mut message[..len];
        tokio::time::timeout(idle_timeout, stream.read_exact(body))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "query body not received in time")
            })??;
        let reply = match handler.respond(body, src, Transport::Tcp, &mut response) {
            Reply::Recurse(pending) => handler.recurse(*pending, &mut response).await,
            reply => reply,
        };
        if !matches!(reply, Reply::Send(_)) {
            continue;
        }
        frame.clear();
        frame.extend_from_slice(&(response.len() as u16).to_be_bytes());
        frame.extend_from_slice(&response);
        // A client that does not read its answers is closed after the idle timeout, and at
        // once on shutdown: it must not hold its connection (and its place) for ever.
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            written = tokio::time::timeout(idle_timeout, stream.write_all(&frame)) => {
                written.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "answer not read in time")
                })??;
            }
        }
    }
}

fn bind_pair(addr: SocketAddr, udp_sockets: usize) -> io::Result<(Vec<UdpSocket>, TcpListener)> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let first = bind_udp(addr)?;
        let bound = first.local_addr()?;
        let tcp = match bind_tcp(bound) {
            Ok(tcp) => tcp,
            Err(e) if addr.port() == 0 => {
                last_error = Some(e);
                continue;
            }
            Err(e) => return Err(with_addr(e, "tcp", addr)),
        };
        let mut udp = vec![first];
        for _ in 1..udp_sockets {
            udp.push(bind_udp(bound)?);
        }
        return Ok((udp, tcp));
    }
    Err(last_error.map_or_else(
        || io::Error::other("no free port"),
        |e| with_addr(e, "tcp", addr),
    ))
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Best effort: a smaller buffer still works, it only drops more under bursts.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| with_addr(e, "udp", addr))?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn with_addr(error: io::Error, proto: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot bind DNS {proto} {addr}: {error}"),
    )
}
