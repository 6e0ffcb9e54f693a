//! Group commit: appends in `Sync` durability wait for a flush that covers their write, and one
//! flush covers every write made before it started, so concurrent appends share it.
//!
//! **Invariant:** `flushed` only ever moves to a `written` value read *before* the flush began,
//! so a waiter released by it really is on disk.

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

#[derive(Default)]
struct State {
    /// Sequence number of the last write applied to sled.
    written: u64,
    /// Every write up to this number is on disk.
    flushed: u64,
    /// A flush is running; others wait for it instead of starting their own.
    flushing: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Records one applied write and returns its sequence number.
    pub(crate) fn record_write(&self) -> u64 {
        let mut s = self.state.lock();
        s.written += 1;
        s.written
    }

    pub(crate) fn written(&self) -> u64 {
        self.state.lock().written
    }

    /// Returns once write `seq` is on disk, running `flush` itself if no flush is under way. A
    /// failed flush is returned to the caller that ran it; its waiters retry with a flush of their own.
    pub(crate) fn wait(&self, seq: u64, flush: impl Fn() -> Result<()>) -> Result<()> {
        let mut s = self.state.lock();
        loop {
            if s.flushed >= seq && seq > 0 {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.written;
                drop(s);
                let result = flush();
                s = self.state.lock();
                s.flushing = false;
                if result.is_ok() {
                    s.flushed = s.flushed.max(target);
                }
                self.done.notify_all();
                result?;
                if seq == 0 {
                    return Ok(());
                }
                continue;
            }
            self.done.wait(&mut s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_flushes() {
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gc, flushes) = (gc.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let seq = gc.record_write();
                        gc.wait(seq, || {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        })
                        .unwrap();
                        assert!(gc.state.lock().flushed >= seq);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // One flush per write would be exactly 400; 8 threads with 1 ms flushes always overlap,
        // so fewer flushes than writes is what shows they were shared.
        let n = flushes.load(Ordering::SeqCst);
        assert!(
            n < 400,
            "concurrent writes did not share flushes: {n} flushes for 400 writes"
        );
    }

    #[test]
    fn a_failed_flush_is_not_counted() {
        let gc = GroupCommit::default();
        let seq = gc.record_write();
        let err = gc.wait(seq, || Err(crate::Error::Corrupt("disk on fire".into())));
        assert!(err.is_err());
        assert_eq!(gc.state.lock().flushed, 0);
        gc.wait(seq, || Ok(())).unwrap();
        assert_eq!(gc.state.lock().flushed, 1);
    }
}
