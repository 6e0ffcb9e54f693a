//! Deferred indexing: appends write records, seq entries, id entries and the log head, and
//! nothing else; the indexer folds the index entries of what was appended afterwards.
//!
//! The pending set needs no bookkeeping of its own: it is the tenant's log after its **index
//! watermark** `W` (`keys::watermark_key`), the `seq`s `W+1 ..= head`, read through the seq
//! entries. A fold reads those records in `seq` order, adds their positions to the posting lists
//! (`derived_prefixes`, `postings::insert_grouped`) and moves `W` past them in the same
//! `apply_batch`, so after a crash a record either has all its index entries and is at or below
//! `W`, or has none and is above it: nothing is lost and nothing indexed twice.
//!
//! **Invariant:** records with `seq <= W` have every index entry they imply; records with
//! `seq > W` have none; `W <= head`, and `W` never goes back. A tenant without a watermark key is
//! indexed through its head (stores written before indexing was deferred); the first deferred
//! append writes the key, in its own batch.
//!
//! Folds run under the writer lock (so never beside an append's `seq` assignment or a purge),
//! and apply their batch under the write side of the fold gate, which counts, facets and
//! `verify` hold for reading so that the index and `W` do not move while they add the index's
//! figures to the pending set's. The background indexer's and back-pressure's folds give up on
//! the gate after [`GATE_PATIENCE`] (they wait holding the writer lock, and every append with
//! them); `Store::fold_pending` waits. Queries that merge positions need no gate: they read `W`
//! before the index, and drop a position that both give (see `query/plan.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::keys::{self, Head, Pos};
use super::{check_fault, codec, derived_prefixes, guard, postings, FaultHook, FaultPoint};
use crate::error::Result;

/// Most records one fold step reads and indexes under the writer lock; the background indexer
/// takes the lock again between steps, so appends wait at most one step. Small steps let an
/// append's flush and the next fold overlap: the bench's sync ingest (300k events, 2 cores) ran
/// at ~18k events/s with steps of 2,000 and ~22–25k with 200–500; below 200 the lists grow
/// shorter and the keys per event rise (5.56 at 2,000, 5.59 at 500, 6.1 at 50).
pub(crate) const FOLD_STEP: usize = 500;

/// How long a fold that may give up waits for readers to let go of the index (the gate):
/// the background indexer's folds and an append's back-pressure fold. Such a fold holds the
/// writer lock while it waits, so every append waits with it; readers that overlap without a
/// gap (counts, facets, `verify`, which take the gate recursively) would otherwise stall
/// appends for as long as they keep coming.
pub(crate) const GATE_PATIENCE: Duration = Duration::from_millis(5);

/// Whether a fold waits for the gate however long it takes, or gives up after
/// [`GATE_PATIENCE`] and folds nothing (its records stay pending, still read by every query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// `Store::fold_pending`: the caller asked for the fold.
    Patient,
    /// The background indexer (it comes back next round) and back-pressure (the append goes
    /// on, past `max_pending`, rather than stall behind readers).
    GiveUp,
}

/// A tenant's log as the writer lock holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogState {
    /// The last `seq` and `recorded_at` assigned.
    pub(crate) head: Head,
    /// The index watermark `W`: records up to this `seq` are indexed.
    pub(crate) indexed: u64,
    /// Whether the watermark key is stored (else `indexed` is the head it stands for).
    pub(crate) stored: bool,
}

impl LogState {
    /// How many records wait to be indexed (purged ones included).
    pub(crate) fn pending(&self) -> u64 {
        self.head.seq.saturating_sub(self.indexed)
    }
}

/// The writer lock's map: each tenant's log state, loaded on first use.
pub(crate) type Logs = HashMap<u32, LogState>;

/// What folds share with the store (and its background thread).
#[derive(Clone)]
pub(crate) struct Folder {
    pub(crate) log: sled::Tree,
    /// The writer lock (see `Store::writer`).
    pub(crate) writer: Arc<Mutex<Logs>>,
    /// Held for writing while a fold's batch is applied; for reading by whoever adds index
    /// figures to pending ones and needs the two to stay apart.
    pub(crate) gate: Arc<RwLock<()>>,
    /// Counts the fold's write, so `Store::flush` covers it.
    pub(crate) commit: Arc<super::commit::GroupCommit>,
    pub(crate) fault_hook: Option<FaultHook>,
}

/// A tenant's head as stored (nothing appended yet: seq 0).
pub(crate) fn read_head(log: &sled::Tree, tenant: u32) -> Result<Head> {
    match log.get(keys::head_key(tenant))? {
        Some(v) => Head::decode(&v),
        None => Ok(Head {
            seq: 0,
            recorded_at: i64::MIN,
        }),
    }
}

