//! The HTTP API v1 over a [`Store`]: axum routes, authentication, JSON shapes, limits, metrics;
//! and, under `/compat/…`, the seed systems' own wire formats (the `compat` module).
//!
//! [`app`] builds the whole router from one table, [`routes`], which the OpenAPI document and
//! the tests enumerate too, so what is served, what is documented and what is tested cannot
//! drift apart. Every store call runs on the blocking pool (`AppState::blocking`) inside a
//! [`Budget`] (time, cancellation, a work cap, heavy-work turns); `docs/http.md` ("Fair share")
//! lists what one caller can take.
//!
//! Invariants:
//! - every response that is not a 2xx has the body `{"error": {"code", "message", "field"}}`
//!   (`ApiError`), extractor rejections, timeouts, unknown routes and panics included (the
//!   Velt profile's handler answers its failures in Velt's shape, `RouteSpec::error`);
//! - a request acts on exactly one tenant, fixed by [`Auth`] before the handler runs; handlers
//!   never read the tenant from anywhere else;
//! - 5xx bodies carry nothing internal; the cause is logged with the request id.

// The modules marked `doc(hidden)` are reached by the `actlog` binary (a crate of its own) and
// by the integration tests; they are not part of the library's API and may change in any
// release. What an embedder uses is re-exported below and documented.
mod activities;
#[doc(hidden)]
pub mod auth;
pub(crate) mod compat;
mod conn;
#[doc(hidden)]
pub mod console;
mod error;
#[doc(hidden)]
pub mod export;
#[doc(hidden)]
pub mod extract;
#[doc(hidden)]
pub mod filters;
mod heavy;
mod metrics;
mod openapi;
#[doc(hidden)]
pub mod ratelimit;
#[doc(hidden)]
pub mod render;
mod server;
mod stream;
mod tenants;
#[doc(hidden)]
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::{Budget, Store};

pub(crate) use auth::{AdminAuth, Auth};
pub(crate) use error::ApiError;
pub(crate) use extract::{ApiJson, ApiPath, Params};
pub(crate) use metrics::Metrics;
pub(crate) use ratelimit::Caller;
pub use ratelimit::RateLimit;
pub use server::{
    bootstrap, install_panic_hook, serve, shutdown_signal, Bootstrap, ServeOptions, ADMIN_KEY_FILE,
};

/// Limits and tunables of the HTTP layer. Every one has a command-line flag (see `docs/http.md`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body; larger is a 413.
    pub max_body_bytes: usize,
    /// Longest a request may take until its response starts; longer is a 503.
    pub request_timeout: Duration,
    /// Most requests handled at once; the rest wait (within the timeout).
    pub concurrency_limit: usize,
    /// Page size the export stream reads the store with.
    pub export_page_size: usize,
    /// Requests a second (and burst) per API key; past it, 429 (see [`ratelimit`]).
    pub rate_limit: ratelimit::RateLimit,
    /// Stored entries (records read, keys counted, index values enumerated) the reads of one
    /// store call may examine; past it, a 400 that names the limit. 0: no cap.
    pub max_examined: u64,
    /// Requests one API key may have in progress at once; more wait their turn, within the
    /// request timeout. 0: no per-key limit.
    pub per_key_concurrency: usize,
    /// Exports one API key may run at once; more are a 429. 0: no limit.
    pub max_exports_per_key: usize,
    /// Longest a response write may wait for a client that does not read before `serve` drops
    /// the connection; also how long an export waits for its reader to take the next page.
    pub write_timeout: Duration,
    /// Requests a second (and burst) per client address for requests without a valid API key
    /// (401s, public routes); past it, 429. Needs the peer address, which [`serve`] provides.
    pub peer_rate_limit: ratelimit::RateLimit,
    /// Connections [`serve`] holds at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A request head must arrive in full within this long of its connection being ready for it
    /// (opened, or done with the previous response), so idle keep-alive connections close after
    /// it too.
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long while [`serve`] waits on it
    /// is closed. Never less than `request_timeout` plus a second.
    pub idle_timeout: Duration,
    /// Heavy store calls (past 2,000 entries examined) that run at once in the whole server,
    /// taking turns every 2,000 entries, one per API key at a time (`docs/http.md`, "Fair
    /// share"). 0: no turns.
    pub heavy_concurrency: usize,
    /// Live-tail streams (`GET /v1/activities/stream`) one API key may hold open; more are a
    /// 429.
    pub max_streams_per_key: usize,
    /// Live-tail streams the server holds open in all; more are a 503.
    pub max_streams: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 256,
            export_page_size: 1000,
            rate_limit: ratelimit::RateLimit::default(),
            max_examined: 1_000_000,
            per_key_concurrency: default_per_key_concurrency(),
            max_exports_per_key: 2,
            write_timeout: Duration::from_secs(30),
            peer_rate_limit: ratelimit::RateLimit {
                per_second: 100,
                burst: 200,
            },
            max_connections: 1024,
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            heavy_concurrency: default_heavy_concurrency(),
            max_streams_per_key: 8,
            max_streams: 256,
        }
    }
}

