//! The HTTP API v1 over a [`Store`]: axum routes, authentication, JSON shapes, limits, metrics.
//!
//! [`app`] builds the whole router from one table, [`routes`], which the OpenAPI document and
//! the tests enumerate too, so what is served, what is documented and what is tested cannot
//! drift apart. Every store call runs on the blocking pool ([`AppState::blocking`]).
//!
//! Invariants:
//! - every response that is not a 2xx has the body `{"error": {"code", "message", "field"}}`
//!   ([`ApiError`]), extractor rejections, timeouts, unknown routes and panics included;
//! - a request acts on exactly one tenant, fixed by [`Auth`] before the handler runs; handlers
//!   never read the tenant from anywhere else;
//! - 5xx bodies carry nothing internal; the cause is logged with the request id.

mod activities;
pub mod auth;
mod error;
pub mod export;
pub mod extract;
pub mod filters;
mod metrics;
mod openapi;
pub mod ratelimit;
pub mod render;
mod server;
mod tenants;
pub mod wire;

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

use crate::Store;

pub use auth::{AdminAuth, Auth};
pub use error::ApiError;
pub use extract::{ApiJson, ApiPath, Params};
pub use metrics::Metrics;
pub use server::{
    bootstrap, serve, shutdown_signal, write_secret_file, Bootstrap, ServeOptions, ADMIN_KEY_FILE,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 256,
            export_page_size: 1000,
            rate_limit: ratelimit::RateLimit::default(),
        }
    }
}

/// What every handler shares: the store, the configuration and the metrics.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    limiter: Arc<tokio::sync::Semaphore>,
    /// `None` when the configured rate is 0 (no limit).
    rate_limiter: Option<Arc<ratelimit::RateLimiter>>,
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
    pub fn new(store: Arc<Store>, config: Config) -> AppState {
        let permits = config.concurrency_limit.max(1);
        let rate_limiter = (config.rate_limit.per_second > 0)
            .then(|| Arc::new(ratelimit::RateLimiter::new(config.rate_limit)));
        AppState {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(tokio::sync::Semaphore::new(permits)),
            rate_limiter,
        }
    }

    /// Runs a (blocking) store call on the blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> crate::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }

    /// The time zone of a tenant (UTC if it cannot be read).
    pub fn tenant_tz(&self, tenant: &str) -> chrono_tz::Tz {
        self.store
            .tenant(tenant)
            .and_then(|t| crate::model::parse_timezone(&t.settings.timezone).ok())
            .unwrap_or(chrono_tz::UTC)
    }
}

/// Who may call a route.
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
    "q",
    "order",
    "limit",
    "cursor",
    "include_total",
];

/// Every route of API v1.
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
        handler,
    };
    vec![
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
                "format", "order", "action", "resource_type", "resource_id", "actor_type",
                "actor_id", "actor_name", "target_type", "target_id", "context.KEY", "id",
                "since", "until", "q",
            ],
            None,
            (200, "Export"),
            || get(export::export),
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
    ]
}

/// The application: every route of [`routes`] with the middleware stack (request id, tracing,
/// panic catching, metrics, concurrency limit, timeout, body limit) and JSON 404/405 fallbacks.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with `extra` routes merged in under the same middleware stack, so they pass through
/// every layer the API's routes do (request id, tracing, panic catching, metrics, rate limit,
/// concurrency limit, timeout, body limit); what they skip is whatever their handlers skip
/// (authentication is an extractor, not a layer). `actlog bench` serves its fixed-page ceiling
/// this way. `extra` must not repeat a path of [`routes`]: axum panics on overlapping routes.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let mut router: Router<AppState> = Router::new();
    for spec in routes() {
        router = router.route(spec.path, (spec.handler)());
    }
    router = router.merge(crate::profiles::router()).merge(extra);
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits))
        // Outside the concurrency limit, so a flooding key waits for no slot to be refused.
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

/// The concurrency limit and the request timeout. A request waits for a slot; the wait counts
/// against its timeout, so an overloaded server answers 503 rather than queueing forever.
async fn limits(
    State(state): State<AppState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let limiter = Arc::clone(&state.limiter);
    let work = async move {
        let _permit = limiter.acquire_owned().await;
        next.run(req).await
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
