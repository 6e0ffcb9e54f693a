//! The read API the planner and facets drive, in terms of positions: a tenant's records in a
//! position range, the merged positions of a set of index values, counts of either, and the
//! distinct values of an index by skip-scan. Everything engine-specific about reading stays
//! here, so `query/` names no engine type.
//!
//! None of these charge a work budget (budgets belong to `query/`): each hands its caller one
//! step at a time (an iterator item, a callback per list or per value), and the caller charges
//! the running budget per step.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Bound;

use super::keys::{self, Pos};
use super::postings::{self, Postings};
use super::{Record, Store};
use crate::error::Result;

/// A key range walked in one direction, without boxing: every scan is built once per query and
/// stepped per record, so the direction is a branch, not a virtual call.
pub(crate) struct Directed {
    iter: sled::Iter,
    asc: bool,
}

impl Directed {
    pub(crate) fn new(iter: sled::Iter, asc: bool) -> Directed {
        Directed { iter, asc }
    }
}

impl Iterator for Directed {
    type Item = sled::Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.asc {
            self.iter.next()
        } else {
            self.iter.next_back()
        }
    }
}

/// A tenant's records within a position range, in scan order ([`Store::records_in`]).
pub(crate) struct Records {
    iter: Directed,
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let kv = self.iter.next()?;
        Some(kv.map_err(Into::into).and_then(|(k, v)| {
            let pos = keys::suffix_pos(&k)?;
            Ok(Record::new(pos, v))
        }))
    }
}

/// The positions of a tenant's `seq`s in a range, in `seq` order ([`Store::seq_positions`]).
pub(crate) struct SeqPositions {
    iter: Directed,
}

impl Iterator for SeqPositions {
    type Item = Result<Pos>;

    fn next(&mut self) -> Option<Result<Pos>> {
        let kv = self.iter.next()?;
        Some(kv.map_err(Into::into).and_then(|(_, v)| Pos::decode(&v)))
    }
}

/// One range's current head in the merge heap, ordered so the next position in scan order is on top.
struct Head {
    pos: Pos,
    src: usize,
    asc: bool,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        let c = self.pos.cmp(&other.pos).then(self.src.cmp(&other.src));
        if self.asc {
            c.reverse()
        } else {
            c
        }
    }
}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}

/// A k-way merge of index ranges (each a value's posting lists) by `(time, id)`, each position
/// once ([`Store::positions`]).
pub(crate) struct Positions {
    sources: Vec<Postings>,
    heap: BinaryHeap<Head>,
    asc: bool,
    last: Option<Pos>,
}

impl Positions {
    fn advance(&mut self, src: usize) -> Result<()> {
        if let Some(pos) = self.sources[src].next_pos()? {
            self.heap.push(Head {
                pos,
                src,
                asc: self.asc,
            });
        }
        Ok(())
    }

    /// The next position in scan order, or `None` at the end.
    pub(crate) fn next_pos(&mut self) -> Result<Option<Pos>> {
        while let Some(Head { pos, src, .. }) = self.heap.pop() {
            self.advance(src)?;
            if self.last == Some(pos) {
                continue;
            }
            self.last = Some(pos);
            return Ok(Some(pos));
        }
        Ok(None)
    }
}

impl Store {
    /// The tenant's records within `lo..hi`, ascending when `asc`, else descending.
    pub(crate) fn records_in(
        &self,
        tenant: u32,
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        asc: bool,
    ) -> Records {
        let range = keys::suffix_range(&keys::record_prefix(tenant), lo, hi);
        Records {
            iter: Directed::new(self.log.range(range), asc),
        }
    }

    /// How many records the tenant has within `lo..hi`, reading keys only. `per_record` runs
    /// before each record is counted (the caller's budget: an error from it stops the count).
    /// The positions of the records appended as `seq`s `lo..hi` (`hi` exclusive) to a tenant's
    /// log, ascending or descending: one range read of the seq entries.
    pub(crate) fn seq_positions(&self, tenant: u32, lo: u64, hi: u64, asc: bool) -> SeqPositions {
        let range = (
            Bound::Included(keys::seq_key(tenant, lo)),
            Bound::Excluded(keys::seq_key(tenant, hi)),
        );
        SeqPositions {
            iter: Directed::new(self.log.range(range), asc),
        }
    }

