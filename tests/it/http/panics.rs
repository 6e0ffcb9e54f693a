//! A panic inside the storage engine, as the server logs it: one bounded line with the request
//! id, never the panic's data. sled's reverse-iteration panic formatted its whole tree (every
//! tenant's keys and values) into its message, and the log got 1.5 MB of it for two requests.
//!
//! Run in a child process (the test binary re-executed), because it installs a global tracing
//! subscriber and the binary's panic hook, which must not touch the other tests.

use std::process::Command;
use std::sync::Arc;

use actlog::http::{app, auth::issue_key, install_panic_hook, AppState, Config};
use actlog::{FaultHook, FaultPoint, Options, Scope, Store, TenantSettings};
use axum::http::{Method, StatusCode};

use crate::support::http::call;

const CHILD: &str = "ACTLOG_PANIC_LOG_CHILD";
/// What the injected panic carries in place of sled's tree dump.
const SECRET: &str = "tenant-secret-value";

#[tokio::test]
async fn panic_log_child_process() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    install_panic_hook();
    let dir = tempfile::tempdir().unwrap();
    // Stands for sled's panic: its message shape, with data after the words.
    let hook: FaultHook = Arc::new(|p| {
        if p == FaultPoint::Read {
            let dump = format!("{:?} {SECRET} ", vec![255u8; 4]).repeat(20_000);
            panic!(
                "fucked up tree traversal next_back(Excluded([0, 0, 0, 1, 255])) on Tree: {dump}"
            );
        }
        false
    });
    let store = Arc::new(Store::open(dir.path(), Options::new().fault_hook(hook)).unwrap());
    store.create_tenant("a", TenantSettings::default()).unwrap();
    let key = issue_key(Some("a".into()), Scope::Read, chrono::Utc::now());
    store.put_api_key(&key.record).unwrap();
    let app = app(AppState::new(store, Config::default()));
    let r = call(Method::GET, "/v1/activities")
        .key(&key.token)
        .header("x-request-id", "req-panic-0001")
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    assert!(!r.text().contains(SECRET));
    println!("CHILD-DONE");
}

#[test]
fn engine_panic_logs_one_bounded_line_with_the_request_id() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "http::panics::panic_log_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("CHILD-DONE"),
        "{stdout}\n{log}"
    );
    assert!(!log.contains(SECRET), "panic data in the log");
    assert!(!log.contains("255, 255"), "panic data in the log");
    assert!(log.len() < 4_000, "{} bytes of log", log.len());
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("fucked up")).collect();
    // For each panic (the key lookup reads the engine too), the panic hook's line and the store
    // error's line, both in the request's span.
    assert!(lines.len() >= 2 && lines.len().is_multiple_of(2), "{log}");
    for line in lines {
        assert!(line.contains("req-panic-0001"), "{line}");
        assert!(line.chars().count() <= 300, "{line}");
        // The part that is the panic's own text is short.
        let text = &line[line.find("fucked up").unwrap()..];
        assert!(text.chars().count() <= 200, "{text}");
    }
}
