//! Running the server: first-start bootstrap, the listener, the retention task, graceful
//! shutdown.
//!
//! The accept loop is hyper's HTTP/1 server driven by hand rather than `axum::serve`, for what
//! `axum::serve` cannot do: a cap on open connections (`Config::max_connections`; past it new
//! connections wait in the listen backlog), a request-head timeout (`Config::header_timeout`),
//! write and idle timeouts on every socket (`Config::write_timeout`, `Config::idle_timeout`, see
//! `conn.rs`), and the peer address in each request (`ConnectInfo<SocketAddr>`, which the
//! per-address rate limit reads).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::auth::issue_key;
use super::conn::{TimedIo, Timeouts};
use super::{app, AppState, Config};
use crate::{Scope, Store, TenantSettings};

/// Makes every panic of the process log one bounded line (at `error`, inside the current span,
/// so a request's panic carries its request id) instead of the default hook's whole message: a
/// sled panic message formats whole trees, every tenant's keys and values. The line holds the
/// message's leading words only (`store::panic_summary`) and where it was raised. For binaries;
/// the library never sets a hook.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let summary = crate::store::panic_summary(crate::store::panic_text(info.payload()));
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %summary, %location, "panic");
    }));
}

/// File in the data directory that holds the admin key made on first start (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// What [`bootstrap`] did.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// The admin key, when this call created it (shown once).
    pub admin_key: Option<String>,
    /// Where the admin key was saved, when one was issued.
    pub key_file: Option<PathBuf>,
    /// The tenant created on this first start, if any.
    pub created_tenant: Option<String>,
}

/// On a store with no tenant, creates tenant `default`; on a store with no live admin key,
/// issues one and writes it to `dir/admin.key` with mode 0600.
pub fn bootstrap(store: &Store, dir: &Path) -> anyhow::Result<Bootstrap> {
    let mut out = Bootstrap::default();
    if store.tenants().is_empty() {
        store.create_tenant("default", TenantSettings::default())?;
        out.created_tenant = Some("default".into());
    }
    let has_admin = store
        .api_keys()?
        .iter()
        .any(|k| k.tenant.is_none() && k.scope == Scope::Admin && !k.revoked);
    if !has_admin {
        let issued = issue_key(None, Scope::Admin, chrono::Utc::now());
        let path = dir.join(ADMIN_KEY_FILE);
        write_secret_file(&path, &issued.token)?;
        store.put_api_key(&issued.record)?;
        out.admin_key = Some(issued.token);
        out.key_file = Some(path);
    }
    Ok(out)
}

/// Writes a file readable by its owner only (created with mode 0600 on Unix).
pub fn write_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        // An existing file keeps its old mode through `open`; set it explicitly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = opts.open(path)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The HTTP layer's limits and tunables.
    pub config: Config,
    /// How often expired activities are purged; zero disables it.
    pub purge_interval: Duration,
    /// How long shutdown waits for in-flight requests before giving up on them.
    pub shutdown_grace: Duration,
}

/// Serves `store` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to the grace period), flushes the store and returns.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = opts.config.clone();
    let state = AppState::new(Arc::clone(&store), opts.config);
    let streams = Arc::clone(&state.streams);
    let router = app(state);
    let purge = (!opts.purge_interval.is_zero())
        .then(|| tokio::spawn(purge_loop(Arc::clone(&store), opts.purge_interval)));

    let timeouts = Timeouts {
        write: config.write_timeout,
        // A request may legitimately go quiet for its whole timeout (waiting for its turn).
        idle: config.idle_timeout.max(
            config
                .request_timeout
                .saturating_add(Duration::from_secs(1)),
        ),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Past the cap, stop accepting: new connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .serve_connection(
                TokioIo::new(TimedIo::new(stream, timeouts)),
                TowerToHyperService::new(service),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    // Live tails never finish by themselves: end them now, cleanly.
    streams.close();
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
    if let Some(p) = purge {
        p.abort();
    }
    let s = Arc::clone(&store);
    tokio::task::spawn_blocking(move || s.flush()).await??;
    tracing::info!("store flushed; bye");
    Ok(())
}

async fn purge_loop(store: Arc<Store>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.purge_expired(chrono::Utc::now())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(removed = n, "retention purge"),
            Ok(Err(e)) => tracing::error!(error = %e, "retention purge failed"),
            Err(e) => tracing::error!(error = %e, "retention purge task failed"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
