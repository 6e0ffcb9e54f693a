//! The command line: `serve`, `import`, `export`, `verify`, `tenants`, `keys`. Every flag has an
//! `ACTLOG_*` environment variable. Administration commands open the store directly, so they
//! run while the server is stopped (sled allows one process per data directory).

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};

use actlog::http::wire::{ActivityIn, KeyOut, TenantOut};
use actlog::http::{self, ServeOptions};
use actlog::{Durability, NewActivity, Options, Scope, Store, TenantPatch, TenantSettings};

/// An append-only activity-log store, served over HTTP.
#[derive(Debug, Parser)]
#[command(name = "actlog", version, about, propagate_version = true)]
pub struct Cli {
    /// The data directory (created on first use).
    #[arg(
        long,
        global = true,
        env = "ACTLOG_DATA_DIR",
        default_value = "./actlog-data"
    )]
    pub data_dir: PathBuf,
    /// When a write is acknowledged: `sync` after it is on disk, `relaxed` at once (flushed
    /// every 100 ms).
    #[arg(long, global = true, env = "ACTLOG_DURABILITY", value_enum, default_value_t = DurabilityArg::Sync)]
    pub durability: DurabilityArg,
    /// sled's page cache, in MiB.
    #[arg(long, global = true, env = "ACTLOG_CACHE_MB", default_value_t = 128)]
    pub cache_mb: u64,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `actlog=debug,tower_http=info`).
    #[arg(long, global = true, env = "ACTLOG_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    Sync,
    Relaxed,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API. The first start creates tenant `default` and an admin key.
    Serve(ServeArgs),
    /// Append the activities of an NDJSON file (one POST /v1/activities object a line).
    Import(ImportArgs),
    /// Write a tenant's activities to stdout as NDJSON (or CSV).
    Export(ExportArgs),
    /// Check that every index entry and record agree.
    Verify,
    /// Create, list and change tenants.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Issue, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Benchmark actlog against SQLite on a seeded dataset (needs `--features bench`).
    Bench(BenchArgs),
}

/// The benchmark's options (BENCHMARKS.md).
#[cfg(feature = "bench")]
pub type BenchArgs = actlog::bench::BenchOptions;

