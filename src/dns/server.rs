//! DNS listeners: bind UDP sockets and TCP listeners, hand them to hickory-server's `Server`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use super::handler::DnsHandler;

/// Bound DNS sockets, UDP and TCP on the same port for each configured address.
pub struct DnsListeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

/// Kernel receive buffer for UDP sockets: absorbs bursts while workers catch up.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// How often to retry when port 0 gave a UDP port whose TCP twin is taken.
const PORT_ATTEMPTS: usize = 16;

impl DnsListeners {
    /// Binds every address; with port 0 the OS picks one port that is then used for both UDP and
    /// TCP, so that one printed address serves both.
    pub async fn bind(addrs: &[SocketAddr]) -> io::Result<DnsListeners> {
        let mut listeners = DnsListeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr)?;
            listeners.udp.push(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Starts serving on every socket; the returned server stops on its shutdown token.
    pub fn serve(self, handler: DnsHandler, tcp_idle_timeout: Duration) -> Server<DnsHandler> {
        let mut server = Server::new(handler);
        for socket in self.udp {
            server.register_socket(socket);
        }
        for listener in self.tcp {
            server.register_listener(listener, tcp_idle_timeout, 65_535);
        }
        server
    }
}

fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = bind_udp(addr)?;
        let port = udp.local_addr()?.port();
        match bind_tcp(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_error = Some(e),
            Err(e) => return Err(with_addr(e, "tcp", addr)),
        }
    }
    Err(last_error.map_or_else(
        || io::Error::other("no free port"),
        |e| with_addr(e, "tcp", addr),
    ))
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
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
