//! `GET /v1/activities/stream`: a live tail. Server-Sent Events of the activities appended to
//! the caller's tenant that match the list filters, in the log's order (`seq`).
//!
//! - Each event is `id: <seq>`, `event: activity`, `data: <the activity as API v1 serves it>`.
//!   The id is the position: reconnecting with `Last-Event-ID: <seq>` (what `EventSource` sends
//!   by itself) or `?cursor=<seq>` (or `?after_seq=<seq>`) delivers every match after it exactly
//!   once, also across a server restart (the `seq` is the store's, not the connection's). Without
//!   one the stream starts at "now": after the tenant's last `seq` when it connects, so a client
//!   can list a page, note the largest `seq` it saw and tail from there without a gap.
//! - The reader is a loop of store reads in `seq` order from the last position sent (one range
//!   read each, `Plan::run_seq`), woken by every append through this server and at least every
//!   [`POLL`] (appends by anyone else: another server on the same store, an import). Events are
//!   produced only when the connection asks for more, so a slow consumer is never buffered for:
//!   it holds one page at most, and the connection's write timeout drops one that stops reading.
//! - Bounded: `max_streams_per_key` streams per key (429 past it) and `max_streams` per server
//!   (503). Keep-alive comments every [`KEEP_ALIVE`]. Server shutdown ends every stream cleanly.
//!
//! Each read takes the key's turn like any request (`AppState::admit`) and runs under a budget;
//! a read that fails (a filter too costly for `--max-examined`, say) ends the stream with an
//! `event: error` carrying the error body.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::filters::{self, Val};
use super::{render, ApiError, AppState, Auth, Params};
use crate::{Condition, Filter, Order, Query};

/// Longest wait for new activities before the store is read again anyway.
const POLL: Duration = Duration::from_secs(1);
/// Interval of keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Activities read per store call.
const PAGE: usize = 100;

/// The running streams, and the signals they wait on.
pub(crate) struct Streams {
    max_per_key: usize,
    max_total: usize,
    running: parking_lot::Mutex<(HashMap<String, usize>, usize)>,
    /// Woken after every append through this server.
    appended: tokio::sync::Notify,
    /// Set once when the server shuts down.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Streams {
    pub(crate) fn new(max_per_key: usize, max_total: usize) -> Streams {
        Streams {
            max_per_key,
            max_total,
            running: parking_lot::Mutex::new((HashMap::new(), 0)),
            appended: tokio::sync::Notify::new(),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Wakes every stream: something was appended.
    pub(crate) fn appended(&self) {
        self.appended.notify_waiters();
    }

    /// Ends every stream (server shutdown).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    fn start(self: &Arc<Self>, key: &str) -> Result<StreamSlot, ApiError> {
        let mut running = self.running.lock();
        let (per_key, total) = &mut *running;
        if *total >= self.max_total {
            return Err(ApiError::unavailable(format!(
                "the server already serves {} streams, the most it serves at once",
                self.max_total
            )));
        }
        let n = per_key.entry(key.to_owned()).or_insert(0);
        if *n >= self.max_per_key {
            return Err(ApiError::rate_limited(format!(
                "this key already has {} open streams, the most one key may open",
                self.max_per_key
            )));
        }
        *n += 1;
        *total += 1;
        Ok(StreamSlot {
            streams: Arc::clone(self),
            key: key.to_owned(),
        })
    }
}

/// One open stream's place; given back when the stream ends.
struct StreamSlot {
    streams: Arc<Streams>,
    key: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut running = self.streams.running.lock();
        let (per_key, total) = &mut *running;
        *total = total.saturating_sub(1);
        if let Some(n) = per_key.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_key.remove(&self.key);
            }
        }
    }
}

