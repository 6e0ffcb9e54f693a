//! Damaged files: random byte flips and truncations of a copy of a real data directory, each
//! opened in a child process (this test binary, re-executed) that opens the store, runs `verify`,
//! walks every page of both tenants and appends one activity. The outcome must be an error that
//! names the problem or a clean recovery (`verify` passes, every query answers, the append is
//! acknowledged); never a hang, a panic that escapes the library, or a process killed by a signal
//! (abort, segfault, out of memory). Every other child opens in relaxed durability, so sled's
//! background flusher runs too.
//!
//! `ACTLOG_DAMAGE_RUNS` sets the number of damaged copies (default 60; the documented long run is
//! 500), `ACTLOG_DAMAGE_SEED` replays one campaign. The summary line is printed with `--nocapture`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actlog::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{copy_dir, env_usize};

/// Set in the child's environment: the damaged data directory to open.
const CHILD_DIR: &str = "ACTLOG_DAMAGE_CHILD_DIR";
/// Set in the child's environment (every other run): open with `Durability::Relaxed`.
const CHILD_RELAXED: &str = "ACTLOG_DAMAGE_CHILD_RELAXED";
const TENANTS: [(&str, usize); 2] = [("alpha", 2000), ("beta", 1000)];
/// A healthy child finishes in about a second; this is generous for a loaded machine.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// The child's address-space limit: a corrupt length that makes sled allocate without bound
/// becomes a visible failure (an abort), not a machine that swaps.
const CHILD_MEMORY_KB: u64 = 8 << 20;

/// The child's body: `OUTCOME <kind> <detail>` on stdout, and `PANIC <thread> <message>` for every
/// panic seen, caught or not (libtest may print its own text before either on the same line).
#[test]
fn damaged_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        println!(
            "PANIC {} {}",
            thread.name().unwrap_or("unnamed"),
            one_line(&msg)
        );
    }));
    // Relaxed durability runs sled's background flusher, so a panic there would show too.
    let relaxed = std::env::var(CHILD_RELAXED).is_ok();
    let store = match Store::open(
        &dir,
        Options::new()
            .cache_capacity(8 << 20)
            .durability(if relaxed {
                Durability::Relaxed
            } else {
                Durability::Sync
            }),
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("OUTCOME open-error {}", one_line(&e.to_string()));
            return;
        }
    };
    match store.verify() {
        Err(e) => {
            println!("OUTCOME verify-error {}", one_line(&e.to_string()));
            return;
        }
        Ok(r) if !r.is_ok() => {
            println!(
                "OUTCOME verify-problem {}",
                one_line(r.problem.as_deref().unwrap_or(""))
            );
            return;
        }
        Ok(_) => {}
    }
    let mut counts = vec![];
    for (tenant, _) in TENANTS {
        match walk(&store, tenant) {
            Ok(n) => counts.push(n.to_string()),
            Err(e) => {
                println!("OUTCOME query-error {tenant}: {}", one_line(&e.to_string()));
                return;
            }
        }
    }
    // The recovered store takes writes again (or says why not).
    let write = store.tenants().first().map(|t| {
        let a = NewActivity::new(
            "after.damage",
            ObjectRef {
                kind: "T".into(),
                id: None,
            },
        );
        store.append(&t.id, a).and_then(|_| store.flush())
    });
    if let Some(Err(e)) = write {
        println!("OUTCOME write-error {}", one_line(&e.to_string()));
        return;
    }
    if relaxed {
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(store);
    println!("OUTCOME clean {}", counts.join(" "));
}

/// Walks every page of a tenant's activities; a missing tenant counts as zero.
fn walk(store: &Store, tenant: &str) -> Result<usize> {
    if store.tenant(tenant).is_none() {
        return Ok(0);
    }
    let mut q = Query::new().limit(500);
    let mut n = 0;
    loop {
        let page = store.query(tenant, &q)?;
        n += page.items.len();
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(n),
        }
    }
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(160).collect()
}

