//! CPU time per record of the read paths, on an existing store: raw sled iteration, `Store::scan`
//! (read in place, and with an owned copy), pages of 50 by action (read in place, and written as
//! API v1 JSON). Counts the thread's own CPU time (`/proc/thread-self/schedstat`, Linux), not
//! wall time, so on a shared machine other processes' load mostly stays out of the figures.
//!
//! ```sh
//! cargo run --release --features bench --example read_cpu -- DIR [TENANT] [REPS]
//! ```
//! `DIR` is a store, e.g. `actlog-sync` of `actlog bench --keep --dir …` (copy it first if you
//! want to keep it untouched: opening a store may write to it).

use actlog::{Filter, Options, Order, Query, Store};

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: read_cpu DIR [TENANT] [REPS]")?;
    let tenant = args.next().unwrap_or_else(|| "t0".into());
    let reps: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let store = Store::open(&dir, Options::new().cache_capacity(256 << 20))?;
    let mut page_query = Query::new().limit(50);
    page_query.filter.actions = vec!["invoice.updated".into()];
    let cases: [(&str, &dyn Fn() -> actlog::Result<u64>); 6] = [
        ("raw sled iteration", &|| {
            actlog::bench::internals::raw_scan(&store, &tenant)
        }),
        ("scan fwd, in place", &|| {
            scan(&store, &tenant, Order::Asc, false)
        }),
        ("scan rev, in place", &|| {
            scan(&store, &tenant, Order::Desc, false)
        }),
        ("scan fwd, owned", &|| {
            scan(&store, &tenant, Order::Asc, true)
        }),
        ("page of 50 by action, in place", &|| {
            pages(&store, &tenant, &page_query, false)
        }),
        ("page of 50 by action, API JSON", &|| {
            pages(&store, &tenant, &page_query, true)
        }),
    ];
    for (name, f) in cases {
        f()?; // warm
        let mut per_record = Vec::with_capacity(reps);
        for _ in 0..reps {
            // The kernel updates a running thread's CPU time every few milliseconds, so each
            // sample runs for a quarter of a second of CPU.
            let start = thread_cpu_ns();
            let mut n = 0u64;
            while thread_cpu_ns() - start < 0.25e9 {
                n += f()?;
            }
            let n = f64::from(u32::try_from(n.max(1)).unwrap_or(u32::MAX));
            per_record.push((thread_cpu_ns() - start) / n);
        }
        per_record.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.0} ns/record, best {:.0} ({reps} runs)",
            per_record[per_record.len() / 2],
            per_record[0]
        );
    }
    Ok(())
}

fn scan(store: &Store, tenant: &str, order: Order, owned: bool) -> actlog::Result<u64> {
    let mut n = 0;
    store.scan(tenant, &Filter::default(), order, |a| {
        if owned {
            std::hint::black_box(a.to_activity()?);
        } else {
            std::hint::black_box(a);
        }
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// The first page of `q`, 20 times; records served.
fn pages(store: &Store, tenant: &str, q: &Query, json: bool) -> actlog::Result<u64> {
    let mut n = 0;
    for _ in 0..20 {
        let p = store.query_records(tenant, q)?;
        if json {
            std::hint::black_box(actlog::http::render::page(&p)?);
        } else {
            for r in &p.items {
                std::hint::black_box(r.view()?);
            }
        }
        n += u64::try_from(p.items.len()).unwrap_or(0);
    }
    Ok(n)
}
