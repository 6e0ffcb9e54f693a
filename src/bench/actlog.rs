//! actlog's side of the comparison: everything through the public `Store` API, plus the raw sled
//! iteration of the same key range as the ceiling a decoded scan can reach.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::data::{self, Dataset, HOT_ACTOR, HOT_RESOURCE_TYPE, IN_ACTIONS, TENANTS};
use super::util::{disk_usage, float, float_usize, io_err, median, peak_rss_mib, timed, Figures};
use super::Plan;
use crate::{Durability, FacetField, FacetRequest, Filter, Options, Order, Query, Store};

/// sled's page cache: the same budget as SQLite's `cache_size` (256 MB).
const CACHE_BYTES: u64 = 256 << 20;

fn open(path: &Path, durability: Durability) -> io::Result<Store> {
    Store::open(
        path,
        Options {
            durability,
            cache_capacity: CACHE_BYTES,
            ..Options::default()
        },
    )
    .map_err(io_err)
}

/// Creates a store, ingests the whole dataset in batches of 1,000 and measures the rate, the
/// batch latency, the bytes on disk and the peak RSS.
pub fn ingest(plan: &Plan, path: &Path, durability: Durability, tag: &str) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let store = open(path, durability)?;
    for t in TENANTS {
        store
            .create_tenant(t, crate::TenantSettings::default())
            .map_err(io_err)?;
    }
    let mut busy = Duration::ZERO;
    let mut batch_us = Vec::new();
    let mut n = 0u64;
    for batch in Dataset::new(plan.seed, plan.events) {
        let len = batch.events.len();
        let (r, d) = timed(|| store.append_batch(batch.tenant, batch.events));
        r.map_err(io_err)?;
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
        super::util::percentile(&mut batch_us, 99.0) / 1e3,
    );
    fig.insert(format!("ingest.{tag}.peak_rss_mib"), peak_rss_mib());
    // Keys when the last append is acknowledged (records, seq entries, id entries, heads, and
    // what the background indexer had folded by then), then the rest folded, so the read phases
    // find every activity indexed.
    fig.insert(
        format!("ingest.{tag}.keys_per_event_before_final_fold"),
        float(u64::try_from(store.key_count()).unwrap_or(0)) / float(n),
    );
    let (folded, fold_time) = timed(|| store.fold_pending(usize::MAX));
    fig.insert(
        format!("ingest.{tag}.left_to_fold"),
        float(folded.map_err(io_err)?),
    );
    fig.insert(
        format!("ingest.{tag}.final_fold_s"),
        fold_time.as_secs_f64(),
    );
    store.flush().map_err(io_err)?;
    // Counted after the timed part: sled keys written per event (record, index lists, id entries).
    fig.insert(
        format!("ingest.{tag}.keys_per_event"),
        float(u64::try_from(store.key_count()).unwrap_or(0)) / float(n),
    );
    drop(store);
    let bytes = disk_usage(path)?;
    fig.insert(
        format!("disk.{tag}.bytes_per_event"),
        float(bytes) / float(n),
    );
    Ok(fig)
}

/// The whole log through `Store::scan`, each record read in place, or (`owned`) also copied
/// into an owned `Activity`.
fn scan_all(store: &Store, tenant: &str, order: Order, owned: bool) -> io::Result<u64> {
    let mut n = 0u64;
    store
        .scan(tenant, &Filter::default(), order, |a| {
            n += 1;
            if owned {
                std::hint::black_box(a.to_activity()?);
            } else {
                std::hint::black_box(a);
            }
            Ok(true)
        })
        .map_err(io_err)?;
    Ok(n)
}

