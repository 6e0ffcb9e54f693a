//! Cursor pages of 50 at depth, both engines in one process and one time window: each repetition
//! times an actlog page and then the same SQLite page, so whatever else the machine is doing
//! lands on both engines' percentiles alike (on a shared 2-core machine a p99 is mostly the
//! scheduler's time slice otherwise).

use std::io;
use std::path::Path;
use std::time::Instant;

use super::data::TENANTS;
use super::util::{io_err, percentile, Figures};
use super::{actlog, sqlite, Plan, DEPTHS};

/// Untimed repetitions of each engine before a cell is measured.
const WARMUP: usize = 5;

/// Returns figures keyed `actlog/…` and `sqlite/…`.
pub fn run(plan: &Plan, actlog_dir: &Path, sqlite_dir: &Path) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let store = actlog::open_read(actlog_dir)?;
    let conn = sqlite::open_read(sqlite_dir)?;
    let hot = TENANTS[0];
    let hot_no = sqlite::tenant_no(hot);
    for (name, filter) in actlog::page_filters() {
        let (clause, values) = sqlite::filter_sql(name);
        let k = values.len();
        let mut page = conn
            .prepare(&format!(
                "SELECT {cols} FROM activity WHERE tenant = ?1 AND {clause} \
                 AND (created_at, id) < (?{a}, ?{b}) ORDER BY created_at DESC, id DESC LIMIT 50",
                cols = sqlite::COLUMNS,
                a = k + 2,
                b = k + 3
            ))
            .map_err(io_err)?;
        let mut at = conn
            .prepare(&format!(
                "SELECT created_at, id FROM activity WHERE tenant = ?1 AND {clause} \
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?{o}",
                o = k + 2
            ))
            .map_err(io_err)?;
        let mut args: Vec<rusqlite::types::Value> = vec![hot_no.into()];
        args.extend(values.iter().map(|v| v.clone().into()));
        for depth in DEPTHS {
            let Some(q) = actlog::page_at(&store, hot, &filter, depth)? else {
                continue;
            };
            // SQLite's cursor: the row-value position of the match just before the page.
            let cursor: (i64, Vec<u8>) = if depth == 0 {
                (i64::MAX, vec![0xFF; 17])
            } else {
                let mut a = args.clone();
                a.push(i64::try_from(depth - 1).unwrap_or(0).into());
                at.query_row(rusqlite::params_from_iter(a), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(io_err)?
            };
            let mut sargs = args.clone();
            sargs.push(cursor.0.into());
            sargs.push(cursor.1.into());
            let actlog_page = || -> io::Result<f64> {
                let t = Instant::now();
                let p = store.query_records(hot, &q).map_err(io_err)?;
                for r in &p.items {
                    std::hint::black_box(r.view().map_err(io_err)?);
                }
                drop(p);
                Ok(t.elapsed().as_secs_f64() * 1e6)
            };
            let mut sqlite_page = || -> io::Result<f64> {
                let t = Instant::now();
                let mut rows = page
                    .query(rusqlite::params_from_iter(sargs.iter()))
                    .map_err(io_err)?;
                let mut n = 0;
                while let Some(row) = rows.next().map_err(io_err)? {
                    std::hint::black_box(sqlite::read_in_place(row).map_err(io_err)?);
                    n += 1;
                }
                drop(rows);
                std::hint::black_box(n);
                Ok(t.elapsed().as_secs_f64() * 1e6)
            };
            for _ in 0..WARMUP {
                actlog_page()?;
                sqlite_page()?;
            }
            let (mut a_us, mut s_us) = (Vec::new(), Vec::new());
            let start = Instant::now();
            while a_us.len() < plan.page_reps
                && (a_us.len() < 20 || start.elapsed() < plan.page_budget)
            {
                a_us.push(actlog_page()?);
                s_us.push(sqlite_page()?);
            }
            for (engine, v) in [("actlog", &mut a_us), ("sqlite", &mut s_us)] {
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
