//! The phases of a run, in order, and the two that both engines run the same way: ingest and
//! reads. Each phase returns its figures; `orchestrate.rs` decides which process runs it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::data::{Dataset, TENANTS};
use super::engine::Engine;
use super::engines::{ActlogEngine, SqliteEngine};
use super::options::Plan;
use super::orchestrate::peak_rss_mib;
use super::util::{disk_usage, float, median, percentile, timed, Figures};
use super::{http, pages, single};
use crate::{Durability, Order};

/// One phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    ActlogIngestSync,
    SqliteIngestNormal,
    ActlogIngestRelaxed,
    SqliteIngestFull,
    ActlogSingle,
    SqliteSingle,
    ActlogRead,
    SqliteRead,
    Pages,
    Http,
}

/// The phases, in the order they run: the two engines alternate; the HTTP load (actlog only)
/// comes last. The single-append phases (and actlog's fold delay) write scratch stores of their
/// own.
pub const PHASES: [Phase; 10] = [
    Phase::ActlogIngestSync,
    Phase::SqliteIngestNormal,
    Phase::ActlogIngestRelaxed,
    Phase::SqliteIngestFull,
    Phase::ActlogSingle,
    Phase::SqliteSingle,
    Phase::ActlogRead,
    Phase::SqliteRead,
    Phase::Pages,
    Phase::Http,
];

/// Where the `sync` ingests leave the stores every later phase reads.
pub const ACTLOG_DIR: &str = "actlog-sync";
pub const SQLITE_DIR: &str = "sqlite-normal";

impl Phase {
    /// The name in progress lines and in a child's environment.
    pub fn name(self) -> &'static str {
        match self {
            Phase::ActlogIngestSync => "actlog-ingest-sync",
            Phase::SqliteIngestNormal => "sqlite-ingest-normal",
            Phase::ActlogIngestRelaxed => "actlog-ingest-relaxed",
            Phase::SqliteIngestFull => "sqlite-ingest-full",
            Phase::ActlogSingle => "actlog-single",
            Phase::SqliteSingle => "sqlite-single",
            Phase::ActlogRead => "actlog-read",
            Phase::SqliteRead => "sqlite-read",
            Phase::Pages => "pages",
            Phase::Http => "http",
        }
    }

    pub fn from_name(name: &str) -> Option<Phase> {
        PHASES.into_iter().find(|p| p.name() == name)
    }

    /// Whose figures the phase's unprefixed keys are (keys prefixed `actlog/` or `sqlite/`
    /// name their engine themselves).
    pub fn engine(self) -> &'static str {
        if self.name().starts_with(ActlogEngine::NAME) {
            ActlogEngine::NAME
        } else {
            SqliteEngine::NAME
        }
    }

    /// Runs the phase in this process on the stores under `base`.
    pub fn run(self, plan: &Plan, base: &Path) -> io::Result<Figures> {
        let fresh = |name: &str| -> io::Result<PathBuf> {
            let p = base.join(name);
            if p.exists() {
                std::fs::remove_dir_all(&p)?;
            }
            Ok(p)
        };
        // A store written only to be measured, removed after the phase.
        let scratch = |name: &str, f: &dyn Fn(&Path) -> io::Result<Figures>| {
            let p = fresh(name)?;
            let fig = f(&p);
            std::fs::remove_dir_all(&p)?;
            fig
        };
        match self {
            Phase::ActlogIngestSync => {
                ingest::<ActlogEngine>(plan, &fresh(ACTLOG_DIR)?, Durability::Sync, "sync")
            }
            Phase::ActlogIngestRelaxed => scratch("actlog-relaxed", &|p| {
                ingest::<ActlogEngine>(plan, p, Durability::Relaxed, "relaxed")
            }),
            Phase::SqliteIngestNormal => {
                ingest::<SqliteEngine>(plan, &fresh(SQLITE_DIR)?, "NORMAL", "sync")
            }
            Phase::SqliteIngestFull => scratch("sqlite-full", &|p| {
                ingest::<SqliteEngine>(plan, p, "FULL", "full")
            }),
            Phase::ActlogSingle => {
                let mut fig = scratch("actlog-single", &|p| single::run::<ActlogEngine>(plan, p))?;
                fig.extend(scratch("actlog-fold", &|p| single::fold_delay(plan, p))?);
                Ok(fig)
            }
            Phase::SqliteSingle => {
                scratch("sqlite-single", &|p| single::run::<SqliteEngine>(plan, p))
            }
            Phase::ActlogRead => read::<ActlogEngine>(plan, &base.join(ACTLOG_DIR)),
            Phase::SqliteRead => read::<SqliteEngine>(plan, &base.join(SQLITE_DIR)),
            Phase::Pages => {
                let actlog = ActlogEngine::open(&base.join(ACTLOG_DIR))?;
                let sqlite = SqliteEngine::open(&base.join(SQLITE_DIR))?;
                pages::run(plan, &actlog, &sqlite)
            }
            Phase::Http => scratch("actlog-http", &|p| http::run(plan, p)),
        }
    }
}

