//! Space Invoices: `GET /activities` (seed 000). Cursor pages straight off the store's own cursors;
//! the JSON `query` parameter becomes `q` conditions over the six fields the seed allows.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::common::{self, cursor_error, SeedParams};
use crate::http::auth::tenant_header;
use crate::http::filters::{tenant_tz, QGrammar};
use crate::http::{Access, ApiError, AppState, Params};
use crate::model::Activity;
use crate::query::{Condition, Field, Op, Operand, Order, Page, Query, MAX_LIMIT};
use crate::store::{Scope, Store};

const DEFAULT_LIMIT: i64 = 10;
/// The fields the seed lets `query` name.
const ALLOWED_FIELDS: &[&str] = &[
    "id",
    "resource_type",
    "resource_id",
    "action",
    "actor_type",
    "created_at",
];

/// The `query` parameter: API v1's `q` grammar over the seed's six fields, its errors naming
/// the operator too (`query.FIELD.OPERATOR`).
const QUERY: QGrammar = QGrammar {
    root: "query",
    fields: Some(ALLOWED_FIELDS),
    operator_in_field: true,
};

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) query: Query,
    /// The seed's `include_total_count` (default true).
    pub(crate) include_total: bool,
}

/// Parses the query string. `tz` is the tenant's zone, for `yyyy-MM-dd` dates in `query`.
pub(crate) fn parse(pairs: &[(String, String)], tz: chrono_tz::Tz) -> Result<Request, ApiError> {
    let p = SeedParams(pairs);
    let mut q = Query {
        limit: usize::try_from(p.int_in(
            "limit",
            1,
            i64::try_from(MAX_LIMIT).unwrap_or(i64::MAX),
            DEFAULT_LIMIT,
        )?)
        .unwrap_or(1),
        ..Query::default()
    };
    let next = p.non_empty("next_cursor")?;
    let prev = p.non_empty("prev_cursor")?;
    q.cursor = match (next, prev) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "prev_cursor",
                "give next_cursor or prev_cursor, not both",
            ))
        }
        (c, None) | (None, c) => c.map(str::to_owned),
    };
    let include_total = match p.non_empty("include_total_count")? {
        None => true,
        Some(v) => common::parse_bool("include_total_count", v)?,
    };
    q.include_total = include_total;
    q.order = match p.non_empty("order_by")? {
        None => Order::Desc,
        Some("created_at" | "+created_at" | "created_at:asc" | "created_at asc") => Order::Asc,
        Some("-created_at" | "created_at:desc" | "created_at desc") => Order::Desc,
        Some(other) => {
            return Err(ApiError::invalid(
                "order_by",
                format!(
                    "{other:?}: activities sort by created_at only (created_at or -created_at)"
                ),
            ))
        }
    };
    if let Some(v) = p.non_empty("resource_type")? {
        q.filter.resource_types = vec![v.to_owned()];
    }
    if let Some(v) = p.non_empty("resource_id")? {
        q.filter.resource_ids = vec![v.to_owned()];
    }
    if let Some(v) = p.non_empty("query")? {
        q.filter.conditions = parse_json_query(v, tz)?;
    }
    if let Some(v) = p.non_empty("action")? {
        // A condition rather than the `actions` list: there a trailing `*` would be a prefix,
        // and the seed's filter is an exact match.
        q.filter.conditions.push(
            Condition::new(
                Field::Action,
                Op::Equals(Operand::Str(v.to_owned())),
                "action",
            )
            .map_err(ApiError::from)?,
        );
    }
    q.filter.validate_window(tz, "query.created_at")?;
    Ok(Request {
        query: q,
        include_total,
    })
}

/// The `query` parameter: `{field: value | {operator: operand, ...}, ...}` ([`QUERY`]).
pub(crate) fn parse_json_query(text: &str, tz: chrono_tz::Tz) -> Result<Vec<Condition>, ApiError> {
    QUERY.parse_str(text, tz)
}

