//! `GET /v1/activities/export`: every match, streamed as NDJSON or CSV in constant memory.
//!
//! A producer task pages through the store with `Store::query_records` and cursors (page size
//! `Config::export_page_size`); each page is read and encoded (NDJSON straight from the stored
//! records with `render`) in one blocking call, under the same budget, key lane and server slot
//! as any request, and sent into a bounded channel that feeds the response body. Between pages
//! the producer holds no thread: it waits for room in the channel asynchronously. Memory is
//! bounded by the channel's depth times one page.
//!
//! A client that goes away stops the producer (its send fails, or the page in progress is
//! cancelled); a client that stops reading for `Config::write_timeout` makes it give up. A store
//! error or a give-up mid-stream is logged and ends the body with an error, so the client sees a
//! truncated transfer rather than a silent success. One key runs at most
//! `Config::max_exports_per_key` exports at once; more are a 429.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc::error::SendTimeoutError;

use super::wire::format_time;
use super::{activities, render, ApiError, AppState, Auth, ExportSlot, Params};
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
    "seq",
    "recorded_at",
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
    let Some(slot) = state.start_export(&auth.key_id) else {
        let mut resp = ApiError::rate_limited(format!(
            "this key already runs {} exports, the most one key may run at once; retry when one \
             has finished",
            state.config.max_exports_per_key
        ))
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(resp);
    };
    let query = Query {
        filter,
        order,
        limit: state.config.export_page_size.clamp(1, crate::MAX_LIMIT),
        cursor: None,
        include_total: false,
    };
    // Run the first page before answering, so a bad filter is a 400 and not a broken stream.
    let first = read_page(&state, auth.tenant.clone(), query.clone(), format).await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let failed = Arc::new(AtomicBool::new(false));
    let producer = Producer {
        state,
        tenant: auth.tenant,
        key: auth.key_id.clone(),
        query,
        format,
        tx,
        failed: Arc::clone(&failed),
        _slot: slot,
    };
    tokio::spawn(AppState::as_key(auth.key_id, produce(producer, first)));
    let stream =
        futures_util::stream::unfold((rx, failed, false), |(mut rx, failed, ended)| async move {
            if ended {
                return None;
            }
            match rx.recv().await {
                Some(chunk) => Some((Ok(chunk), (rx, failed, false))),
                // The producer is gone: a clean end, or (if it failed) an error that cuts the
                // transfer short.
                None if failed.load(Ordering::Relaxed) => Some((
                    Err(std::io::Error::other("export stopped")),
                    (rx, failed, true),
                )),
                None => None,
            }
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

/// One page, read and encoded on the blocking pool: its bytes and the cursor after it.
async fn read_page(
    state: &AppState,
    tenant: String,
    query: Query,
    format: Format,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    state
        .blocking(move |s| {
            let page = s.query_records(&tenant, &query)?;
            Ok((encode_page(format, &page.items)?, page.next_cursor))
        })
        .await
}

/// What the producer task owns.
struct Producer {
    state: AppState,
    tenant: String,
    key: String,
    query: Query,
    format: Format,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    failed: Arc<AtomicBool>,
    /// Held until the export ends.
    _slot: ExportSlot,
}

async fn produce(mut p: Producer, first: (Vec<u8>, Option<String>)) {
    let stall = p.state.config.write_timeout;
    let mut next = Some(first);
    if p.format == Format::Csv {
        let header = Bytes::from(format!("{}\r\n", CSV_COLUMNS.join(",")));
        if !send(&p, header, stall).await {
            return;
        }
    }
    while let Some((chunk, cursor)) = next.take() {
        if !send(&p, Bytes::from(chunk), stall).await {
            return;
        }
        let Some(cursor) = cursor else {
            return;
        };
        p.query.cursor = Some(cursor);
        let page = async {
            let _turn = p.state.admit(&p.key).await;
            read_page(&p.state, p.tenant.clone(), p.query.clone(), p.format).await
        };
        // A reader that leaves mid-page cancels the page (dropping the read cancels its budget).
        let page = tokio::select! {
            page = page => page,
            () = p.tx.closed() => return,
        };
        match page {
            Ok(page) => next = Some(page),
            Err(e) => {
                tracing::error!(error = %e, "export stopped by a store error");
                p.failed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Sends one chunk, waiting at most `stall` for room. `false` when the export must end: the
/// reader left, or read nothing for `stall` (then the export is marked failed).
async fn send(p: &Producer, chunk: Bytes, stall: std::time::Duration) -> bool {
    match p.tx.send_timeout(chunk, stall).await {
        Ok(()) => true,
        Err(SendTimeoutError::Closed(_)) => false,
        Err(SendTimeoutError::Timeout(_)) => {
            tracing::warn!(
                timeout = ?stall,
                "export stopped: the client read nothing for the write timeout"
            );
            p.failed.store(true, Ordering::Relaxed);
            false
        }
    }
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
    let cells: [String; 19] = [
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
        a.seq.to_string(),
        format_time(&a.recorded_at),
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
            seq: 7,
            created_at: chrono::DateTime::UNIX_EPOCH,
            recorded_at: chrono::DateTime::UNIX_EPOCH,
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
             \"say \"\"hi\"\"\",user,,\"line\nbreak\",,,,,,,,\"{\"\"k\"\":1}\",,7,\
             1970-01-01T00:00:00.000000Z\r\n"
        );
        assert_eq!(CSV_COLUMNS.len(), 19);
    }
}
