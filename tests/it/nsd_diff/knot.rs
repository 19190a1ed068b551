//! A Knot DNS server for tests: a child process serving a directory of zone files on a free
//! loopback port, configured as in REFERENCE-SERVERS.md, and stopped by its PID when dropped.
//! The twin of `nsd.rs`, for the zone-file differential test (`zone_diff.rs`).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::nsd::{answers_soa, zone_files};

/// A knotd child process serving every `*.zone` of a directory on a free loopback port, with its
/// config, journal and timer databases in its own temporary directory; stopped (SIGTERM, then
/// SIGKILL) when dropped.
///
/// Knot loads zone files with its default `semantic-checks: off`: only the mandatory checks
/// (SOA present, CNAME alone at its name, nothing below a DNAME...) stop a zone from loading;
/// the optional ones that kzonecheck also runs (NS at the apex, glue, DNSSEC) only log.
/// A relative `$INCLUDE` is read relative to the including file. AXFR is allowed from
/// 127.0.0.1, so that a test can list what Knot loaded (`kdig AXFR`).
pub struct Knot {
    child: Child,
    addr: SocketAddr,
    /// Holds knot.conf, Knot's databases, its control socket and its log; removed after the
    /// child is gone.
    dir: tempfile::TempDir,
}

impl Knot {
    /// Like NSD, Knot is given a port, not 0: try a few random ports outside the ephemeral range
    /// (other than NSD's, so that both can start at once), each checked free for UDP and TCP
    /// just before Knot binds it.
    pub fn start(zones: &Path) -> Knot {
        let mut seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().rotate_left(16);
        let mut last_log = String::new();
        for _ in 0..5 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let port = 12_000 + (seed >> 8) as u16 % 8_000;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if UdpSocket::bind(addr).is_err() || TcpListener::bind(addr).is_err() {
                continue;
            }
            match Knot::spawn(zones, addr) {
                Ok(knot) => return knot,
                Err(log) => last_log = log,
            }
        }
        panic!("Knot did not start on any port tried; its last log:\n{last_log}");
    }

    /// Starts knotd on `addr` and waits until it answers every zone's SOA authoritatively;
    /// on failure returns Knot's log.
    fn spawn(zones: &Path, addr: SocketAddr) -> Result<Knot, String> {
        let dir = tempfile::tempdir().expect("tempdir for Knot");
        let zone_files = zone_files(zones);
        std::fs::write(
            dir.path().join("knot.conf"),
            knot_conf(dir.path(), addr, &zone_files),
        )
        .expect("write knot.conf");
        let log = File::create(dir.path().join("knot.log")).expect("create knot.log");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn knotd");
        let mut knot = Knot { child, addr, dir };
        let origins: Vec<String> = zone_files
            .iter()
            .map(|(origin, _)| origin.clone())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = knot.child.try_wait() {
                break;
            }
            if origins.iter().all(|origin| answers_soa(addr, origin)) {
                return Ok(knot);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(knot.log()) // dropping `knot` stops the child
    }

    /// The address Knot serves on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What Knot logged so far (warnings about the zones it loaded among others).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
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

/// The config of REFERENCE-SERVERS.md: everything in `dir`, the zone files read whole and never
/// written back (no journal, no zone file sync), one worker of each kind.
fn knot_conf(dir: &Path, addr: SocketAddr, zones: &[(String, PathBuf)]) -> String {
    let d = dir.display();
    let (ip, port) = (addr.ip(), addr.port());
    let mut conf = format!(
        r#"server:
    listen: {ip}@{port}
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
acl:
  - id: local-transfer
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    acl: local-transfer
zone:
"#
    );
    for (origin, path) in zones {
        conf.push_str(&format!(
            "  - domain: \"{origin}\"\n    file: \"{}\"\n",
            path.display()
        ));
    }
    conf
}
