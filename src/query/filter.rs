//! Filter semantics on one activity (read in place, as an `ActivityRef`), and the time window a
//! filter allows. The planner narrows *where* it looks; this module alone decides *what*
//! matches, so every plan gives the same answer.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Condition, Field, Filter, Op, Operand, TimeBound};
use crate::store::ActivityRef;

/// `[lo, hi)` in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) lo: i64,
    pub(crate) hi: i64,
}

impl Window {
    pub(crate) const ALL: Window = Window {
        lo: i64::MIN,
        hi: i64::MAX,
    };

    pub(crate) fn contains(&self, t: i64) -> bool {
        self.lo <= t && t < self.hi
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lo >= self.hi
    }

    fn at_least(&mut self, t: i64) {
        self.lo = self.lo.max(t);
    }

    fn below(&mut self, t: i64) {
        self.hi = self.hi.min(t);
    }
}

/// The start of a calendar day in a time zone, in microseconds (`calendar::day_start`).
fn day_start(date: NaiveDate, tz: chrono_tz::Tz) -> i64 {
    crate::calendar::day_start(date, tz).timestamp_micros()
}

fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time window a filter allows: `since`, `until` and the `created_at` range operators.
pub(crate) fn window(f: &Filter, tz: chrono_tz::Tz) -> Window {
    let mut w = Window::ALL;
    match f.since {
        Some(TimeBound::At(t)) => w.at_least(micros(&t)),
        Some(TimeBound::Date(d)) => w.at_least(day_start(d, tz)),
        None => {}
    }
    match f.until {
        Some(TimeBound::At(t)) => w.below(micros(&t)),
        Some(TimeBound::Date(d)) => {
            if let Some(next) = d.succ_opt() {
                w.below(day_start(next, tz));
            }
        }
        None => {}
    }
    for c in &f.conditions {
        if c.field != Field::CreatedAt {
            continue;
        }
        let t = |o: &Operand| match o {
            Operand::Time(t) => micros(t),
            Operand::Str(_) | Operand::Int(_) => 0,
        };
        match &c.op {
            Op::Equals(o) => {
                w.at_least(t(o));
                w.below(t(o).saturating_add(1));
            }
            Op::Gt(o) => w.at_least(t(o).saturating_add(1)),
            Op::Gte(o) => w.at_least(t(o)),
            Op::Lt(o) => w.below(t(o)),
            Op::Lte(o) => w.below(t(o).saturating_add(1)),
            Op::Between(a, b) => {
                w.at_least(t(a));
                w.below(t(b).saturating_add(1));
            }
            _ => {}
        }
    }
    w
}

fn any_eq(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
}

fn action_matches(list: &[String], action: &str) -> bool {
    list.is_empty()
        || list.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => action.starts_with(prefix),
            None => p == action,
        })
}

/// The filter's `contains` operands lowercased, one slot per condition (`None` for the others):
/// computed once per query instead of once per candidate.
#[derive(Debug, Clone)]
pub(crate) struct Folded(Vec<Option<String>>);