/// One activity in the seed's shape.
#[derive(Debug, Serialize)]
pub(crate) struct Item {
    id: String,
    entity_id: String,
    resource_type: String,
    resource_id: Option<String>,
    action: String,
    actor_type: Option<String>,
    actor_id: Option<String>,
    actor_label: Option<String>,
    details: Value,
    created_at: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Pagination {
    total: i64,
    next_cursor: Option<String>,
    prev_cursor: Option<String>,
    has_more: bool,
}

/// The response: the seed's `data` and `pagination`, and the example's top-level `has_more` and
/// `next_cursor`.
#[derive(Debug, Serialize)]
pub(crate) struct Response {
    data: Vec<Item>,
    pagination: Pagination,
    has_more: bool,
    next_cursor: Option<String>,
}

pub(crate) fn item(tenant: &str, a: Activity) -> Item {
    let actor = a.actor;
    Item {
        id: a.id.to_string(),
        entity_id: tenant.to_owned(),
        resource_type: a.resource.kind,
        resource_id: a.resource.id,
        action: a.action,
        actor_type: actor.as_ref().map(|x| x.kind.clone()),
        actor_id: actor.as_ref().and_then(|x| x.id.clone()),
        actor_label: actor.and_then(|x| x.name.or(x.email)),
        details: common::object_or_empty(&a.metadata),
        created_at: common::millis_z(a.created_at),
    }
}

pub(crate) fn render(tenant: &str, page: Page, include_total: bool) -> Response {
    let total = if include_total {
        page.total
            .map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX))
    } else {
        -1
    };
    Response {
        data: page.items.into_iter().map(|a| item(tenant, a)).collect(),
        pagination: Pagination {
            total,
            next_cursor: page.next_cursor.clone(),
            prev_cursor: page.prev_cursor,
            has_more: page.has_more,
        },
        has_more: page.has_more,
        next_cursor: page.next_cursor,
    }
}

/// Serves one request (blocking: it reads the store).
pub(crate) fn list(
    store: &Store,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let req = parse(pairs, tenant_tz(store, tenant))?;
    let cursor_param = if SeedParams(pairs).non_empty("prev_cursor")?.is_some() {
        "prev_cursor"
    } else {
        "next_cursor"
    };
    let page = store
        .query(tenant, &req.query)
        .map_err(|e| cursor_error(e, cursor_param))?;
    Ok(render(tenant, page, req.include_total))
}

