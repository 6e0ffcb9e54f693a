//! Filters from the wire: the query string of `GET /v1/activities` (and export, facets) and the
//! JSON body of `POST /v1/activities/query`, into a [`Query`]. The `q` grammar ([`QGrammar`]) is
//! also Space Invoices' `query` parameter, in a dialect of its own (`http::compat`).
//!
//! - List parameters take one value or a comma list (IN); repeating a parameter adds values.
//!   In a JSON body they also take an array of strings (whose values may contain commas).
//! - `since`/`until`: RFC 3339 or `yyyy-MM-dd` (read in the tenant's time zone by the store).
//! - `q`: a JSON object of field → value or field → `{operator: operand, …}` (several operators
//!   on one field are ANDed). `created_at` operands are RFC 3339, epoch milliseconds, or a
//!   `yyyy-MM-dd` date in the tenant's time zone, taken as a whole day: `gte`/`lt` a date mean
//!   from/before its first instant, `gt`/`lte` after/through its last, `equals` within it.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::wire::{epoch_ms, parse_instant_str};
use super::ApiError;
use crate::{Condition, Field, Filter, Op, Operand, Order, Query, TimeBound, MAX_LIMIT};

/// One parameter's value: text from a query string, or JSON from a body.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> Val<'a> {
    /// A scalar as text (JSON strings, numbers and booleans).
    fn text(self, field: &str) -> Result<std::borrow::Cow<'a, str>, ApiError> {
        match self {
            Val::Text(s) => Ok(s.into()),
            Val::Json(Value::String(s)) => Ok(s.as_str().into()),
            Val::Json(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string().into()),
            Val::Json(_) => Err(ApiError::invalid(field, "must be a string")),
        }
    }

    /// A comma list (text) or an array of strings (JSON).
    fn list(self, field: &str) -> Result<Vec<String>, ApiError> {
        let out: Vec<String> = match self {
            Val::Json(Value::Array(items)) => items
                .iter()
                .map(|v| Val::Json(v).text(field).map(|s| s.into_owned()))
                .collect::<Result<_, _>>()?,
            other => other.text(field)?.split(',').map(str::to_owned).collect(),
        };
        if out.iter().any(String::is_empty) {
            return Err(ApiError::invalid(field, "values must not be empty"));
        }
        Ok(out)
    }
}

/// The time zone a tenant's dates are read in: its setting, or UTC when the tenant is unknown
/// (the store call that follows answers that one). The one lookup of it, for the HTTP layer,
/// the profiles and the command line.
pub fn tenant_tz(store: &crate::Store, tenant: &str) -> chrono_tz::Tz {
    store
        .tenant(tenant)
        .and_then(|t| crate::model::parse_timezone(&t.settings.timezone).ok())
        .unwrap_or(chrono_tz::UTC)
}

/// A position in the log's order (`after_seq`, a stream's `cursor` or `Last-Event-ID`): a `seq`,
/// an integer ≥ 0. `field` names the parameter in the error.
pub(crate) fn parse_seq(field: &str, text: &str) -> Result<u64, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, format!("{text:?} is not a seq (an integer ≥ 0)")))
}

/// Parses `since`/`until`: an RFC 3339 instant or a `yyyy-MM-dd` date.
pub fn parse_time_bound(field: &str, s: &str) -> Result<TimeBound, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(TimeBound::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(TimeBound::Date(d));
    }
    Err(ApiError::invalid(
        field,
        format!("{s:?} is neither an RFC 3339 timestamp nor a yyyy-MM-dd date"),
    ))
}

