//! Upgrading real older data directories to format 4 on open: `tests/fixtures/format2` (written
//! by the format 2 build; `tests/fixtures/make-format2.py` says how) and `tests/fixtures/format3`
//! (the format 3 build; `tests/fixtures/make-format3.sh`). Everything they held is served
//! exactly as before, both ways, now with `seq` numbering each tenant's activities in time order
//! and `recorded_at` their `created_at` (all in the past); `verify` is clean; and an upgrade
//! interrupted at any step (the process aborted, or a step failing) leaves a directory that the
//! next open upgrades completely.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actlog::*;

use crate::support::copy_dir;

/// The older data directories, by name under `tests/fixtures/`.
const FORMAT2: &str = "format2";
const FORMAT3: &str = "format3";
/// Set in the child's environment: the directory to open.
const CHILD_DIR: &str = "ACTLOG_UPGRADE_CHILD_DIR";
/// Set in the child's environment: abort the process at this upgrade step (1-based).
const CHILD_ABORT_AT: &str = "ACTLOG_UPGRADE_ABORT_AT";

/// A fresh copy of a fixture directory.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let from = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    copy_dir(Path::new(&from), &data);
    (dir, data)
}

fn actlog(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_actlog"))
        .args(args)
        .env("ACTLOG_DATA_DIR", data)
        .env("ACTLOG_LOG", "info")
        .output()
        .unwrap()
}

/// The old build's own export of a fixture's tenant.
fn expected(name: &str, tenant: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}-{tenant}.ndjson",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// An export line without the two fields format 4 added, and their values: `seq` and
/// `recorded_at` come right after `id` and `created_at`.
fn split_log_fields(line: &str) -> (String, u64, String) {
    let (head, rest) = line.split_once(",\"seq\":").unwrap();
    let (seq, rest) = rest.split_once(',').unwrap();
    let (created, rest) = rest.split_once(",\"recorded_at\":\"").unwrap();
    let (recorded, rest) = rest.split_once('"').unwrap();
    (
        format!("{head},{created}{rest}"),
        seq.parse().unwrap(),
        recorded.to_owned(),
    )
}

