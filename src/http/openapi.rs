//! `GET /openapi.json`: the OpenAPI 3.1 document, built from [`super::routes`] (the same table
//! the router is built from), so a route cannot be served without being documented.

use axum::Json;
use serde_json::{json, Map, Value};

use super::{routes, Access};

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in routes() {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(r.query.iter().map(|q| {
                json!({"name": q, "in": "query", "required": *q == "field", "schema": {"type": "string"}})
            }))
            // Velt names its tenant in the body (`data.organizationId`), not in a header.
            .chain(((r.access == Access::Read || r.access == Access::Write)
                && !r.path.starts_with("/compat/velt/"))
            .then(|| {
                json!({"name": "X-Tenant-Id", "in": "header", "required": false,
                       "description": "Admin key only: the tenant to act on (alias x-entity-id). A tenant key naming another tenant gets 403.",
                       "schema": {"type": "string"}})
            }))
            .collect();
        let (status, schema) = r.ok;
        let mut responses = Map::new();
        let ok = if schema.is_empty() {
            json!({"description": "done"})
        } else if schema == "Export" {
            json!({"description": "the matches", "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}}})
        } else if schema == "EventStream" {
            json!({"description": "Server-Sent Events: `id: <seq>`, `event: activity`, `data: <Activity>`; resume with Last-Event-ID or ?cursor=<seq>", "content": {
                "text/event-stream": {"schema": {"type": "string"}}}})
        } else if schema == "Html" {
            json!({"description": "the console page", "content": {"text/html": {"schema": {"type": "string"}}}})
        } else if schema == "Asset" {
            json!({"description": "the file", "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}}}})
        } else if schema == "Metrics" {
            json!({"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}})
        } else {
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
        };
        responses.insert(status.to_string(), ok);
        let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", r.error)}}}});
        if r.access != Access::Public {
            responses.insert("400".into(), err("invalid_argument"));
            responses.insert("401".into(), err("unauthenticated"));
            responses.insert("403".into(), err("permission_denied"));
            responses.insert("404".into(), err("not_found"));
            responses.insert("413".into(), err("payload_too_large"));
            responses.insert("503".into(), err("unavailable"));
        }
        if r.path == "/console/{asset}" {
            responses.insert("404".into(), err("not_found"));
        }
        if r.path == "/v1/activities" && r.method == axum::http::Method::POST {
            responses.insert("200".into(), json!({"description": "every activity was there already", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AppendResult"}}}}));
            responses.insert("409".into(), err("conflict"));
        }
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{} {}", r.method, r.path),
            "parameters": params,
            "responses": responses,
        });
        if r.access == Access::Public {
            op["security"] = json!([]);
        }
        if let Some(body) = r.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "actlog", "version": env!("CARGO_PKG_VERSION"),
                 "description": "An append-only activity log. Errors are {\"error\": {code, message, field}} (the Velt profile's: {\"error\": {message, status}})."},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let s = json!({"type": "string"});
    let ns = json!({"type": ["string", "null"]});
    let obj_ref =
        json!({"type": "object", "required": ["type"], "properties": {"type": s, "id": ns}});
    let actor = json!({"type": "object", "required": ["type"], "properties": {"type": s, "id": ns, "name": ns, "email": ns}});
    let activity_in = json!({"type": "object", "required": ["action", "resource"], "additionalProperties": false, "properties": {
        "id": {"type": "string", "format": "uuid"},
        "seq": {"type": "integer", "description": "assigned by the store; ignored on input"},
        "created_at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "epoch milliseconds"}]},
        "recorded_at": {"type": "string", "format": "date-time", "description": "assigned by the store; ignored on input"},
        "action": s, "resource": obj_ref, "actor": actor, "target": obj_ref,
        "context": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 16},
        "summary": s, "reason": s, "changes": {"type": "object"}, "metadata": {"type": "object"},
        "display": {"type": "object", "properties": {"template": s, "data": {"type": "object"}}},
    }});
    let mut activity = activity_in.clone();
    activity["required"] = json!([
        "id",
        "seq",
        "created_at",
        "recorded_at",
        "action",
        "resource",
        "context"
    ]);
    activity["properties"]["created_at"] = json!({"type": "string", "format": "date-time"});
    activity["properties"]["seq"] = json!({"type": "integer", "minimum": 1, "description": "the tenant's append order: dense from 1, never reused"});
    activity["properties"]["recorded_at"] = json!({"type": "string", "format": "date-time", "description": "the store's clock at commit, non-decreasing in seq"});
    let appended = json!({"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}, "seq": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "recorded_at": {"type": "string", "format": "date-time"}, "created": {"type": "boolean"}}});
    let tenant = json!({"type": "object", "properties": {"id": s, "timezone": s, "retention_days": {"type": ["integer", "null"]}, "created_at": s}});
    let mut all = json!({
        "ActivityIn": activity_in,
        "Activity": activity,
        "AppendBody": {"oneOf": [{"$ref": "#/components/schemas/ActivityIn"},
            {"type": "object", "required": ["activities"], "properties": {"activities": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/ActivityIn"}}}}]},
        "Appended": appended,
        "AppendResult": {"oneOf": [{"$ref": "#/components/schemas/Appended"},
            {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Appended"}}}}]},
        "QueryBody": {"type": "object", "description": "The list parameters as JSON: lists as arrays or comma strings, q as an object, context as an object or context.KEY entries."},
        "Page": {"type": "object", "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Activity"}},
            "pagination": {"type": "object", "properties": {"next_cursor": ns, "prev_cursor": ns, "has_more": {"type": "boolean"}, "total": {"type": ["integer", "null"]}}}}},
        "Facets": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {"value": s, "count": {"type": "integer"}}}}}},
        "Tenant": tenant,
        "Tenants": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Tenant"}}}},
        "TenantCreate": {"type": "object", "required": ["id"], "properties": {"id": s, "timezone": s, "retention_days": {"type": "integer", "minimum": 1}}},
        "TenantPatch": {"type": "object", "properties": {"timezone": s, "retention_days": {"type": ["integer", "null"], "minimum": 1}}},
        "KeyCreate": {"type": "object", "required": ["scope"], "properties": {"scope": {"enum": ["read", "write", "read_write"]}}},
        "Key": {"type": "object", "properties": {"key_id": s, "tenant": ns, "scope": s, "created_at": s, "revoked": {"type": "boolean"}, "key": {"type": "string", "description": "shown only when issued"}}},
        "Health": {"type": "object", "properties": {"status": s}},
        "OpenApi": {"type": "object"},
        "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"enum": ["invalid_argument", "unauthenticated", "permission_denied", "not_found", "method_not_allowed", "conflict", "payload_too_large", "rate_limited", "unavailable", "internal"]},
            "message": s, "field": ns}}}},
    });
    if let (Value::Object(all), Value::Object(compat)) = (&mut all, compat_schemas()) {
        all.extend(compat);
    }
    all
}

/// The profiles' shapes (`/compat/…`; field by field in docs/profiles.md).
fn compat_schemas() -> Value {
    let s = json!({"type": "string"});
    let ns = json!({"type": ["string", "null"]});
    json!({
        "SpaceInvoicesPage": {"type": "object", "description": "Space Invoices' list (docs/profiles.md).", "properties": {
            "data": {"type": "array", "items": {"type": "object", "properties": {
                "id": s, "entity_id": s, "resource_type": s, "resource_id": ns, "action": s, "actor_type": ns,
                "actor_id": ns, "actor_label": ns, "details": {"type": "object"}, "created_at": s}}},
            "pagination": {"type": "object", "properties": {"total": {"type": "integer"}, "next_cursor": ns, "prev_cursor": ns, "has_more": {"type": "boolean"}}},
            "has_more": {"type": "boolean"}, "next_cursor": ns}},
        "SequencePage": {"type": "object", "description": "Sequence's activity logs (docs/profiles.md).", "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "pagination": {"type": "object", "properties": {"after": ns, "before": ns, "totalResultSize": {"type": "integer"}}}}},
        "SubscriptionsPage": {"type": "object", "description": "The subscription platform's rows (docs/profiles.md).", "properties": {
            "data": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"}, "per_page": {"type": "integer"},
            "current_page": {"type": "integer"}, "last_page": {"type": "integer"}, "metadata": {"type": "object"}}},
        "SubscriptionsEntry": {"type": "object", "required": ["action"], "description": "A custom integration_* entry, attached to order_id, subscription_id or loggable_type + loggable_id.", "properties": {
            "action": s, "loggable_type": s, "loggable_id": s, "subscription_id": s, "order_id": s, "description": s,
            "changes": {"type": "object"}, "metadata": {"type": "object"}, "actor_name": s, "subscription_number": s,
            "order_number": s, "customer_name": s, "customer_email": s, "profile_id": s}},
        "SubscriptionsCreated": {"type": "object", "properties": {"data": {"type": "object"}}},
        "SubscriptionsValues": {"type": "object", "properties": {"data": {"type": "array", "items": s}}},
        "VeltQuery": {"type": "object", "required": ["data"], "properties": {"data": {"type": "object", "required": ["organizationId"], "properties": {
            "organizationId": s, "documentId": s, "targetEntityId": s, "featureTypes": {"type": "array", "items": s},
            "actionTypes": {"type": "array", "items": s}, "userId": s, "activityIds": {"type": "array", "items": s},
            "order": {"enum": ["asc", "desc"]}, "pageSize": {"type": "integer", "minimum": 1, "maximum": 1000}, "pageToken": s}}}},
        "VeltPage": {"type": "object", "properties": {"result": {"type": "object", "properties": {
            "status": s, "message": s, "data": {"type": "array", "items": {"type": "object"}}, "pageToken": ns}}}},
        "VeltError": {"type": "object", "properties": {"error": {"type": "object", "required": ["message", "status"], "properties": {
            "message": s, "status": {"enum": ["INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL"]}}}}},
    })
}

pub(super) async fn serve() -> Json<Value> {
    Json(document())
}
