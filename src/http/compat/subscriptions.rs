//! The subscription-commerce platform: `GET`/`POST /api/activity-logs`, `GET
//! /api/activity-logs/integration-actions` and `GET /api/activity-logs/actors` (seed 002). Rows are
//! activities whose resource is a `subscription` or an `order`; pages are by offset.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{self, SeedParams};
use crate::http::{Access, ApiError, AppState, Auth, Params};
use crate::model::{Actor, NewActivity, ObjectRef};
use crate::query::{
    Condition, FacetField, FacetRequest, Field, Filter, Op, Operand, Order, Query, TimeBound,
};
use crate::store::Store;
use crate::Activity;

pub(crate) const SUBSCRIPTION: &str = "subscription";
pub(crate) const ORDER: &str = "order";
pub(crate) const INTEGRATION_PREFIX: &str = "integration_";
const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 100;
/// The actor categories the seed names; `system` is everything else, and no actor.
const NAMED_CATEGORIES: [&str; 3] = ["customer", "admin", "api"];
/// The context keys of the convenience fields.
const CONVENIENCE: [&str; 7] = [
    "subscription_id",
    "subscription_number",
    "order_id",
    "order_number",
    "customer_name",
    "customer_email",
    "profile_id",
];
/// Most distinct values the two dropdown endpoints return.
const MAX_DISTINCT: usize = 1000;

/// A parsed list request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) filter: Filter,
    pub(crate) page: u64,
    pub(crate) limit: u64,
}

/// Parses `start_date` / `end_date`: both required for the list, both optional for the dropdowns.
fn dates(
    p: &SeedParams<'_>,
    required: bool,
) -> Result<(Option<TimeBound>, Option<TimeBound>), ApiError> {
    let mut out = [None, None];
    for (i, name) in ["start_date", "end_date"].into_iter().enumerate() {
        match p.non_empty(name)? {
            Some(v) => out[i] = Some(common::parse_date(name, v)?),
            None if required => {
                return Err(ApiError::invalid(name, "is required (yyyy-MM-dd)"));
            }
            None => {}
        }
    }
    if let [Some(s), Some(e)] = out {
        if s > e {
            return Err(ApiError::invalid(
                "start_date",
                "must not be after end_date",
            ));
        }
    }
    Ok((out[0].map(TimeBound::Date), out[1].map(TimeBound::Date)))
}

/// Parses the list's query string.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Request, ApiError> {
    let p = SeedParams(pairs);
    let mut f = Filter::default();
    let order_id = p.non_empty("order_id")?;
    let subscription_id = p.non_empty("subscription_id")?;
    match (order_id, subscription_id) {
        (Some(id), _) => {
            f.resource_types = vec![ORDER.into()];
            f.resource_ids = vec![id.into()];
        }
        (None, Some(id)) => {
            f.resource_types = vec![SUBSCRIPTION.into()];
            f.resource_ids = vec![id.into()];
        }
        (None, None) => f.resource_types = vec![SUBSCRIPTION.into(), ORDER.into()],
    }
    let actor_type = p.non_empty("actor_type")?;
    match actor_type {
        None => {}
        Some("system") => f.conditions.push(
            Condition::new(
                Field::ActorType,
                Op::NotIn(
                    NAMED_CATEGORIES
                        .iter()
                        .map(|c| Operand::Str((*c).into()))
                        .collect(),
                ),
                "actor_type",
            )
            .map_err(ApiError::from)?,
        ),
        Some(c) if NAMED_CATEGORIES.contains(&c) => f.actor_types = vec![c.into()],
        Some(_) => {
            return Err(ApiError::invalid(
                "actor_type",
                "must be one of customer, admin, api, system",
            ))
        }
    }
    if let Some(name) = p.non_empty("actor_name")? {
        // The seed: "Ignored for other actor types".
        if actor_type == Some("admin") {
            f.actor_names = vec![name.into()];
        }
    }
    if let Some(list) = p.non_empty("action")? {
        let actions: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if actions.is_empty() {
            return Err(ApiError::invalid("action", "no action name in the list"));
        }
        f.actions = actions;
    }
    (f.since, f.until) = dates(&p, true)?;
    let page = p.int_in("page", 1, i64::MAX, 1)?;
    let limit = match p.non_empty("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => {
            let n = common::parse_int("limit", v)?;
            if n < 1 {
                return Err(ApiError::invalid("limit", "must be between 1 and 100"));
            }
            // The seed: "limit capped at 100".
            n.min(MAX_LIMIT)
        }
    };
    let page = u64::try_from(page).unwrap_or(1);
    let limit = u64::try_from(limit).unwrap_or(1);
    // The offset `(page - 1) × limit` must be a number: past u64 it used to saturate silently.
    if (page - 1).checked_mul(limit).is_none() {
        return Err(ApiError::invalid("page", "page × limit is past any offset"));
    }
    Ok(Request {
        filter: f,
        page,
        limit,
    })
}

