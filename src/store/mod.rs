//! The store: activities and their index entries in sled, tenants and keys beside them.
//!
//! Two sled trees. `log4` holds every record, seq entry, log head, index watermark, id entry and
//! index entry of every tenant (layout in `keys` and `docs/key-format.md`); one append is one
//! `apply_batch` on it, which sled makes atomic across a crash, so a `seq` is never assigned
//! without its record. Index entries come later, from the indexer (`indexer`), which writes a
//! record's entries and the watermark past it in one batch: a record has all its entries or,
//! past the watermark, none.
//! `meta` holds the format version, the cursor secret, tenants and API keys.

pub(crate) mod codec;
mod commit;
mod durable;
mod indexer;
pub(crate) mod keys;
mod meta;
mod migrate;
pub(crate) mod postings;
mod scan;
mod secret;
mod verify;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{
    Activity, Appended, NewActivity, Tenant, TenantPatch, TenantSettings, MAX_BATCH,
};

pub use codec::{ActivityRef, ActorRef, ContextIter, ContextRef, DisplayRef, ObjRef, Record};
use keys::{IndexKind, Pos};
pub use meta::{ApiKeyRecord, Scope};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use secret::Secret;
pub(crate) use secret::{Signer, MAC_LEN};
pub use verify::VerifyReport;

/// The storage engine's error, opaque: its `Display` is the engine's message and its
/// [`source`](std::error::Error::source) the engine error's own source, but no engine type is
/// part of the API, so an engine upgrade does not change it. Reached through
/// [`Error::Storage`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(sled::Error);

impl StorageError {
    /// The I/O error underneath, when the engine failed on I/O.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match &self.0 {
            sled::Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Error {
        Error::Storage(StorageError(e))
    }
}

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Only after it is on disk; concurrent appends share one flush.
    #[default]
    Sync,
    /// At once; a background flush runs every 100 ms.
    Relaxed,
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sync" => Ok(Durability::Sync),
            "relaxed" => Ok(Durability::Relaxed),
            _ => Err(Error::invalid("durability", "must be sync or relaxed")),
        }
    }
}

/// A source of the current time, injectable for tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A point where the store calls into the storage engine to change or persist data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
    /// Opening the database.
    Open,
    /// Writing a batch (an append, a purge).
    ApplyBatch,
    /// Flushing to disk.
    Flush,
    /// Making a flush durable: each `fsync` after sled's flush (its log file, each new blob).
    Sync,
    /// Before a read entry point (`get`, `query`, `count`, `scan`, `facets`, `purge_expired`,
    /// `verify`, API key lookups) first touches the engine. A hook that panics here stands in
    /// for a panic inside sled, which the store reports as [`Error::EnginePanic`].
    Read,
    /// Each step of upgrading an older on-disk format on open: every batch of copied keys,
    /// the format marker, the removal of the old tree.
    Migrate,
    /// Writing a fold of the indexer (index entries of pending records and the new watermark),
    /// whether the background indexer, a back-pressured append or [`Store::fold_pending`] runs it.
    Fold,
}

/// A test seam: called before every engine operation of a [`FaultPoint`]; returning `true` makes
/// that operation fail with an I/O error instead of running.
pub type FaultHook = Arc<dyn Fn(FaultPoint) -> bool + Send + Sync>;

/// How to open a store. Built with [`Options::new`] (or `default()`) and its setters (fields
/// may be added, so it has no struct literal outside this crate).
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// When an append is acknowledged.
    pub durability: Durability,
    /// The storage engine's page cache, in bytes (default 128 MiB). sled counts pages by their
    /// serialized size, so the process's resident memory runs at several times this figure:
    /// ingesting 1M activities peaked at 643 MiB with 128 MiB, 962 MiB with 256 MiB
    /// (BENCHMARKS.md, 2026-12-05).
    pub cache_capacity: u64,
    /// The clock appends without a time are stamped with.
    pub clock: Clock,
    /// Whether a background thread folds appended activities into the indexes (see
    /// [`Store::fold_pending`]). On by default; off, the indexes are brought up to date only by
    /// `fold_pending` and by appends that find [`Options::max_pending`] activities waiting.
    pub background_indexing: bool,
    /// How often the background indexer looks for activities to fold.
    pub index_interval: std::time::Duration,
    /// Most activities of one tenant that may wait to be indexed: an append that finds this
    /// many folds them before it writes (back-pressure), so a query never reads more than this
    /// plus one batch of unindexed activities.
    pub max_pending: usize,
    /// Injected storage faults, for tests. `None` in production.
    pub(crate) fault_hook: Option<FaultHook>,
}

/// The default of [`Options::max_pending`].
pub(crate) const DEFAULT_MAX_PENDING: usize = 10_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            cache_capacity: 128 << 20,
            clock: Arc::new(Utc::now),
            background_indexing: true,
            index_interval: std::time::Duration::from_millis(50),
            max_pending: DEFAULT_MAX_PENDING,
            fault_hook: None,
        }
    }
}

impl Options {
    /// The defaults: [`Durability::Sync`], a 128 MiB page cache, the system clock.
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets when an append is acknowledged.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Options {
        self.durability = durability;
        self
    }

    /// Sets the storage engine's page cache, in bytes (see [`Options::cache_capacity`] for
    /// what it means for resident memory).
    #[must_use]
    pub fn cache_capacity(mut self, bytes: u64) -> Options {
        self.cache_capacity = bytes;
        self
    }

