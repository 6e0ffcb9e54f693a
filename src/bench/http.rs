//! The HTTP layer under load: the real router ([`crate::http::app_with`]) served on loopback by
//! axum, and a bounded load generator of our own in the same process.
//!
//! Four targets, each at 1, 16 and 64 connections: `GET /v1/activities` pages of 50 (a few
//! filters in rotation), `POST /v1/activities` batches of 100 fresh activities and single fresh
//! activities (each request its own durable append; concurrent ones share flushes, so the
//! activities/s of single appends rise with connections), and `GET /bench/fixed`, a
//! precomputed copy of one real page served from memory through the same middleware stack: the
//! ceiling of the HTTP layer itself. Each connection is one keep-alive
//! HTTP/1.1 connection sending requests back to back; every response's status is checked, and
//! anything else counts as an error in the report rather than as a fast request.
//!
//! The server is set up as `actlog serve` runs it (store durability `sync`, the default 128 MB
//! cache, the default limits, request logs formatted at `info`), except that the per-key rate
//! limiter is off and the log lines go to a sink instead of stderr.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::sync::Barrier;
use tower::ServiceExt;
use uuid::Uuid;

use super::data::{Dataset, ACTIONS, HOT_ACTOR, HOT_RESOURCE_TYPE};
use super::options::Plan;
use super::util::{
    cpu_seconds, float, float_usize, io_err, per_second, percentile, span_secs, timed, Figures,
};
use crate::http::{app_with, auth::issue_key, ratelimit::RateLimit, AppState, Config};
use crate::{Durability, NewActivity, Options, Scope, Store, TenantSettings};

/// Connections of each cell.
pub const CONNECTIONS: [usize; 3] = [1, 16, 64];
/// Activities in one `POST` batch.
pub const POST_BATCH: usize = 100;
const POST_BATCH_U64: u64 = 100;
/// Most activities preloaded before the load starts.
const MAX_PRELOAD: u64 = 100_000;
/// The one tenant every request acts on.
const TENANT: &str = "bench";
/// The ceiling's route; not a path of API v1.
const FIXED_PATH: &str = "/bench/fixed";
/// Untimed requests each connection makes before its cell's window opens.
const WARM_REQUESTS: usize = 3;

/// What one cell's connections send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `GET /v1/activities`, limit 50, the filters of [`page_paths`] in rotation.
    Page,
    /// `POST /v1/activities`, a batch of [`POST_BATCH`] with fresh ids.
    Post,
    /// `POST /v1/activities`, one activity object with a fresh id.
    PostOne,
    /// `GET /bench/fixed`: a fixed page from memory.
    Fixed,
}

impl Target {
    /// The name in figure keys (`http.<name>.c16.rps`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Page => "page",
            Target::Post => "post",
            Target::PostOne => "post1",
            Target::Fixed => "fixed",
        }
    }

    fn expect(self) -> StatusCode {
        match self {
            Target::Post | Target::PostOne => StatusCode::CREATED,
            Target::Page | Target::Fixed => StatusCode::OK,
        }
    }

    /// Activities one request of the target appends.
    pub fn activities(self) -> usize {
        match self {
            Target::Post => POST_BATCH,
            Target::PostOne => 1,
            Target::Page | Target::Fixed => 0,
        }
    }
}

/// The order cells run in: reads first, so every page is of the preloaded data only.
pub const TARGETS: [Target; 4] = [Target::Fixed, Target::Page, Target::Post, Target::PostOne];

/// The query strings the page target rotates through (each connection starts at its own
/// place in the rotation; the same rotation for every connection count).
pub fn page_paths() -> Vec<String> {
    vec![
        "/v1/activities?limit=50".to_owned(),
        format!("/v1/activities?limit=50&action={}", ACTIONS[0].0),
        format!("/v1/activities?limit=50&resource_type={HOT_RESOURCE_TYPE}"),
        format!(
            "/v1/activities?limit=50&actor_type={}&actor_id={}",
            HOT_ACTOR.0, HOT_ACTOR.1
        ),
    ]
}

