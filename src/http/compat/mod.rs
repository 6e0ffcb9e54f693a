//! Profiles: the four seed systems' own activity-log wire formats, served over the same store and
//! keys as the native API (docs/profiles.md maps every field). One module per seed parses its
//! seed's request into a `Query` (or a `NewActivity`), renders stored activities in the seed's
//! JSON and holds its handlers; `common` holds what they share. This file lists their routes,
//! which [`super::routes`] serves, documents and matrix-tests with API v1's, and the one path
//! every profile request takes ([`authorize`], then [`run`]).
//!
//! Failures are [`ApiError`]s, in the native shape, except Velt's, which have Velt's own
//! (`velt::VeltError`).
//!
//! **Invariant:** a profile never stores anything of its own: every read is a store query, every
//! write an ordinary append, so each profile reads what every other one and the native API wrote.

mod common;
pub(crate) mod sequence;
pub(crate) mod spaceinvoices;
pub(crate) mod subscriptions;
pub(crate) mod velt;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Extension;

use super::auth::{authenticate, credential, resolve_tenant, tenant_header};
use super::{Access, ApiError, AppState, Auth, RouteSpec};
use crate::store::{Scope, Store};

/// Every profile's routes (paths from API.md "Profiles"), entries of [`super::routes`].
pub(super) fn routes() -> Vec<RouteSpec> {
    let r = |method: Method,
             path: &'static str,
             access: Access,
             summary: &'static str,
             query: &'static [&'static str],
             body: Option<&'static str>,
             ok: (u16, &'static str),
             error: &'static str,
             handler: fn() -> axum::routing::MethodRouter<AppState>| RouteSpec {
        method,
        path,
        access,
        summary,
        query,
        body,
        ok,
        error,
        handler,
    };
    vec![
        r(
            Method::GET,
            "/compat/spaceinvoices/activities",
            Access::Read,
            "Space Invoices: list activities (cursor pages, a JSON `query` over six fields). The \
             admin key names the entity in x-entity-id.",
            &[
                "limit",
                "next_cursor",
                "prev_cursor",
                "include_total_count",
                "order_by",
                "query",
                "resource_type",
                "resource_id",
                "action",
            ],
            None,
            (200, "SpaceInvoicesPage"),
            "Error",
            || get(spaceinvoices::list_route),
        ),
        r(
            Method::GET,
            "/compat/sequence/activity-logs",
            Access::Read,
            "Sequence: list activity logs (runs of activities sharing context.activity_log_id), \
             paged by before/after. Credentials may also come as Authorization: Basic.",
            &[
                "limit",
                "sortOrder",
                "after",
                "before",
                "activityLogObjectId",
                "activityLogObjectEntityId",
            ],
            None,
            (200, "SequencePage"),
            "Error",
            // One cache of log totals per router.
            || {
                get(sequence::list_route)
                    .layer(Extension(Arc::new(sequence::CountCache::default())))
            },
        ),
        r(
            Method::GET,
            "/compat/subscriptions/api/activity-logs",
            Access::Read,
            "Subscription platform: list subscription and order rows in a date range, by page.",
            &[
                "start_date",
                "end_date",
                "order_id",
                "subscription_id",
                "actor_type",
                "actor_name",
                "action",
                "page",
                "limit",
            ],
            None,
            (200, "SubscriptionsPage"),
            "Error",
            || get(subscriptions::list_route),
        ),
        r(
            Method::POST,
            "/compat/subscriptions/api/activity-logs",
            Access::Write,
            "Subscription platform: write a custom integration_* entry on an order or subscription.",
            &[],
            Some("SubscriptionsEntry"),
            (201, "SubscriptionsCreated"),
            "Error",
            || post(subscriptions::create_route),
        ),
        r(
            Method::GET,
            "/compat/subscriptions/api/activity-logs/integration-actions",
            Access::Read,
            "Subscription platform: the distinct integration_* actions of its rows.",
            &["start_date", "end_date"],
            None,
            (200, "SubscriptionsValues"),
            "Error",
            || get(subscriptions::integration_actions_route),
        ),
        r(
            Method::GET,
            "/compat/subscriptions/api/activity-logs/actors",
            Access::Read,
            "Subscription platform: the distinct names of admin actors of its rows.",
            &["start_date", "end_date"],
            None,
            (200, "SubscriptionsValues"),
            "Error",
            || get(subscriptions::actors_route),
        ),
        r(
            Method::POST,
            "/compat/velt/v2/activities/get",
            Access::Read,
            "Velt: get activities, the query in the body (data.organizationId names the tenant); \
             pages forward with pageToken. Credentials may also come as x-velt-auth-token.",
            &[],
            Some("VeltQuery"),
            (200, "VeltPage"),
            "VeltError",
            || post(velt::get_route),
        ),
    ]
}

/// Authenticates a request whose credentials may come in a seed's own form: `Authorization:
/// Basic` (Sequence: the key is the password, or the user name when the password is empty) or
/// `x-velt-auth-token` (Velt), besides the native `Authorization: Bearer`. `tenant` overrides the
/// tenant headers (Velt names it in the body). (The subscription platform's routes take the
/// native [`Auth`] extractor: its seed documents Bearer keys only.)
pub(super) async fn authorize(
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

/// The one path of a profile request once its caller is known: the key must allow `access`,
/// then `f` runs on the blocking pool inside the request's budget (time, cancellation, the work
/// cap, heavy-work turns), as the native routes' store calls do, and every store read it makes
/// counts against that budget.
pub(super) async fn run<T, F>(
    state: &AppState,
    auth: Auth,
    access: Access,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store, Auth) -> Result<T, ApiError> + Send + 'static,
{
    match access {
        Access::Public => {}
        Access::Read => auth.require_read()?,
        Access::Write => auth.require_write()?,
        Access::Admin => {
            if auth.scope != Scope::Admin {
                return Err(ApiError::forbidden("this route needs the admin key"));
            }
        }
    }
    state.run_budgeted(move |s| f(s, auth)).await?
}
