//! Pagination under load: walk every page of a large log with random page sizes while writer
//! threads append (some with times inside the walked range, some before and after it). Among the
//! activities committed before a walk began, none is skipped; no activity appears twice; pages
//! are in strict `(time, id)` order; nothing appears that was never written. Checked in both
//! orders, over the records source and over a merged index source, and walking back with
//! `prev_cursor`. A neighbour tenant is written at the same times; none of its activities may
//! ever appear (they would count as "never written"). `ACTLOG_PAGING_SIZE` sets the log size (default 10,000; documented run 100,000).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actlog::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::support::env_usize;
use crate::support::store::temp_store;

/// The walked range starts here; activity `k` of the initial load is at `T0 + k * STEP` µs, with
/// every tenth pair sharing a time so ties are broken by id across page boundaries.
const T0: i64 = 1_600_000_000_000_000;
const STEP: i64 = 1_000;

fn time_of(k: usize) -> i64 {
    let k = if k % 10 == 1 { k - 1 } else { k };
    T0 + i64::try_from(k).unwrap() * STEP
}

fn activity(k: usize, time: i64, writer: Option<u64>) -> NewActivity {
    {
        let mut v = NewActivity::new(
            ["invoice.sent", "invoice.paid", "user.login"][k % 3],
            ObjectRef {
                kind: "Invoice".into(),
                id: Some(format!("inv_{}", k % 101)),
            },
        )
        .created_at(model::micros_to_time(time));
        v.context = writer
            .map(|w| vec![("writer".into(), w.to_string())])
            .unwrap_or_default();
        v
    }
}

/// A random page size: often tiny, so page boundaries are crossed thousands of times.
fn page_size(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..10) {
        0..=3 => rng.gen_range(1..=10),
        4..=7 => rng.gen_range(11..=200),
        _ => rng.gen_range(201..=MAX_LIMIT),
    }
}

struct Walk {
    pages: usize,
    seen: Vec<(i64, Uuid)>,
    /// The backward walk (from the last page to the first), when asked for.
    back: Option<Vec<(i64, Uuid)>>,
}

/// Walks from the first page to the last, then (if `back`) from the last page back to the
/// first with `prev_cursor`. Returns the positions in the order they were served.
fn walk(store: &Store, filter: &Filter, order: Order, back: bool, rng: &mut StdRng) -> Walk {
    let mut q = Query::new()
        .filter(filter.clone())
        .order(order)
        .limit(page_size(rng));
    let mut out = Walk {
        pages: 0,
        seen: vec![],
        back: None,
    };
    let (last_page, last_prev) = loop {
        let page = store.query("load", &q).unwrap();
        out.pages += 1;
        let last_page: Vec<(i64, Uuid)> = page
            .items
            .iter()
            .map(|a| (a.created_at.timestamp_micros(), a.id))
            .collect();
        out.seen.extend(last_page.iter().copied());
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break (last_page, page.prev_cursor),
        }
        q.limit = page_size(rng);
    };
    if !back {
        return out;
    }
    // Backwards from the last page: each page's items are in the query's order; prepend them.
    let mut backward = last_page;
    q.cursor = last_prev;
    while q.cursor.is_some() {
        q.limit = page_size(rng);
        let page = store.query("load", &q).unwrap();
        out.pages += 1;
        let mut items: Vec<_> = page
            .items
            .iter()
            .map(|a| (a.created_at.timestamp_micros(), a.id))
            .collect();
        items.extend(backward);
        backward = items;
        q.cursor = page.prev_cursor;
    }
    out.back = Some(backward);
    out
}

/// The checks every walk must pass.
fn check(
    what: &str,
    seen: &[(i64, Uuid)],
    order: Order,
    before: &HashSet<Uuid>,
    written: &Mutex<HashSet<Uuid>>,
) -> (usize, usize) {
    let mut ids = HashSet::new();
    for w in seen.windows(2) {
        let ok = match order {
            Order::Asc | Order::Seq => w[0] < w[1],
            Order::Desc => w[0] > w[1],
        };
        assert!(
            ok,
            "{what}: out of order or repeated: {:?} then {:?}",
            w[0], w[1]
        );
    }
    for (_, id) in seen {
        assert!(ids.insert(*id), "{what}: {id} served twice");
    }
    let skipped = before.iter().filter(|id| !ids.contains(id)).count();
    assert_eq!(skipped, 0, "{what}: {skipped} committed activities skipped");
    let written = written.lock().unwrap();
    let new = ids.len() - before.len();
    for id in &ids {
        assert!(
            before.contains(id) || written.contains(id),
            "{what}: {id} was never written"
        );
    }
    (seen.len(), new)
}

