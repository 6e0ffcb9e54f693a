//! The query planner and cursors: a filtered page of 50 at depth 0 and deep (via cursor), an
//! exact count and a facet, over stores of N events.

use actlog::{FacetField, FacetRequest, Filter, Query};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

mod common;

fn filters() -> Vec<(&'static str, Filter)> {
    vec![
        ("action", Filter::new().actions(["invoice.updated"])),
        (
            "actor",
            Filter::new()
                .actor_types(["service"])
                .actor_ids(["svc_sync"]),
        ),
        (
            "in_list",
            Filter::new().actions(["invoice.created", "document.viewed", "payment.received"]),
        ),
    ]
}

fn query(c: &mut Criterion) {
    let mut g = c.benchmark_group("query");
    for n in common::sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = common::filled_store(dir.path(), n);
        for (name, filter) in filters() {
            let mut q = Query::new().filter(filter.clone());
            g.bench_with_input(
                BenchmarkId::new(format!("page50_{name}_first"), n),
                &n,
                |b, _| b.iter(|| store.query("t0", &q).unwrap()),
            );
            // The deepest whole page: walk there once, outside the timed loop.
            let mut walk = Query::new().filter(filter.clone()).limit(1000);
            let mut last = None;
            while let Some(c) = store.query("t0", &walk).unwrap().next_cursor {
                last = Some(c.clone());
                walk.cursor = Some(c);
            }
            q.cursor = last;
            g.bench_with_input(
                BenchmarkId::new(format!("page50_{name}_deep"), n),
                &n,
                |b, _| b.iter(|| store.query("t0", &q).unwrap()),
            );
            g.bench_with_input(BenchmarkId::new(format!("count_{name}"), n), &n, |b, _| {
                b.iter(|| store.count("t0", &filter).unwrap())
            });
        }
        let req = FacetRequest::new(FacetField::Action).limit(100);
        g.bench_with_input(BenchmarkId::new("facet_action", n), &n, |b, _| {
            b.iter(|| store.facets("t0", &req).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = query
}
criterion_main!(benches);
