//! What the test areas share, so that no area borrows from another's file: the HTTP harness
//! (`http`: the router and `oneshot`), stores in temporary directories (`store`), the `actlog`
//! binary and its server on 127.0.0.1 (`process`), and a few small helpers.

pub mod http;
pub mod process;
pub mod store;

use std::path::Path;

/// A number from the environment (a campaign's size or length), or the default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Percent-encodes everything but unreserved characters (a query-string value).
pub fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Opens a data directory's sled database directly (behind the store's back), waiting a bounded
/// time for sled's file lock: a `Store` just dropped in this process may hold it for a few more
/// milliseconds through sled's background threads (`Store::open` waits the same way).
pub fn raw_sled(dir: &Path) -> sled::Db {
    let start = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening {} behind the store: {e}", dir.display()),
        }
    }
}
