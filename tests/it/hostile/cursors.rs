//! Hostile cursors: garbage, forged, oversized, another tenant's, or replayed with another
//! query.

use axum::http::Method;
use serde_json::json;

use super::{case, get, Case};

/// `cursor_a`: a valid cursor of tenant `a`'s default query; `cursor_b`: one of tenant `b`.
pub(super) fn cases(cursor_a: &str, cursor_b: &str) -> Vec<Case> {
    vec![
        get("cursor garbage", "cursor=garbage"),
        get("cursor 10 KB", &format!("cursor={}", "A".repeat(10_000))),
        get(
            "cursor right length, forged",
            &format!("cursor={}", "A".repeat(67)),
        ),
        get("cursor with NUL", "cursor=AAAA%00AAAA"),
        get("cursor of another tenant", &format!("cursor={cursor_b}")),
        get(
            "cursor with a changed filter",
            &format!("cursor={cursor_a}&action=x"),
        ),
        get(
            "cursor with another order",
            &format!("cursor={cursor_a}&order=asc"),
        ),
        get("cursor with non-UTF-8", "cursor=%FF%FE"),
        case(
            "query body forged cursor",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"cursor": "A".repeat(67)})),
    ]
}
