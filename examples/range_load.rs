//! A load generator for `bench/slices.sh`: CLIENTS clients, each its own h2 + TLS connection,
//! each asking for one random RANGE-byte range of a LENGTH-byte object after another, for
//! SECONDS seconds; prints one line: `requests BYTES_PER_S... p50_ms p99_ms errors`.
//! h2load and wrk send one fixed request; a player seeking in a video sends a new `Range` each
//! time, which is what a sliced cache is for.
//!
//!   cargo run --release --example range_load -- URL LENGTH [CLIENTS] [SECONDS] [RANGE]
//!
//! The server's certificate is not checked (a loopback benchmark of self-signed servers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any certificate: the servers here are self-signed, on 127.0.0.1.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// xorshift64*: enough randomness for offsets, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What one client did.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    bytes: u64,
    errors: u64,
}

fn usage() -> ! {
    eprintln!("usage: range_load URL LENGTH [CLIENTS] [SECONDS] [RANGE]");
    std::process::exit(2);
}

fn argument<T: std::str::FromStr>(args: &[String], index: usize, default: Option<T>) -> T {
    match args.get(index) {
        None => default.unwrap_or_else(|| usage()),
        Some(text) => text.parse().unwrap_or_else(|_| usage()),
    }
}

async fn client(url: hyper::Uri, length: u64, range: u64, until: Instant, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(builder) = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
    else {
        tally.errors += 1;
        return tally;
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let host = url.host().unwrap_or("127.0.0.1").to_string();
    let port = url.port_u16().unwrap_or(443);
    let (Ok(tcp), Ok(name)) = (
        tokio::net::TcpStream::connect((host.as_str(), port)).await,
        ServerName::try_from(host.clone()),
    ) else {
        tally.errors += 1;
        return tally;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(tls) = connector.connect(name, tcp).await else {
        tally.errors += 1;
        return tally;
    };
    let handshake = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls));
    let Ok((mut sender, connection)) = handshake.await else {
        tally.errors += 1;
        return tally;
    };
    tokio::spawn(connection);
    let mut random = Random(seed | 1);
    while Instant::now() < until {
        let first = random.next() % (length - range + 1);
        let last = first + range - 1;
        let request = Request::get(url.clone())
            .header("range", format!("bytes={first}-{last}"))
            .body(Empty::<Bytes>::new());
        let Ok(request) = request else {
            tally.errors += 1;
            break;
        };
        let started = Instant::now();
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(_) => {
                tally.errors += 1;
                break;
            }
        };
        let status = response.status().as_u16();
        let received = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len() as u64);
        match received {
            Ok(received) if status == 206 && received == range => {
                tally.bytes += range;
                tally.latencies.push(started.elapsed());
            }
            _ => tally.errors += 1,
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: hyper::Uri = argument(&args, 1, None);
    let length: u64 = argument(&args, 2, None);
    let clients: u64 = argument(&args, 3, Some(100));
    let seconds: u64 = argument(&args, 4, Some(10));
    let range: u64 = argument(&args, 5, Some(1 << 20));
    if range == 0 || range > length {
        eprintln!("RANGE must be 1..=LENGTH");
        std::process::exit(2);
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let runs: Vec<_> = (0..clients)
        .map(|i| {
            tokio::spawn(client(
                url.clone(),
                length,
                range,
                until,
                0x9E37_79B9 * (i + 1),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for run in runs {
        if let Ok(tally) = run.await {
            all.latencies.extend(tally.latencies);
            all.bytes += tally.bytes;
            all.errors += tally.errors;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let quantile = |q: f64| {
        let index = ((all.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        all.latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "requests {} req_per_s {:.1} bytes {} p50_ms {:.2} p99_ms {:.2} errors {}",
        all.latencies.len(),
        all.latencies.len() as f64 / elapsed,
        all.bytes,
        quantile(0.5),
        quantile(0.99),
        all.errors
    );
}
