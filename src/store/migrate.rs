//! Upgrading a data directory of an older on-disk format, on open.
//!
//! Formats 1 and 2 kept the `log` tree with `time ++ id` suffixes (and id-entry ids) as plain
//! bytes, which can hold four 0xFF bytes in a row and so break sled's reverse iteration (see
//! `keys`). Format 3 writes the same keys with those fields grouped, in a new tree `log3`. The
//! upgrade copies every key of `log`, rewritten, into `log3` (values are unchanged: posting lists
//! hold plain positions, records their own versioned bytes), flushes, then moves the format
//! marker to 3 in one write, flushes, and drops `log`.
//!
//! **Invariant:** the marker is the commit point. Until it says 3, `log` is untouched and is the
//! store; a crash or error at any point before leaves the old format, and the next open drops
//! the partial `log3` and starts again. Once it says 3, `log3` is complete (flushed before the
//! marker was written), and a leftover `log` (a crash before the drop) is dropped on open. Tested
//! by aborting the process at every step (`tests/it/upgrade.rs`).

use std::time::Instant;

use crate::error::{Error, Result};
use crate::store::keys::{self, POS_LEN, TAG_ID, TAG_INDEX, TAG_RECORD, TENANT_LEN};
use crate::store::{check_fault, FaultHook, FaultPoint};

/// The tree of records, id entries and index lists in format 3.
pub(crate) const LOG_TREE: &[u8] = b"log3";
/// The same tree in formats 1 and 2.
const OLD_LOG_TREE: &[u8] = b"log";
/// Keys copied per `apply_batch`.
const BATCH_KEYS: usize = 4096;

/// A format 1 or 2 key of `log`, rewritten as the format 3 key of the same thing. Checked by
/// decoding it again, so a key this build would not have written stops the upgrade.
pub(crate) fn upgrade_key(old: &[u8]) -> Result<Vec<u8>> {
    let bad = || {
        Error::Corrupt(format!(
            "format 2 key of unknown shape ({} bytes)",
            old.len()
        ))
    };
    let tag = *old.get(TENANT_LEN).ok_or_else(bad)?;
    let mut new = Vec::with_capacity(old.len() + 8);
    match tag {
        TAG_RECORD if old.len() == TENANT_LEN + 1 + POS_LEN => {
            new.extend_from_slice(&old[..=TENANT_LEN]);
            keys::push_grouped(&mut new, &old[TENANT_LEN + 1..]);
            keys::decode_record_key(&new)?;
        }
        TAG_ID if old.len() == TENANT_LEN + 1 + 16 => {
            new.extend_from_slice(&old[..=TENANT_LEN]);
            keys::push_grouped(&mut new, &old[TENANT_LEN + 1..]);
            keys::decode_id_key(&new)?;
        }
        TAG_INDEX if old.len() >= TENANT_LEN + 2 + POS_LEN => {
            let split = old.len() - POS_LEN;
            new.extend_from_slice(&old[..split]);
            keys::push_grouped(&mut new, &old[split..]);
            keys::decode_index_key(&new)?;
        }
        _ => return Err(bad()),
    }
    Ok(new)
}

/// Whether the database still has a `log` tree of format 1 or 2.
fn has_old_tree(db: &sled::Db) -> bool {
    db.tree_names().iter().any(|n| n.as_ref() == OLD_LOG_TREE)
}

/// Upgrades a store of format `found` (1 or 2) to format 3; returns the `log3` tree. `set_marker`
/// writes the new format marker (the commit point); it is called once, after `log3` is complete
/// and flushed.
pub(crate) fn upgrade(
    db: &sled::Db,
    found: u32,
    hook: &Option<FaultHook>,
    set_marker: impl FnOnce() -> Result<()>,
) -> Result<sled::Tree> {
    let started = Instant::now();
    // A partial copy from an interrupted upgrade: start again.
    db.drop_tree(LOG_TREE)?;
    let old = db.open_tree(OLD_LOG_TREE)?;
    let total = old.len();
    tracing::info!(
        from = found,
        to = super::meta::FORMAT_VERSION,
        keys = total,
        "upgrading the data directory: rewriting every key into the new format (needs about as \
         much free disk as the store uses; measured here: ~15 s per million keys, ~75 s per million \
         activities); the old format stays \
         intact until the copy is complete, so an interruption is safe and the next start begins \
         again"
    );
    let new = db.open_tree(LOG_TREE)?;
    let mut batch = sled::Batch::default();
    let (mut in_batch, mut copied, mut reported) = (0usize, 0usize, 0usize);
    for kv in old.iter() {
        let (k, v) = kv?;
        batch.insert(upgrade_key(&k)?, v);
        in_batch += 1;
        if in_batch == BATCH_KEYS {
            check_fault(hook, FaultPoint::Migrate)?;
            new.apply_batch(std::mem::take(&mut batch))?;
            copied += in_batch;
            in_batch = 0;
            if copied * 10 / total.max(1) > reported {
                reported = copied * 10 / total.max(1);
                tracing::info!(
                    copied,
                    keys = total,
                    elapsed_s = started.elapsed().as_secs(),
                    "upgrading: {}%",
                    reported * 10
                );
            }
        }
    }
    check_fault(hook, FaultPoint::Migrate)?;
    new.apply_batch(batch)?;
    copied += in_batch;
    db.flush()?;
    check_fault(hook, FaultPoint::Migrate)?;
    set_marker()?;
    check_fault(hook, FaultPoint::Migrate)?;
    db.drop_tree(OLD_LOG_TREE)?;
    db.flush()?;
    tracing::info!(
        keys = copied,
        elapsed_ms = started.elapsed().as_millis(),
        "upgrade complete: the data directory is now format {}",
        super::meta::FORMAT_VERSION
    );
    Ok(new)
}