/// Builds the healthy directory: both tenants, a few thousand activities with every index.
fn build(dir: &Path) {
    let store = Store::open(dir, Options::default()).unwrap();
    for (tenant, n) in TENANTS {
        store
            .create_tenant(tenant, TenantSettings::default())
            .unwrap();
        for chunk in 0..n / 100 {
            let batch = (0..100)
                .map(|i| {
                    let k = chunk * 100 + i;
                    {
                        let mut a = NewActivity::new(
                            format!("invoice.{}", ["sent", "paid", "voided"][k % 3]),
                            ObjectRef {
                                kind: "Invoice".into(),
                                id: Some(format!("inv_{k}")),
                            },
                        )
                        .actor(Actor {
                            kind: "user".into(),
                            id: Some(format!("u{}", k % 17)),
                            name: Some(format!("User {}", k % 17)),
                            email: None,
                        })
                        .target(ObjectRef {
                            kind: "Customer".into(),
                            id: Some(format!("c{}", k % 31)),
                        })
                        .context("origin", "API")
                        .summary("x".repeat(k % 200))
                        .metadata(serde_json::json!({"k": k}));
                        a.id = (k % 5 == 0).then(uuid::Uuid::new_v4);
                        a
                    }
                })
                .collect();
            store.append_batch(tenant, batch).unwrap();
        }
    }
    store.flush().unwrap();
    assert!(store.verify().unwrap().is_ok());
}

fn files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), out);
        } else {
            let len = e.metadata().unwrap().len();
            if len > 0 {
                out.push((e.path(), len));
            }
        }
    }
}

/// Damages one file of `dir`; returns a description. The main log file `db` gets most of the
/// damage (it holds the data); the config and snapshot files get the rest.
fn damage(dir: &Path, rng: &mut StdRng) -> String {
    let mut all = vec![];
    files(dir, &mut all);
    all.sort();
    let db: Vec<_> = all.iter().filter(|(p, _)| p.ends_with("db")).collect();
    let others: Vec<_> = all.iter().filter(|(p, _)| !p.ends_with("db")).collect();
    let (path, len) = if rng.gen_bool(0.75) || others.is_empty() {
        db[rng.gen_range(0..db.len())]
    } else {
        others[rng.gen_range(0..others.len())]
    };
    let name = path.strip_prefix(dir).unwrap().display().to_string();
    let mut bytes = std::fs::read(path).unwrap();
    match rng.gen_range(0..10) {
        0..=5 => {
            let n = if rng.gen_bool(0.5) {
                1
            } else {
                rng.gen_range(2..=16)
            };
            for _ in 0..n {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] ^= rng.gen_range(1..=255u8);
            }
            std::fs::write(path, &bytes).unwrap();
            format!("flip {n} byte(s) of {name} ({len} bytes)")
        }
        6..=7 => {
            // A burst: one run of consecutive bytes overwritten, like a bad sector.
            let at = rng.gen_range(0..bytes.len());
            let end = (at + rng.gen_range(1..=512)).min(bytes.len());
            rng.fill(&mut bytes[at..end]);
            std::fs::write(path, &bytes).unwrap();
            format!(
                "overwrite {} bytes at {at} of {name} ({len} bytes)",
                end - at
            )
        }
        _ => {
            let at = rng.gen_range(0..*len);
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(at).unwrap();
            format!("truncate {name} from {len} to {at} bytes")
        }
    }
}

/// What happened to one damaged copy.
struct Run {
    damage: String,
    outcome: String,
    panics: Vec<String>,
    failure: Option<String>,
}

