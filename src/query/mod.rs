//! The query engine: filters, the planner that turns them into index range scans, cursors and
//! facets. Everything here reads the store through `store::keys`; nothing here knows JSON.

mod budget;
pub(crate) mod cursor;
mod facets;
mod filter;
mod plan;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::Activity;
use crate::store::keys::Pos;
use crate::store::{ActivityRef, Record, Store};

pub(crate) use budget::what as work;
pub use budget::Budget;
pub use facets::{FacetField, FacetRequest, FacetValue};

/// The order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Order {
    /// Newest first.
    #[default]
    Desc,
    /// Oldest first.
    Asc,
    /// The log's own order: ascending `seq`, the order the store committed the activities in,
    /// whatever their `created_at`. With a `seq > N` condition ([`Condition::after_seq`]) it
    /// reads everything appended after offset N, once and in order.
    Seq,
}

impl Order {
    /// The opposite order of a time order (a `prev_cursor` scans it); `Seq` is reversed by
    /// the seq scan itself.
    fn reverse(self) -> Order {
        match self {
            Order::Desc => Order::Asc,
            Order::Asc => Order::Desc,
            Order::Seq => Order::Seq,
        }
    }
}

/// A bound on `created_at`: an instant, or a calendar date read in the tenant's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBound {
    /// An instant.
    At(DateTime<Utc>),
    /// A calendar day in the tenant's time zone.
    Date(NaiveDate),
}

/// A field the `q` conditions may name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `id`.
    Id,
    /// `created_at` (takes [`Operand::Time`]).
    CreatedAt,
    /// The store's `seq` (integer operands).
    Seq,
    /// The store's `recorded_at` (instants, like `created_at`).
    RecordedAt,
    /// `action`.
    Action,
    /// `resource_type`.
    ResourceType,
    /// `resource_id`.
    ResourceId,
    /// `actor_type`.
    ActorType,
    /// `actor_id`.
    ActorId,
    /// `actor_name`.
    ActorName,
    /// `actor_email`.
    ActorEmail,
    /// `target_type`.
    TargetType,
    /// `target_id`.
    TargetId,
    /// `summary`.
    Summary,
    /// `context.KEY`: the value of one context key.
    Context(String),
}

impl Field {
    /// Parses a field name of `q` (`docs/api.md`); `None` for anything else.
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "created_at" => Field::CreatedAt,
            "seq" => Field::Seq,
            "recorded_at" => Field::RecordedAt,
            "action" => Field::Action,
            "resource_type" => Field::ResourceType,
            "resource_id" => Field::ResourceId,
            "actor_type" => Field::ActorType,
            "actor_id" => Field::ActorId,
            "actor_name" => Field::ActorName,
            "actor_email" => Field::ActorEmail,
            "target_type" => Field::TargetType,
            "target_id" => Field::TargetId,
            "summary" => Field::Summary,
            _ => {
                let key = name.strip_prefix("context.")?;
                if key.is_empty() {
                    return None;
                }
                Field::Context(key.to_owned())
            }
        })
    }
}

/// An operand: a string, an instant for `created_at` and `recorded_at`, an integer for `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A string, for every field but `created_at`.
    Str(String),
    /// An instant, for `created_at`.
    /// An instant (`created_at`, `recorded_at`).
    Time(DateTime<Utc>),
    /// An integer (`seq`).
    Int(u64),
}

/// The operators of `q`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Equal to.
    Equals(Operand),
    /// Greater than.
    Gt(Operand),
    /// Greater than or equal to.
    Gte(Operand),
    /// Less than.
    Lt(Operand),
    /// Less than or equal to.
    Lte(Operand),
    /// One of.
    In(Vec<Operand>),
    /// None of (an absent value is none of them).
    NotIn(Vec<Operand>),
    /// Case-insensitive.
    Contains(String),
    /// Starts with.
    StartsWith(String),
    /// Ends with.
    EndsWith(String),
    /// Inclusive at both ends.
    Between(Operand, Operand),
}

/// One `field operator operand` condition of `q`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition {
    field: Field,
    op: Op,
}

