use super::*;

#[test]
fn embedded_default_parses_and_validates() {
    let config = Config::embedded().expect("embedded config parses");
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert_eq!(config.dns.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(config.dns.zones, PathBuf::from("zones"));
    assert_eq!(config.geoip.overrides.len(), 3);
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let err = Config::from_toml_str("[dns]\nlisten = []\nzone = \"x\"\n", "t.toml", None)
        .expect_err("unknown key");
    let text = err.to_string();
    assert!(text.starts_with("t.toml: "), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("zone"), "{text}");
}

#[test]
fn validate_lists_every_problem_by_key_path() {
    let text = "[dns]\nlisten = []\nedns_payload = 100\n[admin]\nlisten = \"0.0.0.0:9153\"\n";
    let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
    let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("dns.listen"));
    assert!(problems[1].contains("dns.edns_payload"));
    assert!(problems[2].contains("admin.token"));
}

#[test]
fn breaker_settings_are_checked() {
    let text = "[proxy]\nbreaker_ratio = 1.5\nbreaker_window_secs = 0\nbreaker_statuses = [503, 42]\n\
                [[proxy.hosts]]\nhost = \"a.test\"\norigins = [\"http://127.0.0.1:1\"]\n\
                breaker_statuses = [700]\n";
    let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
    let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
    let all = problems.join("\n");
    for expected in [
        "proxy.breaker_ratio",
        "proxy.breaker_window_secs",
        "proxy.breaker_statuses: 42 is not an HTTP status",
        "proxy.hosts[0].breaker_statuses: 700 is not an HTTP status",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
}

#[test]
fn cli_overrides_replace_file_values_and_paths_follow_the_file() {
    let text = "[dns]\nzones = \"z\"\n[geoip]\nfiles = [\"a.mmdb\"]\n";
    let mut config = Config::from_toml_str(text, "etc/x.toml", Some(Path::new("etc"))).unwrap();
    assert_eq!(config.dns.zones, PathBuf::from("etc/z"));
    assert_eq!(config.geoip.files, vec![PathBuf::from("etc/a.mmdb")]);
    config.apply(&Overrides {
        zones: Some("other".into()),
        dns_listen: vec!["127.0.0.1:0".parse().unwrap()],
        log_format: Some(LogFormat::Json),
        ..Overrides::default()
    });
    assert_eq!(config.dns.zones, PathBuf::from("other"));
    assert_eq!(config.dns.listen[0].port(), 0);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.geoip.files, vec![PathBuf::from("etc/a.mmdb")]);
}

/// One config file for every pod of a DaemonSet: each pod's name and address come from flags.
#[test]
fn cluster_overrides_give_each_node_its_identity() {
    let text = "[cluster]\nid = \"from-file\"\naddresses = [\"10.0.0.1\"]\n\
                secret = \"0123456789abcdef0123456789abcdef\"\n\
                [[cluster.peers]]\nid = \"peer\"\nproxy = \"10.0.0.2:8080\"\nadmin = \"10.0.0.2:9153\"\n";
    let mut config = Config::from_toml_str(text, "t.toml", None).unwrap();
    config.apply(&Overrides::default());
    assert_eq!(config.cluster.id, "from-file");
    config.apply(&Overrides {
        cluster_id: Some("edgenode-7x2kq".into()),
        cluster_addresses: vec!["10.1.2.3".parse().unwrap(), "fd00::3".parse().unwrap()],
        ..Overrides::default()
    });
    assert_eq!(config.cluster.id, "edgenode-7x2kq");
    assert_eq!(config.cluster.addresses.len(), 2);
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    // A flag's value is checked like the file's: a peer's id, or no id at all, is refused.
    for id in ["peer", ""] {
        config.apply(&Overrides {
            cluster_id: Some(id.into()),
            ..Overrides::default()
        });
        let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
        assert!(
            problems.iter().any(|p| p.contains("cluster.")),
            "{id:?}: {problems:?}"
        );
    }
}

#[test]
fn deploy_example_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            let problems = config.validate();
            assert!(problems.is_empty(), "{}: {problems:?}", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0, "no example configs in {}", dir.display());
}

#[test]
fn recursion_settings_are_checked() {
    let text = "[recursion]\nforwarders = [\"127.0.0.1:53\"]\niterative = true\nallow = [\"0.0.0.0/0\"]\n\
                [cache]\nmemory = \"12KiB\"\n";
    let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
    let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("recursion.iterative"));
    assert!(problems[1].contains("open resolver"));
    assert!(problems[2].contains("cache.memory"));
    let config = Config::from_toml_str("[cache]\nmemory = \"2GiB\"\n", "t", None).unwrap();
    assert_eq!(config.cache.memory, ByteSize(2 << 30));
    let err = Config::from_toml_str("[cache]\nmemory = \"2 parsecs\"\n", "t", None).unwrap_err();
    assert!(err.to_string().contains("unknown unit"), "{err}");
    assert!(!Config::embedded().unwrap().recursion.enabled());
}

