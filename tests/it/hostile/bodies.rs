//! Hostile JSON bodies: of appends (not JSON, wrong types and values, dates, control characters
//! in names, batches) and of queries.

use axum::http::Method;
use serde_json::{json, Value};

use super::{case, deep, ok_activity, post, with, Case};

pub(super) fn cases() -> Vec<Case> {
    let mb = "x".repeat(1 << 20);
    let many = |n: usize, v: Value| json!({ "activities": vec![v; n] });
    let mut with_bad_last: Vec<Value> = (0..999)
        .map(|i| json!({"action": "ok", "resource": {"type": "T", "id": format!("r{i}")}}))
        .collect();
    with_bad_last.push(json!({"action": "", "resource": {"type": "T"}}));
    let same_id = "0190f5a0-0000-7000-8000-000000000001";
    let nested_meta = format!(
        r#"{{"action":"a","resource":{{"type":"T"}},"metadata":{}}}"#,
        deep(10_000, r#"{"a":"#, "}", "1")
    );
    vec![
        // ---- bodies that are not JSON, or not the right JSON -----------------------------
        case("empty body", Method::POST, "/v1/activities").raw("application/json", ""),
        case("truncated JSON", Method::POST, "/v1/activities").raw("application/json", "{"),
        case("not JSON", Method::POST, "/v1/activities").raw("application/json", "hello"),
        case("trailing garbage", Method::POST, "/v1/activities")
            .raw("application/json", format!("{} xyz", ok_activity())),
        case("two documents", Method::POST, "/v1/activities")
            .raw("application/json", format!("{0}{0}", ok_activity())),
        post("JSON null", Value::Null),
        post("JSON string", json!("activity")),
        post("JSON number", json!(42)),
        post("JSON array of activities", json!([ok_activity()])),
        post("empty object", json!({})),
        case("raw NUL byte in JSON", Method::POST, "/v1/activities").raw(
            "application/json",
            b"{\"action\":\"a\0b\",\"resource\":{\"type\":\"T\"}}".to_vec(),
        ),
        case("non-UTF-8 body", Method::POST, "/v1/activities")
            .raw("application/json", vec![0xff, 0xfe, 0xfd, b'{', b'}']),
        case("non-UTF-8 inside a string", Method::POST, "/v1/activities").raw(
            "application/json",
            b"{\"action\":\"\xc3\x28\",\"resource\":{\"type\":\"T\"}}".to_vec(),
        ),
        case("lone surrogate escape", Method::POST, "/v1/activities").raw(
            "application/json",
            r#"{"action":"\ud800","resource":{"type":"T"}}"#,
        ),
        case("duplicate key", Method::POST, "/v1/activities").raw(
            "application/json",
            r#"{"action":"a","action":"b","resource":{"type":"T"}}"#,
        ),
        case("10,000-deep arrays", Method::POST, "/v1/activities")
            .raw("application/json", deep(10_000, "[", "]", "")),
        case("10,000-deep objects", Method::POST, "/v1/activities")
            .raw("application/json", deep(10_000, r#"{"a":"#, "}", "1")),
        case("10,000-deep metadata", Method::POST, "/v1/activities")
            .raw("application/json", nested_meta),
        case("text/plain content type", Method::POST, "/v1/activities")
            .raw("text/plain", ok_activity().to_string()),
        case("XML content type", Method::POST, "/v1/activities")
            .raw("application/xml", "<activity/>"),
        case("form content type", Method::POST, "/v1/activities")
            .raw("application/x-www-form-urlencoded", "action=a"),
        case("5 MB body (over the limit)", Method::POST, "/v1/activities").raw(
            "application/json",
            format!(
                r#"{{"action":"a","resource":{{"type":"T"}},"summary":"{}"}}"#,
                "y".repeat(5 << 20)
            ),
        ),
        // ---- wrong types and values --------------------------------------------------------
        post("action missing", json!({"resource": {"type": "T"}})),
        post("action null", with("action", Value::Null)),
        post("action number", with("action", json!(7))),
        post("action array", with("action", json!(["a"]))),
        post("action object", with("action", json!({"a": 1}))),
        post("action empty", with("action", json!(""))),
        post("action 129 bytes", with("action", json!("a".repeat(129)))),
        post("action 1 MB", with("action", json!(mb))),
        post(
            "action 1 MB of NULs",
            with("action", json!("\0".repeat(1 << 20))),
        ),
        post("resource missing", json!({"action": "a"})),
        post("resource string", with("resource", json!("Invoice"))),
        post(
            "resource type missing",
            with("resource", json!({"id": "x"})),
        ),
        post("resource type number", with("resource", json!({"type": 5}))),
        post(
            "resource id 1 MB",
            with("resource", json!({"type": "T", "id": mb})),
        ),
        post(
            "resource type NUL-padded 200 bytes",
            with("resource", json!({"type": "\0".repeat(200)})),
        ),
        post("unknown field", with("acton", json!("typo"))),
        post(
            "unknown nested field",
            with("resource", json!({"type": "T", "tipe": "x"})),
        ),
        post("actor string", with("actor", json!("bob"))),
        post("actor without type", with("actor", json!({"id": "u1"}))),
        post(
            "actor name 1 MB",
            with("actor", json!({"type": "user", "name": mb})),
        ),
        post(
            "target type 1 MB",
            with("target", json!({"type": mb, "id": "x"})),
        ),
        post("context array", with("context", json!(["a", "b"]))),
        post("context value number", with("context", json!({"k": 1}))),
        post(
            "context value object",
            with("context", json!({"k": {"x": 1}})),
        ),
        post(
            "context 17 entries",
            with(
                "context",
                Value::Object((0..17).map(|i| (format!("k{i}"), json!("v"))).collect()),
            ),
        ),
        post("context value 1 MB", with("context", json!({"k": mb}))),
        post("context empty key", with("context", json!({"": "v"}))),
        post("summary 1 MB", with("summary", json!(mb))),
        post("reason number", with("reason", json!(1))),
        post("metadata array", with("metadata", json!([1, 2]))),
        post("metadata string", with("metadata", json!("x"))),
        post("metadata 1 MB", with("metadata", json!({"blob": mb}))),
        post("changes number", with("changes", json!(3))),
        post(
            "display data not an object",
            with("display", json!({"template": "t", "data": 5})),
        ),
        post(
            "display template number",
            with("display", json!({"template": 5, "data": {}})),
        ),
        post("id not a UUID", with("id", json!("not-a-uuid"))),
        post("id number", with("id", json!(12345))),
        post(
            "id with NUL",
            with("id", json!("0190f5a0-0000-7000-8000-00000000000\0")),
        ),
        // ---- dates ----------------------------------------------------------------------------
        post(
            "created_at month 13",
            with("created_at", json!("2024-13-01T00:00:00Z")),
        ),
        post(
            "created_at Feb 30",
            with("created_at", json!("2024-02-30T00:00:00Z")),
        ),
        post("created_at words", with("created_at", json!("yesterday"))),
        post(
            "created_at offset +99:00",
            with("created_at", json!("2024-01-01T00:00:00+99:00")),
        ),
        post(
            "created_at no zone",
            with("created_at", json!("2024-01-01T00:00:00")),
        ),
        post(
            "created_at year 10000",
            with("created_at", json!("10000-01-01T00:00:00Z")),
        ),
        post("created_at epoch ms 1e20", with("created_at", json!(1e20))),
        post(
            "created_at epoch ms i64::MIN",
            with("created_at", json!(i64::MIN)),
        ),
        post("created_at float", with("created_at", json!(1.5))),
        post("created_at object", with("created_at", json!({"t": 1}))),
        // ---- control characters in names (issue 11) ----------------------------------------
        post(
            "action with an escaped NUL",
            with("action", json!("a\u{0}b")),
        ),
        post(
            "action with a newline",
            with("action", json!("invoice\nsent")),
        ),
        post("action with DEL", with("action", json!("a\u{7f}"))),
        post(
            "resource type with a tab",
            with("resource", json!({"type": "T\t"})),
        ),
        post(
            "resource id with an escape sequence",
            with("resource", json!({"type": "T", "id": "\u{1b}[31mred"})),
        ),
        post(
            "actor id with a CR",
            with("actor", json!({"type": "user", "id": "u1\r"})),
        ),
        post(
            "actor name with a NUL",
            with("actor", json!({"type": "user", "name": "Ana\u{0}"})),
        ),
        post(
            "target type with U+001F",
            with("target", json!({"type": "C\u{1f}", "id": "x"})),
        ),
        post(
            "context key with a newline",
            with("context", json!({"k\n": "v"})),
        ),
        post(
            "batch whose second action has a NUL",
            json!({"activities": [ok_activity(), with("action", json!("\u{0}"))]}),
        ),
        // ---- batches --------------------------------------------------------------------------
        post("empty batch", json!({"activities": []})),
        post("batch not an array", json!({"activities": {"a": 1}})),
        post("batch of nulls", json!({"activities": [null]})),
        post("batch of 1,001", many(1001, ok_activity())),
        post("batch of 100,000", many(100_000, json!({}))),
        post(
            "batch of 999 good and 1 bad",
            json!({ "activities": with_bad_last }),
        ),
        post(
            "batch with an unknown field",
            json!({"activities": [ok_activity()], "atomic": false}),
        ),
        post(
            "batch with one id twice, other content",
            json!({"activities": [with("id", json!(same_id)), {
                "id": same_id, "action": "other", "resource": {"type": "T"}}]}),
        ),
        // ---- the query body ---------------------------------------------------------------
        case("query body not JSON", Method::POST, "/v1/activities/query")
            .raw("application/json", "{{"),
        case(
            "query body unknown field",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"colour": 1})),
        case(
            "query body limit string",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"limit": "ten"})),
        case("query body limit 1e9", Method::POST, "/v1/activities/query")
            .json(json!({"limit": 1_000_000_000u64})),
        case(
            "query body q unknown operator",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"q": {"action": {"like": "a%"}}})),
        case(
            "query body 10,000 deep",
            Method::POST,
            "/v1/activities/query",
        )
        .raw("application/json", deep(10_000, "[", "]", "")),
        case(
            "query body with q 10,000 deep",
            Method::POST,
            "/v1/activities/query",
        )
        .raw(
            "application/json",
            format!(
                r#"{{"q":{}}}"#,
                deep(10_000, r#"{"action":"#, "}", r#""a""#)
            ),
        ),
        case(
            "query body with q as 10,000-deep text",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({ "q": deep(10_000, r#"{"action":"#, "}", r#""a""#) })),
        case(
            "query body since after until",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"since": "2024-01-02", "until": "2024-01-01T00:00:00Z"})),
        case(
            "query body q window empty",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"q": {"created_at": {"gte": 1_706_745_600_000i64, "lt": "2024-01-01"}}})),
    ]
}
