//! Whole-log scans of N events: decoded through `Store::scan` and paged through `Store::query`,
//! against raw sled iteration of the same range (the ceiling).

use actlog::bench::internals;
use actlog::{Filter, Order, Query};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

mod common;

fn scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan");
    for n in common::sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = common::filled_store(dir.path(), n);
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("raw_sled", n), &n, |b, _| {
            b.iter(|| internals::raw_scan(&store, "t0").unwrap())
        });
        for (name, order) in [("decoded_fwd", Order::Asc), ("decoded_rev", Order::Desc)] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let mut k = 0u64;
                    store
                        .scan("t0", &Filter::default(), order, |a| {
                            std::hint::black_box(a);
                            k += 1;
                            Ok(true)
                        })
                        .unwrap();
                    k
                })
            });
        }
        g.bench_with_input(BenchmarkId::new("query_pages_1000", n), &n, |b, _| {
            b.iter(|| {
                let mut q = Query::new().limit(1000);
                loop {
                    let page = store.query("t0", &q).unwrap();
                    match page.next_cursor {
                        Some(c) => q.cursor = Some(c),
                        None => break,
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = scan
}
criterion_main!(benches);