/// One row in the seed's shape.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    id: String,
    action: String,
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Value>,
    metadata: Value,
    actor_type: Option<String>,
    actor_name: Option<String>,
    loggable_type: String,
    loggable_id: Option<String>,
    subscription_id: Option<String>,
    subscription_number: Option<String>,
    order_id: Option<String>,
    order_number: Option<String>,
    customer_name: Option<String>,
    customer_email: Option<String>,
    profile_id: Option<String>,
    created_at: String,
}

pub(crate) fn row(a: Activity) -> Row {
    let ctx = |k: &str| a.context_value(k).map(str::to_owned);
    let own = |kind: &str, key: &str| {
        if a.resource.kind == kind {
            a.resource.id.clone().or_else(|| ctx(key))
        } else {
            ctx(key)
        }
    };
    Row {
        id: a.id.to_string(),
        subscription_id: own(SUBSCRIPTION, "subscription_id"),
        order_id: own(ORDER, "order_id"),
        subscription_number: ctx("subscription_number"),
        order_number: ctx("order_number"),
        customer_name: ctx("customer_name"),
        customer_email: ctx("customer_email"),
        profile_id: ctx("profile_id"),
        action: a.action,
        description: a.summary,
        changes: a.changes,
        metadata: common::object_or_empty(&a.metadata),
        actor_type: a.actor.as_ref().map(|x| x.kind.clone()),
        actor_name: a.actor.and_then(|x| x.name),
        loggable_type: a.resource.kind,
        loggable_id: a.resource.id,
        created_at: common::micros_z(a.created_at),
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Counters {
    total: u64,
    per_page: u64,
    current_page: u64,
    last_page: u64,
}

/// The list response: the counters both at the top level and in `metadata` (docs/profiles.md).
#[derive(Debug, Serialize)]
pub(crate) struct ListResponse {
    data: Vec<Row>,
    #[serde(flatten)]
    counters: Counters,
    metadata: Counters,
}

/// Serves the list (blocking). One forward scan skips `(page - 1) × limit` matches.
pub(crate) fn list(
    store: &Store,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<ListResponse, ApiError> {
    let req = parse(pairs)?;
    let skip = (req.page - 1)
        .checked_mul(req.limit)
        .ok_or_else(|| ApiError::invalid("page", "page × limit is past any offset"))?;
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let total = store.count(tenant, &req.filter)?;
    let mut data = Vec::new();
    if skip < total {
        let mut seen = 0u64;
        store.scan(tenant, &req.filter, Order::Desc, |a| {
            seen += 1;
            if seen > skip {
                data.push(row(a.to_activity()?));
            }
            Ok(data.len() < limit)
        })?;
    }
    let counters = || Counters {
        total,
        per_page: req.limit,
        current_page: req.page,
        last_page: total.div_ceil(req.limit).max(1),
    };
    Ok(ListResponse {
        data,
        counters: counters(),
        metadata: counters(),
    })
}

/// The body of `POST /api/activity-logs` (the seed names the endpoint, not its body; this is the
/// row's own fields).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEntry {
    action: String,
    #[serde(default)]
    loggable_type: Option<String>,
    #[serde(default)]
    loggable_id: Option<String>,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    changes: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    actor_name: Option<String>,
    #[serde(default)]
    subscription_number: Option<String>,
    #[serde(default)]
    order_number: Option<String>,
    #[serde(default)]
    customer_name: Option<String>,
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default)]
    profile_id: Option<String>,
}