/// Opens the `log3` tree of a store already in format 3, dropping the old `log` tree if an
/// upgrade was interrupted after its commit point.
pub(crate) fn open_current(db: &sled::Db) -> Result<sled::Tree> {
    if has_old_tree(db) {
        tracing::info!("removing the previous format's tree left by an interrupted upgrade");
        db.drop_tree(OLD_LOG_TREE)?;
        db.flush()?;
    }
    Ok(db.open_tree(LOG_TREE)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{IndexKind, Pos};
    use proptest::prelude::*;
    use uuid::Uuid;

    /// Format 2's writer, kept to test the upgrade: the same keys with plain suffixes and ids.
    mod v2 {
        use super::*;

        pub(super) fn record_key(tenant: u32, pos: Pos) -> Vec<u8> {
            let mut k = keys::record_prefix(tenant);
            k.extend_from_slice(&pos.encode());
            k
        }

        pub(super) fn id_key(tenant: u32, id: Uuid) -> Vec<u8> {
            let mut k = tenant.to_be_bytes().to_vec();
            k.push(TAG_ID);
            k.extend_from_slice(id.as_bytes());
            k
        }

        pub(super) fn index_key(tenant: u32, kind: IndexKind, vals: &[&str], pos: Pos) -> Vec<u8> {
            let mut k = keys::index_value_prefix(tenant, kind, vals);
            k.extend_from_slice(&pos.encode());
            k
        }
    }

    fn pos_strategy() -> impl Strategy<Value = Pos> {
        (
            prop_oneof![Just(-1i64), Just((1i64 << 32) - 1), any::<i64>()],
            any::<u128>(),
        )
            .prop_map(|(time, id)| Pos {
                time,
                id: Uuid::from_u128(id),
            })
    }

    proptest! {
        /// Every format 2 key becomes the format 3 key of the same record, id entry or list.
        #[test]
        fn upgraded_keys_are_the_new_keys(t in 0..=keys::MAX_TENANT_NO, p in pos_strategy(),
                                          v in "[a-z\\x00é]{0,6}", w in "[A-Z]{0,4}") {
            prop_assert_eq!(upgrade_key(&v2::record_key(t, p)).unwrap(), keys::record_key(t, p));
            prop_assert_eq!(upgrade_key(&v2::id_key(t, p.id)).unwrap(), keys::id_key(t, p.id));
            for kind in IndexKind::ALL {
                let vals: Vec<&str> = if kind.arity() == 2 { vec![&v, &w] } else { vec![&v] };
                prop_assert_eq!(
                    upgrade_key(&v2::index_key(t, kind, &vals, p)).unwrap(),
                    keys::index_key(t, kind, &vals, p)
                );
            }
        }

        #[test]
        fn upgrade_key_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = upgrade_key(&bytes);
        }
    }

    /// A whole tree of format 2 keys upgrades to the format 3 keys, values untouched, and the
    /// old tree is gone.
    #[test]
    fn upgrade_copies_every_key() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(OLD_LOG_TREE).unwrap();
        let mut want = Vec::new();
        for i in 0..10_000u32 {
            let p = Pos {
                time: (i64::from(i) << 32) - 1,
                id: Uuid::from_u128(u128::MAX - u128::from(i)),
            };
            let t = i % 3 + 1;
            let (old_key, new_key) = match i % 3 {
                0 => (v2::record_key(t, p), keys::record_key(t, p)),
                1 => (v2::id_key(t, p.id), keys::id_key(t, p.id)),
                _ => (
                    v2::index_key(t, IndexKind::Action, &["a.b"], p),
                    keys::index_key(t, IndexKind::Action, &["a.b"], p),
                ),
            };
            old.insert(&old_key, &i.to_be_bytes()).unwrap();
            want.push((new_key, i.to_be_bytes().to_vec()));
        }
        want.sort();
        let mut marked = false;
        let new = upgrade(&db, 2, &None, || {
            marked = true;
            Ok(())
        })
        .unwrap();
        assert!(marked);
        assert!(!has_old_tree(&db));
        let got: Vec<(Vec<u8>, Vec<u8>)> = new
            .iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        assert_eq!(got, want);
    }

    /// A failure before the commit point leaves the old tree whole and the marker unwritten.
    #[test]
    fn failure_before_the_marker_leaves_the_old_format() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(OLD_LOG_TREE).unwrap();
        for i in 0..5_000u32 {
            let p = Pos {
                time: i64::from(i),
                id: Uuid::from_u128(u128::from(i)),
            };
            old.insert(v2::record_key(1, p), &[1u8][..]).unwrap();
        }
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let hook: Option<FaultHook> = Some(std::sync::Arc::new(move |p| {
            p == FaultPoint::Migrate && c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
        }));
        let mut marked = false;
        assert!(upgrade(&db, 2, &hook, || {
            marked = true;
            Ok(())
        })
        .is_err());
        assert!(!marked);
        assert_eq!(db.open_tree(OLD_LOG_TREE).unwrap().len(), 5_000);
        // The next try starts from scratch and completes.
        let new = upgrade(&db, 2, &None, || Ok(())).unwrap();
        assert_eq!(new.len(), 5_000);
    }
}
