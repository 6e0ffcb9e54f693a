//! Turns for heavy store work, so that long reads share the machine instead of taking it.
//!
//! A store call becomes *heavy* once it has examined [`QUANTUM`] entries (a page of a normal
//! query examines tens; an unindexed `contains` over a large tenant or an exact total over
//! millions of keys examines far more). From then on, every `QUANTUM` entries, it gives its turn
//! back and waits for the next one: first its API key's (one heavy call of a key runs at a time),
//! then the server's (`Config::heavy_concurrency` at a time, by default one core fewer than the
//! machine has). Both queues are first come, first served, so heavy calls of different keys
//! alternate every `QUANTUM` entries, one key's heavy calls take turns among themselves, and light
//! requests, which never wait here, always find a core that heavy work is not using.
//!
//! Waiting happens on the call's blocking thread (it is between two entries of its scan) and
//! ends early when the call is cancelled or runs past its deadline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Entries a store call examines between two turns (and before its first).
pub const QUANTUM: u64 = 2_000;

/// How often a waiter checks whether it was cancelled.
const POLL: Duration = Duration::from_millis(10);

/// A counting semaphore for blocking threads whose waiters are served in arrival order.
pub(crate) struct FairGate {
    state: Mutex<GateState>,
    cv: Condvar,
}

struct GateState {
    free: usize,
    queue: VecDeque<u64>,
    next_ticket: u64,
}

/// A permit of a [`FairGate`]; returned when dropped.
pub(crate) struct GatePermit(Arc<FairGate>);

impl FairGate {
    pub(crate) fn new(permits: usize) -> Arc<FairGate> {
        Arc::new(FairGate {
            state: Mutex::new(GateState {
                free: permits,
                queue: VecDeque::new(),
                next_ticket: 0,
            }),
            cv: Condvar::new(),
        })
    }

    /// Blocks until this caller is first in line and a permit is free; gives up with the error
    /// `stop` returns (checked every [`POLL`]).
    pub(crate) fn acquire(
        self: &Arc<Self>,
        stop: &dyn Fn() -> Option<crate::Error>,
    ) -> Result<GatePermit, crate::Error> {
        let mut st = self.state.lock();
        let ticket = st.next_ticket;
        st.next_ticket = st.next_ticket.wrapping_add(1);
        st.queue.push_back(ticket);
        loop {
            if st.free > 0 && st.queue.front() == Some(&ticket) {
                st.queue.pop_front();
                st.free -= 1;
                // The next in line may be able to go too.
                self.cv.notify_all();
                return Ok(GatePermit(Arc::clone(self)));
            }
            if let Some(e) = stop() {
                st.queue.retain(|t| *t != ticket);
                self.cv.notify_all();
                return Err(e);
            }
            self.cv.wait_for(&mut st, POLL);
        }
    }

    /// Permits free and callers waiting.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.free, st.queue.len())
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.0.state.lock().free += 1;
        self.0.cv.notify_all();
    }
}

/// The server's gate and one per API key.
pub(crate) struct HeavyGates {
    global: Option<Arc<FairGate>>,
    per_key: Mutex<HashMap<String, Arc<FairGate>>>,
}

/// Key gates kept before idle ones are dropped.
const MAX_KEY_GATES: usize = 4096;

impl HeavyGates {
    /// `concurrency` 0: no turns at all.
    pub(crate) fn new(concurrency: usize) -> HeavyGates {
        HeavyGates {
            global: (concurrency > 0).then(|| FairGate::new(concurrency)),
            per_key: Mutex::new(HashMap::new()),
        }
    }

    fn key_gate(&self, key: &str) -> Arc<FairGate> {
        let mut map = self.per_key.lock();
        if map.len() >= MAX_KEY_GATES {
            map.retain(|_, g| Arc::strong_count(g) > 1);
        }
        Arc::clone(
            map.entry(key.to_owned())
                .or_insert_with(|| FairGate::new(1)),
        )
    }

    /// The checkpoint of one store call of `key`: give back the turn it holds (if any), then wait
    /// for the next one. `None` when there are no turns.
    pub(crate) fn checkpoint(
        self: &Arc<Self>,
        key: String,
        cancel: Arc<std::sync::atomic::AtomicBool>,
        deadline: Instant,
    ) -> Option<Arc<dyn Fn() -> crate::Result<()> + Send + Sync>> {
        let global = self.global.clone()?;
        let gates = Arc::clone(self);
        let held: Mutex<Vec<GatePermit>> = Mutex::new(Vec::new());
        Some(Arc::new(move || {
            let mut held = held.lock();
            // Back of both lines: whoever waits goes first.
            held.clear();
            let stop = || {
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    Some(crate::Error::Cancelled)
                } else if Instant::now() >= deadline {
                    Some(crate::Error::DeadlineExceeded)
                } else {
                    None
                }
            };
            // Always the key's gate before the server's, so no two calls wait on each other.
            held.push(gates.key_gate(&key).acquire(&stop)?);
            held.push(global.acquire(&stop)?);
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn waiters_are_served_in_arrival_order_and_can_give_up() {
        let gate = FairGate::new(1);
        let never = || None;
        let first = gate.acquire(&never).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (mine, order) = (Arc::clone(&gate), Arc::clone(&order));
                let t = std::thread::spawn(move || {
                    let _p = mine.acquire(&|| None).unwrap();
                    order.lock().push(i);
                });
                // Let each one take its place in line before the next arrives.
                while gate.counts().1 < i + 1 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                t
            })
            .collect();
        drop(first);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*order.lock(), [0, 1, 2]);
        assert_eq!(gate.counts(), (1, 0));

        // A waiter whose request is cancelled leaves the line.
        let held = gate.acquire(&never).unwrap();
        let cancelled = AtomicBool::new(true);
        let r = gate.acquire(&|| {
            cancelled
                .load(Ordering::Relaxed)
                .then_some(crate::Error::Cancelled)
        });
        assert!(matches!(r, Err(crate::Error::Cancelled)));
        assert_eq!(gate.counts(), (0, 0));
        drop(held);
    }
}
