//! The console's routes without a browser: what `GET /` and its assets answer, and their
//! security headers.

use actlog::http::console::{page_weight, CSP};
use axum::http::{header, Method, StatusCode};

use crate::support::http::{call, env};

#[tokio::test]
async fn the_page_and_its_assets_carry_the_security_headers() {
    let e = env();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/tail.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let r = call(Method::GET, path).send(&e.app).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let h = |name: header::HeaderName| {
            r.headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        assert_eq!(h(header::CONTENT_TYPE), content_type, "{path}");
        assert_eq!(h(header::CONTENT_SECURITY_POLICY), CSP, "{path}");
        assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
        assert_eq!(h(header::REFERRER_POLICY), "no-referrer", "{path}");
        assert_eq!(h(header::X_FRAME_OPTIONS), "DENY", "{path}");
        assert_eq!(h(header::CACHE_CONTROL), "no-cache", "{path}");
        // Revalidation: the same ETag back is a 304 with no body and the same headers.
        let etag = h(header::ETAG);
        let r = call(Method::GET, path)
            .header("if-none-match", &etag)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(r.bytes.is_empty(), "{path}");
        assert!(r.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
}

#[test]
fn the_policy_forbids_inline_script_eval_and_framing() {
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(CSP.contains(directive), "{directive} missing from {CSP}");
    }
    assert!(!CSP.contains("unsafe"), "{CSP}");
    assert!(page_weight() < 200 * 1024);
}

#[tokio::test]
async fn unknown_assets_are_json_404s_and_paths_do_not_escape() {
    let e = env();
    for path in [
        "/console/nope.js",
        "/console/..%2Fmod.rs",
        "/console/%2e%2e%2fCargo.toml",
        "/console/",
        "/console/app.js/x",
    ] {
        let r = call(Method::GET, path).send(&e.app).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        assert_eq!(r.code(), Some("not_found"), "{path}");
    }
    // Writes to the console's paths are not routes.
    let r = call(Method::POST, "/").send(&e.app).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
