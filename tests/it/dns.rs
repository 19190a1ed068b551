//! Authoritative DNS behaviour through real clients (hickory's client and dig) against the
//! binary started on 127.0.0.1:0.

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};

use crate::support::{Node, ask, dig, dns_client, have_tool, query};

fn diff_zones() -> String {
    crate::support::repo_root()
        .join("tests/data/diff")
        .display()
        .to_string()
}

fn addresses(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn positive_negative_and_wildcard_answers() {
    let node = Node::with_zones(&diff_zones());
    let udp = dns_client(node.dns(), false).await;

    let r = ask(&udp, query("www.diff.test.", RecordType::A, Some(1232))).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert_eq!(addresses(&r), ["192.0.2.10", "192.0.2.11", "192.0.2.12"]);
    let edns = r.edns.as_ref().expect("EDNS echoed");
    assert_eq!(edns.max_payload(), 1232);

    // NXDOMAIN and NODATA carry the SOA with the negative TTL (min of SOA TTL and MINIMUM).
    for (name, rcode) in [
        ("nothing.diff.test.", ResponseCode::NXDomain),
        ("www.diff.test.", ResponseCode::NoError),
    ] {
        let r = ask(&udp, query(name, RecordType::MX, Some(1232))).await;
        assert_eq!(r.metadata.response_code, rcode, "{name}");
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.authorities[0].ttl, 300);
    }

    // Wildcard synthesis carries the query name; wildcard NODATA; empty non-terminal is NODATA.
    let r = ask(
        &udp,
        query("Anything.WILD.diff.test.", RecordType::A, Some(1232)),
    )
    .await;
    assert_eq!(addresses(&r), ["192.0.2.80"]);
    assert_eq!(r.answers[0].name.to_ascii(), "Anything.WILD.diff.test.");
    assert_eq!(
        r.queries[0].name().to_ascii(),
        "Anything.WILD.diff.test.",
        "question case kept"
    );
    let r = ask(&udp, query("x.wild.diff.test.", RecordType::MX, Some(1232))).await;
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );
    let r = ask(&udp, query("b.c.diff.test.", RecordType::A, Some(1232))).await;
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );

    // CNAME chains are chased within the served zones, also into another zone.
    let r = ask(&udp, query("chain1.diff.test.", RecordType::A, Some(1232))).await;
    let types: Vec<RecordType> = r.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types[..2], [RecordType::CNAME, RecordType::CNAME]);
    assert_eq!(addresses(&r), ["192.0.2.10", "192.0.2.11", "192.0.2.12"]);
    let r = ask(&udp, query("cross.diff.test.", RecordType::A, Some(1232))).await;
    assert_eq!(r.answers.len(), 2, "{r:?}");

    // Out-of-zone names are refused; edgenode is not a resolver.
    let r = ask(&udp, query("www.example.com.", RecordType::A, Some(1232))).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(!r.metadata.authoritative);
}

#[tokio::test]
async fn referrals_any_and_errors() {
    let node = Node::with_zones(&diff_zones());
    let udp = dns_client(node.dns(), false).await;

    // Below a delegation: a referral with AA clear, the NS set in authority, glue in additional.
    let r = ask(
        &udp,
        query("host.sub.diff.test.", RecordType::A, Some(1232)),
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(!r.metadata.authoritative);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities.len(), 2);
    assert!(
        r.authorities
            .iter()
            .all(|a| a.record_type() == RecordType::NS)
    );
    let glue: Vec<RecordType> = r.additionals.iter().map(|a| a.record_type()).collect();
    assert!(
        glue.contains(&RecordType::A) && glue.contains(&RecordType::AAAA),
        "{glue:?}"
    );

    // ANY gets one RRset (RFC 8482), not the whole node.
    let r = ask(&udp, query("diff.test.", RecordType::ANY, Some(1232))).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let first = r.answers[0].record_type();
    assert!(
        r.answers.iter().all(|a| a.record_type() == first),
        "{:?}",
        r.answers
    );

    // NOTIMP for other opcodes, BADVERS for EDNS versions we do not speak, FORMERR for a
    // client subnet longer than its address, REFUSED for zone transfers.
    let mut notify = query("diff.test.", RecordType::SOA, Some(1232));
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(
        ask(&udp, notify).await.metadata.response_code,
        ResponseCode::NotImp
    );
    let mut v1 = query("diff.test.", RecordType::SOA, None);
    let mut edns = Edns::new();
    edns.set_version(1);
    v1.set_edns(edns);
    // hickory decodes extended rcode 16 as BADSIG; BADVERS shares the value (RFC 6891, RFC 8945).
    assert_eq!(u16::from(ask(&udp, v1).await.metadata.response_code), 16);
    let mut bad_ecs = query("diff.test.", RecordType::SOA, Some(1232));
    if let Some(edns) = bad_ecs.edns.as_mut() {
        let subnet = ClientSubnet::new("10.0.0.0".parse().unwrap(), 24, 8);
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
    }
    assert_eq!(
        ask(&udp, bad_ecs).await.metadata.response_code,
        ResponseCode::FormErr
    );
    let tcp = dns_client(node.dns_tcp[0], true).await;
    let r = ask(&tcp, query("diff.test.", RecordType::AXFR, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn truncation_over_udp_and_the_full_answer_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut zone = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n",
    );
    for i in 1..=100 {
        zone.push_str(&format!("many A 127.0.5.{i}\n"));
    }
    crate::support::write_file(dir.path(), "big.test.zone", &zone);
    let node = Node::with_zones(dir.path().to_str().unwrap());

    let udp = dns_client(node.dns(), false).await;
    let r = ask(&udp, query("many.big.test.", RecordType::A, None)).await;
    assert!(
        r.metadata.truncation,
        "a 100-record answer does not fit 512 bytes"
    );
    let r = ask(&udp, query("many.big.test.", RecordType::A, Some(4096))).await;
    assert!(r.metadata.truncation, "nor our 1232-byte EDNS limit");
    let tcp = dns_client(node.dns_tcp[0], true).await;
    let r = ask(&tcp, query("many.big.test.", RecordType::A, Some(1232))).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 100);
}

