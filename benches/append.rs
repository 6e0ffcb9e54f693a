//! Appends: one batch of 1,000 into a store already holding N events, in both durabilities.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

mod common;

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/batch_1000");
    g.throughput(Throughput::Elements(1000));
    for n in common::sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = common::filled_store(dir.path(), n);
        let mut seed = 1_000u64;
        g.bench_with_input(BenchmarkId::new("relaxed", n), &n, |b, _| {
            b.iter_batched(
                || {
                    seed += 1;
                    common::batch(seed)
                },
                |batch| store.append_batch("t0", batch).unwrap(),
                BatchSize::LargeInput,
            )
        });
        drop(store);
        let store = actlog::Store::open(dir.path(), actlog::Options::default()).unwrap();
        g.bench_with_input(BenchmarkId::new("sync", n), &n, |b, _| {
            b.iter_batched(
                || {
                    seed += 1;
                    common::batch(seed)
                },
                |batch| store.append_batch("t0", batch).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = append
}
criterion_main!(benches);
