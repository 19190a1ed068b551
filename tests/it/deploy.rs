//! `deploy/`: the Kubernetes manifests parse and fit together, the config and zones they ship
//! pass `edgenode check` exactly as a pod would run it, the systemd unit verifies, the
//! simulation scripts are shellcheck-clean, and `--cluster-id`/`--cluster-address` name a node.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{Node, edgenode, have_tool, http_request, repo_root};

/// One YAML document and the file it came from.
struct Manifest {
    file: PathBuf,
    doc: Yaml,
}

impl Manifest {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// Every file under `deploy/` whose name ends in one of `extensions`, except the simulation's
/// state directory (made by deploy/sim/up.sh, not part of the repository).
fn deploy_files(extensions: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.ends_with("deploy/sim/run") {
                continue;
            }
            if path.is_dir() {
                walk(&path, extensions, found);
            } else if path
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("deploy"), extensions, &mut found);
    found
}

/// Every YAML document under deploy/, each checked to have apiVersion, kind and metadata.name.
fn manifests() -> Vec<Manifest> {
    let mut manifests = Vec::new();
    for file in deploy_files(&["yaml", "yml"]) {
        let text = std::fs::read_to_string(&file).expect("read manifest");
        let docs =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let manifest = Manifest {
                file: file.clone(),
                doc,
            };
            let place = format!("{} ({})", file.display(), manifest.kind());
            assert!(
                manifest.doc["apiVersion"].as_str().is_some(),
                "{place}: no apiVersion"
            );
            assert!(!manifest.kind().is_empty(), "{place}: no kind");
            assert!(!manifest.name().is_empty(), "{place}: no metadata.name");
            manifests.push(manifest);
        }
    }
    manifests
}

fn find<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> &'a Manifest {
    manifests
        .iter()
        .find(|m| m.kind() == kind && m.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name:?} under deploy/"))
}

fn the_one<'a>(manifests: &'a [Manifest], kind: &str) -> &'a Manifest {
    let mut of_kind = manifests.iter().filter(|m| m.kind() == kind);
    let first = of_kind
        .next()
        .unwrap_or_else(|| panic!("no {kind} under deploy/"));
    assert!(
        of_kind.next().is_none(),
        "more than one {kind} under deploy/"
    );
    first
}

fn strings(yaml: &Yaml) -> Vec<&str> {
    yaml.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

/// The DaemonSet's one container.
fn container(daemonset: &Manifest) -> &Yaml {
    let containers = daemonset.doc["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one edgenode container");
    &containers[0]
}

#[test]
fn kubernetes_manifests_fit_together() {
    let manifests = manifests();
    let daemonset = the_one(&manifests, "DaemonSet");
    let namespace = the_one(&manifests, "Namespace").name();
    for m in manifests
        .iter()
        .filter(|m| m.doc["metadata"]["namespace"].as_str().is_some())
    {
        assert_eq!(
            m.doc["metadata"]["namespace"].as_str(),
            Some(namespace),
            "{}: {} {}",
            m.file.display(),
            m.kind(),
            m.name()
        );
    }
    let spec = &daemonset.doc["spec"]["template"]["spec"];
    let container = container(daemonset);

    // Probes on the admin listener's health endpoints.
    let port_names: Vec<&str> = container["ports"]
        .as_vec()
        .expect("container ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container[probe]["httpGet"]["path"].as_str(), Some(path));
        let port = container[probe]["httpGet"]["port"]
            .as_str()
            .expect("named port");
        assert!(port_names.contains(&port), "{probe} port {port}");
    }
    // Every $(VAR) in the arguments comes from the container's env.
    let env: Vec<&str> = container["env"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for arg in strings(&container["args"]) {
        for var in arg
            .split("$(")
            .skip(1)
            .filter_map(|rest| rest.split_once(')'))
        {
            assert!(env.contains(&var.0), "{arg}: {} is not in env", var.0);
        }
    }
    // Locked down, and bounded.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !container["resources"][bound][resource].is_badvalue(),
                "resources.{bound}.{resource}"
            );
        }
    }

    // Every Service port leads to a port the container declares.
    let selector = &daemonset.doc["spec"]["selector"]["matchLabels"];
    let services: Vec<&Manifest> = manifests.iter().filter(|m| m.kind() == "Service").collect();
    assert!(
        services.len() >= 2,
        "a headless Service and a client-facing one"
    );
    for service in &services {
        assert_eq!(
            &service.doc["spec"]["selector"],
            selector,
            "{}",
            service.name()
        );
        for port in service.doc["spec"]["ports"].as_vec().expect("ports") {
            let target = port["targetPort"].as_str().expect("named targetPort");
            assert!(
                port_names.contains(&target),
                "Service {} targets {target}, which the container does not declare",
                service.name()
            );
        }
    }
    // DNS over UDP and TCP to the clients.
    let protocols: Vec<&str> = services
        .iter()
        .flat_map(|s| s.doc["spec"]["ports"].as_vec().into_iter().flatten())
        .filter(|p| p["port"].as_i64() == Some(53))
        .map(|p| p["protocol"].as_str().unwrap_or("TCP"))
        .collect();
    assert!(
        protocols.contains(&"UDP") && protocols.contains(&"TCP"),
        "{protocols:?}"
    );

    // The headless Service is the one the config discovers peers by.
    let config = pod_config(&manifests, &tempfile::tempdir().expect("tempdir"));
    let discovery = config.cluster.discovery.expect("cluster.discovery is set");
    let headless = services
        .iter()
        .find(|s| s.doc["spec"]["clusterIP"].as_str() == Some("None"))
        .expect("a headless Service");
    assert_eq!(
        discovery.name,
        format!("{}.{namespace}.svc.cluster.local", headless.name())
    );
    assert_eq!(
        headless.doc["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true),
        "heartbeats, not readiness, decide which peers are up"
    );
    let container_port = |name: &str| {
        container["ports"]
            .as_vec()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
    };
    assert_eq!(
        container_port("proxy"),
        Some(i64::from(discovery.proxy_port))
    );
    assert_eq!(
        container_port("admin"),
        Some(i64::from(discovery.admin_port))
    );
    assert_eq!(
        config.admin.listen.map(|a| i64::from(a.port())),
        container_port("admin")
    );
}