/// One core fewer than the machine has, at least 1: light requests always find a core that
/// heavy work is not using.
pub fn default_heavy_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

tokio::task_local! {
    /// The API key id of the request this task serves (set by the `limits` middleware and the
    /// export producer), for the heavy-work turns of its store calls.
    static CALLER_KEY: String;
}

/// Twice the machine's cores, at least 4: one key can keep every core busy, and no more.
pub fn default_per_key_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .saturating_mul(2)
        .clamp(4, 64)
}

/// What every handler shares: the store, the configuration and the metrics.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    limiter: Arc<tokio::sync::Semaphore>,
    /// `None` when the configured rate is 0 (no limit).
    rate_limiter: Option<Arc<ratelimit::RateLimiter>>,
    /// Per client address, for requests without a valid key; `None` when off.
    peer_limiter: Option<Arc<ratelimit::RateLimiter<std::net::IpAddr>>>,
    lanes: Arc<Lanes>,
    exports: Arc<ExportSlots>,
    heavy: Arc<heavy::HeavyGates>,
    pub(crate) streams: Arc<stream::Streams>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for `store` with `config`: fresh metrics, limiters and lanes.
    pub fn new(store: Arc<Store>, config: Config) -> AppState {
        let permits = config.concurrency_limit.max(1);
        let rate_limiter = (config.rate_limit.per_second > 0)
            .then(|| Arc::new(ratelimit::RateLimiter::new(config.rate_limit)));
        let peer_limiter = (config.peer_rate_limit.per_second > 0)
            .then(|| Arc::new(ratelimit::RateLimiter::new(config.peer_rate_limit)));
        AppState {
            store,
            lanes: Arc::new(Lanes::new(config.per_key_concurrency)),
            exports: Arc::new(ExportSlots::new(config.max_exports_per_key)),
            heavy: Arc::new(heavy::HeavyGates::new(config.heavy_concurrency)),
            streams: Arc::new(stream::Streams::new(
                config.max_streams_per_key,
                config.max_streams,
            )),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(tokio::sync::Semaphore::new(permits)),
            rate_limiter,
            peer_limiter,
        }
    }

    /// Runs a (blocking) store call on the blocking pool, under the per-call budget (see
    /// [`AppState::run_budgeted`]).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> crate::Result<T> + Send + 'static,
    {
        Ok(self.run_budgeted(f).await??)
    }

    /// Runs `f` on the blocking pool inside a [`Budget`]: at most `max_examined` entries, at most
    /// `request_timeout`, and cancelled as soon as the returned future is dropped (the request
    /// timed out, the client went away), so abandoned work stops within a few rows instead of
    /// running to its end. A call cancelled before it started does not start. Past
    /// [`heavy::QUANTUM`] entries the call takes turns with other heavy calls (see [`heavy`]).
    pub(crate) async fn run_budgeted<T, E, F>(
        &self,
        f: F,
    ) -> Result<Result<T, E>, tokio::task::JoinError>
    where
        T: Send + 'static,
        E: From<crate::Error> + Send + 'static,
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    {
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
        let mut budget = Budget::default()
            .with_cancel_flag(Arc::clone(&cancel))
            .with_timeout(self.config.request_timeout);
        if self.config.max_examined > 0 {
            budget = budget.with_max_examined(self.config.max_examined);
        }
        let key = CALLER_KEY.try_with(String::clone).unwrap_or_default();
        let deadline = std::time::Instant::now()
            .checked_add(self.config.request_timeout)
            .unwrap_or_else(std::time::Instant::now);
        if let Some(turns) = self.heavy.checkpoint(key, Arc::clone(&cancel), deadline) {
            budget = budget.with_checkpoint(heavy::QUANTUM, turns);
        }
        let store = Arc::clone(&self.store);
        // The request's span goes along, so what the store call logs (a panic hook's line
        // included) carries the request id.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            if cancel.load(Ordering::Relaxed) {
                return Err(E::from(crate::Error::Cancelled));
            }
            budget.run(|| f(&store))
        })
        .await
    }

    /// Looks up an API key record for authentication. Deliberately outside every data limit
    /// (no request slot, no budget): a key lookup is one read of a small tree, and a caller must
    /// learn who it is without queueing behind data work. The blocking pool has room for it
    /// because data work never occupies more than `concurrency_limit` of its threads.
    pub(crate) async fn auth_lookup(
        &self,
        key_id: String,
    ) -> Result<Option<crate::ApiKeyRecord>, ApiError> {
        let store = Arc::clone(&self.store);
        let span = tracing::Span::current();
        Ok(tokio::task::spawn_blocking(move || span.in_scope(|| store.api_key(&key_id))).await??)
    }

    /// Waits for a turn of `key`: one of its `per_key_concurrency` lanes, then one of the
    /// server's `concurrency_limit` slots. Held for as long as the work runs.
    pub(crate) async fn admit(&self, key: &str) -> Admission {
        let lane = match self.lanes.get(key) {
            Some(sem) => sem.acquire_owned().await.ok(),
            None => None,
        };
        let slot = Arc::clone(&self.limiter).acquire_owned().await.ok();
        Admission {
            _lane: lane,
            _slot: slot,
        }
    }

    /// The time zone of a tenant (UTC if it cannot be read).
    pub(crate) fn tenant_tz(&self, tenant: &str) -> chrono_tz::Tz {
        filters::tenant_tz(&self.store, tenant)
    }
}