/// Creates a store, ingests the whole dataset in batches of 1,000 and measures the rate, the
/// batch latency, the peak RSS and (after the engine's own end of ingest) the bytes on disk.
pub fn ingest<E: Engine>(
    plan: &Plan,
    path: &Path,
    durability: E::Durability,
    tag: &str,
) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let mut engine = E::create(plan, path, durability)?;
    let mut busy = Duration::ZERO;
    let mut batch_us = Vec::new();
    let mut n = 0u64;
    for batch in Dataset::new(plan.seed, plan.events) {
        let len = batch.events.len();
        let (r, d) = timed(|| engine.append(batch));
        r?;
        busy += d;
        batch_us.push(d.as_secs_f64() * 1e6);
        n += u64::try_from(len).unwrap_or(0);
    }
    fig.insert(
        format!("ingest.{tag}.events_per_s"),
        float(n) / busy.as_secs_f64(),
    );
    fig.insert(
        format!("ingest.{tag}.batch_p50_ms"),
        median(&mut batch_us) / 1e3,
    );
    fig.insert(
        format!("ingest.{tag}.batch_p99_ms"),
        percentile(&mut batch_us, 99.0) / 1e3,
    );
    fig.insert(format!("ingest.{tag}.peak_rss_mib"), peak_rss_mib());
    engine.finish_ingest(tag, n, &mut fig)?;
    let bytes = disk_usage(path)?;
    fig.insert(
        format!("disk.{tag}.bytes_per_event"),
        float(bytes) / float(n),
    );
    Ok(fig)
}

/// Records per second of `runs` runs of `f` (median).
fn rate(runs: usize, mut f: impl FnMut() -> io::Result<u64>) -> io::Result<f64> {
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (n, d) = timed(&mut f);
        rates.push(float(n?) / d.as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// Milliseconds of the median of `runs` calls of `f`.
fn millis<T>(runs: usize, mut f: impl FnMut() -> io::Result<T>) -> io::Result<(f64, T)> {
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let (r, d) = timed(&mut f);
        last = Some(r?);
        ms.push(d.as_secs_f64() * 1e3);
    }
    let last = last.ok_or_else(|| io::Error::other("no run"))?;
    Ok((median(&mut ms), last))
}

/// Every read figure but the cursor pages (`pages.rs`), on the store the `sync` ingest wrote,
/// all on the busiest tenant but the export.
pub fn read<E: Engine>(plan: &Plan, path: &Path) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let hot = TENANTS[0];
    let mut opens = Vec::new();
    let mut open = || -> io::Result<E> {
        let (engine, d) = timed(|| E::open(path));
        opens.push(d.as_secs_f64() * 1e3);
        engine
    };

    // Cold: the first scan after open, each direction in a freshly opened store.
    for (order, name) in [(Order::Asc, "fwd"), (Order::Desc, "rev")] {
        let engine = open()?;
        let r = rate(1, || engine.scan(hot, order, false))?;
        fig.insert(format!("scan.cold_{name}.records_per_s"), r);
    }
    let engine = open()?;
    fig.insert("open.ms".into(), median(&mut opens));

    // Warm.
    let raw = engine.scan_raw(hot, Order::Asc)?;
    if let Some((n, bytes)) = raw {
        fig.insert("scan.records".into(), float(n));
        fig.insert("scan.bytes".into(), float(bytes));
    }
    for (order, name) in [(Order::Asc, "fwd"), (Order::Desc, "rev")] {
        engine.scan(hot, order, false)?;
        let r = rate(plan.runs, || engine.scan(hot, order, false))?;
        fig.insert(format!("scan.warm_{name}.records_per_s"), r);
        let r = rate(plan.runs, || engine.scan(hot, order, true))?;
        fig.insert(format!("scan.owned_{name}.records_per_s"), r);
        let r = rate(plan.runs, || engine.scan_paged(hot, order))?;
        fig.insert(format!("scan.paged_{name}.records_per_s"), r);
        if raw.is_some() {
            let r = rate(plan.runs, || {
                Ok(engine.scan_raw(hot, order)?.map_or(0, |(n, _)| n))
            })?;
            fig.insert(format!("scan.raw_{name}.records_per_s"), r);
        }
    }
    engine.read_extras(plan, &mut fig)?;

    // Exact count and facet.
    let (ms, total) = millis(plan.runs.max(3), || engine.count(hot))?;
    fig.insert("count.action.ms".into(), ms);
    fig.insert("count.action.matches".into(), float(total));
    let (ms, ()) = millis(plan.runs.max(3), || engine.facet(hot))?;
    fig.insert("facet.action.ms".into(), ms);

    // Export of every record of every tenant as NDJSON.
    let (n, d) = timed(|| engine.export());
    let n = n?;
    fig.insert("export.records_per_s".into(), float(n) / d.as_secs_f64());
    fig.insert("read.peak_rss_mib".into(), peak_rss_mib());
    engine.note_export(n, &mut fig);
    Ok(fig)
}
