//! Shared setup of the component benches: sizes, and stores filled from the bench dataset.

#![allow(dead_code, reason = "each bench file uses a different part")]

use actlog::bench::{Dataset, BATCH};
use actlog::{Durability, NewActivity, Options, Store, TenantSettings};

/// Store sizes swept: 10k and 100k events, plus 1M when `ACTLOG_BENCH_1M` is set.
pub fn sizes() -> Vec<u64> {
    let mut v = vec![10_000, 100_000];
    if std::env::var_os("ACTLOG_BENCH_1M").is_some() {
        v.push(1_000_000);
    }
    v
}

/// A store in `dir` holding `events` activities of the bench dataset, all in tenant `t0` (so a
/// scan of `t0` covers every one). Filled in `relaxed` durability: setup, not measurement.
pub fn filled_store(dir: &std::path::Path, events: u64) -> Store {
    let store = Store::open(dir, Options::new().durability(Durability::Relaxed)).unwrap();
    store
        .create_tenant("t0", TenantSettings::default())
        .unwrap();
    for batch in Dataset::new(42, events) {
        store.append_batch("t0", batch.events).unwrap();
    }
    store.flush().unwrap();
    store
}

/// One batch of fresh events (the bench dataset under another seed).
pub fn batch(seed: u64) -> Vec<NewActivity> {
    Dataset::new(seed, BATCH as u64).next().unwrap().events
}
