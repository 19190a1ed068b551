//! The request handler: parses a query, finds the client's location (EDNS Client Subnet or
//! source address), runs the lookup and encodes the response. Synchronous: an authoritative
//! answer needs no I/O, so the UDP and TCP loops call it inline without spawning a task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, LowerQuery, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::DnsState;
use super::answer_cache::{
    Aged, AnswerCacheOutcome, CacheCounters, Location, OwnedQuery, WireAnswer,
};
use super::client::Client;
use super::lookup::{Answer, resolve};
use super::recursion::Recursion;
use super::rrl::ResponseClass;
use super::steering::NodePool;
pub use super::transport::Transport;
use super::wire;
use crate::metrics::{DnsMetrics, QueryLabels, Region, RegionLabels};

/// Largest response over UDP without EDNS (RFC 1035 section 4.2.1).
const PLAIN_UDP_LIMIT: usize = 512;

/// Answers queries from the current `DnsState`; cheap to clone.
#[derive(Clone)]
pub struct DnsHandler {
    /// Swapped whole on reload; each query works on one consistent snapshot.
    state: Arc<ArcSwap<DnsState>>,
    /// Recursive resolution for allowed clients; None: names outside our zones are REFUSED.
    recursion: Option<Arc<Recursion>>,
    /// The nodes pool entries answer with (the cluster); outlives reloads, read lock-free.
    nodes: Arc<dyn NodePool>,
    metrics: DnsMetrics,
    /// Our largest UDP response (dns.edns_payload).
    edns_payload: u16,
    query_log: bool,
    /// `edgenode_dns_answer_cache_total` by result.
    cache_outcomes: CacheCounters,
}

/// What `respond` decided.
pub enum Reply {
    /// The response is in the output buffer; UDP rate limiting counts it in this class.
    Send(ResponseClass),
    /// Nothing goes back (not a query, or unusable).
    Drop,
    /// A recursive query: `recurse` answers it when the upstreams have.
    Recurse(Box<Pending>),
}

/// A parsed query waiting for recursion, with the response fields already decided.
pub struct Pending {
    request: Request,
    proto: &'static str,
    parts: ResponseParts,
    /// Where the answer goes in the answer cache, when it may (a fresh recursive answer).
    learn: Option<LearnRecursive>,
}

/// The answer cache a recursive answer goes into, and the query it answers.
struct LearnRecursive {
    /// The snapshot the query was checked against: a reload drops its answers.
    state: Arc<DnsState>,
    query: OwnedQuery,
}

/// Response fields settled before the answer is known.
struct ResponseParts {
    metadata: Metadata,
    edns: Option<Edns>,
    client_subnet: Option<ClientSubnet>,
    /// The address geo decisions use: the client subnet's when given, else the source's.
    client_addr: IpAddr,
    client_addr_from_subnet: bool,
}

/// What the slow path tells the answer cache about an authoritative answer it sent.
struct Learned {
    qtype: RecordType,
    rcode: ResponseCode,
    /// The geo region label and `Client::stable_prefix`, when a policy or pool shaped it.
    decision: Option<(Arc<str>, u8)>,
    client_addr: IpAddr,
    from_subnet: bool,
}

impl DnsHandler {
    pub fn new(
        state: Arc<ArcSwap<DnsState>>,
        recursion: Option<Arc<Recursion>>,
        nodes: Arc<dyn NodePool>,
        metrics: DnsMetrics,
        edns_payload: u16,
        query_log: bool,
    ) -> Self {
        Self {
            state,
            recursion,
            nodes,
            cache_outcomes: CacheCounters::new(&metrics),
            metrics,
            edns_payload,
            query_log,
        }
    }

    /// The addresses of `family` of at most `count` healthy cluster nodes nearest `client`,
    /// chosen as DNS steering chooses pool members (`steering::nearest_nodes`); empty when none
    /// qualifies.
    pub fn nearest_nodes(
        &self,
        client: IpAddr,
        family: super::steering::Family,
        count: usize,
    ) -> Vec<IpAddr> {
        let state = self.state.load();
        let mut client = Client::new(client, &state.geo).with_nodes(&*self.nodes);
        super::steering::nearest_nodes(&mut client, family, count)
            .map(|(addrs, _)| addrs)
            .unwrap_or_default()
    }

