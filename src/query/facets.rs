//! Facets: the distinct values of an indexed field with their counts, for filter dropdowns. Each
//! distinct value costs one seek plus a count of its posting lists within the time window; no record
//! is decoded.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Bound;

use uuid::Uuid;

use super::budget::{self, what};
use super::{filter, Filter, TimeBound};
use crate::error::{Error, Result};
use crate::store::keys::{self, IndexKind, Pos};
use crate::store::{ActivityRef, Store};

/// A field that facets can enumerate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FacetField {
    /// `action`.
    Action,
    /// `resource.type`.
    ResourceType,
    /// `actor.type`.
    ActorType,
    /// `actor.name`.
    ActorName,
    /// The values of one context key.
    Context(String),
}

impl FacetField {
    /// Parses `action`, `resource.type`, `actor.type`, `actor.name` or `context.KEY`.
    pub fn parse(s: &str) -> Result<FacetField> {
        Ok(match s {
            "action" => FacetField::Action,
            "resource.type" | "resource_type" => FacetField::ResourceType,
            "actor.type" | "actor_type" => FacetField::ActorType,
            "actor.name" | "actor_name" => FacetField::ActorName,
            _ => match s.strip_prefix("context.") {
                Some(k) if !k.is_empty() => FacetField::Context(k.to_owned()),
                _ => {
                    return Err(Error::invalid(
                        "field",
                        "must be action, resource.type, actor.type, actor.name or context.KEY",
                    ))
                }
            },
        })
    }
}

/// What to enumerate. Built with [`FacetRequest::new`] and its setters (fields may be added);
/// its fields can be read and changed directly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FacetRequest {
    /// The field whose values to list.
    pub field: FacetField,
    /// Only values starting with this.
    pub prefix: Option<String>,
    /// Only activities at or after this.
    pub since: Option<TimeBound>,
    /// Only activities before this (a date includes that whole day).
    pub until: Option<TimeBound>,
    /// Most values returned (the most frequent first). Memory is proportional to it, not to
    /// the number of distinct values.
    pub limit: usize,
}

impl FacetRequest {
    /// The 100 most frequent values of `field`, at any time.
    pub fn new(field: FacetField) -> FacetRequest {
        FacetRequest {
            field,
            prefix: None,
            since: None,
            until: None,
            limit: 100,
        }
    }

    /// Only values starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> FacetRequest {
        self.prefix = Some(prefix.into());
        self
    }

    /// Only activities at or after `bound`.
    #[must_use]
    pub fn since(mut self, bound: TimeBound) -> FacetRequest {
        self.since = Some(bound);
        self
    }

    /// Only activities before `bound` (a date includes that whole day).
    #[must_use]
    pub fn until(mut self, bound: TimeBound) -> FacetRequest {
        self.until = Some(bound);
        self
    }

    /// At most `limit` values, the most frequent first.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> FacetRequest {
        self.limit = limit;
        self
    }
}

/// One distinct value and how many activities in the window carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetValue {
    /// The value.
    pub value: String,
    /// How many activities in the window carry it.
    pub count: u64,
}

/// Distinct values enumerated before giving up.
const MAX_DISTINCT: usize = 100_000;

/// A counted value, ordered best first: higher count, then lower value.
#[derive(Debug, PartialEq, Eq)]
struct Ranked(FacetValue);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .count
            .cmp(&self.0.count)
            .then_with(|| self.0.value.cmp(&other.0.value))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `k` of a stream of values, holding at most `k` of them at a time.
