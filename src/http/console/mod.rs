//! `GET /` and `GET /console/{asset}`: the web console, compiled into the binary.
//!
//! The console is hand-written HTML, CSS and ES modules in `assets/`, embedded with
//! `include_bytes!`: no build step, no CDN, nothing fetched at run time but the API itself. It
//! talks to the API like any client, with the key the user signs in with (kept in the tab's
//! `sessionStorage`), so it can do nothing that key cannot.
//!
//! Invariants:
//! - every console response carries [`CSP`] and the other headers of [`security_headers`]: no
//!   inline script or style, no `eval`, no framing, and Trusted Types required, so assigning a
//!   string to `innerHTML` throws instead of parsing it (the scripts only ever set `textContent`);
//! - the assets are a fixed table; no path reaches the file system.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiPath};

/// The console's Content-Security-Policy. `form-action 'none'` also stops the sign-in form from
/// ever being submitted as a navigation (which would put the key in a URL) if its script failed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
    trusted-types 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of `body`, computed at compile time: the `ETag`.
    hash: u64,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("assets/", $name));
        Asset {
            name: $name,
            content_type: $type,
            body: BODY,
            hash: fnv1a(BODY),
        }
    }};
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself, served at `/`.
const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything the page loads, served at `/console/{name}`.
const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("filters.js", JS),
    asset!("vlist.js", JS),
    asset!("drawer.js", JS),
    asset!("diff.js", JS),
    asset!("tail.js", JS),
    asset!("exporter.js", JS),
    asset!("time.js", JS),
];

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// The total size of the console (the page and every asset), in bytes.
pub fn page_weight() -> usize {
    INDEX.body.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>()
}

/// The headers every console response carries.
pub fn security_headers() -> [(HeaderName, &'static str); 6] {
    [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ]
}

fn respond(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = resp.headers_mut();
    for (name, value) in security_headers() {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Revalidate every time (a 304 is cheap), so a new binary's console is picked up at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    resp
}

pub(super) async fn index(headers: HeaderMap) -> Response {
    respond(&INDEX, &headers)
}

pub(super) async fn asset(headers: HeaderMap, ApiPath(name): ApiPath<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a, &headers),
        None => ApiError::not_found(format!("no console asset {name:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget for the whole page.
    #[test]
    fn the_console_weighs_under_200_kb() {
        let weight = page_weight();
        assert!(weight < 200 * 1024, "the console weighs {weight} bytes");
    }

    /// Every asset the page or a module names is in the table, and every one in the table is
    /// named somewhere, so a typo is a failing test rather than a 404 in a browser.
    #[test]
    fn every_referenced_asset_is_served_and_every_served_asset_is_referenced() {
        let text = |a: &Asset| std::str::from_utf8(a.body).unwrap().to_owned();
        let all: String = std::iter::once(&INDEX)
            .chain(ASSETS)
            .map(text)
            .collect::<Vec<_>>()
            .join("\n");
        for a in ASSETS {
            let by_path = format!("/console/{}", a.name);
            let by_import = format!("'./{}'", a.name);
            assert!(
                all.contains(&by_path) || all.contains(&by_import),
                "{} is never loaded",
                a.name
            );
        }
        for chunk in all
            .split("/console/")
            .skip(1)
            .chain(all.split("'./").skip(1))
        {
            let name: String = chunk
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name:?} is referenced but not served"
            );
        }
    }

    /// The scripts never hand a string to an HTML parser; the CSP's Trusted Types would make
    /// such a call throw at run time, this makes it fail here first.
    #[test]
    fn no_script_parses_html_from_strings() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let src = std::str::from_utf8(a.body).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('style'",
            ] {
                assert!(!src.contains(sink), "{} uses {sink}", a.name);
            }
        }
        let page = std::str::from_utf8(INDEX.body).unwrap();
        assert!(!page.contains("<script>"), "inline script in index.html");
        assert!(!page.contains("style="), "inline style in index.html");
        // An inline handler is an attribute ` on…=`.
        for (at, _) in page.match_indices(" on") {
            let name: String = page[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = page[at + 3 + name.len()..].trim_start();
            assert!(
                name.is_empty() || !after.starts_with('='),
                "inline handler on{name} in index.html"
            );
        }
    }
}
