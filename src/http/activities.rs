//! `/v1/activities`: append, list, query, get, facets.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::filters::{self, Val};
use super::wire::{AppendBody, AppendedOut, DataOut, FacetOut};
use super::{render, ApiError, ApiJson, ApiPath, AppState, Auth, Params};
use crate::{FacetField, FacetRequest, NewActivity};

/// Most facet values returned when `limit` is not given.
const DEFAULT_FACET_LIMIT: usize = 100;

pub(super) async fn append(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    auth.require_write()?;
    let body = AppendBody::parse(body)?;
    let tenant = auth.tenant.clone();
    let (batch, out) = match body {
        AppendBody::One(a) => {
            let a = NewActivity::from(*a);
            let r = state.blocking(move |s| s.append(&tenant, a)).await?;
            (false, vec![r])
        }
        AppendBody::Batch(list) => {
            let list: Vec<NewActivity> = list.into_iter().map(NewActivity::from).collect();
            let r = state
                .blocking(move |s| s.append_batch(&tenant, list))
                .await?;
            (true, r)
        }
    };
    let created = out.iter().filter(|a| a.created).count();
    if created > 0 {
        state.streams.appended();
    }
    state
        .metrics
        .appended(u64::try_from(created).unwrap_or(u64::MAX));
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let out: Vec<AppendedOut> = out.into_iter().map(AppendedOut::from).collect();
    Ok(if batch {
        (status, Json(DataOut { data: out })).into_response()
    } else {
        match out.into_iter().next() {
            Some(one) => (status, Json(one)).into_response(),
            None => ApiError::internal().into_response(),
        }
    })
}

pub(super) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Params(params): Params,
) -> Result<Response, ApiError> {
    auth.require_read()?;
    let q = filters::query_from_params(&params, state.tenant_tz(&auth.tenant))?;
    run_query(state, auth.tenant, q).await
}

pub(super) async fn query(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    auth.require_read()?;
    let q = filters::query_from_json(&body, state.tenant_tz(&auth.tenant))?;
    run_query(state, auth.tenant, q).await
}

/// Runs a query and writes its page (`wire::PageOut`'s bytes) from the stored records, on the
/// blocking pool.
async fn run_query(state: AppState, tenant: String, q: crate::Query) -> Result<Response, ApiError> {
    let body = state
        .blocking(move |s| render::page(&s.query_records(&tenant, &q)?))
        .await?;
    Ok(json_response(body))
}

/// A JSON body already written, with the header `Json` would set.
pub(super) fn json_response(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    auth.require_read()?;
    let id: uuid::Uuid = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not a UUID")))?;
    let tenant = auth.tenant;
    let body = state
        .blocking(move |s| {
            s.get_record(&tenant, id)?
                .map(|r| -> crate::Result<Vec<u8>> {
                    let mut out = Vec::with_capacity(render::line_capacity(&r));
                    render::activity(&mut out, &r.view()?);
                    Ok(out)
                })
                .transpose()
        })
        .await?;
    match body {
        Some(body) => Ok(json_response(body)),
        None => Err(ApiError::not_found(format!("no activity {id}"))),
    }
}

pub(super) async fn facets(
    State(state): State<AppState>,
    auth: Auth,
    Params(params): Params,
) -> Result<Json<DataOut<Vec<FacetOut>>>, ApiError> {
    auth.require_read()?;
    let mut field = None;
    let mut req = FacetRequest {
        field: FacetField::Action,
        prefix: None,
        since: None,
        until: None,
        limit: DEFAULT_FACET_LIMIT,
    };
    for (name, value) in &params {
        match name.as_str() {
            "field" => field = Some(FacetField::parse(value)?),
            "prefix" => req.prefix = Some(value.clone()),
            "since" => req.since = Some(filters::parse_time_bound("since", value)?),
            "until" => req.until = Some(filters::parse_time_bound("until", value)?),
            "limit" => req.limit = filters::parse_limit(value)?,
            _ => return Err(filters::unknown_param(name)),
        }
    }
    let window = crate::Filter {
        since: req.since,
        until: req.until,
        ..Default::default()
    };
    filters::check_window(&window, state.tenant_tz(&auth.tenant))?;
    req.field = field.ok_or_else(|| {
        ApiError::invalid(
            "field",
            "required: action, resource.type, actor.type, actor.name or context.KEY",
        )
    })?;
    let tenant = auth.tenant;
    let values = state.blocking(move |s| s.facets(&tenant, &req)).await?;
    Ok(Json(DataOut {
        data: values
            .into_iter()
            .map(|v| FacetOut {
                value: v.value,
                count: v.count,
            })
            .collect(),
    }))
}

/// Used by export: the filter part of a query string, plus `format` and `order`.
pub(super) fn export_params(
    params: &[(String, String)],
    tz: chrono_tz::Tz,
) -> Result<(crate::Filter, crate::Order, Option<String>), ApiError> {
    let mut filter = crate::Filter::default();
    let mut order = crate::Order::Desc;
    let mut format = None;
    for (name, value) in params {
        match name.as_str() {
            "format" => format = Some(value.clone()),
            "order" => order = filters::parse_order(value)?,
            _ => {
                if !filters::apply_filter_param(&mut filter, name, Val::Text(value), tz)? {
                    return Err(filters::unknown_param(name));
                }
            }
        }
    }
    filters::check_window(&filter, tz)?;
    Ok((filter, order, format))
}
