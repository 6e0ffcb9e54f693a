//! Exactly once under concurrency: many threads append the same caller-chosen ids at once
//! (singles and overlapping batches, as retrying clients do). Every id is stored once, exactly
//! one append of each id reports `created: true`, and the index entries agree (`verify`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use actlog::*;
use uuid::Uuid;

fn activity(id: Uuid) -> NewActivity {
    NewActivity::new(
        "retry",
        ObjectRef {
            kind: "T".into(),
            id: Some(id.to_string()),
        },
    )
    .id(id)
    .context("k", "v")
}

#[test]
fn concurrent_retries_of_one_id_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
    store.create_tenant("t", TenantSettings::default()).unwrap();
    let ids: Arc<Vec<Uuid>> = Arc::new((0..200).map(|_| Uuid::new_v4()).collect());
    let created = Arc::new(AtomicUsize::new(0));
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, ids, created, barrier) =
                (store.clone(), ids.clone(), created.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Even threads send singles; odd ones overlapping batches of 10 from an offset.
                if t % 2 == 0 {
                    for id in ids.iter() {
                        let r = store.append("t", activity(*id)).unwrap();
                        created.fetch_add(usize::from(r.created), Ordering::SeqCst);
                    }
                } else {
                    for chunk in ids[t..].chunks(10).chain(ids[..t].chunks(10)) {
                        let batch = chunk.iter().map(|id| activity(*id)).collect();
                        for r in store.append_batch("t", batch).unwrap() {
                            created.fetch_add(usize::from(r.created), Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        created.load(Ordering::SeqCst),
        ids.len(),
        "created: true exactly once per id"
    );
    assert_eq!(
        store.count("t", &Filter::default()).unwrap(),
        ids.len() as u64
    );
    let by_index = Filter::new().context("k", "v");
    assert_eq!(store.count("t", &by_index).unwrap(), ids.len() as u64);
    assert!(store.verify().unwrap().is_ok());
}