    /// Sets the clock appends without a time are stamped with (for tests).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Options {
        self.clock = clock;
        self
    }

    /// Turns the background indexer on (the default) or off (tests that decide when folds
    /// happen; embedders that call [`Store::fold_pending`] themselves).
    #[must_use]
    pub fn background_indexing(mut self, on: bool) -> Options {
        self.background_indexing = on;
        self
    }

    /// Sets how often the background indexer looks for activities to fold (default 50 ms; at
    /// least 1 ms, so that zero does not spin a core).
    #[must_use]
    pub fn index_interval(mut self, every: std::time::Duration) -> Options {
        self.index_interval = every;
        self
    }

    /// Sets the most activities of one tenant that may wait to be indexed before an append
    /// folds them itself (default 10,000; at least 1). A bound kept unless readers that hold
    /// the indexes still (counts, totals, facets) leave no gap of a few milliseconds: then the
    /// append goes on rather than wait for them.
    #[must_use]
    pub fn max_pending(mut self, n: usize) -> Options {
        self.max_pending = n.max(1);
        self
    }

    /// Injects storage faults (for the crate's own tests; not part of the API).
    #[doc(hidden)]
    #[must_use]
    pub fn fault_hook(mut self, hook: FaultHook) -> Options {
        self.fault_hook = Some(hook);
        self
    }
}

/// Fails with an injected I/O error if the hook says so.
pub(crate) fn check_fault(hook: &Option<FaultHook>, point: FaultPoint) -> Result<()> {
    match hook {
        Some(h) if h(point) => Err(Error::Io(std::io::Error::other(format!(
            "injected fault at {point:?}"
        )))),
        _ => Ok(()),
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("cache_capacity", &self.cache_capacity)
            .field("background_indexing", &self.background_indexing)
            .field("index_interval", &self.index_interval)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

/// A tenant as the store keeps it in memory.
#[derive(Debug, Clone)]
pub(crate) struct TenantInfo {
    pub(crate) no: u32,
    pub(crate) tz: chrono_tz::Tz,
    pub(crate) tenant: Tenant,
}

/// An open activity store. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Store {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    path: PathBuf,
    options: Options,
    /// Signs cursors (see [`Signer`]); never leaves the store.
    secret: secret::Secret,
    tenants: Arc<RwLock<HashMap<String, TenantInfo>>>,
    /// Serializes the check-then-write of appends, folds, retention and tenant creation. Holds
    /// each tenant's log head (last `seq` and `recorded_at`) and index watermark once read: the
    /// next `seq` is assigned under this lock and the head moves only after its batch is
    /// applied; the watermark moves only with a fold's batch.
    writer: Arc<Mutex<indexer::Logs>>,
    /// Folds pending records into the indexes (shares `writer` and `log`).
    folder: indexer::Folder,
    /// The background indexer, when on; declared before the engine handles so that dropping
    /// the store stops it first.
    background: Option<indexer::Background>,
    commit: Arc<commit::GroupCommit>,
    /// sled's files, synced after each flush (`durable.rs`: sled's flush alone is not durable).
    files: durable::Files,
    /// Per tenant number: bumped by every write that changes the tenant's activities (appends
    /// that wrote something, purges that removed something), under `writer`.
    generations: Mutex<HashMap<u32, u64>>,
    /// Held until the store is dropped; declared last so it is released last.
    _dir_lock: std::fs::File,
}

impl Signer for Store {
    fn sign(&self, tenant: &str, payload: &[u8]) -> [u8; MAC_LEN] {
        self.secret.sign(tenant, payload)
    }

    fn verify(&self, tenant: &str, payload: &[u8], tag: &[u8]) -> bool {
        self.secret.verify(tenant, payload, tag)
    }
}

impl Drop for Store {
    /// Flushes before the directory lock is released, so the next handle finds sled idle.
    fn drop(&mut self) {
        // Stop the indexer before the last flush: a fold it leaves half done is none at all.
        self.background = None;
        if let Err(e) = guard("flush on close", || Ok(self.db.flush().map(|_| ())?)) {
            tracing::warn!(error = %e, "flush on close failed");
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Runs a sled call, turning a panic inside sled (it has some on damaged files) into an error
/// whose message is [`panic_summary`]'s: bounded, and free of the key and value bytes that
/// sled's own panic messages print (one of them formats the whole tree).
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::EnginePanic(format!(
            "{what}: {}",
            panic_summary(panic_text(p.as_ref()))
        ))),
    }
}

/// The text of a panic payload, if it has one.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic")
}

/// The most a [`panic_summary`] holds, in characters.
pub(crate) const PANIC_SUMMARY_MAX: usize = 120;

/// A panic message cut to what can be logged: the words before the first character that starts
/// data (a bracket, brace, parenthesis, quote, `=` or a line break), at most
/// [`PANIC_SUMMARY_MAX`] characters. sled's messages put their data after such a character
/// (`fucked up tree traversal next_back(Excluded([0, 0, …])) on Tree: …`), so no key or value
/// byte survives; the summary keeps what names the failure.
pub(crate) fn panic_summary(message: &str) -> String {
    let words = message
        .split(['(', '[', '{', '<', '"', '\'', '=', '\n', '\r'])
        .next()
        .unwrap_or("")
        .trim();
    let mut out: String = words.chars().take(PANIC_SUMMARY_MAX).collect();
    if out.len() < words.len() || words.len() < message.trim().len() {
        out.push('…');
    }
    out
}

