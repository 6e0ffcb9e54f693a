//! Hostile credentials and tenant headers: no key, garbage, forged, non-UTF-8, a key of the
//! wrong scope, another tenant named, unknown routes and methods.

use axum::http::Method;

use super::{case, ok_activity, Case, Key};

pub(super) fn cases() -> Vec<Case> {
    vec![
        // ---- authentication -----------------------------------------------------------------
        case("no key", Method::GET, "/v1/activities").key(Key::None),
        case("garbage key", Method::GET, "/v1/activities").key(Key::Raw(b"Bearer garbage")),
        case("basic auth", Method::GET, "/v1/activities").key(Key::Raw(b"Basic YTpi")),
        case(
            "forged key of the right shape",
            Method::GET,
            "/v1/activities",
        )
        .key(Key::Raw(
            b"Bearer actlog_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )),
        case("non-UTF-8 key", Method::GET, "/v1/activities").key(Key::Raw(b"Bearer \xff\xfe")),
        case("read key appends", Method::POST, "/v1/activities")
            .key(Key::Read)
            .json(ok_activity()),
        case("write key reads", Method::GET, "/v1/activities").key(Key::Write),
        case("another tenant by header", Method::GET, "/v1/activities").header("x-tenant-id", "b"),
        case("admin, no such tenant", Method::GET, "/v1/activities")
            .key(Key::Admin)
            .header("x-tenant-id", "nope"),
        case(
            "admin, tenant header non-UTF-8",
            Method::GET,
            "/v1/activities",
        )
        .key(Key::Admin)
        .header("x-tenant-id", b"\xff".to_vec()),
        case(
            "admin, two tenant headers disagree",
            Method::GET,
            "/v1/activities",
        )
        .key(Key::Admin)
        .header("x-tenant-id", "a")
        .header("x-entity-id", "b"),
        case("unknown route", Method::GET, "/v1/activitiez"),
        case("wrong method", Method::DELETE, "/v1/activities"),
    ]
}
