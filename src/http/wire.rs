//! The JSON shapes of API v1: activities in and out, append acknowledgements, tenants, keys,
//! pages. The only place that knows them; conversion to and from the model happens here.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::{Activity, Actor, Appended, DisplayText, NewActivity, ObjectRef, Page, Tenant};

/// Formats a time as the API outputs it (`docs/api.md`): RFC 3339, UTC, microseconds.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an input instant: RFC 3339 text or epoch milliseconds.
pub fn parse_instant_str(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    s.parse::<i64>().ok().and_then(epoch_ms)
}

/// Epoch milliseconds to a time, if representable.
pub fn epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// `created_at` on input: RFC 3339 text or an integer of epoch milliseconds.
fn de_time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp or epoch milliseconds")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| E::custom(format!("not an RFC 3339 timestamp: {e}")))
        }
        fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<Self::Value, E> {
            epoch_ms(ms)
                .map(Some)
                .ok_or_else(|| E::custom("epoch milliseconds out of range"))
        }
        fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<Self::Value, E> {
            let ms = i64::try_from(ms).map_err(|_| E::custom("epoch milliseconds out of range"))?;
            self.visit_i64(ms)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// `{type, id}` on input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRefIn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
}

/// `{type, id, name, email}` on input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorIn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `{template, data}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DisplayWire {
    pub template: String,
    #[serde(default = "empty_object")]
    pub data: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// An activity as a client submits it (`POST /v1/activities`, one line of an import).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityIn {
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Assigned by the store: accepted (so a served activity can be posted back) and ignored.
    #[serde(default, rename = "seq")]
    pub _seq: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "de_time_opt")]
    pub created_at: Option<DateTime<Utc>>,
    /// Assigned by the store: accepted and ignored, as `seq`.
    #[serde(default, rename = "recorded_at")]
    pub _recorded_at: Option<serde::de::IgnoredAny>,
    pub action: String,
    pub resource: ObjectRefIn,
    #[serde(default)]
    pub actor: Option<ActorIn>,
    #[serde(default)]
    pub target: Option<ObjectRefIn>,
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub display: Option<DisplayWire>,
}

impl From<ActivityIn> for NewActivity {
    fn from(a: ActivityIn) -> NewActivity {
        let obj = |o: ObjectRefIn| ObjectRef {
            kind: o.kind,
            id: o.id,
        };
        NewActivity {
            id: a.id,
            created_at: a.created_at,
            action: a.action,
            resource: obj(a.resource),
            actor: a.actor.map(|x| Actor {
                kind: x.kind,
                id: x.id,
                name: x.name,
                email: x.email,
            }),
            target: a.target.map(obj),
            context: a.context.unwrap_or_default().into_iter().collect(),
            summary: a.summary,
            reason: a.reason,
            changes: a.changes,
            metadata: a.metadata,
            display: a.display.map(|d| DisplayText {
                template: d.template,
                data: d.data,
            }),
        }
    }
}

/// `POST /v1/activities` body: one activity or `{"activities": [...]}`.
#[derive(Debug, Clone)]
pub enum AppendBody {
    One(Box<ActivityIn>),
    Batch(Vec<ActivityIn>),
}

impl AppendBody {
    /// Parses a body, naming the path of the first bad field (`activities[2].resource.type`).
    pub fn parse(value: serde_json::Value) -> Result<AppendBody, super::ApiError> {
        let is_batch = value
            .as_object()
            .is_some_and(|m| m.contains_key("activities"));
        if is_batch {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Batch {
                activities: Vec<ActivityIn>,
            }
            let b: Batch = super::extract::from_value(value)?;
            Ok(AppendBody::Batch(b.activities))
        } else if value.is_object() {
            Ok(AppendBody::One(Box::new(super::extract::from_value(
                value,
            )?)))
        } else {
            Err(super::ApiError::bad_request(
                "body must be an activity object or {\"activities\": [...]}",
            ))
        }
    }
}

/// `{type, id}` on output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectRefOut {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

/// `{type, id, name, email}` on output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActorOut {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// An activity as the API serves it. Every field is always present (`null` when absent), so a
/// client sees one stable shape; the same shape is accepted back by `POST` and `import`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActivityOut {
    pub id: Uuid,
    pub seq: u64,
    pub created_at: String,
    pub recorded_at: String,
    pub action: String,
    pub resource: ObjectRefOut,
    pub actor: Option<ActorOut>,
    pub target: Option<ObjectRefOut>,
    pub context: BTreeMap<String, String>,
    pub summary: Option<String>,
    pub reason: Option<String>,
    pub changes: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    pub display: Option<DisplayWire>,
}

impl From<Activity> for ActivityOut {
    fn from(a: Activity) -> ActivityOut {
        let obj = |o: ObjectRef| ObjectRefOut {
            kind: o.kind,
            id: o.id,
        };
        ActivityOut {
            id: a.id,
            seq: a.seq,
            created_at: format_time(&a.created_at),
            recorded_at: format_time(&a.recorded_at),
            action: a.action,
            resource: obj(a.resource),
            actor: a.actor.map(|x| ActorOut {
                kind: x.kind,
                id: x.id,
                name: x.name,
                email: x.email,
            }),
            target: a.target.map(obj),
            context: a.context.into_iter().collect(),
            summary: a.summary,
            reason: a.reason,
            changes: a.changes,
            metadata: a.metadata,
            display: a.display.map(|d| DisplayWire {
                template: d.template,
                data: d.data,
            }),
        }
    }
}