#[test]
fn tls_certificate_entries_are_checked_by_key_path() {
    let text = "[[tls.certificates]]\ncert = \"a.pem\"\nkey = \"a.key\"\nnames = [\"a.test\", \"*.a.test\"]\n\
                [[tls.certificates]]\ncert = \"b.pem\"\nkey = \"b.key\"\nnames = [\"A.test\", \"b.*.test\"]\n\
                [[tls.certificates]]\ncert = \"c.pem\"\nkey = \"c.key\"\nnames = []\n\
                [proxy]\norigin_ca = \"ca.pem\"\n";
    let config = Config::from_toml_str(text, "etc/t.toml", Some(Path::new("etc"))).expect("parses");
    assert_eq!(config.tls.certificates[1].key, PathBuf::from("etc/b.key"));
    assert_eq!(config.proxy.origin_ca, Some(PathBuf::from("etc/ca.pem")));
    let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains("tls.certificates[1].names: \"A.test\" is listed by an earlier entry")
    );
    assert!(problems[1].contains("tls.certificates[1].names: \"b.*.test\": a wildcard"));
    assert!(problems[2].contains("tls.certificates[2].names: empty"));
    let err = Config::from_toml_str("[[tls.certificates]]\ncert = \"a.pem\"\n", "t", None)
        .expect_err("key is required");
    assert!(err.to_string().contains("key"), "{err}");
}

#[test]
fn http_limits_have_defaults_and_are_checked() {
    let config = Config::embedded().unwrap();
    assert_eq!(config.http.header_timeout_ms, 10_000);
    assert_eq!(config.http.idle_timeout_ms, 60_000);
    assert_eq!(config.http.max_header_bytes, ByteSize(64 << 10));
    assert_eq!(config.http.max_streams, 256);
    assert_eq!(config.proxy.max_request_body, ByteSize(16 << 20));
    let text = "[http]\nheader_timeout_ms = 0\nidle_timeout_ms = 0\nmax_headers = 0\n\
                max_header_bytes = \"4KiB\"\nmax_streams = 0\n[proxy]\nmax_request_body = \"1KiB\"\n";
    let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
    let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 5, "{problems:?}");
    for (problem, key) in problems.iter().zip([
        "http.header_timeout_ms",
        "http.idle_timeout_ms",
        "http.max_streams",
        "http.max_headers",
        "http.max_header_bytes",
    ]) {
        assert!(problem.contains(key), "{problem} should name {key}");
    }
    assert_eq!(config.proxy.max_request_body, ByteSize(1024));
}

/// The "Configuration" block of docs/configuration.md lists every key: it parses (no key misspelt or gone) and
/// validates.
#[test]
fn the_readme_configuration_example_parses() {
    let readme = include_str!("../../docs/configuration.md");
    let section = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a toml block");
    let config =
        Config::from_toml_str(block, "docs/configuration.md", None).expect("the documented config");
    assert!(config.proxy.surrogate_control);
    let problems = config.validate();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn proxy_host_rules_are_checked() {
    let text = "[proxy]\nhsts = \"includeSubDomains\"\ntargeted_cache_control = \"Cache-Control\"\n\
                [[proxy.hosts]]\nhost = \"a.test\"\norigins = [\"http://127.0.0.1:1\"]\n\
                never_store_statuses = [99]\nhsts = \"max-age=x\"\n";
    let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
    let problems = format!("{:?}", config.validate());
    for key in [
        "proxy.hsts",
        "proxy.targeted_cache_control",
        "proxy.hosts[0].never_store_statuses",
        "proxy.hosts[0].hsts",
    ] {
        assert!(problems.contains(key), "{key} in {problems}");
    }
}

/// A cluster needs its secret, of enough bytes, from the config or a file beside it.
#[test]
fn a_cluster_needs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("short"), "0123456789\n").unwrap();
    let peer =
        "[[cluster.peers]]\nid = \"b\"\nproxy = \"10.0.0.2:80\"\nadmin = \"10.0.0.2:9153\"\n";
    let problems = |cluster: &str| {
        let text = format!("[cluster]\n{cluster}{peer}");
        let config = Config::from_toml_str(&text, "t.toml", Some(dir.path())).expect("parses");
        let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
        problems.join("\n")
    };
    assert!(
        problems("").contains("cluster.secret: required"),
        "{}",
        problems("")
    );
    let short = problems("secret = \"too short\"\n");
    assert!(
        short.contains("cluster.secret: has 9 bytes; at least 32"),
        "{short}"
    );
    assert_eq!(problems("secret_file = \"good\"\n"), "");
    let short_file = problems("secret_file = \"short\"\n");
    assert!(
        short_file.contains("cluster.secret_file: has 10 bytes"),
        "{short_file}"
    );
    let missing = problems("secret_file = \"absent\"\n");
    assert!(
        missing.contains("cluster.secret_file: cannot read"),
        "{missing}"
    );
    assert!(missing.contains("absent"), "{missing}");
    let both = problems("secret = \"0123456789abcdef0123456789abcdef\"\nsecret_file = \"good\"\n");
    assert!(both.contains("not both"), "{both}");
    let heavy = problems("secret_file = \"good\"\nweight = 10001\n");
    assert!(
        heavy.contains("cluster.weight: must be between 1 and 10000"),
        "{heavy}"
    );
}

