//! `actlog bench`: actlog against SQLite on one seeded dataset, in one run (issue 5).
//!
//! Compiled only with the `bench` feature, so rusqlite stays out of the server's dependency tree.
//! The parts, each in its own module:
//!
//! - `options.rs`: the command line and the `Plan` derived from it;
//! - `data.rs`: the seeded dataset, the same batches for both engines;
//! - `engine.rs`: the `Engine` trait, the seam between the harness and a store, implemented in
//!   `engines/` by actlog (through the public `Store` API) and SQLite (rusqlite, bundled);
//! - `phases.rs`: the phases in order, and ingest and reads measured the same way for any
//!   engine; `pages.rs` (both engines' cursor pages, interleaved), `single.rs` (single-activity
//!   appends of either engine, and actlog's fold delay) and `http.rs` (actlog's router under
//!   load) are the other phases;
//! - `orchestrate.rs`: each phase in a child process of its own (so each phase's peak RSS is its
//!   own and one engine's page cache never helps the other), the figures gathered by engine;
//! - `report.rs`: the table's rows as data, the machine, the notes, the printed Markdown;
//!   `targets.rs`: the issues' targets as data, judged against the figures.

mod data;
mod engine;
mod engines;
mod http;
mod options;
mod orchestrate;
mod pages;
mod phases;
mod report;
mod single;
mod targets;
mod util;

use std::io;

use engine::Engine;
use options::Plan;

pub use options::BenchOptions;
pub use report::{table, Machine, Report, Row};
pub use targets::Target;

/// Runs the benchmark (or, in a child process, one phase of it) and returns the report; the
/// parent also prints the table and writes `--json`.
pub fn run(opts: &BenchOptions) -> io::Result<Report> {
    let plan = Plan::new(opts);
    if orchestrate::run_as_child(&plan)? {
        return Ok(report::empty(&plan));
    }
    let measured = orchestrate::run_all(opts, &plan)?;
    let mut report = report::empty(&plan);
    report.command = std::env::args().collect::<Vec<_>>().join(" ");
    report.rows = report::rows(&measured.actlog, &measured.sqlite);
    report.targets = targets::evaluate(&measured.actlog, &measured.sqlite, plan.events);
    report.actlog = measured.actlog;
    report.sqlite = measured.sqlite;
    print!("{}", table(&report));
    if let Some(path) = &opts.json {
        let json = serde_json::to_vec_pretty(&report).map_err(util::io_err)?;
        std::fs::write(path, json)?;
    }
    Ok(report)
}

pub use data::{Batch, Dataset, BATCH, TENANTS};

/// Thin handles on crate-private parts, for the criterion benches in `benches/` only. Not a
/// stable API: it exists with the `bench` feature and changes with the internals it wraps.
#[doc(hidden)]
pub mod internals {

    use uuid::Uuid;

    use crate::model::Activity;
    use crate::store::keys::{self, IndexKind, Pos};
    use crate::{Result, Store};

    /// An `action` index key.
    pub fn index_key(tenant: u32, values: &[&str], time: i64, id: Uuid) -> Vec<u8> {
        let kind = if values.len() == 2 {
            IndexKind::Resource
        } else {
            IndexKind::Action
        };
        keys::index_key(tenant, kind, values, Pos { time, id })
    }

    /// Decodes an index key; returns its time.
    pub fn decode_index_key(key: &[u8]) -> Result<i64> {
        Ok(keys::decode_index_key(key)?.pos.time)
    }

    /// Every key one append of `a` writes: record, index entries (and id entry when needed).
    pub fn derived_keys(tenant: u32, a: &Activity) -> Vec<Vec<u8>> {
        crate::store::derived_keys(tenant, a)
    }

    /// The stored bytes of a record.
    pub fn encode_record(a: &Activity) -> Result<Vec<u8>> {
        crate::store::encode_record(a)
    }

    /// Decodes stored record bytes.
    pub fn decode_record(a: &Activity, bytes: &[u8]) -> Result<Activity> {
        let pos = Pos {
            time: a.created_at.timestamp_micros(),
            id: a.id,
        };
        Store::decode_record(pos, bytes)
    }

    /// Reads stored record bytes in place and, with `json`, writes API v1's JSON of them into
    /// `out`. Returns the bytes written (or the action's length), so nothing is optimized away.
    pub fn view_record(a: &Activity, bytes: &[u8], json: bool, out: &mut Vec<u8>) -> Result<usize> {
        let pos = Pos {
            time: a.created_at.timestamp_micros(),
            id: a.id,
        };
        let v = crate::store::codec::view(pos, bytes)?;
        if !json {
            return Ok(v.action.len());
        }
        out.clear();
        crate::http::render::activity(out, &v);
        Ok(out.len())
    }

    /// Raw sled iteration of one tenant's records: how many, without decoding.
    pub fn raw_scan(store: &Store, tenant: &str) -> Result<u64> {
        let no = store.tenant_info(tenant)?.no;
        Ok(store.raw_record_scan(no, true)?.0)
    }
}
