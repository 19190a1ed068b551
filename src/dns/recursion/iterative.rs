//! Iterative resolution from root hints with hickory-resolver's recursor.

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::txt::Parser;
use hickory_resolver::recursor::{Recursor, RecursorError, RecursorOptions};

use super::{RecursionError, RecursionSetupError};
use crate::config::RecursionConfig;

/// The root servers' addresses (IANA root hints), used when no hints file is configured.
const ROOT_SERVERS: [&str; 26] = [
    "198.41.0.4",
    "2001:503:ba3e::2:30",
    "170.247.170.2",
    "2801:1b8:10::b",
    "192.33.4.12",
    "2001:500:2::c",
    "199.7.91.13",
    "2001:500:2d::d",
    "192.203.230.10",
    "2001:500:a8::e",
    "192.5.5.241",
    "2001:500:2f::f",
    "192.112.36.4",
    "2001:500:12::d0d",
    "198.97.190.53",
    "2001:500:1::53",
    "192.36.148.17",
    "2001:7fe::53",
    "192.58.128.30",
    "2001:503:c27::2:30",
    "193.0.14.129",
    "2001:7fd::1",
    "199.7.83.42",
    "2001:500:9f::42",
    "202.12.27.33",
    "2001:dc3::35",
];

/// Bounds of hickory's own caches, in entries: well below its defaults (a million responses),
/// since the node's answers are kept in the cache core and these only spare upstream queries.
/// Its connection cache has the name server cache's bound. Reported in
/// `edgenode_dns_recursor_cache_*` (`recursor_metrics`).
pub const RESPONSE_CACHE: u64 = 16_384;
pub const NAME_SERVER_CACHE: usize = 1_024;

pub struct Iterative {
    recursor: Recursor<TokioRuntimeProvider>,
}

impl Iterative {
    pub fn new(config: &RecursionConfig) -> Result<Iterative, RecursionSetupError> {
        let roots = match &config.root_hints {
            Some(path) => read_hints(path)?,
            None => ROOT_SERVERS.iter().filter_map(|a| a.parse().ok()).collect(),
        };
        let options = RecursorOptions {
            allow_server: config.allow_servers.clone(),
            // 0x20: query names in random case over UDP, answers must echo it, so that a
            // spoofed answer must guess the case too (draft-vixie-dnsext-dns0x20).
            case_randomization: true,
            ns_cache_size: NAME_SERVER_CACHE,
            response_cache_size: RESPONSE_CACHE,
            ..RecursorOptions::default()
        };
        // Before the recursor is built: its reports go to the recorder installed then.
        let metrics = super::recursor_metrics::shared();
        metrics.set_capacity(
            RESPONSE_CACHE as usize,
            NAME_SERVER_CACHE,
            NAME_SERVER_CACHE,
        );
        let recursor = Recursor::with_options(&roots, options, TokioRuntimeProvider::default())
            .map_err(|e| RecursionSetupError::Start(e.to_string()))?;
        Ok(Iterative { recursor })
    }

    pub async fn resolve(&self, query: &Query, dnssec_ok: bool) -> Result<Message, RecursionError> {
        match self
            .recursor
            .resolve(query.clone(), Instant::now(), dnssec_ok)
            .await
        {
            Ok(message) => Ok(message),
            Err(error) => negative_answer(query, error),
        }
    }
}

/// The recursor reports NXDOMAIN and NODATA as errors carrying the SOA; turn them back into
/// the response a client expects, so they are cached and answered like any other.
fn negative_answer(query: &Query, error: RecursorError) -> Result<Message, RecursionError> {
    let rcode = if error.is_nx_domain() {
        ResponseCode::NXDomain
    } else if error.is_no_records_found() {
        ResponseCode::NoError
    } else {
        return Err(RecursionError::Iterative(error.to_string()));
    };
    let mut message = Message::new(0, MessageType::Response, OpCode::Query);
    message.metadata.response_code = rcode;
    message.add_query(query.clone());
    if let Some(soa) = error.into_soa() {
        message.add_authority(soa.into_record_of_rdata());
    }
    Ok(message)
}

fn read_hints(path: &Path) -> Result<Vec<IpAddr>, RecursionSetupError> {
    let unreadable = |message: String| RecursionSetupError::RootHints {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let (_, records) = Parser::new(text, Some(path.to_path_buf()), Some(Name::root()))
        .parse()
        .map_err(|e| unreadable(e.to_string()))?;
    let roots: Vec<IpAddr> = records
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    if roots.is_empty() {
        return Err(RecursionSetupError::NoRootServers {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}
