//! Storage faults: fail the N-th engine operation (N = 1, 2, … until the operation succeeds) of an
//! append, a batch, a flush and an open. A failed write is never acknowledged, nothing panics,
//! and after reopening `verify` passes and the failed write is either wholly there or wholly absent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actlog::*;

/// A hook that fails the `n`-th operation it sees (1-based) and counts them all.
fn fail_nth(n: usize) -> (FaultHook, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    (
        Arc::new(move |_point| s.fetch_add(1, Ordering::SeqCst) + 1 == n),
        seen,
    )
}

/// A directory holding a store with tenant `a`, closed.
fn dir_with_tenant_a() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), Options::default())
        .unwrap()
        .create_tenant("a", TenantSettings::default())
        .unwrap();
    dir
}

fn batch(tag: &str, n: usize) -> Vec<NewActivity> {
    (0..n)
        .map(|i| {
            NewActivity::new(
                "fault",
                ObjectRef {
                    kind: "T".into(),
                    id: Some(format!("{i}")),
                },
            )
            .context("tag", tag)
        })
        .collect()
}

fn count_tag(store: &Store, tag: &str) -> u64 {
    store
        .count("a", &Filter::new().context("tag", tag))
        .unwrap()
}

/// Runs `op` against stores whose N-th operation fails, for N = 1, 2, … until `op` succeeds.
fn campaign(size: usize, op: impl Fn(&Store, &str) -> Result<()>) {
    let dir = dir_with_tenant_a();
    for n in 1.. {
        let tag = format!("n{n}");
        let (hook, _) = fail_nth(n);
        let result = match Store::open(dir.path(), Options::new().fault_hook(hook)) {
            Err(e) => Err(e),
            Ok(store) => op(&store, &tag),
        };
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let present = count_tag(&store, &tag);
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "N={n}: {report:?}");
        match result {
            Ok(()) => {
                assert_eq!(
                    present, size as u64,
                    "N={n}: an acknowledged write is missing"
                );
                assert!(n > 1, "the campaign never injected a fault");
                return;
            }
            Err(Error::Io(e)) => {
                assert!(e.to_string().contains("injected"), "N={n}: {e}");
                assert!(
                    present == 0 || present == size as u64,
                    "N={n}: partial write ({present})"
                );
            }
            Err(e) => panic!("N={n}: unexpected error {e}"),
        }
        assert!(n < 100, "the operation never succeeds");
    }
}

#[test]
fn a_failed_append_is_never_acknowledged() {
    campaign(1, |s, tag| {
        s.append("a", batch(tag, 1).remove(0)).map(|_| ())
    });
}

#[test]
fn a_failed_batch_is_all_or_nothing() {
    campaign(50, |s, tag| s.append_batch("a", batch(tag, 50)).map(|_| ()));
}

#[test]
fn a_failed_flush_is_reported() {
    // In relaxed mode the append itself does not flush; the explicit flush is what may fail.
    let dir = dir_with_tenant_a();
    let mut failures = 0;
    for n in 1..10 {
        let (hook, seen) = fail_nth(n);
        let opts = Options::new()
            .durability(Durability::Relaxed)
            .fault_hook(hook);
        let Ok(store) = Store::open(dir.path(), opts) else {
            continue;
        };
        let appended = store.append_batch("a", batch("flush", 3));
        let flushed = store.flush();
        if appended.is_ok() && flushed.is_err() {
            failures += 1;
            // A later flush succeeds: the failure was not recorded as durable progress.
            assert!(store.flush().is_ok());
        }
        assert!(seen.load(Ordering::SeqCst) >= 1);
    }
    assert!(failures >= 1, "no flush failure was injected");
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn a_failed_open_can_be_retried() {
    let dir = dir_with_tenant_a();
    let (hook, _) = fail_nth(1);
    let err = Store::open(dir.path(), Options::new().fault_hook(hook)).unwrap_err();
    assert!(matches!(err, Error::Io(_)));
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.tenants().len(), 1);
}

