//! Unit tests of the zone file reader: escapes, every type's presentation round trip (parse,
//! print, parse: the same wire form), generic syntax, directives and error places.

use std::path::Path;

use super::print::{generic, rdata_to_text};
use super::types::TYPES;
use super::{ReadRecord, Report, read_text};

/// `example.` in wire form.
const ORIGIN: &[u8] = b"\x07example\x00";

/// Every record of `text` as (owner, type, class, ttl, rdata), and the report.
/// A record as read: owner, type, class, TTL and rdata.
type Read = (Vec<u8>, u16, u16, u32, Vec<u8>);

fn read(text: &str) -> (Vec<Read>, Report) {
    let mut records = Vec::new();
    let report = read_text(
        text.as_bytes(),
        Path::new("t.zone"),
        ORIGIN,
        &mut |r: &ReadRecord<'_>, _| {
            records.push((r.owner.to_vec(), r.rtype, r.class, r.ttl, r.rdata.to_vec()));
            Ok(())
        },
    );
    (records, report)
}

/// The rdata of the one record in `text`, which must read without errors.
fn rdata(text: &str) -> Vec<u8> {
    let (records, report) = read(text);
    assert!(report.errors.is_empty(), "{text}: {:?}", report.errors);
    assert_eq!(records.len(), 1, "{text}");
    records[0].4.clone()
}

fn error(text: &str) -> String {
    let (_, report) = read(text);
    assert!(!report.errors.is_empty(), "{text}: read without errors");
    report.errors[0].to_string()
}

#[test]
fn decimal_escapes_are_decimal_in_names_and_strings() {
    let (records, _) = read("$TTL 1\nq\\063 TXT \"\\065\" a\\\"b \\\\\n");
    assert_eq!(
        records[0].0, b"\x02q?\x07example\x00",
        "\\063 is '?', not '3'"
    );
    assert_eq!(records[0].4, b"\x01A\x03a\"b\x01\\");
    // Any octet in a label, an escaped dot inside one, and a label of 63 octets.
    let (records, _) = read("$TTL 1\na\\.b\\000c.d TXT x\n");
    assert_eq!(records[0].0, b"\x05a.b\x00c\x01d\x07example\x00");
    let long = "x".repeat(63);
    let (records, report) = read(&format!("$TTL 1\n{long} A 192.0.2.1\n"));
    assert!(report.errors.is_empty());
    assert_eq!(records[0].0.len(), 1 + 63 + ORIGIN.len());
    assert!(error(&format!("$TTL 1\n{long}x A 192.0.2.1\n")).contains("longer than 63"));
    assert!(error("$TTL 1\nq\\256 A 192.0.2.1\n").contains("over 255"));
    assert!(error("$TTL 1\nq\\06 A 192.0.2.1\n").contains("three decimal digits"));
}

#[test]
fn odd_owner_names_and_at_in_rdata() {
    let (records, report) =
        read("$TTL 1\n128/26 NS ns.other.\nx#y A 192.0.2.1\n@ MX 0 @\n_sip._tcp SRV 0 0 5060 @\n");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(records[0].0, b"\x06128/26\x07example\x00");
    assert_eq!(records[1].0, b"\x03x#y\x07example\x00");
    assert_eq!(records[2].4, b"\x00\x00\x07example\x00");
    assert_eq!(records[3].0, b"\x04_sip\x04_tcp\x07example\x00");
}