/// How long `open` waits for the directory's lock before it reports the store as in use.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Takes `actlog.lock` in the data directory, waiting a bounded time for it. sled locks its own
/// file too, but under load a second handle was seen to open a live directory; this lock, held
/// for the `Store`'s whole life, makes that impossible.
fn take_dir_lock(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("actlog.lock"))?;
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() <= LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Io(std::io::Error::other(format!(
                    "the data directory {} is in use by another process",
                    dir.display()
                ))))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
    }
}

/// Opens the sled database, waiting a bounded time for its file lock: after a handle in this
/// process is dropped, sled's background writers may hold the lock for a few more milliseconds.
fn open_with_lock_retry(config: &sled::Config) -> Result<sled::Db> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if start.elapsed() > LOCK_WAIT {
                    return Err(Error::Io(std::io::Error::other(format!(
                        "the data directory is in use by another process ({e})"
                    ))));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return Ok(other?),
        }
    }
}

impl Store {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let flush_every = match options.durability {
            // Appends flush before they are acknowledged; sled's background flusher runs as well
            // because without it sled 0.34's memory grows with every explicit flush (measured on
            // the bench dataset: 1.97 GB peak RSS after 400k events, 631 MB with it).
            Durability::Sync => Some(1000),
            Durability::Relaxed => Some(100),
        };
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(flush_every);
        check_fault(&options.fault_hook, FaultPoint::Open)?;
        let dir_lock = take_dir_lock(&path)?;
        // sled 0.34 opens a damaged (for one, truncated) log file as an empty database; only a
        // directory without a database file may turn out to be a new store. (Read under the
        // directory lock, so no other process is creating the file meanwhile.)
        let had_data = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0);
        let (db, meta_tree) = guard("open", || {
            let db = open_with_lock_retry(&config)?;
            let meta_tree = db.open_tree("meta")?;
            Ok((db, meta_tree))
        })?;
        let log = guard("open", || match meta::format(&meta_tree, had_data)? {
            meta::Format::New => {
                let log = db.open_tree(migrate::LOG_TREE)?;
                meta::set_format(&meta_tree)?;
                Ok(log)
            }
            meta::Format::Current => migrate::open_current(&db),
            meta::Format::Old(found) => {
                let now = crate::model::truncate_to_micros((options.clock)()).timestamp_micros();
                migrate::upgrade(&db, found, now, &options.fault_hook, || {
                    meta::set_format(&meta_tree)
                })
            }
        })?;
        let files = durable::Files::open(&path, !had_data, options.fault_hook.clone())?;
        let secret = secret::Secret::new(guard("open", || meta::secret(&meta_tree))?);
        let tenants = guard("open", || meta::load_tenants(&meta_tree))?;
        let commit = Arc::new(commit::GroupCommit::default());
        let tenants = Arc::new(RwLock::new(tenants));
        let writer = Arc::new(Mutex::new(HashMap::new()));
        let folder = indexer::Folder {
            log: log.clone(),
            writer: writer.clone(),
            gate: Arc::new(RwLock::new(())),
            commit: commit.clone(),
            fault_hook: options.fault_hook.clone(),
        };
        let background = if options.background_indexing {
            let list = tenants.clone();
            let numbers = move || list.read().values().map(|t: &TenantInfo| t.no).collect();
            Some(indexer::Background::start(
                folder.clone(),
                numbers,
                options.index_interval,
            )?)
        } else {
            None
        };
        Ok(Store {
            db,
            log,
            meta: meta_tree,
            path,
            options,
            secret,
            tenants,
            writer,
            folder,
            background,
            commit,
            generations: Mutex::new(HashMap::new()),
            files,
            _dir_lock: dir_lock,
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability this store was opened with.
    pub fn durability(&self) -> Durability {
        self.options.durability
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        crate::model::truncate_to_micros((self.options.clock)())
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<()> {
        self.wait_flushed(self.commit.written())
    }

    /// Returns once write `seq` is on disk (group commit): sled's flush, then the syncs that
    /// make it durable (`durable.rs`), as SQLite's `synchronous=FULL` commit is.
    fn wait_flushed(&self, seq: u64) -> Result<()> {
        self.commit.wait(seq, || {
            check_fault(&self.options.fault_hook, FaultPoint::Flush)?;
            guard("flush", || Ok(self.db.flush().map(|_| ())?))?;
            self.files.sync()
        })
    }

    /// Runs a read entry point under [`guard`], after the [`FaultPoint::Read`] hook.
    pub(crate) fn read_guard<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        guard(what, || {
            check_fault(&self.options.fault_hook, FaultPoint::Read)?;
            f()
        })
    }

    /// A number that changes whenever the tenant's activities do (appends that write, purges
    /// that remove). Equal numbers at two moments mean no activity of the tenant was added or
    /// removed in between, so an answer computed at the first still holds at the second.
    pub(crate) fn generation(&self, tenant: &str) -> Result<u64> {
        let no = self.tenant_info(tenant)?.no;
        Ok(self.generations.lock().get(&no).copied().unwrap_or(0))
    }

    /// Called under `writer`, after a write to the tenant's activities was applied.
    fn bump_generation(&self, tenant: u32) {
        let mut g = self.generations.lock();
        let n = g.entry(tenant).or_insert(0);
        *n = n.wrapping_add(1);
    }

    /// The one place where data reaches the `log` tree.
    fn apply(&self, what: &str, batch: sled::Batch) -> Result<u64> {
        check_fault(&self.options.fault_hook, FaultPoint::ApplyBatch)?;
        guard(what, || Ok(self.log.apply_batch(batch)?))?;
        Ok(self.commit.record_write())
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    // ---- tenants ---------------------------------------------------------------------------

    /// Creates a tenant. The first tenant created is the default one of admin requests.
    pub fn create_tenant(&self, id: &str, settings: TenantSettings) -> Result<Tenant> {
        crate::model::validate_tenant_id(id)?;
        crate::model::validate_settings(&settings)?;
        let _w = self.writer.lock();
        if self.tenants.read().contains_key(id) {
            return Err(Error::TenantExists(id.to_owned()));
        }
        let no = self
            .tenants
            .read()
            .values()
            .map(|t| t.no + 1)
            .max()
            .unwrap_or(1);
        if no > keys::MAX_TENANT_NO {
            return Err(Error::invalid(
                "id",
                format!("a store holds at most {} tenants", keys::MAX_TENANT_NO),
            ));
        }
        let tenant = Tenant {
            id: id.to_owned(),
            settings,
            created_at: self.now(),
        };
        let info = meta::tenant_info(no, tenant.clone())?;
        meta::put_tenant(&self.meta, &info)?;
        self.flush()?;
        self.tenants.write().insert(id.to_owned(), info);
        Ok(tenant)
    }

    /// Changes a tenant's settings.
    pub fn update_tenant(&self, id: &str, patch: TenantPatch) -> Result<Tenant> {
        let _w = self.writer.lock();
        let mut info = self.tenant_info(id)?;
        if let Some(tz) = patch.timezone {
            info.tenant.settings.timezone = tz;
        }
        if let Some(r) = patch.retention_days {
            info.tenant.settings.retention_days = r;
        }
        crate::model::validate_settings(&info.tenant.settings)?;
        let info = meta::tenant_info(info.no, info.tenant)?;
        meta::put_tenant(&self.meta, &info)?;
        self.flush()?;
        self.tenants.write().insert(id.to_owned(), info.clone());
        Ok(info.tenant)
    }

    /// One tenant, if it exists.
    pub fn tenant(&self, id: &str) -> Option<Tenant> {
        self.tenants.read().get(id).map(|t| t.tenant.clone())
    }

    /// Every tenant, in order of creation.
    pub fn tenants(&self) -> Vec<Tenant> {
        let mut v: Vec<TenantInfo> = self.tenants.read().values().cloned().collect();
        v.sort_by_key(|t| t.no);
        v.into_iter().map(|t| t.tenant).collect()
    }

    /// The first tenant created, if any.
    pub fn default_tenant(&self) -> Option<Tenant> {
        self.tenants
            .read()
            .values()
            .min_by_key(|t| t.no)
            .map(|t| t.tenant.clone())
    }

    pub(crate) fn tenant_info(&self, id: &str) -> Result<TenantInfo> {
        self.tenants
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::TenantNotFound(id.to_owned()))
    }

    // ---- API keys ----------------------------------------------------------------------------

    /// Stores an API key record (the caller hashes the secret). The admin scope and the absence
    /// of a tenant go together: an admin key names no tenant, every other key names one.
    pub fn put_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        match (&key.tenant, key.scope) {
            (None, Scope::Admin) => {}
            (Some(t), scope) if scope != Scope::Admin => {
                self.tenant_info(t)?;
            }
            (Some(_), _) => {
                return Err(Error::invalid("tenant", "an admin key names no tenant"));
            }
            (None, _) => {
                return Err(Error::invalid(
                    "tenant",
                    "a read, write or read_write key belongs to one tenant",
                ));
            }
        }
        meta::put_api_key(&self.meta, key)?;
        self.flush()
    }

    /// One API key record by its public id.
    pub fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        self.read_guard("api key", || meta::get_api_key(&self.meta, key_id))
    }

    /// Every API key record (revoked ones included).
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.read_guard("api keys", || meta::list_api_keys(&self.meta))
    }

    /// Marks a key revoked. Returns false if there is no such key.
    pub fn revoke_api_key(&self, key_id: &str) -> Result<bool> {
        let Some(mut k) = meta::get_api_key(&self.meta, key_id)? else {
            return Ok(false);
        };
        k.revoked = true;
        meta::put_api_key(&self.meta, &k)?;
        self.flush()?;
        Ok(true)
    }

    // ---- appends -----------------------------------------------------------------------------

    /// Appends one activity. See [`Store::append_batch`].
    pub fn append(&self, tenant: &str, activity: NewActivity) -> Result<Appended> {
        let mut v = self.append_inner(tenant, vec![activity], false)?;
        v.pop()
            .ok_or_else(|| Error::Corrupt("append returned nothing".into()))
    }

    /// Appends up to 1,000 activities, all or nothing. An activity whose id exists with the same
    /// content is acknowledged with `created: false` and not written again; with other content the
    /// whole batch fails with `Conflict`. In `Sync` durability this returns after the flush.
    pub fn append_batch(&self, tenant: &str, batch: Vec<NewActivity>) -> Result<Vec<Appended>> {
        self.append_inner(tenant, batch, true)
    }

    fn append_inner(
        &self,
        tenant: &str,
        mut batch: Vec<NewActivity>,
        is_batch: bool,
    ) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Err(Error::invalid("activities", "must not be empty"));
        }
        if batch.len() > MAX_BATCH {
            return Err(Error::invalid(
                "activities",
                format!("more than {MAX_BATCH} in one batch"),
            ));
        }
        for (i, a) in batch.iter_mut().enumerate() {
            let prefix = if is_batch {
                format!("activities[{i}].")
            } else {
                String::new()
            };
            a.validate(&prefix)?;
        }
        let info = self.tenant_info(tenant)?;
        let mut out = Vec::with_capacity(batch.len());
        let mut sled_batch = sled::Batch::default();
        let mut in_batch: HashMap<Uuid, usize> = HashMap::new();
        let mut written: Vec<Activity> = Vec::new();
        let seq = {
            let mut logs = self.writer.lock();
            let st = self.folder.state(&mut logs, info.no)?;
            // Back-pressure: past `max_pending` unindexed records, this append indexes them
            // before it writes, so the pending set a query reads stays bounded. In steps: one
            // batch of every pending record's postings pins sled's garbage for its whole apply.
            if st.pending() >= self.max_pending() {
                // A fold that gives up on readers leaves this append to go on past the bound.
                while self.folder.fold_locked(
                    st,
                    info.no,
                    indexer::FOLD_STEP,
                    indexer::Wait::GiveUp,
                )? > 0
                {}
            }
            let now = self.now();
            let head = st.head;
            // One commit, one `recorded_at`: the clock, but never before the previous commit's
            // (a clock stepped back does not reorder the log's own times).
            let recorded_at = now.max(crate::model::micros_to_time(head.recorded_at));
            let mut next = head;
            for a in batch {
                let created_at = a.created_at.unwrap_or(now);
                let supplied_time = a.created_at.is_some();
                // An id minted here is new (62 random bits beside its microsecond): nothing
                // stored can be a replay of it, so it skips the lookup (7.5% of the sync
                // ingest's CPU samples, BENCHMARKS.md 2026-12-05).
                let (id, minted) = match a.id {
                    Some(id) => (id, false),
                    None => (new_id(created_at.timestamp_micros()), true),
                };
                let mut activity = a.into_activity(id, created_at);
                if let Some(&j) = in_batch.get(&id) {
                    let earlier: &Activity = &written[j];
                    if !same_content(earlier, &activity, supplied_time) {
                        return Err(Error::Conflict { id });
                    }
                    out.push(Appended::replayed(earlier));
                    continue;
                }
                let stored = if minted {
                    None
                } else {
                    guard("append", || self.get_by_no(info.no, id))?
                };
                if let Some(existing) = stored {
                    if !same_content(&existing, &activity, supplied_time) {
                        return Err(Error::Conflict { id });
                    }
                    out.push(Appended::replayed(&existing));
                    continue;
                }
                next.seq += 1;
                activity.seq = next.seq;
                activity.recorded_at = recorded_at;
                write_activity(&mut sled_batch, info.no, &activity)?;
                out.push(Appended {
                    id,
                    created_at,
                    seq: activity.seq,
                    recorded_at,
                    created: true,
                });
                in_batch.insert(id, written.len());
                written.push(activity);
            }
            if written.is_empty() {
                None
            } else {
                next.recorded_at = recorded_at.timestamp_micros();
                sled_batch.insert(keys::head_key(info.no), &next.encode()[..]);
                if !st.stored {
                    // The first deferred append: until now the head stood for the watermark.
                    sled_batch.insert(
                        keys::watermark_key(info.no),
                        &keys::encode_watermark(st.indexed)[..],
                    );
                }
                let seq = self.apply("append", sled_batch)?;
                st.head = next;
                st.stored = true;
                let wake = st.pending() >= self.wake_at();
                drop(logs);
                self.bump_generation(info.no);
                if wake {
                    if let Some(b) = &self.background {
                        b.wake();
                    }
                }
                Some(seq)
            }
        };
        if self.options.durability == Durability::Sync {
            // A request that wrote nothing (an idempotent replay) found records that an earlier
            // write applied; that write's flush may have failed, so the replay waits for a flush
            // covering every write so far, as the original should have. (0: nothing was written
            // through this handle, so what it read was recovered from disk.)
            match seq {
                Some(seq) => self.wait_flushed(seq)?,
                None => match self.commit.written() {
                    0 => {}
                    all => self.wait_flushed(all)?,
                },
            }
        }
        Ok(out)
    }

    /// The last `seq` appended to a tenant's log (0 if none): where a reader that wants only
    /// what comes next starts (`Filter::after_seq`).
    pub fn last_seq(&self, tenant: &str) -> Result<u64> {
        let info = self.tenant_info(tenant)?;
        if let Some(st) = self.writer.lock().get(&info.no) {
            return Ok(st.head.seq);
        }
        self.read_guard("last seq", || {
            Ok(indexer::read_head(&self.log, info.no)?.seq)
        })
    }

    // ---- indexing ----------------------------------------------------------------------------

    /// Folds up to `max` of each tenant's appended-but-unindexed activities into the indexes,
    /// oldest `seq` first, and returns how many it folded.
    ///
    /// Appends write an activity's record and its place in the log, not its index entries;
    /// every query sees it at once all the same (it reads the unindexed ones beside the
    /// indexes). Folding is what the background indexer does every
    /// [`Options::index_interval`]; call this when it is off
    /// ([`Options::background_indexing`]), or to bring the indexes up to date before a bulk
    /// read. Each fold is one atomic write: after a crash an activity is either indexed or
    /// still waiting, never half indexed.
    pub fn fold_pending(&self, max: usize) -> Result<u64> {
        let mut folded = 0u64;
        let numbers: Vec<u32> = self.tenants.read().values().map(|t| t.no).collect();
        for no in numbers {
            let mut left = max;
            while left > 0 {
                let n = self.folder.fold_tenant(
                    no,
                    left.min(indexer::FOLD_STEP),
                    indexer::Wait::Patient,
                )?;
                if n == 0 {
                    break;
                }
                folded += n;
                left = left.saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
            }
        }
        Ok(folded)
    }

    /// How many of a tenant's activities wait to be indexed (purged ones included).
    pub fn pending_count(&self, tenant: &str) -> Result<u64> {
        let info = self.tenant_info(tenant)?;
        let mut logs = self.writer.lock();
        Ok(self.folder.state(&mut logs, info.no)?.pending())
    }

    fn max_pending(&self) -> u64 {
        u64::try_from(self.options.max_pending.max(1)).unwrap_or(u64::MAX)
    }

    /// Pending records past which an append wakes the background indexer early.
    fn wake_at(&self) -> u64 {
        (self.max_pending() / 4).max(1)
    }

    /// The tenant's index watermark as stored: records up to this `seq` are in the indexes,
    /// later ones are read from the log (see `indexer`). Read before the index it stands for.
    pub(crate) fn indexed_through(&self, tenant: u32) -> Result<u64> {
        Ok(indexer::read_watermark(&self.log, tenant)?.1)
    }

    /// Holds the indexes and the watermark still (no fold applies) while alive: for readers
    /// that add index figures to pending ones.
    ///
    /// Recursive: a reader is never queued behind a fold waiting for the gate, only held off
    /// while one applies its batch. Readers hold it across budget checkpoints, where the server
    /// makes them wait for a turn that another reader holds; had that reader queued behind the
    /// waiting fold, which waits for the first, the three would wait forever. The price: a
    /// fold waits until no such reader holds the gate.
    pub(crate) fn index_still(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.folder.gate.read_recursive()
    }

    // ---- reads -------------------------------------------------------------------------------

    /// One activity by id, or `None`.
    pub fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Activity>> {
        let info = self.tenant_info(tenant)?;
        self.read_guard("get", || self.get_by_no(info.no, id))
    }

    /// Where a record lives: its time comes from the id itself when the id was minted for it
    /// (see [`new_id`]), else from the id entry.
    pub(crate) fn locate(&self, tenant: u32, id: Uuid) -> Result<Option<Pos>> {
        if let Some(time) = id_time_hint(id) {
            let pos = Pos { time, id };
            if self.log.contains_key(keys::record_key(tenant, pos))? {
                return Ok(Some(pos));
            }
        }
        match self.log.get(keys::id_key(tenant, id))? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| Error::Corrupt("id entry of bad length".into()))?;
                Ok(Some(Pos {
                    time: keys::decode_time(b),
                    id,
                }))
            }
        }
    }

    /// One activity by id as its stored bytes (to be read in place with [`Record::view`]), or
    /// `None`.
    pub fn get_record(&self, tenant: &str, id: Uuid) -> Result<Option<Record>> {
        let info = self.tenant_info(tenant)?;
        self.read_guard("get", || {
            let Some(pos) = self.locate(info.no, id)? else {
                return Ok(None);
            };
            self.stored_at(info.no, pos)
        })
    }

    pub(crate) fn get_by_no(&self, tenant: u32, id: Uuid) -> Result<Option<Activity>> {
        let Some(pos) = self.locate(tenant, id)? else {
            return Ok(None);
        };
        self.record_at(tenant, pos)
    }

    /// The record at a position, decoded.
    pub(crate) fn record_at(&self, tenant: u32, pos: Pos) -> Result<Option<Activity>> {
        match self.log.get(keys::record_key(tenant, pos))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::decode(pos, &v)?)),
        }
    }

    /// The record at a position, as stored (sled's buffer, not copied).
    pub(crate) fn stored_at(&self, tenant: u32, pos: Pos) -> Result<Option<Record>> {
        Ok(self
            .log
            .get(keys::record_key(tenant, pos))?
            .map(|v| Record::new(pos, v)))
    }

    #[cfg(feature = "bench")]
    pub(crate) fn decode_record(pos: Pos, bytes: &[u8]) -> Result<Activity> {
        codec::decode(pos, bytes)
    }

    // ---- retention ---------------------------------------------------------------------------

    /// Removes every activity older than its tenant's `retention_days` at `now`, each record
    /// together with its index entries. Returns how many were removed.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        self.read_guard("purge", || self.purge_inner(now))
    }

    fn purge_inner(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0u64;
        for t in self.tenants() {
            let Some(days) = t.settings.retention_days else {
                continue;
            };
            let info = self.tenant_info(&t.id)?;
            // A retention too long to express (settings are bounded, but a store written before
            // the bound may hold any u32) keeps everything; it never wraps to a later cutoff.
            let Some(cutoff) = retention_cutoff(now.timestamp_micros(), days) else {
                tracing::warn!(tenant = %t.id, days, "retention too long to apply; nothing purged");
                continue;
            };
            loop {
                let mut logs = self.writer.lock();
                let indexed = self.folder.state(&mut logs, info.no)?.indexed;
                let prefix = keys::record_prefix(info.no);
                let range = keys::suffix_range(
                    &prefix,
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Excluded(Pos {
                        time: cutoff,
                        id: Uuid::nil(),
                    }),
                );
                let mut batch = sled::Batch::default();
                let mut gone = Vec::new();
                let mut n = 0u64;
                for kv in self.log.range(range).take(512) {
                    let (k, v) = kv?;
                    let (_, pos) = keys::decode_record_key(&k)?;
                    let a = codec::decode(pos, &v)?;
                    batch.remove(k);
                    if id_time_hint(a.id) != Some(pos.time) {
                        batch.remove(keys::id_key(info.no, a.id));
                    }
                    batch.remove(keys::seq_key(info.no, a.seq));
                    // A pending record (past the watermark) has no index entries yet.
                    if a.seq <= indexed {
                        gone.extend(derived_prefixes(info.no, &a).into_iter().map(|p| (p, pos)));
                    }
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                postings::remove_grouped(&self.log, &mut batch, gone)?;
                self.apply("purge", batch)?;
                self.bump_generation(info.no);
                removed += n;
            }
        }
        if removed > 0 {
            self.flush()?;
        }
        Ok(removed)
    }

    /// Cross-checks every record against every index entry; stops at the first disagreement.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify::run(self)
    }
}

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

