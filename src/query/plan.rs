//! The planner: picks one source of candidate positions for a filter (an id list, a set of index
//! ranges merged by `(time, id)`, or the tenant's records), scans it in order from a cursor
//! position, and keeps what `filter::matches` accepts.
//!
//! **Invariant:** every candidate passes through `filter::matches`, so the choice of source only
//! changes speed, never the answer. A source is `exact` when it alone decides membership; then
//! counts read keys and decode nothing.

use std::ops::{Bound, RangeBounds};

use uuid::Uuid;

use super::budget::{self, what};
use super::filter::{self, Window};
use super::{Field, Filter, Op, Operand, Order};
use crate::error::Result;
use crate::store::keys::{self, IndexKind, Pos};
use crate::store::{ActivityRef, Record, Store, TenantInfo};

/// Most index ranges one query merges; past it the planner picks another source.
const MAX_RANGES: usize = 1000;

#[derive(Debug)]
enum Source {
    /// Nothing can match.
    Empty,
    /// Positions of listed ids, ascending.
    Ids(Vec<Pos>),
    /// Index value prefixes, distinct; each covers one value's entries in time order.
    Ranges(Vec<Vec<u8>>),
    /// Every record of the tenant.
    Records,
}

#[derive(Debug)]
pub(crate) struct Plan<'f> {
    tenant: u32,
    filter: &'f Filter,
    /// The filter's `contains` operands, lowercased once here rather than per candidate.
    folded: filter::Folded,
    window: Window,
    source: Source,
    exact: bool,
    /// The tenant's time zone (to plan again, see `count`).
    tz: chrono_tz::Tz,
    /// The index watermark, read before anything else: records past it are read from the log
    /// (`pending`), those up to it are in the indexes the plan read (its ranges come from
    /// distinct values read afterwards).
    indexed: u64,
}

