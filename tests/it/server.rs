//! The real binary: start it on 127.0.0.1:0, append over a real socket, SIGTERM it mid-stream,
//! restart it, and find every acknowledged write.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::process::{self, Server};

/// One request with the admin key (none when `key` is empty), its answer as text.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = format!("Bearer {key}");
    let headers: Vec<(&str, &[u8])> = if key.is_empty() {
        vec![]
    } else {
        vec![("Authorization", auth.as_bytes())]
    };
    let body = body.map(|b| ("application/json", b.as_bytes()));
    let (status, body) = process::http_raw(addr, method, path, &headers, body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The server with a 10 s shutdown grace, logging warnings.
fn start(data: &Path) -> Server {
    process::start_with(
        data,
        true,
        &["--shutdown-grace-secs", "10"],
        &[("ACTLOG_LOG", "warn")],
    )
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..300 {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server did not exit within 30 s of SIGTERM");
}

/// The binary runs with transparent huge pages off (`src/main.rs`: with THP, mimalloc's fresh
/// pages were 2 MiB faults and zeroing, 77% of the CPU of POST batches at one connection), even
/// where the system applies THP to everything. Linux (5.0 on) shows the flag in `/proc`.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[test]
fn the_server_runs_with_transparent_huge_pages_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()));
    sigterm(&server.child);
    assert!(wait(&mut server.child).success());
    let status = status.unwrap();
    let flag = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(
        flag,
        Some("0"),
        "/proc/<pid>/status of the server:\n{status}"
    );
}

#[test]
fn sigterm_during_appends_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data);
    let addr = server.addr.unwrap();
    let key = process::admin_key(&data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        server.stdout.lock().unwrap().iter().any(|l| l == &key),
        "the admin key is printed on first start"
    );
    let (status, body) = http(addr, "GET", "/healthz", "", None).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    // Four writers append until the server stops answering (bounded at 2,000 requests each).
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, stop, key) = (Arc::clone(&acked), Arc::clone(&stop), key.clone());
            std::thread::spawn(move || {
                for i in 0..2000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = format!(
                        r#"{{"action":"e2e.append","resource":{{"type":"T","id":"w{w}-{i}"}}}}"#
                    );
                    match http(addr, "POST", "/v1/activities", &key, Some(&body)) {
                        Ok((201, resp)) => {
                            let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_owned());
                        }
                        // Refused or cut off while shutting down: not acknowledged.
                        Ok(_) | Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // Let some appends through (bounded wait: 30 s on a slow disk), then stop the server.
    for _ in 0..1200 {
        if acked.lock().unwrap().len() >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    sigterm(&server.child);
    let status = wait(&mut server.child);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(status.success(), "exit status {status:?}");
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "no append was acknowledged");

    // Restart: the same admin key works, no new key is printed, and every ack is there.
    let server = start(&data);
    let mut server = server;
    assert!(!server
        .stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("admin key")));
    for id in &acked {
        let (status, body) = http(
            server.addr.unwrap(),
            "GET",
            &format!("/v1/activities/{id}"),
            &key,
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "acknowledged {id} is gone: {body}");
    }
    let (status, body) = http(
        server.addr.unwrap(),
        "GET",
        "/v1/activities?include_total=true&limit=1",
        &key,
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["pagination"]["total"].as_u64().unwrap() >= u64::try_from(acked.len()).unwrap());
    sigterm(&server.child);
    assert!(wait(&mut server.child).success());
}

/// `serve` in this process on 127.0.0.1:0 over a bootstrapped store, until `stop_tx` fires.
struct InProcess {
    _dir: tempfile::TempDir,
    store: Arc<actlog::Store>,
    key: String,
    addr: SocketAddr,
    stop_tx: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn in_process(shutdown_grace: Duration) -> InProcess {
    use actlog::http::{serve, Config, ServeOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(actlog::Store::open(dir.path(), actlog::Options::default()).unwrap());
    let boot = actlog::http::bootstrap(&store, dir.path()).unwrap();
    let key = boot.admin_key.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        config: Config::default(),
        purge_interval: Duration::from_secs(3600),
        shutdown_grace,
    };
    let server = tokio::spawn(serve(listener, Arc::clone(&store), opts, async {
        let _ = stop_rx.await;
    }));
    InProcess {
        _dir: dir,
        store,
        key,
        addr,
        stop_tx,
        server,
    }
}

/// Shutdown stops accepting but lets a request that is in flight (its body half sent) finish,
/// then flushes; the write it acknowledged is in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let InProcess {
        _dir,
        store,
        key,
        addr,
        stop_tx,
        server,
    } = in_process(Duration::from_secs(10)).await;

    let body = r#"{"action":"in.flight","resource":{"type":"T"}}"#;
    let (head, tail) = body.split_at(10);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v1/activities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    s.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused while the old one is served.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    let resp = tokio::task::spawn_blocking(move || {
        s.write_all(tail.as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp
    })
    .await
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let f = actlog::Filter::new().actions(["in.flight"]);
    assert_eq!(store.count("default", &f).unwrap(), 1);
}

/// Shutdown ends live tails cleanly: the stream's response ends (a last empty chunk, then the
/// connection closes) and the server returns, instead of waiting out the grace period for a
/// response that never ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_tails() {
    // A grace longer than the test waits: only the streams' own end lets the server return.
    let InProcess {
        _dir,
        key,
        addr,
        stop_tx,
        server,
        ..
    } = in_process(Duration::from_secs(600)).await;
    let reader = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET /v1/activities/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        )
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("{e}: {}", String::from_utf8_lossy(&got))),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(()).unwrap();
    let resp = reader.await.unwrap().expect("the stream ends by itself");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("text/event-stream"), "{resp}");
    assert!(
        resp.ends_with("0\r\n\r\n"),
        "a clean end of the chunked body: {resp:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server returns")
        .unwrap()
        .unwrap();
}

/// The background task purges activities past their tenant's retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_purges_expired_activities() {
    use actlog::http::{serve, Config, ServeOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(actlog::Store::open(dir.path(), actlog::Options::default()).unwrap());
    let settings = actlog::TenantSettings {
        retention_days: Some(1),
        ..Default::default()
    };
    store.create_tenant("r", settings).unwrap();
    for days_ago in [10, 0] {
        store
            .append(
                "r",
                actlog::NewActivity::new(
                    format!("d{days_ago}"),
                    actlog::ObjectRef {
                        kind: "T".into(),
                        id: None,
                    },
                )
                .created_at(chrono::Utc::now() - chrono::Duration::days(days_ago)),
            )
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        config: Config::default(),
        purge_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(5),
    };
    let server = tokio::spawn(serve(listener, Arc::clone(&store), opts, async {
        let _ = stop_rx.await;
    }));
    let all = actlog::Filter::default();
    for _ in 0..100 {
        if store.count("r", &all).unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = store.scan_all_actions("r");
    assert_eq!(left, ["d0"]);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

trait ScanActions {
    fn scan_all_actions(&self, tenant: &str) -> Vec<String>;
}

impl ScanActions for actlog::Store {
    fn scan_all_actions(&self, tenant: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.scan(
            tenant,
            &actlog::Filter::default(),
            actlog::Order::Asc,
            |a| {
                out.push(a.action.to_owned());
                Ok(true)
            },
        )
        .unwrap();
        out
    }
}