/// Applies one filter parameter to `filter`. Returns `Ok(false)` when `name` is not a filter
/// parameter (the caller decides whether that is an error).
pub fn apply_filter_param(
    filter: &mut Filter,
    name: &str,
    value: Val<'_>,
    tz: chrono_tz::Tz,
) -> Result<bool, ApiError> {
    let target = match name {
        "action" => &mut filter.actions,
        "resource_type" => &mut filter.resource_types,
        "resource_id" => &mut filter.resource_ids,
        "actor_type" => &mut filter.actor_types,
        "actor_id" => &mut filter.actor_ids,
        "actor_name" => &mut filter.actor_names,
        "target_type" => &mut filter.target_types,
        "target_id" => &mut filter.target_ids,
        "id" => {
            for s in value.list(name)? {
                let id = s
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid("id", format!("{s:?} is not a UUID")))?;
                filter.ids.push(id);
            }
            return Ok(true);
        }
        "since" | "until" => {
            let bound = parse_time_bound(name, &value.text(name)?)?;
            let slot = if name == "since" {
                &mut filter.since
            } else {
                &mut filter.until
            };
            if slot.replace(bound).is_some() {
                return Err(ApiError::invalid(name, "given more than once"));
            }
            return Ok(true);
        }
        "after_seq" => {
            let n = parse_seq(name, &value.text(name)?)?;
            filter.conditions.push(Condition::after_seq(n));
            return Ok(true);
        }
        "q" => {
            let conditions = match value {
                Val::Text(s) => parse_q_str(s, tz)?,
                Val::Json(Value::String(s)) => parse_q_str(s, tz)?,
                Val::Json(v) => parse_q(v, tz)?,
            };
            filter.conditions.extend(conditions);
            return Ok(true);
        }
        "context" => {
            // Only in JSON bodies: an object of key → value.
            let Val::Json(Value::Object(m)) = value else {
                return Err(ApiError::invalid(
                    "context",
                    "must be an object of key → value (or use context.KEY=VALUE)",
                ));
            };
            for (k, v) in m {
                let field = format!("context.{k}");
                let v = Val::Json(v).text(&field)?.into_owned();
                filter.context.push((k.clone(), v));
            }
            return Ok(true);
        }
        _ => match name.strip_prefix("context.") {
            Some(key) if !key.is_empty() => {
                let v = value.text(name)?.into_owned();
                filter.context.push((key.to_owned(), v));
                return Ok(true);
            }
            _ => return Ok(false),
        },
    };
    target.extend(value.list(name)?);
    Ok(true)
}

/// Applies one parameter of a list request (a filter, or `order`, `limit`, `cursor`,
/// `include_total`). `Ok(false)` when `name` is none of them.
pub fn apply_query_param(
    q: &mut Query,
    name: &str,
    value: Val<'_>,
    tz: chrono_tz::Tz,
) -> Result<bool, ApiError> {
    match name {
        "order" => q.order = parse_order(&value.text(name)?)?,
        "limit" => q.limit = parse_limit(&value.text(name)?)?,
        "cursor" => {
            let c = value.text(name)?;
            if !c.is_empty() {
                q.cursor = Some(c.into_owned());
            }
        }
        "include_total" => q.include_total = parse_bool(name, &value.text(name)?)?,
        _ => return apply_filter_param(&mut q.filter, name, value, tz),
    }
    Ok(true)
}

/// `asc` or `desc`.
pub fn parse_order(s: &str) -> Result<Order, ApiError> {
    match s {
        "desc" => Ok(Order::Desc),
        "asc" => Ok(Order::Asc),
        "seq" => Ok(Order::Seq),
        _ => Err(ApiError::invalid("order", "must be asc, desc or seq")),
    }
}

/// 1–1,000.
pub fn parse_limit(s: &str) -> Result<usize, ApiError> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
        })
}

/// `true`/`false` (also `1`/`0`).
pub fn parse_bool(field: &str, s: &str) -> Result<bool, ApiError> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(field, "must be true or false")),
    }
}

/// A list request from query-string pairs. Unknown parameters are a 400 naming them.
pub fn query_from_params(pairs: &[(String, String)], tz: chrono_tz::Tz) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for (name, value) in pairs {
        if !apply_query_param(&mut q, name, Val::Text(value), tz)? {
            return Err(unknown_param(name));
        }
    }
    check_window(&q.filter, tz)?;
    Ok(q)
}

/// A 400 when the filter's time window is empty by construction: `since` not before `until`
/// (field `since`), or `q`'s `created_at` conditions leaving no instant (field `q.created_at`).
/// Such a query can only ever answer an empty list, so it is a mistake worth reporting.
pub fn check_window(filter: &Filter, tz: chrono_tz::Tz) -> Result<(), ApiError> {
    Ok(filter.validate_window(tz, "q.created_at")?)
}

/// A list request from a JSON object (the body of `POST /v1/activities/query`).
pub fn query_from_json(body: &Value, tz: chrono_tz::Tz) -> Result<Query, ApiError> {
    let Value::Object(m) = body else {
        return Err(ApiError::bad_request(
            "body must be a JSON object of filters",
        ));
    };
    let mut q = Query::default();
    for (name, value) in m {
        if value.is_null() {
            continue;
        }
        if !apply_query_param(&mut q, name, Val::Json(value), tz)? {
            return Err(unknown_param(name));
        }
    }
    check_window(&q.filter, tz)?;
    Ok(q)
}

/// The 400 for a parameter nobody knows.
pub fn unknown_param(name: &str) -> ApiError {
    ApiError::invalid(name, format!("unknown parameter {name:?}"))
}

