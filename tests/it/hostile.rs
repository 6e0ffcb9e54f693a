//! Hostile requests: a table of malformed and oversized requests (bad JSON, wrong types, NUL
//! bytes, 1 MB strings, 10,000-deep nesting, huge batches, huge `limit`, forged and foreign
//! cursors, unknown fields and operators, bad dates and time zones, non-UTF-8). Each must be a
//! 4xx in API.md's error shape, and nothing may be written by any of them.
//!
//! The same table runs twice: through the router (`tower::ServiceExt::oneshot`), and over real
//! sockets against the server binary, which must still answer `/healthz` afterwards and whose
//! peak memory is reported.

use std::time::Instant;

use actlog::*;
use axum::http::Method;
use serde_json::{json, Value};

use crate::http::{call, env, Env};

/// What a case authenticates with.
#[derive(Clone, Copy, Debug)]
enum Key {
    /// `read_write` of tenant `a`.
    Rw,
    Read,
    Write,
    Admin,
    None,
    /// A literal `Authorization` header value.
    Raw(&'static [u8]),
}

struct Case {
    name: String,
    method: Method,
    uri: String,
    key: Key,
    headers: Vec<(&'static str, Vec<u8>)>,
    /// `(content type, body)`.
    body: Option<(&'static str, Vec<u8>)>,
}

fn case(name: impl Into<String>, method: Method, uri: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        method,
        uri: uri.into(),
        key: Key::Rw,
        headers: vec![],
        body: None,
    }
}

impl Case {
    fn json(mut self, v: Value) -> Case {
        self.body = Some(("application/json", v.to_string().into_bytes()));
        self
    }
    fn raw(mut self, content_type: &'static str, b: impl Into<Vec<u8>>) -> Case {
        self.body = Some((content_type, b.into()));
        self
    }
    fn key(mut self, k: Key) -> Case {
        self.key = k;
        self
    }
    fn header(mut self, name: &'static str, v: impl Into<Vec<u8>>) -> Case {
        self.headers.push((name, v.into()));
        self
    }
}

fn ok_activity() -> Value {
    json!({"action": "invoice.sent", "resource": {"type": "Invoice", "id": "inv_1"}})
}

fn with(field: &str, v: Value) -> Value {
    let mut a = ok_activity();
    a[field] = v;
    a
}

fn deep(n: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

fn post(name: &str, body: Value) -> Case {
    case(name, Method::POST, "/v1/activities").json(body)
}

fn get(name: &str, qs: &str) -> Case {
    case(name, Method::GET, format!("/v1/activities?{qs}"))
}

fn enc(s: &str) -> String {
    url_escape(s)
}

/// Percent-encodes everything but unreserved characters.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The table. `cursors`: a valid cursor of tenant `a`'s default query, one of tenant `b`.
fn table(cursor_a: &str, cursor_b: &str) -> Vec<Case> {
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
    let list_1001 = (0..1001)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let in_1001: Vec<String> = (0..1001).map(|i| format!("a{i}")).collect();

    let mut t = vec![
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
        post("action with an escaped NUL", with("action", json!("a\u{0}b"))),
        post("action with a newline", with("action", json!("invoice\nsent"))),
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
        case(
            "query body forged cursor",
            Method::POST,
            "/v1/activities/query",
        )
        .json(json!({"cursor": "A".repeat(67)})),
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
        case("tenant retention 999,999,999 days", Method::PATCH, "/v1/tenants/a")
            .key(Key::Admin)
            .json(json!({"retention_days": 999_999_999})),
        case("tenant created with retention 36,501 days", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "longer", "retention_days": 36_501})),
        case("existing tenant again", Method::POST, "/v1/tenants")
            .key(Key::Admin)
            .json(json!({"id": "a"})),
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
    ];
    // Every append case must be written by nobody: send it with the write key too.
    let extra: Vec<Case> = t
        .iter()
        .filter(|c| {
            c.method == Method::POST && c.uri == "/v1/activities" && matches!(c.key, Key::Rw)
        })
        .take(10)
        .map(|c| Case {
            name: format!("{} (write key)", c.name),
            method: c.method.clone(),
            uri: c.uri.clone(),
            key: Key::Write,
            headers: c.headers.clone(),
            body: c.body.clone(),
        })
        .collect();
    t.extend(extra);
    t
}

/// Checks one answer: a 4xx with `{"error": {"code", "message", "field"}}`.
fn check_answer(name: &str, status: u16, body: &[u8]) -> Result<(), String> {
    if !(400..500).contains(&status) {
        return Err(format!(
            "{name}: status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{name}: {status} with a body that is not JSON ({e})"))?;
    let e = &v["error"];
    let shape = e["code"].as_str().is_some_and(|c| !c.is_empty())
        && e["message"].as_str().is_some_and(|m| !m.is_empty())
        && (e["field"].is_null() || e["field"].is_string())
        && e.as_object().is_some_and(|o| o.contains_key("field"));
    if !shape {
        return Err(format!("{name}: {status} not in the error shape: {v}"));
    }
    Ok(())
}

/// A valid cursor of the default query of one tenant (it needs two pages).
async fn a_cursor(e: &Env, key: &str) -> String {
    for i in 0..3 {
        let r = call(Method::POST, "/v1/activities")
            .key(key)
            .json(&json!({"action": "seed", "resource": {"type": "T", "id": format!("s{i}")}}))
            .send(&e.app)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = call(Method::GET, "/v1/activities?limit=1")
        .key(key)
        .send(&e.app)
        .await;
    r.json["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn total(store: &Store) -> u64 {
    store.count("a", &Filter::default()).unwrap() + store.count("b", &Filter::default()).unwrap()
}

#[tokio::test]
async fn hostile_requests_through_the_router() {
    let e = env();
    let cursor_a = a_cursor(&e, e.key("a", "read_write")).await;
    let cursor_b = a_cursor(&e, e.key("b", "read_write")).await;
    let before = total(&e.store);
    let cases = table(&cursor_a, &cursor_b);
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let rss_before = peak_rss_kb(std::process::id());
    let start = Instant::now();
    let mut failures = vec![];
    let mut unbuildable = vec![];
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for c in &cases {
        let mut req = axum::http::Request::builder()
            .method(c.method.clone())
            .uri(&c.uri);
        let key = match c.key {
            Key::Rw => Some(format!("Bearer {}", e.key("a", "read_write")).into_bytes()),
            Key::Read => Some(format!("Bearer {}", e.key("a", "read")).into_bytes()),
            Key::Write => Some(format!("Bearer {}", e.key("a", "write")).into_bytes()),
            Key::Admin => Some(format!("Bearer {}", e.admin).into_bytes()),
            Key::None => None,
            Key::Raw(b) => Some(b.to_vec()),
        };
        if let Some(k) = key {
            req = req.header(
                "authorization",
                axum::http::HeaderValue::from_bytes(&k).unwrap(),
            );
        }
        for (h, v) in &c.headers {
            req = req.header(*h, axum::http::HeaderValue::from_bytes(v).unwrap());
        }
        let body = match &c.body {
            Some((ct, b)) => {
                req = req.header("content-type", *ct);
                axum::body::Body::from(b.clone())
            }
            None => axum::body::Body::empty(),
        };
        let req = match req.body(body) {
            Ok(r) => r,
            // `http::Uri` refuses URIs of 64 KiB and more: such a request never reaches a router.
            Err(err) => {
                unbuildable.push(format!("{}: {err}", c.name));
                continue;
            }
        };
        let resp = tower::ServiceExt::oneshot(e.app.clone(), req)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        *statuses.entry(status).or_default() += 1;
        if let Err(f) = check_answer(&c.name, status, &bytes) {
            failures.push(f);
        }
    }
    let after = total(&e.store);
    eprintln!(
        "hostile requests (router): {} cases in {:.1?}, statuses {statuses:?}, {} not a 4xx in \
         the error shape, {} not representable as an http::Request ({unbuildable:?}), activities \
         written: {}; test process peak RSS {:?} kB before, {:?} kB after",
        cases.len(),
        start.elapsed(),
        failures.len(),
        unbuildable.len(),
        after - before,
        rss_before,
        peak_rss_kb(std::process::id())
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(unbuildable.len() <= 1, "{unbuildable:?}");
    assert_eq!(after, before, "a rejected request wrote something");
}

/// The same table over real sockets against the binary.
#[test]
fn hostile_requests_against_the_server_binary() {
    use crate::kill9::{http_raw, start};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, true, &[]);
    let addr = server.addr.unwrap();
    let admin = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let admin_auth = format!("Bearer {admin}");
    // Tenants a and b, with read_write, read and write keys of a.
    let mut keys = std::collections::HashMap::new();
    for t in ["a", "b"] {
        let (s, b) = http_raw(
            addr,
            "POST",
            "/v1/tenants",
            &[("authorization", admin_auth.as_bytes())],
            Some(("application/json", json!({"id": t}).to_string().as_bytes())),
        )
        .unwrap();
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        for scope in ["read_write", "read", "write"] {
            let (s, b) = http_raw(
                addr,
                "POST",
                &format!("/v1/tenants/{t}/keys"),
                &[("authorization", admin_auth.as_bytes())],
                Some((
                    "application/json",
                    json!({"scope": scope}).to_string().as_bytes(),
                )),
            )
            .unwrap();
            assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
            let v: Value = serde_json::from_slice(&b).unwrap();
            keys.insert((t, scope), v["key"].as_str().unwrap().to_owned());
        }
    }
    let cursor = |t: &str| {
        let auth = format!("Bearer {}", keys[&(t, "read_write")]);
        for i in 0..3 {
            let body = json!({"action": "seed", "resource": {"type": "T", "id": format!("s{i}")}})
                .to_string();
            let (s, _) = http_raw(
                addr,
                "POST",
                "/v1/activities",
                &[("authorization", auth.as_bytes())],
                Some(("application/json", body.as_bytes())),
            )
            .unwrap();
            assert_eq!(s, 201);
        }
        let (_, b) = http_raw(
            addr,
            "GET",
            "/v1/activities?limit=1",
            &[("authorization", auth.as_bytes())],
            None,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        v["pagination"]["next_cursor"].as_str().unwrap().to_owned()
    };
    let (cursor_a, cursor_b) = (cursor("a"), cursor("b"));
    let cases = table(&cursor_a, &cursor_b);
    let start_time = Instant::now();
    let mut failures = vec![];
    let mut by_hyper = vec![];
    for c in &cases {
        let key = match c.key {
            Key::Rw => Some(format!("Bearer {}", keys[&("a", "read_write")]).into_bytes()),
            Key::Read => Some(format!("Bearer {}", keys[&("a", "read")]).into_bytes()),
            Key::Write => Some(format!("Bearer {}", keys[&("a", "write")]).into_bytes()),
            Key::Admin => Some(admin_auth.clone().into_bytes()),
            Key::None => None,
            Key::Raw(b) => Some(b.to_vec()),
        };
        let mut headers: Vec<(&str, &[u8])> =
            c.headers.iter().map(|(h, v)| (*h, v.as_slice())).collect();
        if let Some(k) = &key {
            headers.push(("authorization", k));
        }
        let body = c.body.as_ref().map(|(ct, b)| (*ct, b.as_slice()));
        match http_raw(addr, c.method.as_str(), &c.uri, &headers, body) {
            // hyper answers a request head it will not read (a URI or headers past its buffer)
            // itself, with an empty body, before any router sees it.
            Ok((status @ (414 | 431), body)) if body.is_empty() => {
                by_hyper.push(format!("{}: {status}", c.name));
            }
            Ok((status, body)) => {
                if let Err(f) = check_answer(&c.name, status, &body) {
                    failures.push(f);
                }
            }
            Err(err) => failures.push(format!("{}: no answer: {err}", c.name)),
        }
    }
    let (health, _) = http_raw(addr, "GET", "/healthz", &[], None).unwrap();
    let rss = peak_rss_kb(server.child.id());
    let elapsed = start_time.elapsed();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let store = Store::open(&data, Options::default()).unwrap();
    let written = store.count("a", &Filter::default()).unwrap()
        + store.count("b", &Filter::default()).unwrap();
    eprintln!(
        "hostile requests (server binary): {} cases in {elapsed:.1?}, {} not a 4xx in the error \
         shape, {} refused by hyper with an empty 4xx ({by_hyper:?}), /healthz {health} \
         afterwards, server peak RSS {rss:?} kB, activities in the store {written} (6 seeded)",
        cases.len(),
        failures.len(),
        by_hyper.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(by_hyper.len() <= 1, "{by_hyper:?}");
    assert_eq!(health, 200);
    assert_eq!(written, 6, "a rejected request wrote something");
}

/// Regression: a JSON object naming a key twice was accepted, and serde_json silently kept the
/// last value: `{"action":"a","action":"b",…}` was stored as action "b" with a 201, so what an
/// audit record says depended on which parser (a proxy, a log, the store) read the request.
/// Found by the hostile-request table. Duplicates are a 400 naming the key, at any depth, in
/// append and query bodies and in `q`; nothing is written.
#[tokio::test]
async fn duplicate_json_keys_are_rejected() {
    let e = env();
    let key = e.key("a", "read_write");
    let bodies = [
        (
            r#"{"action":"a","action":"b","resource":{"type":"T"}}"#,
            "action",
        ),
        (
            r#"{"action":"a","resource":{"type":"T","type":"U"}}"#,
            "resource.type",
        ),
        (
            r#"{"action":"a","resource":{"type":"T"},"metadata":{"x":1,"\u0078":2}}"#,
            "metadata.x",
        ),
        (
            r#"{"activities":[{"action":"a","resource":{"type":"T"}},{"action":"a","resource":{"type":"T"},"summary":"s","summary":"t"}]}"#,
            "activities[1].summary",
        ),
        (
            r#"{"activities":[],"activities":[{"action":"a","resource":{"type":"T"}}]}"#,
            "activities",
        ),
    ];
    for (b, field) in bodies {
        let r = call(Method::POST, "/v1/activities")
            .key(key)
            .raw("application/json", b.as_bytes())
            .send(&e.app)
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text());
        assert!(r.text().contains("duplicate"), "{b}: {}", r.text());
        assert_eq!(r.field(), Some(field), "{b}: {}", r.text());
    }
    assert_eq!(e.store.count("a", &Filter::default()).unwrap(), 0);
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .raw("application/json", br#"{"action":"a","action":"b"}"#)
        .send(&e.app)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let q = url_escape(r#"{"action":"a","action":"b"}"#);
    let r = call(Method::GET, &format!("/v1/activities?q={q}"))
        .key(key)
        .send(&e.app)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.field(), Some("q"));
}

/// Regression (issue 11): each of these was accepted: control characters were stored in names
/// and ids (a NUL in an action, an escape sequence in a resource id that a terminal or a log
/// viewer would interpret), a query-string value that is not UTF-8 was replaced by U+FFFD and
/// answered 200 with an empty list (`action=%FF`), and a window whose `since` is not before its
/// `until` answered 200 with an empty list. Each is now a 400 naming the field, and nothing is
/// written. The same requests are also rows of the hostile table above.
#[tokio::test]
async fn accepted_before_now_a_400_naming_the_field() {
    let e = env();
    let key = e.key("a", "read_write");
    let appends = [
        (with("action", json!("a\u{0}b")), "action"),
        (with("action", json!("invoice\nsent")), "action"),
        (with("action", json!("a\u{7f}")), "action"),
        (with("resource", json!({"type": "T\t"})), "resource.type"),
        (
            with("resource", json!({"type": "T", "id": "\u{1b}[31m"})),
            "resource.id",
        ),
        (with("actor", json!({"type": "u\u{1}"})), "actor.type"),
        (with("actor", json!({"type": "u", "id": "1\r"})), "actor.id"),
        (
            with("actor", json!({"type": "u", "name": "Ana\u{0}"})),
            "actor.name",
        ),
        (
            with("actor", json!({"type": "u", "email": "a@b\n.c"})),
            "actor.email",
        ),
        (with("target", json!({"type": "C\u{1f}"})), "target.type"),
        (
            with("target", json!({"type": "C", "id": "\u{0}"})),
            "target.id",
        ),
        (with("context", json!({"k\n": "v"})), "context"),
        (
            json!({"activities": [ok_activity(), with("action", json!("\u{0}"))]}),
            "activities[1].action",
        ),
    ];
    for (body, field) in appends {
        let r = call(Method::POST, "/v1/activities")
            .key(key)
            .json(&body)
            .send(&e.app)
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.field(), Some(field), "{body}: {}", r.text());
    }
    // Text that is not a name may hold line breaks and tabs, as before.
    let mut fine = ok_activity();
    fine["summary"] = json!("line one\nline two\tand a tab");
    fine["context"] = json!({"note": "a\nb"});
    let r = call(Method::POST, "/v1/activities")
        .key(key)
        .json(&fine)
        .send(&e.app)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let q = |s: &str| url_escape(s);
    let gets = [
        ("/v1/activities?action=%FF".to_owned(), "action"),
        ("/v1/activities?actor_name=%C0%AF".to_owned(), "actor_name"),
        ("/v1/activities?q=%FF".to_owned(), "q"),
        ("/v1/activities?since=2024-01-01%FF".to_owned(), "since"),
        ("/v1/activities?context.k=%FF".to_owned(), "context.k"),
        (
            "/v1/activities/facets?field=action&prefix=%FF".to_owned(),
            "prefix",
        ),
        ("/v1/activities/export?action=%FF".to_owned(), "action"),
        (
            "/compat/spaceinvoices/activities?resource_type=%FF".to_owned(),
            "resource_type",
        ),
        (
            "/compat/sequence/activity-logs?activityLogObjectEntityId=%FF".to_owned(),
            "activityLogObjectEntityId",
        ),
        (
            "/compat/subscriptions/api/activity-logs?start_date=2024-01-01&end_date=2024-01-31&action=%FF"
                .to_owned(),
            "action",
        ),
        (
            format!(
                "/v1/activities?since={}&until={}",
                q("2024-01-02T00:00:00Z"),
                q("2024-01-01T00:00:00Z")
            ),
            "since",
        ),
        (
            format!("/v1/activities?since={0}&until={0}", q("2024-01-01T00:00:00+02:00")),
            "since",
        ),
        (
            "/v1/activities?since=2024-01-02&until=2024-01-01".to_owned(),
            "since",
        ),
        (
            format!(
                "/v1/activities?q={}",
                q(r#"{"created_at":{"gte":"2024-02-01T00:00:00Z","lt":"2024-01-01T00:00:00Z"}}"#)
            ),
            "q.created_at",
        ),
        (
            format!(
                "/v1/activities?q={}",
                q(r#"{"created_at":{"between":["2024-02-01","2024-01-01"]}}"#)
            ),
            "q.created_at",
        ),
        (
            format!(
                "/v1/activities?since=2024-03-01&q={}",
                q(r#"{"created_at":{"lt":"2024-01-01"}}"#)
            ),
            "q.created_at",
        ),
        (
            "/v1/activities/facets?field=action&since=2024-01-02&until=2024-01-01".to_owned(),
            "since",
        ),
        (
            "/v1/activities/export?since=2024-01-02&until=2024-01-01".to_owned(),
            "since",
        ),
        (
            format!(
                "/compat/spaceinvoices/activities?query={}",
                q(r#"{"created_at":{"gte":"2024-02-01","lt":"2024-01-01"}}"#)
            ),
            "query.created_at",
        ),
        (
            format!(
                "/compat/subscriptions/api/activity-logs?start_date=2024-01-01&end_date=2024-01-31&page={}&limit=100",
                i64::MAX
            ),
            "page",
        ),
    ];
    for (uri, field) in &gets {
        let r = call(Method::GET, uri).key(key).send(&e.app).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.text());
        assert_eq!(r.field(), Some(*field), "{uri}: {}", r.text());
    }
    let bodies = [
        (
            json!({"since": "2024-01-02", "until": "2024-01-01T00:00:00Z"}),
            "since",
        ),
        (
            json!({"q": {"created_at": {"gte": 1_706_745_600_000i64, "lt": "2024-01-01"}}}),
            "q.created_at",
        ),
    ];
    for (body, field) in bodies {
        let r = call(Method::POST, "/v1/activities/query")
            .key(key)
            .json(&body)
            .send(&e.app)
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.field(), Some(field), "{body}: {}", r.text());
    }
    // A window of one whole day given as the same date twice is not empty; nor is an instant
    // before a date's end.
    for uri in [
        "/v1/activities?since=2024-01-01&until=2024-01-01".to_owned(),
        format!(
            "/v1/activities?since={}&until=2024-01-01",
            q("2024-01-01T12:00:00Z")
        ),
    ] {
        let r = call(Method::GET, &uri).key(key).send(&e.app).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
    }
    assert_eq!(e.store.count("a", &Filter::default()).unwrap(), 1);
}
