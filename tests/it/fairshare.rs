//! Fair share: per-key rate limiting (429 with `Retry-After`, keyed by the API key, not the
//! client's address), checked through the router; and one key that cannot starve another
//! tenant, against the server binary on 127.0.0.1: tenant b pages through its log, first alone,
//! then while one read key of tenant a runs 32 concurrent expensive requests (unindexed
//! `contains` over 50,000 activities, `include_total`, exports it never reads), then while a
//! write key of tenant a floods appends. Every read of b must succeed, b's p99 must stay within
//! 10× its unloaded p99 (or 100 ms, whichever is larger) and no read may take over 1 s: wide
//! bounds, because the machine is shared. `ACTLOG_FAIRSHARE_SECS` sets the length of the
//! expensive-read phase (default 10; the append flood runs half as long), `ACTLOG_FAIRSHARE_ARGS`
//! adds flags to the server (`--heavy-concurrency 0` turns the turns off, for comparison); the
//! figures are printed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actlog::http::{ratelimit::RateLimit, Config};
use actlog::*;
use axum::http::Method;
use serde_json::{json, Value};

use crate::support::env_usize;
use crate::support::http::{call, router};
use crate::support::process::{http_raw, start};
use crate::support::store::{fill_lorem, put_key, temp_store};

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() {
    let (_dir, store) = temp_store();
    store.create_tenant("a", TenantSettings::default()).unwrap();
    let k1 = put_key(&store, Some("a"), Scope::ReadWrite);
    let k2 = put_key(&store, Some("a"), Scope::ReadWrite);
    let config = Config {
        rate_limit: RateLimit {
            per_second: 1,
            burst: 5,
        },
        ..Config::default()
    };
    let app = router(&store, config);
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

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let Some(last) = v.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    let i = ((last as f64) * p).round() as usize;
    v[i.min(last)]
}

/// Activities of tenant a: enough that an unindexed scan of them is real work (~0.3 s in a
/// debug build here), few enough to load in seconds.
const A_ACTIVITIES: usize = 50_000;
const B_ACTIVITIES: usize = 2_000;
/// The expensive requests of tenant a's read key at once.
const EXPENSIVE: usize = 32;

/// Tenant b's reader: pages newest-first through its log, five pages of 50 then from the top
/// again, one request every 20 ms, until `stop`. Every answer must be a 200 with a page.
fn page_b(addr: SocketAddr, key: &str, stop: &AtomicBool, max: Duration) -> Vec<Duration> {
    let auth = format!("Bearer {key}");
    let started = Instant::now();
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    let mut depth = 0;
    // Bounded in count and in time.
    for _ in 0..100_000 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > max {
            break;
        }
        let path = match &cursor {
            Some(c) => format!("/v1/activities?limit=50&cursor={c}"),
            None => "/v1/activities?limit=50".to_owned(),
        };
        let t = Instant::now();
        let (status, body) = http_raw(
            addr,
            "GET",
            &path,
            &[("authorization", auth.as_bytes())],
            None,
        )
        .unwrap();
        let took = t.elapsed();
        assert_eq!(
            status,
            200,
            "tenant b's read was refused: {}",
            String::from_utf8_lossy(&body)
        );
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(page["data"].as_array().map(Vec::len), Some(50));
        out.push(took);
        depth += 1;
        cursor = page["pagination"]["next_cursor"]
            .as_str()
            .filter(|_| depth < 5)
            .map(str::to_owned);
        if cursor.is_none() {
            depth = 0;
        }
        std::thread::sleep(Duration::from_millis(20).saturating_sub(took));
    }
    out
}