/// `admin.tls_listen` beyond loopback needs the token as `admin.listen` does; `client_ca` is
/// taken from the file's directory, must be a readable PEM bundle, and needs `tls_listen`.
#[test]
fn the_admin_tls_listener_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), generated.cert.pem()).unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let problems = |admin: &str| {
        let text = format!("[admin]\n{admin}");
        let config = Config::from_toml_str(&text, "t.toml", Some(dir.path())).expect("parses");
        let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
        problems.join("\n")
    };
    let ok = "tls_listen = \"127.0.0.1:9443\"\nclient_ca = \"ca.pem\"\n";
    assert_eq!(problems(ok), "");
    let config = Config::from_toml_str(&format!("[admin]\n{ok}"), "t.toml", Some(dir.path()));
    assert_eq!(
        config.unwrap().admin.client_ca,
        Some(dir.path().join("ca.pem"))
    );

    let open = problems("tls_listen = \"192.0.2.1:9443\"\n");
    assert!(
        open.contains("admin.token: required because admin.tls_listen 192.0.2.1:9443"),
        "{open}"
    );
    let weak = problems("tls_listen = \"192.0.2.1:9443\"\ntoken = \"change-me-please-now\"\n");
    assert!(weak.contains("admin.token: too weak"), "{weak}");
    let strong = "tls_listen = \"192.0.2.1:9443\"\ntoken = \"0123456789abcdef-strong\"\n";
    assert_eq!(problems(strong), "");

    let alone = problems("client_ca = \"ca.pem\"\n");
    assert!(
        alone.contains("admin.client_ca: requires admin.tls_listen"),
        "{alone}"
    );
    let missing = problems("tls_listen = \"127.0.0.1:9443\"\nclient_ca = \"absent.pem\"\n");
    assert!(
        missing.contains("admin.client_ca: cannot read"),
        "{missing}"
    );
    assert!(missing.contains("absent.pem"), "{missing}");
    let empty = problems("tls_listen = \"127.0.0.1:9443\"\nclient_ca = \"empty.pem\"\n");
    assert!(
        empty.contains("admin.client_ca") && empty.contains("no PEM certificate"),
        "{empty}"
    );
}

/// `admin.listen = "off"` turns the plain admin listener off; a bad address names the key.
#[test]
fn the_admin_listener_can_be_turned_off() {
    let off = Config::from_toml_str("[admin]\nlisten = \"off\"\n", "t.toml", None).unwrap();
    assert_eq!(off.admin.listen, None);
    let on = Config::from_toml_str("[admin]\nlisten = \"127.0.0.2:9\"\n", "t.toml", None).unwrap();
    assert_eq!(on.admin.listen, Some("127.0.0.2:9".parse().unwrap()));
    let bad = Config::from_toml_str("[admin]\nlisten = \"nowhere\"\n", "t.toml", None)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("listen") && bad.contains("\"off\""), "{bad}");
    let text = "[admin]\nlisten = \"off\"\n[cluster]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
                [[cluster.peers]]\nid = \"b\"\nproxy = \"10.0.0.2:80\"\nadmin = \"10.0.0.2:9153\"\n";
    let clustered = Config::from_toml_str(text, "t.toml", None).unwrap();
    let problems: Vec<String> = clustered.validate().iter().map(|p| p.to_string()).collect();
    assert!(
        problems.iter().any(|p| p.contains("admin.listen: is off")),
        "{problems:?}"
    );
}