/// Regression: an idempotent replay (every activity of the request already stored) was
/// acknowledged at once. After an append whose flush failed, the client's retry found the
/// records (applied to sled, not yet on disk) and got `created: false` although no flush had
/// covered them: a crash then would have lost an acknowledged write. In `Sync` durability a
/// replay now waits for a flush that covers every write made before it, like a new append.
#[test]
fn a_replay_after_a_failed_flush_waits_for_a_flush() {
    use std::sync::atomic::AtomicBool;
    let dir = dir_with_tenant_a();
    let failing = Arc::new(AtomicBool::new(false));
    let flushed = Arc::new(AtomicUsize::new(0));
    let (f, n) = (failing.clone(), flushed.clone());
    let hook: FaultHook = Arc::new(move |point| {
        if point != FaultPoint::Flush {
            return false;
        }
        if f.load(Ordering::SeqCst) {
            return true;
        }
        n.fetch_add(1, Ordering::SeqCst);
        false
    });
    let store = Store::open(dir.path(), Options::new().fault_hook(hook)).unwrap();
    let mut one = batch("replay", 1).remove(0);
    one.id = Some(uuid::Uuid::new_v4());
    let mut many = batch("replay-batch", 5);
    for a in &mut many {
        a.id = Some(uuid::Uuid::new_v4());
    }

    failing.store(true, Ordering::SeqCst);
    assert!(matches!(store.append("a", one.clone()), Err(Error::Io(_))));
    assert!(matches!(
        store.append_batch("a", many.clone()),
        Err(Error::Io(_))
    ));
    // While every flush fails, a replay must not be acknowledged either.
    let replay = store.append("a", one.clone());
    assert!(matches!(replay, Err(Error::Io(_))), "{replay:?}");
    let replay = store.append_batch("a", many.clone());
    assert!(matches!(replay, Err(Error::Io(_))), "{replay:?}");

    // Once a flush succeeds, the replay is acknowledged, and only after it.
    failing.store(false, Ordering::SeqCst);
    let before = flushed.load(Ordering::SeqCst);
    let r = store.append("a", one.clone()).unwrap();
    assert!(!r.created);
    assert!(
        flushed.load(Ordering::SeqCst) > before,
        "the replay was acknowledged without a flush"
    );
    let r = store.append_batch("a", many).unwrap();
    assert!(r.iter().all(|a| !a.created));
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(count_tag(&store, "replay"), 1);
    assert_eq!(count_tag(&store, "replay-batch"), 5);
    assert!(store.verify().unwrap().is_ok());
}

/// Regression: `Store::scan` ran outside `store::guard` (as did `get`, `purge_expired` and the
/// API key lookups), so a panic inside sled during it (sled 0.34 has some on damaged files and
/// one on reverse iteration) unwound into the caller instead of becoming
/// `Error::EnginePanic` as in `query`. A hook that panics at `FaultPoint::Read` stands in for
/// sled: every read entry point must turn it into an error. A panic in the caller's own scan
/// callback is not the engine's and still reaches the caller.
#[test]
fn a_panic_in_the_engine_during_a_read_is_an_error() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let a = armed.clone();
    let hook: FaultHook = Arc::new(move |point| {
        if point == FaultPoint::Read && a.load(Ordering::SeqCst) {
            panic!("simulated engine panic");
        }
        false
    });
    let store = Store::open(
        dir.path(),
        Options::new()
            .durability(Durability::Relaxed)
            .fault_hook(hook),
    )
    .unwrap();
    store
        .create_tenant(
            "a",
            TenantSettings {
                retention_days: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    let ack = store.append("a", batch("read", 1).remove(0)).unwrap();
    armed.store(true, Ordering::SeqCst);
    let facet = FacetRequest::new(FacetField::Action).limit(10);
    type Call<'a> = Box<dyn Fn() -> Result<()> + 'a>;
    let calls: Vec<(&str, Call)> = vec![
        (
            "scan",
            Box::new(|| store.scan("a", &Filter::default(), Order::Desc, |_| Ok(true))),
        ),
        ("get", Box::new(|| store.get("a", ack.id).map(drop))),
        (
            "query",
            Box::new(|| store.query("a", &Query::default()).map(drop)),
        ),
        (
            "count",
            Box::new(|| store.count("a", &Filter::default()).map(drop)),
        ),
        ("facets", Box::new(|| store.facets("a", &facet).map(drop))),
        (
            "purge_expired",
            Box::new(|| store.purge_expired(chrono::Utc::now()).map(drop)),
        ),
        ("verify", Box::new(|| store.verify().map(drop))),
        ("api_key", Box::new(|| store.api_key("0123").map(drop))),
        ("api_keys", Box::new(|| store.api_keys().map(drop))),
    ];
    for (name, call) in calls {
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Err(Error::EnginePanic(m))) => assert!(m.contains("simulated"), "{name}: {m}"),
            Ok(other) => panic!("{name}: {other:?}"),
            Err(_) => panic!("{name}: the engine's panic reached the caller"),
        }
    }
    armed.store(false, Ordering::SeqCst);
    let mine = catch_unwind(AssertUnwindSafe(|| {
        store.scan("a", &Filter::default(), Order::Asc, |_| {
            panic!("the caller's own")
        })
    }));
    let payload = mine.expect_err("a panic in the callback reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the caller's own"));
    assert_eq!(store.count("a", &Filter::default()).unwrap(), 1);
}

