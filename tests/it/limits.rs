//! Fair share inside the server, through the router (issue 11, "Fair share"): a request that
//! times out stops its store work, a per-request cap on work, bounded operands, exports that a
//! stalled reader cannot pin, authentication that does not wait for data work, and rate limits
//! that cover every credential form and unauthenticated callers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actlog::http::{ratelimit::RateLimit, Config};
use actlog::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::http::{call, Resp};
use crate::support::store::{fill_lorem, put_key, temp_store};
use crate::support::{self, url_escape};

/// A store with tenant `a` holding `n` activities (30 actions, a ~260-byte summary each) and
/// tenant `b` holding 10; `keys` read and write tenant `a` (four keys), `b_key` tenant `b`.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    keys: Vec<String>,
    b_key: String,
}

fn fixture(n: usize) -> Fixture {
    let (dir, store) = temp_store();
    store.create_tenant("a", TenantSettings::default()).unwrap();
    store.create_tenant("b", TenantSettings::default()).unwrap();
    let keys = (0..4)
        .map(|_| put_key(&store, Some("a"), Scope::ReadWrite).token)
        .collect();
    let b = put_key(&store, Some("b"), Scope::ReadWrite);
    fill_lorem(&store, "a", n);
    fill_lorem(&store, "b", 10);
    // Indexed now, not when the background indexer next runs: the work caps below are about
    // index reads (pending activities are read one by one and charged as such).
    store.fold_pending(usize::MAX).unwrap();
    Fixture {
        _dir: dir,
        store,
        keys,
        b_key: b.token,
    }
}

fn router(f: &Fixture, config: Config) -> Router {
    support::http::router(&f.store, config)
}

/// `q` that no activity matches and that no index serves: every record is read and checked.
fn unindexed_q() -> String {
    let q = json!({"summary": {"contains": "no such words"}}).to_string();
    format!("/v1/activities?q={}", url_escape(&q))
}

// ---- 1. timeouts stop work; a cap on work -------------------------------------------------------

/// What broke: a request that timed out answered 503 but its store call went on running on the
/// blocking pool, so sixty abandoned scans kept the pool busy for seconds after their callers
/// had been told to go away, and the next caller queued behind them. The runtime here has one
/// blocking thread, so leftover work shows as the next request waiting. (The timeout is long
/// enough for every scan to be queued before any times out.)
#[test]
fn a_timed_out_request_leaves_no_store_work_behind() {
    const SCANS: usize = 600;
    let f = fixture(30_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let impatient = router(
        &f,
        Config {
            request_timeout: Duration::from_secs(1),
            max_examined: 0,
            per_key_concurrency: 0,
            rate_limit: RateLimit {
                per_second: 0,
                burst: 0,
            },
            ..Config::default()
        },
    );
    let patient = router(&f, Config::default());
    rt.block_on(async {
        // Uninterrupted, one such scan reads all 30,000 records (~0.2–0.4 s in a debug build,
        // ~20 ms in release): six hundred of them are over ten seconds of work for the one
        // thread either way, so most must time out whatever the build.
        let scans: Vec<_> = (0..SCANS)
            .map(|_| {
                let app = impatient.clone();
                let key = f.keys[0].clone();
                tokio::spawn(
                    async move { call(Method::GET, &unindexed_q()).key(&key).send(&app).await },
                )
            })
            .collect();
        let mut timed_out = 0;
        for s in scans {
            let r = s.await.unwrap();
            match r.status.as_u16() {
                200 => {}
                503 => timed_out += 1,
                other => panic!("{other}: {}", r.text()),
            }
        }
        assert!(
            timed_out > SCANS / 2,
            "only {timed_out} of {SCANS} scans timed out"
        );
        let t = Instant::now();
        let r = call(Method::GET, "/v1/activities?limit=5")
            .key(&f.b_key)
            .send(&patient)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        // Alone it takes milliseconds; behind the abandoned scans, seconds.
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the next request waited {:?} behind abandoned work",
            t.elapsed()
        );
    });
}

