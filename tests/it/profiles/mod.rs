//! Conformance tests of the four profiles, written from the seed pages (`shared/seeds/`), through
//! the whole router (`app(state)` and `oneshot`, the shared harness of `crate::support::http`).
//! One file per profile: every parameter and response field, each validation rule from both
//! sides, pagination walked to the end both ways where the seed allows. Here: the profiles' view
//! of the harness, and one cross-profile test (one store, one model).

mod sequence;
mod spaceinvoices;
mod subscriptions;
mod velt;

use std::sync::Arc;

use actlog::http::Config;
use actlog::{Activity, NewActivity, Scope, Store, TenantSettings};
use axum::http::{Method, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::support::http::{call, router};
use crate::support::store::{put_key, temp_store};
use sequence::SEQ;
use spaceinvoices::SI;
use subscriptions::SUB;
use velt::velt;

// ---- harness -------------------------------------------------------------------------------------

/// The profiles' view of the shared HTTP harness: tenants with time zones, an admin key sent by
/// default, answers as `(status, JSON)`.
struct Env {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
    admin: String,
}

impl Env {
    /// A store with these tenants (id, time zone), created in this order, and an admin key.
    fn new(tenants: &[(&str, &str)]) -> Env {
        let (dir, store) = temp_store();
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
        let admin = put_key(&store, None, Scope::Admin);
        let app = router(&store, Config::default());
        Env {
            _dir: dir,
            store,
            app,
            admin: admin.token,
        }
    }

    /// A key of one tenant.
    fn key(&self, tenant: &str, scope: Scope) -> String {
        put_key(&self.store, Some(tenant), scope).token
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
        let mut c = call(Method::from_bytes(method.as_bytes()).unwrap(), uri);
        let custom_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if !custom_auth {
            c = c.key(&self.admin);
        }
        let names_tenant = headers.iter().any(|(k, _)| {
            ["x-entity-id", "x-tenant-id", "entity_id"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
        });
        if uri.starts_with(SI) && !custom_auth && !names_tenant {
            let first = self.store.default_tenant().unwrap().id;
            c = c.header("x-entity-id", &first);
        }
        for (k, v) in headers {
            let dropped = (k.eq_ignore_ascii_case("authorization")
                || k.eq_ignore_ascii_case("x-entity-id"))
                && *v == "none";
            if !dropped {
                c = c.header(k, v);
            }
        }
        if let Some(v) = body {
            c = c.json(v);
        }
        let r = c.send(&self.app).await;
        let v = if r.bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.bytes).unwrap_or_else(|_| Value::String(r.text()))
        };
        (r.status, v)
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
    crate::support::url_escape(s)
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