/// Raises a cancel flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A request's turn: its key's lane and a server slot, released when dropped.
pub(crate) struct Admission {
    _lane: Option<tokio::sync::OwnedSemaphorePermit>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Per-key concurrency: a semaphore of `per` permits for each API key seen.
struct Lanes {
    per: usize,
    map: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Lanes kept before idle ones are dropped (keys are few; this only bounds the map).
const MAX_LANES: usize = 4096;

impl Lanes {
    fn new(per: usize) -> Lanes {
        Lanes {
            per,
            map: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// `None` when there is no per-key limit.
    fn get(&self, key: &str) -> Option<Arc<tokio::sync::Semaphore>> {
        if self.per == 0 {
            return None;
        }
        let mut map = self.map.lock();
        if map.len() >= MAX_LANES {
            // An idle lane: nobody holds it and every permit is back.
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.per);
        }
        Some(Arc::clone(map.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(tokio::sync::Semaphore::new(self.per))
        })))
    }
}

/// Exports running per API key.
struct ExportSlots {
    max: usize,
    running: parking_lot::Mutex<HashMap<String, usize>>,
}

impl ExportSlots {
    fn new(max: usize) -> ExportSlots {
        ExportSlots {
            max,
            running: parking_lot::Mutex::new(HashMap::new()),
        }
    }
}

/// One running export of a key; gives its place back when dropped.
pub(crate) struct ExportSlot {
    slots: Arc<ExportSlots>,
    key: String,
}

impl AppState {
    /// Runs `fut` as work of the API key `key` (for the heavy-work turns of its store calls).
    pub(crate) async fn as_key<F: std::future::Future>(key: String, fut: F) -> F::Output {
        CALLER_KEY.scope(key, fut).await
    }