/// A dialect of the `q` grammar: the operators, operand types and date rules are the same in
/// every dialect; what differs is where it sits in the request (its `root` names its errors),
/// which fields it may name, and how deep an error's field goes. API v1's `q` is [`V1_Q`];
/// Space Invoices' `query` parameter is another dialect.
#[derive(Debug, Clone, Copy)]
pub struct QGrammar {
    /// The parameter's name: errors name `root`, `root.FIELD` (or `root.FIELD.OPERATOR`).
    pub root: &'static str,
    /// The fields it may name (`None`: every [`Field`]); another is a 400 listing these.
    pub fields: Option<&'static [&'static str]>,
    /// Whether an operator's error names the operator too (`root.FIELD.OPERATOR`) rather than
    /// only the field.
    pub operator_in_field: bool,
}

/// API v1's `q`: every field; errors name `q.FIELD`.
pub const V1_Q: QGrammar = QGrammar {
    root: "q",
    fields: None,
    operator_in_field: false,
};

/// Parses `q` given as JSON text.
pub fn parse_q_str(s: &str, tz: chrono_tz::Tz) -> Result<Vec<Condition>, ApiError> {
    V1_Q.parse_str(s, tz)
}

/// Parses `q`: a JSON object of field → value or field → `{operator: operand, …}`.
pub fn parse_q(v: &Value, tz: chrono_tz::Tz) -> Result<Vec<Condition>, ApiError> {
    V1_Q.parse(v, tz)
}

impl QGrammar {
    /// Parses the dialect given as JSON text. An object naming a key twice is refused, as in
    /// request bodies: which of the two a parser keeps must not decide what is matched.
    pub fn parse_str(&self, s: &str, tz: chrono_tz::Tz) -> Result<Vec<Condition>, ApiError> {
        super::extract::reject_duplicate_keys(s.as_bytes())
            .map_err(|e| ApiError::invalid(self.root, e.message))?;
        let v: Value = serde_json::from_str(s)
            .map_err(|e| ApiError::invalid(self.root, format!("not valid JSON: {e}")))?;
        self.parse(&v, tz)
    }