/// Turns a POST body into the activity it stores, attributed to the API key `key_id`.
pub(crate) fn new_activity(body: &[u8], key_id: &str) -> Result<NewActivity, ApiError> {
    let e: NewEntry = serde_json::from_slice(body)
        .map_err(|err| ApiError::invalid("body", format!("not a valid entry: {err}")))?;
    let name = e.action.strip_prefix(INTEGRATION_PREFIX).unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::invalid(
            "action",
            "custom entries must be named integration_<something>",
        ));
    }
    // order_id takes precedence, as in the list's filters.
    let (kind, id) = if let Some(id) = e.order_id.clone() {
        (ORDER.to_owned(), id)
    } else if let Some(id) = e.subscription_id.clone() {
        (SUBSCRIPTION.to_owned(), id)
    } else {
        match (e.loggable_type.as_deref(), e.loggable_id.clone()) {
            (Some(t @ (SUBSCRIPTION | ORDER)), Some(id)) => (t.to_owned(), id),
            (Some(_), _) => {
                return Err(ApiError::invalid(
                    "loggable_type",
                    "must be subscription or order, with loggable_id",
                ))
            }
            _ => {
                return Err(ApiError::invalid(
                    "order_id",
                    "an entry is attached to an order_id or a subscription_id",
                ))
            }
        }
    };
    let mut context = Vec::new();
    let values = [
        e.subscription_id.filter(|_| kind != SUBSCRIPTION),
        e.subscription_number,
        e.order_id.filter(|_| kind != ORDER),
        e.order_number,
        e.customer_name,
        e.customer_email,
        e.profile_id,
    ];
    for (key, v) in CONVENIENCE.iter().zip(values) {
        if let Some(v) = v {
            context.push(((*key).to_owned(), v));
        }
    }
    Ok(NewActivity {
        action: e.action,
        resource: ObjectRef { kind, id: Some(id) },
        actor: Some(Actor {
            kind: "api".into(),
            id: Some(key_id.to_owned()),
            name: e.actor_name,
            email: None,
        }),
        context,
        summary: e.description,
        changes: e.changes,
        metadata: e.metadata,
        ..Default::default()
    })
}

/// Stores a POSTed entry and returns its row (blocking).
pub(crate) fn create(
    store: &Store,
    tenant: &str,
    body: &[u8],
    key_id: &str,
) -> Result<Row, ApiError> {
    let a = new_activity(body, key_id)?;
    let ack = store.append(tenant, a)?;
    let stored = store
        .get(tenant, ack.id)?
        .ok_or_else(|| ApiError::from(crate::Error::Corrupt("appended entry not found".into())))?;
    Ok(row(stored))
}

/// `{"data": [...]}` of the dropdown endpoints.
#[derive(Debug, Serialize)]
pub(crate) struct Values {
    data: Vec<String>,
}

