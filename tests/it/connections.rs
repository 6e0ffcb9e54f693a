//! `serve`'s connection handling over real sockets on 127.0.0.1 (issue 11, "Fair share"): a
//! request head that never completes, an idle connection, a reader that stops reading, the
//! connection cap, and per-address limits (which need the peer address `serve` records).

use std::net::SocketAddr;
use std::time::Duration;

use actlog::http::{ratelimit::RateLimit, serve, Config, ServeOptions};
use actlog::*;
use tokio::net::TcpStream;

use crate::support::store::{put_key, temp_store};

/// A server on its own port with tenant `t`, `n` activities in it (each with `metadata_bytes`
/// of metadata), and a key for it. Dropping `stop` shuts it down.
struct Running {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    key: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn running(config: Config, n: usize, metadata_bytes: usize) -> Running {
    let (dir, store) = temp_store();
    store.create_tenant("t", TenantSettings::default()).unwrap();
    let k = put_key(&store, Some("t"), Scope::ReadWrite);
    let blob = "m".repeat(metadata_bytes);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|i| {
                NewActivity::new(
                    "a",
                    ObjectRef {
                        kind: "T".into(),
                        id: Some(format!("r{i}")),
                    },
                )
                .metadata(serde_json::json!({ "blob": blob }))
            })
            .collect();
        store.append_batch("t", batch).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        config,
        purge_interval: Duration::ZERO,
        shutdown_grace: Duration::from_secs(1),
    };
    tokio::spawn(serve(listener, store, opts, async {
        let _ = rx.await;
    }));
    Running {
        _dir: dir,
        addr,
        key: k.token,
        _stop: tx,
    }
}

/// Writes all of `b` (the crate builds tokio without `io-util`).
async fn write_all(s: &TcpStream, mut b: &[u8]) {
    while !b.is_empty() {
        s.writable().await.unwrap();
        match s.try_write(b) {
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

async fn read_some(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => return r,
        }
    }
}

/// Reads until the server closes the connection, an error, or `wait` passes. Returns the bytes
/// read and whether the connection ended (EOF or reset) within `wait`.
async fn read_until_closed(s: &TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let mut out = vec![];
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, read_some(s, &mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// What broke: `axum::serve` set no header-read timeout, so a client could open a connection,
/// send half a request head and hold the connection (and its memory) forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_completes_is_cut_off() {
    let srv = running(
        Config {
            header_timeout: Duration::from_millis(500),
            ..Config::default()
        },
        0,
        0,
    )
    .await;
    let s = TcpStream::connect(srv.addr).await.unwrap();
    write_all(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    let (_, closed) = read_until_closed(&s, Duration::from_secs(10)).await;
    assert!(closed, "the half-sent request head was waited for 10 s");
}

/// What broke: an idle keep-alive connection was kept open for as long as the client liked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let srv = running(
        Config {
            header_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(200),
            ..Config::default()
        },
        0,
        0,
    )
    .await;
    let s = TcpStream::connect(srv.addr).await.unwrap();
    write_all(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (got, closed) = read_until_closed(&s, Duration::from_secs(10)).await;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    assert!(closed, "the idle keep-alive connection was kept 10 s");
}

/// What broke: a client that stopped reading a large response held its connection forever: the
/// server's write waited on a full socket buffer with no timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_disconnected() {
    // 300 activities of 60 KiB: an 18 MB page, far past any socket buffer.
    let srv = running(
        Config {
            write_timeout: Duration::from_millis(500),
            ..Config::default()
        },
        300,
        60 * 1024,
    )
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let s = socket.connect(srv.addr).await.unwrap();
    let req = format!(
        "GET /v1/activities?limit=300 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        srv.key
    );
    write_all(&s, req.as_bytes()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (got, closed) = read_until_closed(&s, Duration::from_secs(20)).await;
    let head_end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content length");
    assert!(closed);
    assert!(
        got.len() - head_end - 4 < length,
        "the stalled reader was waited for and got all {length} bytes"
    );
}

/// What broke: `serve` accepted every connection it was offered; there was no cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let srv = running(
        Config {
            max_connections: 2,
            ..Config::default()
        },
        0,
        0,
    )
    .await;
    let held1 = TcpStream::connect(srv.addr).await.unwrap();
    let _held2 = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The kernel completes the handshake, but the server does not take the connection.
    let third = TcpStream::connect(srv.addr).await.unwrap();
    write_all(
        &third,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (got, _) = read_until_closed(&third, Duration::from_millis(500)).await;
    assert!(got.is_empty(), "served past the cap: {got:?}");
    drop(held1);
    let (got, closed) = read_until_closed(&third, Duration::from_secs(10)).await;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    assert!(closed);
}

/// Per-address limits need the peer address, which `serve` hands to the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_over_sockets_are_limited_per_address() {
    let srv = running(
        Config {
            peer_rate_limit: RateLimit {
                per_second: 1,
                burst: 3,
            },
            ..Config::default()
        },
        0,
        0,
    )
    .await;
    let mut statuses = vec![];
    for _ in 0..4 {
        let s = TcpStream::connect(srv.addr).await.unwrap();
        write_all(
            &s,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let (got, _) = read_until_closed(&s, Duration::from_secs(10)).await;
        statuses.push(String::from_utf8_lossy(&got[..12.min(got.len())]).into_owned());
    }
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200",
            "HTTP/1.1 200",
            "HTTP/1.1 200",
            "HTTP/1.1 429"
        ]
    );
}