fn query_all(store: &Store, tenant: &str, order: Order) -> io::Result<u64> {
    let mut q = Query {
        order,
        limit: 1000,
        ..Query::default()
    };
    let mut n = 0u64;
    loop {
        let page = store.query_records(tenant, &q).map_err(io_err)?;
        n += u64::try_from(page.items.len()).unwrap_or(0);
        for r in &page.items {
            std::hint::black_box(r.view().map_err(io_err)?);
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// Raw sled iteration of a tenant's record range: keys and values, nothing decoded.
/// Returns (records, bytes of keys and values).
fn raw_scan(store: &Store, tenant: &str, order: Order) -> io::Result<(u64, u64)> {
    let no = store.tenant_info(tenant).map_err(io_err)?.no;
    store
        .raw_record_scan(no, order != Order::Desc)
        .map_err(io_err)
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

/// The page filters of the report, by name.
pub fn page_filters() -> Vec<(&'static str, Filter)> {
    vec![
        (
            "action",
            Filter {
                actions: vec![data::ACTIONS[0].0.into()],
                ..Filter::default()
            },
        ),
        (
            "resource",
            Filter {
                resource_types: vec![HOT_RESOURCE_TYPE.into()],
                ..Filter::default()
            },
        ),
        (
            "actor",
            Filter {
                actor_types: vec![HOT_ACTOR.0.into()],
                actor_ids: vec![HOT_ACTOR.1.into()],
                ..Filter::default()
            },
        ),
        (
            "in_list",
            Filter {
                actions: IN_ACTIONS.iter().map(|a| (*a).into()).collect(),
                ..Filter::default()
            },
        ),
    ]
}

/// The query for a page of 50 of `filter` at `depth` matches (newest first), its cursor reached
/// by walking pages of 1,000; `None` when the filter has fewer matches than that.
pub fn page_at(
    store: &Store,
    tenant: &str,
    filter: &Filter,
    depth: usize,
) -> io::Result<Option<Query>> {
    let mut q = Query {
        filter: filter.clone(),
        limit: 1000,
        ..Query::default()
    };
    let mut reached = 0;
    while reached < depth {
        let page = store.query_records(tenant, &q).map_err(io_err)?;
        reached += page.items.len();
        q.cursor = page.next_cursor;
        if q.cursor.is_none() {
            return Ok(None);
        }
    }
    q.limit = 50;
    Ok(Some(q))
}

/// Opens the store written by the `sync` ingest, for reading.
pub fn open_read(path: &Path) -> io::Result<Store> {
    open(path, Durability::Sync)
}

/// Every read figure on the store written by the `sync` ingest (cursor pages: see `pages`).
pub fn read(plan: &Plan, path: &Path) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let hot = TENANTS[0];
    let mut opens = Vec::new();

    // Cold: the first scan after open, each direction in a freshly opened store.
    for (order, name) in [(Order::Asc, "fwd"), (Order::Desc, "rev")] {
        let (store, d) = timed(|| open(path, Durability::Sync));
        let store = store?;
        opens.push(d.as_secs_f64() * 1e3);
        let r = rate(1, || scan_all(&store, hot, order, false))?;
        fig.insert(format!("scan.cold_{name}.records_per_s"), r);
    }
    let (store, d) = timed(|| open(path, Durability::Sync));
    let store = store?;
    opens.push(d.as_secs_f64() * 1e3);
    fig.insert("open.ms".into(), median(&mut opens));

    // Warm.
    let (n, bytes) = raw_scan(&store, hot, Order::Asc)?;
    fig.insert("scan.records".into(), float(n));
    fig.insert("scan.bytes".into(), float(bytes));
    for (order, name) in [(Order::Asc, "fwd"), (Order::Desc, "rev")] {
        scan_all(&store, hot, order, false)?;
        let r = rate(plan.runs, || scan_all(&store, hot, order, false))?;
        fig.insert(format!("scan.warm_{name}.records_per_s"), r);
        let r = rate(plan.runs, || scan_all(&store, hot, order, true))?;
        fig.insert(format!("scan.owned_{name}.records_per_s"), r);
        let r = rate(plan.runs, || query_all(&store, hot, order))?;
        fig.insert(format!("scan.paged_{name}.records_per_s"), r);
        let r = rate(plan.runs, || Ok(raw_scan(&store, hot, order)?.0))?;
        fig.insert(format!("scan.raw_{name}.records_per_s"), r);
    }

    // Exact count and facet.
    let count_filter = &page_filters()[0].1;
    let mut ms = Vec::new();
    let mut total = 0;
    for _ in 0..plan.runs.max(3) {
        let (c, d) = timed(|| store.count(hot, count_filter));
        total = c.map_err(io_err)?;
        ms.push(d.as_secs_f64() * 1e3);
    }
    fig.insert("count.action.ms".into(), median(&mut ms));
    fig.insert("count.action.matches".into(), float(total));
    let req = FacetRequest {
        field: FacetField::Action,
        prefix: None,
        since: None,
        until: None,
        limit: 100,
    };
    let mut ms = Vec::new();
    for _ in 0..plan.runs.max(3) {
        let (r, d) = timed(|| store.facets(hot, &req));
        std::hint::black_box(r.map_err(io_err)?);
        ms.push(d.as_secs_f64() * 1e3);
    }
    fig.insert("facet.action.ms".into(), median(&mut ms));

    // Export of every record of every tenant as NDJSON.
    let (n, d) = timed(|| -> io::Result<u64> {
        let mut n = 0u64;
        let mut line = Vec::with_capacity(1024);
        let mut sink = io::sink();
        for t in TENANTS {
            store
                .scan(t, &Filter::default(), Order::Asc, |a| {
                    line.clear();
                    crate::http::render::ndjson_line(&mut line, a);
                    io::Write::write_all(&mut sink, &line)?;
                    n += 1;
                    Ok(true)
                })
                .map_err(io_err)?;
        }
        Ok(n)
    });
    let n = n?;
    fig.insert("export.records_per_s".into(), float(n) / d.as_secs_f64());
    fig.insert("read.peak_rss_mib".into(), peak_rss_mib());
    fig.insert(
        "export.records".into(),
        float_usize(usize::try_from(n).unwrap_or(0)),
    );
    Ok(fig)
}