/// What a fully upgraded copy must serve: the old build's own export of each tenant, byte for
/// byte but for `seq` (1, 2, … in that export's order, oldest first) and `recorded_at` (equal to
/// `created_at`: every fixture time is in the past), oldest first and (reversed) newest first,
/// and a clean `verify`.
fn assert_complete(name: &str, data: &Path) {
    for tenant in ["acme", "beta"] {
        let want = expected(name, tenant);
        let out = actlog(data, &["export", "--tenant", tenant]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8(out.stdout).unwrap();
        let mut stripped = String::new();
        for (i, line) in got.lines().enumerate() {
            let (rest, seq, recorded) = split_log_fields(line);
            assert_eq!(seq, i as u64 + 1, "{tenant}: seq of line {i}");
            let a: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(a["created_at"], recorded.as_str(), "{tenant}: recorded_at");
            stripped.push_str(&rest);
            stripped.push('\n');
        }
        assert_eq!(stripped, want, "{tenant} oldest first");
        let want = got;
        let out = actlog(data, &["export", "--tenant", tenant, "--order", "desc"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<&str> = want.lines().collect();
        lines.reverse();
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            lines,
            "{tenant} newest first"
        );
    }
    let out = actlog(data, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("800 records"), "{text}");
}

/// Both fixtures, with what each holds beyond the other.
const FIXTURES: [&str; 2] = [FORMAT2, FORMAT3];

#[test]
fn older_directories_upgrade_on_open() {
    for name in FIXTURES {
        upgrades_on_open(name);
    }
}

fn upgrades_on_open(name: &str) {
    let (_dir, data) = fixture_copy(name);
    // The first open upgrades, and says so on stderr.
    let out = actlog(&data, &["tenants", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("upgrading the data directory"), "{stderr}");
    assert!(stderr.contains("upgrade complete"), "{stderr}");
    let tenants = String::from_utf8_lossy(&out.stdout);
    assert!(
        tenants.contains(r#""id":"acme","timezone":"Europe/Ljubljana""#),
        "{tenants}"
    );
    assert_complete(name, &data);
    // Later opens find format 4 and do nothing more.
    let out = actlog(&data, &["tenants", "list"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("upgrading"));
    // The library reads it too, records whole: a caller's 0xFF-laden id by `get`.
    let store = Store::open(&data, Options::default()).unwrap();
    let id = uuid::Uuid::parse_str("00010000-ffff-4fff-bfff-ffffffffffff").unwrap();
    let a = store.get("acme", id).unwrap().unwrap();
    assert_eq!(a.action, "invoice.sent");
    assert_eq!(a.context.len(), 3);
    // The log goes on from the last number the upgrade gave.
    let n = store.last_seq("acme").unwrap();
    assert_eq!(n, 600);
    let ack = store
        .append(
            "acme",
            NewActivity::new("after.upgrade", ObjectRef::of_type("T")),
        )
        .unwrap();
    assert_eq!(ack.seq, n + 1);
    assert!(store.verify().unwrap().is_ok());
}

/// The child's body: opens the directory with a hook that aborts the process (no destructor,
/// no flush: what kill -9 leaves) at the N-th upgrade step. Without the variables it does nothing.
#[test]
fn upgrade_child_process() {
    let (Ok(dir), Ok(at)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ABORT_AT)) else {
        return;
    };
    let at: usize = at.parse().unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let hook: FaultHook = Arc::new(move |p| {
        if p == FaultPoint::Migrate && steps.fetch_add(1, Ordering::SeqCst) + 1 == at {
            std::process::abort();
        }
        false
    });
    let store = Store::open(&dir, Options::new().fault_hook(hook));
    assert!(store.is_ok(), "{:?}", store.err());
}

#[test]
fn upgrade_aborted_at_every_step_completes_on_next_open() {
    for name in FIXTURES {
        aborted_at_every_step(name);
    }
}

fn aborted_at_every_step(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut aborted = 0;
    for at in 1..=8 {
        let (_dir, data) = fixture_copy(name);
        let status = Command::new(&exe)
            .args([
                "--exact",
                "upgrade::upgrade_child_process",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &data)
            .env(CHILD_ABORT_AT, at.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            // Fewer steps than `at`: the upgrade ran to the end.
            assert_complete(name, &data);
            break;
        }
        aborted += 1;
        assert_complete(name, &data);
    }
    // The fixture's upgrade has at least: copy batches, the last batch, the marker, the drop.
    assert!(aborted >= 4, "only {aborted} steps");
}

#[test]
fn upgrade_failing_at_every_step_keeps_the_old_format_until_done() {
    for name in FIXTURES {
        failing_at_every_step(name);
    }
}

fn failing_at_every_step(name: &str) {
    for at in 1..=8 {
        let (_dir, data) = fixture_copy(name);
        let steps = Arc::new(AtomicUsize::new(0));
        let s = steps.clone();
        let hook: FaultHook = Arc::new(move |p| {
            p == FaultPoint::Migrate && s.fetch_add(1, Ordering::SeqCst) + 1 == at
        });
        let r = Store::open(&data, Options::new().fault_hook(hook));
        let failed = r.is_err();
        drop(r);
        assert_complete(name, &data);
        if !failed {
            assert!(at > 4, "the upgrade has at least four steps");
            break;
        }
    }
}

/// The format marker, read behind the store's back.
fn marker(data: &Path) -> (u32, bool) {
    let db = crate::support::raw_sled(data);
    let meta = db.open_tree("meta").unwrap();
    let b: [u8; 4] = meta
        .get("format")
        .unwrap()
        .unwrap()
        .as_ref()
        .try_into()
        .unwrap();
    let has_old = db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == b"log" || n.as_ref() == b"log3");
    (u32::from_be_bytes(b), has_old)
}

/// Format 1 (one key per index entry) is format 2 with lists of one: the same upgrade applies.
/// After it the marker says 4 and the old tree is gone, so no older build opens the directory.
#[test]
fn format_1_marker_upgrades_too() {
    let (_dir, data) = fixture_copy(FORMAT2);
    assert_eq!(marker(&data), (2, true));
    {
        let db = crate::support::raw_sled(&data);
        db.open_tree("meta")
            .unwrap()
            .insert("format", &1u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    drop(Store::open(&data, Options::default()).unwrap());
    assert_eq!(marker(&data), (4, false));
    assert_complete(FORMAT2, &data);
}

/// Cursors carry positions, not key bytes: the `next_cursor`s the format 2 build handed out
/// (`tests/fixtures/format2-cursors.json`, from its own server on this fixture) continue their
/// queries after the upgrade, with the pages that follow in the format 2 build's own export.
#[test]
fn cursors_issued_before_the_upgrade_continue() {
    let (_dir, data) = fixture_copy(FORMAT2);
    let store = Store::open(&data, Options::default()).unwrap();
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/format2-cursors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exported: Vec<serde_json::Value> = expected(FORMAT2, "acme")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids = |v: &[&serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        ("desc_limit_5", Order::Desc, Filter::default(), None),
        (
            "asc_invoice_sent_limit_5",
            Order::Asc,
            Filter::new().actions(["invoice.sent"]),
            Some("invoice.sent"),
        ),
    ];
    for (name, order, filter, action) in cases {
        let mut all: Vec<&serde_json::Value> = exported
            .iter()
            .filter(|a| action.is_none_or(|x| a["action"] == x))
            .collect();
        if order == Order::Desc {
            all.reverse();
        }
        let first: Vec<String> = saved[name]["first_page"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(first, ids(&all[..5]), "{name}: the saved first page");
        let page = store
            .query(
                "acme",
                &Query::new()
                    .filter(filter)
                    .order(order)
                    .limit(5)
                    .cursor(Some(
                        saved[name]["next_cursor"].as_str().unwrap().to_owned(),
                    )),
            )
            .unwrap();
        let got: Vec<String> = page.items.iter().map(|a| a.id.to_string()).collect();
        assert_eq!(
            got,
            ids(&all[5..10]),
            "{name}: the page after the old cursor"
        );
    }
}