    pub(crate) fn count_records(
        &self,
        tenant: u32,
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        mut per_record: impl FnMut() -> Result<()>,
    ) -> Result<u64> {
        let range = keys::suffix_range(&keys::record_prefix(tenant), lo, hi);
        let mut n = 0u64;
        for kv in self.log.range(range) {
            per_record()?;
            kv?;
            n += 1;
        }
        Ok(n)
    }

    /// The positions listed under any of `prefixes` (index value prefixes, distinct) within
    /// `lo..hi`, merged in scan order, each once.
    pub(crate) fn positions(
        &self,
        prefixes: &[Vec<u8>],
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        asc: bool,
    ) -> Result<Positions> {
        let mut m = Positions {
            sources: Vec::with_capacity(prefixes.len()),
            heap: BinaryHeap::new(),
            asc,
            last: None,
        };
        for (src, p) in prefixes.iter().enumerate() {
            m.sources.push(Postings::new(&self.log, p, lo, hi, asc));
            m.advance(src)?;
        }
        Ok(m)
    }

    /// How many positions are listed under the index value `prefix` within `lo..hi`, adding
    /// list lengths without decoding where it can. `per_list` runs before each list is read.
    pub(crate) fn count_positions(
        &self,
        prefix: &[u8],
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        per_list: impl FnMut() -> Result<()>,
    ) -> Result<u64> {
        postings::count(&self.log, prefix, lo, hi, per_list)
    }

    /// Calls `f` with each distinct value of one escaped key component among keys starting with
    /// `scan_prefix`, and the key prefix ending with that value, in key order, skipping from one
    /// value to the next (one seek per value). `value_start` is the offset of the component in
    /// the key. Returns `false` (having called `f` `max` times) if there are more than `max`
    /// values.
    pub(crate) fn for_each_distinct_value(
        &self,
        scan_prefix: &[u8],
        value_start: usize,
        max: usize,
        mut f: impl FnMut(Vec<u8>, Vec<u8>) -> Result<()>,
    ) -> Result<bool> {
        let mut seen = 0usize;
        let mut from = scan_prefix.to_vec();
        loop {
            let Some(kv) = self.log.range(from.clone()..).next() else {
                break;
            };
            let (k, _) = kv?;
            if !k.starts_with(scan_prefix) {
                break;
            }
            let (value, rest) = keys::take_escaped(&k[value_start..])?;
            let value_prefix = k[..k.len() - rest.len()].to_vec();
            if seen == max {
                return Ok(false);
            }
            seen += 1;
            let next = keys::prefix_successor(&value_prefix);
            f(value, value_prefix)?;
            match next {
                Some(n) => from = n,
                None => break,
            }
        }
        Ok(true)
    }

    /// Whether any key starts with `prefix`: one seek.
    pub(crate) fn any_key_under(&self, prefix: &[u8]) -> Result<bool> {
        Ok(self.log.scan_prefix(prefix).next().transpose()?.is_some())
    }

    /// Every key of the store (for the benchmarks' keys-per-event figure).
    #[cfg(feature = "bench")]
    pub(crate) fn key_count(&self) -> usize {
        self.log.len()
    }

    /// The benchmarks' ceiling: the tenant's record range walked without decoding anything.
    /// Returns the records and the bytes of their keys and values.
    #[cfg(feature = "bench")]
    pub(crate) fn raw_record_scan(&self, tenant: u32, asc: bool) -> Result<(u64, u64)> {
        let range = keys::suffix_range(
            &keys::record_prefix(tenant),
            Bound::Unbounded,
            Bound::Unbounded,
        );
        let (mut n, mut bytes) = (0u64, 0u64);
        for kv in Directed::new(self.log.range(range), asc) {
            let (k, v) = kv?;
            n += 1;
            bytes += u64::try_from(k.len() + v.len()).unwrap_or(u64::MAX);
        }
        Ok((n, bytes))
    }
}