struct TopK {
    k: usize,
    /// A max-heap of `Ranked`, so its top is the worst value kept.
    heap: BinaryHeap<Ranked>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024).saturating_add(1)),
        }
    }

    fn offer(&mut self, v: FacetValue) {
        if self.k == 0 {
            return;
        }
        let v = Ranked(v);
        if self.heap.len() < self.k {
            self.heap.push(v);
        } else if self.heap.peek().is_some_and(|worst| v < *worst) {
            self.heap.pop();
            self.heap.push(v);
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<FacetValue> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

impl Store {
    /// Distinct values of a field with their counts, most frequent first, ties by value.
    pub fn facets(&self, tenant: &str, req: &FacetRequest) -> Result<Vec<FacetValue>> {
        // Like `query`: a panic inside the engine becomes `Error::EnginePanic`.
        self.read_guard("facets", || self.facets_inner(tenant, req))
    }

    /// Whether any activity of the tenant carries the context key `key`: one seek.
    pub(crate) fn has_context_key(&self, tenant: &str, key: &str) -> Result<bool> {
        let info = self.tenant_info(tenant)?;
        let mut prefix = keys::index_kind_prefix(info.no, IndexKind::Context);
        keys::push_escaped(&mut prefix, key);
        self.read_guard("facets", || {
            let _still = self.index_still();
            if self.any_key_under(&prefix)? {
                return Ok(true);
            }
            let mut found = false;
            self.for_each_pending(info.no, |a| {
                found |= a.context.get(key).is_some();
                Ok(!found)
            })?;
            Ok(found)
        })
    }

    /// Calls `f` with each of the tenant's pending records (appended, not indexed yet), in
    /// `seq` order, until it returns `Ok(false)`; each is charged to the budget as a facet
    /// step. The caller holds `index_still`, so the set does not move into the indexes meanwhile.
    fn for_each_pending(
        &self,
        tenant: u32,
        mut f: impl FnMut(&ActivityRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let after = self.indexed_through(tenant)?;
        for pos in self.seq_positions(tenant, after.saturating_add(1), u64::MAX, true) {
            budget::charge(1, what::FACETS)?;
            let Some(r) = self.stored_at(tenant, pos?)? else {
                continue;
            };
            if !f(&r.view()?)? {
                break;
            }
        }
        Ok(())
    }

    fn facets_inner(&self, tenant: &str, req: &FacetRequest) -> Result<Vec<FacetValue>> {
        let info = self.tenant_info(tenant)?;
        let window = filter::window(
            &Filter {
                since: req.since,
                until: req.until,
                ..Default::default()
            },
            info.tz,
        );
        if window.is_empty() {
            return Ok(Vec::new());
        }
        let (kind, key) = match &req.field {
            FacetField::Action => (IndexKind::Action, None),
            FacetField::ResourceType => (IndexKind::ResourceType, None),
            FacetField::ActorType => (IndexKind::ActorType, None),
            FacetField::ActorName => (IndexKind::ActorName, None),
            FacetField::Context(k) => (IndexKind::Context, Some(k)),
        };
        let mut scan = keys::index_kind_prefix(info.no, kind);
        if let Some(k) = key {
            keys::push_escaped(&mut scan, k);
        }
        let value_start = scan.len();
        keys::push_escaped_open(&mut scan, req.prefix.as_deref().unwrap_or(""));
        let lo = Bound::Included(Pos {
            time: window.lo,
            id: Uuid::nil(),
        });
        let hi = if window.hi == i64::MAX {
            Bound::Unbounded
        } else {
            Bound::Excluded(Pos {
                time: window.hi,
                id: Uuid::nil(),
            })
        };
        // No fold between counting the pending records and the lists: it would count one twice.
        let _still = self.index_still();
        // The pending records' values, counted one by one (at most `max_pending` and a batch);
        // each is added to its value's count from the lists, or stands alone if no list has it.
        let mut pending: std::collections::BTreeMap<String, u64> = Default::default();
        let want = req.prefix.as_deref().unwrap_or("");
        self.for_each_pending(info.no, |a| {
            if !window.contains(a.time) {
                return Ok(true);
            }
            let value = match &req.field {
                FacetField::Action => Some(a.action),
                FacetField::ResourceType => Some(a.resource.kind),
                FacetField::ActorType => a.actor.as_ref().map(|x| x.kind),
                FacetField::ActorName => a.actor.as_ref().and_then(|x| x.name),
                FacetField::Context(k) => a.context.get(k),
            };
            if let Some(v) = value.filter(|v| v.starts_with(want)) {
                *pending.entry(v.to_owned()).or_insert(0) += 1;
            }
            Ok(true)
        })?;
        // Each value is counted as it is found and only the best `limit` are kept, so memory
        // is one page of values whatever the field's cardinality.
        let mut top = TopK::new(req.limit);
        let complete =
            self.for_each_distinct_value(&scan, value_start, MAX_DISTINCT, |value, prefix| {
                budget::charge(1, what::FACETS)?;
                budget::check()?;
                let count =
                    self.count_positions(&prefix, lo, hi, || budget::charge(1, what::FACETS))?;
                let value =
                    String::from_utf8(value).map_err(|_| Error::Corrupt("facet value".into()))?;
                let count = count + pending.remove(&value).unwrap_or(0);
                if count > 0 {
                    top.offer(FacetValue { value, count });
                }
                Ok(())
            })?;
        for (value, count) in pending {
            top.offer(FacetValue { value, count });
        }
        if !complete {
            return Err(Error::invalid(
                "field",
                format!("more than {MAX_DISTINCT} distinct values"),
            ));
        }
        Ok(top.into_sorted())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Keeping the best `k` as values stream by gives what sorting them all and taking `k`
        /// gives: most frequent first, ties by value.
        #[test]
        fn top_k_is_the_head_of_the_full_sort(
            counts in proptest::collection::btree_map("[a-d]{0,3}", 1u64..5, 0..40),
            k in 0usize..12,
        ) {
            let all: Vec<FacetValue> = counts
                .iter()
                .map(|(v, c)| FacetValue { value: v.clone(), count: *c })
                .collect();
            let mut top = TopK::new(k);
            for v in all.iter().rev() {
                top.offer(v.clone());
            }
            let mut want = all;
            want.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            want.truncate(k);
            prop_assert_eq!(top.into_sorted(), want);
        }
    }
}
