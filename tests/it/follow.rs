//! Following the log: a reader that pages in `seq` order after the last `seq` it saw, while
//! writers append at full speed with `created_at`s in any order, sees every activity exactly
//! once and in commit order, with `recorded_at` never going back; and after a purge of the
//! newest activities and a reopen, `seq` goes on from where it was (never reused).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actlog::*;

fn new_activity(i: u64) -> NewActivity {
    // Times jump around (past and future) so the time order is nothing like the append order.
    let us = 1_700_000_000_000_000 + i64::try_from((i * 7_919) % 1_000).unwrap() * 1_000_000_000
        - 500_000_000_000;
    let action = if i.is_multiple_of(3) {
        "doc.created"
    } else {
        "doc.updated"
    };
    NewActivity::new(action, ObjectRef::new("Doc", format!("d{}", i % 11)))
        .created_at(model::micros_to_time(us))
}

/// Pages `order=seq` after `after` until the end; returns the activities read.
fn read_after(store: &Store, filter: &Filter, after: u64, limit: usize) -> Vec<Activity> {
    let mut f = filter.clone();
    f.conditions.push(Condition::after_seq(after));
    let mut out = vec![];
    let mut cursor = None;
    loop {
        let page = store
            .query(
                "t",
                &Query::new()
                    .filter(f.clone())
                    .order(Order::Seq)
                    .limit(limit)
                    .cursor(cursor),
            )
            .unwrap();
        out.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return out;
        }
    }
}

#[test]
fn a_follower_sees_every_append_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), Options::new().durability(Durability::Relaxed)).unwrap());
    store.create_tenant("t", TenantSettings::default()).unwrap();
    const WRITERS: u64 = 3;
    const PER_WRITER: u64 = 600;
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut i = 0;
                while i < PER_WRITER {
                    let n = 1 + (i * 13 + w) % 17;
                    let batch: Vec<NewActivity> = (i..(i + n).min(PER_WRITER))
                        .map(|k| new_activity(w * PER_WRITER + k))
                        .collect();
                    i += batch.len() as u64;
                    let acks = store.append_batch("t", batch).unwrap();
                    // One batch takes consecutive numbers.
                    assert!(
                        acks.windows(2).all(|p| p[1].seq == p[0].seq + 1),
                        "{acks:?}"
                    );
                }
            })
        })
        .collect();
    let follower = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut seen, mut last_recorded) = (Vec::<u64>::new(), i64::MIN);
            loop {
                // Read `done` first: a read that starts after the writers finished sees all.
                let finished = done.load(Ordering::SeqCst);
                let after = seen.last().copied().unwrap_or(0);
                for a in read_after(&store, &Filter::default(), after, 7) {
                    assert_eq!(a.seq, seen.len() as u64 + 1, "a gap or a repeat");
                    let r = a.recorded_at.timestamp_micros();
                    assert!(r >= last_recorded, "recorded_at went back at seq {}", a.seq);
                    last_recorded = r;
                    seen.push(a.seq);
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = follower.join().unwrap();
    assert_eq!(seen.len() as u64, WRITERS * PER_WRITER);

    // A filtered follower from an offset sees the matches after it, in order.
    let f = Filter::new().actions(["doc.created"]);
    let tail = read_after(&store, &f, 1000, 50);
    assert!(tail.windows(2).all(|p| p[0].seq < p[1].seq));
    assert!(tail
        .iter()
        .all(|a| a.seq > 1000 && a.action == "doc.created"));
    let mut all = vec![];
    store
        .scan("t", &f, Order::Seq, |a| {
            all.push(a.seq);
            Ok(true)
        })
        .unwrap();
    let want: Vec<u64> = all.into_iter().filter(|s| *s > 1000).collect();
    assert_eq!(tail.iter().map(|a| a.seq).collect::<Vec<_>>(), want);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn seq_is_never_reused_after_a_purge_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store
            .create_tenant(
                "t",
                TenantSettings {
                    retention_days: Some(1),
                    ..TenantSettings::default()
                },
            )
            .unwrap();
        // Appended last, but old: the purge takes the newest `seq`s.
        let mut fresh = new_activity(1);
        fresh.created_at = Some(now);
        store.append("t", fresh).unwrap();
        let mut old = new_activity(2);
        old.created_at = Some(now - chrono::Duration::days(3));
        let acks = store
            .append_batch(
                "t",
                vec![old.clone(), {
                    let mut o = old.clone();
                    o.action = "doc.other".into();
                    o
                }],
            )
            .unwrap();
        assert_eq!(acks.iter().map(|a| a.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(store.purge_expired(now).unwrap(), 2);
        assert!(store.verify().unwrap().is_ok());
        assert_eq!(store.last_seq("t").unwrap(), 3);
    }
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.last_seq("t").unwrap(), 3);
    let mut next = new_activity(4);
    next.created_at = Some(now);
    assert_eq!(store.append("t", next).unwrap().seq, 4);
    let seqs: Vec<u64> = read_after(&store, &Filter::default(), 0, 10)
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(
        seqs,
        [1, 4],
        "the purge leaves a gap below the horizon, nothing reused"
    );
    assert!(store.verify().unwrap().is_ok());
}