#[test]
fn pages_stay_exact_while_writers_append() {
    let size = env_usize("ACTLOG_PAGING_SIZE", 10_000);
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let (_dir, store) = temp_store();
    store
        .create_tenant("load", TenantSettings::default())
        .unwrap();
    // A neighbour with the same kind of data at the same times: none of it may ever be served.
    store
        .create_tenant("neighbour", TenantSettings::default())
        .unwrap();
    let load_start = Instant::now();
    for chunk in (0..size).step_by(model::MAX_BATCH) {
        let batch: Vec<_> = (chunk..(chunk + model::MAX_BATCH).min(size))
            .map(|k| activity(k, time_of(k), None))
            .collect();
        store.append_batch("load", batch.clone()).unwrap();
        store.append_batch("neighbour", batch).unwrap();
    }
    let load_time = load_start.elapsed();
    let end = time_of(size);

    // Writers: inside the walked range, before it, after it; singles and small batches.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(HashSet::new()));
    let appended = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (store, stop, written, appended) = (
                store.clone(),
                stop.clone(),
                written.clone(),
                appended.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ (w + 1));
                // Bounded: the walks stop the writers long before this.
                for k in 0..1_000_000usize {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = if k % 2 == 0 { 1 } else { rng.gen_range(2..=20) };
                    let batch: Vec<_> = (0..n)
                        .map(|i| {
                            let time = match (k + i) % 4 {
                                0 | 1 => rng.gen_range(T0..end),
                                2 => T0 - rng.gen_range(1..1_000_000_000),
                                _ => end + rng.gen_range(0..1_000_000_000),
                            };
                            activity(k + i, time, Some(w))
                        })
                        .collect();
                    // The ids are recorded before the write, so a walk that sees one knows it.
                    let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::new_v4()).collect();
                    let batch = batch
                        .into_iter()
                        .zip(&ids)
                        .map(|(mut a, id)| {
                            a.id = Some(*id);
                            a
                        })
                        .collect();
                    // Writer 0 writes every other batch to the neighbour tenant.
                    let tenant = if w == 0 && k % 2 == 1 {
                        "neighbour"
                    } else {
                        "load"
                    };
                    if tenant == "load" {
                        written.lock().unwrap().extend(ids.iter().copied());
                    }
                    store.append_batch(tenant, batch).unwrap();
                    appended.fetch_add(n, Ordering::Relaxed);
                    // Steady load rather than a flood, so the log grows by a fraction per walk.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        })
        .collect();

    let mut report = vec![];
    let walks: [(&str, Filter, Order, bool); 4] = [
        ("records desc", Filter::default(), Order::Desc, true),
        ("records asc", Filter::default(), Order::Asc, true),
        (
            "index merge desc",
            Filter::new().actions(["invoice.*", "user.login"]),
            Order::Desc,
            false,
        ),
        (
            "index merge asc",
            Filter::new().actions(["invoice.*", "user.login"]),
            Order::Asc,
            false,
        ),
    ];
    let walk_start = Instant::now();
    for (what, filter, order, back) in walks {
        // What is committed now must all be served; a snapshot under the writers' own record.
        let mut before = HashSet::new();
        store
            .scan("load", &filter, Order::Asc, |a| {
                before.insert(a.id);
                Ok(true)
            })
            .unwrap();
        let appended_before = appended.load(Ordering::Relaxed);
        let w = walk(&store, &filter, order, back, &mut rng);
        let (served, new) = check(what, &w.seen, order, &before, &written);
        let back = w.back.as_ref().map_or(String::new(), |b| {
            let (served, new) = check(&format!("{what}, back"), b, order, &before, &written);
            format!("; walked back: {served} served, {new} of them appended during the walks")
        });
        report.push(format!(
            "{what}: {} pages, {} committed before the walk, {served} served ({new} appended \
             during it), 0 skipped, 0 twice{back}; writers appended {} meanwhile (both tenants)",
            w.pages,
            before.len(),
            appended.load(Ordering::Relaxed) - appended_before
        ));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(store.verify().unwrap().is_ok());
    eprintln!(
        "pagination under load: seed {seed}, {size} activities loaded in {load_time:.1?}, walks in {:.1?}; 0 duplicates, 0 skipped, 0 of the neighbour tenant's\n  {}",
        walk_start.elapsed(),
        report.join("\n  ")
    );
}