fn run_child(exe: &Path, dir: &Path, relaxed: bool) -> (Option<String>, String, Vec<String>) {
    let mut cmd = Command::new("sh");
    if relaxed {
        cmd.env(CHILD_RELAXED, "1");
    }
    let mut child = cmd
        .arg("-c")
        .arg(format!("ulimit -v {CHILD_MEMORY_KB}; exec \"$0\" \"$@\""))
        .arg(exe)
        .args([
            "--exact",
            "damaged::damaged_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > CHILD_TIMEOUT {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    let err_tail = one_line(&err.lines().rev().take(3).collect::<Vec<_>>().join(" | "));
    let outcome = out
        .lines()
        .find_map(|l| l.split_once("OUTCOME ").map(|(_, o)| o))
        .unwrap_or("")
        .to_owned();
    let panics = out
        .lines()
        .filter_map(|l| l.split_once("PANIC ").map(|(_, p)| p.to_owned()))
        .collect();
    let failure = match status {
        None => Some(format!("hang: no answer within {CHILD_TIMEOUT:?}")),
        Some(s) if !s.success() => Some(format!(
            "child died: {s} (a panic escaped or a signal); stderr: {err_tail}"
        )),
        Some(_) if outcome.is_empty() => {
            Some(format!("child printed no outcome; stderr: {err_tail}"))
        }
        Some(_) => None,
    };
    (failure, outcome, panics)
}

#[test]
fn damaged_files_give_an_error_or_a_clean_recovery() {
    let runs = env_usize("ACTLOG_DAMAGE_RUNS", 60);
    let seed = std::env::var("ACTLOG_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let mut rng = StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let healthy = tempfile::tempdir().unwrap();
    build(healthy.path());
    let expected: Vec<String> = TENANTS.iter().map(|(_, n)| n.to_string()).collect();
    let expected = expected.join(" ");

    let started = Instant::now();
    let mut results: Vec<Run> = vec![];
    for run in 0..runs {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(healthy.path(), copy.path());
        let relaxed = run % 2 == 1;
        let what = damage(copy.path(), &mut rng);
        let what = if relaxed {
            format!("{what}, relaxed")
        } else {
            what
        };
        let (failure, outcome, panics) = run_child(&exe, copy.path(), relaxed);
        // A failed copy is kept for replay by hand (the path is in the report).
        let what = if failure.is_some() {
            format!("{what} [kept in {}]", copy.keep().display())
        } else {
            what
        };
        results.push(Run {
            damage: what,
            outcome,
            panics,
            failure,
        });
    }

    // Tally: errors by kind, clean recoveries with and without every record.
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut panicking_threads: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        let kind = if r.failure.is_some() {
            "FAILURE".to_owned()
        } else if let Some(counts) = r.outcome.strip_prefix("clean ") {
            if counts == expected {
                "clean, every record".to_owned()
            } else {
                "clean, records lost".to_owned()
            }
        } else {
            r.outcome.split(' ').next().unwrap_or("").to_owned()
        };
        *tally.entry(kind).or_default() += 1;
        for p in &r.panics {
            let thread = p.split(' ').next().unwrap_or("").to_owned();
            *panicking_threads.entry(thread).or_default() += 1;
        }
    }
    eprintln!(
        "damaged files: seed {seed}, {runs} runs in {:.0?}: {tally:?}; panics seen (by thread): {panicking_threads:?}",
        started.elapsed()
    );
    for r in &results {
        eprintln!(
            "  {} -> {}{}",
            r.damage,
            r.failure.as_deref().unwrap_or(&r.outcome),
            if r.panics.is_empty() {
                String::new()
            } else {
                format!(" [panics: {}]", r.panics.join("; "))
            }
        );
    }
    let failures: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {runs} damaged copies failed; first: {} -> {}",
        failures.len(),
        failures[0].damage,
        failures[0].failure.as_deref().unwrap_or("")
    );
    for r in &results {
        if !r.outcome.starts_with("clean") {
            let detail = r.outcome.split_once(' ').map_or("", |(_, d)| d);
            assert!(
                detail.len() > 8,
                "an error that does not name its problem: {}",
                r.outcome
            );
        }
    }
}

/// Regression: sled 0.34 opens a truncated log file as an empty database, so `Store::open`
/// used to succeed on it with no tenants and no activities, write a fresh format key and cursor
/// secret over it, and report nothing: every acknowledged write silently gone (and a server
/// would have created a new default tenant and admin key on top). A data directory that already
/// holds a database file but no actlog metadata is damaged, and `open` must say so.
#[test]
fn a_truncated_log_is_an_error_not_an_empty_store() {
    let healthy = tempfile::tempdir().unwrap();
    build(healthy.path());
    let len = std::fs::metadata(healthy.path().join("db")).unwrap().len();
    let mut outcomes = vec![];
    for cut in [1, 4096, len / 4, len / 2, len * 3 / 4] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(healthy.path(), copy.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.path().join("db"))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let outcome = match Store::open(copy.path(), Options::default()) {
            Err(e) => format!("error: {e}"),
            Ok(s) => format!("opened with {} tenants", s.tenants().len()),
        };
        outcomes.push(format!("cut at {cut} of {len}: {outcome}"));
    }
    for o in &outcomes {
        assert!(!o.contains("opened with 0 tenants"), "{outcomes:#?}");
    }
}