/// Without the `bench` feature the subcommand only says how to get it.
#[cfg(not(feature = "bench"))]
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
    #[arg(long, env = "ACTLOG_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Largest request body in bytes; larger is a 413.
    #[arg(long, env = "ACTLOG_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    /// Seconds a request may take until its response starts; longer is a 503.
    #[arg(long, env = "ACTLOG_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Requests handled at once; more wait for a slot (within the request timeout).
    #[arg(long, env = "ACTLOG_CONCURRENCY_LIMIT", default_value_t = 256)]
    pub concurrency_limit: usize,
    /// Requests a second each API key may make; more get a 429 with Retry-After (0: no limit).
    #[arg(long, env = "ACTLOG_RATE_LIMIT_PER_SEC", default_value_t = http::ratelimit::RateLimit::default().per_second)]
    pub rate_limit_per_sec: u32,
    /// Requests an idle API key may make at once before its rate applies.
    #[arg(long, env = "ACTLOG_RATE_LIMIT_BURST", default_value_t = http::ratelimit::RateLimit::default().burst)]
    pub rate_limit_burst: u32,
    /// Requests a second from one client address without a valid API key; more get a 429 (0: no limit).
    #[arg(long, env = "ACTLOG_PEER_RATE_LIMIT_PER_SEC", default_value_t = http::Config::default().peer_rate_limit.per_second)]
    pub peer_rate_limit_per_sec: u32,
    /// Requests an idle client address may make at once without a valid API key.
    #[arg(long, env = "ACTLOG_PEER_RATE_LIMIT_BURST", default_value_t = http::Config::default().peer_rate_limit.burst)]
    pub peer_rate_limit_burst: u32,
    /// Stored entries one store call of a request may examine; past it, a 400 (0: no cap).
    #[arg(long, env = "ACTLOG_MAX_EXAMINED", default_value_t = http::Config::default().max_examined)]
    pub max_examined: u64,
    /// Requests one API key may have in progress at once; more wait their turn (0: no limit).
    /// Default: twice the cores, at least 4.
    #[arg(long, env = "ACTLOG_PER_KEY_CONCURRENCY", default_value_t = http::default_per_key_concurrency())]
    pub per_key_concurrency: usize,
    /// Exports one API key may run at once; more get a 429 (0: no limit).
    #[arg(long, env = "ACTLOG_MAX_EXPORTS_PER_KEY", default_value_t = http::Config::default().max_exports_per_key)]
    pub max_exports_per_key: usize,
    /// Live-tail streams one API key may hold open; more get a 429.
    #[arg(long, env = "ACTLOG_MAX_STREAMS_PER_KEY", default_value_t = http::Config::default().max_streams_per_key)]
    pub max_streams_per_key: usize,
    /// Live-tail streams the server holds open in all; more get a 503.
    #[arg(long, env = "ACTLOG_MAX_STREAMS", default_value_t = http::Config::default().max_streams)]
    pub max_streams: usize,
    /// Seconds a response may wait for a client that does not read before the connection is dropped.
    #[arg(long, env = "ACTLOG_WRITE_TIMEOUT_SECS", default_value_t = 30)]
    pub write_timeout_secs: u64,
    /// Connections held open at once; more wait in the listen backlog.
    #[arg(long, env = "ACTLOG_MAX_CONNECTIONS", default_value_t = http::Config::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a connection has to send a complete request head (also how long an idle keep-alive connection stays open).
    #[arg(long, env = "ACTLOG_HEADER_TIMEOUT_SECS", default_value_t = 15)]
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay silent in both directions while the server waits on it (at least the request timeout + 1).
    #[arg(long, env = "ACTLOG_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Heavy store calls (past 2,000 entries examined) running at once, taking turns; one per key
    /// (0: no turns). Default: one fewer than the cores, at least 1.
    #[arg(long, env = "ACTLOG_HEAVY_CONCURRENCY", default_value_t = http::default_heavy_concurrency())]
    pub heavy_concurrency: usize,
    /// Seconds between retention purges (0 disables them).
    #[arg(long, env = "ACTLOG_PURGE_INTERVAL_SECS", default_value_t = 3600)]
    pub purge_interval_secs: u64,
    /// Seconds shutdown waits for in-flight requests before flushing and exiting anyway.
    #[arg(long, env = "ACTLOG_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Also write the bound address to this file once listening.
    #[arg(long, env = "ACTLOG_ADDR_FILE")]
    pub addr_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Stop at the first bad line (the lines before it stay imported).
    Fail,
    /// Report bad lines and go on.
    Skip,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The NDJSON file, or `-` for stdin.
    pub file: PathBuf,
    /// The tenant to import into (default: the first tenant created).
    #[arg(long, env = "ACTLOG_TENANT")]
    pub tenant: Option<String>,
    /// Activities per batch (1-1000); each batch is written all or nothing.
    #[arg(long, env = "ACTLOG_IMPORT_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// What a bad line does.
    #[arg(long, env = "ACTLOG_ON_ERROR", value_enum, default_value_t = OnError::Fail)]
    pub on_error: OnError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tenant to export (default: the first tenant created).
    #[arg(long, env = "ACTLOG_TENANT")]
    pub tenant: Option<String>,
    /// Oldest first (`asc`, the default, which `import` reads back in order) or newest first.
    #[arg(long, env = "ACTLOG_EXPORT_ORDER", value_enum, default_value_t = OrderArg::Asc)]
    pub order: OrderArg,
    /// Output format.
    #[arg(long, env = "ACTLOG_EXPORT_FORMAT", value_enum, default_value_t = ExportFormat::Ndjson)]
    pub format: ExportFormat,
    /// A filter as `NAME=VALUE`, with the names of GET /v1/activities (`action=invoice.*`,
    /// `since=2024-01-01`, `context.origin=api`, `q={...}`). Repeatable; in the environment
    /// variable, separate them with `;`.
    #[arg(long = "filter", env = "ACTLOG_EXPORT_FILTER", value_delimiter = ';')]
    pub filters: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant.
    Create {
        /// The tenant id: 1-64 of A-Z a-z 0-9 _ . -
        id: String,
        /// IANA time zone that dates in filters are read in.
        #[arg(long, env = "ACTLOG_TENANT_TIMEZONE", default_value = "UTC")]
        timezone: String,
        /// Remove activities older than this many days.
        #[arg(long, env = "ACTLOG_TENANT_RETENTION_DAYS")]
        retention_days: Option<u32>,
    },
    /// List tenants (JSON lines).
    List,
    /// Change a tenant's settings.
    Update {
        /// The tenant to change.
        id: String,
        #[arg(long, env = "ACTLOG_TENANT_TIMEZONE")]
        timezone: Option<String>,
        #[arg(
            long,
            env = "ACTLOG_TENANT_RETENTION_DAYS",
            conflicts_with = "no_retention"
        )]
        retention_days: Option<u32>,
        /// Remove the retention limit.
        #[arg(long, env = "ACTLOG_TENANT_NO_RETENTION")]
        no_retention: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Read,
    Write,
    ReadWrite,
    /// An admin key (tenants, keys, every tenant's data); takes no `--tenant`.
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key and print it (it is shown only this once).
    Create {
        /// The tenant the key acts on (not for `--scope admin`).
        #[arg(long, env = "ACTLOG_TENANT")]
        tenant: Option<String>,
        /// What the key may do.
        #[arg(long, env = "ACTLOG_KEY_SCOPE", value_enum, default_value_t = ScopeArg::ReadWrite)]
        scope: ScopeArg,
    },
    /// List keys (JSON lines, never the secrets).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key's public id (`key_id` in `keys list`).
        key_id: String,
    },
}