#[tokio::test]
async fn geo_answers_by_source_address_with_the_embedded_overrides() {
    if !have_tool("dig") {
        return;
    }
    let node = Node::with_zones("zones");
    let short = |source: &str| {
        dig(
            node.dns(),
            &["-b", source, "www.example.test", "A", "+short"],
        )
        .trim()
        .to_string()
    };
    assert_eq!(short("127.0.1.1"), "127.0.1.10", "loopback-asia");
    assert_eq!(short("127.0.2.1"), "127.0.2.10", "loopback-north-america");
    assert_eq!(short("127.0.3.1"), "127.0.3.10", "loopback-europe");
    assert_eq!(short("127.0.0.1"), "127.0.10.1", "the zone file's default");
    let full = dig(
        node.dns(),
        &["-b", "127.0.1.1", "www.example.test", "A", "+tcp"],
    );
    assert!(full.contains("flags: qr aa"), "{full}");
    assert!(full.contains("127.0.1.10"), "{full}");

    let metrics = http_get(node.admin.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("edgenode_dns_geo_decisions_total{region=\"continent:AS\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("edgenode_dns_queries_total{proto=\"tcp\",qtype=\"A\",rcode=\"NOERROR\"} 1"),
        "{metrics}"
    );
}

/// The example of docs/dns.md: MaxMind's test database, then ECS from dig.
#[tokio::test]
async fn client_subnet_picks_the_answer_and_sets_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let csv = crate::support::write_file(
        dir.path(),
        "geo.csv",
        "network,country,continent,asn\n175.16.199.0/24,CN,AS,4134\n216.160.83.56/29,US,NA,209\n2001:218::/32,JP,AS,\n",
    );
    let mmdb = dir.path().join("geo.mmdb");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_edgenode"))
        .args(["geoip", "build"])
        .arg(&csv)
        .arg("-o")
        .arg(&mmdb)
        .status()
        .unwrap();
    assert!(status.success());
    let node = Node::with_geoip(&mmdb);
    let udp = dns_client(node.dns(), false).await;
    let ecs = |subnet: &str, prefix: u8| {
        crate::support::query_from_subnet("www.example.test.", RecordType::A, subnet, prefix)
    };
    let scope = |m: &Message| match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(s)) => (s.source_prefix(), s.scope_prefix()),
        other => panic!("no ECS in the response: {other:?}"),
    };
    let r = ask(&udp, ecs("175.16.199.0", 24)).await;
    assert_eq!(addresses(&r), ["127.0.1.10"]);
    assert_eq!(scope(&r), (24, 24));
    let r = ask(&udp, ecs("216.160.83.56", 29)).await;
    assert_eq!(addresses(&r), ["127.0.2.10"]);
    assert_eq!(scope(&r), (29, 29));
    let r = ask(&udp, ecs("2001:218::", 48)).await;
    assert_eq!(addresses(&r), ["127.0.1.10"]);
    // A name without a policy answers the same everywhere: scope 0.
    let mut plain = ecs("175.16.199.0", 24);
    plain.queries[0].set_name("api.example.test.".parse().unwrap());
    assert_eq!(scope(&ask(&udp, plain).await), (24, 0));

    if have_tool("dig") {
        let cn = dig(
            node.dns(),
            &["www.example.test", "+subnet=175.16.199.0/24", "+short"],
        );
        let us = dig(
            node.dns(),
            &["www.example.test", "+subnet=216.160.83.56/29", "+short"],
        );
        assert_eq!((cn.trim(), us.trim()), ("127.0.1.10", "127.0.2.10"));
    }
}

/// A minimal HTTP/1.1 GET for the admin listener.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http(addr, "GET", path, None).await.1
}

/// Sends one HTTP/1.1 request and returns (status, body text).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, _, body) =
        crate::support::http_request(addr, method, path, &headers, Vec::new()).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Bytes that are not a valid query: a header that promises a question the packet lacks gets
