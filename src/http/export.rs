//! `GET /v1/activities/export`: every match, streamed as NDJSON or CSV in constant memory.
//!
//! A blocking task pages through the store with `Store::query_records` and cursors (page size
//! `Config::export_page_size`), encodes each page (NDJSON straight from the stored records with
//! `render`), and sends it into a bounded channel that feeds
//! the response body. Memory is bounded by the channel's depth times one page; a client that
//! stops reading stops the producer (its send fails), and a store error mid-stream is logged and
//! ends the body abruptly, so the client sees a truncated transfer rather than a silent success.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::wire::format_time;
use super::{activities, render, ApiError, AppState, Auth, Params};
use crate::{Activity, Query, Record};

/// Pages buffered between the store and the socket.
const CHANNEL_DEPTH: usize = 4;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The CSV header; nested objects (context, changes, metadata, display) are JSON in one cell.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "action",
    "resource_type",
    "resource_id",
    "actor_type",
    "actor_id",
    "actor_name",
    "actor_email",
    "target_type",
    "target_id",
    "context",
    "summary",
    "reason",
    "changes",
    "metadata",
    "display",
];

pub(super) async fn export(
    State(state): State<AppState>,
    auth: Auth,
    Params(params): Params,
) -> Result<Response, ApiError> {
    auth.require_read()?;
    let (filter, order, format) =
        activities::export_params(&params, state.tenant_tz(&auth.tenant))?;
    let format = match format.as_deref() {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError::invalid("format", "must be ndjson or csv")),
    };
    let query = Query {
        filter,
        order,
        limit: state.config.export_page_size.clamp(1, crate::MAX_LIMIT),
        cursor: None,
        include_total: false,
    };
    // Run the first page before answering, so a bad filter is a 400 and not a broken stream.
    let tenant = auth.tenant.clone();
    let q = query.clone();
    let first = state
        .blocking(move |s| s.query_records(&tenant, &q))
        .await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_DEPTH);
    let store = std::sync::Arc::clone(&state.store);
    let tenant = auth.tenant;
    tokio::task::spawn_blocking(move || {
        if format == Format::Csv {
            let _ = tx.blocking_send(Ok(Bytes::from(format!("{}\r\n", CSV_COLUMNS.join(",")))));
        }
        let mut page = first;
        let mut query = query;
        loop {
            let chunk = match encode_page(format, &page.items) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped by a damaged record");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            };
            if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return; // the client went away
            }
            let Some(next) = page.next_cursor else {
                return;
            };
            query.cursor = Some(next);
            page = match store.query_records(&tenant, &query) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped by a store error");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            };
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let content_type = match format {
        Format::Ndjson => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// One page's lines. Fails only on a damaged record.
fn encode_page(format: Format, items: &[Record]) -> crate::Result<Vec<u8>> {
    let size: usize = items
        .iter()
        .map(render::line_capacity)
        .fold(0, usize::saturating_add);
    let mut out = Vec::with_capacity(size);
    for r in items {
        match format {
            Format::Ndjson => render::ndjson_line(&mut out, &r.view()?),
            Format::Csv => out.extend_from_slice(csv_row(&r.to_activity()?).as_bytes()),
        }
    }
    Ok(out)
}

/// One CSV row (RFC 4180: cells with `,` `"` CR or LF are quoted, quotes doubled).
pub fn csv_row(a: &Activity) -> String {
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let actor = a.actor.as_ref();
    let target = a.target.as_ref();
    let context = if a.context.is_empty() {
        String::new()
    } else {
        let m: serde_json::Map<String, serde_json::Value> = a
            .context
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(m).to_string()
    };
    let display = a
        .display
        .as_ref()
        .map(|d| serde_json::json!({"template": d.template, "data": d.data}).to_string())
        .unwrap_or_default();
    let cells: [String; 17] = [
        a.id.to_string(),
        format_time(&a.created_at),
        a.action.clone(),
        a.resource.kind.clone(),
        a.resource.id.clone().unwrap_or_default(),
        actor.map(|x| x.kind.clone()).unwrap_or_default(),
        actor.and_then(|x| x.id.clone()).unwrap_or_default(),
        actor.and_then(|x| x.name.clone()).unwrap_or_default(),
        actor.and_then(|x| x.email.clone()).unwrap_or_default(),
        target.map(|x| x.kind.clone()).unwrap_or_default(),
        target.and_then(|x| x.id.clone()).unwrap_or_default(),
        context,
        a.summary.clone().unwrap_or_default(),
        a.reason.clone().unwrap_or_default(),
        json(&a.changes),
        json(&a.metadata),
        display,
    ];
    let mut row = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        if c.contains([',', '"', '\r', '\n']) {
            let _ = write!(row, "\"{}\"", c.replace('"', "\"\""));
        } else {
            row.push_str(c);
        }
    }
    row.push_str("\r\n");
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, ObjectRef};

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        let a = Activity {
            id: uuid::Uuid::nil(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            action: "a,b".into(),
            resource: ObjectRef {
                kind: "T".into(),
                id: Some("say \"hi\"".into()),
            },
            actor: Some(Actor {
                kind: "user".into(),
                id: None,
                name: Some("line\nbreak".into()),
                email: None,
            }),
            target: None,
            context: vec![],
            summary: None,
            reason: None,
            changes: None,
            metadata: Some(serde_json::json!({"k": 1})),
            display: None,
        };
        let row = csv_row(&a);
        assert_eq!(
            row,
            "00000000-0000-0000-0000-000000000000,1970-01-01T00:00:00.000000Z,\"a,b\",T,\
             \"say \"\"hi\"\"\",user,,\"line\nbreak\",,,,,,,,\"{\"\"k\"\":1}\",\r\n"
        );
        assert_eq!(CSV_COLUMNS.len(), 17);
    }
}
