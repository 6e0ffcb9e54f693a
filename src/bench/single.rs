//! Single-activity appends, each its own transaction and acknowledged durable on its own, at 1
//! and 16 threads for both engines (`ingest.single.c<threads>.…`); and, actlog only, how long
//! after an acknowledged append the background indexer folds it (`ingest.fold_delay_…`).

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::data::{Dataset, TENANTS};
use super::engine::{Engine, SingleAppender};
use super::options::Plan;
use super::util::{float, float_usize, io_err, per_second, percentile, span_secs, Figures};
use crate::{NewActivity, Options, Store, TenantSettings};

/// Appending threads of each cell.
pub const THREADS: [usize; 2] = [1, 16];
/// Untimed appends each thread makes before its cell's window opens.
const WARM_APPENDS: usize = 3;
/// Time between the fold-delay samples' appends.
const FOLD_SPACING: Duration = Duration::from_millis(5);
/// How often the fold-delay measurement reads the pending count.
const FOLD_POLL: Duration = Duration::from_micros(200);
/// Longest a sample may wait to be folded before the phase fails.
const FOLD_PATIENCE: Duration = Duration::from_secs(30);

/// The dataset's activities, each with its batch's tenant, dealt to `threads` threads in turn.
fn dealt(plan: &Plan, threads: usize) -> Vec<Vec<(&'static str, NewActivity)>> {
    let mut queues: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    let all = Dataset::new(plan.seed ^ 0x5349_4e47, plan.single_events)
        .flat_map(|b| b.events.into_iter().map(move |a| (b.tenant, a)));
    for (i, item) in all.enumerate() {
        queues[i % threads].push(item);
    }
    queues
}

/// What one thread measured: appends in the window, their latencies in µs, and when its window
/// opened and its last append ended.
struct Measured {
    appends: u64,
    latency_us: Vec<f64>,
    window: (Instant, Instant),
}

/// One thread: a few untimed appends, the shared start, then appends back to back until the
/// window closes or its activities run out.
fn append_loop(
    appender: &impl SingleAppender,
    queue: Vec<(&'static str, NewActivity)>,
    window: Duration,
    start: &Barrier,
) -> io::Result<Measured> {
    let mut queue = queue.into_iter();
    for (tenant, a) in queue.by_ref().take(WARM_APPENDS) {
        appender.append_one(tenant, a)?;
    }
    start.wait();
    let opened = Instant::now();
    let end = opened + window;
    let mut latency_us = Vec::new();
    for (tenant, a) in queue {
        let t = Instant::now();
        if t >= end {
            break;
        }
        appender.append_one(tenant, a)?;
        latency_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Measured {
        appends: u64::try_from(latency_us.len()).unwrap_or(u64::MAX),
        latency_us,
        window: (opened, Instant::now()),
    })
}

/// Every cell of one engine, each on a fresh store in `dir`, removed after it: appends per
/// second over the union of the threads' windows, and latencies pooled over the threads.
pub fn run<E: Engine>(plan: &Plan, dir: &Path) -> io::Result<Figures> {
    std::fs::create_dir_all(dir)?;
    let mut fig = Figures::new();
    for threads in THREADS {
        let path = dir.join(format!("c{threads}"));
        let appender = E::create_appender(plan, &path)?;
        let queues = dealt(plan, threads);
        let start = Barrier::new(threads);
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = queues
                .into_iter()
                .map(|q| s.spawn(|| append_loop(&appender, q, plan.single_window, &start)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| io::Error::other("an appending thread panicked"))?
                })
                .collect::<io::Result<Vec<Measured>>>()
        })?;
        drop(appender);
        std::fs::remove_dir_all(&path)?;

        let appends: u64 = results.iter().map(|r| r.appends).sum();
        let secs = span_secs(results.iter().map(|r| r.window));
        let mut lat: Vec<f64> = results.into_iter().flat_map(|r| r.latency_us).collect();
        let key = |what: &str| format!("ingest.single.c{threads}.{what}");
        fig.insert(key("events"), float(appends));
        fig.insert(key("events_per_s"), per_second(appends, secs));
        fig.insert(key("p50_us"), percentile(&mut lat, 50.0));
        fig.insert(key("p99_us"), percentile(&mut lat, 99.0));
    }
    Ok(fig)
}

/// How long after an acknowledged append the background indexer has folded it, through the
/// public API as an embedder sees it: a store opened as `actlog serve` opens it (`sync`, the
/// background indexer on at its default interval), one appending thread spacing single appends
/// [`FOLD_SPACING`] apart (so they land at every moment of the indexer's period), and between
/// them the tenant's pending count read every [`FOLD_POLL`]. With this thread the only
/// appender, the log's head is the last `seq` it was given, so `head − pending` is the
/// watermark; every sample at or under it was folded by the time of that read (the delay is
/// over by at most one poll).
pub fn fold_delay(plan: &Plan, dir: &Path) -> io::Result<Figures> {
    let tenant = TENANTS[0];
    let store = Store::open(dir, Options::default()).map_err(io_err)?;
    store
        .create_tenant(tenant, TenantSettings::default())
        .map_err(io_err)?;
    let samples = u64::try_from(plan.fold_samples).unwrap_or(u64::MAX);
    let mut activities = Dataset::new(plan.seed ^ 0x464f_4c44, samples).flat_map(|b| b.events);
    let mut waiting: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut delays_ms = Vec::with_capacity(plan.fold_samples);
    let mut head = 0u64;
    let mut next_append = Instant::now();
    let mut more = true;
    while more || !waiting.is_empty() {
        let now = Instant::now();
        if more && now >= next_append {
            next_append = now + FOLD_SPACING;
            match activities.next() {
                Some(a) => {
                    head = store.append(tenant, a).map_err(io_err)?.seq;
                    waiting.push_back((head, Instant::now()));
                }
                None => more = false,
            }
        }
        let pending = store.pending_count(tenant).map_err(io_err)?;
        let seen = Instant::now();
        let watermark = head.saturating_sub(pending);
        while let Some(&(seq, acked)) = waiting.front() {
            if seq > watermark {
                if seen.duration_since(acked) > FOLD_PATIENCE {
                    return Err(io::Error::other(format!(
                        "the background indexer did not fold seq {seq} within {FOLD_PATIENCE:?}"
                    )));
                }
                break;
            }
            delays_ms.push(seen.duration_since(acked).as_secs_f64() * 1e3);
            waiting.pop_front();
        }
        std::thread::sleep(FOLD_POLL);
    }
    let mut fig = Figures::new();
    fig.insert(
        "ingest.fold_delay_samples".into(),
        float_usize(delays_ms.len()),
    );
    fig.insert(
        "ingest.fold_delay_p50_ms".into(),
        percentile(&mut delays_ms, 50.0),
    );
    fig.insert(
        "ingest.fold_delay_p99_ms".into(),
        percentile(&mut delays_ms, 99.0),
    );
    Ok(fig)
}
