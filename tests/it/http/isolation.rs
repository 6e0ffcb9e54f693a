//! The tenant-isolation matrix, enumerated from the router's own route table: every route ×
//! {no key, bad key, revoked key, a key without the scope, tenant B's key naming tenant A,
//! tenant A's cursor used by B}. Each gets its expected status and not one byte of tenant A's
//! data.

use actlog::http::{auth::issue_key, routes, Access, RouteSpec};
use actlog::Scope;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::http::{activity, call, env, Call, Env, Resp};

const MARK_A: &str = "SECRET-A";

struct Fixture {
    e: Env,
    a_ids: Vec<String>,
    a_cursor: String,
    revoked: String,
    a_key_id: String,
}

async fn fixture() -> Fixture {
    let e = env();
    let acts: Vec<_> = (0..3)
        .map(|i| activity(&format!("{MARK_A}.act"), &format!("{MARK_A}-{i}")))
        .collect();
    let r = call(Method::POST, "/v1/activities")
        .key(e.key("a", "write"))
        .json(&json!({"activities": acts}))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let a_ids = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let r = call(Method::POST, "/v1/activities")
        .key(e.key("b", "write"))
        .json(&activity("b.act", "b-0"))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(Method::GET, "/v1/activities?limit=1")
        .key(e.key("a", "read"))
        .send(&e.app)
        .await;
    let a_cursor = r.json["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let k = issue_key(Some("a".into()), Scope::ReadWrite, chrono::Utc::now());
    e.store.put_api_key(&k.record).unwrap();
    assert!(e.store.revoke_api_key(&k.record.key_id).unwrap());
    let a_key_id = e
        .store
        .api_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.tenant.as_deref() == Some("a"))
        .unwrap()
        .key_id;
    Fixture {
        e,
        a_ids,
        a_cursor,
        revoked: k.token,
        a_key_id,
    }
}

/// A well-formed request for a route, aimed at tenant A's things where the path names one.
fn request(f: &Fixture, spec: &RouteSpec, query: &str) -> Call {
    let path = spec
        .path
        .replace(
            "/v1/activities/{id}",
            &format!("/v1/activities/{}", f.a_ids[0]),
        )
        .replace("{id}", "a")
        .replace("{key_id}", &f.a_key_id)
        .replace("{asset}", "app.js");
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let c = call(spec.method.clone(), &uri);
    let body = match (spec.method.clone(), spec.path) {
        (Method::POST, "/v1/activities") => Some(activity("b.write", "b-w")),
        (Method::POST, "/v1/activities/query") => Some(json!({})),
        (Method::POST, "/v1/tenants") => Some(json!({"id": "newt"})),
        (Method::PATCH, _) => Some(json!({"timezone": "UTC"})),
        (Method::POST, "/v1/tenants/{id}/keys") => Some(json!({"scope": "read"})),
        (Method::POST, "/compat/subscriptions/api/activity-logs") => {
            Some(json!({"action": "integration_b_write", "order_id": "o-b"}))
        }
        // Velt names its organization (the tenant) in the body: tenant A's.
        (Method::POST, "/compat/velt/v2/activities/get") => {
            Some(json!({"data": {"organizationId": "a"}}))
        }
        _ => None,
    };
    match body {
        Some(b) => c.json(&b),
        None => c,
    }
}

fn default_query(spec: &RouteSpec) -> &'static str {
    match spec.path {
        "/v1/activities/facets" => "field=action",
        "/compat/subscriptions/api/activity-logs" if spec.method == Method::GET => {
            "start_date=2000-01-01&end_date=2100-01-01"
        }
        _ => "",
    }
}

/// A request of tenant B's own (it names no other tenant) carrying tenant A's cursor, in the
/// route's own cursor parameter; `None` for a route without one.
fn with_a_cursor(f: &Fixture, spec: &RouteSpec) -> Option<Call> {
    let c = &f.a_cursor;
    Some(match (spec.method.clone(), spec.path) {
        (Method::GET, _) if spec.query.contains(&"cursor") => {
            request(f, spec, &format!("cursor={c}"))
        }
        (Method::POST, "/v1/activities/query") => {
            call(Method::POST, spec.path).json(&json!({"cursor": c}))
        }
        (Method::GET, "/compat/spaceinvoices/activities") => {
            request(f, spec, &format!("next_cursor={c}"))
        }
        // Sequence's tokens are a direction letter and a store cursor.
        (Method::GET, "/compat/sequence/activity-logs") => request(f, spec, &format!("after=A{c}")),
        (Method::POST, "/compat/velt/v2/activities/get") => call(Method::POST, spec.path)
            .json(&json!({"data": {"organizationId": "b", "pageToken": c}})),
        _ => return None,
    })
}

