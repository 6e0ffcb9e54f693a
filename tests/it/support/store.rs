//! Stores for tests: in a temporary directory, with keys, filled with a standard activity, or
//! with a clock the test moves by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actlog::http::auth::{issue_key, IssuedKey};
use actlog::*;
use chrono::{DateTime, Utc};

/// A store in a fresh temporary directory, relaxed durability (tests that are not about
/// durability need no flush per append).
pub fn temp_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), Options::new().durability(Durability::Relaxed)).unwrap());
    (dir, store)
}

/// Issues a key (`tenant` `None`: an admin key) and stores its record.
pub fn put_key(store: &Store, tenant: Option<&str>, scope: Scope) -> IssuedKey {
    let k = issue_key(tenant.map(Into::into), scope, Utc::now());
    store.put_api_key(&k.record).unwrap();
    k
}

/// Activity `i` of the fair-share fixtures: 30 actions, a ~260-byte summary each.
pub fn lorem(i: usize) -> NewActivity {
    NewActivity::new(
        format!("act.{}", i % 30),
        ObjectRef {
            kind: "T".into(),
            id: Some(format!("r{i}")),
        },
    )
    .summary(format!("{} {i}", "lorem ipsum ".repeat(20)))
}

/// Appends `lorem(0..n)` to `tenant` in batches of 1,000.
pub fn fill_lorem(store: &Store, tenant: &str, n: usize) {
    let mut i = 0;
    while i < n {
        let batch: Vec<NewActivity> = (i..n.min(i + 1000)).map(lorem).collect();
        i += batch.len();
        store.append_batch(tenant, batch).unwrap();
    }
}

pub fn t(us: i64) -> DateTime<Utc> {
    actlog::model::micros_to_time(us)
}

/// A store in a temp dir with a clock the test moves by hand.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<AtomicI64>,
    pub store: Option<Store>,
    /// Applied to the options of every open (deferred-indexing tests turn the indexer off).
    pub tweak: fn(Options) -> Options,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(|o| o)
    }

    /// A fixture whose store is opened with `tweak` applied to the usual options.
    pub fn with(tweak: fn(Options) -> Options) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000_000));
        let mut f = Fixture {
            dir,
            clock,
            store: None,
            tweak,
        };
        f.reopen();
        f
    }

    pub fn options(&self) -> Options {
        let c = self.clock.clone();
        (self.tweak)(
            Options::new()
                .durability(Durability::Relaxed)
                .cache_capacity(8 << 20)
                .clock(Arc::new(move || t(c.load(Ordering::SeqCst)))),
        )
    }

    pub fn reopen(&mut self) {
        self.store = None;
        self.store = Some(Store::open(self.dir.path(), self.options()).unwrap());
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }
}