    /// The DNS metrics this handler counts into.
    pub fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    /// Answers the query in `raw` from `src` into `out`, or hands it to recursion.
    /// Drops what is too short for a header and responses (no replies to replies: reflection).
    /// Repeated authoritative queries are answered from the state's answer cache, byte for
    /// byte what the slow path would send.
    pub fn respond(
        &self,
        raw: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Reply {
        // A dual-stack socket's IPv4 client (`::ffff:a.b.c.d`) is its IPv4 address for every
        // decision: recursion's allow list, GeoIP, the answer cache's client subnet, the log.
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        let state = self.state.load();
        let query = match self.query_log {
            // The log line needs the parsed query: every query takes the slow path.
            true => None,
            false => {
                let recursion_available = self.may_recurse(src);
                state.answers.query(raw, transport, recursion_available)
            }
        };
        let Some(query) = query else {
            return self.respond_slow(&state, raw, src, transport, out).0;
        };
        // Read before the slow path consults the pool: an answer is never newer than its epoch.
        let epoch = self.nodes.epoch();
        if let Some(class) = state.answers.answer(&query, src.ip(), epoch, out) {
            self.cache_outcomes
                .count(&state.answers, AnswerCacheOutcome::Hit);
            return Reply::Send(class);
        }
        let (mut reply, learned) = self.respond_slow(&state, raw, src, transport, out);
        match (learned, &mut reply) {
            (Some(learned), Reply::Send(class)) => {
                let (stored, location) = self.learn(learned, *class, transport, epoch, out);
                state.answers.insert(&query, stored, location);
                self.cache_outcomes
                    .count(&state.answers, AnswerCacheOutcome::Miss);
            }
            // `recurse` counts it once the answer is known.
            (_, Reply::Recurse(pending)) => {
                pending.learn = Some(LearnRecursive {
                    state: arc_swap::Guard::into_inner(state),
                    query: query.to_owned(),
                });
            }
            _ => self
                .cache_outcomes
                .count(&state.answers, AnswerCacheOutcome::Uncacheable),
        }
        reply
    }

    /// Whether `src` may recurse here (the RA bit, and recursion instead of REFUSED).
    fn may_recurse(&self, src: SocketAddr) -> bool {
        self.recursion.as_ref().is_some_and(|r| r.allows(src.ip()))
    }

    /// What the answer cache keeps of a response the slow path just wrote into `out`.
    fn learn(
        &self,
        learned: Learned,
        class: ResponseClass,
        transport: Transport,
        epoch: u64,
        out: &[u8],
    ) -> (WireAnswer, Option<Location>) {
        let labels = QueryLabels {
            proto: transport.as_str(),
            qtype: learned.qtype.into(),
            rcode: rcode_label(learned.rcode),
        };
        let queries = self.metrics.queries.get_or_create(&labels).clone();
        let (region, location) = match learned.decision {
            Some((label, prefix)) => {
                let labels = RegionLabels {
                    region: Region(label),
                };
                let region = self.metrics.geo_decisions.get_or_create(&labels).clone();
                let location = Location {
                    client: learned.client_addr,
                    from_subnet: learned.from_subnet,
                    prefix,
                    epoch,
                };
                (Some(region), Some(location))
            }
            None => (None, None),
        };
        let stored = WireAnswer {
            wire: out.into(),
            class,
            queries,
            region,
        };
        (stored, location)
    }

    /// The full path: hickory parses the query, `lookup::resolve` answers it, `wire` encodes
    /// it. Also returns what the answer cache needs to keep an authoritative answer.
    fn respond_slow(
        &self,
        state: &DnsState,
        raw: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> (Reply, Option<Learned>) {
        let proto = transport.as_str();
        let request = match self.parse_request(raw, src, transport, out) {
            Ok(request) => request,
            Err(reply) => return (reply, None),
        };
        let (mut parts, checked) = self.prepare(&request);
        let query = request.queries.queries().first();
        let mut learned = None;
        let answer = match (checked, query) {
            (Ok(()), Some(query)) => {
                let qtype = query.query_type();
                // Only a recursion candidate pays for the extra zone lookup.
                let may_recurse =
                    parts.metadata.recursion_available && request.metadata.recursion_desired;
                if may_recurse
                    && state
                        .zones
                        .find(query.name(), qtype == RecordType::DS)
                        .is_none()
                {
                    let pending = Pending {
                        request,
                        proto,
                        parts,
                        learn: None,
                    };
                    return (Reply::Recurse(Box::new(pending)), None);
                }
                let (answer, learn) = self.authoritative(state, query, &mut parts);
                learned = Some(learn);
                answer
            }
            (Err(rcode), _) => Answer::error(rcode),
            (Ok(()), None) => Answer::error(ResponseCode::FormErr),
        };
        let class = query.map_or(ResponseClass::Error, |query| {
            ResponseClass::of(&answer, query.original().name(), query.query_type())
        });
        match self.finish(&request, proto, parts, &answer, out) {
            Some(rcode) => {
                // The rcode as sent (BADVERS would differ); only authoritative answers are kept.
                let learned = learned.filter(|l| l.rcode == rcode);
                (Reply::Send(class), learned)
            }
            None => (Reply::Drop, None),
        }
    }

    /// The request in `raw`; else what to reply (nothing, or FORMERR written to `out`).
    fn parse_request(
        &self,
        raw: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Result<Request, Reply> {
        let Ok(header) = Header::read(&mut BinDecoder::new(raw)) else {
            return Err(Reply::Drop);
        };
        if header.metadata.message_type == MessageType::Response {
            return Err(Reply::Drop);
        }
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp | Transport::Https => Protocol::Tcp,
        };
        Request::from_bytes(raw.to_vec(), src, protocol).map_err(|error| {
            tracing::debug!(%error, %src, "malformed query");
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            let answer = Answer::error(ResponseCode::FormErr);
            if wire::encode(out, metadata, None, &answer, None, PLAIN_UDP_LIMIT).is_err() {
                return Reply::Drop;
            }
            self.count(transport.as_str(), RecordType::ZERO, ResponseCode::FormErr);
            Reply::Send(ResponseClass::Error)
        })
    }

    /// The authoritative answer for `query`, with its geo decision counted and its ECS scope
    /// set in `parts`; and what the answer cache needs to keep it.
    fn authoritative<'s>(
        &self,
        state: &'s DnsState,
        query: &LowerQuery,
        parts: &mut ResponseParts,
    ) -> (Answer<'s>, Learned) {
        let qtype = query.query_type();
        let mut client = Client::new(parts.client_addr, &state.geo).with_nodes(&*self.nodes);
        let answer = resolve(&state.zones, query.original().name(), qtype, &mut client);
        let mut decision = None;
        if let Some((label, prefix)) = client.decision.take() {
            set_scope(parts, prefix);
            let region = RegionLabels {
                region: Region(Arc::clone(&label)),
            };
            self.metrics.geo_decisions.get_or_create(&region).inc();
            decision = Some((label, client.stable_prefix));
        }
        let learned = Learned {
            qtype,
            rcode: answer.rcode,
            decision,
            client_addr: parts.client_addr,
            from_subnet: parts.client_addr_from_subnet,
        };
        (answer, learned)
    }

    /// Resolves a query `respond` handed over and encodes the answer into `out`.
    pub async fn recurse(&self, pending: Pending, out: &mut Vec<u8>) -> Reply {
        let Pending {
            request,
            proto,
            mut parts,
            learn,
        } = pending;
        let (Some(recursion), Some(query)) = (&self.recursion, request.queries.queries().first())
        else {
            return Reply::Drop;
        };
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let checking_disabled = request.metadata.checking_disabled;
        let mut fresh = None;
        let answer = match recursion
            .resolve(query.original(), checking_disabled, dnssec_ok)
            .await
        {
            Some(resolved) => {
                // AD only for clients that show they understand it (RFC 6840 section 5.8).
                let wants_ad = request.metadata.authentic_data || dnssec_ok;
                parts.metadata.authentic_data = resolved.authentic_data && wants_ad;
                fresh = resolved.fresh;
                resolved.answer
            }
            None => Answer::error(ResponseCode::ServFail),
        };
        let class = ResponseClass::of(&answer, query.original().name(), query.query_type());
        let Some(rcode) = self.finish(&request, proto, parts, &answer, out) else {
            if let Some(learn) = &learn {
                self.cache_outcomes
                    .count(&learn.state.answers, AnswerCacheOutcome::Uncacheable);
            }
            return Reply::Drop;
        };
        if let Some(learn) = learn {
            // The response is a function of the query bytes (the key) and of the entry it was
            // built from: it may be sent again while that entry is fresh.
            let aged = fresh.and_then(|fresh| {
                let labels = QueryLabels {
                    proto,
                    qtype: query.query_type().into(),
                    rcode: rcode_label(rcode),
                };
                let stored = WireAnswer {
                    wire: out.as_slice().into(),
                    class,
                    queries: self.metrics.queries.get_or_create(&labels).clone(),
                    region: None,
                };
                Aged::new(stored, fresh, Arc::clone(recursion.hits()))
            });
            self.keep_recursive(learn, aged);
        }
        Reply::Send(class)
    }

    /// Puts the wire copy of a recursive answer into the answer cache the query was checked
    /// against, when it may be kept, and counts what became of it.
    fn keep_recursive(&self, learn: LearnRecursive, aged: Option<Aged>) {
        match aged {
            Some(aged) => {
                let query = learn.query.as_query();
                learn.state.answers.insert_recursive(&query, aged);
                self.cache_outcomes
                    .count(&learn.state.answers, AnswerCacheOutcome::Miss);
            }
            None => self
                .cache_outcomes
                .count(&learn.state.answers, AnswerCacheOutcome::Uncacheable),
        }
    }

    /// Header flags, our OPT record and the client's location; or the error the query earns.
    fn prepare(&self, request: &Request) -> (ResponseParts, Result<(), ResponseCode>) {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = self.may_recurse(request.src());
        let mut edns = None;
        let mut client_subnet = None;
        // Our OPT goes out with every response to a query that had one, errors included
        // (RFC 6891 section 7; BADVERS lives in its extended rcode bits).
        if let Some(request_edns) = &request.edns {
            edns = Some(self.response_edns(request_edns));
        }
        let checked = check_request(request).and_then(|()| {
            if let Some(request_edns) = &request.edns {
                client_subnet = client_subnet_of(request_edns)?;
            }
            Ok(())
        });
        // A source prefix of 0 opts out of tailoring: locate the resolver itself (RFC 7871 7.1.2).
        let tailored = client_subnet.filter(|s| s.source_prefix() > 0);
        let client_addr = tailored.map_or(request.src().ip(), |s| s.addr());
        let mut parts = ResponseParts {
            metadata,
            edns,
            client_subnet,
            client_addr,
            client_addr_from_subnet: tailored.is_some(),
        };
        set_scope(&mut parts, 0);
        (parts, checked)
    }

    /// Encodes the response into `out` and counts it; returns the rcode sent, or None when
    /// nothing can be sent.
    fn finish(
        &self,
        request: &Request,
        proto: &'static str,
        parts: ResponseParts,
        answer: &Answer<'_>,
        out: &mut Vec<u8>,
    ) -> Option<ResponseCode> {
        let ResponseParts {
            mut metadata,
            edns,
            client_addr,
            ..
        } = parts;
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;
        let limit = match (request.protocol(), &edns) {
            (Protocol::Udp, Some(edns)) => usize::from(edns.max_payload()),
            (Protocol::Udp, None) => PLAIN_UDP_LIMIT,
            _ => usize::from(u16::MAX),
        };
        let query = request.queries.queries().first();
        let question = query.map(|q| q.original());
        let header = match wire::encode(out, metadata, question, answer, edns.as_ref(), limit) {
            Ok(header) => header,
            Err(error) => {
                tracing::warn!(%error, src = %request.src(), "cannot encode a response");
                return None;
            }
        };
        let qtype = query.map_or(RecordType::ZERO, |q| q.query_type());
        self.count(proto, qtype, header.metadata.response_code);
        if self.query_log {
            let qname = query.map(|q| q.name().to_string()).unwrap_or_default();
            tracing::info!(
                src = %request.src(), %proto, %qname, %qtype, client = %client_addr,
                rcode = rcode_label(header.metadata.response_code), answers = header.counts.answers,
                tc = header.metadata.truncation, "query"
            );
        }
        Some(header.metadata.response_code)
    }

    fn count(&self, proto: &'static str, qtype: RecordType, rcode: ResponseCode) {
        let labels = QueryLabels {
            proto,
            qtype: qtype.into(),
            rcode: rcode_label(rcode),
        };
        self.metrics.queries.get_or_create(&labels).inc();
    }
}

impl DnsHandler {
    /// Our OPT record for the response.
    fn response_edns(&self, edns: &Edns) -> Edns {
        let mut ours = Edns::new();
        // The response must fit what the client can take, and never more than our own limit.
        ours.set_max_payload(edns.max_payload().clamp(512, self.edns_payload));
        // The DO bit is copied back (RFC 3225 section 3: a MUST).
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        ours
    }
}

/// The client subnet to locate and echo, after the EDNS version check (RFC 6891 6.1.3).
/// Echoes the client subnet (if any) with `scope`: 0 when the answer is the same everywhere.
fn set_scope(parts: &mut ResponseParts, scope: u8) {
    let (Some(edns), Some(mut subnet)) = (parts.edns.as_mut(), parts.client_subnet) else {
        return;
    };
    let tailored = subnet.source_prefix() > 0;
    subnet.set_scope_prefix(if tailored { scope } else { 0 });
    edns.options_mut().remove(EdnsCode::Subnet);
    edns.options_mut().insert(EdnsOption::Subnet(subnet));
}

fn client_subnet_of(edns: &Edns) -> Result<Option<ClientSubnet>, ResponseCode> {
    if edns.version() > 0 {
        return Err(ResponseCode::BADVERS);
    }
    match edns.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(subnet)) => valid_subnet(*subnet).map(Some),
        _ => Ok(None),
    }
}