    /// Parses the dialect: a JSON object of field → value or field → `{operator: operand, …}`.
    pub fn parse(&self, v: &Value, tz: chrono_tz::Tz) -> Result<Vec<Condition>, ApiError> {
        let Value::Object(m) = v else {
            return Err(ApiError::invalid(
                self.root,
                "must be a JSON object of field → value or {operator: operand}",
            ));
        };
        let mut out = Vec::new();
        for (name, spec) in m {
            // Fail before parsing a thousand conditions only to refuse them (`Filter::validate`
            // has the same limit for library callers).
            if out.len() >= crate::MAX_CONDITIONS {
                return Err(ApiError::invalid(
                    self.root,
                    format!("more than {} conditions", crate::MAX_CONDITIONS),
                ));
            }
            let qfield = format!("{}.{name}", self.root);
            if let Some(allowed) = self.fields {
                if !allowed.contains(&name.as_str()) {
                    return Err(ApiError::invalid(
                        &qfield,
                        format!(
                            "field {name:?} cannot be queried; allowed fields: {}",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            let field = Field::parse(name)
                .ok_or_else(|| ApiError::invalid(&qfield, format!("unknown field {name:?}")))?;
            let ops: Vec<(&str, &Value)> = match spec {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(ApiError::invalid(&qfield, "no operator given"));
                    }
                    ops.iter().map(|(op, v)| (op.as_str(), v)).collect()
                }
                Value::Array(_) => {
                    return Err(ApiError::invalid(
                        &qfield,
                        "a list needs an operator: {\"in\": [...]}",
                    ))
                }
                scalar => vec![("equals", scalar)],
            };
            for (op, operand) in ops {
                let at = if self.operator_in_field {
                    format!("{qfield}.{op}")
                } else {
                    qfield.clone()
                };
                let op = parse_op(&field, &at, op, operand, tz)?;
                out.push(Condition::new(field.clone(), op, &at)?);
            }
        }
        Ok(out)
    }
}

/// Which end of a date an operand stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    First,
    Last,
}

fn parse_op(
    field: &Field,
    qfield: &str,
    op: &str,
    v: &Value,
    tz: chrono_tz::Tz,
) -> Result<Op, ApiError> {
    let is_time = matches!(field, Field::CreatedAt | Field::RecordedAt);
    let one = |v: &Value, end: End| -> Result<Operand, ApiError> {
        if is_time {
            time_operand(qfield, v, tz, end).map(Operand::Time)
        } else if *field == Field::Seq {
            let text = Val::Json(v).text(qfield)?;
            text.trim()
                .parse::<u64>()
                .map(Operand::Int)
                .map_err(|_| ApiError::invalid(qfield, "seq takes integers ≥ 0"))
        } else {
            Val::Json(v)
                .text(qfield)
                .map(|s| Operand::Str(s.into_owned()))
        }
    };
    let text = |v: &Value| Val::Json(v).text(qfield).map(|s| s.into_owned());
    let list = |v: &Value| -> Result<Vec<Operand>, ApiError> {
        match v {
            Value::Array(items) => items.iter().map(|x| one(x, End::First)).collect(),
            _ => Err(ApiError::invalid(qfield, format!("{op} takes an array"))),
        }
    };
    Ok(match op {
        "equals" => {
            if let Some(d) = date_of(v).filter(|_| is_time) {
                Op::Between(
                    Operand::Time(date_end(d, tz, End::First)),
                    Operand::Time(date_end(d, tz, End::Last)),
                )
            } else {
                Op::Equals(one(v, End::First)?)
            }
        }
        "gt" => Op::Gt(one(v, End::Last)?),
        "gte" => Op::Gte(one(v, End::First)?),
        "lt" => Op::Lt(one(v, End::First)?),
        "lte" => Op::Lte(one(v, End::Last)?),
        "in" => Op::In(list(v)?),
        "notIn" => Op::NotIn(list(v)?),
        "contains" => Op::Contains(text(v)?),
        "startsWith" => Op::StartsWith(text(v)?),
        "endsWith" => Op::EndsWith(text(v)?),
        "between" => match v {
            Value::Array(items) if items.len() == 2 => {
                Op::Between(one(&items[0], End::First)?, one(&items[1], End::Last)?)
            }
            _ => {
                return Err(ApiError::invalid(
                    qfield,
                    "between takes an array of two values [min, max]",
                ))
            }
        },
        other => {
            return Err(ApiError::invalid(
                qfield,
                format!(
                    "unknown operator {other:?}; expected one of equals, gt, gte, lt, lte, in, \
                     notIn, contains, startsWith, endsWith, between"
                ),
            ))
        }
    })
}

/// A `yyyy-MM-dd` date operand.
fn date_of(v: &Value) -> Option<NaiveDate> {
    v.as_str().and_then(crate::calendar::parse_ymd)
}

/// The first or last microsecond of a date in a time zone.
fn date_end(d: NaiveDate, tz: chrono_tz::Tz, end: End) -> DateTime<Utc> {
    match end {
        End::First => crate::calendar::day_start(d, tz),
        End::Last => crate::calendar::day_end(d, tz),
    }
}

/// A `created_at` operand: RFC 3339, epoch milliseconds (number or digits), or a date. An
/// instant is truncated to microseconds, as a written `created_at` is: the operand means the
/// time the store would record for it.
fn time_operand(
    qfield: &str,
    v: &Value,
    tz: chrono_tz::Tz,
    end: End,
) -> Result<DateTime<Utc>, ApiError> {
    let bad = || {
        ApiError::invalid(
            qfield,
            "created_at takes RFC 3339 timestamps, yyyy-MM-dd dates or epoch milliseconds",
        )
    };
    match v {
        Value::Number(n) => n.as_i64().and_then(epoch_ms).ok_or_else(bad),
        Value::String(s) => {
            if let Some(d) = date_of(v) {
                return Ok(date_end(d, tz, end));
            }
            parse_instant_str(s)
                .map(crate::model::truncate_to_micros)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn lists_contexts_and_bounds() {
        let q = query_from_params(
            &pairs(&[
                ("action", "a.*,b"),
                ("action", "c"),
                ("context.origin", "api"),
                ("since", "2024-01-01"),
                ("until", "2024-02-01T00:00:00Z"),
                ("limit", "7"),
                ("order", "asc"),
            ]),
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(q.filter.actions, ["a.*", "b", "c"]);
        assert_eq!(
            q.filter.context,
            [("origin".to_string(), "api".to_string())]
        );
        assert!(matches!(q.filter.since, Some(TimeBound::Date(_))));
        assert!(matches!(q.filter.until, Some(TimeBound::At(_))));
        assert_eq!((q.limit, q.order), (7, Order::Asc));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |p: &[(&str, &str)]| {
            query_from_params(&pairs(p), chrono_tz::UTC)
                .unwrap_err()
                .field
                .unwrap()
        };
        assert_eq!(field(&[("limit", "0")]), "limit");
        assert_eq!(field(&[("limit", "1001")]), "limit");
        assert_eq!(field(&[("bogus", "1")]), "bogus");
        assert_eq!(field(&[("since", "yesterday")]), "since");
        assert_eq!(field(&[("id", "nope")]), "id");
        assert_eq!(field(&[("q", r#"{"colour":"red"}"#)]), "q.colour");
        assert_eq!(field(&[("q", r#"{"action":{"like":"x"}}"#)]), "q.action");
        assert_eq!(
            field(&[("q", r#"{"created_at":{"contains":"x"}}"#)]),
            "q.created_at"
        );
        assert_eq!(field(&[("q", "{")]), "q");
    }

    /// The ends of chrono's calendar, in every direction a date is widened (a date `until` to
    /// the next day, `lte`/`gt` to a day's last microsecond) and in zones at both extreme
    /// offsets: a 400 or a query, never an overflow panic.
    #[test]
    fn extreme_dates_are_checked_not_overflowed() {
        let dates = [
            "+262142-12-31",
            "+262143-12-31",
            "-262143-01-01",
            "-262144-01-01",
            "0000-01-01",
            "9999-12-31",
        ];
        // chrono's first and last dates parse; one past either end does not.
        let parsed: Vec<bool> = dates
            .iter()
            .map(|d| matches!(parse_time_bound("since", d), Ok(TimeBound::Date(_))))
            .collect();
        assert_eq!(parsed, [true, false, true, false, true, true]);
        for tz in ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"] {
            let tz: chrono_tz::Tz = tz.parse().unwrap();
            for d in dates {
                for name in ["since", "until"] {
                    let _ = query_from_params(&pairs(&[(name, d)]), tz);
                }
                let _ = query_from_params(&pairs(&[("since", d), ("until", d)]), tz);
                for op in ["equals", "gt", "gte", "lt", "lte"] {
                    let q = serde_json::json!({ "created_at": { op: d } });
                    if let Ok(c) = parse_q(&q, tz) {
                        let f = Filter {
                            conditions: c,
                            ..Filter::default()
                        };
                        let _ = check_window(&f, tz);
                    }
                }
                let q = serde_json::json!({ "created_at": { "between": [d, d] } });
                let _ = parse_q(&q, tz);
            }
        }
    }

    /// Where the two grammars this one replaced disagreed, the contract decides. A written
    /// `created_at` is truncated to microseconds (API.md: "µs precision"), so an operand is too:
    /// API v1's `q` compared the nanoseconds and so never found the very instant a client wrote.
    #[test]
    fn q_instants_are_truncated_to_microseconds_like_written_times() {
        let c = parse_q(
            &serde_json::json!({"created_at": "2024-01-01T00:00:00.0000009Z"}),
            chrono_tz::UTC,
        )
        .unwrap();
        let Op::Equals(Operand::Time(t)) = c[0].op() else {
            panic!("{c:?}")
        };
        assert_eq!(t.to_rfc3339(), "2024-01-01T00:00:00+00:00");
    }

    /// A date operand is `yyyy-MM-dd` exactly (API.md), as Space Invoices' grammar read it;
    /// API v1's read `2024-3-1` as a date too. Such a string is now a 400 naming the field.
    #[test]
    fn q_dates_are_exactly_yyyy_mm_dd() {
        for bad in ["2024-3-1", "+262142-12-31"] {
            let e = parse_q(
                &serde_json::json!({"created_at": {"gte": bad}}),
                chrono_tz::UTC,
            )
            .unwrap_err();
            assert_eq!(e.field.as_deref(), Some("q.created_at"), "{bad}");
        }
    }

    #[test]
    fn q_operators_and_dates() {
        let tz: chrono_tz::Tz = "Europe/Ljubljana".parse().unwrap();
        let c = parse_q(
            &serde_json::json!({
                "created_at": {"gte": "2024-03-01", "lte": "2024-03-01", "lt": 1_700_000_000_000i64},
                "action": {"in": ["a", "b"], "startsWith": "a"},
                "context.n": 5,
            }),
            tz,
        )
        .unwrap();
        assert_eq!(c.len(), 6);
        let time = |want: fn(&Op) -> Option<&Operand>| {
            c.iter()
                .find_map(|c| match want(c.op()) {
                    Some(Operand::Time(t)) => Some(*t),
                    _ => None,
                })
                .unwrap()
        };
        let lo = time(|o| if let Op::Gte(x) = o { Some(x) } else { None });
        let hi = time(|o| if let Op::Lte(x) = o { Some(x) } else { None });
        assert_eq!(lo.to_rfc3339(), "2024-02-29T23:00:00+00:00");
        assert_eq!(
            hi - lo,
            chrono::Duration::days(1) - chrono::Duration::microseconds(1)
        );
    }
}
