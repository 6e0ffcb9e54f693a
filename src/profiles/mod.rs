//! Profiles: the four seed systems' own activity-log wire formats, served over the same store and
//! keys as the native API (docs/profiles.md maps every field). Each module parses its seed's request
//! into a `Query` (or a `NewActivity`) and renders stored activities in the seed's JSON; this file
//! holds the axum handlers that join them to the HTTP layer.
//!
//! **Invariant:** a profile never stores anything of its own: every read is a store query, every
//! write an ordinary append, so each profile reads what every other one and the native API wrote.

mod common;
pub(crate) mod sequence;
pub(crate) mod spaceinvoices;
pub(crate) mod subscriptions;
pub(crate) mod velt;

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use bytes::Bytes;

use crate::http::auth::{authenticate, credential, resolve_tenant, tenant_header};
use crate::http::{ApiError, AppState, Auth, Params};
use crate::store::{Scope, Store};
use common::Failure;

/// Every profile's routes, mounted by `http::app` beside API v1 (paths from API.md "Profiles").
pub(crate) fn router() -> Router<AppState> {
    let sequence_counts = Arc::new(sequence::CountCache::default());
    Router::new()
        .route("/compat/spaceinvoices/activities", get(spaceinvoices_list))
        .route(
            "/compat/sequence/activity-logs",
            get(sequence_list).layer(Extension(sequence_counts)),
        )
        .route(
            "/compat/subscriptions/api/activity-logs",
            get(subscriptions_list).post(subscriptions_create),
        )
        .route(
            "/compat/subscriptions/api/activity-logs/integration-actions",
            get(subscriptions_integration_actions),
        )
        .route(
            "/compat/subscriptions/api/activity-logs/actors",
            get(subscriptions_actors),
        )
        .route("/compat/velt/v2/activities/get", post(velt_get))
}

/// Runs a blocking profile call on the blocking pool, under the same per-call budget as the
/// native routes' store calls (every store read `f` makes counts against it).
async fn run<T, F>(state: &AppState, f: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, Failure> + Send + 'static,
{
    state
        .run_budgeted(f)
        .await
        .map_err(|e| Failure::Api(ApiError::from(e)))?
}

/// Authenticates a request whose credentials may come in a seed's own form: `Authorization:
/// Basic` (Sequence: the key is the password, or the user name when the password is empty) or
/// `x-velt-auth-token` (Velt), besides the native `Authorization: Bearer`. `tenant` overrides the
/// tenant headers (Velt names it in the body).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    tenant: Option<String>,
) -> Result<Auth, ApiError> {
    let mut h = headers.clone();
    // The same reading of the credentials as the rate limiter's, so every form is limited.
    if let Some(token) = credential(headers)? {
        let v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ApiError::unauthenticated("malformed credentials"))?;
        h.insert(header::AUTHORIZATION, v);
    }
    let record = authenticate(&h, state).await?;
    let tenant = match tenant {
        Some(t) => Some(t),
        None => tenant_header(&h)?,
    };
    let tenant = resolve_tenant(state, &record, tenant)?;
    Ok(Auth {
        tenant,
        scope: record.scope,
        key_id: record.key_id,
    })
}

fn native(f: Failure) -> Response {
    ApiError::from(f).into_response()
}

// ---- Space Invoices --------------------------------------------------------------------------

/// The seed names its header both `entity_id` (the parameter list) and `x-entity-id` (the
/// example); the second is the HTTP layer's tenant alias, the first is read here. nginx and
/// other proxies drop header names with underscores by default, so an admin key must name its
/// entity: without one the request is a 400, never a read of the default tenant.
async fn spaceinvoices_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(pairs): Params,
) -> Response {
    let entity = match headers.get("entity_id").map(HeaderValue::to_str) {
        None => None,
        // An empty header names nothing, as with the other tenant headers.
        Some(Ok(v)) => Some(v.trim().to_owned()).filter(|v| !v.is_empty()),
        Some(Err(_)) => {
            return ApiError::invalid("entity_id", "header is not ASCII").into_response()
        }
    };
    let entity = match tenant_header(&headers) {
        Ok(Some(named)) => Some(named),
        Ok(None) => entity,
        Err(e) => return e.into_response(),
    };
    let names_entity = entity.is_some();
    let auth = match authorize(&state, &headers, entity).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if auth.scope == Scope::Admin && !names_entity {
        return ApiError::invalid(
            "x-entity-id",
            "the admin key must name the entity in x-entity-id (the entity_id spelling is \
             dropped by many proxies, so it cannot be relied on)",
        )
        .into_response();
    }
    if let Err(e) = auth.require_read() {
        return e.into_response();
    }
    let tenant = auth.tenant;
    match run(&state, move |s| spaceinvoices::list(s, &tenant, &pairs)).await {
        Ok(r) => Json(r).into_response(),
        Err(f) => native(f),
    }
}

