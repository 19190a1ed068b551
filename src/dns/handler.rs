//! The request handler: parses a query, finds the client's location (EDNS Client Subnet or
//! source address), runs the lookup and encodes the response. Synchronous: an authoritative
//! answer needs no I/O, so the UDP and TCP loops call it inline without spawning a task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::DnsState;
use super::lookup::{Answer, resolve};
use super::policy::Client;
use super::wire;
use crate::metrics::{DnsMetrics, QueryLabels, Region, RegionLabels};

/// Largest response over UDP without EDNS (RFC 1035 section 4.2.1).
const PLAIN_UDP_LIMIT: usize = 512;

/// Answers queries from the current `DnsState`; cheap to clone.
#[derive(Clone)]
pub struct DnsHandler {
    /// Swapped whole on reload; each query works on one consistent snapshot.
    state: Arc<ArcSwap<DnsState>>,
    metrics: DnsMetrics,
    /// Our largest UDP response (dns.edns_payload).
    edns_payload: u16,
    query_log: bool,
}

impl DnsHandler {
    pub fn new(
        state: Arc<ArcSwap<DnsState>>,
        metrics: DnsMetrics,
        edns_payload: u16,
        query_log: bool,
    ) -> Self {
        Self {
            state,
            metrics,
            edns_payload,
            query_log,
        }
    }

    /// Answers the query in `raw` from `src` into `out`. Returns false when nothing must be
    /// sent: too short for a header, or a response (no replies to replies: reflection loops).
    pub fn respond(
        &self,
        raw: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(header) = Header::read(&mut BinDecoder::new(raw)) else {
            return false;
        };
        if header.metadata.message_type == MessageType::Response {
            return false;
        }
        let proto = match protocol {
            Protocol::Udp => "udp",
            _ => "tcp",
        };
        let request = match Request::from_bytes(raw.to_vec(), src, protocol) {
            Ok(request) => request,
            Err(error) => {
                tracing::debug!(%error, %src, "malformed query");
                let mut metadata = Metadata::response_from_request(&header.metadata);
                metadata.response_code = ResponseCode::FormErr;
                let answer = error_answer(ResponseCode::FormErr);
                let limit = PLAIN_UDP_LIMIT;
                if wire::encode(out, metadata, None, &answer, None, limit).is_err() {
                    return false;
                }
                self.count(proto, RecordType::ZERO, ResponseCode::FormErr);
                return true;
            }
        };
        self.answer(&request, proto, out)
    }

    fn answer(&self, request: &Request, proto: &'static str, out: &mut Vec<u8>) -> bool {
        let state = self.state.load();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let mut response_edns = None;
        let mut client_subnet = None;
        let outcome = check_request(request).and_then(|()| {
            if let Some(edns) = &request.edns {
                // Our OPT goes out even with an error: BADVERS lives in its extended rcode bits.
                response_edns = Some(self.response_edns(edns));
                client_subnet = client_subnet_of(edns)?;
            }
            Ok(())
        });

        let query = request.queries.queries().first();
        let qtype = query.map_or(RecordType::ZERO, |q| q.query_type());
        // A source prefix of 0 opts out of tailoring: locate the resolver itself (RFC 7871 7.1.2).
        let client_addr = client_subnet
            .filter(|s| s.source_prefix() > 0)
            .map_or(request.src().ip(), |s| s.addr());
        let mut client = Client::new(client_addr, &state.geo);
        let answer = match (outcome, query) {
            (Ok(()), Some(query)) => {
                resolve(&state.zones, query.original().name(), qtype, &mut client)
            }
            (Err(rcode), _) => error_answer(rcode),
            (Ok(()), None) => error_answer(ResponseCode::FormErr),
        };
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;

        let mut scope_prefix = 0;
        if let Some((label, prefix)) = client.decision.take() {
            scope_prefix = prefix;
            self.metrics
                .geo_decisions
                .get_or_create(&RegionLabels {
                    region: Region(label),
                })
                .inc();
        }
        if let (Some(edns), Some(mut subnet)) = (response_edns.as_mut(), client_subnet) {
            let tailored = subnet.source_prefix() > 0;
            subnet.set_scope_prefix(if tailored { scope_prefix } else { 0 });
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
        }

        let limit = match (request.protocol(), &response_edns) {
            (Protocol::Udp, Some(edns)) => usize::from(edns.max_payload()),
            (Protocol::Udp, None) => PLAIN_UDP_LIMIT,
            _ => usize::from(u16::MAX),
        };
        let question = query.map(|q| q.original());
        let header = match wire::encode(
            out,
            metadata,
            question,
            &answer,
            response_edns.as_ref(),
            limit,
        ) {
            Ok(header) => header,
            Err(error) => {
                tracing::warn!(%error, src = %request.src(), "cannot encode a response");
                return false;
            }
        };
        self.count(proto, qtype, header.metadata.response_code);
        if self.query_log {
            let qname = query.map(|q| q.name().to_string()).unwrap_or_default();
            tracing::info!(
                src = %request.src(), %proto, %qname, %qtype, client = %client_addr,
                rcode = rcode_label(header.metadata.response_code), answers = header.counts.answers,
                tc = header.metadata.truncation, "query"
            );
        }
        true
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
        ours
    }
}

/// The client subnet to locate and echo, after the EDNS version check (RFC 6891 6.1.3).
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

fn error_answer<'z>(rcode: ResponseCode) -> Answer<'z> {
    Answer {
        rcode,
        authoritative: false,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    }
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