impl Condition {
    /// `seq > n`: what was appended after offset `n`.
    pub fn after_seq(n: u64) -> Condition {
        Condition {
            field: Field::Seq,
            op: Op::Gt(Operand::Int(n)),
        }
    }

    /// Checks that the operator and operand types suit the field: `created_at` and
    /// `recorded_at` take instants, `seq` integers, and neither a string operator; every other
    /// field takes strings.
    pub fn new(field: Field, op: Op, field_name: &str) -> Result<Condition> {
        let kind = match field {
            Field::CreatedAt | Field::RecordedAt => OperandKind::Time,
            Field::Seq => OperandKind::Int,
            _ => OperandKind::Str,
        };
        let is_time = kind != OperandKind::Str;
        let operands: Vec<&Operand> = match &op {
            Op::Equals(o) | Op::Gt(o) | Op::Gte(o) | Op::Lt(o) | Op::Lte(o) => vec![o],
            Op::In(v) | Op::NotIn(v) => v.iter().collect(),
            Op::Between(a, b) => vec![a, b],
            Op::Contains(s) | Op::StartsWith(s) | Op::EndsWith(s) => {
                if is_time {
                    return Err(Error::invalid(
                        field_name,
                        "string operators do not apply to created_at, recorded_at or seq",
                    ));
                }
                // Every candidate pays for the operand's length; no stored value is longer.
                if s.len() > MAX_OPERAND_BYTES {
                    return Err(Error::invalid(
                        field_name,
                        format!(
                            "contains, startsWith and endsWith take at most {MAX_OPERAND_BYTES} \
                             bytes"
                        ),
                    ));
                }
                vec![]
            }
        };
        for o in operands {
            match (o, kind) {
                (Operand::Time(_), OperandKind::Time)
                | (Operand::Str(_), OperandKind::Str)
                | (Operand::Int(_), OperandKind::Int) => {}
                (_, OperandKind::Time) => {
                    return Err(Error::invalid(field_name, "this field takes timestamps"));
                }
                (_, OperandKind::Int) => {
                    return Err(Error::invalid(field_name, "seq takes integers"));
                }
                (_, OperandKind::Str) => {
                    return Err(Error::invalid(field_name, "this field takes strings"));
                }
            }
        }
        if let Op::In(v) | Op::NotIn(v) = &op {
            if v.len() > MAX_LIST {
                return Err(Error::invalid(
                    field_name,
                    format!("more than {MAX_LIST} values"),
                ));
            }
        }
        Ok(Condition { field, op })
    }

    /// The field it constrains.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// The operator and its operands.
    pub fn op(&self) -> &Op {
        &self.op
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperandKind {
    Str,
    Time,
    Int,
}

/// Most values in one IN list or `id` list.
pub const MAX_LIST: usize = 1000;
/// Longest operand of `contains`, `startsWith` and `endsWith`, in bytes (the longest stored
/// string, a 4 KiB summary, is no reason for more: the operand is searched in every candidate).
pub const MAX_OPERAND_BYTES: usize = 1024;
/// Most `q` conditions in one filter (every candidate is checked against each).
pub const MAX_CONDITIONS: usize = 32;
/// Most `in`/`notIn` values in all of a filter's `q` conditions together.
pub const MAX_CONDITION_VALUES: usize = 1000;
/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// Filters, all ANDed. An empty list means "no constraint"; a list of several values is an IN.
/// Built with [`Filter::new`] and its setters (fields may be added, so it has no struct literal
/// outside this crate); its fields can be read and changed directly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Filter {
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// A value ending in `*` matches every action starting with the rest.
    pub actions: Vec<String>,
    /// Only these resource types.
    pub resource_types: Vec<String>,
    /// Only these resource ids.
    pub resource_ids: Vec<String>,
    /// Only these actor types.
    pub actor_types: Vec<String>,
    /// Only these actor ids.
    pub actor_ids: Vec<String>,
    /// Only these actor names.
    pub actor_names: Vec<String>,
    /// Only these target types.
    pub target_types: Vec<String>,
    /// Only these target ids.
    pub target_ids: Vec<String>,
    /// Equality on context entries.
    pub context: Vec<(String, String)>,
    /// Inclusive.
    pub since: Option<TimeBound>,
    /// Exclusive; a date includes that whole day.
    pub until: Option<TimeBound>,
    /// `q` conditions, all ANDed.
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// Checks list sizes.
    pub fn validate(&self) -> Result<()> {
        let lists: [(&str, usize); 9] = [
            ("id", self.ids.len()),
            ("action", self.actions.len()),
            ("resource_type", self.resource_types.len()),
            ("resource_id", self.resource_ids.len()),
            ("actor_type", self.actor_types.len()),
            ("actor_id", self.actor_ids.len()),
            ("actor_name", self.actor_names.len()),
            ("target_type", self.target_types.len()),
            ("target_id", self.target_ids.len()),
        ];
        for (name, n) in lists {
            if n > MAX_LIST {
                return Err(Error::invalid(name, format!("more than {MAX_LIST} values")));
            }
        }
        if self.context.len() > 16 {
            return Err(Error::invalid("context", "more than 16 context filters"));
        }
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(Error::invalid(
                "q",
                format!("more than {MAX_CONDITIONS} conditions"),
            ));
        }
        let values: usize = self
            .conditions
            .iter()
            .map(|c| match &c.op {
                Op::In(v) | Op::NotIn(v) => v.len(),
                _ => 0,
            })
            .sum();
        if values > MAX_CONDITION_VALUES {
            return Err(Error::invalid(
                "q",
                format!("more than {MAX_CONDITION_VALUES} in/notIn values in all conditions"),
            ));
        }
        Ok(())
    }