#[test]
fn ttls_classes_and_defaults() {
    let (records, report) = read(
        "a A 192.0.2.1\n$TTL 1h30m\nb IN A 192.0.2.2\nc 1w IN A 192.0.2.3\nd IN 2d A 192.0.2.4\ne CLASS1 TYPE1 \\# 4 c0000205\n",
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ttls: Vec<u32> = records.iter().map(|r| r.3).collect();
    assert_eq!(ttls, [3600, 5400, 604_800, 172_800, 5400]);
    assert_eq!(records[4].4, [192, 0, 2, 5]);
    assert_eq!(report.warnings.len(), 1, "one warning for the default TTL");
    assert!(
        report.warnings[0]
            .to_string()
            .contains("t.zone:1:1: warning: no $TTL")
    );
    assert!(error("$TTL 4294967296\n").contains("over 2^32"));
    assert!(error("$TTL 1x\n").contains("bad TTL"));
}

#[test]
fn generic_syntax_for_known_and_unknown_types() {
    assert_eq!(rdata("$TTL 1\na TYPE65000 \\# 4 0102 0304\n"), [1, 2, 3, 4]);
    assert_eq!(rdata("$TTL 1\na TYPE65000 \\# 0\n"), b"");
    assert_eq!(rdata("$TTL 1\na NULL \\# 2 abcd\n"), [0xab, 0xcd]);
    assert_eq!(
        rdata("$TTL 1\na MX \\# 5 000a 017800\n"),
        b"\x00\x0a\x01x\x00"
    );
    assert!(error("$TTL 1\na A \\# 3 010203\n").contains("not a valid A rdata"));
    assert!(error("$TTL 1\na TYPE9 \\# 4 010203\n").contains("says 4 octets"));
    assert!(error("$TTL 1\na NULL abcd\n").contains("\\# length hex"));
    assert!(error("$TTL 1\na TYPE65000 abcd\n").contains("RFC 3597"));
    assert!(error("$TTL 1\na AXFR \\# 0\n").contains("meta type"));
    assert!(error("$TTL 1\na BOGUS 1\n").contains("unknown type BOGUS"));
}

#[test]
fn svcb_values_unescape_then_split() {
    // RFC 9460 appendix D.2, figure 9: "f\\oo,bar" and "h2" (two levels of escaping).
    let wire = rdata("$TTL 1\na SVCB 16 foo.example.org. alpn=\"f\\\\\\\\oo\\\\,bar,h2\"\n");
    let expected: &[u8] =
        b"\x00\x10\x03foo\x07example\x03org\x00\x00\x01\x00\x0c\x08f\\oo,bar\x02h2";
    assert_eq!(wire, expected);
    let same = rdata("$TTL 1\na SVCB 16 foo.example.org. alpn=f\\\\\\092oo\\092,bar,h2\n");
    assert_eq!(same, expected);
    // Keys are sorted on the wire; mandatory's list too.
    let wire = rdata("$TTL 1\na HTTPS 1 . port=53 mandatory=port,alpn alpn=h2\n");
    assert_eq!(
        wire,
        b"\x00\x01\x00\x00\x00\x00\x04\x00\x01\x00\x03\x00\x01\x00\x03\x02h2\x00\x03\x00\x02\x00\x35"
    );
    assert!(error("$TTL 1\na HTTPS 1 . port=53 port=54\n").contains("twice"));
    assert!(error("$TTL 1\na HTTPS 0 . port=53\n").contains("AliasMode"));
    assert!(error("$TTL 1\na HTTPS 1 . key065=x\n").contains("unknown SvcParamKey"));
    assert!(error("$TTL 1\na HTTPS 1 . mandatory=port alpn=h2\n").contains("mandatory lists key3"));
}

#[test]
fn directives_origin_include_and_generate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inc.zone"), "x A 192.0.2.9\n").unwrap();
    std::fs::write(dir.path().join("loop.zone"), "$INCLUDE loop.zone\n").unwrap();
    let main = dir.path().join("main.zone");
    std::fs::write(
        &main,
        "$TTL 1\n$ORIGIN sub.example.\na A 192.0.2.1\n$INCLUDE inc.zone other.\n$INCLUDE inc.zone\nb A 192.0.2.2\n$GENERATE 1-3/2 h${10,3,x} A 192.0.2.$\n$INCLUDE loop.zone\n",
    )
    .unwrap();
    let mut owners = Vec::new();
    let report = super::read_file(&main, ORIGIN, &mut |r, _| {
        owners.push(super::name::to_text(r.owner));
        Ok(())
    });
    assert_eq!(
        owners,
        [
            "a.sub.example.",
            "x.other.",
            "x.sub.example.",
            "b.sub.example.",
            "h00b.sub.example.",
            "h00d.sub.example."
        ]
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].to_string().contains("$INCLUDE loop"),
        "{}",
        report.errors[0]
    );
}

#[test]
fn errors_name_line_and_column_and_all_are_listed() {
    let (records, report) = read(
        "$TTL 1\nok A 192.0.2.1\nbad A 192.0.2.256\nok2 A 192.0.2.2\n  AAAA nonsense\n\"open\n",
    );
    assert_eq!(records.len(), 2);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0], "t.zone:3:7: bad IPv4 address 192.0.2.256");
    assert_eq!(errors[1], "t.zone:5:8: bad IPv6 address nonsense");
    assert_eq!(errors[2], "t.zone:6:1: unterminated quoted string");
    assert!(error("$TTL 1\na ( A\n 192.0.2.1\n").contains("t.zone:2:3: unbalanced parenthesis"));
    assert!(error("$TTL 1\na A 192.0.2.1 )\n").contains("t.zone:2:15: unbalanced"));
    // Past the cap, reading stops with a line saying so.
    let many = "x A nonsense\n".repeat(super::MAX_ERRORS + 50);
    let (_, report) = read(&format!("$TTL 1\n{many}"));
    assert_eq!(report.errors.len(), super::MAX_ERRORS + 1);
}

