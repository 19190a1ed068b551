//! The `edgenode` command line: `serve`, `check`, `geoip lookup`, `geoip build`, `preload`,
//! `purge`.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use edgenode::app::Node;
use edgenode::cli::purge::PurgeWhat;
use edgenode::cli::{AdminClient, CliError, ClientTls};
use edgenode::config::{Config, ConfigError, LogFormat, Overrides};
use edgenode::geo::Geo;
use edgenode::reload::load_state;

#[derive(Parser)]
#[command(
    name = "edgenode",
    version,
    about = "A CDN edge node: GeoDNS, HTTPDNS and a caching proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node (with no options: the embedded default config, zones from ./zones).
    Serve(ConfigArgs),
    /// Validate the config, zones, geo policies and GeoIP files without serving.
    Check(ConfigArgs),
    /// GeoIP tools.
    #[command(subcommand)]
    Geoip(GeoipCommand),
    /// Warm a node's cache with the URLs of FILE (on each URL's owner in a cluster); exit 1 if
    /// any URL failed.
    Preload {
        #[command(flatten)]
        admin: AdminArgs,
        /// Warm every URL on every node of the cluster, not only on its owner.
        #[arg(long)]
        all: bool,
        /// One absolute URL per line (`#` comments and blank lines skipped); `-` reads stdin.
        file: PathBuf,
    },
    /// Purge cached objects on a node, or on every node of its cluster; exit 1 if any node
    /// failed.
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        target: PurgeTargetArgs,
        /// Mark stale instead of removing (still served when the origin fails).
        #[arg(long)]
        soft: bool,
        /// Purge on the node and on every peer it knows (the node asks them, signed with
        /// the cluster's secret; the token goes to this node only).
        #[arg(long)]
        cluster: bool,
    },
    /// Print a new random cluster secret (64 hex digits) for `cluster.secret`.
    Secret,
}

/// Where a node's admin API is, and how to reach it.
#[derive(Args, Clone)]
struct AdminArgs {
    /// The node's admin address, e.g. http://127.0.0.1:9153, or https://... for
    /// admin.tls_listen.
    #[arg(long, value_name = "URL")]
    admin: String,
    /// Bearer token for /admin/* (admin.token).
    #[arg(long, env = "EDGENODE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// For https://: trust the CA certificates (or the self-signed certificate) in this PEM
    /// file instead of the public roots, as curl --cacert does.
    #[arg(long, value_name = "FILE", env = "EDGENODE_ADMIN_CACERT")]
    cacert: Option<PathBuf>,
    /// For https://: present this client certificate (PEM chain) when the node asks for one
    /// (admin.client_ca).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct PurgeTargetArgs {
    /// One URL (http://host/path?query, or host/path) and its stored variants.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Every URL starting with this (http://host/path/ or host/path/).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Every object the origin tagged so (Cache-Tag).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
}

