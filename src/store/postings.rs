//! Index entries as posting lists: one sled key holds every position one append (or one retention
//! rewrite) gives one index value within one time bucket.
//!
//! An entry's key is `value prefix ++ suffix(first)` (the list's smallest position, the same
//! suffix a single entry has); its value is the rest of the list, ascending, 24 plain bytes each
//! (`Pos::encode`: values are not keys, so they need no grouping). Every
//! position of a list lies in the bucket of its first (`keys::bucket_start`), so lists of
//! different buckets never interleave: a scan reads one bucket's lists, sorts their positions,
//! and moves on. A list of one has an empty value, exactly the shape of format 1's one entry per key.
//!
//! Why: sled 0.34 charges a fixed cost per key written (~6.5–12 µs measured here), and one key
//! per index per event was 85–90% of ingest time. A batch of 1,000 events shares one key per distinct value and
//! bucket instead (BENCHMARKS.md has the counts).
//!
//! **Invariants** (checked by `verify`): positions are unique across all lists of one value
//! prefix; within a list they ascend strictly and share the first's bucket.

use std::ops::{Bound, RangeBounds};

use sled::IVec;

use crate::error::{Error, Result};
use crate::store::keys::{self, Pos, POS_LEN};
use crate::store::scan::Directed;

/// The positions of one list: `first` (from the key) and the rest (the value), validated.
pub(crate) fn decode(first: Pos, rest: &[u8]) -> Result<Vec<Pos>> {
    if !rest.len().is_multiple_of(POS_LEN) {
        return Err(Error::Corrupt(format!(
            "posting list value of {} bytes",
            rest.len()
        )));
    }
    let mut out = Vec::with_capacity(1 + rest.len() / POS_LEN);
    out.push(first);
    for chunk in rest.chunks_exact(POS_LEN) {
        let p = Pos::decode(chunk)?;
        let prev = out.last().copied().unwrap_or(first);
        if p <= prev || !keys::same_bucket(p.time, first.time) {
            return Err(Error::Corrupt(
                "posting list out of order or across buckets".into(),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// The value of a list whose first position is in the key: the other positions, ascending.
pub(crate) fn encode_rest(rest: &[Pos]) -> Vec<u8> {
    let mut v = Vec::with_capacity(rest.len() * POS_LEN);
    for p in rest {
        v.extend_from_slice(&p.encode());
    }
    v
}

/// Adds lists for `entries` (value prefix, position) to `batch`: one key per distinct prefix and
/// bucket. Positions must be new (not in any stored list of their prefix) and distinct.
pub(crate) fn insert_grouped(batch: &mut sled::Batch, mut entries: Vec<(Vec<u8>, Pos)>) {
    entries.sort_unstable();
    let mut i = 0;
    while i < entries.len() {
        let (prefix, first) = &entries[i];
        let mut j = i + 1;
        while j < entries.len()
            && entries[j].0 == *prefix
            && keys::same_bucket(entries[j].1.time, first.time)
        {
            j += 1;
        }
        let rest: Vec<Pos> = entries[i + 1..j].iter().map(|e| e.1).collect();
        batch.insert(keys::list_key(prefix, *first), encode_rest(&rest));
        i = j;
    }
}

/// Adds to `batch` the rewrites that take `entries` (value prefix, position) out of their lists:
/// a list losing positions is removed and, if any remain, written again under its new first.
pub(crate) fn remove_grouped(
    log: &sled::Tree,
    batch: &mut sled::Batch,
    mut entries: Vec<(Vec<u8>, Pos)>,
) -> Result<()> {
    entries.sort_unstable();
    entries.dedup();
    let mut i = 0;
    while i < entries.len() {
        let prefix = entries[i].0.clone();
        let lo = entries[i].1;
        let mut j = i + 1;
        while j < entries.len()
            && entries[j].0 == prefix
            && keys::same_bucket(entries[j].1.time, lo.time)
        {
            j += 1;
        }
        let gone: Vec<Pos> = entries[i..j].iter().map(|e| e.1).collect();
        let hi = gone[gone.len() - 1];
        let range = range(&prefix, Bound::Included(lo), Bound::Included(hi));
        for kv in log.range(range) {
            let (k, v) = kv?;
            let list = decode(keys::suffix_pos(&k)?, &v)?;
            let kept: Vec<Pos> = list
                .iter()
                .copied()
                .filter(|p| gone.binary_search(p).is_err())
                .collect();
            if kept.len() == list.len() {
                continue;
            }
            batch.remove(k);
            if let Some((first, rest)) = kept.split_first() {
                batch.insert(keys::list_key(&prefix, *first), encode_rest(rest));
            }
        }
        i = j;
    }
    Ok(())
}

/// The key range holding every list of `prefix` that can hold a position in `lo..hi`: lists
/// start at most one bucket before what they hold, so the low end widens to its bucket's start.
pub(crate) fn range(
    prefix: &[u8],
    lo: Bound<Pos>,
    hi: Bound<Pos>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lo {
        Bound::Included(p) | Bound::Excluded(p) => Bound::Included(Pos {
            time: keys::bucket_start(p.time),
            id: uuid::Uuid::nil(),
        }),
        Bound::Unbounded => Bound::Unbounded,
    };
    keys::suffix_range(prefix, lo, hi)
}

/// How many positions of `prefix` lie in `lo..hi`. Lists wholly inside count by their length,
/// without decoding. `per_list` runs before each list is read: the caller's work budget, which
/// stops a count of millions of lists part way by returning an error.
pub(crate) fn count(
    log: &sled::Tree,
    prefix: &[u8],
    lo: Bound<Pos>,
    hi: Bound<Pos>,
    mut per_list: impl FnMut() -> Result<()>,
) -> Result<u64> {
    let bounds = (lo, hi);
    let mut n = 0u64;
    for kv in log.range(range(prefix, lo, hi)) {
        per_list()?;
        let (k, v) = kv?;
        let first = keys::suffix_pos(&k)?;
        if v.is_empty() {
            n += u64::from(bounds.contains(&first));
            continue;
        }
        let last = v
            .len()
            .checked_sub(POS_LEN)
            .filter(|_| v.len().is_multiple_of(POS_LEN))
            .ok_or_else(|| Error::Corrupt(format!("posting list value of {} bytes", v.len())))?;
        let last = Pos::decode(&v[last..])?;
        if bounds.contains(&first) && bounds.contains(&last) {
            n += 1 + (v.len() / POS_LEN) as u64;
        } else {
            n += decode(first, &v)?
                .iter()
                .filter(|p| bounds.contains(*p))
                .count() as u64;
        }
    }
    Ok(n)
}

/// Whether some list of `prefix` holds `pos`.
pub(crate) fn contains(log: &sled::Tree, prefix: &[u8], pos: Pos) -> Result<bool> {
    for kv in log.range(range(prefix, Bound::Included(pos), Bound::Included(pos))) {
        let (k, v) = kv?;
        if decode(keys::suffix_pos(&k)?, &v)?
            .binary_search(&pos)
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The positions of one value prefix within `lo..hi`, in scan order, one bucket at a time.
pub(crate) struct Postings {
    iter: Directed,
    bounds: (Bound<Pos>, Bound<Pos>),
    asc: bool,
    /// The current bucket's positions, next one last.
    buf: Vec<Pos>,
    /// A list read ahead from the next bucket.
    pending: Option<(Pos, IVec)>,
}

impl Postings {
    pub(crate) fn new(
        log: &sled::Tree,
        prefix: &[u8],
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        asc: bool,
    ) -> Postings {
        Postings {
            iter: Directed::new(log.range(range(prefix, lo, hi)), asc),
            bounds: (lo, hi),
            asc,
            buf: Vec::new(),
            pending: None,
        }
    }

    /// The next position in scan order.
    pub(crate) fn next_pos(&mut self) -> Result<Option<Pos>> {
        loop {
            if let Some(p) = self.buf.pop() {
                return Ok(Some(p));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn read(&mut self) -> Result<Option<(Pos, IVec)>> {
        if let Some(x) = self.pending.take() {
            return Ok(Some(x));
        }
        match self.iter.next() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some((keys::suffix_pos(&k)?, v)))
            }
        }
    }

    /// Loads the next bucket's positions into `buf`; `false` at the end.
    fn fill(&mut self) -> Result<bool> {
        let Some((first, v)) = self.read()? else {
            return Ok(false);
        };
        self.push_list(first, &v)?;
        let mut lists = 1;
        while let Some((next, v)) = self.read()? {
            if !keys::same_bucket(next.time, first.time) {
                self.pending = Some((next, v));
                break;
            }
            self.push_list(next, &v)?;
            lists += 1;
        }
        // `pop` takes from the end: the next position in scan order goes last.
        if lists > 1 || !self.asc {
            self.buf.sort_unstable();
            self.buf.dedup();
        }
        if self.asc {
            self.buf.reverse();
        }
        Ok(true)
    }

    fn push_list(&mut self, first: Pos, rest: &[u8]) -> Result<()> {
        if rest.is_empty() {
            if self.bounds.contains(&first) {
                self.buf.push(first);
            }
            return Ok(());
        }
        let bounds = self.bounds;
        self.buf.extend(
            decode(first, rest)?
                .into_iter()
                .filter(|p| bounds.contains(p)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    /// Odd ids are all 0xFF but for their last bytes: runs that format 2 keys carried.
    fn pos(time: i64, id: u128) -> Pos {
        let id = if id % 2 == 1 { u128::MAX - id } else { id };
        Pos {
            time,
            id: Uuid::from_u128(id),
        }
    }

    fn temp_tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("log").unwrap()
    }

    fn all(t: &sled::Tree, prefix: &[u8], lo: Bound<Pos>, hi: Bound<Pos>, asc: bool) -> Vec<Pos> {
        let mut p = Postings::new(t, prefix, lo, hi, asc);
        let mut out = Vec::new();
        while let Some(x) = p.next_pos().unwrap() {
            out.push(x);
        }
        out
    }

    fn bound(kind: u8, p: Pos) -> Bound<Pos> {
        match kind % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(p),
            _ => Bound::Excluded(p),
        }
    }

    /// Times spread over a few buckets, bucket edges and equal times included, around the worst
    /// times there are for sled's reverse iteration: the end of a 2^32 µs window, of a 2^48 µs
    /// window, and 1970 (just before it, time bytes are `7F FF FF FF …`). Format 2 keys held
    /// four 0xFF bytes there, and sled 0.34.7 walking backwards across such a key looped and
    /// panicked ("fucked up tree traversal"); format 3 keys never hold such a run.
    fn time_strategy() -> impl Strategy<Value = i64> {
        const W: i64 = 1 << keys::BUCKET_BITS;
        let bases = [1_700_000_000_000_000i64 >> 32 << 32, 1 << 48, 0];
        (
            prop::sample::select(bases.to_vec()),
            prop_oneof![
                (-3i64..3).prop_map(|b| b * W),
                (-3i64..3).prop_map(|b| b * W - 1),
                (-3_000_000i64..3_000_000),
                (-300i64..300),
            ],
        )
            .prop_map(|(base, off)| base + off)
    }

    proptest! {
        /// Whatever batches the positions arrived in and whatever was removed since, a scan
        /// yields exactly the stored positions within its bounds, in order, both ways, and
        /// `count` and `contains` agree with it.
        #[test]
        fn lists_behave_like_a_sorted_set(
            batches in prop::collection::vec(
                prop::collection::vec((time_strategy(), 0u128..50), 0..40), 1..6),
            removals in prop::collection::vec((time_strategy(), 0u128..50), 0..30),
            lo_kind in 0u8..3, lo in (time_strategy(), 0u128..50),
            hi_kind in 0u8..3, hi in (time_strategy(), 0u128..50),
        ) {
            let t = temp_tree();
            let prefix = b"\0\0\0\x01\x03\x01act\0\x01".to_vec();
            let other = b"\0\0\0\x01\x03\x01acu\0\x01".to_vec();
            let mut model = std::collections::BTreeSet::new();
            for b in batches {
                let mut batch = sled::Batch::default();
                let mut entries = Vec::new();
                for (time, id) in b {
                    let p = pos(time, id);
                    if model.insert(p) {
                        entries.push((prefix.clone(), p));
                        entries.push((other.clone(), p));
                    }
                }
                insert_grouped(&mut batch, entries);
                t.apply_batch(batch).unwrap();
            }
            let mut batch = sled::Batch::default();
            let gone: Vec<(Vec<u8>, Pos)> = removals
                .into_iter()
                .map(|(time, id)| (prefix.clone(), pos(time, id)))
                .filter(|(_, p)| model.remove(p))
                .collect();
            remove_grouped(&t, &mut batch, gone).unwrap();
            t.apply_batch(batch).unwrap();

            let (lo, hi) = (bound(lo_kind, pos(lo.0, lo.1)), bound(hi_kind, pos(hi.0, hi.1)));
            let want: Vec<Pos> = model.iter().copied().filter(|p| (lo, hi).contains(p)).collect();
            prop_assert_eq!(&all(&t, &prefix, lo, hi, true), &want);
            let mut rev = want.clone();
            rev.reverse();
            prop_assert_eq!(all(&t, &prefix, lo, hi, false), rev);
            prop_assert_eq!(count(&t, &prefix, lo, hi, || Ok(())).unwrap(), want.len() as u64);
            for p in &model {
                prop_assert!(contains(&t, &prefix, *p).unwrap());
            }
            prop_assert!(!contains(&t, &prefix, pos(0, 1000)).unwrap());
            for kv in t.iter() {
                let (k, v) = kv.unwrap();
                prop_assert!(decode(keys::suffix_pos(&k).unwrap(), &v).is_ok());
            }
        }

        #[test]
        fn decode_never_panics(first_time: i64, bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(pos(first_time, 1), &bytes);
        }
    }

    #[test]
    fn a_batch_shares_one_key_per_value_and_bucket() {
        let t = temp_tree();
        let mut batch = sled::Batch::default();
        let w = 1i64 << keys::BUCKET_BITS;
        let entries = (0..100u128)
            .map(|i| (b"p".to_vec(), pos(i64::try_from(i).unwrap() * w / 40, i)))
            .collect();
        insert_grouped(&mut batch, entries);
        t.apply_batch(batch).unwrap();
        // Times 0 .. 2.5 buckets: three lists.
        assert_eq!(t.len(), 3);
        assert_eq!(
            count(&t, b"p", Bound::Unbounded, Bound::Unbounded, || Ok(())).unwrap(),
            100
        );
    }

    /// A count of one value's lists is stoppable part way: `per_list` runs before every list,
    /// so a caller's budget ends a count over millions of lists (it used to be checked once per
    /// value, before the whole loop).
    #[test]
    fn a_count_stops_when_per_list_says_so() {
        let t = temp_tree();
        for i in 0..10i64 {
            let mut batch = sled::Batch::default();
            insert_grouped(
                &mut batch,
                vec![(b"p".to_vec(), pos(i << keys::BUCKET_BITS, 0))],
            );
            t.apply_batch(batch).unwrap();
        }
        let mut lists = 0;
        let r = count(&t, b"p", Bound::Unbounded, Bound::Unbounded, || {
            lists += 1;
            if lists > 3 {
                Err(Error::Cancelled)
            } else {
                Ok(())
            }
        });
        assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
        assert_eq!(lists, 4);
    }

    #[test]
    fn damaged_lists_are_errors() {
        let first = pos(10, 5);
        assert!(decode(first, &[0u8; 23]).is_err());
        assert!(decode(first, &pos(9, 5).encode()).is_err(), "before first");
        assert!(decode(first, &first.encode()).is_err(), "repeated");
        assert!(
            decode(first, &pos(1 << keys::BUCKET_BITS, 1).encode()).is_err(),
            "other bucket"
        );
        assert_eq!(decode(first, &pos(11, 0).encode()).unwrap().len(), 2);
    }
}