    /// Takes an export place for `key`, or `None` if it already runs `max_exports_per_key`.
    pub(crate) fn start_export(&self, key: &str) -> Option<ExportSlot> {
        let mut running = self.exports.running.lock();
        let n = running.entry(key.to_owned()).or_insert(0);
        if self.exports.max > 0 && *n >= self.exports.max {
            return None;
        }
        *n += 1;
        Some(ExportSlot {
            slots: Arc::clone(&self.exports),
            key: key.to_owned(),
        })
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock();
        if let Some(n) = running.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// Who may call a route.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Public,
    /// A key that may read, acting on one tenant.
    Read,
    /// A key that may append, acting on one tenant.
    Write,
    /// The admin key.
    Admin,
}

/// One route: the router, the OpenAPI document and the tests' route matrix are all built from
/// the list of these.
#[doc(hidden)]
#[derive(Clone)]
pub struct RouteSpec {
    pub method: Method,
    /// axum syntax (`/v1/activities/{id}`), which is also OpenAPI's.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Query parameters, for the document.
    pub query: &'static [&'static str],
    /// The request body's schema name in the document, if any.
    pub body: Option<&'static str>,
    /// The success status and its schema name.
    pub ok: (u16, &'static str),
    /// The schema name of its error bodies: `Error` (the native shape) but for a profile whose
    /// seed has its own.
    pub error: &'static str,
    handler: fn() -> MethodRouter<AppState>,
}

impl std::fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The parameters of the list route.
const LIST_PARAMS: &[&str] = &[
    "action",
    "resource_type",
    "resource_id",
    "actor_type",
    "actor_id",
    "actor_name",
    "target_type",
    "target_id",
    "context.KEY",
    "id",
    "since",
    "until",
    "after_seq",
    "q",
    "order",
    "limit",
    "cursor",
    "include_total",
];

/// Every route: API v1's, then the profiles' (`/compat/…`, `compat`).
#[doc(hidden)]
pub fn routes() -> Vec<RouteSpec> {
    let r = |method: Method,
             path: &'static str,
             access: Access,
             summary: &'static str,
             query: &'static [&'static str],
             body: Option<&'static str>,
             ok: (u16, &'static str),
             handler: fn() -> MethodRouter<AppState>| RouteSpec {
        method,
        path,
        access,
        summary,
        query,
        body,
        ok,
        error: "Error",
        handler,
    };
    let mut all = vec![
        r(
            Method::POST,
            "/v1/activities",
            Access::Write,
            "Append one activity, or a batch of up to 1,000 (all or nothing). 201 when anything \
             was written, 200 when every activity was there already, 409 on an id with other content.",
            &[],
            Some("AppendBody"),
            (201, "AppendResult"),
            || axum::routing::post(activities::append),
        ),
        r(
            Method::GET,
            "/v1/activities",
            Access::Read,
            "List activities matching the filters, cursor-paged.",
            LIST_PARAMS,
            None,
            (200, "Page"),
            || get(activities::list),
        ),
        r(
            Method::POST,
            "/v1/activities/query",
            Access::Read,
            "The same as GET /v1/activities with the filters as a JSON body.",
            &[],
            Some("QueryBody"),
            (200, "Page"),
            || axum::routing::post(activities::query),
        ),
        r(
            Method::GET,
            "/v1/activities/facets",
            Access::Read,
            "Distinct values of action, resource.type, actor.type, actor.name or context.KEY with counts.",
            &["field", "prefix", "since", "until", "limit"],
            None,
            (200, "Facets"),
            || get(activities::facets),
        ),
        r(
            Method::GET,
            "/v1/activities/export",
            Access::Read,
            "Every activity matching the filters, streamed as NDJSON or CSV.",
            &[
                "format", "order", "after_seq", "action", "resource_type", "resource_id",
                "actor_type", "actor_id", "actor_name", "target_type", "target_id",
                "context.KEY", "id", "since", "until", "q",
            ],
            None,
            (200, "Export"),
            || get(export::export),
        ),
        r(
            Method::GET,
            "/v1/activities/stream",
            Access::Read,
            "A live tail: Server-Sent Events of newly appended activities matching the filters, in seq order.",
            &[
                "cursor", "after_seq", "action", "resource_type", "resource_id", "actor_type",
                "actor_id", "actor_name", "target_type", "target_id", "context.KEY", "id",
                "since", "until", "q",
            ],
            None,
            (200, "EventStream"),
            || get(stream::stream),
        ),
        r(
            Method::GET,
            "/v1/activities/{id}",
            Access::Read,
            "One activity by id.",
            &[],
            None,
            (200, "Activity"),
            || get(activities::get_one),
        ),
        r(
            Method::POST,
            "/v1/tenants",
            Access::Admin,
            "Create a tenant.",
            &[],
            Some("TenantCreate"),
            (201, "Tenant"),
            || axum::routing::post(tenants::create),
        ),
        r(
            Method::GET,
            "/v1/tenants",
            Access::Admin,
            "List tenants in order of creation.",
            &[],
            None,
            (200, "Tenants"),
            || get(tenants::list),
        ),
        r(
            Method::PATCH,
            "/v1/tenants/{id}",
            Access::Admin,
            "Change a tenant's settings; retention_days: null removes the limit.",
            &[],
            Some("TenantPatch"),
            (200, "Tenant"),
            || axum::routing::patch(tenants::update),
        ),
        r(
            Method::POST,
            "/v1/tenants/{id}/keys",
            Access::Admin,
            "Issue a key for a tenant. The key is in this response only.",
            &[],
            Some("KeyCreate"),
            (201, "Key"),
            || axum::routing::post(tenants::create_key),
        ),
        r(
            Method::DELETE,
            "/v1/tenants/{id}/keys/{key_id}",
            Access::Admin,
            "Revoke a key of a tenant.",
            &[],
            None,
            (204, ""),
            || axum::routing::delete(tenants::revoke_key),
        ),
        r(
            Method::GET,
            "/",
            Access::Public,
            "The web console: an HTML page that signs in with an API key and calls this API.",
            &[],
            None,
            (200, "Html"),
            || get(console::index),
        ),
        r(
            Method::GET,
            "/console/{asset}",
            Access::Public,
            "A file of the web console (script, style sheet, icon), compiled into the binary.",
            &[],
            None,
            (200, "Asset"),
            || get(console::asset),
        ),
        r(
            Method::GET,
            "/healthz",
            Access::Public,
            "Liveness.",
            &[],
            None,
            (200, "Health"),
            || get(healthz),
        ),
        r(
            Method::GET,
            "/metrics",
            Access::Public,
            "Prometheus metrics.",
            &[],
            None,
            (200, "Metrics"),
            || get(metrics::render),
        ),
        r(
            Method::GET,
            "/openapi.json",
            Access::Public,
            "This API's OpenAPI 3.1 document.",
            &[],
            None,
            (200, "OpenApi"),
            || get(openapi::serve),
        ),
    ];
    all.extend(compat::routes());
    all
}

/// The application: every route of [`routes`] with the middleware stack (request id, tracing,
/// panic catching, metrics, caller identification and rate limits, timeout, per-key lanes and
/// concurrency limit, body limit) and JSON 404/405 fallbacks.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with `extra` routes merged in under the same middleware stack, so they pass through
/// every layer the API's routes do (request id, tracing, panic catching, metrics, rate limit,
/// lanes, concurrency limit, timeout, body limit); what they skip is whatever their handlers
/// skip (the rate-limit layer identifies callers, but authorization is an extractor).
/// `actlog bench` serves its fixed-page ceiling this way. `extra` must not repeat a path of
/// [`routes`]: axum panics on overlapping routes.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let mut router: Router<AppState> = Router::new();
    for spec in routes() {
        router = router.route(spec.path, (spec.handler)());
    }
    router = router.merge(extra);
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits))
        // Outside the concurrency limit, so a flooding key waits for no slot to be refused, and
        // so the key is known (verified once) before the request queues for its lane.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The request timeout, the per-key lanes and the concurrency limit. A request with a valid key