fn open(cli: &Cli) -> anyhow::Result<Store> {
    let options = Options::new()
        .durability(match cli.durability {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Relaxed => Durability::Relaxed,
        })
        .cache_capacity(cli.cache_mb.saturating_mul(1 << 20));
    Store::open(&cli.data_dir, options)
        .with_context(|| format!("opening the store in {}", cli.data_dir.display()))
}

fn pick_tenant(store: &Store, tenant: Option<String>) -> anyhow::Result<String> {
    match tenant {
        Some(t) if store.tenant(&t).is_some() => Ok(t),
        Some(t) => bail!("tenant {t:?} does not exist"),
        None => match store.default_tenant() {
            Some(t) => Ok(t.id),
            None => bail!(
                "there is no tenant yet (run `actlog serve` once, or `actlog tenants create`)"
            ),
        },
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The benchmark makes its own stores; it must not open (or lock) the data directory.
    if let Command::Bench(args) = &cli.command {
        return bench(args);
    }
    let store = open(&cli)?;
    match cli.command {
        Command::Serve(args) => serve(store, &cli.data_dir, args),
        Command::Import(args) => import(&store, args),
        Command::Export(args) => export(&store, args),
        Command::Verify => {
            let r = store.verify()?;
            println!(
                "{} records, {} index entries, {} id entries",
                r.records, r.index_entries, r.id_entries
            );
            match r.problem {
                None => {
                    println!("ok");
                    Ok(ExitCode::SUCCESS)
                }
                Some(p) => {
                    println!("PROBLEM: {p}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Tenants(cmd) => tenants(&store, cmd),
        Command::Keys(cmd) => keys(&store, cmd),
        Command::Bench(args) => bench(&args),
    }
}

#[cfg(feature = "bench")]
fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    actlog::bench::run(args)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "bench"))]
fn bench(_: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this build has no benchmark: run `cargo run --release --features bench -- bench --quick`"
    )
}

fn serve(store: Store, data_dir: &std::path::Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let boot = http::bootstrap(&store, data_dir)?;
    if let Some(t) = &boot.created_tenant {
        println!("created tenant {t:?}");
    }
    if let (Some(key), Some(file)) = (&boot.admin_key, &boot.key_file) {
        println!("admin key (shown once; also saved to {}):", file.display());
        println!("{key}");
    }
    let store = Arc::new(store);
    let opts = ServeOptions {
        config: http::Config {
            max_body_bytes: args.max_body_bytes,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            concurrency_limit: args.concurrency_limit,
            rate_limit: http::ratelimit::RateLimit {
                per_second: args.rate_limit_per_sec,
                burst: args.rate_limit_burst,
            },
            peer_rate_limit: http::ratelimit::RateLimit {
                per_second: args.peer_rate_limit_per_sec,
                burst: args.peer_rate_limit_burst,
            },
            max_examined: args.max_examined,
            per_key_concurrency: args.per_key_concurrency,
            max_exports_per_key: args.max_exports_per_key,
            write_timeout: Duration::from_secs(args.write_timeout_secs),
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            heavy_concurrency: args.heavy_concurrency,
            max_streams_per_key: args.max_streams_per_key,
            max_streams: args.max_streams,
            ..http::Config::default()
        },
        purge_interval: Duration::from_secs(args.purge_interval_secs),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
    };
    // Data work occupies at most `concurrency_limit` blocking threads (every store call of a
    // request holds a slot); the rest of the pool is headroom for key lookups, which take no slot.
    let blocking_threads = opts.config.concurrency_limit.max(1).saturating_add(256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        println!("listening on http://{addr}");
        if let Some(f) = &args.addr_file {
            std::fs::write(f, addr.to_string())
                .with_context(|| format!("writing {}", f.display()))?;
        }
        http::serve(listener, store, opts, http::shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Default)]
struct ImportStats {
    lines: u64,
    created: u64,
    present: u64,
    bad: u64,
}

fn import(store: &Store, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let tenant = pick_tenant(store, args.tenant)?;
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut stats = ImportStats::default();
    let mut batch: Vec<(u64, NewActivity)> = Vec::new();
    let skip = args.on_error == OnError::Skip;
    let mut failed = false;
    for (i, line) in reader.lines().enumerate() {
        let line_no = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        let line = line.with_context(|| format!("reading line {line_no}"))?;
        stats.lines = line_no;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(a) => batch.push((line_no, a)),
            Err(msg) => {
                eprintln!("line {line_no}: {msg}");
                stats.bad += 1;
                if !skip {
                    // Everything before the bad line is imported, nothing after it.
                    write_batch(store, &tenant, std::mem::take(&mut batch), skip, &mut stats)?;
                    failed = true;
                    break;
                }
            }
        }
        if batch.len() >= usize::from(args.batch_size) {
            if !write_batch(store, &tenant, std::mem::take(&mut batch), skip, &mut stats)? {
                failed = true;
                break;
            }
            if progress {
                eprint!(
                    "\r{} lines read, {} imported, {} bad",
                    stats.lines, stats.created, stats.bad
                );
            }
        }
    }
    if !failed && !batch.is_empty() && !write_batch(store, &tenant, batch, skip, &mut stats)? {
        failed = true;
    }
    store.flush()?;
    if progress {
        eprintln!();
    }
    eprintln!(
        "imported {} activities into {tenant:?} ({} already present, {} bad lines) from {} lines in {:.1}s",
        stats.created,
        stats.present,
        stats.bad,
        stats.lines,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One NDJSON line to a validated activity, or the message saying what is wrong with it.
fn parse_line(line: &str) -> Result<NewActivity, String> {
    let a: ActivityIn = http::extract::from_slice(line.as_bytes()).map_err(|e| match e.field {
        Some(f) => format!("{f}: {}", e.message),
        None => e.message,
    })?;
    let mut a = NewActivity::from(a);
    a.validate("").map_err(|e| e.to_string())?;
    Ok(a)
}

/// Writes a batch. When the batch is refused for its content (a conflict, a bad field), writes
/// its activities one by one to find and report the bad lines. Returns false when a bad line
/// stops the import.
fn write_batch(
    store: &Store,
    tenant: &str,
    batch: Vec<(u64, NewActivity)>,
    skip: bool,
    stats: &mut ImportStats,
) -> anyhow::Result<bool> {
    let activities: Vec<NewActivity> = batch.iter().map(|(_, a)| a.clone()).collect();
    match store.append_batch(tenant, activities) {
        Ok(out) => {
            count(stats, &out);
            return Ok(true);
        }
        Err(actlog::Error::Conflict { .. } | actlog::Error::InvalidArgument { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    for (line_no, a) in batch {
        match store.append(tenant, a) {
            Ok(out) => count(stats, &[out]),
            Err(e @ (actlog::Error::Conflict { .. } | actlog::Error::InvalidArgument { .. })) => {
                eprintln!("line {line_no}: {e}");
                stats.bad += 1;
                if !skip {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn count(stats: &mut ImportStats, out: &[actlog::Appended]) {
    for a in out {
        if a.created {
            stats.created += 1;
        } else {
            stats.present += 1;
        }
    }
}

fn export(store: &Store, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let tenant = pick_tenant(store, args.tenant)?;
    let order = match args.order {
        OrderArg::Asc => actlog::Order::Asc,
        OrderArg::Desc => actlog::Order::Desc,
    };
    let tz = http::filters::tenant_tz(store, &tenant);
    let mut filter = actlog::Filter::default();
    for f in &args.filters {
        let (name, value) = f
            .split_once('=')
            .with_context(|| format!("--filter {f:?}: expected NAME=VALUE"))?;
        let known = http::filters::apply_filter_param(
            &mut filter,
            name,
            http::filters::Val::Text(value),
            tz,
        )
        .map_err(|e| anyhow::anyhow!("--filter {name}: {}", e.message))?;
        if !known {
            bail!("--filter {name}: unknown filter");
        }
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.format == ExportFormat::Csv {
        write!(out, "{}\r\n", http::export::CSV_COLUMNS.join(","))?;
    }
    let mut io_error = None;
    let mut line = Vec::with_capacity(1024);
    store.scan(&tenant, &filter, order, |a| {
        let r = match args.format {
            ExportFormat::Ndjson => {
                line.clear();
                http::render::ndjson_line(&mut line, a);
                out.write_all(&line)
            }
            ExportFormat::Csv => out.write_all(http::export::csv_row(&a.to_activity()?).as_bytes()),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) => {
                io_error = Some(e);
                Ok(false)
            }
        }
    })?;
    let r = match io_error {
        Some(e) => Err(e),
        None => out.flush(),
    };
    match r {
        // A closed pipe (`actlog export | head`) is a normal way to stop.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn tenants(store: &Store, cmd: TenantsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantsCommand::Create {
            id,
            timezone,
            retention_days,
        } => {
            let t = store.create_tenant(
                &id,
                TenantSettings {
                    timezone,
                    retention_days,
                },
            )?;
            print_json(&TenantOut::from(t))?;
        }
        TenantsCommand::List => {
            for t in store.tenants() {
                print_json(&TenantOut::from(t))?;
            }
        }
        TenantsCommand::Update {
            id,
            timezone,
            retention_days,
            no_retention,
        } => {
            let patch = TenantPatch {
                timezone,
                retention_days: if no_retention {
                    Some(None)
                } else {
                    retention_days.map(Some)
                },
            };
            print_json(&TenantOut::from(store.update_tenant(&id, patch)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(store: &Store, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create { tenant, scope } => {
            let (tenant, scope) = match (scope, tenant) {
                (ScopeArg::Admin, None) => (None, Scope::Admin),
                (ScopeArg::Admin, Some(_)) => bail!("an admin key takes no --tenant"),
                (s, t) => {
                    let t = pick_tenant(store, t)?;
                    let s = match s {
                        ScopeArg::Read => Scope::Read,
                        ScopeArg::Write => Scope::Write,
                        _ => Scope::ReadWrite,
                    };
                    (Some(t), s)
                }
            };
            let issued = http::auth::issue_key(tenant, scope, chrono::Utc::now());
            store.put_api_key(&issued.record)?;
            print_json(&KeyOut::new(&issued.record, Some(issued.token)))?;
        }
        KeysCommand::List => {
            for k in store.api_keys()? {
                print_json(&KeyOut::new(&k, None))?;
            }
        }
        KeysCommand::Revoke { key_id } => {
            if !store.revoke_api_key(&key_id)? {
                bail!("no key {key_id:?}");
            }
            println!("revoked {key_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var() {
        fn walk(cmd: &clap::Command, path: &str) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_positional() || id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    a.get_env()
                        .is_some_and(|e| e.to_string_lossy().starts_with("ACTLOG_")),
                    "{path} --{id} has no ACTLOG_* env var"
                );
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "actlog");
    }
}