/// One export request whose response is never read: the connection is held for `hold`, then
/// dropped. Returns the status if the head arrived (a 429 does; a 200's head may not, if the
/// server is still producing).
fn stalled_export(addr: SocketAddr, auth: &str, hold: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    let req = format!(
        "GET /v1/activities/export HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    s.set_read_timeout(Some(hold)).ok()?;
    // Read the first few bytes only: enough for a status line, never the body.
    let mut head = [0u8; 12];
    let status = s
        .read_exact(&mut head)
        .ok()
        .and_then(|()| String::from_utf8_lossy(&head[9..12]).parse().ok());
    std::thread::sleep(hold);
    status
}

/// What tenant a's requests got.
#[derive(Default)]
struct Tally {
    by_status: Mutex<std::collections::BTreeMap<u16, u64>>,
}

impl Tally {
    fn add(&self, status: u16) {
        *self.by_status.lock().unwrap().entry(status).or_default() += 1;
    }
    fn text(&self) -> String {
        let m = self.by_status.lock().unwrap();
        m.iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Tenant a's expensive requests: `EXPENSIVE` threads, each cycling through an unindexed
/// `contains` page, an exact `include_total` of every activity, an unindexed total, and an
/// export it never reads; until `stop` or `max`.
fn expensive_reads(
    addr: SocketAddr,
    key: &str,
    stop: &Arc<AtomicBool>,
    max: Duration,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    let contains = json!({"summary": {"contains": "no such words"}}).to_string();
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let paths = [
        format!("/v1/activities?q={}", enc(&contains)),
        "/v1/activities?limit=1&include_total=true".to_owned(),
        format!(
            "/v1/activities?limit=1&include_total=true&q={}",
            enc(&contains)
        ),
    ];
    (0..EXPENSIVE)
        .map(|i| {
            let (stop, tally, paths) = (Arc::clone(stop), Arc::clone(tally), paths.clone());
            let auth = format!("Bearer {key}");
            std::thread::spawn(move || {
                let started = Instant::now();
                for n in 0..10_000usize {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > max {
                        break;
                    }
                    if (i + n) % 4 == 3 {
                        if let Some(s) = stalled_export(addr, &auth, Duration::from_secs(2)) {
                            tally.add(s);
                        }
                        continue;
                    }
                    let path = &paths[(i + n) % 4];
                    match http_raw(
                        addr,
                        "GET",
                        path,
                        &[("authorization", auth.as_bytes())],
                        None,
                    ) {
                        Ok((s, _)) => tally.add(s),
                        Err(e) => panic!("tenant a's request failed outright: {e}"),
                    }
                }
            })
        })
        .collect()
}

/// Tenant a's write key floods single appends from 6 connections.
fn append_flood(
    addr: SocketAddr,
    key: &str,
    stop: &Arc<AtomicBool>,
    max: Duration,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..6)
        .map(|_| {
            let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
            let auth = format!("Bearer {key}");
            std::thread::spawn(move || {
                let body = json!({"action": "flood", "resource": {"type": "T"}}).to_string();
                let started = Instant::now();
                for _ in 0..200_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > max {
                        break;
                    }
                    match http_raw(
                        addr,
                        "POST",
                        "/v1/activities",
                        &[("authorization", auth.as_bytes())],
                        Some(("application/json", body.as_bytes())),
                    ) {
                        Ok((s, _)) => tally.add(s),
                        Err(e) => panic!("flood: {e}"),
                    }
                }
            })
        })
        .collect()
}

/// Runs `load` (threads that stop by themselves within `secs`) while tenant b pages; returns
/// b's latencies.
fn under_load(
    addr: SocketAddr,
    b_key: &str,
    secs: Duration,
    load: impl FnOnce(&Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>>,
) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(&stop);
    // Let the load build up before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let lat = page_b(addr, b_key, &AtomicBool::new(false), secs);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    lat
}

fn figures(label: &str, lat: &[Duration]) -> String {
    format!(
        "{label}: {} reads, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        lat.len(),
        percentile(lat, 0.5),
        percentile(lat, 0.99),
        lat.iter().max().copied().unwrap_or_default()
    )
}

/// One key cannot starve another tenant (issue 11, "Fair share"). What broke before: nothing
/// bounded one key's concurrent work (every one of its requests ran a scan on its own blocking
/// thread), a timed-out scan kept running, and a stalled export held a blocking thread forever.
#[test]
fn one_key_cannot_starve_another_tenant() {
    let secs = Duration::from_secs(env_usize("ACTLOG_FAIRSHARE_SECS", 10) as u64);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a_read, a_write, b_read) = {
        let store = Store::open(&data, Options::default()).unwrap();
        let mut tokens = vec![];
        for (tenant, n) in [("a", A_ACTIVITIES), ("b", B_ACTIVITIES)] {
            store
                .create_tenant(tenant, TenantSettings::default())
                .unwrap();
            fill_lorem(&store, tenant, n);
        }
        for (tenant, scope) in [("a", Scope::Read), ("a", Scope::Write), ("b", Scope::Read)] {
            tokens.push(put_key(&store, Some(tenant), scope).token);
        }
        (tokens[0].clone(), tokens[1].clone(), tokens[2].clone())
    };
    let extra: Vec<String> = std::env::var("ACTLOG_FAIRSHARE_ARGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut server = start(&data, true, &extra);
    let addr = server.addr.unwrap();

    let _warm = page_b(
        addr,
        &b_read,
        &AtomicBool::new(false),
        Duration::from_secs(1),
    );
    let idle = page_b(
        addr,
        &b_read,
        &AtomicBool::new(false),
        Duration::from_secs(3),
    );
    let reads_tally = Arc::new(Tally::default());
    let storm = under_load(addr, &b_read, secs, |stop| {
        expensive_reads(
            addr,
            &a_read,
            stop,
            secs + Duration::from_secs(5),
            &reads_tally,
        )
    });
    let flood_tally = Arc::new(Tally::default());
    let flood = under_load(addr, &b_read, secs / 2, |stop| {
        append_flood(
            addr,
            &a_write,
            stop,
            secs + Duration::from_secs(5),
            &flood_tally,
        )
    });
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let idle_p99 = percentile(&idle, 0.99);
    let bound = (idle_p99 * 10).max(Duration::from_millis(100));
    eprintln!(
        "fair share: tenant b paging (50 a page, every 20 ms)\n  {}\n  {}\n  {}\n  \
         bound on the p99: {bound:.1?}; no read over 1 s\n  tenant a's {EXPENSIVE} expensive \
         readers got {}\n  tenant a's append flood got {}",
        figures("alone", &idle),
        figures("tenant a's 32 expensive requests", &storm),
        figures("tenant a flooding appends", &flood),
        reads_tally.text(),
        flood_tally.text(),
    );
    for (label, lat) in [("expensive reads", &storm), ("append flood", &flood)] {
        assert!(
            lat.len() > 10,
            "{label}: tenant b read only {} pages",
            lat.len()
        );
        let p99 = percentile(lat, 0.99);
        assert!(
            p99 <= bound,
            "{label}: tenant b's p99 {p99:?} is past {bound:?} (alone: {idle_p99:?})"
        );
        let worst = lat.iter().max().copied().unwrap_or_default();
        assert!(
            worst <= Duration::from_secs(1),
            "{label}: a read of tenant b took {worst:?}"
        );
    }
}