/// The distinct `integration_*` actions (blocking).
pub(crate) fn integration_actions(
    store: &Store,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<Values, ApiError> {
    let (since, until) = dates(&SeedParams(pairs), false)?;
    let values = store.facets(
        tenant,
        &FacetRequest {
            field: FacetField::Action,
            prefix: Some(INTEGRATION_PREFIX.into()),
            since,
            until,
            limit: MAX_DISTINCT,
        },
    )?;
    let filter = |v: &str| Filter {
        actions: vec![v.to_owned()],
        ..Filter::default()
    };
    keep_row_values(store, tenant, values, since, until, filter)
}

/// Keeps the facet values that at least one row of this API (a subscription or order activity in
/// the window) carries, sorted: facets count every activity, rows are only these. One single-item
/// query per value.
fn keep_row_values(
    store: &Store,
    tenant: &str,
    values: Vec<crate::FacetValue>,
    since: Option<TimeBound>,
    until: Option<TimeBound>,
    filter: impl Fn(&str) -> Filter,
) -> Result<Values, ApiError> {
    let mut data = Vec::new();
    for v in values {
        let q = Query {
            filter: Filter {
                resource_types: vec![SUBSCRIPTION.into(), ORDER.into()],
                since,
                until,
                ..filter(&v.value)
            },
            limit: 1,
            ..Query::default()
        };
        if !store.query(tenant, &q)?.items.is_empty() {
            data.push(v.value);
        }
    }
    data.sort();
    Ok(Values { data })
}

/// The distinct names of `admin` actors (blocking): facets on `actor.name`, each name kept when one
/// admin activity carries it.
pub(crate) fn actors(
    store: &Store,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<Values, ApiError> {
    let (since, until) = dates(&SeedParams(pairs), false)?;
    let names = store.facets(
        tenant,
        &FacetRequest {
            field: FacetField::ActorName,
            prefix: None,
            since,
            until,
            limit: MAX_DISTINCT,
        },
    )?;
    let filter = |name: &str| Filter {
        actor_types: vec!["admin".into()],
        actor_names: vec![name.to_owned()],
        ..Filter::default()
    };
    keep_row_values(store, tenant, names, since, until, filter)
}

/// `GET /compat/subscriptions/api/activity-logs`.
pub(super) async fn list_route(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Result<Json<ListResponse>, ApiError> {
    super::run(&state, auth, Access::Read, move |s, auth| {
        list(s, &auth.tenant, &pairs)
    })
    .await
    .map(Json)
}

/// `POST /compat/subscriptions/api/activity-logs`: 201 with `{"data": row}`.
pub(super) async fn create_route(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = super::run(&state, auth, Access::Write, move |s, auth| {
        // A body that could not be read is refused after the key's scope is checked.
        let body = body.map_err(ApiError::from)?;
        create(s, &auth.tenant, &body, &auth.key_id)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "data": row })),
    ))
}