/// waits for one of its key's lanes, then for a server slot; both waits count against its
/// timeout, so an overloaded server answers 503 rather than queueing forever, and one key's
/// backlog never holds slots other keys need. A request without a valid key does no data work
/// (it is a 401, or a public route) and takes neither: a bad key or a health check is answered
/// at once however busy the store is (such requests are limited per address instead).
async fn limits(
    State(state): State<AppState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let key = match req.extensions().get::<Caller>() {
        Some(Caller::Key(k)) => Some(k.clone()),
        _ => None,
    };
    let admitting = state.clone();
    let work = async move {
        let _turn = match &key {
            Some(k) => Some(admitting.admit(k).await),
            None => None,
        };
        CALLER_KEY
            .scope(key.unwrap_or_default(), next.run(req))
            .await
    };
    match tokio::time::timeout(state.config.request_timeout, work).await {
        Ok(resp) => resp,
        Err(_) => ApiError::unavailable("the request timed out; try again").into_response(),
    }
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::Options;

    async fn call(app: &Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn app_with_serves_extra_routes_under_the_same_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        let state = AppState::new(store, Config::default());
        let extra = Router::new().route("/extra", get(|| async { "fixed" }));
        let app = app_with(state, extra);

        let (status, headers, body) = call(&app, "/extra").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fixed"));
        // The request-id layers ran.
        assert!(headers.contains_key("x-request-id"));
        // The API's routes and fallbacks are all still there.
        assert_eq!(
            call(&app, "/v1/activities").await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _, body) = call(&app, "/no/such/route").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"error\""), "{body}");
        // The metrics layer counted the extra route under its own name.
        let (_, _, metrics) = call(&app, "/metrics").await;
        assert!(
            metrics.contains("route=\"/extra\",status=\"200\""),
            "{metrics}"
        );
    }
}
