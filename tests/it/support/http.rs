//! The HTTP harness: a store with tenants and keys behind the whole router (`app(state)`), and
//! requests sent to it with `tower::ServiceExt::oneshot`; no socket.

use std::collections::HashMap;
use std::sync::Arc;

use actlog::http::{app, AppState, Config};
use actlog::{Scope, Store, TenantSettings};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::store::{put_key, temp_store};

/// The whole API over `store`, as the server builds it.
pub fn router(store: &Arc<Store>, config: Config) -> Router {
    app(AppState::new(Arc::clone(store), config))
}

/// A store with tenants `a` (created first: the admin default) and `b`, an admin key, and keys
/// of every scope for both tenants.
pub struct Env {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub app: Router,
    pub admin: String,
    /// `(tenant, scope)` → key, scope one of `read`, `write`, `read_write`.
    pub keys: HashMap<(&'static str, &'static str), String>,
}

impl Env {
    pub fn key(&self, tenant: &'static str, scope: &'static str) -> &str {
        &self.keys[&(tenant, scope)]
    }
}

pub fn env() -> Env {
    env_with(Config::default())
}

pub fn env_with(config: Config) -> Env {
    let (dir, store) = temp_store();
    store.create_tenant("a", TenantSettings::default()).unwrap();
    store.create_tenant("b", TenantSettings::default()).unwrap();
    let admin = put_key(&store, None, Scope::Admin);
    let mut keys = HashMap::new();
    for tenant in ["a", "b"] {
        for (name, scope) in [
            ("read", Scope::Read),
            ("write", Scope::Write),
            ("read_write", Scope::ReadWrite),
        ] {
            let k = put_key(&store, Some(tenant), scope);
            keys.insert((tenant, name), k.token);
        }
    }
    let app = router(&store, config);
    Env {
        _dir: dir,
        store,
        app,
        admin: admin.token,
        keys,
    }
}

/// A response: status, headers, raw body and the body as JSON (`Null` if it is not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
    /// The `error.field` of an error body.
    pub fn field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }
    pub fn code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }
}

/// A request builder.
pub struct Call {
    pub method: Method,
    pub uri: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

pub fn call(method: Method, uri: &str) -> Call {
    Call {
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: None,
    }
}

impl Call {
    pub fn key(mut self, key: &str) -> Call {
        self.headers
            .push(("authorization".into(), format!("Bearer {key}")));
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn json(mut self, v: &Value) -> Call {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Some(serde_json::to_vec(v).unwrap());
        self
    }
    pub fn raw(mut self, content_type: &str, body: &[u8]) -> Call {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = Some(body.to_vec());
        self
    }
    pub async fn send(self, app: &Router) -> Resp {
        let mut req = Request::builder().method(self.method).uri(&self.uri);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(self.body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            bytes,
            json,
        }
    }
}

/// An activity body with a marker in fields that come back out.
pub fn activity(action: &str, marker: &str) -> Value {
    json!({
        "action": action,
        "resource": {"type": "Invoice", "id": format!("inv-{marker}")},
        "actor": {"type": "user", "id": format!("u-{marker}"), "name": format!("Name {marker}")},
        "context": {"marker": marker},
        "summary": format!("summary {marker}"),
    })
}
