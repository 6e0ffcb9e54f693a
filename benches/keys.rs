//! Key and record encoding: what one append pays per key before sled sees it, and what a scan
//! pays per record after sled hands it over. Swept over value lengths.

use actlog::bench::internals;
use actlog::Activity;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use uuid::Uuid;

mod common;

fn activities() -> Vec<Activity> {
    common::batch(7)
        .into_iter()
        .enumerate()
        .map(|(i, a)| Activity {
            id: Uuid::from_u128(i as u128),
            seq: i as u64 + 1,
            created_at: a.created_at.unwrap(),
            recorded_at: a.created_at.unwrap(),
            action: a.action,
            resource: a.resource,
            actor: a.actor,
            target: a.target,
            context: a.context,
            summary: a.summary,
            reason: a.reason,
            changes: a.changes,
            metadata: a.metadata,
            display: a.display,
        })
        .collect()
}

fn index_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys/index_key");
    for len in [8usize, 32, 128] {
        let v1 = "a".repeat(len);
        let v2 = "b".repeat(len);
        let id = Uuid::from_u128(7);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("encode", len), &len, |b, _| {
            b.iter(|| {
                internals::index_key(3, &[v1.as_str(), v2.as_str()], 1_700_000_000_000_000, id)
            })
        });
        let key = internals::index_key(3, &[v1.as_str(), v2.as_str()], 1_700_000_000_000_000, id);
        g.bench_with_input(BenchmarkId::new("decode", len), &len, |b, _| {
            b.iter(|| internals::decode_index_key(&key).unwrap())
        });
    }
    g.finish();
}

fn records(c: &mut Criterion) {
    let acts = activities();
    let encoded: Vec<Vec<u8>> = acts
        .iter()
        .map(|a| internals::encode_record(a).unwrap())
        .collect();
    let n = acts.len() as u64;
    let mut g = c.benchmark_group("keys/record");
    g.throughput(Throughput::Elements(n));
    g.bench_function("encode_1000", |b| {
        b.iter(|| {
            for a in &acts {
                std::hint::black_box(internals::encode_record(a).unwrap());
            }
        })
    });
    g.bench_function("decode_1000", |b| {
        b.iter(|| {
            for (a, e) in acts.iter().zip(&encoded) {
                std::hint::black_box(internals::decode_record(a, e).unwrap());
            }
        })
    });
    g.bench_function("view_1000", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for (a, e) in acts.iter().zip(&encoded) {
                std::hint::black_box(internals::view_record(a, e, false, &mut out).unwrap());
            }
        })
    });
    g.bench_function("view_json_1000", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            for (a, e) in acts.iter().zip(&encoded) {
                std::hint::black_box(internals::view_record(a, e, true, &mut out).unwrap());
            }
        })
    });
    g.bench_function("derived_keys_1000", |b| {
        b.iter_batched(
            || (),
            |()| {
                for a in &acts {
                    std::hint::black_box(internals::derived_keys(1, a));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = index_keys, records
}
criterion_main!(benches);