/// Writes the files the DaemonSet mounts from ConfigMaps under `root` (each mount path made
/// relative), as the pod sees them; returns the container's arguments with those paths moved
/// under `root` and the downward-API variables filled in.
fn materialize_pod(manifests: &[Manifest], root: &Path) -> Vec<String> {
    let daemonset = the_one(manifests, "DaemonSet");
    let container = container(daemonset);
    let volumes = daemonset.doc["spec"]["template"]["spec"]["volumes"]
        .as_vec()
        .expect("volumes");
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_vec().expect("volumeMounts") {
        let name = mount["name"].as_str().expect("mount name");
        let path = mount["mountPath"].as_str().expect("mountPath");
        let volume = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no volume {name}"));
        // A ConfigMap of its own, or a projection of ConfigMaps and Secrets into one directory.
        let sources: Vec<&Yaml> = match volume["projected"]["sources"].as_vec() {
            Some(sources) => sources.iter().collect(),
            None if !volume["configMap"].is_badvalue() => vec![volume],
            None => continue,
        };
        let dir = root.join(path.trim_start_matches('/'));
        for source in sources {
            let (kind, source, field) = match &source["secret"] {
                Yaml::BadValue => ("ConfigMap", &source["configMap"], "data"),
                secret => ("Secret", secret, "stringData"),
            };
            let name = source["name"].as_str().expect("source name");
            let data = &find(manifests, kind, name).doc[field];
            let items = source["items"].as_vec().expect("items");
            for item in items {
                let key = item["key"].as_str().expect("item key");
                let text = data[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{kind} {name} has no key {key}"));
                let file = dir.join(item["path"].as_str().expect("item path"));
                std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                std::fs::write(&file, text).expect("write");
            }
            let keys = data.as_hash().expect("data").len();
            assert_eq!(items.len(), keys, "every key of {kind} {name} is mounted");
        }
        mounts.push((path.to_string(), dir));
    }
    assert!(!mounts.is_empty(), "the DaemonSet mounts a ConfigMap");
    let mut args: Vec<String> = strings(&container["args"])
        .into_iter()
        .map(|arg| {
            let mut arg = arg
                .replace("$(POD_NAME)", "edgenode-7x2kq")
                .replace("$(POD_IP)", "10.42.0.17")
                .replace("$(HOST_IP)", "192.0.2.17");
            assert!(
                !arg.contains("$("),
                "a variable the test does not know: {arg}"
            );
            for (path, dir) in &mounts {
                arg = arg.replace(path.as_str(), &dir.display().to_string());
            }
            arg
        })
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    args.remove(0);
    args
}

/// The pod's configuration, read and overridden as `serve` does with the container's flags.
fn pod_config(manifests: &[Manifest], root: &tempfile::TempDir) -> edgenode::config::Config {
    let args = materialize_pod(manifests, root.path());
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("the container passes --{name}=..."))
    };
    let mut config = edgenode::config::Config::from_file(Path::new(&flag("config")))
        .unwrap_or_else(|e| {
            panic!("{e}");
        });
    config.apply(&edgenode::config::Overrides {
        cluster_id: Some(flag("cluster-id")),
        cluster_addresses: vec![flag("cluster-address").parse().expect("an IP")],
        ..Default::default()
    });
    let problems = config.validate();
    assert!(problems.is_empty(), "{problems:?}");
    config
}

