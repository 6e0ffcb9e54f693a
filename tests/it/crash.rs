//! Crash safety: a child process appends in `Sync` durability from several threads and prints
//! each acknowledged batch; the parent SIGKILLs it at a random moment, reopens the store, and
//! checks that every acknowledged append is there, no batch is partial, and `verify` is clean.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actlog::*;
use rand::Rng;
use uuid::Uuid;

/// Set in the child's environment: the data directory to ingest into.
const CHILD_DIR: &str = "ACTLOG_CRASH_CHILD_DIR";
/// Set in the child's environment: a number that makes this run's ids unique.
const CHILD_RUN: &str = "ACTLOG_CRASH_CHILD_RUN";
const ITERATIONS: usize = 50;
const RUNS_PER_DIR: usize = 10;

/// The child's body. Run by itself (without `ACTLOG_CRASH_CHILD_DIR`) it has nothing to do.
#[test]
fn crash_child_process() {
    let (Ok(dir), Ok(run)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_RUN)) else {
        return;
    };
    let run: u64 = run.parse().unwrap();
    // The background indexer folds every few milliseconds, and every other run appends past a
    // small `max_pending` fold themselves: kills land in folds of both kinds too.
    let mut options = Options::new()
        .cache_capacity(8 << 20)
        .index_interval(Duration::from_millis(run % 7 + 1));
    if run.is_multiple_of(2) {
        options = options.max_pending(64);
    }
    let store = Arc::new(Store::open(&dir, options).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..3u64)
        .map(|thread| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                let mut rng = rand::thread_rng();
                for n in 0u64.. {
                    let batch_id = (run << 40) | (thread << 32) | n;
                    let size = rng.gen_range(1..=20usize);
                    let batch: Vec<NewActivity> = (0..size)
                        .map(|i| {
                            let mut a = NewActivity::new(
                                format!("a{}", i % 3),
                                ObjectRef {
                                    kind: "T".into(),
                                    id: Some(format!("r{}", i % 7)),
                                },
                            )
                            .context("batch", batch_id.to_string())
                            .context("size", size.to_string());
                            a.id = (i % 2 == 0).then(|| Uuid::from_u64_pair(batch_id, i as u64));
                            a
                        })
                        .collect();
                    let acks = store.append_batch("crash", batch).unwrap();
                    let ids: Vec<String> = acks.iter().map(|a| a.id.to_string()).collect();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ack {batch_id} {size} {}", ids.join(",")).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_append() {
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(u64, usize, Vec<Uuid>)> = vec![];
    let mut total_acked = 0;
    for run in 0..ITERATIONS {
        // A fresh directory every few runs keeps each check small; within a directory, every
        // kill lands on a store that has already been killed and recovered before.
        if run % RUNS_PER_DIR == 0 {
            dir = tempfile::tempdir().unwrap();
            total_acked += acked.len();
            acked.clear();
            let s = Store::open(dir.path(), Options::default()).unwrap();
            s.create_tenant("crash", TenantSettings::default()).unwrap();
        }
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_RUN, (run + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = vec![];
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    let mut parts = rest.split(' ');
                    let batch: u64 = parts.next().unwrap().parse().unwrap();
                    let size: usize = parts.next().unwrap().parse().unwrap();
                    let ids = parts
                        .next()
                        .unwrap()
                        .split(',')
                        .map(|s| s.parse().unwrap())
                        .collect();
                    lines.push((batch, size, ids));
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked.extend(reader.join().unwrap());

        // Reopened without the indexer, so what the kill left pending stays pending while it
        // is checked, then folded and checked again.
        let store = Store::open(dir.path(), Options::new().background_indexing(false))
            .unwrap_or_else(|e| panic!("reopen after kill {run}: {e}"));
        check_after_kill(&store, run, &acked);
        store.fold_pending(usize::MAX).unwrap();
        assert_eq!(store.pending_count("crash").unwrap(), 0);
        check_after_kill(&store, run, &acked);
    }
    total_acked += acked.len();
    assert!(
        total_acked > ITERATIONS,
        "the children acknowledged too little to test anything: {total_acked}"
    );
}

/// Every acknowledged append is there and found through the index, no batch is partial, and
/// `verify` is clean.
fn check_after_kill(store: &Store, run: usize, acked: &[(u64, usize, Vec<Uuid>)]) {
    {
        for (batch, size, ids) in acked {
            for id in ids {
                assert!(
                    store.get("crash", *id).unwrap().is_some(),
                    "run {run}: acknowledged {id} lost"
                );
            }
            let f = Filter::new().context("batch", batch.to_string());
            assert_eq!(
                store.count("crash", &f).unwrap(),
                *size as u64,
                "run {run}: batch {batch}"
            );
        }
        // No batch is partial, acknowledged or not.
        let mut sizes: std::collections::HashMap<String, (usize, usize)> = Default::default();
        store
            .scan("crash", &Filter::default(), Order::Asc, |a| {
                let b = a.context_value("batch").unwrap().to_owned();
                let size: usize = a.context_value("size").unwrap().parse().unwrap();
                let e = sizes.entry(b).or_insert((size, 0));
                e.1 += 1;
                Ok(true)
            })
            .unwrap();
        for (b, (size, seen)) in sizes {
            assert_eq!(size, seen, "run {run}: batch {b} is partial");
        }
        // The log's order survives the kill whole: `seq`s dense from 1 to the head (nothing is
        // purged here), each batch's consecutive, `recorded_at` never going back.
        let mut seqs = vec![];
        let mut last_recorded = i64::MIN;
        store
            .scan("crash", &Filter::default(), Order::Seq, |a| {
                assert!(
                    a.recorded_at >= last_recorded,
                    "run {run}: recorded_at went back"
                );
                last_recorded = a.recorded_at;
                seqs.push(a.seq);
                Ok(true)
            })
            .unwrap();
        let head = store.last_seq("crash").unwrap();
        assert_eq!(
            seqs,
            (1..=head).collect::<Vec<u64>>(),
            "run {run}: seqs not dense"
        );
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "run {run}: {report:?}");
    }
}
