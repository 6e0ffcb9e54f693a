//! Conformance tests of the four profiles, written from the seed pages (`shared/seeds/`), through
//! the whole router (`app(state)` and `oneshot`). Each profile: every parameter and response field,
//! each validation rule from both sides, pagination walked to the end both ways where the seed
//! allows; and one cross-profile test (one store, one model).

use std::collections::HashSet;
use std::sync::Arc;

use actlog::http::auth::issue_key;
use actlog::http::{app, AppState, Config};
use actlog::{
    Activity, Actor, DisplayText, NewActivity, ObjectRef, Options, Scope, Store, TenantSettings,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tower::ServiceExt;

// ---- harness -------------------------------------------------------------------------------------

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
    admin: String,
}

impl Env {
    /// A store with these tenants (id, time zone), created in this order, and an admin key.
    fn new(tenants: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        for (id, tz) in tenants {
            store
                .create_tenant(
                    id,
                    TenantSettings {
                        timezone: (*tz).into(),
                        retention_days: None,
                    },
                )
                .unwrap();
        }
        let admin = issue_key(None, Scope::Admin, Utc::now());
        store.put_api_key(&admin.record).unwrap();
        let app = app(AppState::new(Arc::clone(&store), Config::default()));
        Env {
            _dir: dir,
            store,
            app,
            admin: admin.token,
        }
    }

    /// A key of one tenant.
    fn key(&self, tenant: &str, scope: Scope) -> String {
        let k = issue_key(Some(tenant.into()), scope, Utc::now());
        self.store.put_api_key(&k.record).unwrap();
        k.token
    }

    fn append(&self, tenant: &str, a: NewActivity) -> Activity {
        let ack = self.store.append(tenant, a).unwrap();
        self.store.get(tenant, ack.id).unwrap().unwrap()
    }

    /// Sends a request; `headers` replace the default `Authorization: Bearer <admin>` when they
    /// contain an `authorization` entry, or `none` as its value drops it. Space Invoices
    /// requests made with the admin key name the first tenant in `x-entity-id` unless the test
    /// names one (an admin key must name its entity there: docs/profiles.md); `x-entity-id:
    /// none` sends no tenant header at all.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        let custom_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if !custom_auth {
            b = b.header("authorization", format!("Bearer {}", self.admin));
        }
        let names_tenant = headers.iter().any(|(k, _)| {
            ["x-entity-id", "x-tenant-id", "entity_id"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
        });
        if uri.starts_with(SI) && !custom_auth && !names_tenant {
            let first = self.store.default_tenant().unwrap().id;
            b = b.header("x-entity-id", first);
        }
        for (k, v) in headers {
            let dropped = (k.eq_ignore_ascii_case("authorization")
                || k.eq_ignore_ascii_case("x-entity-id"))
                && *v == "none";
            if !dropped {
                b = b.header(*k, *v);
            }
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &[], None).await
    }

    async fn get_ok(&self, uri: &str) -> Value {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        v
    }

    async fn post(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        self.call("POST", uri, &[], Some(body)).await
    }
}

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()
}

fn minutes(n: i64) -> DateTime<Utc> {
    base() + chrono::Duration::minutes(n)
}

/// Asserts a native-shape 400 naming `field`.
fn assert_invalid(status: StatusCode, v: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_argument", "{v}");
    assert_eq!(v["error"]["field"], field, "{v}");
}

fn ids(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---- Space Invoices ----------------------------------------------------------------------------

const SI: &str = "/compat/spaceinvoices/activities";

/// 12 activities in `ent_1`, a minute apart: Invoice inv_0..inv_5 created then sent, one Payment
/// by the system with no actor; and one in `ent_2`.
fn si_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("ent_1", "UTC"), ("ent_2", "UTC")]);
    let mut out = Vec::new();
    for i in 0..12i64 {
        let no_actor = i == 11;
        out.push(env.append("ent_1", {
            let mut a = NewActivity::new(
                if i % 2 == 0 { "created" } else { "sent" },
                ObjectRef {
                    kind: if no_actor { "Payment" } else { "Invoice" }.into(),
                    id: Some(format!("inv_{}", i / 2)),
                },
            )
            .created_at(minutes(i));
            a.actor = (!no_actor).then(|| Actor {
                kind: "user".into(),
                id: Some("usr_abc123".into()),
                name: None,
                email: Some("user@example.com".into()),
            });
            a.metadata = (i == 1)
                .then(|| json!({"to": "customer@example.com", "subject": "Invoice #INV-2024-001"}));
            a
        }));
    }
    env.append(
        "ent_2",
        NewActivity::new(
            "created",
            ObjectRef {
                kind: "Customer".into(),
                id: Some("cus_1".into()),
            },
        ),
    );
    (env, out)
}

#[tokio::test]
async fn spaceinvoices_response_fields_and_defaults() {
    let (env, acts) = si_env();
    let v = env.get_ok(SI).await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 10, "limit defaults to 10");
    // Newest first by default.
    assert_eq!(data[0]["id"], acts[11].id.to_string());
    let sent = data.iter().find(|d| d["id"] == acts[1].id.to_string());
    assert!(sent.is_none(), "acts[1] is on the second page");
    let first = &data[9];
    assert_eq!(first["id"], acts[2].id.to_string());
    assert_eq!(first["entity_id"], "ent_1");
    assert_eq!(first["resource_type"], "Invoice");
    assert_eq!(first["resource_id"], "inv_1");
    assert_eq!(first["action"], "created");
    assert_eq!(first["actor_type"], "user");
    assert_eq!(first["actor_id"], "usr_abc123");
    assert_eq!(first["actor_label"], "user@example.com");
    assert_eq!(first["details"], json!({}));
    assert_eq!(first["created_at"], "2024-01-15T10:02:00.000Z");
    let system = &data[0];
    assert_eq!(system["actor_type"], Value::Null);
    assert_eq!(system["actor_id"], Value::Null);
    assert_eq!(system["actor_label"], Value::Null);
    // include_total_count defaults to true.
    assert_eq!(v["pagination"]["total"], 12);
    assert_eq!(v["pagination"]["has_more"], true);
    assert!(v["pagination"]["next_cursor"].is_string());
    assert_eq!(v["pagination"]["prev_cursor"], Value::Null);
    // The seed's example puts has_more and next_cursor at the top level too.
    assert_eq!(v["has_more"], true);
    assert_eq!(v["next_cursor"], v["pagination"]["next_cursor"]);

    let v = env
        .get_ok(&format!("{SI}?resource_id=inv_0&action=sent"))
        .await;
    assert_eq!(v["data"][0]["details"]["to"], "customer@example.com");
    assert_eq!(v["data"][0]["details"]["subject"], "Invoice #INV-2024-001");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["next_cursor"], Value::Null);
}