/// The ConfigMap's config and zones, laid out as the pod mounts them, pass `edgenode check`
/// with the DaemonSet's own arguments; every zone file in the ConfigMap is loaded.
#[test]
fn the_kubernetes_config_passes_edgenode_check_as_the_pod_runs_it() {
    let manifests = manifests();
    let root = tempfile::tempdir().expect("tempdir");
    let config = pod_config(&manifests, &root);
    assert_eq!(config.cluster.id, "edgenode-7x2kq");
    let state = edgenode::reload::load_state(&config, None).unwrap_or_else(|e| panic!("{e:?}"));
    let zone_files = std::fs::read_dir(&config.dns.zones)
        .expect("zones dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "zone"))
        })
        .count();
    assert!(zone_files > 0, "the ConfigMap ships zones");
    assert_eq!(state.zones.origins().count(), zone_files);

    let mut args = vec!["check".to_string()];
    args.extend(materialize_pod(&manifests, root.path()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = edgenode(&args);
    assert!(ok, "edgenode {args:?}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("zone example.test.: ok"), "{stdout}");
}

/// Every TOML config under deploy/ (deploy/edgenode.toml and any in subdirectories) parses and
/// validates, and `edgenode check` accepts it as far as it can without the host's files.
#[test]
fn every_config_under_deploy_parses_and_validates() {
    let files = deploy_files(&["toml"]);
    assert!(!files.is_empty());
    for file in files {
        let config = edgenode::config::Config::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let problems = config.validate();
        assert!(problems.is_empty(), "{}: {problems:?}", file.display());
    }
}

/// `systemd-analyze verify` accepts the unit (with the binary's path pointed at this build,
/// since /usr/local/bin/edgenode is not installed here) without a warning about it.
#[test]
fn the_systemd_unit_verifies() {
    let unit = repo_root().join("deploy/systemd/edgenode.service");
    let text = std::fs::read_to_string(&unit).expect("deploy/systemd/edgenode.service");
    assert!(text.contains("ExecStart=/usr/local/bin/edgenode serve --config "));
    assert!(text.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    if !have_tool("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("edgenode.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/edgenode", env!("CARGO_BIN_EXE_edgenode")),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("edgenode.service"))
        .collect();
    assert!(about_unit.is_empty(), "{about_unit:#?}");
}

/// The simulation's scripts pass `bash -n` and shellcheck (following their `source`s).
#[test]
fn the_simulation_scripts_are_shellcheck_clean() {
    let scripts = deploy_files(&["sh"]);
    assert!(scripts.len() >= 3, "up.sh, demo.sh, down.sh: {scripts:?}");
    for script in &scripts {
        let out = Command::new("bash")
            .arg("-n")
            .arg(script)
            .output()
            .expect("run bash");
        assert!(out.status.success(), "{}: {out:?}", script.display());
    }
    if !have_tool("shellcheck") {
        return;
    }
    let out = Command::new("shellcheck")
        .arg("-x")
        .args(&scripts)
        .current_dir(repo_root())
        .output()
        .expect("run shellcheck");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// One config for many nodes: the flags give each its id and address, and its peers see them
/// in its heartbeat answer.
#[test]
fn cluster_id_and_address_flags_name_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[dns]\nzones = \"{}\"\n[cluster]\nsecret = \"{}\"\n",
        crate::support::repo_root().join("zones").display(),
        crate::support::CLUSTER_SECRET
    );
    let config = crate::support::write_file(dir.path(), "node.toml", &text);
    let node = Node::start(&[
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--cluster-id",
        "edgenode-7x2kq",
        "--cluster-address",
        "127.0.0.31",
        "--cluster-address",
        "::1",
    ]);
    let admin = node.admin.expect("admin listener");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Asked as a peer asks: signed with the cluster's secret.
    let host = admin.to_string();
    let target = edgenode::cluster::auth::Target {
        method: &hyper::Method::GET,
        host: &host,
        path: "/cluster/heartbeat",
    };
    let keys = edgenode::cluster::auth::Keys::new(crate::support::CLUSTER_SECRET.as_bytes());
    let (field, _) = keys.sign_request("peer", target, std::time::SystemTime::now());
    let signed = [(
        edgenode::cluster::auth::AUTH_HEADER,
        field.to_str().expect("ASCII"),
    )];
    let (status, _, body) = runtime.block_on(http_request(
        admin,
        "GET",
        "/cluster/heartbeat",
        &signed,
        Vec::new(),
    ));
    assert_eq!(status, 200);
    let me: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(me["id"], "edgenode-7x2kq");
    assert_eq!(me["addresses"], serde_json::json!(["127.0.0.31", "::1"]));

    let (ok, _, stderr) = edgenode(&["check", "--cluster-id", "no spaces allowed"]);
    assert!(!ok);
    assert!(stderr.contains("cluster.id"), "{stderr}");
}
