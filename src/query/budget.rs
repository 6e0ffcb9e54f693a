//! Work budgets: how long a read may run and how much of the store it may examine.
//!
//! A [`Budget`] applies to every read (`query`, `count`, `scan`, `facets`) made inside
//! [`Budget::run`] on the calling thread; the planner's loops charge it one unit per stored entry
//! they examine (a record decoded, a key counted, a distinct index value enumerated) and stop with
//! an error when it is spent, when its deadline passes, or when its cancel flag is raised. Reads
//! made outside `Budget::run` are unlimited, as they always were.
//!
//! The budget is ambient (a thread-local) rather than a parameter so that it covers every store
//! call of a request, including those the wire profiles make several of, without threading it
//! through every function between the HTTP layer and the planner.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a read was doing when it ran out of budget; it names the part of the request to blame.
pub(crate) mod what {
    /// Filling a page (the filters' scan).
    pub(crate) const PAGE: &str = "the page";
    /// Counting matches (`include_total`, `count`).
    pub(crate) const TOTAL: &str = "the total";
    /// Enumerating distinct values (facets).
    pub(crate) const FACETS: &str = "the facet values";
    /// Planning: expanding an action prefix, skip-scanning types, locating ids.
    pub(crate) const PLAN: &str = "the query plan";
}

/// Limits on the work of the reads run inside [`Budget::run`]: a deadline, a cancel flag, a cap
/// on stored entries examined, and a checkpoint the reads call back every so many entries. The
/// default is unlimited.
///
/// ```
/// # use actlog::{Budget, Error, Filter, Options, Store, TenantSettings};
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = Store::open(dir.path(), Options::default()).unwrap();
/// # store.create_tenant("acme", TenantSettings::default()).unwrap();
/// let budget = Budget::default()
///     .with_timeout(std::time::Duration::from_secs(5))
///     .with_max_examined(1_000_000);
/// let n = budget.run(|| store.count("acme", &Filter::default())).unwrap();
/// assert_eq!(n, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    max_examined: Option<u64>,
    checkpoint: Option<Checkpoint>,
}

/// A callback every `every` entries examined.
#[derive(Clone)]
struct Checkpoint {
    every: u64,
    f: Arc<dyn Fn() -> Result<()> + Send + Sync>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// Reads stop with [`Error::DeadlineExceeded`] once `at` has passed.
    pub fn with_deadline(mut self, at: Instant) -> Budget {
        self.deadline = Some(at);
        self
    }

    /// [`Budget::with_deadline`] `timeout` from now.
    pub fn with_timeout(self, timeout: Duration) -> Budget {
        match Instant::now().checked_add(timeout) {
            Some(at) => self.with_deadline(at),
            None => self,
        }
    }

    /// Reads stop with [`Error::Cancelled`] soon after `flag` becomes true (another thread sets
    /// it: a request that timed out, a client that went away).
    pub fn with_cancel_flag(mut self, flag: Arc<AtomicBool>) -> Budget {
        self.cancel = Some(flag);
        self
    }

    /// Reads stop with [`Error::WorkLimit`] once they have examined more than `n` stored
    /// entries in all (records decoded, keys counted, distinct index values enumerated).
    pub fn with_max_examined(mut self, n: u64) -> Budget {
        self.max_examined = Some(n);
        self
    }

    /// Calls `f` each time the reads have examined another `every` entries (`every` > 0), on
    /// the reading thread, between two entries; an error from `f` stops the read with that
    /// error. Short reads never reach it. A server uses it to make long reads take turns.
    pub fn with_checkpoint(
        mut self,
        every: u64,
        f: Arc<dyn Fn() -> Result<()> + Send + Sync>,
    ) -> Budget {
        self.checkpoint = Some(Checkpoint {
            every: every.max(1),
            f,
        });
        self
    }

    /// Runs `f` with this budget applied to every read it makes on this thread. A `run` inside
    /// another replaces the outer budget until it returns.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let active = Active {
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            max: self.max_examined,
            examined: 0,
            since_clock: 0,
            next_checkpoint: self.checkpoint.as_ref().map_or(u64::MAX, |c| c.every),
            checkpoint: self.checkpoint.clone(),
        };
        let previous = ACTIVE.with(|a| a.borrow_mut().replace(active));
        // Restores the outer budget even if `f` unwinds.
        let _restore = Restore(Some(previous));
        f()
    }
}

struct Restore(Option<Option<Active>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            ACTIVE.with(|a| *a.borrow_mut() = previous);
        }
    }
}