/// The instant before which a retention of `days` removes records at `now_us`, or `None` when it
/// is not representable (the records are then all kept).
fn retention_cutoff(now_us: i64, days: u32) -> Option<i64> {
    i64::from(days)
        .checked_mul(DAY_US)
        .and_then(|span| now_us.checked_sub(span))
}

/// Two activities with the same id are "the same" when every field the writer gave matches
/// (`seq` and `recorded_at` are the store's); when the second write did not name a time, the
/// time is not part of the comparison.
fn same_content(existing: &Activity, new: &Activity, new_time_supplied: bool) -> bool {
    let mut n = new.clone();
    n.seq = existing.seq;
    n.recorded_at = existing.recorded_at;
    if !new_time_supplied {
        n.created_at = existing.created_at;
    }
    *existing == n
}

/// The stored bytes of a record (for the benchmarks' component benches).
#[cfg(feature = "bench")]
pub(crate) fn encode_record(a: &Activity) -> Result<Vec<u8>> {
    codec::encode(a)
}

/// Adds one activity's record, seq entry and id entry (when needed) to a batch. Its index
/// entries come later, from the indexer (`indexer`).
fn write_activity(batch: &mut sled::Batch, tenant: u32, a: &Activity) -> Result<()> {
    let pos = Pos {
        time: a.created_at.timestamp_micros(),
        id: a.id,
    };
    batch.insert(keys::record_key(tenant, pos), codec::encode(a)?);
    batch.insert(keys::seq_key(tenant, a.seq), &pos.encode()[..]);
    if id_time_hint(a.id) != Some(pos.time) {
        batch.insert(keys::id_key(tenant, a.id), &keys::encode_time(pos.time)[..]);
    }
    Ok(())
}

