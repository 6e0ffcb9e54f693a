//! The seam between the harness and a store: what the phases ask of an engine. actlog
//! (`engines::actlog`, through the public `Store` API) and SQLite (`engines::sqlite`) implement
//! it; the phases (`phases.rs`, `pages.rs`) time the calls and name the figures, the same way for
//! both, so a figure of one engine means what the same figure of the other means.

use std::io;
use std::path::Path;

use super::data::Batch;
use super::options::Plan;
use super::util::Figures;
use crate::{NewActivity, Order};

/// The filters of the paging figures, by the name in their figure keys
/// (`page.<name>.d<depth>.…`): one action, one resource type, one actor (type and id), and an
/// `IN` list of three actions. Each engine maps a name to its own query.
pub const PAGE_FILTERS: [&str; 4] = ["action", "resource", "actor", "in_list"];

/// Page depths (in matches skipped) of the paging figures.
pub const DEPTHS: [usize; 4] = [0, 1_000, 10_000, 100_000];

/// Appends of one activity at a time from any number of threads, each its own transaction,
/// returning once that activity is durable (actlog `sync`, SQLite `synchronous=FULL`).
pub trait SingleAppender: Sync {
    /// Appends `activity` to `tenant`'s log and returns when it is acknowledged durable.
    fn append_one(&self, tenant: &str, activity: NewActivity) -> io::Result<()>;
}

/// One engine under test.
pub trait Engine: Sized {
    /// The engine's name in figure keys (`actlog/…`, `sqlite/…`) and the report.
    const NAME: &'static str;

    /// How durable an ingest is: actlog's `Durability`, SQLite's `synchronous` mode.
    type Durability: Copy;

    /// What single-activity appends go through, shared by every appending thread.
    type Appender: SingleAppender;

    /// A page of 50 prepared at some depth: the query (or statement) and its cursor.
    type Page<'a>
    where
        Self: 'a;

    /// Creates an empty store in `path` for an ingest, with the dataset's tenants.
    fn create(plan: &Plan, path: &Path, durability: Self::Durability) -> io::Result<Self>;

    /// Appends one batch of the dataset, atomically (one call, one transaction).
    fn append(&mut self, batch: Batch) -> io::Result<()>;

    /// Creates an empty store in `path`, with the dataset's tenants, for single-activity
    /// appends each acknowledged durable, shared by the appending threads as an embedder of
    /// the engine would share it.
    fn create_appender(plan: &Plan, path: &Path) -> io::Result<Self::Appender>;

    /// Ends an ingest of `events` events: makes it durable, adds the engine's own figures
    /// (`ingest.<tag>.…`) and closes the store, so its files can be measured.
    fn finish_ingest(self, tag: &str, events: u64, fig: &mut Figures) -> io::Result<()>;

    /// Opens the store a `sync` ingest wrote in `path`, ready to answer (the timed open).
    fn open(path: &Path) -> io::Result<Self>;

    /// Reads every record of `tenant` in `order`, each read in place, or (`owned`) decoded into
    /// an owned `Activity`; returns how many.
    fn scan(&self, tenant: &str, order: Order, owned: bool) -> io::Result<u64>;

    /// The same in pages of 1,000, each resumed from the previous page's cursor.
    fn scan_paged(&self, tenant: &str, order: Order) -> io::Result<u64>;

    /// Iteration of the same records with nothing decoded, where the engine has such a layer
    /// under its scans (the ceiling figures): `(records, bytes of keys and values)`.
    fn scan_raw(&self, _tenant: &str, _order: Order) -> io::Result<Option<(u64, u64)>> {
        Ok(None)
    }

    /// The exact number of matches of the `action` page filter.
    fn count(&self, tenant: &str) -> io::Result<u64>;

    /// The 100 most frequent actions of `tenant`, with their counts.
    fn facet(&self, tenant: &str) -> io::Result<()>;

    /// Every record of every tenant as API v1's NDJSON (into a sink); returns how many.
    fn export(&self) -> io::Result<u64>;

    /// Read figures of this engine only, measured after the scans.
    fn read_extras(&self, _plan: &Plan, _fig: &mut Figures) -> io::Result<()> {
        Ok(())
    }

    /// Figures this engine reports about an export of `records` records.
    fn note_export(&self, _records: u64, _fig: &mut Figures) {}

    /// A page of 50 of the named filter (one of [`PAGE_FILTERS`]), newest first, after `depth`
    /// matches; `None` when the filter has fewer matches than that.
    fn page_at(&self, filter: &str, depth: usize) -> io::Result<Option<Self::Page<'_>>>;

    /// Reads one prepared page, each record in place.
    fn read_page(&self, page: &mut Self::Page<'_>) -> io::Result<()>;
}
