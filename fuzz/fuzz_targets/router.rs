//! Request bodies and query strings through the whole router (`app(state)`), with a valid
//! key: the answer is never a 5xx, and every non-2xx is in API.md's error shape. The first byte
//! picks the route: append, query body, list query string, facets query string.
#![no_main]

use std::sync::{Arc, OnceLock};

use actlog::http::{app, auth::issue_key, AppState, Config};
use actlog::{Options, Scope, Store, TenantSettings};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    key: String,
    rt: tokio::runtime::Runtime,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            Store::open(
                dir.path(),
                Options::new()
                    .durability(actlog::Durability::Relaxed)
                    .cache_capacity(4 << 20),
            )
            .expect("store"),
        );
        store
            .create_tenant("t", TenantSettings::default())
            .expect("tenant");
        let k = issue_key(Some("t".into()), Scope::ReadWrite, chrono::Utc::now());
        store.put_api_key(&k.record).expect("key");
        let app = app(AppState::new(store, Config::default()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Env {
            _dir: dir,
            app,
            key: k.token,
            rt,
        }
    })
}

fn escape_query(b: &[u8]) -> String {
    b.iter()
        .map(|&c| match c {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'='
            | b'&'
            | b','
            | b'*' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let e = env();
    let builder = Request::builder().header("authorization", format!("Bearer {}", e.key));
    let req = match route % 4 {
        0 => builder
            .method("POST")
            .uri("/v1/activities")
            .header("content-type", "application/json")
            .body(Body::from(rest.to_vec())),
        1 => builder
            .method("POST")
            .uri("/v1/activities/query")
            .header("content-type", "application/json")
            .body(Body::from(rest.to_vec())),
        2 => builder
            .method("GET")
            .uri(format!("/v1/activities?{}", escape_query(rest)))
            .body(Body::empty()),
        _ => builder
            .method("GET")
            .uri(format!("/v1/activities/facets?{}", escape_query(rest)))
            .body(Body::empty()),
    };
    let Ok(req) = req else { return };
    let (status, bytes) = e.rt.block_on(async {
        let resp = e.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("error body is JSON");
        assert!(v["error"]["code"].is_string(), "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
});