/// Every index entry of an activity as a single-entry key (value prefix ++ its position).
#[cfg(feature = "bench")]
pub(crate) fn derived_keys(tenant: u32, a: &Activity) -> Vec<Vec<u8>> {
    let pos = Pos {
        time: a.created_at.timestamp_micros(),
        id: a.id,
    };
    derived_prefixes(tenant, a)
        .into_iter()
        .map(|k| keys::list_key(&k, pos))
        .collect()
}

/// The index value prefixes an activity's position is listed under (see `postings`). The one
/// definition of what is indexed: appends, retention and `verify` all call it.
pub(crate) fn derived_prefixes(tenant: u32, a: &Activity) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + a.context.len());
    let mut add =
        |kind: IndexKind, vals: &[&str]| out.push(keys::index_value_prefix(tenant, kind, vals));
    add(IndexKind::Action, &[&a.action]);
    add(IndexKind::ResourceType, &[&a.resource.kind]);
    if let Some(id) = &a.resource.id {
        add(IndexKind::Resource, &[&a.resource.kind, id]);
    }
    if let Some(actor) = &a.actor {
        add(IndexKind::ActorType, &[&actor.kind]);
        if let Some(id) = &actor.id {
            add(IndexKind::Actor, &[&actor.kind, id]);
        }
        if let Some(name) = &actor.name {
            add(IndexKind::ActorName, &[name]);
        }
    }
    if let Some(t) = &a.target {
        if let Some(id) = &t.id {
            add(IndexKind::Target, &[&t.kind, id]);
        }
    }
    for (k, v) in &a.context {
        add(IndexKind::Context, &[k, v]);
    }
    out
}

