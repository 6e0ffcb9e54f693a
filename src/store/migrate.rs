//! Upgrading a data directory of an older on-disk format, on open.
//!
//! Formats 1 and 2 kept the `log` tree with `time ++ id` suffixes (and id-entry ids) as plain
//! bytes, which can hold four 0xFF bytes in a row and so break sled's reverse iteration (see
//! `keys`); format 3 wrote the same keys with those fields grouped, in `log3`. Format 4 adds the
//! log's own order: every record carries its `seq` and `recorded_at` (record V2), each `seq` has
//! an entry pointing at its record, and each tenant a head (last `seq`, last `recorded_at`). The
//! upgrade copies every key of the old tree (`log` or `log3`), rewritten, into `log4`, numbering
//! each tenant's records 1, 2, … in time order on the way (their `recorded_at` is their
//! `created_at`, but never after the moment of the upgrade), writes the heads, flushes, then
//! moves the format marker to 4 in one write, flushes, and drops the old tree.
//!
//! **Invariant:** the marker is the commit point. Until it says 4, the old tree is untouched and
//! is the store; a crash or error at any point before leaves the old format, and the next open
//! drops the partial `log4` and starts again. Once it says 4, `log4` is complete (flushed before
//! the marker was written), and a leftover old tree (a crash before the drop) is dropped on open.
//! Tested by aborting the process at every step (`tests/it/upgrade.rs`).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::keys::{self, Head, POS_LEN, TAG_ID, TAG_INDEX, TAG_RECORD, TENANT_LEN};
use crate::store::{check_fault, FaultHook, FaultPoint};

/// The tree of records, seq entries, heads, id entries and index lists in format 4.
pub(crate) const LOG_TREE: &[u8] = b"log4";
/// The same tree in format 3.
const LOG3_TREE: &[u8] = b"log3";
/// The same tree in formats 1 and 2.
const OLD_LOG_TREE: &[u8] = b"log";
/// Keys copied per `apply_batch`.
const BATCH_KEYS: usize = 4096;

/// A format 1 or 2 key of `log`, rewritten as the format 3 (and 4) key of the same thing.
/// Checked by decoding it again, so a key this build would not have written stops the upgrade.
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

/// A format 3 key of `log3`, checked: it is kept as it is.
fn check_format3_key(key: &[u8]) -> Result<Vec<u8>> {
    let ok = match key.get(TENANT_LEN) {
        Some(&TAG_RECORD) => keys::decode_record_key(key).is_ok(),
        Some(&TAG_ID) => keys::decode_id_key(key).is_ok(),
        Some(&TAG_INDEX) => keys::decode_index_key(key).is_ok(),
        _ => false,
    };
    if ok {
        Ok(key.to_vec())
    } else {
        Err(Error::Corrupt(format!(
            "format 3 key of unknown shape ({} bytes)",
            key.len()
        )))
    }
}

/// How an old tree's key becomes a `log4` key.
type KeyRewrite = fn(&[u8]) -> Result<Vec<u8>>;

/// The old trees an upgrade may leave behind.
const OLD_TREES: [&[u8]; 2] = [OLD_LOG_TREE, LOG3_TREE];

