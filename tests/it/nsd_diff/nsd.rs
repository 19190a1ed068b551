//! An NSD server for tests: a child process serving a directory of zone files on a free loopback
//! port, configured as in REFERENCE-SERVERS.md, and stopped by its PID when dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// An NSD child process serving every `*.zone` of a directory on a free loopback port, from a
/// config in its own temporary directory; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Nsd {
    child: Child,
    addr: SocketAddr,
    /// Holds nsd.conf, NSD's state files and its log; removed after the child is gone.
    dir: tempfile::TempDir,
}

impl Nsd {
    /// NSD cannot bind port 0: try a few random ports outside the ephemeral range (where our
    /// own client sockets live), each checked free for UDP and TCP just before NSD binds it.
    /// `settings` are extra lines for the `server:` clause (e.g. `minimal-responses: yes`).
    pub fn start(zones: &Path, settings: &[&str]) -> Nsd {
        let mut seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id();
        let mut last_log = String::new();
        for _ in 0..5 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let port = 20_000 + (seed >> 8) as u16 % 12_000;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if UdpSocket::bind(addr).is_err() || TcpListener::bind(addr).is_err() {
                continue;
            }
            match Nsd::spawn(zones, addr, settings) {
                Ok(nsd) => return nsd,
                Err(log) => last_log = log,
            }
        }
        panic!("NSD did not start on any port tried; its last log:\n{last_log}");
    }

    /// Starts NSD on `addr` and waits until it answers every zone's SOA authoritatively;
    /// on failure returns NSD's log.
    fn spawn(zones: &Path, addr: SocketAddr, settings: &[&str]) -> Result<Nsd, String> {
        let dir = tempfile::tempdir().expect("tempdir for NSD");
        let zone_files = zone_files(zones);
        std::fs::write(
            dir.path().join("nsd.conf"),
            nsd_conf(dir.path(), addr, settings, &zone_files),
        )
        .expect("write nsd.conf");
        let log = File::create(dir.path().join("nsd.log")).expect("create nsd.log");
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(dir.path().join("nsd.conf"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn nsd");
        let mut nsd = Nsd { child, addr, dir };
        let origins: Vec<String> = zone_files
            .iter()
            .map(|(origin, _)| origin.clone())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = nsd.child.try_wait() {
                break;
            }
            if origins.iter().all(|origin| answers_soa(addr, origin)) {
                return Ok(nsd);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(nsd.dir.path().join("nsd.log")).unwrap_or_default();
        Err(log) // dropping `nsd` stops the child
    }

    /// The address NSD serves on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        // SIGTERM lets NSD stop its server processes; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(origin, path)` for every `<origin>.zone` in `dir`, sorted.
pub(crate) fn zone_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut zones: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .expect("read the zones directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let origin = path
                .file_name()?
                .to_str()?
                .strip_suffix(".zone")?
                .to_owned();
            Some((origin, path))
        })
        .collect();
    zones.sort();
    assert!(!zones.is_empty(), "no *.zone in {}", dir.display());
    zones
}

/// The config of REFERENCE-SERVERS.md: everything in `dir`, no privilege drop, and response-rate
/// limiting off (Debian's NSD has it on, which would drop answers to a fast test).
fn nsd_conf(
    dir: &Path,
    addr: SocketAddr,
    settings: &[&str],
    zones: &[(String, PathBuf)],
) -> String {
    let d = dir.display();
    let (ip, port) = (addr.ip(), addr.port());
    let mut conf = format!(
        r#"server:
    ip-address: {ip}@{port}
    port: {port}
    server-count: 1
    username: ""
    chroot: ""
    database: ""
    zonesdir: "{d}"
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
"#
    );
    for setting in settings {
        conf.push_str(&format!("    {setting}\n"));
    }
    conf.push_str("remote-control:\n    control-enable: no\n");
    for (origin, path) in zones {
        conf.push_str(&format!(
            "zone:\n    name: \"{origin}\"\n    zonefile: \"{}\"\n",
            path.display()
        ));
    }
    conf
}

/// True when `server` answers `origin SOA` over UDP with NOERROR and AA (the zone is loaded).
pub(crate) fn answers_soa(server: SocketAddr, origin: &str) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(name) = Name::from_ascii(format!("{origin}.")) else {
        return false;
    };
    let mut query = Message::query();
    query.add_query(Query::query(name, RecordType::SOA));
    let Ok(bytes) = query.to_vec() else {
        return false;
    };
    if socket.send_to(&bytes, server).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let Ok((len, _)) = socket.recv_from(&mut buf) else {
        return false;
    };
    match Message::from_vec(&buf[..len]) {
        Ok(response) => {
            response.metadata.id == query.metadata.id
                && response.metadata.response_code == ResponseCode::NoError
                && response.metadata.authoritative
        }
        Err(_) => false,
    }
}