    /// Checks that the time window the filter allows is not empty by construction: `since` must
    /// be before `until` (a date `until` includes its whole day, read in `tz`), and the
    /// `created_at` conditions must leave some instant. The error names `since`, or
    /// `conditions_field` (the caller's name for the conditions, such as `q.created_at`).
    pub fn validate_window(&self, tz: chrono_tz::Tz, conditions_field: &str) -> Result<()> {
        let bounds = Filter {
            since: self.since,
            until: self.until,
            ..Filter::default()
        };
        if filter::window(&bounds, tz).is_empty() {
            return Err(Error::invalid("since", "must be before until"));
        }
        if filter::window(self, tz).is_empty() {
            return Err(Error::invalid(
                conditions_field,
                "the created_at conditions (with since and until) leave no instant",
            ));
        }
        Ok(())
    }
}

/// A query: filters, order, page size and position. Built with [`Query::new`] and its setters
/// (fields may be added, so it has no struct literal outside this crate); its fields can be
/// read and changed directly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// What matches.
    pub filter: Filter,
    /// Newest first (the default) or oldest first.
    pub order: Order,
    /// 1–1,000.
    pub limit: usize,
    /// A `next_cursor` or `prev_cursor` of an earlier page of the same query.
    pub cursor: Option<String>,
    /// Whether the page carries the exact number of matches.
    pub include_total: bool,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            filter: Filter::default(),
            order: Order::Desc,
            limit: 50,
            cursor: None,
            include_total: false,
        }
    }
}

impl Filter {
    /// No constraint: every activity matches. The builder methods below add constraints.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Only these ids.
    #[must_use]
    pub fn ids(mut self, ids: impl IntoIterator<Item = Uuid>) -> Filter {
        self.ids.extend(ids);
        self
    }

    /// Only these actions; a value ending in `*` matches every action starting with the rest.
    #[must_use]
    pub fn actions<S: Into<String>>(mut self, actions: impl IntoIterator<Item = S>) -> Filter {
        self.actions.extend(actions.into_iter().map(Into::into));
        self
    }

    /// Only these resource types.
    #[must_use]
    pub fn resource_types<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.resource_types.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these resource ids.
    #[must_use]
    pub fn resource_ids<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.resource_ids.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these actor types.
    #[must_use]
    pub fn actor_types<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.actor_types.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these actor ids.
    #[must_use]
    pub fn actor_ids<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.actor_ids.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these actor names.
    #[must_use]
    pub fn actor_names<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.actor_names.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these target types.
    #[must_use]
    pub fn target_types<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.target_types.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only these target ids.
    #[must_use]
    pub fn target_ids<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Filter {
        self.target_ids.extend(v.into_iter().map(Into::into));
        self
    }