pub(super) async fn stream(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Params(params): Params,
) -> Result<Response, ApiError> {
    auth.require_read()?;
    let tz = state.tenant_tz(&auth.tenant);
    let mut filter = Filter::default();
    let mut after = None;
    for (name, value) in &params {
        match name.as_str() {
            "cursor" | "after_seq" => {
                if after.replace(filters::parse_seq(name, value)?).is_some() {
                    return Err(ApiError::invalid(name, "one resume position only"));
                }
            }
            "order" | "limit" | "include_total" => {
                return Err(ApiError::invalid(
                    name,
                    "a stream is in the log's order, one activity an event",
                ))
            }
            _ => {
                if !filters::apply_filter_param(&mut filter, name, Val::Text(value), tz)? {
                    return Err(filters::unknown_param(name));
                }
            }
        }
    }
    filters::check_window(&filter, tz)?;
    // What the browser sends by itself on reconnecting: the newest position wins.
    if let Some(v) = headers.get("last-event-id") {
        let v = v
            .to_str()
            .map_err(|_| ApiError::invalid("Last-Event-ID", "must be a seq"))?;
        after = Some(filters::parse_seq("Last-Event-ID", v)?);
    }
    let slot = match state.streams.start(&auth.key_id) {
        Ok(slot) => slot,
        Err(e) => {
            let retry = e.status == StatusCode::TOO_MANY_REQUESTS;
            let mut resp = e.into_response();
            if retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return Ok(resp);
        }
    };
    let tenant = auth.tenant.clone();
    let after = match after {
        Some(a) => a,
        None => state.blocking(move |s| s.last_seq(&tenant)).await?,
    };
    let mut tail = Tail {
        state,
        tenant: auth.tenant,
        key: auth.key_id,
        filter,
        after,
        ready: VecDeque::new(),
        done: false,
        _slot: slot,
    };
    // The first read before answering, so a filter the store refuses is a 400, not a broken
    // stream.
    tail.read().await?;
    let events = futures_util::stream::unfold(tail, |mut t| async move {
        t.next().await.map(|e| (Ok::<_, Infallible>(e), t))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Proxies must pass events through as they come.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// One stream's reader.
struct Tail {
    state: AppState,
    tenant: String,
    key: String,
    filter: Filter,
    /// The last position delivered (or skipped as not matching).
    after: u64,
    ready: VecDeque<Event>,
    done: bool,
    _slot: StreamSlot,
}

impl Tail {
    /// Reads the matches after `after` into `ready`; returns whether it found any.
    async fn read(&mut self) -> Result<bool, ApiError> {
        let mut filter = self.filter.clone();
        filter.conditions.push(Condition::after_seq(self.after));
        let query = Query {
            filter,
            order: Order::Seq,
            limit: PAGE,
            cursor: None,
            include_total: false,
        };
        let tenant = self.tenant.clone();
        let _turn = self.state.admit(&self.key).await;
        let (events, last) = self
            .state
            .blocking(move |s| {
                // Read the head first: when the page is not full, every `seq` up to it has been
                // read (appends after it may or may not have been), so non-matches up to it need
                // not be read again.
                let head = s.last_seq(&tenant)?;
                let page = s.query_records(&tenant, &query)?;
                let mut events = Vec::with_capacity(page.items.len());
                let mut last = None;
                for r in &page.items {
                    let a = r.view()?;
                    let mut json = Vec::with_capacity(render::line_capacity(r));
                    render::activity(&mut json, &a);
                    let data = String::from_utf8(json)
                        .map_err(|_| crate::Error::Corrupt("rendered activity".into()))?;
                    events.push(
                        Event::default()
                            .id(a.seq.to_string())
                            .event("activity")
                            .data(data),
                    );
                    last = Some(a.seq);
                }
                // The page may also hold appends that landed after `head` was read.
                let last = if page.has_more {
                    last
                } else {
                    Some(last.map_or(head, |l: u64| l.max(head)))
                };
                Ok((events, last))
            })
            .await?;
        let found = !events.is_empty();
        self.ready.extend(events);
        if let Some(last) = last {
            self.after = self.after.max(last);
        }
        Ok(found)
    }

    /// The next event, waiting for appends as long as it takes; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        let mut closing = self.state.streams.closing.subscribe();
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.done || *closing.borrow() {
                return None;
            }
            let streams = Arc::clone(&self.state.streams);
            let woken = streams.appended.notified();
            tokio::pin!(woken);
            // Registered before the read, so an append that lands during it is not missed.
            woken.as_mut().enable();
            match self.read().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e.message, "stream ended by a failed read");
                    self.done = true;
                    return Some(Event::default().event("error").data(e.body_json()));
                }
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(POLL) => {}
                _ = closing.changed() => return None,
            }
        }
    }
}