/// The acknowledgement of one appended activity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppendedOut {
    pub id: Uuid,
    pub seq: u64,
    pub created_at: String,
    pub recorded_at: String,
    /// False when an identical activity with this id was there already.
    pub created: bool,
}

impl From<Appended> for AppendedOut {
    fn from(a: Appended) -> AppendedOut {
        AppendedOut {
            id: a.id,
            seq: a.seq,
            created_at: format_time(&a.created_at),
            recorded_at: format_time(&a.recorded_at),
            created: a.created,
        }
    }
}

/// `pagination` of a list response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pagination {
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
    pub has_more: bool,
    pub total: Option<u64>,
}

/// `{"data": [...], "pagination": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageOut {
    pub data: Vec<ActivityOut>,
    pub pagination: Pagination,
}

impl From<Page> for PageOut {
    fn from(p: Page) -> PageOut {
        PageOut {
            data: p.items.into_iter().map(ActivityOut::from).collect(),
            pagination: Pagination {
                next_cursor: p.next_cursor,
                prev_cursor: p.prev_cursor,
                has_more: p.has_more,
                total: p.total,
            },
        }
    }
}

/// `{"data": [...]}` for lists without paging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataOut<T> {
    pub data: T,
}

/// A tenant on output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantOut {
    pub id: String,
    pub timezone: String,
    pub retention_days: Option<u32>,
    pub created_at: String,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> TenantOut {
        TenantOut {
            id: t.id,
            timezone: t.settings.timezone,
            retention_days: t.settings.retention_days,
            created_at: format_time(&t.created_at),
        }
    }
}

/// `POST /v1/tenants` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantCreateIn {
    pub id: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// `PATCH /v1/tenants/{id}` body: an absent field is left as it is; `retention_days: null`
/// removes the limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatchIn {
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "de_present")]
    pub retention_days: Option<Option<u32>>,
}

/// Distinguishes a present `null` (`Some(None)`) from an absent field (`None`, via `default`).
fn de_present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /v1/tenants/{id}/keys` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCreateIn {
    /// `read`, `write` or `read_write`.
    pub scope: String,
}

/// A key on output; `key` is present only in the response that issues it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyOut {
    pub key_id: String,
    pub tenant: Option<String>,
    pub scope: String,
    pub created_at: String,
    pub revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The wire name of a scope.
pub fn scope_name(s: crate::Scope) -> &'static str {
    match s {
        crate::Scope::Admin => "admin",
        crate::Scope::Read => "read",
        crate::Scope::Write => "write",
        crate::Scope::ReadWrite => "read_write",
    }
}

/// A tenant scope from its wire name.
pub fn parse_scope(s: &str) -> Option<crate::Scope> {
    match s {
        "read" => Some(crate::Scope::Read),
        "write" => Some(crate::Scope::Write),
        "read_write" => Some(crate::Scope::ReadWrite),
        _ => None,
    }
}

impl KeyOut {
    pub fn new(r: &crate::ApiKeyRecord, key: Option<String>) -> KeyOut {
        KeyOut {
            key_id: r.key_id.clone(),
            tenant: r.tenant.clone(),
            scope: scope_name(r.scope).to_owned(),
            created_at: format_time(&r.created_at),
            revoked: r.revoked,
            key,
        }
    }
}

/// One facet value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FacetOut {
    pub value: String,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_takes_rfc3339_or_epoch_ms() {
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<ActivityIn>(
                serde_json::json!({"action": "a", "resource": {"type": "T"}, "created_at": v}),
            )
            .map(|a| a.created_at)
        };
        let t = parse(serde_json::json!("2024-01-02T03:04:05.123456+02:00"))
            .unwrap()
            .unwrap();
        assert_eq!(format_time(&t), "2024-01-02T01:04:05.123456Z");
        let t = parse(serde_json::json!(1_704_164_645_123i64))
            .unwrap()
            .unwrap();
        assert_eq!(format_time(&t), "2024-01-02T03:04:05.123000Z");
        assert_eq!(parse(serde_json::Value::Null).unwrap(), None);
        assert!(parse(serde_json::json!("2024-01-02")).is_err());
        assert!(parse(serde_json::json!(true)).is_err());
    }

    #[test]
    fn served_activities_read_back_as_input() {
        let out = ActivityOut {
            id: uuid::Uuid::nil(),
            seq: 3,
            created_at: "2024-01-02T03:04:05.000000Z".into(),
            recorded_at: "2024-01-02T03:04:06.000000Z".into(),
            action: "a".into(),
            resource: ObjectRefOut {
                kind: "T".into(),
                id: None,
            },
            actor: None,
            target: None,
            context: BTreeMap::new(),
            summary: None,
            reason: None,
            changes: None,
            metadata: None,
            display: None,
        };
        let back: ActivityIn = serde_json::from_value(serde_json::to_value(&out).unwrap()).unwrap();
        assert_eq!(back.id, Some(uuid::Uuid::nil()));
    }
}
