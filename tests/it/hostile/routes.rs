//! Hostile path segments and parameters of the other routes (single reads, facets, export) and
//! bodies of the tenant admin routes.

use axum::http::Method;
use serde_json::json;

use super::{case, Case, Key};

pub(super) fn cases() -> Vec<Case> {
    let mb = "x".repeat(1 << 20);
    vec![
        // ---- other routes -------------------------------------------------------------------
        case(
            "get by a non-UUID id",
            Method::GET,
            "/v1/activities/not-a-uuid",
        ),
        case(
            "facets without a field",
            Method::GET,
            "/v1/activities/facets",
        ),
        case(
            "facets of an unknown field",
            Method::GET,
            "/v1/activities/facets?field=colour",
        ),
        case(
            "facets limit 0",
            Method::GET,
            "/v1/activities/facets?field=action&limit=0",
        ),
        case(
            "export as XML",
            Method::GET,
            "/v1/activities/export?format=xml",
        ),
        case(
            "export with a bad filter",
            Method::GET,
            "/v1/activities/export?since=never",
        ),
        case("tenant with a tenant key", Method::POST, "/v1/tenants").json(json!({"id": "x"})),
        case("tenant id with a space", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "bad id"})),
        case("tenant id with NUL", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "a\0b"})),
        case("tenant id 1 MB", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": mb})),
        case("tenant time zone on Mars", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "mars", "timezone": "Mars/Olympus_Mons"})),
        case("tenant time zone UTC+99", Method::PATCH, "/v1/tenants/a")
            .key(Key::Admin)
            .json(json!({"timezone": "UTC+99"})),
        case("tenant retention negative", Method::PATCH, "/v1/tenants/a")
            .key(Key::Admin)
            .json(json!({"retention_days": -1})),
        case(
            "tenant retention 999,999,999 days",
            Method::PATCH,
            "/v1/tenants/a",
        )
        .key(Key::Admin)
        .json(json!({"retention_days": 999_999_999})),
        case(
            "tenant created with retention 36,501 days",
            Method::POST,
            "/v1/tenants",
        )
        .key(Key::Admin)
        .json(json!({"id": "longer", "retention_days": 36_501})),
        case("existing tenant again", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "a"})),
    ]
}
