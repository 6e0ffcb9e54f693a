//! Hostile query strings of the list route: parameters out of range, unknown, too long, `q`
//! that is not the right JSON, values that are not UTF-8, windows that are empty.

use axum::http::Method;
use serde_json::json;

use super::{case, deep, enc, get, Case};

pub(super) fn cases() -> Vec<Case> {
    let list_1001 = (0..1001)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let in_1001: Vec<String> = (0..1001).map(|i| format!("a{i}")).collect();
    vec![
        // ---- query strings --------------------------------------------------------------------
        get("limit 0", "limit=0"),
        get("limit 1001", "limit=1001"),
        get("limit huge", "limit=99999999999999999999999999"),
        get("limit negative", "limit=-1"),
        get("limit words", "limit=ten"),
        get("order sideways", "order=sideways"),
        get("include_total maybe", "include_total=maybe"),
        get("unknown parameter", "colour=blue"),
        get("unknown parameter with NUL name", "a%00b=1"),
        get("since words", "since=last-week"),
        get("since Feb 30", "since=2024-02-30"),
        get(
            "until hour 25",
            &format!("until={}", enc("2024-01-01T25:00:00Z")),
        ),
        get(
            "since offset +99:00",
            &format!("since={}", enc("2024-01-01T00:00:00+99:00")),
        ),
        get("id not a UUID", "id=nope"),
        get("1,001 actions", &format!("action={list_1001}")),
        get("action 1 MB", &format!("action={}", "x".repeat(1 << 20))),
        get("context with empty key", "context.=x"),
        get("q not JSON", &format!("q={}", enc("{nope"))),
        get("q array", &format!("q={}", enc("[1]"))),
        get(
            "q unknown field",
            &format!("q={}", enc(r#"{"colour":"blue"}"#)),
        ),
        get(
            "q field with NUL",
            &format!("q={}", enc(r#"{"act\u0000ion":"a"}"#)),
        ),
        get(
            "q unknown operator",
            &format!("q={}", enc(r#"{"action":{"regex":".*"}}"#)),
        ),
        get(
            "q string operator on created_at",
            &format!("q={}", enc(r#"{"created_at":{"contains":"2024"}}"#)),
        ),
        get(
            "q bad date",
            &format!("q={}", enc(r#"{"created_at":{"gt":"someday"}}"#)),
        ),
        get(
            "q between with one operand",
            &format!("q={}", enc(r#"{"action":{"between":["a"]}}"#)),
        ),
        get(
            "q in not a list",
            &format!("q={}", enc(r#"{"action":{"in":"a"}}"#)),
        ),
        get(
            "q in of 1,001",
            &format!("q={}", enc(&json!({"action": {"in": in_1001}}).to_string())),
        ),
        get(
            "q 3,000 deep (as deep as a URI under 64 KiB allows)",
            &format!("q={}", enc(&deep(3_000, r#"{"a":"#, "}", "1"))),
        ),
        get(
            "q context with empty key",
            &format!("q={}", enc(r#"{"context.":"x"}"#)),
        ),
        // ---- query strings that are not UTF-8, windows that are empty (issue 11) -----------
        get("action not UTF-8", "action=%FF"),
        get("actor_name overlong UTF-8", "actor_name=%C0%AF"),
        get("resource_id lone continuation byte", "resource_id=%80"),
        get("q not UTF-8", "q=%FF"),
        get("since not UTF-8", "since=2024-01-01%FF"),
        get("parameter name not UTF-8", "%FF=1"),
        get(
            "since after until",
            &format!(
                "since={}&until={}",
                enc("2024-01-02T00:00:00Z"),
                enc("2024-01-01T00:00:00Z")
            ),
        ),
        get(
            "since equal to until",
            &format!(
                "since={0}&until={0}",
                enc("2024-01-01T00:00:00Z")
            ),
        ),
        get("since date after until date", "since=2024-01-02&until=2024-01-01"),
        get(
            "since instant after until date",
            &format!("since={}&until=2024-01-01", enc("2024-01-03T00:00:00Z")),
        ),
        get(
            "q created_at gte after lt",
            &format!(
                "q={}",
                enc(r#"{"created_at":{"gte":"2024-02-01T00:00:00Z","lt":"2024-01-01T00:00:00Z"}}"#)
            ),
        ),
        get(
            "q created_at between reversed",
            &format!(
                "q={}",
                enc(r#"{"created_at":{"between":["2024-02-01","2024-01-01"]}}"#)
            ),
        ),
        get(
            "q created_at gt a date, lte the day before",
            &format!(
                "q={}",
                enc(r#"{"created_at":{"gt":"2024-01-02","lte":"2024-01-01"}}"#)
            ),
        ),
        case(
            "facets prefix not UTF-8",
            Method::GET,
            "/v1/activities/facets?field=action&prefix=%FF",
        ),
        case(
            "facets since after until",
            Method::GET,
            "/v1/activities/facets?field=action&since=2024-01-02&until=2024-01-01",
        ),
        case(
            "export action not UTF-8",
            Method::GET,
            "/v1/activities/export?action=%FF",
        ),
        case(
            "export since after until",
            Method::GET,
            "/v1/activities/export?since=2024-01-02&until=2024-01-01",
        ),
        case(
            "Space Invoices resource_type not UTF-8",
            Method::GET,
            "/compat/spaceinvoices/activities?resource_type=%FF",
        ),
        case(
            "Space Invoices created_at window empty",
            Method::GET,
            format!(
                "/compat/spaceinvoices/activities?query={}",
                enc(r#"{"created_at":{"gte":"2024-02-01","lt":"2024-01-01"}}"#)
            ),
        ),
        case(
            "Sequence entity id not UTF-8",
            Method::GET,
            "/compat/sequence/activity-logs?activityLogObjectEntityId=%FF",
        ),
        case(
            "subscriptions action not UTF-8",
            Method::GET,
            "/compat/subscriptions/api/activity-logs?start_date=2024-01-01&end_date=2024-01-31&action=%FF",
        ),
        case(
            "subscriptions page past any offset",
            Method::GET,
            format!(
                "/compat/subscriptions/api/activity-logs?start_date=2024-01-01&end_date=2024-01-31&page={}&limit=100",
                i64::MAX
            ),
        ),
    ]
}