/// `GET /compat/spaceinvoices/activities`. The seed names its header both `entity_id` (the
/// parameter list) and `x-entity-id` (the example); the second is the HTTP layer's tenant alias,
/// the first is read here. nginx and other proxies drop header names with underscores by
/// default, so an admin key must name its entity: without one the request is a 400, never a read
/// of the default tenant.
pub(super) async fn list_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(pairs): Params,
) -> Result<Json<Response>, ApiError> {
    let entity = match headers.get("entity_id").map(HeaderValue::to_str) {
        None => None,
        // An empty header names nothing, as with the other tenant headers.
        Some(Ok(v)) => Some(v.trim().to_owned()).filter(|v| !v.is_empty()),
        Some(Err(_)) => return Err(ApiError::invalid("entity_id", "header is not ASCII")),
    };
    let entity = tenant_header(&headers)?.or(entity);
    let names_entity = entity.is_some();
    let auth = super::authorize(&state, &headers, entity).await?;
    if auth.scope == Scope::Admin && !names_entity {
        return Err(ApiError::invalid(
            "x-entity-id",
            "the admin key must name the entity in x-entity-id (the entity_id spelling is \
             dropped by many proxies, so it cannot be relied on)",
        ));
    }
    let page = super::run(&state, auth, Access::Read, move |s, auth| {
        list(s, &auth.tenant, &pairs)
    })
    .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, NewActivity, ObjectRef, TenantSettings};
    use crate::store::Options;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    fn utc() -> chrono_tz::Tz {
        chrono_tz::UTC
    }

    #[test]
    fn defaults() {
        let r = parse(&[], utc()).unwrap();
        assert_eq!(r.query.limit, 10);
        assert!(r.include_total);
        assert!(r.query.include_total);
        assert_eq!(r.query.order, Order::Desc);
        assert!(r.query.cursor.is_none());
    }

    #[test]
    fn parameters() {
        let r = parse(
            &pairs(&[
                ("limit", "3"),
                ("include_total_count", "false"),
                ("order_by", "created_at"),
                ("resource_type", "Invoice"),
                ("resource_id", "inv_1"),
                ("action", "sent"),
                ("next_cursor", "abc"),
            ]),
            utc(),
        )
        .unwrap();
        assert_eq!(r.query.limit, 3);
        assert!(!r.include_total);
        assert_eq!(r.query.order, Order::Asc);
        assert_eq!(r.query.filter.resource_types, vec!["Invoice"]);
        assert_eq!(r.query.filter.resource_ids, vec!["inv_1"]);
        assert_eq!(r.query.filter.conditions.len(), 1);
        assert_eq!(r.query.cursor.as_deref(), Some("abc"));
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "x"),
            ("include_total_count", "yes"),
            ("order_by", "total"),
        ] {
            assert!(parse(&pairs(&[bad]), utc()).is_err(), "{bad:?}");
        }
        assert!(parse(&pairs(&[("next_cursor", "a"), ("prev_cursor", "b")]), utc()).is_err());
        assert_eq!(
            parse(&pairs(&[("limit", "1000")]), utc())
                .unwrap()
                .query
                .limit,
            1000
        );
        assert_eq!(
            parse(&pairs(&[("order_by", "-created_at")]), utc())
                .unwrap()
                .query
                .order,
            Order::Desc
        );
    }

    #[test]
    fn json_query_operators() {
        let q = r#"{"action":"sent","resource_type":{"in":["Invoice","Payment"]},
            "resource_id":{"notIn":["x"],"startsWith":"inv","endsWith":"1","contains":"NV"},
            "actor_type":{"equals":"user","gte":"a","lte":"z","gt":"a","lt":"zz"},
            "id":{"between":["0","f"]},
            "created_at":{"between":["2025-01-01","2025-12-31"],"gte":1700000000000,"lt":"2030-01-01T00:00:00Z"}}"#;
        let c = parse_json_query(q, utc()).unwrap();
        assert_eq!(c.len(), 15);
        let between = c
            .iter()
            .find(|c| c.field() == &Field::CreatedAt && matches!(c.op(), Op::Between(..)))
            .unwrap();
        let Op::Between(Operand::Time(lo), Operand::Time(hi)) = between.op() else {
            panic!()
        };
        assert_eq!(common::micros_z(*lo), "2025-01-01T00:00:00.000000Z");
        assert_eq!(common::micros_z(*hi), "2025-12-31T23:59:59.999999Z");
    }

    #[test]
    fn json_query_rejections_name_the_field() {
        for (q, field) in [
            (r#"{"total":{"gte":1000}}"#, "query.total"),
            (
                r#"{"customer.name":{"contains":"Acme"}}"#,
                "query.customer.name",
            ),
            (r#"{"action":{"like":"x"}}"#, "query.action.like"),
            (r#"{"action":{"in":"x"}}"#, "query.action.in"),
            (r#"{"action":{"between":["a"]}}"#, "query.action.between"),
            (
                r#"{"created_at":{"contains":"2024"}}"#,
                "query.created_at.contains",
            ),
            (r#"{"created_at":"yesterday"}"#, "query.created_at.equals"),
            (r#"{"action":null}"#, "query.action.equals"),
            (r#"{"action":{}}"#, "query.action"),
            (r#"[1]"#, "query"),
            (r#"{"#, "query"),
        ] {
            match parse_json_query(q, utc()) {
                Err(e) => assert_eq!(e.field.as_deref(), Some(field), "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    /// `query` is API v1's `q` grammar over six fields, and takes what that grammar takes where
    /// the two used to differ: an object naming a key twice is refused (it used to mean the
    /// last one), a boolean is compared as text and a string of digits is epoch milliseconds
    /// (both used to be refused), a bare array is refused naming the field rather than its
    /// implied `equals`.
    #[test]
    fn json_query_follows_the_v1_grammar() {
        let e = parse_json_query(r#"{"action":"a","action":"b"}"#, utc()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("query"));
        let c = parse_json_query(r#"{"action":true}"#, utc()).unwrap();
        assert_eq!(c[0].op(), &Op::Equals(Operand::Str("true".into())));
        let c = parse_json_query(r#"{"created_at":{"gte":"1700000000000"}}"#, utc()).unwrap();
        let Op::Gte(Operand::Time(t)) = c[0].op() else {
            panic!("{c:?}")
        };
        assert_eq!(t.timestamp_millis(), 1_700_000_000_000);
        let e = parse_json_query(r#"{"action":["a"]}"#, utc()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("query.action"));
    }

    #[test]
    fn renders_the_seed_shape() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store
            .create_tenant("ent_1", TenantSettings::default())
            .unwrap();
        let t = DateTime::parse_from_rfc3339("2024-01-15T14:30:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        store
            .append(
                "ent_1",
                NewActivity {
                    created_at: Some(t),
                    action: "sent".into(),
                    resource: ObjectRef {
                        kind: "Invoice".into(),
                        id: Some("inv_1".into()),
                    },
                    actor: Some(Actor {
                        kind: "user".into(),
                        id: Some("usr_1".into()),
                        name: None,
                        email: Some("user@example.com".into()),
                    }),
                    metadata: Some(json!({"to": "c@example.com"})),
                    ..Default::default()
                },
            )
            .unwrap();
        let r = list(&store, "ent_1", &[]).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["data"][0]["entity_id"], "ent_1");
        assert_eq!(v["data"][0]["actor_label"], "user@example.com");
        assert_eq!(v["data"][0]["created_at"], "2024-01-15T14:30:00.123Z");
        assert_eq!(v["data"][0]["details"]["to"], "c@example.com");
        assert_eq!(v["pagination"]["total"], 1);
        assert_eq!(v["has_more"], false);
        let r = list(&store, "ent_1", &pairs(&[("include_total_count", "false")])).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap()["pagination"]["total"], -1);
        assert!(matches!(
            list(&store, "ent_1", &pairs(&[("next_cursor", "forged")])),
            Err(e) if e.field.as_deref() == Some("next_cursor")
        ));
    }
}