/// The values a filter allows for one field, from its list or from a `q` equals/in condition.
/// Returns the values and how many constraints they stand for.
fn values_of(list: &[String], f: &Filter, field: &Field) -> Option<Vec<String>> {
    if !list.is_empty() {
        return Some(list.to_vec());
    }
    f.conditions
        .iter()
        .filter(|c| &c.field == field)
        .find_map(|c| match &c.op {
            Op::Equals(Operand::Str(s)) => Some(vec![s.clone()]),
            Op::In(v) => Some(
                v.iter()
                    .filter_map(|o| match o {
                        Operand::Str(s) => Some(s.clone()),
                        Operand::Time(_) | Operand::Int(_) => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
}

/// How many separate constraints a filter has, not counting what its time window expresses.
fn constraint_count(f: &Filter) -> usize {
    let lists = [
        f.ids.len(),
        f.actions.len(),
        f.resource_types.len(),
        f.resource_ids.len(),
        f.actor_types.len(),
        f.actor_ids.len(),
        f.actor_names.len(),
        f.target_types.len(),
        f.target_ids.len(),
    ];
    let window_only = |c: &super::Condition| {
        c.field == Field::CreatedAt
            && matches!(
                c.op,
                Op::Equals(_) | Op::Gt(_) | Op::Gte(_) | Op::Lt(_) | Op::Lte(_) | Op::Between(..)
            )
    };
    lists.iter().filter(|n| **n > 0).count()
        + f.context.len()
        + f.conditions.iter().filter(|c| !window_only(c)).count()
}

/// A distinct value and the key prefix of its entries.
pub(crate) type ValuePrefix = (Vec<u8>, Vec<u8>);

/// Distinct values of one escaped key component among keys starting with `scan_prefix`, found by
/// skipping from one value to the next (one seek per value; `Store::for_each_distinct_value`).
/// `value_start` is the offset of the component in the key. Returns `None` past `max` values.
/// Each value found is charged to the running budget as one entry examined, as `what`.
pub(crate) fn distinct_values(
    store: &Store,
    scan_prefix: &[u8],
    value_start: usize,
    max: usize,
    what: &'static str,
) -> Result<Option<Vec<ValuePrefix>>> {
    let mut out = Vec::new();
    let complete = store.for_each_distinct_value(scan_prefix, value_start, max, |v, p| {
        budget::charge(1, what)?;
        out.push((v, p));
        Ok(())
    })?;
    Ok(complete.then_some(out))
}

impl<'f> Plan<'f> {
    pub(crate) fn new(store: &Store, info: &TenantInfo, f: &'f Filter) -> Result<Plan<'f>> {
        // First: an activity folded after this read is read as pending, whatever the index
        // said when the plan expanded a prefix or a type (it may have had no range for it).
        let indexed = store.indexed_through(info.no)?;
        Plan::at(store, info.no, info.tz, f, indexed)
    }

    /// The plan for the indexes as they are with watermark `indexed` or later.
    fn at(
        store: &Store,
        tenant: u32,
        tz: chrono_tz::Tz,
        f: &'f Filter,
        indexed: u64,
    ) -> Result<Plan<'f>> {
        let window = filter::window(f, tz);
        let total = constraint_count(f);
        let plan = |source, used: usize| Plan {
            tenant,
            filter: f,
            folded: filter::Folded::new(f),
            window,
            source,
            exact: used == total,
            tz,
            indexed,
        };
        if window.is_empty() {
            return Ok(plan(Source::Empty, total));
        }

        // An id list beats any index.
        let ids: Option<Vec<Uuid>> = if !f.ids.is_empty() {
            Some(f.ids.clone())
        } else {
            values_of(&[], f, &Field::Id)
                .map(|v| v.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
        };
        if let Some(ids) = ids {
            let mut found = Vec::new();
            for id in ids {
                budget::charge(1, what::PLAN)?;
                if let Some(pos) = store.locate(tenant, id)? {
                    if window.contains(pos.time) {
                        found.push(pos);
                    }
                }
            }
            found.sort();
            found.dedup();
            return Ok(plan(Source::Ids(found), 1));
        }

        let prefixes =
            |kind: IndexKind, a: &[String], b: Option<&[String]>| -> Option<Vec<Vec<u8>>> {
                let b_len = b.map_or(1, <[String]>::len);
                if a.len().saturating_mul(b_len) > MAX_RANGES {
                    return None;
                }
                let mut out = Vec::new();
                for x in a {
                    match b {
                        None => out.push(keys::index_value_prefix(tenant, kind, &[x])),
                        Some(b) => {
                            for y in b {
                                out.push(keys::index_value_prefix(tenant, kind, &[x, y]));
                            }
                        }
                    }
                }
                // A repeated IN value must not become a repeated range: key-only counts sum ranges.
                out.sort();
                out.dedup();
                Some(out)
            };

        // Composite (type, id) indexes first: they are the most selective.
        let pairs = [
            (
                IndexKind::Resource,
                (&f.resource_types, Field::ResourceType),
                (&f.resource_ids, Field::ResourceId),
            ),
            (
                IndexKind::Actor,
                (&f.actor_types, Field::ActorType),
                (&f.actor_ids, Field::ActorId),
            ),
            (
                IndexKind::Target,
                (&f.target_types, Field::TargetType),
                (&f.target_ids, Field::TargetId),
            ),
        ];
        for (kind, (tl, tf), (il, ifld)) in pairs {
            let Some(ids) = values_of(il, f, &ifld) else {
                continue;
            };
            if let Some(types) = values_of(tl, f, &tf) {
                if let Some(p) = prefixes(kind, &types, Some(&ids)) {
                    return Ok(plan(Source::Ranges(p), 2));
                }
            } else if let Some(types) =
                leading_values(store, tenant, kind, MAX_RANGES / ids.len().max(1))?
            {
                // An id without its type: skip-scan the index's distinct types (few, one seek
                // each) and look the id up under every one of them.
                if let Some(p) = prefixes(kind, &types, Some(&ids)) {
                    return Ok(plan(Source::Ranges(p), 1));
                }
            }
        }

        if let Some((k, v)) = f.context.first() {
            let p = keys::index_value_prefix(tenant, IndexKind::Context, &[k, v]);
            return Ok(plan(Source::Ranges(vec![p]), 1));
        }
        for c in &f.conditions {
            if let (Field::Context(k), Op::Equals(Operand::Str(v))) = (&c.field, &c.op) {
                let p = keys::index_value_prefix(tenant, IndexKind::Context, &[k, v]);
                return Ok(plan(Source::Ranges(vec![p]), 1));
            }
        }

        if let Some(names) = values_of(&f.actor_names, f, &Field::ActorName) {
            if let Some(p) = prefixes(IndexKind::ActorName, &names, None) {
                return Ok(plan(Source::Ranges(p), 1));
            }
        }

        if let Some(r) = action_ranges(store, tenant, f)? {
            return Ok(plan(Source::Ranges(r), 1));
        }

        for (kind, list, field) in [
            (
                IndexKind::ResourceType,
                &f.resource_types,
                Field::ResourceType,
            ),
            (IndexKind::ActorType, &f.actor_types, Field::ActorType),
        ] {
            if let Some(v) = values_of(list, f, &field) {
                if let Some(p) = prefixes(kind, &v, None) {
                    return Ok(plan(Source::Ranges(p), 1));
                }
            }
        }
        Ok(plan(Source::Records, 0))
    }

    /// The scan bounds: the window, narrowed to after the cursor position in scan order.
    fn bounds(&self, order: Order, after: Option<Pos>) -> (Bound<Pos>, Bound<Pos>) {
        let lo_pos = Pos {
            time: self.window.lo,
            id: Uuid::nil(),
        };
        let mut lo = Bound::Included(lo_pos);
        let mut hi = if self.window.hi == i64::MAX {
            Bound::Unbounded
        } else {
            Bound::Excluded(Pos {
                time: self.window.hi,
                id: Uuid::nil(),
            })
        };
        if let Some(a) = after {
            match order {
                Order::Asc if a >= lo_pos => lo = Bound::Excluded(a),
                Order::Desc => {
                    let tighter = match hi {
                        Bound::Excluded(h) => a < h,
                        _ => true,
                    };
                    if tighter {
                        hi = Bound::Excluded(a);
                    }
                }
                Order::Asc | Order::Seq => {}
            }
        }
        (lo, hi)
    }

    /// The `seq` range the filter's `seq` conditions allow: `lo` inclusive, `hi` exclusive.
    fn seq_bounds(&self) -> (u64, u64) {
        let (mut lo, mut hi) = (1u64, u64::MAX);
        for c in &self.filter.conditions {
            if c.field != Field::Seq {
                continue;
            }
            let n = |o: &Operand| match o {
                Operand::Int(n) => *n,
                _ => 0,
            };
            match &c.op {
                Op::Equals(o) => {
                    lo = lo.max(n(o));
                    hi = hi.min(n(o).saturating_add(1));
                }
                Op::Gt(o) => lo = lo.max(n(o).saturating_add(1)),
                Op::Gte(o) => lo = lo.max(n(o)),
                Op::Lt(o) => hi = hi.min(n(o)),
                Op::Lte(o) => hi = hi.min(n(o).saturating_add(1)),
                Op::Between(a, b) => {
                    lo = lo.max(n(a));
                    hi = hi.min(n(b).saturating_add(1));
                }
                _ => {}
            }
        }
        (lo, hi)
    }

    /// [`Plan::run`] in the log's order: ascending `seq` when `asc`, else descending, strictly
    /// after the `seq` `after` in that direction. The source is the tenant's seq entries within
    /// the filter's `seq` conditions, one range read; every other filter is checked on the
    /// record, as for any source.
    pub(crate) fn run_seq(
        &self,
        store: &Store,
        asc: bool,
        after: Option<u64>,
        what: &'static str,
        mut f: impl FnMut(&Record, &ActivityRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        if matches!(self.source, Source::Empty) {
            return Ok(());
        }
        let (mut lo, mut hi) = self.seq_bounds();
        match after {
            Some(a) if asc => lo = lo.max(a.saturating_add(1)),
            Some(a) => hi = hi.min(a),
            None => {}
        }
        if lo >= hi {
            return Ok(());
        }
        for pos in store.seq_positions(self.tenant, lo, hi, asc) {
            budget::charge(1, what)?;
            let pos = pos?;
            // Gone: purged between reading the entry and the record (see `run`).
            let Some(r) = store.stored_at(self.tenant, pos)? else {
                continue;
            };
            let a = r.view()?;
            if filter::matches(self.filter, &self.folded, &self.window, &a) && !f(&r, &a)? {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with each match in `order`, strictly after `after`, until it returns `Ok(false)`.
    /// A match comes as its stored record and that record read in place. Every record read is
    /// charged to the running budget as `what`. (`Order::Seq` reads the log's order, where
    /// `after` carries a `seq` in its time.)
    pub(crate) fn run(
        &self,
        store: &Store,
        order: Order,
        after: Option<Pos>,
        what: &'static str,
        mut f: impl FnMut(&Record, &ActivityRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        if order == Order::Seq {
            let after = after.map(|p| u64::try_from(p.time).unwrap_or(0));
            return self.run_seq(store, true, after, what, f);
        }
        let (lo, hi) = self.bounds(order, after);
        let mut emit = |r: Record| -> Result<bool> {
            let a = r.view()?;
            if filter::matches(self.filter, &self.folded, &self.window, &a) {
                f(&r, &a)
            } else {
                Ok(true)
            }
        };
        match &self.source {
            Source::Empty => Ok(()),
            Source::Ids(list) => {
                let in_bounds = |p: &Pos| (lo, hi).contains(p);
                let mut list: Vec<Pos> = list.iter().copied().filter(in_bounds).collect();
                if order == Order::Desc {
                    list.reverse();
                }
                for pos in list {
                    budget::charge(1, what)?;
                    if let Some(a) = store.stored_at(self.tenant, pos)? {
                        if !emit(a)? {
                            break;
                        }
                    }
                }
                Ok(())
            }
            Source::Records => {
                for r in store.records_in(self.tenant, lo, hi, order == Order::Asc) {
                    budget::charge(1, what)?;
                    if !emit(r?)? {
                        break;
                    }
                }
                Ok(())
            }
            Source::Ranges(prefixes) => {
                let asc = order == Order::Asc;
                // The pending records (not in the indexes yet) are those past the watermark
                // read before the plan read anything of the index: every record at or below it
                // is in the index, under a value the plan saw, whenever either is read later (a
                // fold writes entries and watermark in one batch, and the watermark only moves
                // up), and every one above it is in `pending`. A fold since then puts a record
                // in both; the merge meets its two copies one after the other and keeps one.
                let mut pending = self
                    .pending(store, lo, hi, asc, what)?
                    .into_iter()
                    .peekable();
                let mut merge = store.positions(prefixes, lo, hi, asc)?;
                let mut next = merge.next_pos()?;
                loop {
                    let first_pending = match (pending.peek(), next) {
                        (None, None) => break,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (Some(r), Some(p)) => {
                            if asc {
                                r.pos() <= p
                            } else {
                                r.pos() >= p
                            }
                        }
                    };
                    let r = if first_pending {
                        let Some(r) = pending.next() else { break };
                        if next == Some(r.pos()) {
                            next = merge.next_pos()?;
                        }
                        r
                    } else {
                        let Some(pos) = next else { break };
                        next = merge.next_pos()?;
                        budget::charge(1, what)?;
                        // A position whose record is gone was removed by a retention purge
                        // between reading the index and reading the record (a fold writes a
                        // record's entries in one batch, a purge removes record and entries in
                        // one batch; only this read sees the two at different moments). Skip
                        // it, as a read that started a moment later would. Real orphans are
                        // `verify`'s to report.
                        let Some(r) = store.stored_at(self.tenant, pos)? else {
                            continue;
                        };
                        r
                    };
                    if !emit(r)? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// The exact number of matches.
    pub(crate) fn count(&self, store: &Store) -> Result<u64> {
        if !(self.exact && matches!(self.source, Source::Ranges(_))) {
            return self.count_still(store);
        }
        // An exact count of ranges adds list lengths to the pending matches, with no fold in
        // between (which would count one twice), from the watermark the ranges were planned
        // at: a fold since then may have given the index values the ranges lack, so then the
        // plan is made again, with the index held still.
        let _still = store.index_still();
        let now = store.indexed_through(self.tenant)?;
        if now == self.indexed {
            return self.count_still(store);
        }
        Plan::at(store, self.tenant, self.tz, self.filter, now)?.count_still(store)
    }

    /// [`Plan::count`] for a plan whose ranges, if it is exact, were planned at the current
    /// watermark with the index held still since.
    fn count_still(&self, store: &Store) -> Result<u64> {
        if !self.exact {
            let mut n = 0u64;
            self.run(store, Order::Asc, None, what::TOTAL, |_, _| {
                n += 1;
                Ok(true)
            })?;
            return Ok(n);
        }
        let (lo, hi) = self.bounds(Order::Asc, None);
        match &self.source {
            Source::Empty => Ok(0),
            Source::Ids(list) => Ok(list.len() as u64),
            Source::Records => {
                store.count_records(self.tenant, lo, hi, || budget::charge(1, what::TOTAL))
            }
            // `count_positions` adds list lengths without decoding; the budget is charged once
            // per list it reads. The pending records are not in the lists: counted one by one.
            Source::Ranges(prefixes) => {
                let pending = self.pending(store, lo, hi, true, what::TOTAL)?.len() as u64;
                prefixes
                    .iter()
                    .map(|p| store.count_positions(p, lo, hi, || budget::charge(1, what::TOTAL)))
                    .sum::<Result<u64>>()
                    .map(|n| n + pending)
            }
        }
    }

    /// The tenant's pending records (appended, not indexed yet: past the index watermark the
    /// plan was made at) within `lo..hi` that pass the filter, in scan order. Each record read is charged as
    /// `what`; there are at most `Options::max_pending` and one batch of them.
    fn pending(
        &self,
        store: &Store,
        lo: Bound<Pos>,
        hi: Bound<Pos>,
        asc: bool,
        what: &'static str,
    ) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for pos in store.seq_positions(self.tenant, self.indexed.saturating_add(1), u64::MAX, true)
        {
            budget::charge(1, what)?;
            let pos = pos?;
            if !(lo, hi).contains(&pos) {
                continue;
            }
            // Gone: purged since the seq entry was read.
            let Some(r) = store.stored_at(self.tenant, pos)? else {
                continue;
            };
            if filter::matches(self.filter, &self.folded, &self.window, &r.view()?) {
                out.push(r);
            }
        }
        out.sort_by_key(Record::pos);
        if !asc {
            out.reverse();
        }
        Ok(out)
    }
}

/// The distinct first components (types) of a composite index, or `None` past `max` of them.
fn leading_values(
    store: &Store,
    tenant: u32,
    kind: IndexKind,
    max: usize,
) -> Result<Option<Vec<String>>> {
    let prefix = keys::index_kind_prefix(tenant, kind);
    let Some(values) = distinct_values(store, &prefix, prefix.len(), max, what::PLAN)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(values.len());
    for (v, _) in values {
        out.push(
            String::from_utf8(v)
                .map_err(|_| crate::Error::Corrupt("index value is not UTF-8".into()))?,
        );
    }
    Ok(Some(out))
}

/// The index ranges for the action filter: one per exact value, and one per distinct stored
/// value under each prefix (`integration_*`, or a `startsWith` condition).
///
/// Patterns are normalized first: a repeated value or prefix, and anything a shorter prefix
/// already covers, is dropped, so `action=*,*,…` costs one expansion. More than [`MAX_RANGES`]
/// ranges after expansion is an error naming the filter, not a silent full scan.
fn action_ranges(store: &Store, tenant: u32, f: &Filter) -> Result<Option<Vec<Vec<u8>>>> {
    let mut field = "action";
    let mut patterns: Vec<(String, bool)> = f
        .actions
        .iter()
        .map(|a| match a.strip_suffix('*') {
            Some(p) => (p.to_owned(), true),
            None => (a.clone(), false),
        })
        .collect();
    if patterns.is_empty() {
        field = "q.action";
        if let Some(v) = values_of(&[], f, &Field::Action) {
            patterns = v.into_iter().map(|a| (a, false)).collect();
        } else if let Some(p) = f.conditions.iter().find_map(|c| match (&c.field, &c.op) {
            (Field::Action, Op::StartsWith(p)) => Some(p.clone()),
            _ => None,
        }) {
            patterns.push((p, true));
        }
    }
    if patterns.is_empty() {
        return Ok(None);
    }
    let patterns = normalize_patterns(patterns);
    let too_many = || {
        crate::Error::invalid(
            field,
            format!(
                "the action values and prefixes match more than {MAX_RANGES} distinct actions; \
                 use longer prefixes"
            ),
        )
    };
    let mut out = Vec::new();
    for (p, is_prefix) in patterns {
        if !is_prefix {
            out.push(keys::index_value_prefix(tenant, IndexKind::Action, &[&p]));
            continue;
        }
        let kind_prefix = keys::index_kind_prefix(tenant, IndexKind::Action);
        let mut scan = kind_prefix.clone();
        keys::push_escaped_open(&mut scan, &p);
        let room = MAX_RANGES.saturating_sub(out.len());
        match distinct_values(store, &scan, kind_prefix.len(), room, what::PLAN)? {
            Some(values) => out.extend(values.into_iter().map(|(_, prefix)| prefix)),
            None => return Err(too_many()),
        }
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_RANGES {
        return Err(too_many());
    }
    Ok(Some(out))
}

/// Deduplicates action patterns (`(text, is_prefix)`) and drops every pattern a kept prefix
/// covers. Prefixes and values come out sorted, prefixes first.
///
/// In sorted order, a string lies between any prefix of it and itself, and everything in between
/// shares that prefix; so the greatest kept prefix not above a pattern is the only one that can
/// cover it.
fn normalize_patterns(patterns: Vec<(String, bool)>) -> Vec<(String, bool)> {
    let (mut prefixes, mut values): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for (p, is_prefix) in patterns {
        if is_prefix {
            prefixes.push(p);
        } else {
            values.push(p);
        }
    }
    prefixes.sort();
    prefixes.dedup();
    values.sort();
    values.dedup();
    let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        if !kept.last().is_some_and(|q| p.starts_with(q.as_str())) {
            kept.push(p);
        }
    }
    let covered = |v: &str| {
        let i = kept.partition_point(|q| q.as_str() <= v);
        i > 0 && v.starts_with(kept[i - 1].as_str())
    };
    values.retain(|v| !covered(v));
    kept.into_iter()
        .map(|p| (p, true))
        .chain(values.into_iter().map(|v| (v, false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(s, p)| ((*s).to_owned(), *p)).collect()
    }

    #[test]
    fn action_patterns_are_deduplicated_and_covered_ones_dropped() {
        // 1,000 copies of `*` are one prefix that covers everything.
        let stars = vec![(String::new(), true); 1000];
        assert_eq!(normalize_patterns(stars), pats(&[("", true)]));
        assert_eq!(
            normalize_patterns(pats(&[
                ("ab", true),
                ("abc", true),
                ("ac", true),
                ("ab.x", false),
                ("b", false),
                ("b", false),
                ("a", false),
            ])),
            pats(&[("ab", true), ("ac", true), ("a", false), ("b", false)])
        );
        // A prefix covered through one that is itself dropped.
        assert_eq!(
            normalize_patterns(pats(&[
                ("a", true),
                ("a0", true),
                ("ab", true),
                ("abc", false)
            ])),
            pats(&[("a", true)])
        );
    }
}