/// An activity as `POST /v1/activities` takes it, with `id` and without `created_at` (the
/// server's clock sets it).
pub fn activity_json(a: &NewActivity, id: Uuid) -> Value {
    let obj = |kind: &str, id: &Option<String>| {
        let mut m = Map::new();
        m.insert("type".into(), kind.into());
        if let Some(id) = id {
            m.insert("id".into(), id.as_str().into());
        }
        Value::Object(m)
    };
    let mut m = Map::new();
    m.insert("id".into(), id.to_string().into());
    m.insert("action".into(), a.action.as_str().into());
    m.insert("resource".into(), obj(&a.resource.kind, &a.resource.id));
    if let Some(actor) = &a.actor {
        let mut o = Map::new();
        o.insert("type".into(), actor.kind.as_str().into());
        for (k, v) in [
            ("id", &actor.id),
            ("name", &actor.name),
            ("email", &actor.email),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), v.as_str().into());
            }
        }
        m.insert("actor".into(), Value::Object(o));
    }
    if let Some(t) = &a.target {
        m.insert("target".into(), obj(&t.kind, &t.id));
    }
    if !a.context.is_empty() {
        let ctx: Map<String, Value> = a
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().into()))
            .collect();
        m.insert("context".into(), Value::Object(ctx));
    }
    for (k, v) in [("summary", &a.summary), ("reason", &a.reason)] {
        if let Some(v) = v {
            m.insert(k.into(), v.as_str().into());
        }
    }
    for (k, v) in [("changes", &a.changes), ("metadata", &a.metadata)] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// A `POST` body built once, whose ids are rewritten in place for every request: each id is a
/// fixed-width 36-byte UUID string at a known offset, so a fresh body is one copy and one UUID
/// formatted per activity, not a serialization.
#[derive(Debug, Clone)]
pub struct BatchTemplate {
    bytes: Vec<u8>,
    id_offsets: Vec<usize>,
}

impl BatchTemplate {
    /// The body `{"activities": [...]}` of `activities`, with placeholder ids.
    pub fn new(activities: &[NewActivity]) -> io::Result<BatchTemplate> {
        let list: Vec<Value> = activities
            .iter()
            .map(|a| activity_json(a, Uuid::nil()))
            .collect();
        BatchTemplate::of(&json!({ "activities": list }), activities.len())
    }

    /// The body of one activity (the object itself), with a placeholder id.
    pub fn one(activity: &NewActivity) -> io::Result<BatchTemplate> {
        BatchTemplate::of(&activity_json(activity, Uuid::nil()), 1)
    }

    /// `body` serialized, with the offsets of its `activities` placeholder ids.
    fn of(body: &Value, activities: usize) -> io::Result<BatchTemplate> {
        let bytes = serde_json::to_vec(body).map_err(io_err)?;
        let needle = format!("\"id\":\"{}\"", Uuid::nil());
        let id_offsets: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle.as_bytes())
            .map(|(i, _)| i + "\"id\":\"".len())
            .collect();
        if id_offsets.len() != activities {
            return Err(io::Error::other(format!(
                "batch template: found {} id placeholders for {activities} activities",
                id_offsets.len(),
            )));
        }
        Ok(BatchTemplate { bytes, id_offsets })
    }

    /// A body with a fresh UUIDv7 for every activity.
    pub fn body(&self) -> Bytes {
        let mut out = self.bytes.clone();
        let mut buf = Uuid::encode_buffer();
        for &at in &self.id_offsets {
            let id = Uuid::now_v7()
                .hyphenated()
                .encode_lower(&mut buf)
                .as_bytes();
            out[at..at + id.len()].copy_from_slice(id);
        }
        Bytes::from(out)
    }
}

/// How long a cell's connections warm up and then measure.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Untimed time before the window (each connection also makes [`WARM_REQUESTS`] first).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
}

/// What one connection measured.
#[derive(Debug, Clone, Default)]
pub struct TaskResult {
    /// Responses with the expected status inside the window.
    pub ok: u64,
    /// Responses with another status, and requests that failed, warm-up included.
    pub errors: u64,
    /// The first error, for the log.
    pub first_error: Option<String>,
    /// Latency of each `ok` response, request sent to body read, in µs.
    pub latency_us: Vec<f64>,
    /// When this connection's window opened and when its last request ended.
    pub window: Option<(Instant, Instant)>,
}

