//! Fair share: per-key rate limiting (429 with `Retry-After`, keyed by the API key, not the
//! client's address), checked through the router; and a measurement against the server binary:
//! another tenant's read latency while one tenant floods writes, against its idle latency, with
//! the limiter off and on. The figures are printed, never asserted (timing on a shared 2-core
//! machine is not a test). `ACTLOG_FAIRSHARE_READS` sets the reads per phase (default 60; the
//! documented run is 1,000; reads are paced at 25 a second).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actlog::http::{app, auth::issue_key, ratelimit::RateLimit, AppState, Config};
use actlog::*;
use axum::http::Method;
use serde_json::{json, Value};

use crate::http::call;
use crate::kill9::{http_raw, start};

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            dir.path(),
            Options {
                durability: Durability::Relaxed,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    store.create_tenant("a", TenantSettings::default()).unwrap();
    let now = chrono::Utc::now();
    let k1 = issue_key(Some("a".into()), Scope::ReadWrite, now);
    let k2 = issue_key(Some("a".into()), Scope::ReadWrite, now);
    store.put_api_key(&k1.record).unwrap();
    store.put_api_key(&k2.record).unwrap();
    let config = Config {
        rate_limit: RateLimit {
            per_second: 1,
            burst: 5,
        },
        ..Config::default()
    };
    let app = app(AppState::new(store, config));
    // A forged key carrying k1's key id spends none of k1's tokens.
    let forged = format!(
        "actlog_{}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        k1.record.key_id
    );
    for _ in 0..20 {
        let r = call(Method::GET, "/v1/activities")
            .key(&forged)
            .send(&app)
            .await;
        assert_eq!(r.status, 401);
    }
    for i in 0..5 {
        let r = call(Method::GET, "/v1/activities")
            .key(&k1.token)
            .send(&app)
            .await;
        assert_eq!(r.status, 200, "request {i} within the burst: {}", r.text());
    }
    let r = call(Method::POST, "/v1/activities")
        .key(&k1.token)
        .json(&json!({"action": "a", "resource": {"type": "T"}}))
        .send(&app)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.code(), Some("rate_limited"));
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Nothing was written by the refused append.
    let r = call(Method::GET, "/v1/activities")
        .key(&k2.token)
        .send(&app)
        .await;
    assert_eq!(
        r.status, 200,
        "another key of the same tenant has its own bucket"
    );
    assert_eq!(r.json["data"].as_array().unwrap().len(), 0);
    // Public routes carry no key and are never limited.
    for _ in 0..10 {
        let r = call(Method::GET, "/healthz").send(&app).await;
        assert_eq!(r.status, 200);
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Reads tenant b's newest page `n` times, one read every 40 ms (a dashboard's pace, under any
/// limit configured here); returns the latencies of the answered reads and the number of 429s.
fn reads(addr: std::net::SocketAddr, key: &str, n: usize) -> (Vec<Duration>, usize) {
    let auth = format!("Bearer {key}");
    let mut limited = 0;
    let mut out = vec![];
    for _ in 0..n {
        let t = Instant::now();
        let (status, _) = http_raw(
            addr,
            "GET",
            "/v1/activities?limit=50",
            &[("authorization", auth.as_bytes())],
            None,
        )
        .unwrap();
        let took = t.elapsed();
        match status {
            200 => out.push(took),
            429 => limited += 1,
            s => panic!("read answered {s}"),
        }
        std::thread::sleep(Duration::from_millis(40).saturating_sub(took));
    }
    (out, limited)
}

struct Figures {
    idle_p50: Duration,
    idle_p99: Duration,
    flood_p50: Duration,
    flood_p99: Duration,
    flood_ok: u64,
    flood_429: u64,
    flood_secs: f64,
    reader_429: usize,
}

fn measure(limit: &[&str]) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, true, limit);
    let addr = server.addr.unwrap();
    let admin = format!(
        "Bearer {}",
        std::fs::read_to_string(data.join("admin.key"))
            .unwrap()
            .trim()
    );
    let mut keys = vec![];
    for t in ["a", "b"] {
        let body = json!({ "id": t }).to_string();
        let (s, _) = http_raw(
            addr,
            "POST",
            "/v1/tenants",
            &[("authorization", admin.as_bytes())],
            Some(("application/json", body.as_bytes())),
        )
        .unwrap();
        assert_eq!(s, 201);
        let body = json!({"scope": "read_write"}).to_string();
        let (s, b) = http_raw(
            addr,
            "POST",
            &format!("/v1/tenants/{t}/keys"),
            &[("authorization", admin.as_bytes())],
            Some(("application/json", body.as_bytes())),
        )
        .unwrap();
        assert_eq!(s, 201);
        let v: Value = serde_json::from_slice(&b).unwrap();
        keys.push(v["key"].as_str().unwrap().to_owned());
    }
    let (flooder, reader) = (keys[0].clone(), keys[1].clone());
    // Tenant b has some history to read.
    let auth_b = format!("Bearer {reader}");
    let batch: Vec<Value> = (0..500)
        .map(|i| json!({"action": "seen", "resource": {"type": "T", "id": format!("r{i}")}}))
        .collect();
    let body = json!({ "activities": batch }).to_string();
    let (s, _) = http_raw(
        addr,
        "POST",
        "/v1/activities",
        &[("authorization", auth_b.as_bytes())],
        Some(("application/json", body.as_bytes())),
    )
    .unwrap();
    assert_eq!(s, 201);

    let n = crate::damaged::env_usize("ACTLOG_FAIRSHARE_READS", 60);
    let _warm = reads(addr, &reader, 10);
    let (mut idle, idle_429) = reads(addr, &reader, n);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flood_start = Instant::now();
    let flooders: Vec<_> = (0..6)
        .map(|_| {
            let (stop, ok, limited, key) =
                (stop.clone(), ok.clone(), limited.clone(), flooder.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {key}");
                let body = json!({"action": "flood", "resource": {"type": "T"}}).to_string();
                // Bounded in count and in time.
                for _ in 0..200_000 {
                    if stop.load(Ordering::Relaxed)
                        || flood_start.elapsed() > Duration::from_secs(60)
                    {
                        break;
                    }
                    match http_raw(
                        addr,
                        "POST",
                        "/v1/activities",
                        &[("authorization", auth.as_bytes())],
                        Some(("application/json", body.as_bytes())),
                    ) {
                        Ok((201, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        Ok((429, _)) => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("flood: {other:?}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut flood, flood_read_429) = reads(addr, &reader, n);
    stop.store(true, Ordering::Relaxed);
    let flood_secs = flood_start.elapsed().as_secs_f64();
    for f in flooders {
        f.join().unwrap();
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    Figures {
        idle_p50: percentile(&mut idle, 0.5),
        idle_p99: percentile(&mut idle, 0.99),
        flood_p50: percentile(&mut flood, 0.5),
        flood_p99: percentile(&mut flood, 0.99),
        flood_ok: ok.load(Ordering::Relaxed),
        flood_429: limited.load(Ordering::Relaxed),
        flood_secs,
        reader_429: idle_429 + flood_read_429,
    }
}

#[test]
fn fair_share_figures() {
    let mut lines = vec![];
    for (label, args) in [
        ("limiter off", vec!["--rate-limit-per-sec", "0"]),
        ("limiter on (default)", vec![]),
        (
            "limiter at 50/s",
            vec!["--rate-limit-per-sec", "50", "--rate-limit-burst", "50"],
        ),
    ] {
        let f = measure(&args);
        lines.push(format!(
            "{label}: tenant b reads p50 {:.1?} / p99 {:.1?} idle, p50 {:.1?} / p99 {:.1?} while \
             tenant a floods (p99 ×{:.1}); flood: {} appends acknowledged ({:.0}/s), {} answered 429; \
             reader refused {} times",
            f.idle_p50,
            f.idle_p99,
            f.flood_p50,
            f.flood_p99,
            f.flood_p99.as_secs_f64() / f.idle_p99.as_secs_f64(),
            f.flood_ok,
            f.flood_ok as f64 / f.flood_secs,
            f.flood_429,
            f.reader_429
        ));
    }
    eprintln!(
        "fair share (6 flooding connections, sync durability):\n  {}",
        lines.join("\n  ")
    );
}
