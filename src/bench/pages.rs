//! Cursor pages of 50 at depth, both engines in one process and one time window: each repetition
//! times an actlog page and then the same SQLite page, so whatever else the machine is doing
//! lands on both engines' percentiles alike (on a shared 2-core machine a p99 is mostly the
//! scheduler's time slice otherwise).

use std::io;
use std::time::Instant;

use super::engine::{Engine, DEPTHS, PAGE_FILTERS};
use super::options::Plan;
use super::util::{percentile, Figures};

/// Untimed repetitions of each engine before a cell is measured.
const WARMUP: usize = 5;

/// Microseconds one page read takes.
fn timed_page<E: Engine>(engine: &E, page: &mut E::Page<'_>) -> io::Result<f64> {
    let t = Instant::now();
    engine.read_page(page)?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Returns figures keyed `<a's name>/…` and `<b's name>/…`.
pub fn run<A: Engine, B: Engine>(plan: &Plan, a: &A, b: &B) -> io::Result<Figures> {
    let mut fig = Figures::new();
    for name in PAGE_FILTERS {
        for depth in DEPTHS {
            let Some(mut pa) = a.page_at(name, depth)? else {
                continue;
            };
            let Some(mut pb) = b.page_at(name, depth)? else {
                continue;
            };
            for _ in 0..WARMUP {
                timed_page(a, &mut pa)?;
                timed_page(b, &mut pb)?;
            }
            let (mut a_us, mut b_us) = (Vec::new(), Vec::new());
            let start = Instant::now();
            while a_us.len() < plan.page_reps
                && (a_us.len() < 20 || start.elapsed() < plan.page_budget)
            {
                a_us.push(timed_page(a, &mut pa)?);
                b_us.push(timed_page(b, &mut pb)?);
            }
            for (engine, v) in [(A::NAME, &mut a_us), (B::NAME, &mut b_us)] {
                fig.insert(
                    format!("{engine}/page.{name}.d{depth}.cursor_p50_us"),
                    percentile(v, 50.0),
                );
                fig.insert(
                    format!("{engine}/page.{name}.d{depth}.cursor_p99_us"),
                    percentile(v, 99.0),
                );
            }
        }
    }
    Ok(fig)
}