/// A tenant's index watermark as stored: the head is read first, so a watermark key found
/// absent afterwards was absent when the head was read, and every record up to that head was
/// indexed then (appends that defer indexing write the key before, or with, their first head).
pub(crate) fn read_watermark(log: &sled::Tree, tenant: u32) -> Result<(Head, u64, bool)> {
    let head = read_head(log, tenant)?;
    match log.get(keys::watermark_key(tenant))? {
        Some(v) => Ok((head, keys::decode_watermark(&v)?, true)),
        None => Ok((head, head.seq, false)),
    }
}

impl Folder {
    /// The tenant's state in the writer lock's map, read from the store the first time.
    pub(crate) fn state<'m>(&self, logs: &'m mut Logs, tenant: u32) -> Result<&'m mut LogState> {
        if let std::collections::hash_map::Entry::Vacant(e) = logs.entry(tenant) {
            let (head, indexed, stored) = guard("index", || read_watermark(&self.log, tenant))?;
            e.insert(LogState {
                head,
                indexed,
                stored,
            });
        }
        logs.get_mut(&tenant)
            .ok_or_else(|| crate::Error::Corrupt("log state vanished".into()))
    }

    /// Folds up to `max` pending records of one tenant, taking the writer lock. Returns how
    /// many `seq`s the watermark moved.
    pub(crate) fn fold_tenant(&self, tenant: u32, max: usize, wait: Wait) -> Result<u64> {
        let mut logs = self.writer.lock();
        let st = self.state(&mut logs, tenant)?;
        self.fold_locked(st, tenant, max, wait)
    }

    /// Folds up to `max` pending records of one tenant; the caller holds the writer lock and
    /// passes the tenant's state from it. The postings and the new watermark go in one batch.
    /// Returns 0, folding nothing, when `wait` is [`Wait::GiveUp`] and readers held the gate
    /// past [`GATE_PATIENCE`].
    pub(crate) fn fold_locked(
        &self,
        st: &mut LogState,
        tenant: u32,
        max: usize,
        wait: Wait,
    ) -> Result<u64> {
        let step = u64::try_from(max).unwrap_or(u64::MAX).min(st.pending());
        if step == 0 {
            return Ok(0);
        }
        let to = st.indexed + step;
        let mut batch = sled::Batch::default();
        let mut entries: Vec<(Vec<u8>, Pos)> = Vec::new();
        guard("index", || {
            let range = keys::seq_key(tenant, st.indexed + 1)..=keys::seq_key(tenant, to);
            for kv in self.log.range(range) {
                let (_, v) = kv?;
                let pos = Pos::decode(&v)?;
                // A seq entry and its record go together (appends and purges write and remove
                // them in one batch, under the lock this runs under).
                let Some(bytes) = self.log.get(keys::record_key(tenant, pos))? else {
                    return Err(crate::Error::Corrupt(format!(
                        "seq entry for missing record {}",
                        pos.id
                    )));
                };
                let a = codec::decode(pos, &bytes)?;
                entries.extend(derived_prefixes(tenant, &a).into_iter().map(|p| (p, pos)));
            }
            Ok(())
        })?;
        postings::insert_grouped(&mut batch, entries);
        batch.insert(keys::watermark_key(tenant), &keys::encode_watermark(to)[..]);
        check_fault(&self.fault_hook, FaultPoint::Fold)?;
        {
            let _g = match wait {
                Wait::Patient => self.gate.write(),
                Wait::GiveUp => match self.gate.try_write_for(GATE_PATIENCE) {
                    Some(g) => g,
                    None => return Ok(0),
                },
            };
            guard("index", || Ok(self.log.apply_batch(batch)?))?;
        }
        self.commit.record_write();
        st.indexed = to;
        st.stored = true;
        Ok(step)
    }
}

/// The background indexer: a thread that folds every tenant's pending records every
/// `interval`, or sooner when an append wakes it. Stopped (and joined) on drop.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts the thread. `tenants` lists the tenant numbers to fold, read anew every round.
    pub(crate) fn start(
        folder: Folder,
        tenants: impl Fn() -> Vec<u32> + Send + 'static,
        interval: Duration,
    ) -> Result<Background> {
        // A zero interval would spin: `park_timeout(0)` returns at once.
        let interval = interval.max(Duration::from_millis(1));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("actlog-indexer".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(interval);
                    for tenant in tenants() {
                        loop {
                            if flag.load(Ordering::Acquire) {
                                return;
                            }
                            match folder.fold_tenant(tenant, FOLD_STEP, Wait::GiveUp) {
                                Ok(n) if n == FOLD_STEP as u64 => continue,
                                Ok(_) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e, tenant, "background indexing failed");
                                    break;
                                }
                            }
                        }
                    }
                }
            })?;
        Ok(Background {
            stop,
            handle: Some(handle),
        })
    }

    /// Wakes the thread for a round now.
    pub(crate) fn wake(&self) {
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            if h.join().is_err() {
                tracing::warn!("the background indexer panicked");
            }
        }
    }
}