/// A fresh UUIDv7 that carries its record's time: the 48-bit millisecond field holds the
/// milliseconds and the 12-bit `rand_a` field the microseconds within them (RFC 9562 §6.2,
/// method 3), so `get` finds the record with one seek and no id entry is written. Times before
/// 1970 or past 48 bits get a random v4 id and an id entry.
pub(crate) fn new_id(time_us: i64) -> Uuid {
    let random: u128 = rand::random();
    let (ms, sub) = (time_us.div_euclid(1000), time_us.rem_euclid(1000));
    let (Ok(ms), Ok(sub)) = (u64::try_from(ms), u16::try_from(sub)) else {
        return Uuid::new_v4();
    };
    if ms >= 1 << 48 {
        return Uuid::new_v4();
    }
    let mut b = random.to_be_bytes();
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let [hi, lo] = sub.to_be_bytes();
    b[6] = 0x70 | (hi & 0x0F);
    b[7] = lo;
    b[8] = 0x80 | (b[8] & 0x3F);
    Uuid::from_bytes(b)
}

/// The record time an id minted by [`new_id`] carries, if it is such an id.
pub(crate) fn id_time_hint(id: Uuid) -> Option<i64> {
    let b = id.as_bytes();
    if b[6] >> 4 != 7 || b[8] >> 6 != 0b10 {
        return None;
    }
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&b[..6]);
    let ms = i64::try_from(u64::from_be_bytes(ms)).ok()?;
    let sub = (i64::from(b[6] & 0x0F) << 8) | i64::from(b[7]);
    (sub < 1000).then(|| ms * 1000 + sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own; `true` if it returned within a wide bound (10 s for
    /// what takes milliseconds), `false` if it was still waiting.
    fn finishes(f: impl FnOnce() + Send + 'static) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok()
    }

    fn one() -> NewActivity {
        NewActivity::new("gate", crate::ObjectRef::of_type("T"))
    }

    /// What broke: a fold waits for readers that hold the indexes still, and it waited holding
    /// the writer lock, so while a count or facet held the gate (or several overlapped without a
    /// gap) every append waited too, the background indexer's fold merely being due. The
    /// background fold now gives up after `GATE_PATIENCE` and comes back next round.
    #[test]
    fn a_reader_holding_the_index_still_does_not_stall_appends() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::new().index_interval(std::time::Duration::from_millis(1));
        let store = Arc::new(Store::open(dir.path(), options).unwrap());
        store.create_tenant("a", TenantSettings::default()).unwrap();
        let still = store.index_still();
        for _ in 0..3 {
            let s = store.clone();
            assert!(finishes(move || {
                s.append("a", one()).unwrap();
            }));
        }
        drop(still);
        store.fold_pending(usize::MAX).unwrap();
        assert_eq!(store.pending_count("a").unwrap(), 0);
        assert_eq!(
            store
                .count("a", &crate::Filter::new().actions(["gate"]))
                .unwrap(),
            3
        );
    }

    /// The same for an append past `max_pending`: it goes on instead of waiting for readers,
    /// and its activity is found all the same.
    #[test]
    fn back_pressure_does_not_wait_for_readers() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::new().background_indexing(false).max_pending(1);
        let store = Arc::new(Store::open(dir.path(), options).unwrap());
        store.create_tenant("a", TenantSettings::default()).unwrap();
        store.append("a", one()).unwrap();
        let still = store.index_still();
        let s = store.clone();
        assert!(finishes(move || {
            s.append("a", one()).unwrap();
        }));
        drop(still);
        assert_eq!(store.pending_count("a").unwrap(), 2);
        assert_eq!(
            store
                .count("a", &crate::Filter::new().actions(["gate"]))
                .unwrap(),
            2
        );
    }

    /// sled's reverse-iteration panic printed its whole tree, keys and values, into the log
    /// (1.5 MB for two requests on a 3,000-row store): the summary keeps only its words.
    #[test]
    fn panic_summaries_hold_no_data() {
        let tree = format!("{:?}", vec![255u8; 100_000]);
        let sled_msg =
            format!("fucked up tree traversal next_back(Excluded([0, 0, 1, 255])) on Tree: {tree}");
        assert_eq!(
            panic_summary(&sled_msg),
            "fucked up tree traversal next_back…"
        );
        assert_eq!(
            panic_summary("tried to serialize Uninitialized"),
            "tried to serialize Uninitialized"
        );
        assert_eq!(panic_summary("key = \"secret\""), "key…");
        let long = "word ".repeat(1_000);
        assert!(panic_summary(&long).chars().count() <= PANIC_SUMMARY_MAX + 1);
        let r: Result<()> = guard("query", || panic!("{sled_msg}"));
        let Err(Error::EnginePanic(m)) = r else {
            panic!("not an engine panic")
        };
        assert_eq!(m, "query: fucked up tree traversal next_back…");
    }

    #[test]
    fn retention_cutoffs_never_wrap() {
        let now = 1_700_000_000_000_000;
        assert_eq!(retention_cutoff(now, 1), Some(now - DAY_US));
        assert_eq!(
            retention_cutoff(now, crate::model::MAX_RETENTION_DAYS),
            Some(now - 36_500 * DAY_US)
        );
        // 999,999,999 days is past i64 microseconds: the old code wrapped to a future cutoff.
        assert_eq!(retention_cutoff(now, 999_999_999), None);
        assert_eq!(retention_cutoff(now, u32::MAX), None);
        assert_eq!(retention_cutoff(i64::MIN + DAY_US - 1, 1), None);
    }

    #[test]
    fn minted_ids_carry_their_time() {
        for t in [
            0i64,
            1,
            999,
            1_000,
            1_700_000_000_123_456,
            (1 << 48) * 1000 - 1,
        ] {
            let id = new_id(t);
            assert_eq!(id.get_version_num(), 7, "{t}");
            assert_eq!(id_time_hint(id), Some(t), "{t}");
        }
        for t in [-1i64, -1_000_000, (1 << 48) * 1000] {
            let id = new_id(t);
            assert_eq!(id.get_version_num(), 4, "{t}");
            assert_eq!(id_time_hint(id), None);
        }
        // An ordinary v7 from another generator may carry random sub-millisecond bits.
        let foreign = Uuid::now_v7();
        let _ = id_time_hint(foreign);
        assert_eq!(id_time_hint(Uuid::nil()), None);
    }
}