/// A scan's cancel flag stops it part way: the query returns `Cancelled` rather than finishing.
#[test]
fn a_raised_cancel_flag_stops_a_scan_part_way() {
    let f = fixture(30_000);
    let mut q = Query::default();
    q.filter.conditions.push(
        Condition::new(
            Field::Summary,
            Op::Contains("no such words".into()),
            "q.summary",
        )
        .unwrap(),
    );
    let t = Instant::now();
    assert!(f.store.query("a", &q).unwrap().items.is_empty());
    let whole = t.elapsed();
    let flag = Arc::new(AtomicBool::new(false));
    let raiser = {
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(whole / 10);
            flag.store(true, Ordering::Relaxed);
        })
    };
    let budget = Budget::default().with_cancel_flag(flag);
    let r = budget.run(|| f.store.query("a", &q));
    raiser.join().unwrap();
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    // The same with a deadline, and with a cap on the entries examined.
    let r = Budget::default()
        .with_timeout(whole / 10)
        .run(|| f.store.query("a", &q));
    assert!(matches!(r, Err(Error::DeadlineExceeded)), "{r:?}");
    let r = Budget::default()
        .with_max_examined(1000)
        .run(|| f.store.count("a", &Filter::default()));
    assert!(
        matches!(r, Err(Error::WorkLimit { max: 1000, .. })),
        "{r:?}"
    );
}

/// What broke: `contains` over a large tenant and `include_total` over every key had no cap but
/// the request timeout. Past the per-request cap they are a 400 that names the limit.
#[tokio::test]
async fn work_past_the_per_request_cap_is_a_400_that_names_the_limit() {
    let f = fixture(2_000);
    let app = router(
        &f,
        Config {
            max_examined: 500,
            ..Config::default()
        },
    );
    let key = &f.keys[0];
    let r = call(Method::GET, &unindexed_q()).key(key).send(&app).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), Some("invalid_argument"));
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("500") && msg.contains("max-examined"), "{msg}");
    let r = call(Method::GET, "/v1/activities?limit=5&include_total=true")
        .key(key)
        .send(&app)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.field(), Some("include_total"));
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max-examined"));
    // Within the cap: a page, an indexed total, a facet.
    let r = call(Method::GET, "/v1/activities?limit=5")
        .key(key)
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        Method::GET,
        "/v1/activities?action=act.3&limit=5&include_total=true",
    )
    .key(key)
    .send(&app)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["pagination"]["total"], 67);
    let r = call(Method::GET, "/v1/activities/facets?field=action")
        .key(key)
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["data"].as_array().unwrap().len(), 30);
}

// ---- 2. bounded operands --------------------------------------------------------------------

/// What broke: `contains` operands of any length (each searched in every candidate), any number
/// of `q` conditions, and action prefixes expanding to any number of ranges were accepted.
#[tokio::test]
async fn operands_past_their_bounds_are_a_400_naming_the_field() {
    let f = fixture(60);
    // 1,001 distinct actions under `wide.`.
    for range in [0..1000, 1000..1001] {
        f.store
            .append_batch(
                "a",
                range
                    .map(|i| {
                        NewActivity::new(
                            format!("wide.{i:04}"),
                            ObjectRef {
                                kind: "W".into(),
                                id: None,
                            },
                        )
                    })
                    .collect(),
            )
            .unwrap();
    }
    // A prefix expands to the action index's distinct values, so these must be in it (values
    // still pending match the filter directly and are bounded by `max_pending` instead).
    f.store.fold_pending(usize::MAX).unwrap();
    let app = router(&f, Config::default());
    let key = &f.keys[0];
    let get = |q: Value| format!("/v1/activities?q={}", url_escape(&q.to_string()));
    let expect_400 = |r: &Resp, field: &str| {
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.field(), Some(field), "{}", r.text());
    };

    for op in ["contains", "startsWith", "endsWith"] {
        let long = "x".repeat(MAX_OPERAND_BYTES + 1);
        let r = call(Method::GET, &get(json!({"summary": {op: long}})))
            .key(key)
            .send(&app)
            .await;
        expect_400(&r, "q.summary");
        let fits = "x".repeat(MAX_OPERAND_BYTES);
        let r = call(Method::GET, &get(json!({"summary": {op: fits}})))
            .key(key)
            .send(&app)
            .await;
        assert_eq!(r.status, 200, "{op}: {}", r.text());
    }

    let many = |n: usize| {
        let m: serde_json::Map<String, Value> = (0..n)
            .map(|i| (format!("context.k{i}"), json!({"notIn": ["x"]})))
            .collect();
        Value::Object(m)
    };
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .json(&json!({ "q": many(MAX_CONDITIONS + 1) }))
        .send(&app)
        .await;
    expect_400(&r, "q");
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .json(&json!({ "q": many(MAX_CONDITIONS) }))
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // `in`/`notIn` values add up across conditions.
    let vals = |n: usize| (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>();
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .json(&json!({"q": {
            "resource_id": {"notIn": vals(600)},
            "actor_id": {"notIn": vals(401)},
        }}))
        .send(&app)
        .await;
    expect_400(&r, "q");

    // Prefix expansion past 1,000 ranges.
    let r = call(Method::GET, "/v1/activities?action=wide.*")
        .key(key)
        .send(&app)
        .await;
    expect_400(&r, "action");
    let r = call(
        Method::GET,
        &get(json!({"action": {"startsWith": "wide."}})),
    )
    .key(key)
    .send(&app)
    .await;
    expect_400(&r, "q.action");
    let r = call(Method::GET, "/v1/activities?action=wide.000*,wide.0001")
        .key(key)
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["data"].as_array().unwrap().len(), 10);
}