/// Upgrades a store of format `found` (1, 2 or 3) to format 4; returns the `log4` tree.
/// `now_us` bounds the `recorded_at` given to the records found. `set_marker` writes the new
/// format marker (the commit point); it is called once, after `log4` is complete and flushed.
pub(crate) fn upgrade(
    db: &sled::Db,
    found: u32,
    now_us: i64,
    hook: &Option<FaultHook>,
    set_marker: impl FnOnce() -> Result<()>,
) -> Result<sled::Tree> {
    let started = Instant::now();
    let (old_name, rewrite): (&[u8], KeyRewrite) = if found == 3 {
        (LOG3_TREE, check_format3_key)
    } else {
        (OLD_LOG_TREE, upgrade_key)
    };
    // A partial copy from an interrupted upgrade: start again.
    db.drop_tree(LOG_TREE)?;
    let old = db.open_tree(old_name)?;
    let total = old.len();
    tracing::info!(
        from = found,
        to = super::meta::FORMAT_VERSION,
        keys = total,
        "upgrading the data directory: rewriting every key into the new format and numbering \
         every tenant's activities (needs about as much free disk as the store uses; measured \
         here: ~11 s per million keys, 20 s for 200,000 activities in 1.8 million keys); the \
         old format stays \
         intact until the copy is complete, so an interruption is safe and the next start begins \
         again"
    );
    let new = db.open_tree(LOG_TREE)?;
    let mut heads: BTreeMap<u32, Head> = BTreeMap::new();
    let mut batch = sled::Batch::default();
    // `in_batch` and `copied` count the old tree's keys (progress), `written` the new ones.
    let (mut in_batch, mut copied, mut reported, mut written) = (0usize, 0usize, 0usize, 0usize);
    for kv in old.iter() {
        let (k, v) = kv?;
        let key = rewrite(&k)?;
        if key.get(TENANT_LEN) == Some(&TAG_RECORD) {
            // Keys come in order: a tenant's records ascend by (time, id), so its `seq`s follow
            // time order, and `recorded_at` (the time, capped at now) never goes back.
            let (tenant, pos) = keys::decode_record_key(&key)?;
            let head = heads.entry(tenant).or_insert(Head {
                seq: 0,
                recorded_at: i64::MIN,
            });
            head.seq += 1;
            head.recorded_at = head.recorded_at.max(pos.time.min(now_us));
            batch.insert(key, codec::with_seq(&v, head.seq, head.recorded_at)?);
            batch.insert(keys::seq_key(tenant, head.seq), &pos.encode()[..]);
            written += 1;
        } else {
            batch.insert(key, v);
        }
        in_batch += 1;
        written += 1;
        if in_batch >= BATCH_KEYS {
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
                    (reported * 10).min(100)
                );
            }
        }
    }
    for (tenant, head) in &heads {
        batch.insert(keys::head_key(*tenant), &head.encode()[..]);
        written += 1;
    }
    check_fault(hook, FaultPoint::Migrate)?;
    new.apply_batch(batch)?;
    copied += in_batch;
    db.flush()?;
    check_fault(hook, FaultPoint::Migrate)?;
    set_marker()?;
    check_fault(hook, FaultPoint::Migrate)?;
    db.drop_tree(old_name)?;
    db.flush()?;
    tracing::info!(
        keys = copied,
        written,
        elapsed_ms = started.elapsed().as_millis(),
        "upgrade complete: the data directory is now format {}",
        super::meta::FORMAT_VERSION
    );
    Ok(new)
}