#[test]
fn parentheses_join_lines_and_comments_go() {
    let wire = rdata("$TTL 1\n@ SOA ns hm ( ; comment\n 1 ; serial\n 1h 30M 1W\n 300 )\n");
    assert_eq!(
        &wire[wire.len() - 20..],
        [
            0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 7, 8, 0, 9, 58, 128, 0, 0, 1, 44
        ]
    );
}

/// One presentation sample per type in the table (they must all read).
const SAMPLES: &[(&str, &str)] = &[
    ("A", "192.0.2.1"),
    ("AAAA", "2001:db8::1"),
    ("CNAME", "target"),
    ("TXT", "\"a b\" c \"\\255\\\"\""),
    ("MX", "10 mail"),
    ("NS", "ns1.example.net."),
    ("SRV", "0 5 5060 sip"),
    ("CAA", "0 issue \"ca.example.net; account=1\""),
    ("PTR", "host"),
    ("SOA", "ns hm 1 7200 900 1209600 300"),
    (
        "HTTPS",
        "1 . alpn=h2,h3 no-default-alpn port=443 ipv4hint=192.0.2.1,192.0.2.2 ech=AEX+DQ== ipv6hint=2001:db8::1 mandatory=alpn key65000=\"x\\\\,y\"",
    ),
    ("SVCB", "1 svc dohpath=/dns-query{?dns} ohttp"),
    (
        "RRSIG",
        "A 13 2 3600 20250101000000 20241201000000 12345 example. dGVzdA==",
    ),
    ("NSEC", "next A NS SOA RRSIG NSEC DNSKEY TYPE65000"),
    (
        "NSEC3",
        "1 1 10 aabbcc 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG",
    ),
    ("DNSKEY", "257 3 ECDSAP256SHA256 dGVzdGtleQ=="),
    ("DS", "12345 13 2 0123456789abcdef 0123456789abcdef"),
    ("NSEC3PARAM", "1 0 0 -"),
    ("TLSA", "3 1 1 0123456789abcdef"),
    ("SSHFP", "4 2 0123456789abcdef"),
    (
        "NAPTR",
        "100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:x@example.!\" _sip._udp",
    ),
    ("DNAME", "other.example."),
    ("SPF", "\"v=spf1 -all\""),
    ("URI", "10 1 \"https://example.com/\""),
    ("HINFO", "\"PC\" \"Linux\""),
    ("RP", "mbox.example. txt"),
    ("AFSDB", "1 afs"),
    ("LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 1m 10000m 10m"),
    ("WKS", "192.0.2.1 tcp smtp 80 443"),
    (
        "IPSECKEY",
        "10 3 2 gw.example. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    ),
    ("DHCID", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="),
    ("ZONEMD", "2018031500 1 1 0123456789abcdef"),
    ("CERT", "PGP 0 0 dGVzdA=="),
    ("OPENPGPKEY", "dGVzdA=="),
    ("SMIMEA", "3 1 1 00ff"),
    ("CDS", "0 0 0 00"),
    ("CDNSKEY", "0 3 0 AA=="),
    ("CSYNC", "66 3 A NS AAAA"),
    (
        "APL",
        "1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32",
    ),
    (
        "HIP",
        "2 200100107b1a74df365639cc39f1d578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs.example.com.",
    ),
    ("KX", "10 kx"),
    ("MD", "md"),
    ("MF", "mf"),
    ("MB", "mb"),
    ("MG", "mg"),
    ("MR", "mr"),
    ("NULL", "\\# 3 010203"),
    ("MINFO", "rm em"),
    ("X25", "311061700956"),
    ("ISDN", "150862028003217 004"),
    ("RT", "0 relay"),
    ("NSAP", "0x47.0005.80.005a00.0000.0001.e133.aaaaaa000151.00"),
    ("NSAP-PTR", "host"),
    (
        "SIG",
        "A 5 2 3600 20250101000000 20241201000000 1 example. dGVzdA==",
    ),
    ("KEY", "256 3 5 AQ=="),
    ("PX", "10 a b"),
    ("GPOS", "-32.6882 116.8652 10.0"),
    ("NINFO", "\"info\""),
    ("RKEY", "0 3 253 AA=="),
    ("TALINK", "prev next"),
    ("NID", "10 0014:4fff:ff20:ee64"),
    ("L32", "10 10.1.2.0"),
    ("L64", "10 2001:0db8:1140:1000"),
    ("LP", "10 l64-subnet1"),
    ("EUI48", "00-00-5e-00-53-2a"),
    ("EUI64", "00-00-5e-ef-10-00-00-2a"),
    ("AVC", "\"app-name:WOLFGANG|app-class:OAM\""),
    ("AMTRELAY", "10 0 3 amtrelay.example."),
    ("RESINFO", "qnamemin exterr=15,16,17"),
    ("WALLET", "\"btc\" \"bc1q\""),
    ("TA", "12345 8 2 00ff"),
    ("DLV", "12345 8 2 00ff"),
    ("NXT", "next.example. A MX SIG NXT"),
];

#[test]
fn every_type_reads_prints_and_reads_back_the_same() {
    for info in TYPES {
        let Some((_, sample)) = SAMPLES.iter().find(|(name, _)| *name == info.name) else {
            panic!("no sample for {}", info.name);
        };
        let first = rdata(&format!("$TTL 1\nowner {} {sample}\n", info.name));
        let printed = rdata_to_text(info.code, &first);
        let second = rdata(&format!("$TTL 1\nowner {} {printed}\n", info.name));
        assert_eq!(first, second, "{} {sample} printed as {printed}", info.name);
        // The generic form of the same bytes reads to them too.
        let third = rdata(&format!(
            "$TTL 1\nowner TYPE{} {}\n",
            info.code,
            generic(&first)
        ));
        assert_eq!(first, third, "{} in generic form", info.name);
    }
}

#[test]
fn fields_with_known_wire_forms() {
    // RFC 1876 section 3's example, as BIND encodes it.
    let loc = rdata("$TTL 1\na LOC 42 21 54 N 71 06 18 W -24m 30m\n");
    assert_eq!(
        loc,
        [
            0, 0x33, 0x16, 0x13, 0x89, 0x17, 0x2d, 0xd0, 0x70, 0xbe, 0x15, 0xf0, 0x00, 0x98, 0x8d,
            0x20
        ]
    );
    // APL: the address trimmed of trailing zero octets, the negation bit.
    assert_eq!(
        rdata("$TTL 1\na APL !1:192.168.0.0/16\n"),
        [0, 1, 16, 0x82, 192, 168]
    );
    // Type bitmap windows (RFC 4034 section 4.3's example).
    let nsec = rdata("$TTL 1\nalfa NSEC host.example.com. A MX RRSIG NSEC TYPE1234\n");
    let mut expected = vec![0, 6, 0x40, 1, 0, 0, 0, 3, 4, 27];
    expected.extend([0; 26]);
    expected.push(0x20);
    assert_eq!(nsec[18..], expected);
    // RRSIG times: a date and plain seconds.
    let sig = rdata("$TTL 1\na RRSIG A 8 2 60 20240101000000 1704067200 1 example. AA==\n");
    assert_eq!(sig[8..12], sig[12..16]);
}

#[test]
fn a_file_read_in_pieces_reads_as_the_whole_text() {
    // Entries of every shape cross the 1 MiB piece boundaries: parentheses over lines, quoted
    // strings with newlines and escapes, comments, an error now and then.
    let mut text = String::from("$TTL 60\n");
    let mut i = 0;
    while text.len() < 3 * super::PIECE + 1000 {
        i += 1;
        let entry = match i % 4 {
            _ if i % 9973 == 0 => format!("bad{i} A 10.0.0.256\n"),
            0 => format!("n{i} IN SOA ns hm ( {i} ; serial\n 1 2 3\n 4 )\n"),
            1 => format!("t{i} TXT \"line one\nline \\\"two\\\" {i}\" ; c\n"),
            2 => format!("  AAAA 2001:db8::{:x}\n", i % 65536),
            _ => format!("a{i} 1h A 10.0.{}.{}\n", (i / 256) % 256, i % 256),
        };
        text.push_str(&entry);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.zone");
    std::fs::write(&path, &text).unwrap();
    let mut whole: Vec<Read> = Vec::new();
    let text_report = read_text(text.as_bytes(), &path, ORIGIN, &mut |r, place| {
        whole.push((
            r.owner.to_vec(),
            r.rtype,
            place.line as u16,
            r.ttl,
            r.rdata.to_vec(),
        ));
        Ok(())
    });
    let mut pieces: Vec<Read> = Vec::new();
    let file_report = super::read_file(&path, ORIGIN, &mut |r, place| {
        pieces.push((
            r.owner.to_vec(),
            r.rtype,
            place.line as u16,
            r.ttl,
            r.rdata.to_vec(),
        ));
        Ok(())
    });
    assert!(whole.len() > 50_000, "{}", whole.len());
    assert!(whole == pieces, "the records differ");
    let errors = |report: &Report| {
        report
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(errors(&text_report), errors(&file_report));
    assert!(
        !text_report.errors.is_empty(),
        "the bad addresses are errors"
    );
}