/// `action=*,*,…` is one expansion, not one per copy: within a work cap that 1,000 separate
/// expansions of the 30 actions would blow, it answers.
#[tokio::test]
async fn repeated_action_prefixes_are_expanded_once() {
    let f = fixture(300);
    let app = router(
        &f,
        Config {
            max_examined: 1_000,
            ..Config::default()
        },
    );
    // 998 copies and two patterns they cover: the list's 1,000 values.
    let stars = vec!["*"; 998].join(",");
    let r = call(
        Method::GET,
        &format!("/v1/activities?limit=10&action={stars},act.1*,act.2"),
    )
    .key(&f.keys[0])
    .send(&app)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["data"].as_array().unwrap().len(), 10);
}

// ---- 3. exports; authentication -----------------------------------------------------------------

async fn body_of(resp: axum::response::Response) -> Result<Vec<u8>, String> {
    resp.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|e| e.to_string())
}

async fn send(app: &Router, req: Request<Body>) -> axum::response::Response {
    app.clone().oneshot(req).await.unwrap()
}

fn get_req(uri: &str, key: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

/// What broke: the export's producer waited for a slow reader inside a blocking-pool thread
/// (`blocking_send`), so every stalled download pinned a thread for as long as its client
/// liked. With one blocking thread, one stalled export stopped the whole server.
#[test]
fn a_stalled_export_reader_holds_no_blocking_thread() {
    let f = fixture(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = router(
        &f,
        Config {
            request_timeout: Duration::from_secs(2),
            export_page_size: 1,
            ..Config::default()
        },
    );
    rt.block_on(async {
        let stalled = send(&app, get_req("/v1/activities/export", &f.keys[0])).await;
        assert_eq!(stalled.status(), 200);
        // Let the producer fill its buffer and block.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            call(Method::GET, "/v1/activities?limit=5")
                .key(&f.b_key)
                .send(&app),
        )
        .await
        .expect("a request hung behind the stalled export");
        assert_eq!(r.status, 200, "{}", r.text());
        drop(stalled);
    });
}

/// What broke: nothing limited how many exports one key ran at once.
#[tokio::test]
async fn exports_are_limited_per_key_with_a_429() {
    let f = fixture(100);
    let app = router(
        &f,
        Config {
            export_page_size: 1,
            max_exports_per_key: 2,
            ..Config::default()
        },
    );
    let uri = "/v1/activities/export";
    let first = send(&app, get_req(uri, &f.keys[0])).await;
    let second = send(&app, get_req(uri, &f.keys[0])).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let r = call(Method::GET, uri).key(&f.keys[0]).send(&app).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.code(), Some("rate_limited"));
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exports"));
    // Another key is not affected.
    let other = send(&app, get_req(uri, &f.keys[1])).await;
    assert_eq!(other.status(), 200);
    // A finished export gives its place back.
    let whole = body_of(first).await.unwrap();
    assert_eq!(whole.iter().filter(|b| **b == b'\n').count(), 100);
    let mut again = None;
    for _ in 0..50 {
        let r = send(&app, get_req(uri, &f.keys[0])).await;
        if r.status() == 200 {
            again = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "the finished export's place was not given back"
    );
    drop((second, other, again));
}

/// What broke: an export whose reader stopped reading waited for it forever. Past the write
/// timeout the producer gives up and the body ends in an error, so the client sees a truncated
/// download.
#[tokio::test]
async fn an_export_whose_reader_stalls_is_cut_short() {
    let f = fixture(100);
    let app = router(
        &f,
        Config {
            export_page_size: 1,
            write_timeout: Duration::from_millis(200),
            ..Config::default()
        },
    );
    let resp = send(&app, get_req("/v1/activities/export", &f.keys[0])).await;
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = body_of(resp).await;
    assert!(r.is_err(), "the stalled export ran to completion");
}

/// What broke: authentication ran inside the concurrency limit, so with every slot taken by
/// data work, a request with a bad key (or a health check) queued behind all of it before it
/// could be told anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_health_checks_do_not_wait_for_data_work() {
    let f = fixture(30_000);
    let app = router(
        &f,
        Config {
            concurrency_limit: 1,
            per_key_concurrency: 0,
            max_examined: 0,
            request_timeout: Duration::from_secs(60),
            ..Config::default()
        },
    );
    // Twenty slow scans queue for the only slot: seconds of data work, one after another.
    let busy: Vec<_> = (0..20)
        .map(|_| {
            let (app, key) = (app.clone(), f.keys[0].clone());
            tokio::spawn(async move {
                let r = call(Method::GET, &unindexed_q()).key(&key).send(&app).await;
                assert_eq!(r.status, 200, "{}", r.text());
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let r = call(Method::GET, "/v1/activities")
        .key("actlog_0123456789abcdef_forged")
        .send(&app)
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = call(Method::GET, "/healthz").send(&app).await;
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a 401 and a health check waited {:?} for data work",
        t.elapsed()
    );
    for b in busy {
        b.await.unwrap();
    }
}

// ---- 4. rate limits for every credential form and for unauthenticated callers ------------

fn limited(per_second: u32, burst: u32) -> RateLimit {
    RateLimit { per_second, burst }
}

/// What broke: the per-key limiter only understood `Authorization: Bearer`, so the same key
/// sent as Sequence's Basic credentials or Velt's `x-velt-auth-token` was never limited.
#[tokio::test]
async fn every_credential_form_spends_its_keys_tokens() {
    let f = fixture(10);
    let config = |burst| Config {
        rate_limit: limited(1, burst),
        ..Config::default()
    };
    let key = &f.keys[0];
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("client:{key}"))
    );
    let app = router(&f, config(3));
    for i in 0..4 {
        let r = call(Method::GET, "/compat/sequence/activity-logs")
            .header("authorization", &basic)
            .send(&app)
            .await;
        let want = if i < 3 { 200 } else { 429 };
        assert_eq!(r.status, want, "Basic request {i}: {}", r.text());
    }
    // The same key's Bearer requests share the bucket.
    let r = call(Method::GET, "/v1/activities")
        .key(key)
        .send(&app)
        .await;
    assert_eq!(r.status, 429);

    let app = router(&f, config(2));
    let velt = json!({"data": {"organizationId": "a"}});
    for i in 0..3 {
        let r = call(Method::POST, "/compat/velt/v2/activities/get")
            .header("x-velt-api-key", "k")
            .header("x-velt-auth-token", &f.keys[1])
            .json(&velt)
            .send(&app)
            .await;
        let want = if i < 2 { 200 } else { 429 };
        assert_eq!(r.status, want, "Velt request {i}: {}", r.text());
    }
}

fn from_peer(method: Method, uri: &str, peer: &str, key: Option<&str>) -> Request<Body> {
    let addr: SocketAddr = peer.parse().unwrap();
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    let mut req = b.body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

/// What broke: requests without a valid key were never limited: anyone could send 401s, health
/// checks and forged keys as fast as the server answered them.
#[tokio::test]
async fn unauthenticated_requests_are_limited_per_peer_address() {
    let f = fixture(10);
    let app = router(
        &f,
        Config {
            peer_rate_limit: limited(1, 5),
            ..Config::default()
        },
    );
    let flood = "10.0.0.1:5000";
    for i in 0..5 {
        let r = send(&app, from_peer(Method::GET, "/v1/activities", flood, None)).await;
        assert_eq!(r.status(), 401, "request {i}");
    }
    let r = send(&app, from_peer(Method::GET, "/healthz", flood, None)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_slice(&body_of(r).await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // A forged key from that address is an unauthenticated request too.
    let forged = "actlog_0123456789abcdef_forged";
    let r = send(
        &app,
        from_peer(Method::GET, "/v1/activities", "10.0.0.1:5001", Some(forged)),
    )
    .await;
    assert_eq!(r.status(), 429);
    // Another address has its own bucket; a valid key from the flooding address its key's.
    let r = send(
        &app,
        from_peer(Method::GET, "/healthz", "10.0.0.2:5000", None),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(
        &app,
        from_peer(Method::GET, "/v1/activities", flood, Some(&f.keys[0])),
    )
    .await;
    assert_eq!(r.status(), 200);
}