#[tokio::test]
async fn spaceinvoices_entity_header() {
    let (env, _) = si_env();
    // Regression: with the admin key and no tenant header this read the first entity created.
    // The seed spells the header `entity_id`, which nginx and other proxies drop by default
    // (underscores in header names), so a client of entity 2 behind such a proxy silently read
    // entity 1's activities. The admin key must now name its entity: a 400 otherwise.
    let (s, v) = env
        .call(
            "GET",
            &format!("{SI}?limit=1"),
            &[("x-entity-id", "none")],
            None,
        )
        .await;
    assert_invalid(s, &v, "x-entity-id");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("entity_id"),
        "{v}"
    );
    let (s, v) = env
        .call(
            "GET",
            SI,
            &[("x-entity-id", "none"), ("x-tenant-id", "")],
            None,
        )
        .await;
    assert_invalid(s, &v, "x-entity-id");
    let v = env.get_ok(&format!("{SI}?limit=1")).await;
    assert_eq!(v["data"][0]["entity_id"], "ent_1");
    let (s, v) = env.call("GET", SI, &[("x-tenant-id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    let (s, v) = env.call("GET", SI, &[("x-entity-id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    assert_eq!(v["data"][0]["resource_type"], "Customer");
    assert_eq!(v["pagination"]["total"], 1);
    let (s, _) = env.call("GET", SI, &[("x-entity-id", "ent_9")], None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The parameter list's own spelling of the header.
    let (s, v) = env.call("GET", SI, &[("entity_id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    // A tenant key reads its own entity only.
    let key = env.key("ent_2", Scope::Read);
    let auth = format!("Bearer {key}");
    let (s, v) = env.call("GET", SI, &[("authorization", &auth)], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    let (s, _) = env
        .call(
            "GET",
            SI,
            &[("authorization", &auth), ("x-entity-id", "ent_1")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = env
        .call("GET", SI, &[("authorization", "none")], None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn spaceinvoices_limit_total_and_order() {
    let (env, acts) = si_env();
    for (limit, ok) in [
        ("0", false),
        ("1", true),
        ("1000", true),
        ("1001", false),
        ("x", false),
    ] {
        let (s, v) = env.get(&format!("{SI}?limit={limit}")).await;
        if ok {
            assert_eq!(s, StatusCode::OK, "{limit}");
        } else {
            assert_invalid(s, &v, "limit");
        }
    }
    let v = env.get_ok(&format!("{SI}?limit=3")).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    let v = env.get_ok(&format!("{SI}?include_total_count=false")).await;
    assert_eq!(v["pagination"]["total"], -1);
    let v = env.get_ok(&format!("{SI}?include_total_count=true")).await;
    assert_eq!(v["pagination"]["total"], 12);
    let (s, v) = env.get(&format!("{SI}?include_total_count=maybe")).await;
    assert_invalid(s, &v, "include_total_count");

    let v = env
        .get_ok(&format!("{SI}?order_by=created_at&limit=1"))
        .await;
    assert_eq!(v["data"][0]["id"], acts[0].id.to_string());
    let v = env
        .get_ok(&format!("{SI}?order_by=-created_at&limit=1"))
        .await;
    assert_eq!(v["data"][0]["id"], acts[11].id.to_string());
    let (s, v) = env.get(&format!("{SI}?order_by=total")).await;
    assert_invalid(s, &v, "order_by");
}

#[tokio::test]
async fn spaceinvoices_filters() {
    let (env, _) = si_env();
    let v = env.get_ok(&format!("{SI}?resource_type=Payment")).await;
    assert_eq!(v["pagination"]["total"], 1);
    let v = env.get_ok(&format!("{SI}?resource_type=Invoice")).await;
    assert_eq!(v["pagination"]["total"], 11);
    let v = env.get_ok(&format!("{SI}?resource_id=inv_2")).await;
    assert_eq!(v["pagination"]["total"], 2);
    let v = env.get_ok(&format!("{SI}?action=sent")).await;
    assert_eq!(v["pagination"]["total"], 6);
    let v = env
        .get_ok(&format!(
            "{SI}?resource_type=Invoice&resource_id=inv_2&action=sent"
        ))
        .await;
    assert_eq!(v["pagination"]["total"], 1);
    // An exact match: a trailing `*` is not a prefix here.
    let v = env.get_ok(&format!("{SI}?action=sen*")).await;
    assert_eq!(v["pagination"]["total"], 0);
}

#[tokio::test]
async fn spaceinvoices_query_operators() {
    let (env, acts) = si_env();
    let total = |q: Value| {
        let uri = format!("{SI}?limit=100&query={}", enc(&q.to_string()));
        let env = &env;
        async move {
            let v = env.get_ok(&uri).await;
            v["pagination"]["total"].as_i64().unwrap()
        }
    };
    // Direct value and equals.
    assert_eq!(total(json!({"action": "sent"})).await, 6);
    assert_eq!(total(json!({"action": {"equals": "sent"}})).await, 6);
    assert_eq!(total(json!({"id": acts[3].id.to_string()})).await, 1);
    assert_eq!(total(json!({"actor_type": "user"})).await, 11);
    // Comparisons on strings and times.
    assert_eq!(total(json!({"resource_id": {"gte": "inv_4"}})).await, 4);
    assert_eq!(total(json!({"resource_id": {"gt": "inv_4"}})).await, 2);
    assert_eq!(total(json!({"resource_id": {"lte": "inv_1"}})).await, 4);
    assert_eq!(total(json!({"resource_id": {"lt": "inv_1"}})).await, 2);
    assert_eq!(
        total(json!({"created_at": {"gte": "2024-01-15T10:10:00Z"}})).await,
        2
    );
    assert_eq!(
        total(json!({"created_at": {"gt": "2024-01-15T10:10:00.000Z"}})).await,
        1
    );
    assert_eq!(
        total(json!({"created_at": {"lt": minutes(2).timestamp_millis()}})).await,
        2
    );
    assert_eq!(
        total(json!({"created_at": {"lte": "2024-01-15T10:02:00Z"}})).await,
        3
    );
    // Lists.
    assert_eq!(
        total(json!({"resource_type": {"in": ["Payment", "Customer"]}})).await,
        1
    );
    assert_eq!(
        total(json!({"resource_id": {"notIn": ["inv_0", "inv_1"]}})).await,
        8
    );
    // Regression: a repeated value in an `in` list was counted twice in `total` (the store summed
    // one index range per listed value, repeats included).
    assert_eq!(
        total(json!({"resource_type": {"in": ["Invoice", "Invoice"]}})).await,
        11
    );
    // Strings.
    assert_eq!(
        total(json!({"resource_type": {"contains": "VOI"}})).await,
        11
    );
    assert_eq!(
        total(json!({"resource_id": {"startsWith": "inv_"}})).await,
        12
    );
    assert_eq!(total(json!({"resource_id": {"endsWith": "_5"}})).await, 2);
    // Between: strings, and dates that include the whole last day.
    assert_eq!(
        total(json!({"resource_id": {"between": ["inv_1", "inv_2"]}})).await,
        4
    );
    assert_eq!(
        total(json!({"created_at": {"between": ["2024-01-01", "2024-01-15"]}})).await,
        12
    );
    assert_eq!(
        total(json!({"created_at": {"between": ["2024-01-16", "2024-12-31"]}})).await,
        0
    );
    // A date operand stands for its whole day.
    assert_eq!(total(json!({"created_at": "2024-01-15"})).await, 12);
    assert_eq!(
        total(json!({"created_at": {"equals": "2024-01-16"}})).await,
        0
    );
    assert_eq!(total(json!({"created_at": {"gt": "2024-01-14"}})).await, 12);
    assert_eq!(total(json!({"created_at": {"gt": "2024-01-15"}})).await, 0);
    assert_eq!(
        total(json!({"created_at": {"lte": "2024-01-15"}})).await,
        12
    );
    assert_eq!(total(json!({"created_at": {"lt": "2024-01-15"}})).await, 0);
    assert_eq!(
        total(json!({"created_at": {"gte": "2024-01-15"}})).await,
        12
    );
    // Several operators on one field, and several fields, are ANDed.
    assert_eq!(
        total(json!({"resource_id": {"gte": "inv_1", "lt": "inv_3"}, "action": "created"})).await,
        2
    );
    // Only the seed's allowed fields.
    for field in ["total", "customer.name", "date", "summary", "actor_name"] {
        let q = json!({ field: {"gte": 1000} }).to_string();
        let (s, v) = env.get(&format!("{SI}?query={}", enc(&q))).await;
        assert_invalid(s, &v, &format!("query.{field}"));
    }
    for (q, field) in [
        (r#"{"action":{"like":"x"}}"#, "query.action.like"),
        (r#"{"action":{"in":"sent"}}"#, "query.action.in"),
        (
            r#"{"created_at":{"between":["2024-01-01"]}}"#,
            "query.created_at.between",
        ),
        ("not json", "query"),
    ] {
        let (s, v) = env.get(&format!("{SI}?query={}", enc(q))).await;
        assert_invalid(s, &v, field);
    }
}

#[tokio::test]
async fn spaceinvoices_cursor_walk_both_ways() {
    let (env, acts) = si_env();
    let mut want: Vec<String> = acts.iter().rev().map(|a| a.id.to_string()).collect();
    for order in ["-created_at", "created_at"] {
        if order == "created_at" {
            want.reverse();
        }
        let mut seen = Vec::new();
        let mut uri = format!("{SI}?limit=5&order_by={order}");
        let mut last;
        loop {
            let v = env.get_ok(&uri).await;
            seen.extend(ids(&v, "data"));
            last = v.clone();
            match v["pagination"]["next_cursor"].as_str() {
                Some(c) => uri = format!("{SI}?limit=5&order_by={order}&next_cursor={}", enc(c)),
                None => break,
            }
        }
        assert_eq!(seen, want, "{order}");
        assert_eq!(last["data"].as_array().unwrap().len(), 2);
        // Back from the last page with prev_cursor.
        let mut back: Vec<String> = ids(&last, "data");
        let mut prev = last["pagination"]["prev_cursor"]
            .as_str()
            .map(str::to_owned);
        while let Some(c) = prev {
            let v = env
                .get_ok(&format!(
                    "{SI}?limit=5&order_by={order}&prev_cursor={}",
                    enc(&c)
                ))
                .await;
            let mut page = ids(&v, "data");
            page.extend(back);
            back = page;
            prev = v["pagination"]["prev_cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(back, want, "{order} backwards");
    }
    let (s, v) = env.get(&format!("{SI}?next_cursor=forged")).await;
    assert_invalid(s, &v, "next_cursor");
    let (s, v) = env.get(&format!("{SI}?prev_cursor=forged")).await;
    assert_invalid(s, &v, "prev_cursor");
    let (s, v) = env.get(&format!("{SI}?next_cursor=a&prev_cursor=b")).await;
    assert_invalid(s, &v, "prev_cursor");
}

// ---- Sequence ------------------------------------------------------------------------------------

const SEQ: &str = "/compat/sequence/activity-logs";

/// Seven logs in `acct`, sizes 1, 3, 1, 2, 1, 4, 1, oldest first, each written as one batch.
fn seq_env() -> (Env, Vec<Vec<Activity>>) {
    let env = Env::new(&[("acct", "UTC")]);
    let sizes = [1usize, 3, 1, 2, 1, 4, 1];
    let mut logs = Vec::new();
    for (log, size) in sizes.iter().enumerate() {
        let when = minutes(i64::try_from(log).unwrap());
        let batch: Vec<NewActivity> = (0..*size)
            .map(|item| {
                let mut context = vec![
                    ("origin".to_owned(), "API".to_owned()),
                    ("trace_id".to_owned(), format!("trace{log}")),
                    ("activity_type".to_owned(), "NOTIFICATION".to_owned()),
                    ("name".to_owned(), "Invoice Created".to_owned()),
                ];
                if *size > 1 {
                    context.push(("activity_log_id".into(), format!("log-{log}")));
                }
                {
                    let mut a = NewActivity::new(
                        "CREATED",
                        ObjectRef {
                            kind: "INVOICE".into(),
                            id: Some(format!("inv-{log}")),
                        },
                    )
                    .created_at(when + chrono::Duration::seconds(i64::try_from(item).unwrap()))
                    .actor(Actor {
                        kind: "USER".into(),
                        id: Some("user-1".into()),
                        name: Some("John".into()),
                        email: Some("john.doe@sequencehq.com".into()),
                    })
                    .target(ObjectRef {
                        kind: "SEQUENCE_USER".into(),
                        id: Some("su-1".into()),
                    })
                    .summary("A new invoice was created for customer")
                    .reason("New billing cycle started")
                    .metadata(json!({"b": 2, "a": "x"}));
                    a.context = context;
                    a
                }
            })
            .collect();
        let acks = env.store.append_batch("acct", batch).unwrap();
        logs.push(
            acks.iter()
                .map(|a| env.store.get("acct", a.id).unwrap().unwrap())
                .collect(),
        );
    }
    (env, logs)
}

fn log_sizes(v: &Value) -> Vec<usize> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["activityLogItems"].as_array().unwrap().len())
        .collect()
}

#[tokio::test]
async fn sequence_response_fields() {
    let (env, logs) = seq_env();
    let v = env.get_ok(SEQ).await;
    assert_eq!(log_sizes(&v), vec![1, 4, 1, 2, 1, 3, 1], "newest log first");
    assert_eq!(v["pagination"]["totalResultSize"], 7);
    assert_eq!(v["pagination"]["after"], Value::Null);
    assert_eq!(v["pagination"]["before"], Value::Null);
    let log = &v["items"][1];
    assert_eq!(log["id"], "log-5");
    assert_eq!(log["sequenceAccountId"], "acct");
    assert_eq!(log["activityType"], "NOTIFICATION");
    assert_eq!(log["apiVersion"], "V1");
    assert_eq!(log["origin"], "API");
    assert_eq!(log["traceId"], "trace5");
    assert_eq!(log["createdAt"], "2024-01-15T10:05:00Z");
    let items = log["activityLogItems"].as_array().unwrap();
    let mut want: Vec<&Activity> = logs[5].iter().collect();
    want.sort_by_key(|a| a.created_at);
    for (item, a) in items.iter().zip(want) {
        assert_eq!(item["id"], a.id.to_string());
        assert_eq!(item["activityLogId"], "log-5");
        assert_eq!(item["verb"], "CREATED");
        assert_eq!(item["name"], "Invoice Created");
        assert_eq!(item["summary"], "A new invoice was created for customer");
        assert_eq!(item["reason"], "New billing cycle started");
        assert_eq!(
            item["metadata"],
            json!([{"key": "a", "value": "x"}, {"key": "b", "value": 2}])
        );
        let actor = &item["activityLogActor"];
        assert!(uuid::Uuid::parse_str(actor["id"].as_str().unwrap()).is_ok());
        assert_eq!(actor["entityType"], "USER");
        assert_eq!(actor["entityId"], "user-1");
        assert_eq!(actor["email"], "john.doe@sequencehq.com");
        let object = &item["activityLogObject"];
        assert_eq!(object["entityType"], "INVOICE");
        assert_eq!(object["entityId"], "inv-5");
        let target = &item["activityLogTarget"];
        assert_eq!(target["entityType"], "SEQUENCE_USER");
        assert_eq!(target["entityId"], "su-1");
        let refs: HashSet<&str> = [&actor["id"], &object["id"], &target["id"], &item["id"]]
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), 4, "reference ids are distinct");
    }
    // A single-activity log is identified by its activity.
    assert_eq!(v["items"][0]["id"], logs[6][0].id.to_string());
    // No actor, no target: nulls.
    let a = env.append(
        "acct",
        NewActivity::new(
            "DELETED",
            ObjectRef {
                kind: "CUSTOMER".into(),
                id: None,
            },
        )
        .created_at(minutes(60)),
    );
    let v = env.get_ok(&format!("{SEQ}?limit=1")).await;
    let log = &v["items"][0];
    assert_eq!(log["id"], a.id.to_string());
    assert_eq!(log["activityType"], Value::Null);
    let item = &log["activityLogItems"][0];
    assert_eq!(item["name"], "DELETED");
    assert_eq!(item["summary"], Value::Null);
    assert_eq!(item["reason"], Value::Null);
    assert_eq!(item["metadata"], json!([]));
    assert_eq!(item["activityLogActor"], Value::Null);
    assert_eq!(item["activityLogTarget"], Value::Null);
    assert_eq!(item["activityLogObject"]["entityId"], Value::Null);
}

#[tokio::test]
async fn sequence_limit_sort_and_version() {
    let (env, _) = seq_env();
    for (limit, ok) in [
        ("0", false),
        ("1", true),
        ("100", true),
        ("101", false),
        ("-3", false),
    ] {
        let (s, v) = env.get(&format!("{SEQ}?limit={limit}")).await;
        if ok {
            assert_eq!(s, StatusCode::OK);
        } else {
            assert_invalid(s, &v, "limit");
        }
    }
    let v = env.get_ok(&format!("{SEQ}?limit=1")).await;
    assert_eq!(log_sizes(&v), vec![1]);
    let v = env.get_ok(&format!("{SEQ}?sortOrder=ASC")).await;
    assert_eq!(log_sizes(&v), vec![1, 3, 1, 2, 1, 4, 1]);
    assert_eq!(v["items"][1]["id"], "log-1");
    let v = env.get_ok(&format!("{SEQ}?sortOrder=DESC")).await;
    assert_eq!(v["items"][1]["id"], "log-5");
    let (s, v) = env.get(&format!("{SEQ}?sortOrder=NEWEST")).await;
    assert_invalid(s, &v, "sortOrder");
    let (s, _) = env
        .call("GET", SEQ, &[("sequence-version", "2024-07-30")], None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = env
        .call("GET", SEQ, &[("sequence-version", "2023-01-01")], None)
        .await;
    assert_invalid(s, &v, "sequence-version");
}

#[tokio::test]
async fn sequence_object_filters() {
    let (env, logs) = seq_env();
    let v = env
        .get_ok(&format!("{SEQ}?activityLogObjectEntityId=inv-5"))
        .await;
    assert_eq!(log_sizes(&v), vec![4]);
    assert_eq!(v["pagination"]["totalResultSize"], 1);
    // The object reference id of one item selects that item.
    let all = env.get_ok(SEQ).await;
    let item = &all["items"][1]["activityLogItems"][2];
    let object_id = item["activityLogObject"]["id"].as_str().unwrap();
    let v = env
        .get_ok(&format!("{SEQ}?activityLogObjectId={object_id}"))
        .await;
    assert_eq!(v["items"][0]["activityLogItems"][0]["id"], item["id"]);
    assert_eq!(v["pagination"]["totalResultSize"], 1);
    assert!(logs[5].iter().any(|a| a.id.to_string() == item["id"]));
    let v = env
        .get_ok(&format!(
            "{SEQ}?activityLogObjectId={object_id}&activityLogObjectEntityId=inv-0"
        ))
        .await;
    assert_eq!(v["items"], json!([]));
    let (s, v) = env.get(&format!("{SEQ}?activityLogObjectId=xyz")).await;
    assert_invalid(s, &v, "activityLogObjectId");
}

#[tokio::test]
async fn sequence_before_after_walk() {
    let (env, _) = seq_env();
    for (sort, want) in [
        ("DESC", vec![1usize, 4, 1, 2, 1, 3, 1]),
        ("ASC", vec![1, 3, 1, 2, 1, 4, 1]),
    ] {
        for limit in [1usize, 2, 3] {
            let mut seen = Vec::new();
            let mut uri = format!("{SEQ}?limit={limit}&sortOrder={sort}");
            let mut pages = 0;
            let last = loop {
                let v = env.get_ok(&uri).await;
                pages += 1;
                assert!(log_sizes(&v).len() <= limit);
                assert_eq!(v["pagination"]["totalResultSize"], 7);
                seen.extend(log_sizes(&v));
                if pages == 1 {
                    assert_eq!(v["pagination"]["before"], Value::Null);
                }
                match v["pagination"]["after"].as_str() {
                    Some(c) => {
                        uri = format!("{SEQ}?limit={limit}&sortOrder={sort}&after={}", enc(c))
                    }
                    None => break v,
                }
            };
            assert_eq!(seen, want, "{sort} limit {limit}");
            let mut back = log_sizes(&last);
            let mut before = last["pagination"]["before"].as_str().map(str::to_owned);
            while let Some(c) = before {
                let v = env
                    .get_ok(&format!(
                        "{SEQ}?limit={limit}&sortOrder={sort}&before={}",
                        enc(&c)
                    ))
                    .await;
                assert!(v["pagination"]["after"].is_string());
                let mut page = log_sizes(&v);
                page.extend(back);
                back = page;
                before = v["pagination"]["before"].as_str().map(str::to_owned);
            }
            assert_eq!(back, want, "{sort} limit {limit} backwards");
        }
    }
    let v = env.get_ok(&format!("{SEQ}?limit=2")).await;
    let after = v["pagination"]["after"].as_str().unwrap();
    // Used the wrong way round, or with another query, a token is refused.
    let (s, v2) = env.get(&format!("{SEQ}?before={}", enc(after))).await;
    assert_invalid(s, &v2, "before");
    let (s, v2) = env
        .get(&format!("{SEQ}?after={}&sortOrder=ASC", enc(after)))
        .await;
    assert_invalid(s, &v2, "after");
    let (s, v2) = env
        .get(&format!("{SEQ}?after={}&before=Bx", enc(after)))
        .await;
    assert_invalid(s, &v2, "before");
}

#[tokio::test]
async fn sequence_basic_auth() {
    let (env, _) = seq_env();
    let key = env.key("acct", Scope::Read);
    for creds in [format!("client:{key}"), format!("{key}:")] {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        );
        let (s, v) = env
            .call("GET", SEQ, &[("authorization", &basic)], None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["pagination"]["totalResultSize"], 7);
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("client:wrong")
    );
    let (s, _) = env
        .call("GET", SEQ, &[("authorization", &basic)], None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let write_only = env.key("acct", Scope::Write);
    let (s, _) = env
        .call(
            "GET",
            SEQ,
            &[("authorization", &format!("Bearer {write_only}"))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

// ---- subscription platform ------------------------------------------------------------------------

const SUB: &str = "/compat/subscriptions/api/activity-logs";
const JAN: &str = "start_date=2024-01-01&end_date=2024-01-31";

/// An account in Europe/Ljubljana (UTC+1 in winter) with rows on subscriptions and orders.
fn sub_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("shop", "Europe/Ljubljana")]);
    let actor = |kind: &str, name: Option<&str>| {
        Some(Actor {
            kind: kind.into(),
            id: Some(format!("{kind}-1")),
            name: name.map(str::to_owned),
            email: None,
        })
    };
    let rows = [
        (
            "subscription_created",
            "subscription",
            "sub-1",
            actor("customer", Some("Cleo")),
        ),
        (
            "subscription_paused",
            "subscription",
            "sub-1",
            actor("admin", Some("Ann")),
        ),
        (
            "order_placed",
            "order",
            "ord-1",
            actor("customer", Some("Cleo")),
        ),
        ("billing_failed", "order", "ord-1", None),
        (
            "subscription_resumed",
            "subscription",
            "sub-2",
            actor("webhook", None),
        ),
        (
            "integration_label_printed",
            "order",
            "ord-2",
            actor("api", None),
        ),
        (
            "order_refunded",
            "order",
            "ord-2",
            actor("admin", Some("Bob")),
        ),
        (
            "subscription_renewed",
            "subscription",
            "sub-2",
            actor("system", None),
        ),
    ];
    let mut out = Vec::new();
    for (i, (action, kind, id, actor)) in rows.into_iter().enumerate() {
        let mut context = vec![("customer_email".to_owned(), "c@example.com".to_owned())];
        if kind == "order" {
            context.push(("order_number".into(), format!("#{id}")));
            context.push(("subscription_id".into(), "sub-1".into()));
        } else {
            context.push(("subscription_number".into(), format!("S-{id}")));
        }
        context.push(("customer_name".into(), "Cleo".into()));
        context.push(("profile_id".into(), "prof-1".into()));
        out.push(env.append("shop", {
            let mut a = NewActivity::new(
                action,
                ObjectRef {
                    kind: kind.into(),
                    id: Some(id.into()),
                },
            )
            .created_at(
                at("2024-01-10T12:00:00Z") + chrono::Duration::hours(i64::try_from(i).unwrap()),
            );
            a.actor = actor;
            a.context = context;
            a.summary = (i == 0).then(|| "Subscription created".to_owned());
            a.changes = (i == 1).then(|| json!({"status": ["active", "paused"]}));
            a.metadata = (i == 1).then(|| json!({"reason": "vacation"}));
            a
        }));
    }
    // Not a loggable: never a row of this API.
    env.append(
        "shop",
        NewActivity::new(
            "invoice_sent",
            ObjectRef {
                kind: "invoice".into(),
                id: Some("inv-1".into()),
            },
        )
        .created_at(at("2024-01-10T12:00:00Z")),
    );
    (env, out)
}

fn actions(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn subscriptions_row_fields() {
    let (env, rows) = sub_env();
    let v = env.get_ok(&format!("{SUB}?{JAN}")).await;
    assert_eq!(v["total"], 8);
    assert_eq!(v["per_page"], 25);
    assert_eq!(v["current_page"], 1);
    assert_eq!(v["last_page"], 1);
    assert_eq!(
        v["metadata"],
        json!({"total": 8, "per_page": 25, "current_page": 1, "last_page": 1})
    );
    let data = v["data"].as_array().unwrap();
    // Newest first.
    assert_eq!(data[0]["action"], "subscription_renewed");
    let paused = &data[6];
    assert_eq!(paused["id"], rows[1].id.to_string());
    assert_eq!(paused["action"], "subscription_paused");
    assert_eq!(paused["description"], Value::Null);
    assert_eq!(paused["changes"], json!({"status": ["active", "paused"]}));
    assert_eq!(paused["metadata"], json!({"reason": "vacation"}));
    assert_eq!(paused["actor_type"], "admin");
    assert_eq!(paused["actor_name"], "Ann");
    assert_eq!(paused["loggable_type"], "subscription");
    assert_eq!(paused["loggable_id"], "sub-1");
    assert_eq!(paused["subscription_id"], "sub-1");
    assert_eq!(paused["subscription_number"], "S-sub-1");
    assert_eq!(paused["order_id"], Value::Null);
    assert_eq!(paused["order_number"], Value::Null);
    assert_eq!(paused["customer_name"], "Cleo");
    assert_eq!(paused["customer_email"], "c@example.com");
    assert_eq!(paused["profile_id"], "prof-1");
    assert_eq!(paused["created_at"], "2024-01-10T13:00:00.000000Z");
    let created = &data[7];
    assert_eq!(created["description"], "Subscription created");
    assert!(created.get("changes").is_none(), "no diff recorded");
    assert_eq!(created["metadata"], json!({}));
    let failed = &data[4];
    assert_eq!(failed["action"], "billing_failed");
    assert_eq!(failed["actor_type"], Value::Null);
    assert_eq!(failed["actor_name"], Value::Null);
    assert_eq!(failed["loggable_type"], "order");
    assert_eq!(failed["order_id"], "ord-1");
    assert_eq!(failed["order_number"], "#ord-1");
    assert_eq!(failed["subscription_id"], "sub-1");
}

#[tokio::test]
async fn subscriptions_loggable_filters() {
    let (env, _) = sub_env();
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&subscription_id=sub-1"))
        .await;
    assert_eq!(
        actions(&v),
        vec!["subscription_paused", "subscription_created"]
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=ord-1")).await;
    assert_eq!(actions(&v), vec!["billing_failed", "order_placed"]);
    // order_id takes precedence.
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&subscription_id=sub-1&order_id=ord-2"))
        .await;
    assert_eq!(
        actions(&v),
        vec!["order_refunded", "integration_label_printed"]
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=sub-1")).await;
    assert_eq!(v["total"], 0);
}

#[tokio::test]
async fn subscriptions_actor_and_action_filters() {
    let (env, _) = sub_env();
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=customer"))
        .await;
    assert_eq!(actions(&v), vec!["order_placed", "subscription_created"]);
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=admin")).await;
    assert_eq!(actions(&v), vec!["order_refunded", "subscription_paused"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=admin&actor_name=Bob"))
        .await;
    assert_eq!(actions(&v), vec!["order_refunded"]);
    // actor_name is ignored for other actor types.
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=customer&actor_name=Bob"))
        .await;
    assert_eq!(v["total"], 2);
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=api")).await;
    assert_eq!(actions(&v), vec!["integration_label_printed"]);
    // system: system actors, webhooks and rows with no actor.
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=system")).await;
    assert_eq!(
        actions(&v),
        vec![
            "subscription_renewed",
            "subscription_resumed",
            "billing_failed"
        ]
    );
    let (s, v) = env.get(&format!("{SUB}?{JAN}&actor_type=robot")).await;
    assert_invalid(s, &v, "actor_type");

    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=order_placed"))
        .await;
    assert_eq!(actions(&v), vec!["order_placed"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=order_placed,billing_failed"))
        .await;
    assert_eq!(actions(&v), vec!["billing_failed", "order_placed"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=integration_*"))
        .await;
    assert_eq!(actions(&v), vec!["integration_label_printed"]);
}

#[tokio::test]
async fn subscriptions_dates_in_the_account_timezone() {
    let (env, _) = sub_env();
    // 23:30 UTC on the 31st is 00:30 on 1 February in Ljubljana.
    env.append(
        "shop",
        NewActivity::new(
            "order_placed",
            ObjectRef {
                kind: "order".into(),
                id: Some("ord-9".into()),
            },
        )
        .created_at(at("2024-01-31T23:30:00Z")),
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=ord-9")).await;
    assert_eq!(v["total"], 0);
    let v = env
        .get_ok(&format!(
            "{SUB}?start_date=2024-02-01&end_date=2024-02-01&order_id=ord-9"
        ))
        .await;
    assert_eq!(v["total"], 1, "end_date is inclusive of its whole day");
    // The first row is 2024-01-10 13:00 local: start_date on that day includes it, the next
    // day's does not.
    let v = env
        .get_ok(&format!("{SUB}?start_date=2024-01-10&end_date=2024-01-10"))
        .await;
    assert_eq!(v["total"], 8);
    let v = env
        .get_ok(&format!("{SUB}?start_date=2024-01-11&end_date=2024-01-31"))
        .await;
    assert_eq!(v["total"], 0);
    for (q, field) in [
        ("end_date=2024-01-31", "start_date"),
        ("start_date=2024-01-01", "end_date"),
        ("start_date=2024-1-1&end_date=2024-01-31", "start_date"),
        ("start_date=2024-01-01&end_date=31.01.2024", "end_date"),
        ("start_date=2024-02-01&end_date=2024-01-31", "start_date"),
    ] {
        let (s, v) = env.get(&format!("{SUB}?{q}")).await;
        assert_invalid(s, &v, field);
    }
}

#[tokio::test]
async fn subscriptions_page_and_limit() {
    let (env, _) = sub_env();
    let all = actions(&env.get_ok(&format!("{SUB}?{JAN}")).await);
    for limit in [1usize, 3] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let v = env
                .get_ok(&format!("{SUB}?{JAN}&limit={limit}&page={page}"))
                .await;
            assert_eq!(v["per_page"], limit);
            assert_eq!(v["current_page"], page);
            assert_eq!(v["total"], 8);
            assert_eq!(v["last_page"], 8usize.div_ceil(limit));
            seen.extend(actions(&v));
            if page == v["last_page"].as_u64().unwrap() {
                break;
            }
            page += 1;
        }
        assert_eq!(seen, all, "limit {limit}");
        // Walked back from the last page to the first.
        let mut back = Vec::new();
        for p in (1..=page).rev() {
            let v = env
                .get_ok(&format!("{SUB}?{JAN}&limit={limit}&page={p}"))
                .await;
            let mut a = actions(&v);
            a.extend(back);
            back = a;
        }
        assert_eq!(back, all);
    }
    let v = env.get_ok(&format!("{SUB}?{JAN}&page=99")).await;
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["current_page"], 99);
    let v = env.get_ok(&format!("{SUB}?{JAN}&limit=100")).await;
    assert_eq!(v["per_page"], 100);
    // "limit capped at 100".
    let v = env.get_ok(&format!("{SUB}?{JAN}&limit=101")).await;
    assert_eq!(v["per_page"], 100);
    for bad in ["limit=0", "limit=x", "page=0", "page=-1"] {
        let (s, v) = env.get(&format!("{SUB}?{JAN}&{bad}")).await;
        assert_invalid(s, &v, bad.split('=').next().unwrap());
    }
    let v = env
        .get_ok(&format!("{SUB}?start_date=2025-01-01&end_date=2025-01-31"))
        .await;
    assert_eq!(
        (v["total"].as_u64(), v["last_page"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn subscriptions_post_and_dropdowns() {
    let (env, _) = sub_env();
    // Not on a subscription or an order: neither a row nor a dropdown value.
    env.append(
        "shop",
        NewActivity::new(
            "integration_crm_sync",
            ObjectRef {
                kind: "invoice".into(),
                id: Some("inv-1".into()),
            },
        )
        .actor(Actor {
            kind: "admin".into(),
            id: None,
            name: Some("Zed".into()),
            email: None,
        }),
    );
    let key = env.key("shop", Scope::ReadWrite);
    let auth = format!("Bearer {key}");
    let body = json!({
        "action": "integration_shipment_dispatched",
        "order_id": "ord-1",
        "description": "Shipped with UPS",
        "changes": {"fulfillment": [null, "shipped"]},
        "metadata": {"carrier": "UPS"},
        "order_number": "#1001",
        "customer_email": "c@example.com",
        "customer_name": "Cleo",
        "profile_id": "prof-1",
        "subscription_id": "sub-1",
        "actor_name": "ShipBot"
    });
    let (s, v) = env
        .call("POST", SUB, &[("authorization", &auth)], Some(&body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = &v["data"];
    assert_eq!(row["actor_type"], "api");
    assert_eq!(row["actor_name"], "ShipBot");
    assert_eq!(row["loggable_type"], "order");
    assert_eq!(row["loggable_id"], "ord-1");
    assert_eq!(row["order_number"], "#1001");
    assert_eq!(row["subscription_id"], "sub-1");
    assert_eq!(row["changes"], json!({"fulfillment": [null, "shipped"]}));
    let id = uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap();
    let stored = env.store.get("shop", id).unwrap().unwrap();
    assert_eq!(stored.actor.unwrap().kind, "api");

    // The tenant's today: its dates are in Europe/Ljubljana, which is a day ahead of UTC for an
    // hour or two every night (the test failed in CI between 23:00 and 24:00 UTC).
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Ljubljana)
        .date_naive();
    let range = format!("start_date={today}&end_date={today}");
    let v = env.get_ok(&format!("{SUB}?{range}&actor_type=api")).await;
    assert_eq!(actions(&v), vec!["integration_shipment_dispatched"]);
    let v = env
        .get_ok(&format!(
            "{SUB}?{range}&action=integration_shipment_dispatched,integration_label_printed"
        ))
        .await;
    assert_eq!(v["total"], 1);

    for bad in [
        json!({"action": "subscription_paused", "order_id": "ord-1"}),
        json!({"action": "integration_", "order_id": "ord-1"}),
        json!({"action": "integration_x"}),
        json!({"action": "integration_x", "loggable_type": "invoice", "loggable_id": "i"}),
    ] {
        let (s, v) = env
            .call("POST", SUB, &[("authorization", &auth)], Some(&bad))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_argument");
    }
    let read_only = format!("Bearer {}", env.key("shop", Scope::Read));
    let (s, _) = env
        .call("POST", SUB, &[("authorization", &read_only)], Some(&body))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = env.get_ok(&format!("{SUB}/integration-actions")).await;
    assert_eq!(
        v["data"],
        json!([
            "integration_label_printed",
            "integration_shipment_dispatched"
        ])
    );
    let v = env
        .get_ok(&format!(
            "{SUB}/integration-actions?start_date=2024-01-01&end_date=2024-01-31"
        ))
        .await;
    assert_eq!(v["data"], json!(["integration_label_printed"]));
    let v = env.get_ok(&format!("{SUB}/actors")).await;
    assert_eq!(
        v["data"],
        json!(["Ann", "Bob"]),
        "admins only, not Cleo or ShipBot"
    );
    let v = env
        .get_ok(&format!(
            "{SUB}/actors?start_date=2024-01-10&end_date=2024-01-10"
        ))
        .await;
    assert_eq!(v["data"], json!(["Ann", "Bob"]));
    let (s, v) = env.get(&format!("{SUB}/actors?start_date=x")).await;
    assert_invalid(s, &v, "start_date");
}

// ---- Velt ------------------------------------------------------------------------------------------

const VELT: &str = "/compat/velt/v2/activities/get";

fn velt_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("org-123", "UTC"), ("org-456", "UTC")]);
    let mut out = Vec::new();
    for i in 0..7i64 {
        let comment = i % 2 == 0;
        out.push(env.append("org-123", {
            let mut a = NewActivity::new(
                if comment {
                    "comment.add"
                } else {
                    "reaction.add"
                },
                ObjectRef {
                    kind: if comment { "comment" } else { "reaction" }.into(),
                    id: Some(format!("annotation-{}", i % 3)),
                },
            )
            .created_at(
                chrono::DateTime::from_timestamp_millis(1_722_409_519_944 + i * 1000).unwrap(),
            )
            .actor(Actor {
                kind: "user".into(),
                id: Some(format!("user-{}", i % 2)),
                name: Some("User Name".into()),
                email: Some("user@example.com".into()),
            })
            .context("document_id", if i < 5 { "doc-456" } else { "doc-789" })
            .metadata(json!({"custom": i}));
            a.display = (i == 0).then(|| DisplayText {
                template: "{{user}} added a comment".into(),
                data: json!({"user": {"userId": "user-0", "name": "User Name"}}),
            });
            a
        }));
    }
    (env, out)
}

async fn velt(env: &Env, data: Value) -> (StatusCode, Value) {
    env.post(VELT, &json!({ "data": data })).await
}

fn velt_ids(v: &Value) -> Vec<String> {
    v["result"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_velt_error(s: StatusCode, v: &Value, status: StatusCode, name: &str) {
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["status"], name, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
}

#[tokio::test]
async fn velt_response_fields() {
    let (env, acts) = velt_env();
    let (s, v) = velt(
        &env,
        json!({"organizationId": "org-123", "documentId": "doc-456", "order": "asc", "pageSize": 50}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["status"], "success");
    assert_eq!(
        v["result"]["message"],
        "Activity(s) retrieved successfully."
    );
    assert_eq!(v["result"]["pageToken"], Value::Null);
    let data = v["result"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let first = &data[0];
    assert_eq!(first["id"], acts[0].id.to_string());
    assert_eq!(first["featureType"], "comment");
    assert_eq!(first["actionType"], "comment.add");
    assert_eq!(
        first["actionUser"],
        json!({"userId": "user-0", "email": "user@example.com", "name": "User Name"})
    );
    assert_eq!(first["targetEntityId"], "annotation-0");
    assert_eq!(first["displayMessageTemplate"], "{{user}} added a comment");
    assert_eq!(
        first["displayMessageTemplateData"],
        json!({"user": {"userId": "user-0", "name": "User Name"}})
    );
    assert_eq!(first["metadata"]["documentId"], "doc-456");
    assert_eq!(first["metadata"]["organizationId"], "org-123");
    assert_eq!(first["metadata"]["custom"], 0);
    assert_eq!(first["timestamp"], 1_722_409_519_944_i64);
    assert!(first["timestamp"].is_i64());
    // Without a stored display, a template is made from the action, with its data.
    let second = &data[1];
    assert_eq!(second["displayMessageTemplate"], "{{user}} reaction.add");
    assert_eq!(
        second["displayMessageTemplateData"]["user"]["userId"],
        "user-1"
    );
    // The default order is newest first.
    let (_, v) = velt(&env, json!({"organizationId": "org-123"})).await;
    assert_eq!(velt_ids(&v)[0], acts[6].id.to_string());
}

#[tokio::test]
async fn velt_filters() {
    let (env, acts) = velt_env();
    let count = |data: Value| {
        let env = &env;
        async move {
            let (s, v) = velt(env, data).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["result"]["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(count(json!({"organizationId": "org-123"})).await, 7);
    assert_eq!(count(json!({"organizationId": "org-456"})).await, 0);
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-789"})).await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": ["comment"]})).await,
        4
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": ["comment", "reaction"]})).await,
        7
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": []})).await,
        7
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "actionTypes": ["reaction.add"]})).await,
        3
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "userId": "user-1"})).await,
        3
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "actionTypes": ["comment.*"]})).await,
        0
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-456", "targetEntityId": "annotation-0"})).await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123",
            "activityIds": [acts[1].id.to_string(), acts[2].id.to_string()]}))
        .await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "activityIds": ["activity-001"]})).await,
        0
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-456",
            "featureTypes": ["comment"], "actionTypes": ["comment.add"], "userId": "user-0"}))
        .await,
        3
    );
}

#[tokio::test]
async fn velt_page_tokens() {
    let (env, acts) = velt_env();
    for (order, want) in [
        (
            "desc",
            acts.iter()
                .rev()
                .map(|a| a.id.to_string())
                .collect::<Vec<_>>(),
        ),
        ("asc", acts.iter().map(|a| a.id.to_string()).collect()),
    ] {
        for size in [1, 2, 3] {
            let mut seen = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut data =
                    json!({"organizationId": "org-123", "order": order, "pageSize": size});
                if let Some(t) = &token {
                    data["pageToken"] = json!(t);
                }
                let (s, v) = velt(&env, data).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                let page = velt_ids(&v);
                assert!(page.len() <= size);
                seen.extend(page);
                match v["result"]["pageToken"].as_str() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen, want, "{order} {size}");
        }
    }
    let (s, v) = velt(
        &env,
        json!({"organizationId": "org-123", "pageToken": "forged"}),
    )
    .await;
    assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn velt_validation_and_errors() {
    let (env, _) = velt_env();
    for (size, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let (s, v) = velt(&env, json!({"organizationId": "org-123", "pageSize": size})).await;
        if ok {
            assert_eq!(s, StatusCode::OK);
        } else {
            assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
        }
    }
    for data in [
        json!({}),
        json!({"organizationId": ""}),
        json!({"organizationId": "org-123", "order": "sideways"}),
        json!({"organizationId": "org-123", "pageSize": "ten"}),
        json!({"organizationId": "org-123", "featureTypes": "comment"}),
        json!({"organizationId": 7}),
    ] {
        let (s, v) = velt(&env, data.clone()).await;
        assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    for body in [json!({}), json!({"data": []}), json!("x")] {
        let (s, v) = env.post(VELT, &body).await;
        assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    let resp = env
        .app
        .clone()
        .oneshot(
            Request::post(VELT)
                .header("authorization", format!("Bearer {}", env.admin))
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A body over the server's limit.
    let big = json!({"data": {"organizationId": "org-123", "documentId": "x".repeat(5 << 20)}});
    let (s, v) = env.post(VELT, &big).await;
    assert_velt_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "RESOURCE_EXHAUSTED");
    let (s, v) = velt(&env, json!({"organizationId": "org-999"})).await;
    assert_velt_error(s, &v, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (s, v) = env
        .call(
            "POST",
            VELT,
            &[("authorization", "Bearer actlog_0000000000000000_nope")],
            Some(&json!({"data": {"organizationId": "org-123"}})),
        )
        .await;
    assert_velt_error(s, &v, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn velt_headers_and_organizations() {
    let (env, _) = velt_env();
    let key = env.key("org-123", Scope::Read);
    let body = json!({"data": {"organizationId": "org-123"}});
    let velt_headers = [
        ("authorization", "none"),
        ("x-velt-api-key", "yourApiKey"),
        ("x-velt-auth-token", key.as_str()),
    ];
    let (s, v) = env.call("POST", VELT, &velt_headers, Some(&body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["data"][0]["metadata"]["apiKey"], "yourApiKey");
    for missing in ["x-velt-api-key", "x-velt-auth-token"] {
        let h: Vec<(&str, &str)> = velt_headers
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let (s, v) = env.call("POST", VELT, &h, Some(&body)).await;
        assert_velt_error(s, &v, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    // A tenant key reads its own organization only.
    let other = json!({"data": {"organizationId": "org-456"}});
    let (s, v) = env.call("POST", VELT, &velt_headers, Some(&other)).await;
    assert_velt_error(s, &v, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    // The admin key picks the organization from the body.
    let (s, v) = env.post(VELT, &other).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["data"], json!([]));
}

// ---- one store, one model ------------------------------------------------------------------------

/// An activity written through the native API and one through the subscription platform's POST
/// read back through every profile and the native API.
#[tokio::test]
async fn cross_profile_reads() {
    let env = Env::new(&[("acme", "UTC")]);
    let native = json!({
        "action": "subscription_paused",
        "created_at": "2024-03-01T09:30:15.250Z",
        "resource": {"type": "subscription", "id": "sub-42"},
        "actor": {"type": "admin", "id": "adm-1", "name": "Ann", "email": "ann@acme.test"},
        "target": {"type": "customer", "id": "cus-7"},
        "context": {"document_id": "doc-1", "subscription_number": "S-42", "activity_log_id": "log-1"},
        "summary": "Paused for vacation",
        "reason": "customer request",
        "changes": {"status": ["active", "paused"]},
        "metadata": {"days": 14},
        "display": {"template": "{{user}} paused a subscription", "data": {"user": {"name": "Ann"}}}
    });
    let (s, v) = env.post("/v1/activities", &native).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = env
        .post(
            SUB,
            &json!({"action": "integration_note_added", "subscription_id": "sub-42",
                    "description": "Note from CRM"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let posted_id = v["data"]["id"].as_str().unwrap().to_owned();

    // Native API.
    let v = env
        .get_ok("/v1/activities?resource_type=subscription&resource_id=sub-42&order=asc")
        .await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{v}");
    let native_id = data[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(data[1]["id"], posted_id);
    assert_eq!(data[1]["actor"]["type"], "api");

    // Space Invoices.
    let v = env
        .get_ok(&format!(
            "{SI}?resource_type=subscription&order_by=created_at"
        ))
        .await;
    assert_eq!(ids(&v, "data"), vec![native_id.clone(), posted_id.clone()]);
    assert_eq!(v["data"][0]["actor_label"], "Ann");
    assert_eq!(v["data"][0]["details"], json!({"days": 14}));
    assert_eq!(v["data"][0]["created_at"], "2024-03-01T09:30:15.250Z");
    assert_eq!(v["data"][1]["actor_type"], "api");

    // Sequence.
    let v = env
        .get_ok(&format!(
            "{SEQ}?activityLogObjectEntityId=sub-42&sortOrder=ASC"
        ))
        .await;
    assert_eq!(v["items"][0]["id"], "log-1");
    let item = &v["items"][0]["activityLogItems"][0];
    assert_eq!(item["id"], native_id);
    assert_eq!(item["verb"], "subscription_paused");
    assert_eq!(item["summary"], "Paused for vacation");
    assert_eq!(item["reason"], "customer request");
    assert_eq!(item["activityLogActor"]["email"], "ann@acme.test");
    assert_eq!(item["activityLogTarget"]["entityId"], "cus-7");
    assert_eq!(v["items"][0]["createdAt"], "2024-03-01T09:30:15Z");
    assert_eq!(v["items"][1]["activityLogItems"][0]["id"], posted_id);
    assert_eq!(v["pagination"]["totalResultSize"], 2);

    // Subscription platform.
    let today = Utc::now().date_naive();
    let v = env
        .get_ok(&format!(
            "{SUB}?start_date=2024-03-01&end_date={today}&subscription_id=sub-42"
        ))
        .await;
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], posted_id);
    assert_eq!(rows[0]["description"], "Note from CRM");
    assert_eq!(rows[1]["id"], native_id);
    assert_eq!(rows[1]["subscription_number"], "S-42");
    assert_eq!(rows[1]["changes"], json!({"status": ["active", "paused"]}));
    assert_eq!(rows[1]["actor_name"], "Ann");

    // Velt.
    let (s, v) = velt(
        &env,
        json!({"organizationId": "acme", "documentId": "doc-1", "featureTypes": ["subscription"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let item = &v["result"]["data"][0];
    assert_eq!(item["id"], native_id);
    assert_eq!(item["actionType"], "subscription_paused");
    assert_eq!(item["targetEntityId"], "sub-42");
    assert_eq!(
        item["displayMessageTemplate"],
        "{{user}} paused a subscription"
    );
    assert_eq!(
        item["timestamp"],
        at("2024-03-01T09:30:15.250Z").timestamp_millis()
    );
    let (_, v) = velt(
        &env,
        json!({"organizationId": "acme", "activityIds": [posted_id]}),
    )
    .await;
    assert_eq!(
        v["result"]["data"][0]["displayMessageTemplate"],
        "Note from CRM"
    );
}

type Pred = Box<dyn Fn(&Activity) -> bool>;

/// Space Invoices' `query` against a plain model: random activities, random conditions over the
/// six allowed fields, every page walked; the pages together must be exactly the model's answer,
/// in order, and `pagination.total` its size.
#[tokio::test]
async fn spaceinvoices_query_matches_a_model() {
    let env = Env::new(&[("ent", "UTC")]);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % u64::try_from(n).unwrap()).unwrap()
    };
    let types = ["Invoice", "Payment", "Customer"];
    let actions = ["created", "updated", "sent", "deleted"];
    let actors = [None, Some("user"), Some("system"), Some("api")];
    let mut acts = Vec::new();
    for i in 0..60i64 {
        let actor = actors[rnd(actors.len())];
        acts.push(env.append("ent", {
            let mut a = NewActivity::new(
                actions[rnd(actions.len())],
                ObjectRef {
                    kind: types[rnd(types.len())].into(),
                    id: (rnd(5) > 0).then(|| format!("r_{}", rnd(8))),
                },
            )
            .created_at(minutes(i * 7 % 60));
            a.actor = actor.map(|k| Actor {
                kind: k.into(),
                ..Default::default()
            });
            a
        }));
    }
    // Newest first, ties by id descending: the store's order.
    acts.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
    let value = |a: &Activity, f: &str| -> Option<String> {
        match f {
            "id" => Some(a.id.to_string()),
            "resource_type" => Some(a.resource.kind.clone()),
            "resource_id" => a.resource.id.clone(),
            "action" => Some(a.action.clone()),
            "actor_type" => a.actor.as_ref().map(|x| x.kind.clone()),
            _ => unreachable!(),
        }
    };
    let samples = |f: &str| -> Vec<String> {
        match f {
            "resource_type" => types.iter().map(|s| (*s).to_owned()).collect(),
            "action" => actions.iter().map(|s| (*s).to_owned()).collect(),
            "actor_type" => vec!["user".into(), "system".into(), "api".into()],
            "resource_id" => (0..8).map(|i| format!("r_{i}")).collect(),
            _ => acts.iter().take(5).map(|a| a.id.to_string()).collect(),
        }
    };
    let fields = [
        "id",
        "resource_type",
        "resource_id",
        "action",
        "actor_type",
        "created_at",
    ];
    let ops = [
        "equals",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "notIn",
        "contains",
        "startsWith",
        "endsWith",
        "between",
    ];
    for round in 0..120 {
        let mut q = serde_json::Map::new();
        let mut preds: Vec<Pred> = Vec::new();
        for _ in 0..1 + rnd(2) {
            let field = fields[rnd(fields.len())];
            let mut op = ops[rnd(ops.len())];
            if q.contains_key(field) {
                continue;
            }
            if field == "created_at" {
                let t = |m: usize| minutes(i64::try_from(m).unwrap());
                let (x, y) = (t(rnd(60)), t(rnd(60)));
                // `between` takes [min, max]: a reversed range is an empty window, a 400.
                let (a, b) = (x.min(y), x.max(y));
                if matches!(op, "contains" | "startsWith" | "endsWith" | "in" | "notIn") {
                    op = "between";
                }
                let s = |t: DateTime<Utc>| t.to_rfc3339();
                let operand = if op == "between" {
                    json!([s(a), s(b)])
                } else {
                    json!(s(a))
                };
                q.insert(field.into(), json!({ op: operand }));
                preds.push(Box::new(move |x: &Activity| {
                    let c = x.created_at;
                    match op {
                        "equals" => c == a,
                        "gt" => c > a,
                        "gte" => c >= a,
                        "lt" => c < a,
                        "lte" => c <= a,
                        _ => c >= a && c <= b,
                    }
                }));
                continue;
            }
            let pool = samples(field);
            let pick = |r: usize| pool[r % pool.len()].clone();
            let (a, b) = (pick(rnd(100)), pick(rnd(100)));
            let list: Vec<String> = (0..rnd(3) + 1).map(|_| pick(rnd(100))).collect();
            let mut part = |s: &str| -> String {
                let n = s.len().min(1 + rnd(3));
                match op {
                    "endsWith" => s[s.len() - n..].to_owned(),
                    "contains" => s[1..].to_uppercase(),
                    _ => s[..n].to_owned(),
                }
            };
            let operand = match op {
                "in" | "notIn" => json!(list),
                "between" => json!([a, b]),
                "contains" | "startsWith" | "endsWith" => json!(part(&a)),
                _ => json!(a),
            };
            let direct = op == "equals" && rnd(2) == 0;
            q.insert(
                field.into(),
                if direct {
                    operand.clone()
                } else {
                    json!({ op: operand })
                },
            );
            let operand_s = operand.as_str().map(str::to_owned);
            preds.push(Box::new(move |x: &Activity| {
                let v = value(x, field);
                let Some(v) = v else {
                    return op == "notIn";
                };
                let o = operand_s.clone().unwrap_or_default();
                match op {
                    "equals" => v == o,
                    "gt" => v > o,
                    "gte" => v >= o,
                    "lt" => v < o,
                    "lte" => v <= o,
                    "in" => list.contains(&v),
                    "notIn" => !list.contains(&v),
                    "contains" => v.to_lowercase().contains(&o.to_lowercase()),
                    "startsWith" => v.starts_with(&o),
                    "endsWith" => v.ends_with(&o),
                    _ => v >= a && v <= b,
                }
            }));
        }
        let want: Vec<String> = acts
            .iter()
            .filter(|x| preds.iter().all(|p| p(x)))
            .map(|x| x.id.to_string())
            .collect();
        let query = enc(&Value::Object(q.clone()).to_string());
        let mut seen = Vec::new();
        let mut uri = format!("{SI}?limit=7&query={query}");
        loop {
            let v = env.get_ok(&uri).await;
            assert_eq!(v["pagination"]["total"], want.len(), "round {round}: {q:?}");
            seen.extend(ids(&v, "data"));
            match v["pagination"]["next_cursor"].as_str() {
                Some(c) => uri = format!("{SI}?limit=7&query={query}&next_cursor={}", enc(c)),
                None => break,
            }
        }
        assert_eq!(seen, want, "round {round}: {q:?}");
    }
}