/// One cell's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSummary {
    /// Requests answered with the expected status in the window.
    pub requests: u64,
    pub errors: u64,
    /// From the first window's opening to the last request's end.
    pub secs: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Sums one cell's connections: requests per second over the union of their windows (so a
/// request still running at the window's end counts against the rate, never for it), and
/// percentiles over every connection's latencies together.
pub fn summarize(results: &[TaskResult]) -> CellSummary {
    let requests = results.iter().map(|r| r.ok).sum();
    let errors = results.iter().map(|r| r.errors).sum();
    let secs = span_secs(results.iter().filter_map(|r| r.window));
    let mut lat: Vec<f64> = results
        .iter()
        .flat_map(|r| r.latency_us.iter().copied())
        .collect();
    CellSummary {
        requests,
        errors,
        secs,
        rps: per_second(requests, secs),
        p50_us: percentile(&mut lat, 50.0),
        p99_us: percentile(&mut lat, 99.0),
    }
}

/// What the connections of a cell share.
struct Load {
    addr: SocketAddr,
    target: Target,
    auth: String,
    pages: Vec<String>,
    batch: BatchTemplate,
    one: BatchTemplate,
}

impl Load {
    fn request(&self, n: usize) -> io::Result<Request<Full<Bytes>>> {
        let b = Request::builder()
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &self.auth);
        let req = match self.target {
            Target::Page => b
                .method(Method::GET)
                .uri(&self.pages[n % self.pages.len()])
                .body(Full::new(Bytes::new())),
            Target::Fixed => b
                .method(Method::GET)
                .uri(FIXED_PATH)
                .body(Full::new(Bytes::new())),
            Target::Post | Target::PostOne => {
                let body = if self.target == Target::Post {
                    &self.batch
                } else {
                    &self.one
                };
                b.method(Method::POST)
                    .uri("/v1/activities")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.body()))
            }
        };
        req.map_err(io_err)
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io_err)?;
    // Drives the connection; ends when the sender is dropped or the server closes it.
    tokio::spawn(conn);
    Ok(sender)
}

/// One request on `conn`: its latency in µs when the status is the expected one. A failed
/// request drops the connection and opens a new one (left `None` if that fails too).
async fn one(
    load: &Load,
    conn: &mut Option<Sender>,
    n: usize,
    r: &mut TaskResult,
) -> io::Result<Option<f64>> {
    let Some(sender) = conn.as_mut() else {
        return Ok(None);
    };
    let req = load.request(n)?;
    let t = Instant::now();
    let sent = async {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    let failure = match sent.await {
        Ok((status, body)) if status == load.target.expect() => {
            std::hint::black_box(&body);
            return Ok(Some(t.elapsed().as_secs_f64() * 1e6));
        }
        Ok((status, body)) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            format!("{} {}: {status} {text}", load.target.name(), n)
        }
        Err(e) => {
            *conn = connect(load.addr).await.ok();
            format!("{}: {e}", load.target.name())
        }
    };
    r.errors += 1;
    r.first_error.get_or_insert(failure);
    Ok(None)
}

/// One connection: warm-up, then the shared start, then requests back to back until the window
/// closes.
async fn task(
    load: Arc<Load>,
    no: usize,
    sched: Schedule,
    warm_until: Instant,
    start: Arc<Barrier>,
) -> io::Result<TaskResult> {
    let mut r = TaskResult::default();
    let mut conn = match connect(load.addr).await {
        Ok(c) => Some(c),
        Err(e) => {
            r.errors += 1;
            r.first_error = Some(format!("connect: {e}"));
            None
        }
    };
    let mut n = no;
    let mut warm = 0;
    while conn.is_some() && (warm < WARM_REQUESTS || Instant::now() < warm_until) {
        one(&load, &mut conn, n, &mut r).await?;
        n += 1;
        warm += 1;
    }
    // Every connection reaches the barrier, even a failed one, so no cell can hang on it.
    start.wait().await;
    let opened = Instant::now();
    let end = opened + sched.window;
    while conn.is_some() && Instant::now() < end {
        if let Some(us) = one(&load, &mut conn, n, &mut r).await? {
            r.ok += 1;
            r.latency_us.push(us);
        }
        n += 1;
    }
    r.window = Some((opened, Instant::now()));
    Ok(r)
}