/// RFC 7871 section 7.1.1: a prefix longer than the address, or a scope set in a query, is
/// FORMERR. A source prefix of 0 means "do not use my address": answer for the resolver.
fn valid_subnet(subnet: ClientSubnet) -> Result<ClientSubnet, ResponseCode> {
    let max = match subnet.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    if subnet.source_prefix() > max || subnet.scope_prefix() != 0 {
        return Err(ResponseCode::FormErr);
    }
    Ok(subnet)
}

/// Requests we do not look up: wrong opcode, not exactly one question, non-IN classes, zone
/// transfers.
fn check_request(request: &Request) -> Result<(), ResponseCode> {
    if request.metadata.op_code != OpCode::Query {
        return Err(ResponseCode::NotImp);
    }
    let queries = request.queries.queries();
    if queries.len() != 1 {
        return Err(ResponseCode::FormErr);
    }
    let query = &queries[0];
    match query.query_type() {
        RecordType::AXFR | RecordType::IXFR => return Err(ResponseCode::Refused),
        RecordType::OPT => return Err(ResponseCode::FormErr),
        _ => {}
    }
    if query.query_class() != DNSClass::IN {
        return Err(ResponseCode::Refused);
    }
    Ok(())
}

/// The rcode as dig prints it, for metric labels.
fn rcode_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}