// ---- Sequence ----------------------------------------------------------------------------------

async fn sequence_list(
    State(state): State<AppState>,
    Extension(counts): Extension<Arc<sequence::CountCache>>,
    headers: HeaderMap,
    Params(pairs): Params,
) -> Response {
    let auth = match authorize(&state, &headers, None).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = auth.require_read() {
        return e.into_response();
    }
    let version = match headers.get("sequence-version").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(v)) => Some(v.to_owned()),
        Some(Err(_)) => {
            return ApiError::invalid("sequence-version", "header is not ASCII").into_response()
        }
    };
    let tenant = auth.tenant;
    match run(&state, move |s| {
        sequence::list(s, &tenant, &pairs, version.as_deref(), &counts)
    })
    .await
    {
        Ok(r) => Json(r).into_response(),
        Err(f) => native(f),
    }
}

// ---- subscription platform ---------------------------------------------------------------------

/// The subscription platform's read routes share one shape: a key that may read, the profile's
/// function on the blocking pool, then its JSON or the native error.
async fn subscriptions_read<T, F>(
    state: &AppState,
    auth: Auth,
    pairs: Vec<(String, String)>,
    f: F,
) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&Store, &str, &[(String, String)]) -> Result<T, Failure> + Send + 'static,
{
    if let Err(e) = auth.require_read() {
        return e.into_response();
    }
    let tenant = auth.tenant;
    match run(state, move |s| f(s, &tenant, &pairs)).await {
        Ok(r) => Json(r).into_response(),
        Err(f) => native(f),
    }
}

async fn subscriptions_list(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Response {
    subscriptions_read(&state, auth, pairs, subscriptions::list).await
}

async fn subscriptions_create(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = auth.require_write() {
        return e.into_response();
    }
    let body = match body {
        Ok(b) => b,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let Auth { tenant, key_id, .. } = auth;
    match run(&state, move |s| {
        subscriptions::create(s, &tenant, &body, &key_id)
    })
    .await
    {
        Ok(row) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "data": row })),
        )
            .into_response(),
        Err(f) => native(f),
    }
}

async fn subscriptions_integration_actions(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Response {
    subscriptions_read(&state, auth, pairs, subscriptions::integration_actions).await
}

async fn subscriptions_actors(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Response {
    subscriptions_read(&state, auth, pairs, subscriptions::actors).await
}

// ---- Velt ----------------------------------------------------------------------------------------

/// Every failure of this route, authentication and body errors included, leaves in Velt's shape.
async fn velt_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return velt::failure(Failure::Api(ApiError::from(r))),
    };
    let req = match velt::parse(&body) {
        Ok(r) => r,
        Err(f) => return velt::failure(f),
    };
    let has_authorization = headers.contains_key(header::AUTHORIZATION);
    let api_key = headers
        .get("x-velt-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !has_authorization {
        for (name, present) in [
            ("x-velt-api-key", api_key.is_some()),
            (
                "x-velt-auth-token",
                headers.contains_key("x-velt-auth-token"),
            ),
        ] {
            if !present {
                return velt::error(
                    StatusCode::UNAUTHORIZED,
                    &format!("{name} header is required"),
                );
            }
        }
    }
    let auth = match authorize(&state, &headers, Some(req.organization_id.clone())).await {
        Ok(a) => a,
        Err(e) => return velt::failure(Failure::Api(e)),
    };
    if let Err(e) = auth.require_read() {
        return velt::failure(Failure::Api(e));
    }
    let tenant = auth.tenant;
    match run(&state, move |s| {
        velt::get(s, &tenant, req, api_key.as_deref())
    })
    .await
    {
        Ok(r) => Json(r).into_response(),
        Err(f) => velt::failure(f),
    }
}