struct Active {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    max: Option<u64>,
    examined: u64,
    /// Charges since the clock was last read: reading it on every row would cost more than the
    /// rows do.
    since_clock: u32,
    /// `examined` at which the checkpoint is called next.
    next_checkpoint: u64,
    checkpoint: Option<Checkpoint>,
}

/// Charges between two reads of the clock.
const CLOCK_EVERY: u32 = 64;

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// Charges `n` examined entries to the running budget (if any) and checks its deadline and
/// cancel flag. `what` says what the read was doing, for the error.
pub(crate) fn charge(n: u64, what: &'static str) -> Result<()> {
    let due = ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let Some(a) = a.as_mut() else {
            return Ok(None);
        };
        a.examined = a.examined.saturating_add(n);
        if let Some(max) = a.max {
            if a.examined > max {
                return Err(Error::WorkLimit { max, what });
            }
        }
        if a.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        a.since_clock = a.since_clock.saturating_add(1);
        if a.since_clock >= CLOCK_EVERY {
            a.since_clock = 0;
            if a.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::DeadlineExceeded);
            }
        }
        if a.examined < a.next_checkpoint {
            return Ok(None);
        }
        let Some(c) = &a.checkpoint else {
            return Ok(None);
        };
        a.next_checkpoint = a.examined.saturating_add(c.every);
        Ok(Some(Arc::clone(&c.f)))
    })?;
    // Called with the thread-local released: the callback may take its time.
    match due {
        Some(f) => f(),
        None => Ok(()),
    }
}

/// Checks the running budget's deadline and cancel flag without charging anything; for loops
/// whose steps cost more than a row each.
pub(crate) fn check() -> Result<()> {
    ACTIVE.with(|a| {
        let a = a.borrow();
        let Some(a) = a.as_ref() else {
            return Ok(());
        };
        if a.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        if a.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::DeadlineExceeded);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_run_nothing_is_limited() {
        for _ in 0..10_000 {
            charge(1_000_000, what::PAGE).unwrap();
        }
        check().unwrap();
    }

    #[test]
    fn the_cap_the_flag_and_the_deadline_each_stop_a_run() {
        let capped = Budget::default().with_max_examined(10);
        let r = capped.run(|| (0..11).try_for_each(|_| charge(1, what::TOTAL)));
        assert!(
            matches!(r, Err(Error::WorkLimit { max: 10, what }) if what == what::TOTAL),
            "{r:?}"
        );
        // Exactly the cap is fine.
        capped
            .run(|| (0..10).try_for_each(|_| charge(1, what::PAGE)))
            .unwrap();

        let flag = Arc::new(AtomicBool::new(false));
        let cancellable = Budget::default().with_cancel_flag(Arc::clone(&flag));
        cancellable.run(|| charge(1, what::PAGE)).unwrap();
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(
            cancellable.run(|| charge(1, what::PAGE)),
            Err(Error::Cancelled)
        ));
        assert!(matches!(cancellable.run(check), Err(Error::Cancelled)));

        let late = Budget::default().with_deadline(Instant::now());
        let r = late.run(|| (0..CLOCK_EVERY).try_for_each(|_| charge(1, what::PAGE)));
        assert!(matches!(r, Err(Error::DeadlineExceeded)), "{r:?}");
        assert!(matches!(late.run(check), Err(Error::DeadlineExceeded)));
    }

    #[test]
    fn the_checkpoint_is_called_every_so_many_entries_and_can_stop_the_read() {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let b = Budget::default().with_checkpoint(
            100,
            Arc::new(move || {
                if counted.fetch_add(1, Ordering::Relaxed) == 2 {
                    Err(Error::Cancelled)
                } else {
                    Ok(())
                }
            }),
        );
        b.run(|| (0..299).try_for_each(|_| charge(1, what::PAGE)))
            .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // The third call (at 300 in a new run: 100, 200, 300) stops it.
        calls.store(0, Ordering::Relaxed);
        let r = b.run(|| (0..1000).try_for_each(|_| charge(1, what::PAGE)));
        assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_run_restores_the_outer_budget_even_after_a_panic() {
        let outer = Budget::default().with_max_examined(5);
        outer.run(|| {
            let inner = Budget::default();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.run(|| panic!("boom"))
            }));
            // The outer cap applies again.
            let r = (0..6).try_for_each(|_| charge(1, what::PAGE));
            assert!(matches!(r, Err(Error::WorkLimit { max: 5, .. })), "{r:?}");
        });
        // And outside every run, nothing.
        charge(100, what::PAGE).unwrap();
    }
}
