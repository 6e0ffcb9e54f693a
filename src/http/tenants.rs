//! `/v1/tenants`: tenants, their settings and their keys (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::issue_key;
use super::wire::{
    parse_scope, DataOut, KeyCreateIn, KeyOut, TenantCreateIn, TenantOut, TenantPatchIn,
};
use super::{AdminAuth, ApiError, ApiJson, ApiPath, AppState};
use crate::{TenantPatch, TenantSettings};

pub(super) async fn create(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<TenantCreateIn>,
) -> Result<(StatusCode, Json<TenantOut>), ApiError> {
    let mut settings = TenantSettings::default();
    if let Some(tz) = body.timezone {
        settings.timezone = tz;
    }
    settings.retention_days = body.retention_days;
    let id = body.id;
    let t = state
        .blocking(move |s| s.create_tenant(&id, settings))
        .await
        .map_err(rename_tenant_field)?;
    Ok((StatusCode::CREATED, Json(TenantOut::from(t))))
}

/// The library names a bad tenant id `tenant`; in this body the field is `id`.
fn rename_tenant_field(mut e: ApiError) -> ApiError {
    if e.field.as_deref() == Some("tenant") {
        e.field = Some("id".into());
    }
    e
}

pub(super) async fn list(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> Json<DataOut<Vec<TenantOut>>> {
    Json(DataOut {
        data: state
            .store
            .tenants()
            .into_iter()
            .map(TenantOut::from)
            .collect(),
    })
}

pub(super) async fn update(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TenantPatchIn>,
) -> Result<Json<TenantOut>, ApiError> {
    let patch = TenantPatch {
        timezone: body.timezone,
        retention_days: body.retention_days,
    };
    let t = state.blocking(move |s| s.update_tenant(&id, patch)).await?;
    Ok(Json(TenantOut::from(t)))
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<KeyCreateIn>,
) -> Result<(StatusCode, Json<KeyOut>), ApiError> {
    let scope = parse_scope(&body.scope)
        .ok_or_else(|| ApiError::invalid("scope", "must be read, write or read_write"))?;
    if state.store.tenant(&id).is_none() {
        return Err(ApiError::not_found(format!("tenant {id:?} does not exist")));
    }
    let issued = issue_key(Some(id), scope, chrono::Utc::now());
    let record = issued.record.clone();
    state.blocking(move |s| s.put_api_key(&record)).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyOut::new(&issued.record, Some(issued.token))),
    ))
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let missing = || ApiError::not_found(format!("tenant {id:?} has no key {key_id:?}"));
    let lookup = key_id.clone();
    let record = state.blocking(move |s| s.api_key(&lookup)).await?;
    // A key of another tenant (or the admin key) is "not found" under this tenant.
    match record {
        Some(r) if r.tenant.as_deref() == Some(id.as_str()) => {}
        _ => return Err(missing()),
    }
    let revoke = key_id.clone();
    if state.blocking(move |s| s.revoke_api_key(&revoke)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing())
    }
}