/// FORMERR with the same ID; fewer than 12 bytes and responses get no answer at all.
#[tokio::test]
async fn malformed_packets_get_formerr_or_silence() {
    let node = Node::with_zones("zones");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(node.dns()).await.unwrap();
    let mut reply = [0u8; 512];

    // ID 0xbeef, QDCOUNT 1, then a name that runs past the end of the packet.
    let truncated_question = [
        0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x',
    ];
    socket.send(&truncated_question).await.unwrap();
    let len = recv(&socket, &mut reply).await.expect("an answer").unwrap();
    let response = Message::from_vec(&reply[..len]).expect("a valid response");
    assert_eq!(response.metadata.id, 0xbeef);
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);

    socket.send(&[1, 2, 3]).await.unwrap();
    assert!(
        recv(&socket, &mut reply).await.is_err(),
        "no answer to 3 bytes"
    );
    let mut response_bit = truncated_question;
    response_bit[2] = 0x80; // QR=1: a response, never answered (no reflection loops)
    socket.send(&response_bit).await.unwrap();
    assert!(
        recv(&socket, &mut reply).await.is_err(),
        "no answer to a response"
    );

    // The node still answers real queries afterwards.
    let udp = dns_client(node.dns(), false).await;
    let r = ask(&udp, query("www.example.test.", RecordType::A, Some(1232))).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
}

/// `--log-format json --query-log`: one JSON line per query on stderr.
#[tokio::test]
async fn query_log_in_json() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgenode"))
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json", "--query-log"])
        .args([
            "--httpdns-listen",
            "127.0.0.1:0",
            "--httpdns-tls-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
        ])
        .current_dir(crate::support::repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(a) = line.strip_prefix("listening dns-udp ") {
            addr = a.parse::<std::net::SocketAddr>().ok();
        }
        if line == "ready" {
            break;
        }
    }
    let addr = addr.expect("a dns address");
    let udp = dns_client(addr, false).await;
    ask(
        &udp,
        query("WWW.example.test.", RecordType::AAAA, Some(1232)),
    )
    .await;
    // SIGTERM: the node stops gracefully (and logs it).
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("\"message\":\"query\""))
        .unwrap_or_else(|| panic!("{stderr}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(json["fields"]["qtype"], "AAAA");
    assert_eq!(json["fields"]["qname"], "www.example.test.");
    assert_eq!(json["fields"]["rcode"], "NOERROR");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"message\":\"listening\"")),
        "{stderr}"
    );
}

async fn recv(
    socket: &tokio::net::UdpSocket,
    reply: &mut [u8; 512],
) -> Result<std::io::Result<usize>, tokio::time::error::Elapsed> {
    tokio::time::timeout(std::time::Duration::from_millis(500), socket.recv(reply)).await
}

/// RFC 6891 section 7 and RFC 3225: every response to a query with EDNS carries an OPT record,
/// errors included, and the DO bit comes back as the query set it.
#[tokio::test]
async fn every_edns_query_gets_an_opt_record_with_its_do_bit() {
    let node = Node::with_zones("zones");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(node.dns()).await.unwrap();
    let mut reply = [0u8; 512];
    let cases = [
        (
            "www.example.test.",
            RecordType::A,
            OpCode::Query,
            ResponseCode::NoError,
        ),
        (
            "nothing.example.test.",
            RecordType::A,
            OpCode::Query,
            ResponseCode::NXDomain,
        ),
        (
            "www.example.com.",
            RecordType::A,
            OpCode::Query,
            ResponseCode::Refused,
        ),
        (
            "example.test.",
            RecordType::AXFR,
            OpCode::Query,
            ResponseCode::Refused,
        ),
        (
            "example.test.",
            RecordType::SOA,
            OpCode::Status,
            ResponseCode::NotImp,
        ),
    ];
    for (name, rtype, opcode, rcode) in cases {
        for dnssec_ok in [false, true] {
            let mut message = query(name, rtype, Some(1232));
            message.metadata.op_code = opcode;
            if let Some(edns) = message.edns.as_mut() {
                edns.set_dnssec_ok(dnssec_ok);
            }
            socket.send(&message.to_vec().unwrap()).await.unwrap();
            let len = recv(&socket, &mut reply).await.expect("an answer").unwrap();
            let response = Message::from_vec(&reply[..len]).expect("a valid response");
            let what = format!("{name} {rtype} {opcode:?} DO={dnssec_ok}");
            assert_eq!(response.metadata.response_code, rcode, "{what}");
            let edns = response
                .edns
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no OPT"));
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok, "{what}: the DO bit");
        }
    }
    // Without EDNS in the query there is none in the response.
    let plain = query("www.example.com.", RecordType::A, None);
    socket.send(&plain.to_vec().unwrap()).await.unwrap();
    let len = recv(&socket, &mut reply).await.expect("an answer").unwrap();
    let response = Message::from_vec(&reply[..len]).unwrap();
    assert!(response.edns.is_none());
}
