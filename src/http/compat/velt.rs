//! Velt: `POST /v2/activities/get` (seed 003). The query is a JSON body; pages go forward with
//! `pageToken` (a store cursor); failures are `{"error": {"message", "status"}}`.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::common::cursor_error;
use crate::http::{Access, ApiError, AppState};
use crate::model::Activity;
use crate::query::{Condition, Field, Op, Operand, Order, Query, MAX_LIMIT};
use crate::store::Store;

/// The context key of `documentId`.
pub(crate) const DOCUMENT_KEY: &str = "document_id";
const DEFAULT_PAGE_SIZE: i64 = 50;

/// The body's `data` object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Data {
    organization_id: Option<String>,
    document_id: Option<String>,
    target_entity_id: Option<String>,
    #[serde(default)]
    feature_types: Option<Vec<String>>,
    #[serde(default)]
    action_types: Option<Vec<String>>,
    user_id: Option<String>,
    #[serde(default)]
    activity_ids: Option<Vec<String>>,
    order: Option<String>,
    page_size: Option<Value>,
    page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Body {
    data: Option<Value>,
}

/// A parsed request: the organization (tenant) it names and the query.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) organization_id: String,
    pub(crate) query: Query,
    /// True when `activityIds` named only ids that cannot exist (not UUIDs).
    pub(crate) matches_nothing: bool,
}