/// Regression: sled 0.34's flush ends in `sync_file_range`, which neither persists the log
/// file's new size nor flushes the drive's cache, so `Sync` acknowledged writes a power cut could
/// still take. The flush now ends in an `fdatasync` of the database file: when that fails, the
/// append is not acknowledged. `Relaxed` appends do not wait for it.
#[test]
fn a_sync_append_waits_for_the_fsync_of_the_database_file() {
    let fail_sync: FaultHook = Arc::new(|point| point == FaultPoint::Sync);
    let dir = dir_with_tenant_a();
    let store = Store::open(dir.path(), Options::new().fault_hook(fail_sync.clone())).unwrap();
    let r = store.append("a", batch("fsync", 1).remove(0));
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    drop(store);

    let options = Options::new()
        .durability(Durability::Relaxed)
        .fault_hook(fail_sync);
    let store = Store::open(dir.path(), options).unwrap();
    assert!(store.append("a", batch("fsync", 1).remove(0)).is_ok());
}

/// Regression: sled writes an item over a quarter of a segment (~128 KiB) to a file of its own
/// under `blobs/` and never syncs it, so a large activity acknowledged in `Sync` durability
/// could be lost to a power cut even with the log file synced. Each new blob is now synced too:
/// failing the second sync of the flush (the first is the log file's) fails the append.
#[test]
fn a_sync_append_waits_for_the_fsync_of_its_blob() {
    let dir = dir_with_tenant_a();
    // ~150 KiB: two JSON fields near their 64 KiB limit, the summary and every context value
    // at theirs.
    let big = |c: char| serde_json::json!({ "text": c.to_string().repeat(60 * 1024) });
    let mut large = batch("blob", 1)
        .remove(0)
        .metadata(big('m'))
        .changes(big('c'))
        .summary("s".repeat(4 * 1024));
    for i in 0..15 {
        large = large.context(format!("k{i}"), "v".repeat(1024));
    }
    let syncs = Arc::new(AtomicUsize::new(0));
    let s = syncs.clone();
    let second_sync_fails: FaultHook = Arc::new(move |point| {
        point == FaultPoint::Sync && s.fetch_add(1, Ordering::SeqCst) + 1 == 2
    });
    let store = Store::open(dir.path(), Options::new().fault_hook(second_sync_fails)).unwrap();
    let r = store.append("a", large.clone());
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert!(blobs > 0, "the activity was not large enough to be a blob");
    // The next flush syncs the blob, and the next append is acknowledged.
    assert!(store.append("a", large).is_ok());
}