/// `GET /compat/subscriptions/api/activity-logs/integration-actions`.
pub(super) async fn integration_actions_route(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Result<Json<Values>, ApiError> {
    super::run(&state, auth, Access::Read, move |s, auth| {
        integration_actions(s, &auth.tenant, &pairs)
    })
    .await
    .map(Json)
}

/// `GET /compat/subscriptions/api/activity-logs/actors`.
pub(super) async fn actors_route(
    State(state): State<AppState>,
    auth: Auth,
    Params(pairs): Params,
) -> Result<Json<Values>, ApiError> {
    super::run(&state, auth, Access::Read, move |s, auth| {
        actors(s, &auth.tenant, &pairs)
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    const DATES: [(&str, &str); 2] = [("start_date", "2024-01-01"), ("end_date", "2024-01-31")];

    fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = DATES.to_vec();
        v.extend_from_slice(extra);
        pairs(&v)
    }

    #[test]
    fn dates_are_required_and_ordered() {
        assert!(parse(&pairs(&DATES)).is_ok());
        assert!(parse(&pairs(&DATES[..1])).is_err());
        assert!(parse(&pairs(&DATES[1..])).is_err());
        assert!(parse(&pairs(&[
            ("start_date", "2024-02-01"),
            ("end_date", "2024-01-31")
        ]))
        .is_err());
        assert!(parse(&pairs(&[
            ("start_date", "2024-01-31"),
            ("end_date", "2024-01-31")
        ]))
        .is_ok());
        assert!(parse(&pairs(&[
            ("start_date", "01/01/2024"),
            ("end_date", "2024-01-31")
        ]))
        .is_err());
    }

    #[test]
    fn loggable_filters() {
        let r = parse(&with(&[("order_id", "o1"), ("subscription_id", "s1")])).unwrap();
        assert_eq!(r.filter.resource_types, vec!["order"]);
        assert_eq!(r.filter.resource_ids, vec!["o1"]);
        let r = parse(&with(&[("subscription_id", "s1")])).unwrap();
        assert_eq!(r.filter.resource_types, vec!["subscription"]);
        let r = parse(&with(&[])).unwrap();
        assert_eq!(r.filter.resource_types, vec!["subscription", "order"]);
    }

    #[test]
    fn actor_and_action_filters() {
        let r = parse(&with(&[("actor_type", "admin"), ("actor_name", "Ann")])).unwrap();
        assert_eq!(r.filter.actor_types, vec!["admin"]);
        assert_eq!(r.filter.actor_names, vec!["Ann"]);
        let r = parse(&with(&[("actor_type", "api"), ("actor_name", "Ann")])).unwrap();
        assert!(r.filter.actor_names.is_empty());
        let r = parse(&with(&[("actor_type", "system")])).unwrap();
        assert_eq!(r.filter.conditions.len(), 1);
        assert!(parse(&with(&[("actor_type", "robot")])).is_err());
        let r = parse(&with(&[("action", "a_1, integration_*")])).unwrap();
        assert_eq!(r.filter.actions, vec!["a_1", "integration_*"]);
        assert!(parse(&with(&[("action", ",")])).is_err());
    }

    #[test]
    fn page_and_limit() {
        let r = parse(&with(&[])).unwrap();
        assert_eq!((r.page, r.limit), (1, 25));
        assert_eq!(parse(&with(&[("limit", "100")])).unwrap().limit, 100);
        assert_eq!(parse(&with(&[("limit", "101")])).unwrap().limit, 100);
        assert_eq!(parse(&with(&[("limit", "1")])).unwrap().limit, 1);
        assert!(parse(&with(&[("limit", "0")])).is_err());
        assert!(parse(&with(&[("page", "0")])).is_err());
        assert_eq!(parse(&with(&[("page", "3")])).unwrap().page, 3);
    }

    /// Regression: `(page - 1) × limit` saturated at u64::MAX for a page past any offset, and
    /// the request answered an empty page as if it were merely past the end. It is a 400 naming
    /// `page` now.
    #[test]
    fn a_page_past_any_offset_is_refused() {
        let max = i64::MAX.to_string();
        match parse(&with(&[("page", &max), ("limit", "100")])) {
            Err(e) => assert_eq!(e.field.as_deref(), Some("page")),
            other => panic!("{other:?}"),
        }
        let last = (u64::MAX / 100 + 1).to_string();
        assert!(parse(&with(&[("page", &last), ("limit", "100")])).is_ok());
        let past = (u64::MAX / 100 + 2).to_string();
        assert!(parse(&with(&[("page", &past), ("limit", "100")])).is_err());
    }

    #[test]
    fn post_bodies() {
        let a = new_activity(
            br##"{"action":"integration_shipment_dispatched","order_id":"o1","subscription_id":"s1",
                "order_number":"#1001","description":"Shipped","changes":{"status":["a","b"]},
                "metadata":{"carrier":"UPS"},"customer_email":"c@x.io"}"##,
            "key1",
        )
        .unwrap();
        assert_eq!(a.resource.kind, "order");
        assert_eq!(a.resource.id.as_deref(), Some("o1"));
        assert_eq!(a.actor.as_ref().unwrap().kind, "api");
        assert!(a.context.contains(&("subscription_id".into(), "s1".into())));
        assert!(a.context.contains(&("order_number".into(), "#1001".into())));
        for bad in [
            r#"{"action":"subscription_paused","order_id":"o1"}"#,
            r#"{"action":"integration_","order_id":"o1"}"#,
            r#"{"action":"integration_x"}"#,
            r#"{"action":"integration_x","loggable_type":"invoice","loggable_id":"i"}"#,
            r#"{"action":"integration_x","order_id":"o1","colour":"red"}"#,
            r#"not json"#,
        ] {
            assert!(new_activity(bad.as_bytes(), "k").is_err(), "{bad}");
        }
        let a = new_activity(
            br#"{"action":"integration_x","loggable_type":"subscription","loggable_id":"s9"}"#,
            "k",
        )
        .unwrap();
        assert_eq!(a.resource.kind, "subscription");
    }
}
