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

use crate::support::http::{call, env, Env};
use crate::support::process::{admin_key, http_raw, start};
use crate::support::url_escape;

mod bodies;
mod credentials;
mod cursors;
mod query_strings;
mod routes;

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

/// The table, kind by kind. `cursors`: a valid cursor of tenant `a`'s default query, one of
/// tenant `b`.
fn table(cursor_a: &str, cursor_b: &str) -> Vec<Case> {
    let mut t = bodies::cases();
    t.extend(query_strings::cases());
    t.extend(cursors::cases(cursor_a, cursor_b));
    t.extend(routes::cases());
    t.extend(credentials::cases());
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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, true, &[]);
    let addr = server.addr.unwrap();
    let admin = admin_key(&data);
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