async fn cell(load: Arc<Load>, conns: usize, sched: Schedule) -> io::Result<CellSummary> {
    let start = Arc::new(Barrier::new(conns));
    let warm_until = Instant::now() + sched.warmup;
    let tasks: Vec<_> = (0..conns)
        .map(|no| {
            tokio::spawn(task(
                Arc::clone(&load),
                no,
                sched,
                warm_until,
                Arc::clone(&start),
            ))
        })
        .collect();
    let mut results = Vec::with_capacity(conns);
    for t in tasks {
        results.push(t.await.map_err(io_err)??);
    }
    if let Some(e) = results.iter().find_map(|r| r.first_error.as_ref()) {
        eprintln!(
            "actlog bench: http {} over {conns} connection(s): {} errors, first: {e}",
            load.target.name(),
            results.iter().map(|r| r.errors).sum::<u64>()
        );
    }
    Ok(summarize(&results))
}

/// The request log as `actlog serve` formats it at its default filter, written to a sink.
fn quiet_request_log() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(io::sink)
            .with_ansi(false)
            .finish(),
    )
}

/// Preloads a fresh store in `dir` (relaxed), then reopens it as the server would (`sync`).
/// Returns the store and a read-write key of [`TENANT`].
fn prepare(plan: &Plan, dir: &Path) -> io::Result<(Arc<Store>, String, u64)> {
    let events = plan.events.min(MAX_PRELOAD);
    let token = {
        let store = Store::open(
            dir,
            Options {
                durability: Durability::Relaxed,
                ..Options::default()
            },
        )
        .map_err(io_err)?;
        store
            .create_tenant(TENANT, TenantSettings::default())
            .map_err(io_err)?;
        for batch in Dataset::new(plan.seed, events) {
            store.append_batch(TENANT, batch.events).map_err(io_err)?;
        }
        let key = issue_key(Some(TENANT.into()), Scope::ReadWrite, chrono::Utc::now());
        store.put_api_key(&key.record).map_err(io_err)?;
        store.flush().map_err(io_err)?;
        key.token
    };
    // `actlog serve`'s defaults: sync durability, a 128 MB cache.
    let store = Store::open(dir, Options::default()).map_err(io_err)?;
    Ok((Arc::new(store), token, events))
}

/// The phase: set up, serve, load every cell, shut down.
pub fn run(plan: &Plan, dir: &Path) -> io::Result<Figures> {
    let dispatch = quiet_request_log();
    tracing::dispatcher::with_default(&dispatch, || run_quietly(plan, dir, &dispatch))
}