/// Opens the `log4` tree of a store already in format 4, dropping an old tree if an upgrade was
/// interrupted after its commit point.
pub(crate) fn open_current(db: &sled::Db) -> Result<sled::Tree> {
    let names = db.tree_names();
    for old in OLD_TREES {
        if names.iter().any(|n| n.as_ref() == old) {
            tracing::info!("removing the previous format's tree left by an interrupted upgrade");
            db.drop_tree(old)?;
            db.flush()?;
        }
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

    /// Every key and value of a tree, in key order.
    fn contents(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    fn has_tree(db: &sled::Db, name: &[u8]) -> bool {
        db.tree_names().iter().any(|n| n.as_ref() == name)
    }

    /// The format 4 entries of the log's order for `records` (key, V1 value), numbered in key
    /// order per tenant, with `recorded_at` the time capped at `now`.
    fn numbered(records: &[(Vec<u8>, Vec<u8>)], now: i64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut sorted = records.to_vec();
        sorted.sort();
        let mut heads: BTreeMap<u32, Head> = BTreeMap::new();
        let mut out = Vec::new();
        for (k, v) in sorted {
            let (t, pos) = keys::decode_record_key(&k).unwrap();
            let h = heads.entry(t).or_insert(Head {
                seq: 0,
                recorded_at: i64::MIN,
            });
            h.seq += 1;
            h.recorded_at = h.recorded_at.max(pos.time.min(now));
            out.push((k, codec::with_seq(&v, h.seq, h.recorded_at).unwrap()));
            out.push((keys::seq_key(t, h.seq), pos.encode().to_vec()));
        }
        for (t, h) in heads {
            out.push((keys::head_key(t), h.encode().to_vec()));
        }
        out
    }

    /// A whole tree of format 2 keys upgrades to the format 4 keys: records numbered per tenant
    /// in time order, other values untouched, and the old tree is gone.
    #[test]
    fn upgrade_copies_every_key() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(OLD_LOG_TREE).unwrap();
        let mut want = Vec::new();
        let mut records = Vec::new();
        let now = 5_000i64 << 32;
        for i in 0..10_000u32 {
            let p = Pos {
                time: (i64::from(i) << 32) - 1,
                id: Uuid::from_u128(u128::MAX - u128::from(i)),
            };
            let t = i % 3 + 1;
            let value = [1u8, (i % 251) as u8].to_vec();
            match i % 3 {
                0 => {
                    old.insert(v2::record_key(t, p), value.clone()).unwrap();
                    records.push((keys::record_key(t, p), value));
                }
                1 => {
                    old.insert(v2::id_key(t, p.id), value.clone()).unwrap();
                    want.push((keys::id_key(t, p.id), value));
                }
                _ => {
                    old.insert(
                        v2::index_key(t, IndexKind::Action, &["a.b"], p),
                        value.clone(),
                    )
                    .unwrap();
                    want.push((keys::index_key(t, IndexKind::Action, &["a.b"], p), value));
                }
            }
        }
        want.extend(numbered(&records, now));
        want.sort();
        let mut marked = false;
        let new = upgrade(&db, 2, now, &None, || {
            marked = true;
            Ok(())
        })
        .unwrap();
        assert!(marked);
        assert!(!has_tree(&db, OLD_LOG_TREE));
        assert_eq!(contents(&new), want);
    }

    /// Format 3 keys are kept as they are; records are numbered; `log3` is dropped.
    #[test]
    fn upgrade_from_format_3_numbers_the_records() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(LOG3_TREE).unwrap();
        let mut want = Vec::new();
        let mut records = Vec::new();
        for i in 0..3_000u32 {
            let p = Pos {
                time: 1_700_000_000_000_000 - i64::from(i) * 1_000,
                id: Uuid::from_u128(u128::from(i)),
            };
            let t = i % 2;
            old.insert(keys::record_key(t, p), &[1u8][..]).unwrap();
            records.push((keys::record_key(t, p), vec![1u8]));
            let k = keys::index_key(t, IndexKind::Action, &["x"], p);
            old.insert(&k, &[][..]).unwrap();
            want.push((k, vec![]));
        }
        want.extend(numbered(&records, i64::MAX));
        want.sort();
        let new = upgrade(&db, 3, i64::MAX, &None, || Ok(())).unwrap();
        assert!(!has_tree(&db, LOG3_TREE));
        assert_eq!(contents(&new), want);
        // The oldest record of tenant 0 is seq 1.
        let first = new.get(keys::seq_key(0, 1)).unwrap().unwrap();
        assert_eq!(Pos::decode(&first).unwrap().id, Uuid::from_u128(2998));
    }

    /// A key format 3 never wrote stops the upgrade (nothing is guessed).
    #[test]
    fn unknown_format_3_keys_stop_the_upgrade() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(LOG3_TREE).unwrap();
        old.insert(keys::seq_key(1, 1), &[0u8; 24][..]).unwrap();
        assert!(upgrade(&db, 3, 0, &None, || Ok(())).is_err());
        assert_eq!(old.len(), 1);
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
        assert!(upgrade(&db, 2, 0, &hook, || {
            marked = true;
            Ok(())
        })
        .is_err());
        assert!(!marked);
        assert_eq!(db.open_tree(OLD_LOG_TREE).unwrap().len(), 5_000);
        // The next try starts from scratch and completes.
        let new = upgrade(&db, 2, 0, &None, || Ok(())).unwrap();
        // Each record, its seq entry, and the tenant's head.
        assert_eq!(new.len(), 10_001);
    }
}