// Parsed once per process: the size of the `Lookup` variant (all the config flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum GeoipCommand {
    /// Print what the node decides for an address (country, continent, ASN, override).
    Lookup {
        ip: IpAddr,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write a MaxMind DB file from CSV rows `network,country,continent[,asn]`.
    Build {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// TOML configuration file (default: the embedded configuration).
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

impl ConfigArgs {
    /// The configuration with CLI overrides applied, validated.
    fn load(&self) -> Result<Config, UnusableConfig> {
        let config =
            Config::load(self.config.as_deref(), &self.overrides).map_err(UnusableConfig::Load)?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(UnusableConfig::Invalid(problems))
        }
    }
}

/// Why a configuration cannot be served: it cannot be read or parsed, or every problem
/// `validate()` found in it (one per line).
#[derive(Debug, thiserror::Error)]
enum UnusableConfig {
    #[error("{0}")]
    Load(ConfigError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// mimalloc instead of the system allocator: with glibc's, 100,000 cached 1 KiB objects left
/// the process at 5.5 KiB of RSS per object (freed connection buffers between the stored
/// objects); see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Check(args) => check(&args),
        Command::Geoip(GeoipCommand::Lookup { ip, config }) => geoip_lookup(ip, &config),
        Command::Geoip(GeoipCommand::Build { input, output }) => geoip_build(&input, &output),
        Command::Preload { admin, all, file } => preload(&admin, all, &file),
        Command::Purge {
            admin,
            target,
            soft,
            cluster,
        } => purge(&admin, &target, soft, cluster),
        Command::Secret => {
            println!("{}", edgenode::cluster::auth::new_secret());
            ExitCode::SUCCESS
        }
    }
}

fn preload(admin: &AdminArgs, all: bool, file: &std::path::Path) -> ExitCode {
    let urls = match edgenode::cli::preload::read_list(file) {
        Ok(urls) => urls,
        Err(e) => return fail(e),
    };
    run_client(admin, |client| async move {
        edgenode::cli::preload::run(&client, &urls, all).await
    })
}

fn purge(admin: &AdminArgs, target: &PurgeTargetArgs, soft: bool, cluster: bool) -> ExitCode {
    let what = match (&target.url, &target.prefix, &target.tag) {
        (Some(url), _, _) => PurgeWhat::Url(url.clone()),
        (_, Some(prefix), _) => PurgeWhat::Prefix(prefix.clone()),
        (_, _, Some(tag)) => PurgeWhat::Tag(tag.clone()),
        // clap's group requires one of them.
        _ => return fail("give one of --url, --prefix, --tag"),
    };
    run_client(admin, |client| async move {
        edgenode::cli::purge::run(&client, &what, soft, cluster).await
    })
}

/// Runs an admin client command: exit 0 when it reports success, 1 when it reports a
/// failure (already printed) or cannot finish.
fn run_client<F, Fut>(admin: &AdminArgs, command: F) -> ExitCode
where
    F: FnOnce(AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<bool, CliError>>,
{
    let tls = ClientTls {
        cacert: admin.cacert.clone(),
        identity: admin.cert.clone().zip(admin.key.clone()),
    };
    let client = match AdminClient::new(&admin.admin, admin.token.clone(), &tls) {
        Ok(client) => client,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(command(client)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("edgenode: {message}");
    ExitCode::FAILURE
}

fn serve(args: &ConfigArgs) -> ExitCode {
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // A worker with nothing left to run first lets whatever else is runnable on its core
        // go (a client, another service, the kernel's network work) before it sleeps in
        // epoll_wait: the requests that this brings in are then ready at once, instead of each
        // costing a sleep and a wakeup. With nothing else runnable the call returns at once.
        .on_thread_park(std::thread::yield_now)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let node = match Node::start(config).await {
            Ok(node) => node,
            Err(e) => return fail(e),
        };
        // Machine-readable lines on stdout (tests and scripts read the real ports from them).
        for (kind, addr) in node.listening.all() {
            announce(&format!("listening {kind} {addr}"));
            tracing::info!(%kind, %addr, "listening");
        }
        if let Some(cert) = &node.self_signed_cert {
            announce(&format!("tls-certificate {}", cert.display()));
            tracing::info!(path = %cert.display(), "self-signed TLS certificate generated (trust it with curl --cacert)");
        }
        announce("ready");
        wait_for_termination().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// A machine-readable line on stdout; a closed stdout (a supervisor that stopped reading) must
/// not stop the node, so write errors are ignored.
fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn check(args: &ConfigArgs) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), &args.overrides) {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    let mut problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    let tls = &config.tls;
    // A half-configured tls.cert/tls.key is already one of validate()'s problems.
    let half_configured = tls.cert.is_some() != tls.key.is_some();
    if !half_configured && (tls.cert.is_some() || !tls.certificates.is_empty()) {
        // Certificates from files: nothing is generated in the scratch directory.
        match edgenode::tls::setup(tls, &std::env::temp_dir()) {
            Ok(setup) => {
                for line in setup.store.current().summary() {
                    println!("tls {line}: ok");
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Err(e) = edgenode::proxy::upstream::Upstream::new(&config.proxy) {
        problems.push(format!("{}: {e}", config.source));
    }
    let state = load_state(&config, None);
    match &state {
        Ok(state) => {
            let mut origins: Vec<String> = state.zones.origins().map(ToString::to_string).collect();
            origins.sort();
            println!("config {}: ok", config.source);
            for origin in origins {
                println!("zone {origin}: ok");
            }
            // Warnings do not stop a zone (NSD and Knot load such zones too): shown, counted.
            let warnings: Vec<_> = state.zones.zones().flat_map(|z| &z.warnings).collect();
            for warning in &warnings {
                eprintln!("{warning}");
            }
            if !warnings.is_empty() {
                eprintln!("edgenode check: {} warning(s)", warnings.len());
            }
            for line in state.geo.describe() {
                println!("geoip {line}: ok");
            }
        }
        Err(error) => problems.extend(error.lines()),
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!("edgenode check: {} problem(s)", problems.len());
        ExitCode::FAILURE
    }
}

fn geoip_lookup(ip: IpAddr, args: &ConfigArgs) -> ExitCode {
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    let geo = match Geo::load(&config.geoip.files, &config.geoip.overrides) {
        Ok(geo) => geo,
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return fail(text.join("\n"));
        }
    };
    let scope = geo.lookup(ip);
    let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("address    {ip}");
    println!("country    {}", show(scope.country.map(|c| c.to_string())));
    println!(
        "continent  {}",
        show(scope.continent.map(|c| c.to_string()))
    );
    println!("asn        {}", show(scope.asn.map(|a| a.to_string())));
    println!(
        "override   {}",
        show(scope.matched_override.map(|o| o.to_string()))
    );
    println!("prefix     /{}", scope.prefix_len);
    ExitCode::SUCCESS
}

fn geoip_build(input: &std::path::Path, output: &std::path::Path) -> ExitCode {
    match edgenode::geo::build_mmdb_from_csv(input) {
        Ok(bytes) => match std::fs::write(output, &bytes) {
            Ok(()) => {
                println!("wrote {} ({} bytes)", output.display(), bytes.len());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("{}: {e}", output.display())),
        },
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            fail(format!(
                "{}: {} problem(s), nothing written",
                input.display(),
                errors.len()
            ))
        }
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    // hickory-server logs every request at info, and the recursor every NXDOMAIN at warn:
    // keep them quieter unless the level names hickory itself.
    let level = if config.log.level.contains("hickory") {
        config.log.level.clone()
    } else {
        format!(
            "{},hickory_server=warn,hickory_resolver=error",
            config.log.level
        )
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
