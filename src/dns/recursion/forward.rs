//! Forwarding to upstream resolvers: UDP with TCP fallback on truncation, a timeout per
//! attempt, bounded rounds with backoff, failover in order, and a health record per upstream so
//! that one that keeps failing is skipped and probed again later.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle, FirstAnswer};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query, ResponseCode};
use tokio::time::Instant;

use super::RecursionError;
use crate::tasks::{Kind, Tasks};

/// Consecutive failures after which an upstream is skipped.
const FAILURES_BEFORE_DOWN: u32 = 3;
/// How long a failing upstream is skipped before it gets a probe query.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// Pause before the second round over the upstreams; doubles each further round.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The UDP payload we offer upstream (the same value we answer with, RFC 6891).
const UPSTREAM_PAYLOAD: u16 = 1232;

pub struct Forwarder {
    upstreams: Vec<Upstream>,
    /// Per attempt, per upstream.
    timeout: Duration,
    /// Rounds over all upstreams.
    attempts: u32,
    /// Reference point for the health records' millisecond clocks.
    epoch: Instant,
    /// Where the TCP exchanges' drivers run.
    tasks: Tasks,
}

struct Upstream {
    addr: SocketAddr,
    /// Kept for the node's lifetime: hickory's UDP stream picks a fresh source port per query.
    udp: Client<TokioRuntimeProvider>,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `epoch` until which this upstream is skipped (0: never down).
    down_until_ms: AtomicU64,
}

impl Forwarder {
    /// Must run inside the tokio runtime: each upstream's client has its driver task, under
    /// `tasks` (`Kind::Upstream`: cancelled at shutdown).
    pub fn new(addrs: &[SocketAddr], timeout: Duration, attempts: u32, tasks: Tasks) -> Forwarder {
        let upstreams = addrs
            .iter()
            .map(|&addr| {
                let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
                    .with_timeout(Some(timeout))
                    .build();
                let (udp, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
                if let Err(refused) = tasks.spawn(Kind::Upstream, background) {
                    // Only at start, with fewer forwarders than the bound; never left undriven.
                    tokio::spawn(refused.task);
                }
                Upstream {
                    addr,
                    udp,
                    consecutive_failures: AtomicU32::new(0),
                    down_until_ms: AtomicU64::new(0),
                }
            })
            .collect();
        Forwarder {
            upstreams,
            timeout,
            attempts,
            epoch: Instant::now(),
            tasks,
        }
    }

    pub fn describe(&self) -> String {
        let addrs: Vec<String> = self.upstreams.iter().map(|u| u.addr.to_string()).collect();
        addrs.join(", ")
    }

    /// The upstreams' answer to `query`, or the last failure once every round has failed.
    pub async fn resolve(
        &self,
        query: &Query,
        checking_disabled: bool,
        dnssec_ok: bool,
    ) -> Result<Message, RecursionError> {
        let mut last = RecursionError::Unreachable("no upstream configured".into());
        let mut backoff = FIRST_BACKOFF;
        for round in 0..self.attempts {
            if round > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            for upstream in self.in_order() {
                let result = tokio::time::timeout(
                    self.timeout,
                    self.exchange(upstream, query, checking_disabled, dnssec_ok),
                )
                .await
                .unwrap_or(Err(RecursionError::Timeout(upstream.addr)));
                match result {
                    Ok(message) => {
                        upstream.consecutive_failures.store(0, Ordering::Relaxed);
                        upstream.down_until_ms.store(0, Ordering::Relaxed);
                        return Ok(message);
                    }
                    Err(error) => {
                        tracing::debug!(%error, upstream = %upstream.addr, "upstream failed");
                        self.record_failure(upstream);
                        last = error;
                    }
                }
            }
        }
        Err(last)
    }

    /// Healthy upstreams in configured order, then those marked down (so that, when all are
    /// down, they still get probed rather than the query failing without a try).
    fn in_order(&self) -> Vec<&Upstream> {
        let now = self.now_ms();
        let (healthy, down): (Vec<&Upstream>, Vec<&Upstream>) = self
            .upstreams
            .iter()
            .partition(|u| u.down_until_ms.load(Ordering::Relaxed) <= now);
        if healthy.is_empty() { down } else { healthy }
    }

    fn record_failure(&self, upstream: &Upstream) {
        let failures = upstream
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if failures >= FAILURES_BEFORE_DOWN {
            let until = self.now_ms() + DOWN_FOR.as_millis() as u64;
            if upstream.down_until_ms.swap(until, Ordering::Relaxed) == 0 {
                tracing::warn!(upstream = %upstream.addr, failures, "upstream marked down; probing again in {DOWN_FOR:?}");
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    async fn exchange(
        &self,
        upstream: &Upstream,
        query: &Query,
        checking_disabled: bool,
        dnssec_ok: bool,
    ) -> Result<Message, RecursionError> {
        let request = request(query, checking_disabled, dnssec_ok);
        let response = upstream
            .udp
            .send(request.clone())
            .first_answer()
            .await
            .map_err(|e| RecursionError::Exchange(upstream.addr, e.to_string()))?;
        let mut message = response.into_message();
        if message.metadata.truncation {
            message = self.exchange_tcp(upstream.addr, request).await?;
        }
        match message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(message),
            rcode => Err(RecursionError::Rcode(upstream.addr, rcode)),
        }
    }

    /// The same question over TCP, after a truncated UDP answer (RFC 7766).
    async fn exchange_tcp(
        &self,
        addr: SocketAddr,
        request: DnsRequest,
    ) -> Result<Message, RecursionError> {
        let failed = |e: String| RecursionError::Exchange(addr, format!("tcp: {e}"));
        let (connect, handle) = TcpClientStream::new(
            addr,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::default(),
        );
        let stream = connect.await.map_err(|e| failed(e.to_string()))?;
        let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
        let background = self
            .tasks
            .spawn(Kind::Upstream, background)
            .map_err(|refused| failed(refused.to_string()))?;
        let response = client.send(request).first_answer().await;
        background.abort();
        Ok(response.map_err(|e| failed(e.to_string()))?.into_message())
    }
}

fn request(query: &Query, checking_disabled: bool, dnssec_ok: bool) -> DnsRequest {
    let mut message = Message::query();
    message.add_query(query.clone());
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = checking_disabled;
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    edns.set_dnssec_ok(dnssec_ok);
    message.set_edns(edns);
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.edns_payload_len = UPSTREAM_PAYLOAD;
    options.edns_set_dnssec_ok = dnssec_ok;
    options.recursion_desired = true;
    DnsRequest::new(message, options)
}