/// The route's error shape: the native `{"error": {"code", …}}`, or Velt's
/// `{"error": {"message", "status"}}` where the route documents that one.
fn error_shaped(spec: &RouteSpec, r: &crate::support::http::Resp) -> bool {
    match spec.error {
        "VeltError" => {
            r.json["error"]["status"].is_string() && r.json["error"]["message"].is_string()
        }
        _ => r.code().is_some(),
    }
}

fn assert_clean(f: &Fixture, what: &str, r: &Resp) {
    let text = r.text();
    assert!(
        !text.contains(MARK_A),
        "{what} leaked tenant A's data: {text}"
    );
    for id in &f.a_ids {
        assert!(
            !text.contains(id.as_str()),
            "{what} leaked tenant A's id: {text}"
        );
    }
}

#[tokio::test]
async fn isolation_matrix() {
    let f = fixture().await;
    let e = &f.e;
    let protected: Vec<RouteSpec> = routes()
        .into_iter()
        .filter(|r| r.access != Access::Public)
        .collect();
    assert!(
        protected.len() >= 11,
        "the route table shrank: {protected:?}"
    );
    let mut checked = 0;
    for spec in &protected {
        let q = default_query(spec);
        // (case, request, expected status)
        let mut cases: Vec<(&str, Call, StatusCode)> = vec![
            ("no key", request(&f, spec, q), StatusCode::UNAUTHORIZED),
            (
                "bad key",
                request(&f, spec, q).key("actlog_0123456789abcdef_wrongsecret"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "garbage key",
                request(&f, spec, q).key("hunter2"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "forged secret for a real key id",
                request(&f, spec, q).key(&format!("actlog_{}_AAAA", f.a_key_id)),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "revoked key",
                request(&f, spec, q).key(&f.revoked),
                StatusCode::UNAUTHORIZED,
            ),
        ];
        match spec.access {
            Access::Write => cases.push((
                "read-only key on a write route",
                request(&f, spec, q).key(e.key("b", "read")),
                StatusCode::FORBIDDEN,
            )),
            Access::Read => cases.push((
                "write-only key on a read route",
                request(&f, spec, q).key(e.key("b", "write")),
                StatusCode::FORBIDDEN,
            )),
            Access::Admin => cases.push((
                "tenant key on an admin route",
                request(&f, spec, q).key(e.key("a", "read_write")),
                StatusCode::FORBIDDEN,
            )),
            Access::Public => unreachable!(),
        }
        // Tenant B's key naming tenant A, under both header names.
        for header in ["x-tenant-id", "x-entity-id"] {
            cases.push((
                "B's key with A's header",
                request(&f, spec, q)
                    .key(e.key("b", "read_write"))
                    .header(header, "a"),
                StatusCode::FORBIDDEN,
            ));
        }
        // Tenant A's cursor used by B.
        if let Some(c) = with_a_cursor(&f, spec) {
            cases.push((
                "A's cursor used by B",
                c.key(e.key("b", "read_write")),
                StatusCode::BAD_REQUEST,
            ));
        }
        for (case, c, status) in cases {
            let what = format!("{spec:?} / {case}");
            let r = c.send(&e.app).await;
            assert_eq!(r.status, status, "{what}: {}", r.text());
            assert!(
                error_shaped(spec, &r),
                "{what}: not the error shape: {}",
                r.text()
            );
            assert_clean(&f, &what, &r);
            checked += 1;
        }
    }
    assert!(checked >= 90, "only {checked} cases");
    // Nothing of those requests wrote anything.
    assert_eq!(e.store.count("a", &actlog::Filter::default()).unwrap(), 3);
    assert_eq!(e.store.count("b", &actlog::Filter::default()).unwrap(), 1);
    assert!(e.store.tenant("newt").is_none());
}

/// The public routes (health, metrics, the OpenAPI document, the console and its assets) need no
/// key and show no tenant's data, whoever asks and whatever tenant they name.
#[tokio::test]
async fn public_routes_serve_no_tenant_data() {
    let f = fixture().await;
    let e = &f.e;
    let public: Vec<RouteSpec> = routes()
        .into_iter()
        .filter(|r| r.access == Access::Public)
        .collect();
    assert!(
        public.iter().any(|r| r.path == "/"),
        "the console is not public"
    );
    for spec in &public {
        let cases = [
            ("no key", request(&f, spec, "")),
            (
                "A's key",
                request(&f, spec, "").key(e.key("a", "read_write")),
            ),
            (
                "B's key naming A",
                request(&f, spec, "")
                    .key(e.key("b", "read"))
                    .header("x-tenant-id", "a"),
            ),
            (
                "the admin key naming A",
                request(&f, spec, "")
                    .key(&e.admin)
                    .header("x-tenant-id", "a"),
            ),
        ];
        for (case, c) in cases {
            let what = format!("{spec:?} / {case}");
            let r = c.send(&e.app).await;
            assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
            assert_clean(&f, &what, &r);
        }
    }
}

/// B's own requests succeed and show only B's data, even when they aim at A's ids.
#[tokio::test]
async fn b_sees_only_b() {
    let f = fixture().await;
    let e = &f.e;
    let b = e.key("b", "read_write");
    let table: Vec<(Call, StatusCode)> =
        vec![
        (
            call(Method::GET, "/v1/activities?include_total=true").key(b),
            StatusCode::OK,
        ),
        (
            call(
                Method::GET,
                &format!("/v1/activities?id={}", f.a_ids.join(",")),
            )
            .key(b),
            StatusCode::OK,
        ),
        (
            call(Method::POST, "/v1/activities/query")
                .key(b)
                .json(&json!({"action": format!("{MARK_A}.act")})),
            StatusCode::OK,
        ),
        (
            call(Method::GET, &format!("/v1/activities/{}", f.a_ids[0])).key(b),
            StatusCode::NOT_FOUND,
        ),
        (
            call(Method::GET, &format!("/v1/activities/{}", f.a_ids[0]))
                .key(b)
                .header("x-tenant-id", "b"),
            StatusCode::NOT_FOUND,
        ),
        (
            call(Method::GET, "/v1/activities/facets?field=action").key(b),
            StatusCode::OK,
        ),
        (
            call(Method::GET, "/v1/activities/facets?field=context.marker").key(b),
            StatusCode::OK,
        ),
        (
            call(Method::GET, "/v1/activities/export").key(b),
            StatusCode::OK,
        ),
        (
            call(Method::GET, "/v1/activities/export?format=csv").key(b),
            StatusCode::OK,
        ),
        // The profiles, aiming at A's values where they can name them.
        (
            call(Method::GET, "/compat/spaceinvoices/activities").key(b),
            StatusCode::OK,
        ),
        (
            call(
                Method::GET,
                &format!("/compat/spaceinvoices/activities?resource_id=inv-{MARK_A}-0"),
            )
            .key(b),
            StatusCode::OK,
        ),
        (
            call(Method::GET, "/compat/sequence/activity-logs").key(b),
            StatusCode::OK,
        ),
        (
            call(
                Method::GET,
                &format!("/compat/sequence/activity-logs?activityLogObjectEntityId=inv-{MARK_A}-0"),
            )
            .key(b),
            StatusCode::OK,
        ),
        (
            call(
                Method::GET,
                "/compat/subscriptions/api/activity-logs?start_date=2000-01-01&end_date=2100-01-01",
            )
            .key(b),
            StatusCode::OK,
        ),
        (
            call(
                Method::GET,
                "/compat/subscriptions/api/activity-logs/integration-actions",
            )
            .key(b),
            StatusCode::OK,
        ),
        (
            call(Method::GET, "/compat/subscriptions/api/activity-logs/actors").key(b),
            StatusCode::OK,
        ),
        (
            call(Method::POST, "/compat/velt/v2/activities/get")
                .key(b)
                .json(&json!({"data": {"organizationId": "b", "activityIds": f.a_ids}})),
            StatusCode::OK,
        ),
        // An id of A's appended under B is B's own activity, not a conflict with A's.
        (
            call(Method::POST, "/v1/activities").key(b).json(&{
                let mut a = activity("b.x", "b-1");
                a["id"] = json!(f.a_ids[0]);
                a
            }),
            StatusCode::CREATED,
        ),
    ];
    for (c, status) in table {
        let what = format!("{} {}", c.method, c.uri);
        let r = c.send(&e.app).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let text = r.text();
        assert!(!text.contains(MARK_A), "{what} leaked: {text}");
    }
    let r = call(Method::GET, "/v1/activities?include_total=true")
        .key(b)
        .send(&e.app)
        .await;
    assert_eq!(r.json["pagination"]["total"], 2);
    // A still has exactly its own three, untouched.
    let r = call(Method::GET, &format!("/v1/activities/{}", f.a_ids[0]))
        .key(e.key("a", "read"))
        .send(&e.app)
        .await;
    assert_eq!(r.json["action"], format!("{MARK_A}.act"));
}