impl Folded {
    pub(crate) fn new(f: &Filter) -> Folded {
        Folded(
            f.conditions
                .iter()
                .map(|c| match &c.op {
                    Op::Contains(x) => Some(x.to_lowercase()),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// Does the activity match every filter? `w` is the filter's window and `folded` must be
/// `Folded::new(f)`.
pub(crate) fn matches(f: &Filter, folded: &Folded, w: &Window, a: &ActivityRef<'_>) -> bool {
    let actor = a.actor.as_ref();
    let target = a.target.as_ref();
    w.contains(a.time)
        && (f.ids.is_empty() || f.ids.contains(&a.id))
        && action_matches(&f.actions, a.action)
        && any_eq(&f.resource_types, Some(a.resource.kind))
        && any_eq(&f.resource_ids, a.resource.id)
        && any_eq(&f.actor_types, actor.map(|x| x.kind))
        && any_eq(&f.actor_ids, actor.and_then(|x| x.id))
        && any_eq(&f.actor_names, actor.and_then(|x| x.name))
        && any_eq(&f.target_types, target.map(|x| x.kind))
        && any_eq(&f.target_ids, target.and_then(|x| x.id))
        && f.context
            .iter()
            .all(|(k, v)| a.context_value(k) == Some(v.as_str()))
        && f.conditions
            .iter()
            .enumerate()
            .all(|(i, c)| condition_matches(c, folded.0.get(i).and_then(Option::as_deref), a))
}

/// The string value of a field on an activity; `None` when absent.
fn field_str<'a>(
    a: &'a ActivityRef<'_>,
    field: &'a Field,
    id_buf: &'a mut String,
) -> Option<&'a str> {
    let actor = a.actor.as_ref();
    let target = a.target.as_ref();
    match field {
        Field::Id => {
            *id_buf = a.id.to_string();
            Some(id_buf.as_str())
        }
        Field::CreatedAt | Field::Seq | Field::RecordedAt => None,
        Field::Action => Some(a.action),
        Field::ResourceType => Some(a.resource.kind),
        Field::ResourceId => a.resource.id,
        Field::ActorType => actor.map(|x| x.kind),
        Field::ActorId => actor.and_then(|x| x.id),
        Field::ActorName => actor.and_then(|x| x.name),
        Field::ActorEmail => actor.and_then(|x| x.email),
        Field::TargetType => target.map(|x| x.kind),
        Field::TargetId => target.and_then(|x| x.id),
        Field::Summary => a.summary,
        Field::Context(k) => a.context_value(k),
    }
}

/// `folded` is the condition's operand lowercased, for `contains`.
fn condition_matches(c: &Condition, folded: Option<&str>, a: &ActivityRef<'_>) -> bool {
    if c.field == Field::Seq {
        let n = |o: &Operand| match o {
            Operand::Int(x) => Some(*x),
            _ => None,
        };
        return ordered_matches(&c.op, a.seq, n);
    }
    if c.field == Field::CreatedAt || c.field == Field::RecordedAt {
        let t = if c.field == Field::CreatedAt {
            a.created_at()
        } else {
            a.recorded_at()
        };
        let at = |o: &Operand| match o {
            Operand::Time(x) => Some(*x),
            _ => None,
        };
        return ordered_matches(&c.op, t, at);
    }
    let mut buf = String::new();
    let v = field_str(a, &c.field, &mut buf);
    fn s(o: &Operand) -> Option<&str> {
        match o {
            Operand::Str(x) => Some(x.as_str()),
            Operand::Time(_) | Operand::Int(_) => None,
        }
    }
    // An absent field matches only `notIn` (as in MongoDB's `$nin`).
    let Some(v) = v else {
        return matches!(c.op, Op::NotIn(_));
    };
    let id_eq = |x: &str| {
        // Ids compare case-insensitively, as UUIDs do.
        if c.field == Field::Id {
            x.eq_ignore_ascii_case(v)
        } else {
            x == v
        }
    };
    match &c.op {
        Op::Equals(o) => s(o).is_some_and(id_eq),
        Op::Gt(o) => s(o).is_some_and(|x| v > x),
        Op::Gte(o) => s(o).is_some_and(|x| v >= x),
        Op::Lt(o) => s(o).is_some_and(|x| v < x),
        Op::Lte(o) => s(o).is_some_and(|x| v <= x),
        Op::In(list) => list.iter().any(|o| s(o).is_some_and(id_eq)),
        Op::NotIn(list) => !list.iter().any(|o| s(o).is_some_and(id_eq)),
        Op::Contains(x) => match folded {
            Some(x) => v.to_lowercase().contains(x),
            None => v.to_lowercase().contains(&x.to_lowercase()),
        },
        Op::StartsWith(x) => v.starts_with(x.as_str()),
        Op::EndsWith(x) => v.ends_with(x.as_str()),
        Op::Between(lo, hi) => s(lo).is_some_and(|lo| v >= lo) && s(hi).is_some_and(|hi| v <= hi),
    }
}

/// An ordered operator on a value `v` whose operands `get` reads (`None`: of another type, which
/// `Condition::new` does not let through).
fn ordered_matches<T: PartialOrd + Copy>(
    op: &Op,
    v: T,
    get: impl Fn(&Operand) -> Option<T>,
) -> bool {
    match op {
        Op::Equals(o) => get(o) == Some(v),
        Op::Gt(o) => get(o).is_some_and(|x| v > x),
        Op::Gte(o) => get(o).is_some_and(|x| v >= x),
        Op::Lt(o) => get(o).is_some_and(|x| v < x),
        Op::Lte(o) => get(o).is_some_and(|x| v <= x),
        Op::In(list) => list.iter().any(|o| get(o) == Some(v)),
        Op::NotIn(list) => !list.iter().any(|o| get(o) == Some(v)),
        Op::Between(lo, hi) => get(lo).is_some_and(|x| v >= x) && get(hi).is_some_and(|x| v <= x),
        Op::Contains(_) | Op::StartsWith(_) | Op::EndsWith(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn date_until_includes_the_whole_day_in_the_tenant_zone() {
        let tz: chrono_tz::Tz = "Europe/Ljubljana".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2024, 1, 15).unwrap();
        let f = Filter {
            since: Some(TimeBound::Date(d)),
            until: Some(TimeBound::Date(d)),
            ..Default::default()
        };
        let w = window(&f, tz);
        let start = Utc
            .with_ymd_and_hms(2024, 1, 14, 23, 0, 0)
            .unwrap()
            .timestamp_micros();
        assert_eq!(w.lo, start);
        assert_eq!(w.hi, start + 86_400_000_000);
    }
}