    /// Only activities whose context holds `key` = `value`.
    #[must_use]
    pub fn context(mut self, key: impl Into<String>, value: impl Into<String>) -> Filter {
        self.context.push((key.into(), value.into()));
        self
    }

    /// Only activities at or after `bound`.
    #[must_use]
    pub fn since(mut self, bound: TimeBound) -> Filter {
        self.since = Some(bound);
        self
    }

    /// Only activities before `bound` (a date includes that whole day).
    #[must_use]
    pub fn until(mut self, bound: TimeBound) -> Filter {
        self.until = Some(bound);
        self
    }

    /// Only activities that satisfy `condition` too.
    #[must_use]
    pub fn condition(mut self, condition: Condition) -> Filter {
        self.conditions.push(condition);
        self
    }
}

impl Query {
    /// The first page, newest first, of 50 activities, of everything: the same as `default()`.
    pub fn new() -> Query {
        Query::default()
    }

    /// Sets the filter.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Query {
        self.filter = filter;
        self
    }

    /// Sets the order.
    #[must_use]
    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }

    /// Sets the page size (1–[`MAX_LIMIT`]; checked by the query).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = limit;
        self
    }

    /// Continues from a `next_cursor` or `prev_cursor` of an earlier page of the same query;
    /// `None` starts from the first page.
    #[must_use]
    pub fn cursor(mut self, cursor: Option<String>) -> Query {
        self.cursor = cursor;
        self
    }

    /// Asks for the exact number of matches with the page.
    #[must_use]
    pub fn include_total(mut self, yes: bool) -> Query {
        self.include_total = yes;
        self
    }
}

/// One page of results: owned activities from [`Store::query`], stored records (to be read in
/// place) from [`Store::query_records`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T = Activity> {
    /// The page's items, in the query's order.
    pub items: Vec<T>,
    /// Continues after the last item, in the query's order; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Goes back to the items before the first one; `None` on the first page.
    pub prev_cursor: Option<String>,
    /// Whether there are items after this page (`next_cursor` is set).
    pub has_more: bool,
    /// The exact number of matches, when asked for.
    pub total: Option<u64>,
}

/// The cursor position of a `seq` in the log's order.
fn seq_pos(seq: u64) -> Pos {
    Pos {
        time: i64::try_from(seq).unwrap_or(i64::MAX),
        id: Uuid::nil(),
    }
}

/// The `seq` a log-order cursor carries (signed by this store, so never negative unless forged
/// with the secret).
fn seq_of_pos(p: Pos) -> Result<u64> {
    u64::try_from(p.time).map_err(|_| Error::InvalidCursor)
}