fn run_quietly(plan: &Plan, dir: &Path, dispatch: &tracing::Dispatch) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let (store, token, events) = prepare(plan, dir)?;
    fig.insert("actlog/http.preload.events".into(), float(events));
    let auth = format!("Bearer {token}");

    let config = Config {
        // Off: one key at full speed is the point of the run, not an abuse to refuse.
        rate_limit: RateLimit {
            per_second: 0,
            ..RateLimit::default()
        },
        // The same: one key on every connection is the load, not a caller to hold back.
        per_key_concurrency: 0,
        ..Config::default()
    };
    let state = AppState::new(Arc::clone(&store), config);
    let d = dispatch.clone();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            // Lives as long as the thread; the runtime's threads end with the phase.
            std::mem::forget(tracing::dispatcher::set_default(&d));
        })
        .build()?;

    // The ceiling's body: one real page, captured once through the router.
    let fixed = server_rt.block_on(async {
        let req = Request::get("/v1/activities?limit=50")
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .map_err(io_err)?;
        let resp = crate::http::app(state.clone())
            .oneshot(req)
            .await
            .map_err(io_err)?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(io_err)?.to_bytes();
        if status != StatusCode::OK {
            return Err(io::Error::other(format!(
                "capturing the fixed page: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body)
    })?;
    fig.insert(
        "actlog/http.fixed.body_bytes".into(),
        float_usize(fixed.len()),
    );
    let extra = Router::new().route(
        FIXED_PATH,
        get(move || {
            let body = fixed.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let router = app_with(state, extra);

    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });

    // The load generator: one thread of its own (this one), beside the server's runtime.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sched = Schedule {
        warmup: plan.http_warmup,
        window: plan.http_window,
    };
    // The POST batches' contents: a batch of the dataset's shape, not one of the preloaded ones.
    let activities = Dataset::new(plan.seed ^ 0x4854_5450, POST_BATCH_U64)
        .flat_map(|b| b.events)
        .collect::<Vec<_>>();
    let batch = BatchTemplate::new(&activities)?;
    // The single activity: the batch's first, under a fresh id each time.
    let one = BatchTemplate::one(
        activities
            .first()
            .ok_or_else(|| io::Error::other("the dataset gave no activity"))?,
    )?;
    let mut total_errors = 0u64;
    let mut fixed_rps = [0.0; CONNECTIONS.len()];
    for target in TARGETS {
        let load = Arc::new(Load {
            addr,
            target,
            auth: auth.clone(),
            pages: page_paths(),
            batch: batch.clone(),
            one: one.clone(),
        });
        if target == Target::Page {
            // Untimed: the cells measure a server whose cache has seen every filter of the
            // rotation, like the library's warm figures.
            let warm = Schedule {
                warmup: Duration::ZERO,
                window: plan.http_page_warmup,
            };
            let s = client_rt.block_on(cell(Arc::clone(&load), 1, warm))?;
            fig.insert("actlog/http.page.warmup.p50_us".into(), s.p50_us);
            total_errors += s.errors;
        }
        for (i, conns) in CONNECTIONS.into_iter().enumerate() {
            eprintln!(
                "actlog bench: http {} over {conns} connection{}…",
                target.name(),
                if conns == 1 { "" } else { "s" }
            );
            let cpu_before = cpu_seconds();
            let (s, wall) = timed(|| client_rt.block_on(cell(Arc::clone(&load), conns, sched)));
            let s = s?;
            let key = |what: &str| format!("actlog/http.{}.c{conns}.{what}", target.name());
            if let (Some((p0, c0)), Some((p1, c1))) = (cpu_before, cpu_seconds()) {
                // Both over the whole cell, warm-up included. The client is this thread (its
                // runtime is current-thread); the rest is the server, its store and sled.
                let secs = wall.as_secs_f64();
                fig.insert(key("cpu_pct"), 100.0 * (p1 - p0) / secs);
                fig.insert(key("client_cpu_pct"), 100.0 * (c1 - c0) / secs);
            }
            fig.insert(key("rps"), s.rps);
            fig.insert(key("p50_us"), s.p50_us);
            fig.insert(key("p99_us"), s.p99_us);
            fig.insert(key("requests"), float(s.requests));
            fig.insert(key("errors"), float(s.errors));
            total_errors += s.errors;
            match target {
                Target::Fixed => fixed_rps[i] = s.rps,
                Target::Page if fixed_rps[i] > 0.0 => {
                    fig.insert(key("share_of_fixed_pct"), 100.0 * s.rps / fixed_rps[i]);
                }
                Target::Post | Target::PostOne => {
                    fig.insert(
                        key("activities_per_s"),
                        s.rps * float_usize(target.activities()),
                    );
                }
                Target::Page => {}
            }
        }
    }
    fig.insert("actlog/http.errors".into(), float(total_errors));

    // Graceful shutdown, then the flush `actlog serve` ends with.
    let _ = stop_tx.send(());
    server_rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), server).await })
        .map_err(|_| io::Error::other("the bench server did not shut down within 10 s"))?
        .map_err(io_err)??;
    store.flush().map_err(io_err)?;
    server_rt.shutdown_timeout(Duration::from_secs(5));
    Ok(fig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::wire::AppendBody;

    fn sample(n: usize) -> Vec<NewActivity> {
        Dataset::new(3, u64::try_from(n).unwrap())
            .flat_map(|b| b.events)
            .collect()
    }

    #[test]
    fn activity_json_round_trips_through_the_wire_format() {
        for a in sample(200) {
            let id = Uuid::now_v7();
            let body = json!({ "activities": [activity_json(&a, id)] });
            let AppendBody::Batch(list) = AppendBody::parse(body).unwrap() else {
                panic!("a batch body parsed as one activity");
            };
            let back = NewActivity::from(list.into_iter().next().unwrap());
            let want = NewActivity {
                id: Some(id),
                created_at: None,
                ..a
            };
            assert_eq!(back, want);
        }
    }

    #[test]
    fn batch_bodies_parse_and_every_id_is_fresh() {
        let acts = sample(POST_BATCH);
        let t = BatchTemplate::new(&acts).unwrap();
        let ids = |b: Bytes| -> Vec<Uuid> {
            let v: Value = serde_json::from_slice(&b).unwrap();
            let AppendBody::Batch(list) = AppendBody::parse(v).unwrap() else {
                panic!("not a batch");
            };
            assert_eq!(list.len(), POST_BATCH);
            for (got, a) in list.iter().zip(&acts) {
                assert_eq!(got.action, a.action);
            }
            list.into_iter().map(|a| a.id.unwrap()).collect()
        };
        let mut all = ids(t.body());
        all.extend(ids(t.body()));
        assert!(all.iter().all(|id| !id.is_nil()));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "ids repeat within or across bodies");
    }

    #[test]
    fn single_bodies_parse_as_one_activity_with_a_fresh_id() {
        let a = sample(1).remove(0);
        let t = BatchTemplate::one(&a).unwrap();
        let id = |b: Bytes| -> Uuid {
            let v: Value = serde_json::from_slice(&b).unwrap();
            let AppendBody::One(got) = AppendBody::parse(v).unwrap() else {
                panic!("a single body parsed as a batch");
            };
            let got = NewActivity::from(*got);
            assert_eq!(got.action, a.action);
            got.id.unwrap()
        };
        let (x, y) = (id(t.body()), id(t.body()));
        assert!(!x.is_nil());
        assert_ne!(x, y);
        assert_eq!(Target::PostOne.activities(), 1);
        assert_eq!(Target::PostOne.expect(), StatusCode::CREATED);
    }

    #[test]
    fn page_paths_are_valid_list_queries() {
        let paths = page_paths();
        assert!(paths.len() >= 3);
        for p in &paths {
            assert!(p.starts_with("/v1/activities?limit=50"), "{p}");
            let uri: axum::http::Uri = p.parse().unwrap();
            assert_eq!(uri.path(), "/v1/activities");
        }
    }

    #[test]
    fn summary_rates_over_the_union_of_windows_and_pools_latencies() {
        let t0 = Instant::now();
        let a = TaskResult {
            ok: 3,
            errors: 0,
            first_error: None,
            latency_us: vec![10.0, 20.0, 30.0],
            window: Some((t0, t0 + Duration::from_secs(1))),
        };
        let b = TaskResult {
            ok: 1,
            errors: 2,
            first_error: Some("post 1: 500".into()),
            latency_us: vec![1000.0],
            window: Some((t0 + Duration::from_millis(1), t0 + Duration::from_secs(2))),
        };
        let s = summarize(&[a, b]);
        assert_eq!(s.requests, 4);
        assert_eq!(s.errors, 2);
        assert_eq!(s.secs, 2.0);
        assert_eq!(s.rps, 2.0);
        assert_eq!(s.p50_us, 20.0);
        assert_eq!(s.p99_us, 1000.0);
    }

    #[test]
    fn summary_of_nothing_is_zero_not_a_division_by_zero() {
        let s = summarize(&[TaskResult::default()]);
        assert_eq!((s.requests, s.errors, s.rps), (0, 0, 0.0));
        assert!(s.p50_us.is_nan());
        assert_eq!(summarize(&[]).secs, 0.0);
    }
}
