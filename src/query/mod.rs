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
}

impl Order {
    fn reverse(self) -> Order {
        match self {
            Order::Desc => Order::Asc,
            Order::Asc => Order::Desc,
        }
    }
}

/// A bound on `created_at`: an instant, or a calendar date read in the tenant's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBound {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

/// A field the `q` conditions may name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    CreatedAt,
    Action,
    ResourceType,
    ResourceId,
    ActorType,
    ActorId,
    ActorName,
    ActorEmail,
    TargetType,
    TargetId,
    Summary,
    Context(String),
}

impl Field {
    /// Parses a field name of API.md's `q`; `None` for anything else.
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "created_at" => Field::CreatedAt,
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

/// An operand: a string, or an instant for `created_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    Str(String),
    Time(DateTime<Utc>),
}

/// The operators of `q`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Equals(Operand),
    Gt(Operand),
    Gte(Operand),
    Lt(Operand),
    Lte(Operand),
    In(Vec<Operand>),
    NotIn(Vec<Operand>),
    /// Case-insensitive.
    Contains(String),
    StartsWith(String),
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
    /// Checks that the operator and operand types suit the field: `created_at` takes instants
    /// and no string operator; every other field takes strings.
    pub fn new(field: Field, op: Op, field_name: &str) -> Result<Condition> {
        let is_time = field == Field::CreatedAt;
        let operands: Vec<&Operand> = match &op {
            Op::Equals(o) | Op::Gt(o) | Op::Gte(o) | Op::Lt(o) | Op::Lte(o) => vec![o],
            Op::In(v) | Op::NotIn(v) => v.iter().collect(),
            Op::Between(a, b) => vec![a, b],
            Op::Contains(s) | Op::StartsWith(s) | Op::EndsWith(s) => {
                if is_time {
                    return Err(Error::invalid(
                        field_name,
                        "string operators do not apply to created_at",
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
            match (o, is_time) {
                (Operand::Time(_), true) | (Operand::Str(_), false) => {}
                (Operand::Str(_), true) => {
                    return Err(Error::invalid(field_name, "created_at takes timestamps"));
                }
                (Operand::Time(_), false) => {
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

    pub fn field(&self) -> &Field {
        &self.field
    }

    pub fn op(&self) -> &Op {
        &self.op
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub ids: Vec<Uuid>,
    /// A value ending in `*` matches every action starting with the rest.
    pub actions: Vec<String>,
    pub resource_types: Vec<String>,
    pub resource_ids: Vec<String>,
    pub actor_types: Vec<String>,
    pub actor_ids: Vec<String>,
    pub actor_names: Vec<String>,
    pub target_types: Vec<String>,
    pub target_ids: Vec<String>,
    /// Equality on context entries.
    pub context: Vec<(String, String)>,
    /// Inclusive.
    pub since: Option<TimeBound>,
    /// Exclusive; a date includes that whole day.
    pub until: Option<TimeBound>,
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

/// A query: filters, order, page size and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub filter: Filter,
    pub order: Order,
    /// 1–1,000.
    pub limit: usize,
    /// A `next_cursor` or `prev_cursor` of an earlier page of the same query.
    pub cursor: Option<String>,
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

/// One page of results: owned activities from [`Store::query`], stored records (to be read in
/// place) from [`Store::query_records`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T = Activity> {
    pub items: Vec<T>,
    /// Continues after the last item, in the query's order; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Goes back to the items before the first one; `None` on the first page.
    pub prev_cursor: Option<String>,
    pub has_more: bool,
    /// The exact number of matches, when asked for.
    pub total: Option<u64>,
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
        let pos = Pos {
            time: a.created_at.timestamp_micros(),
            id: a.id,
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
        let scan_order = if forward { q.order } else { q.order.reverse() };
        let mut items = Vec::with_capacity(q.limit + 1);
        plan.run(self, scan_order, after, budget::what::PAGE, |r, _| {
            items.push(r.clone());
            Ok(items.len() <= q.limit)
        })?;
        let more = items.len() > q.limit;
        items.truncate(q.limit);
        if !forward {
            items.reverse();
        }
        let pos = Record::pos;
        let mk = |fwd: bool, p: Pos| cursor::encode(self, tenant, fingerprint, fwd, p);
        let (next_cursor, prev_cursor) = if forward {
            let next = if more {
                items.last().map(|a| mk(true, pos(a)))
            } else {
                None
            };
            let prev = after.map(|p| mk(false, items.first().map(pos).unwrap_or(p)));
            (next, prev)
        } else {
            let prev = if more {
                items.first().map(|a| mk(false, pos(a)))
            } else {
                None
            };
            let next = after.map(|p| mk(true, items.last().map(pos).unwrap_or(p)));
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
            plan::Plan::new(self, &info, filter)?.run(
                self,
                order,
                None,
                budget::what::PAGE,
                |_, a| match catch_unwind(AssertUnwindSafe(|| f(a))) {
                    Ok(r) => r,
                    Err(p) => {
                        caller_panic = Some(p);
                        Ok(false)
                    }
                },
            )
        });
        if let Some(p) = caller_panic {
            resume_unwind(p);
        }
        result
    }
}