impl Store {
    /// Runs a query. Every filter on an indexed field is answered by index range scans in time
    /// order; a cursor resumes them with one seek per range, so a page costs the same at any depth.
    /// Filters on fields no index serves (`q` string operators, a second constrained field) are
    /// checked record by record; run it inside [`Budget::run`] to bound that work.
    pub fn query(&self, tenant: &str, q: &Query) -> Result<Page> {
        let page = self.query_records(tenant, q)?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(Record::to_activity)
                .collect::<Result<_>>()?,
            next_cursor: page.next_cursor,
            prev_cursor: page.prev_cursor,
            has_more: page.has_more,
            total: page.total,
        })
    }

    /// [`Store::query`], with each item the record as stored, to be read in place
    /// ([`Record::view`]) instead of decoded into an owned [`Activity`].
    pub fn query_records(&self, tenant: &str, q: &Query) -> Result<Page<Record>> {
        // A panic inside the engine (sled has some on damaged files) becomes `Error::EnginePanic` here instead of unwinding into the caller.
        self.read_guard("query", || self.query_inner(tenant, q))
    }

    /// The cursor a page of `filter` in `order` hands out to continue past `a`: in the query's
    /// order when `forward` (a `next_cursor`), else back before it (a `prev_cursor`). For
    /// callers that cut pages of their own from store pages (the Sequence profile), so they
    /// need not re-read a page to obtain a cursor at their cut.
    pub(crate) fn cursor_at(
        &self,
        tenant: &str,
        filter: &Filter,
        order: Order,
        forward: bool,
        a: &Activity,
    ) -> String {
        let pos = if order == Order::Seq {
            seq_pos(a.seq)
        } else {
            Pos {
                time: a.created_at.timestamp_micros(),
                id: a.id,
            }
        };
        cursor::encode(
            self,
            tenant,
            cursor::fingerprint(filter, order),
            forward,
            pos,
        )
    }

    fn query_inner(&self, tenant: &str, q: &Query) -> Result<Page<Record>> {
        if q.limit == 0 || q.limit > MAX_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        q.filter.validate()?;
        let info = self.tenant_info(tenant)?;
        let plan = plan::Plan::new(self, &info, &q.filter)?;
        let fingerprint = cursor::fingerprint(&q.filter, q.order);
        let (forward, after) = match &q.cursor {
            None => (true, None),
            Some(c) => {
                let c = cursor::decode(self, tenant, fingerprint, c)?;
                (c.forward, Some(c.pos))
            }
        };
        let mut items = Vec::with_capacity(q.limit + 1);
        let collect = |r: &Record, _: &ActivityRef<'_>| {
            items.push(r.clone());
            Ok(items.len() <= q.limit)
        };
        // A position in the log's order is its `seq`, carried in the cursor's time field.
        let seq_order = q.order == Order::Seq;
        if seq_order {
            let after = after.map(seq_of_pos).transpose()?;
            plan.run_seq(self, forward, after, budget::what::PAGE, collect)?;
        } else {
            let scan_order = if forward { q.order } else { q.order.reverse() };
            plan.run(self, scan_order, after, budget::what::PAGE, collect)?;
        }
        let more = items.len() > q.limit;
        items.truncate(q.limit);
        if !forward {
            items.reverse();
        }
        let pos = |r: &Record| -> Pos {
            if seq_order {
                seq_pos(r.seq())
            } else {
                r.pos()
            }
        };
        let mk = |fwd: bool, p: Pos| cursor::encode(self, tenant, fingerprint, fwd, p);
        let (next_cursor, prev_cursor) = if forward {
            let next = if more {
                items.last().map(|a| mk(true, pos(a)))
            } else {
                None
            };
            let prev = after.map(|p| mk(false, items.first().map(&pos).unwrap_or(p)));
            (next, prev)
        } else {
            let prev = if more {
                items.first().map(|a| mk(false, pos(a)))
            } else {
                None
            };
            let next = after.map(|p| mk(true, items.last().map(&pos).unwrap_or(p)));
            (next, prev)
        };
        let total = if q.include_total {
            Some(plan.count(self)?)
        } else {
            None
        };
        Ok(Page {
            has_more: next_cursor.is_some(),
            items,
            next_cursor,
            prev_cursor,
            total,
        })
    }

    /// The exact number of activities matching a filter.
    pub fn count(&self, tenant: &str, filter: &Filter) -> Result<u64> {
        filter.validate()?;
        let info = self.tenant_info(tenant)?;
        self.read_guard("count", || {
            plan::Plan::new(self, &info, filter)?.count(self)
        })
    }

    /// Calls `f` with every match in order until it returns `Ok(false)`, in constant memory.
    /// Each match is read in place: [`ActivityRef::to_activity`] makes an owned copy.
    ///
    /// A panic inside the engine becomes `Error::EnginePanic`, as in `query`; a panic in `f` is
    /// the caller's own and continues to unwind from here.
    pub fn scan(
        &self,
        tenant: &str,
        filter: &Filter,
        order: Order,
        mut f: impl FnMut(&ActivityRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        filter.validate()?;
        let info = self.tenant_info(tenant)?;
        let mut caller_panic = None;
        let result = self.read_guard("scan", || {
            let plan = plan::Plan::new(self, &info, filter)?;
            let each =
                |_: &Record, a: &ActivityRef<'_>| match catch_unwind(AssertUnwindSafe(|| f(a))) {
                    Ok(r) => r,
                    Err(p) => {
                        caller_panic = Some(p);
                        Ok(false)
                    }
                };
            if order == Order::Seq {
                plan.run_seq(self, true, None, budget::what::PAGE, each)
            } else {
                plan.run(self, order, None, budget::what::PAGE, each)
            }
        });
        if let Some(p) = caller_panic {
            resume_unwind(p);
        }
        result
    }
}