/// Parses the request body.
pub(crate) fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("not valid JSON: {e}")))?;
    let data = match b.data {
        Some(d @ Value::Object(_)) => d,
        Some(_) => return Err(ApiError::invalid("data", "must be an object")),
        None => return Err(ApiError::invalid("data", "is required")),
    };
    let p: Data =
        serde_json::from_value(data).map_err(|e| ApiError::invalid("data", e.to_string()))?;
    let organization_id = p
        .organization_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("organizationId", "is required"))?;
    let order = match p.order.as_deref() {
        None => Order::Desc,
        Some(o) if o.eq_ignore_ascii_case("desc") => Order::Desc,
        Some(o) if o.eq_ignore_ascii_case("asc") => Order::Asc,
        Some(_) => return Err(ApiError::invalid("order", "must be asc or desc")),
    };
    let mut q = Query {
        order,
        ..Query::default()
    };
    let max = i64::try_from(MAX_LIMIT).unwrap_or(i64::MAX);
    let size = match p.page_size {
        None | Some(Value::Null) => DEFAULT_PAGE_SIZE,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("pageSize", format!("must be between 1 and {max}")))?,
        Some(_) => return Err(ApiError::invalid("pageSize", "must be a number")),
    };
    q.limit = usize::try_from(size).unwrap_or(1);
    q.cursor = p.page_token.filter(|t| !t.is_empty());
    let f = &mut q.filter;
    if let Some(d) = p.document_id.filter(|s| !s.is_empty()) {
        f.context = vec![(DOCUMENT_KEY.into(), d)];
    }
    if let Some(t) = p.target_entity_id.filter(|s| !s.is_empty()) {
        f.resource_ids = vec![t];
    }
    if let Some(u) = p.user_id.filter(|s| !s.is_empty()) {
        f.actor_ids = vec![u];
    }
    f.resource_types = p.feature_types.unwrap_or_default();
    // Velt's action types are exact names: an IN condition, where the `actions` list would read
    // a trailing `*` as a prefix.
    let actions = p.action_types.unwrap_or_default();
    if !actions.is_empty() {
        f.conditions.push(
            Condition::new(
                Field::Action,
                Op::In(actions.into_iter().map(Operand::Str).collect()),
                "actionTypes",
            )
            .map_err(ApiError::from)?,
        );
    }
    let ids = p.activity_ids.unwrap_or_default();
    f.ids = ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    Ok(Request {
        organization_id,
        matches_nothing: !ids.is_empty() && f.ids.is_empty(),
        query: q,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionUser {
    user_id: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    id: String,
    feature_type: String,
    action_type: String,
    action_user: Option<ActionUser>,
    target_entity_id: Option<String>,
    display_message_template: String,
    display_message_template_data: Value,
    metadata: Value,
    timestamp: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    status: &'static str,
    message: &'static str,
    data: Vec<Item>,
    page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Response {
    result: Envelope,
}

pub(crate) fn item(org: &str, api_key: Option<&str>, a: Activity) -> Item {
    let mut metadata = match &a.metadata {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(k) = api_key {
        metadata.insert("apiKey".into(), json!(k));
    }
    if let Some(d) = a.context_value(DOCUMENT_KEY) {
        metadata.insert("documentId".into(), json!(d));
    }
    metadata.insert("organizationId".into(), json!(org));
    let user = a
        .actor
        .as_ref()
        .map(|x| json!({ "userId": x.id, "name": x.name }));
    let (template, data) = match (a.display, a.summary) {
        (Some(d), _) => (d.template, d.data),
        (None, Some(s)) => (s, json!({})),
        (None, None) => match &user {
            Some(u) => (format!("{{{{user}}}} {}", a.action), json!({ "user": u })),
            None => (a.action.clone(), json!({})),
        },
    };
    Item {
        id: a.id.to_string(),
        feature_type: a.resource.kind,
        action_type: a.action,
        action_user: a.actor.map(|x| ActionUser {
            user_id: x.id,
            email: x.email,
            name: x.name,
        }),
        target_entity_id: a.resource.id,
        display_message_template: template,
        display_message_template_data: data,
        metadata: Value::Object(metadata),
        timestamp: a.created_at.timestamp_millis(),
    }
}

/// Serves one request for the tenant `tenant` (blocking).
pub(crate) fn get(
    store: &Store,
    tenant: &str,
    req: Request,
    api_key: Option<&str>,
) -> Result<Response, ApiError> {
    let (data, page_token) = if req.matches_nothing {
        (Vec::new(), None)
    } else {
        let page = store
            .query(tenant, &req.query)
            .map_err(|e| cursor_error(e, "pageToken"))?;
        (
            page.items
                .into_iter()
                .map(|a| item(tenant, api_key, a))
                .collect(),
            page.next_cursor,
        )
    };
    Ok(Response {
        result: Envelope {
            status: "success",
            message: "Activity(s) retrieved successfully.",
            data,
            page_token,
        },
    })
}

/// The gRPC-style status Velt names for an HTTP status.
pub(crate) fn status_name(s: StatusCode) -> &'static str {
    match s.as_u16() {
        400 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        413 | 429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// A failure in Velt's shape, `{"error": {"message", "status"}}`: the native error's message
/// (prefixed by its field when it does not already start with it) and the gRPC-style name of its
/// status. Every failure of the Velt route, authentication and body errors included, is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VeltError {
    status: StatusCode,
    message: String,
}

impl VeltError {
    fn new(status: StatusCode, message: impl Into<String>) -> VeltError {
        VeltError {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for VeltError {
    fn from(e: ApiError) -> VeltError {
        let message = match &e.field {
            Some(field) if !e.message.starts_with(field.as_str()) => {
                format!("{field}: {}", e.message)
            }
            _ => e.message,
        };
        VeltError::new(e.status, message)
    }
}

impl From<BytesRejection> for VeltError {
    fn from(r: BytesRejection) -> VeltError {
        ApiError::from(r).into()
    }
}

impl IntoResponse for VeltError {
    fn into_response(self) -> axum::response::Response {
        (
            self.status,
            Json(
                json!({ "error": { "message": self.message, "status": status_name(self.status) } }),
            ),
        )
            .into_response()
    }
}

/// `POST /compat/velt/v2/activities/get`. The body is read first (it names the organization,
/// which is the tenant), then the seed's two headers are required unless the native
/// `Authorization` is given.
pub(super) async fn get_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Response>, VeltError> {
    let req = parse(&body?)?;
    let api_key = headers
        .get("x-velt-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !headers.contains_key(header::AUTHORIZATION) {
        for (name, present) in [
            ("x-velt-api-key", api_key.is_some()),
            (
                "x-velt-auth-token",
                headers.contains_key("x-velt-auth-token"),
            ),
        ] {
            if !present {
                return Err(VeltError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("{name} header is required"),
                ));
            }
        }
    }
    let auth = super::authorize(&state, &headers, Some(req.organization_id.clone())).await?;
    let page = super::run(&state, auth, Access::Read, move |s, auth| {
        get(s, &auth.tenant, req, api_key.as_deref())
    })
    .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, DisplayText, NewActivity, ObjectRef, TenantSettings};
    use crate::store::Options;

    #[test]
    fn parses_every_field() {
        let id = Uuid::now_v7();
        let body = json!({"data": {
            "organizationId": "org-123", "documentId": "doc-456", "targetEntityId": "annotation-789",
            "featureTypes": ["comment"], "actionTypes": ["comment.add"], "userId": "user-1",
            "activityIds": [id.to_string(), "activity-002"], "order": "asc", "pageSize": 20,
            "pageToken": "tok"}});
        let r = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.organization_id, "org-123");
        let f = &r.query.filter;
        assert_eq!(
            f.context,
            vec![(DOCUMENT_KEY.to_owned(), "doc-456".to_owned())]
        );
        assert_eq!(f.resource_ids, vec!["annotation-789"]);
        assert_eq!(f.resource_types, vec!["comment"]);
        assert_eq!(
            f.conditions[0].op(),
            &Op::In(vec![Operand::Str("comment.add".into())])
        );
        assert_eq!(f.actor_ids, vec!["user-1"]);
        assert_eq!(f.ids, vec![id]);
        assert!(!r.matches_nothing);
        assert_eq!(r.query.order, Order::Asc);
        assert_eq!(r.query.limit, 20);
        assert_eq!(r.query.cursor.as_deref(), Some("tok"));
        let r =
            parse(br#"{"data":{"organizationId":"o","activityIds":["activity-001"]}}"#).unwrap();
        assert!(r.matches_nothing);
        let r = parse(br#"{"data":{"organizationId":"o"}}"#).unwrap();
        assert_eq!((r.query.limit, r.query.order), (50, Order::Desc));
    }

    #[test]
    fn rejects_bad_bodies() {
        for bad in [
            r#"{"#,
            r#"{}"#,
            r#"{"data": 1}"#,
            r#"{"data": {}}"#,
            r#"{"data": {"organizationId": ""}}"#,
            r#"{"data": {"organizationId": "o", "order": "sideways"}}"#,
            r#"{"data": {"organizationId": "o", "pageSize": 0}}"#,
            r#"{"data": {"organizationId": "o", "pageSize": 1001}}"#,
            r#"{"data": {"organizationId": "o", "pageSize": "ten"}}"#,
            r#"{"data": {"organizationId": "o", "featureTypes": "comment"}}"#,
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(ApiError { field: Some(_), .. })),
                "{bad}"
            );
        }
        assert!(parse(br#"{"data": {"organizationId": "o", "pageSize": 1000}}"#).is_ok());
        assert!(parse(br#"{"data": {"organizationId": "o", "pageSize": 1}}"#).is_ok());
    }

    #[test]
    fn renders_templates_and_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store
            .create_tenant("org-123", TenantSettings::default())
            .unwrap();
        let t = chrono::DateTime::from_timestamp_millis(1_722_409_519_944).unwrap();
        store
            .append(
                "org-123",
                NewActivity {
                    created_at: Some(t),
                    action: "comment.add".into(),
                    resource: ObjectRef {
                        kind: "comment".into(),
                        id: Some("annotation-789".into()),
                    },
                    actor: Some(Actor {
                        kind: "user".into(),
                        id: Some("user-1".into()),
                        name: Some("User Name".into()),
                        email: Some("user@example.com".into()),
                    }),
                    context: vec![(DOCUMENT_KEY.into(), "doc-456".into())],
                    display: Some(DisplayText {
                        template: "{{user}} added a comment".into(),
                        data: json!({"user": {"userId": "user-1", "name": "User Name"}}),
                    }),
                    ..Default::default()
                },
            )
            .unwrap();
        let req =
            parse(br#"{"data":{"organizationId":"org-123","documentId":"doc-456"}}"#).unwrap();
        let v = serde_json::to_value(get(&store, "org-123", req, Some("k")).unwrap()).unwrap();
        let item = &v["result"]["data"][0];
        assert_eq!(v["result"]["status"], "success");
        assert_eq!(item["timestamp"], 1_722_409_519_944_i64);
        assert_eq!(item["displayMessageTemplate"], "{{user}} added a comment");
        assert_eq!(
            item["displayMessageTemplateData"]["user"]["name"],
            "User Name"
        );
        assert_eq!(item["metadata"]["documentId"], "doc-456");
        assert_eq!(item["metadata"]["organizationId"], "org-123");
        assert_eq!(item["metadata"]["apiKey"], "k");
        assert_eq!(item["actionUser"]["email"], "user@example.com");
        assert_eq!(v["result"]["pageToken"], Value::Null);
    }
}
