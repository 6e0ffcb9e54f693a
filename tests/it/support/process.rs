//! The `actlog` binary: one-shot commands, and the server on 127.0.0.1 (a port of its choosing,
//! every wait bounded) with a minimal HTTP/1.1 client that can send any bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `actlog <args>` on the data directory, with these environment variables, to the end.
pub fn actlog(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_actlog"))
        .args(args)
        .env("ACTLOG_DATA_DIR", data)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// One request over a fresh connection: `Ok((status, body))`, or the I/O error when the server
/// is gone. Header values and the body are bytes, so hostile tests can send anything.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<(&str, &[u8])>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: ").as_bytes());
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    if let Some((ct, b)) = body {
        req.extend_from_slice(
            format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes(),
        );
        req.extend_from_slice(b);
    } else {
        req.extend_from_slice(b"\r\n");
    }
    // A server may answer (413) and close before it has read a large body: read what it said.
    let written = s.write_all(&req);
    let mut resp = Vec::new();
    let read = s.read_to_end(&mut resp);
    if resp.is_empty() {
        written?;
        read?;
    }
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head:?}")))?;
    let mut body = resp[head_end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let len = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if len == 0 || b.len() < eol + 2 + len {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + len]);
        b = &b[(eol + 4 + len).min(b.len())..];
    }
    out
}

/// A JSON request with text headers.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let (status, body) = http_raw(
        addr,
        method,
        path,
        &headers,
        Some(("application/json", body.as_bytes())),
    )?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The server process, the address it printed once it was listening, and every line it has
/// printed so far.
pub struct Server {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    pub stdout: Arc<Mutex<Vec<String>>>,
}

/// Starts `actlog serve` on the data directory (sync durability, 16 MB cache, errors logged);
/// waits (bounded) for its address unless `wait` is false.
pub fn start(data: &Path, wait: bool, extra: &[&str]) -> Server {
    start_with(
        data,
        wait,
        extra,
        &[("ACTLOG_LOG", "error"), ("ACTLOG_CACHE_MB", "16")],
    )
}

/// `start` with these environment variables instead of its log level and cache size.
pub fn start_with(data: &Path, wait: bool, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_actlog"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("ACTLOG_DATA_DIR", data)
        .env("ACTLOG_DURABILITY", "sync")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on http://") {
                let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
            }
            keep.lock().unwrap().push(line);
        }
    });
    let addr = if wait {
        Some(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the server did not start within 60 s"),
        )
    } else {
        None
    };
    Server {
        child,
        addr,
        stdout: lines,
    }
}

/// The admin key the server wrote into its data directory on first start.
pub fn admin_key(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned()
}
