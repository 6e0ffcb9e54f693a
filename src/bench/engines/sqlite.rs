//! The SQLite peer, tuned fairly: WAL, `synchronous=NORMAL` (and `FULL`, the durability of
//! actlog's `sync`, for contrast), records clustered by `(tenant, created_at, id)` in a
//! `WITHOUT ROWID` table, one secondary index per actlog index, context entries in a clustered
//! side table, a 256 MB page cache, prepared statements, 1,000 rows a transaction, and row-value
//! cursors. Rows are read as actlog reads a record: in place (every text column borrowed and
//! checked UTF-8, JSON columns as text) for scans, pages and export, and decoded into the same
//! owned `Activity` the store returns for the "owned" scan figures.

use std::io;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use crate::bench::data::{
    peer_id, Batch, Rng, ACTIONS, HOT_ACTOR, HOT_RESOURCE_TYPE, IN_ACTIONS, TENANTS,
};
use crate::bench::engine::{Engine, SingleAppender, DEPTHS, PAGE_FILTERS};
use crate::bench::options::Plan;
use crate::bench::util::{io_err, latency, Figures};
use crate::model::{Activity, Actor, NewActivity, ObjectRef};
use crate::Order;

const SCHEMA: &str = "
CREATE TABLE activity (
    tenant INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    id BLOB NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    actor_type TEXT,
    actor_id TEXT,
    actor_name TEXT,
    actor_email TEXT,
    target_type TEXT,
    target_id TEXT,
    context TEXT,
    summary TEXT,
    reason TEXT,
    changes TEXT,
    metadata TEXT,
    PRIMARY KEY (tenant, created_at, id)
) WITHOUT ROWID;
CREATE INDEX activity_action ON activity (tenant, action, created_at, id);
CREATE INDEX activity_resource_type ON activity (tenant, resource_type, created_at, id);
CREATE INDEX activity_resource ON activity (tenant, resource_type, resource_id, created_at, id);
CREATE INDEX activity_actor_type ON activity (tenant, actor_type, created_at, id);
CREATE INDEX activity_actor ON activity (tenant, actor_type, actor_id, created_at, id);
CREATE INDEX activity_actor_name ON activity (tenant, actor_name, created_at, id);
CREATE INDEX activity_target ON activity (tenant, target_type, target_id, created_at, id);
CREATE TABLE activity_context (
    tenant INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (tenant, key, value, created_at, id)
) WITHOUT ROWID;
";

const INSERT: &str = "INSERT INTO activity VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
const INSERT_CONTEXT: &str = "INSERT INTO activity_context VALUES (?1, ?2, ?3, ?4, ?5)";
const COLUMNS: &str = "created_at, id, action, resource_type, resource_id, actor_type, actor_id, actor_name, actor_email, target_type, target_id, context, summary, reason, changes, metadata";

fn open(path: &Path, synchronous: &str) -> io::Result<Connection> {
    let conn = Connection::open(path).map_err(io_err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(io_err)?;
    Ok(conn)
}

/// A new database in the directory `path`, with the schema.
fn create(path: &Path, synchronous: &str) -> io::Result<Connection> {
    std::fs::create_dir_all(path)?;
    let conn = open(&path.join("bench.sqlite"), synchronous)?;
    conn.execute_batch(SCHEMA).map_err(io_err)?;
    Ok(conn)
}

/// The prepared inserts of an activity's row and of its context entries.
struct Inserts<'c> {
    row: CachedStatement<'c>,
    context: CachedStatement<'c>,
}

impl Inserts<'_> {
    fn new(conn: &Connection) -> io::Result<Inserts<'_>> {
        Ok(Inserts {
            row: conn.prepare_cached(INSERT).map_err(io_err)?,
            context: conn.prepare_cached(INSERT_CONTEXT).map_err(io_err)?,
        })
    }

    /// Inserts one activity (its row and its context entries) under a fresh id from `ids`.
    fn insert(&mut self, tenant: i64, a: &NewActivity, ids: &mut Rng) -> io::Result<()> {
        let t = a.created_at.map_or(0, |t| t.timestamp_micros());
        let id = peer_id(ids, t);
        let actor = a.actor.as_ref();
        let target = a.target.as_ref();
        let context =
            (!a.context.is_empty()).then(|| serde_json::to_string(&a.context).unwrap_or_default());
        self.row
            .execute(params![
                tenant,
                t,
                &id.as_bytes()[..],
                a.action,
                a.resource.kind,
                a.resource.id,
                actor.map(|x| &x.kind),
                actor.and_then(|x| x.id.as_ref()),
                actor.and_then(|x| x.name.as_ref()),
                actor.and_then(|x| x.email.as_ref()),
                target.map(|x| &x.kind),
                target.and_then(|x| x.id.as_ref()),
                context,
                a.summary,
                a.reason,
                json_opt(&a.changes),
                json_opt(&a.metadata),
            ])
            .map_err(io_err)?;
        for (k, v) in &a.context {
            self.context
                .execute(params![tenant, k, v, t, &id.as_bytes()[..]])
                .map_err(io_err)?;
        }
        Ok(())
    }
}

fn tenant_no(t: &str) -> i64 {
    TENANTS
        .iter()
        .position(|x| *x == t)
        .and_then(|i| i64::try_from(i).ok())
        .unwrap_or(-1)
        + 1
}

fn json_opt(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

/// Reads every column of a row in place, as `Record::view` reads a record: text borrowed and
/// checked UTF-8, JSON as text, nothing allocated. Returns the bytes seen, so none of it is
/// optimized away.
fn read_in_place(row: &Row<'_>) -> rusqlite::Result<usize> {
    let mut n = 0usize;
    let _: i64 = row.get(0)?;
    let id = row.get_ref(1)?.as_blob()?;
    n += id.len();
    for i in 2..16 {
        n += row.get_ref(i)?.as_str_or_null()?.map_or(0, str::len);
    }
    Ok(n)
}

/// Writes a row as API v1's NDJSON line with the same writer actlog's export uses, from the
/// borrowed columns (the context column is parsed: it is stored as a JSON list of pairs).
fn write_line(row: &Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
    let text =
        |i: usize| -> rusqlite::Result<Option<&str>> { Ok(row.get_ref(i)?.as_str_or_null()?) };
    let req = |i: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(i)?.as_str()?) };
    let id: [u8; 16] = row.get(1)?;
    let context: Vec<(String, String)> = match text(11)? {
        Some(s) => serde_json::from_str(s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, Box::new(e))
        })?,
        None => Vec::new(),
    };
    let time: i64 = row.get(0)?;
    let a = crate::ActivityRef {
        id: Uuid::from_bytes(id),
        time,
        // The peer's schema has no log order of its own; its rows render with these.
        seq: 0,
        recorded_at: time,
        action: req(2)?,
        resource: crate::ObjRef {
            kind: req(3)?,
            id: text(4)?,
        },
        actor: match text(5)? {
            Some(kind) => Some(crate::ActorRef {
                kind,
                id: text(6)?,
                name: text(7)?,
                email: text(8)?,
            }),
            None => None,
        },
        target: match text(9)? {
            Some(kind) => Some(crate::ObjRef {
                kind,
                id: text(10)?,
            }),
            None => None,
        },
        context: crate::ContextRef::from_pairs(&context),
        summary: text(12)?,
        reason: text(13)?,
        changes: text(14)?,
        metadata: text(15)?,
        display: None,
    };
    crate::http::render::ndjson_line(out, &a);
    Ok(())
}

fn decode(row: &Row<'_>) -> rusqlite::Result<Activity> {
    let conv = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let id: [u8; 16] = row.get(1)?;
    let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        row.get_ref(i)?
            .as_str_or_null()?
            .map(|s| serde_json::from_str(s).map_err(|e| conv(i, e)))
            .transpose()
    };
    let actor_type: Option<String> = row.get(5)?;
    let target_type: Option<String> = row.get(9)?;
    let context = match row.get_ref(11)?.as_str_or_null()? {
        Some(s) => serde_json::from_str(s).map_err(|e| conv(11, e))?,
        None => Vec::new(),
    };
    let created_at = crate::model::micros_to_time(row.get(0)?);
    Ok(Activity {
        id: Uuid::from_bytes(id),
        seq: 0,
        created_at,
        recorded_at: created_at,
        action: row.get(2)?,
        resource: ObjectRef {
            kind: row.get(3)?,
            id: row.get(4)?,
        },
        actor: match actor_type {
            Some(kind) => Some(Actor {
                kind,
                id: row.get(6)?,
                name: row.get(7)?,
                email: row.get(8)?,
            }),
            None => None,
        },
        target: match target_type {
            Some(kind) => Some(ObjectRef {
                kind,
                id: row.get(10)?,
            }),
            None => None,
        },
        context,
        summary: row.get(12)?,
        reason: row.get(13)?,
        changes: json(14)?,
        metadata: json(15)?,
        display: None,
    })
}

/// The WHERE clause and its values for one of the report's page filters.
fn filter_sql(name: &str) -> (&'static str, Vec<String>) {
    match name {
        "action" => ("action = ?2", vec![ACTIONS[0].0.into()]),
        "resource" => ("resource_type = ?2", vec![HOT_RESOURCE_TYPE.into()]),
        "actor" => (
            "actor_type = ?2 AND actor_id = ?3",
            vec![HOT_ACTOR.0.into(), HOT_ACTOR.1.into()],
        ),
        _ => (
            "action IN (?2, ?3, ?4)",
            IN_ACTIONS.iter().map(|a| (*a).into()).collect(),
        ),
    }
}

/// The parameters of a page filter's query: `?1` the busiest tenant, then the filter's values.
fn filter_args(values: &[String]) -> Vec<rusqlite::types::Value> {
    let mut args: Vec<rusqlite::types::Value> = vec![tenant_no(TENANTS[0]).into()];
    args.extend(values.iter().map(|v| v.clone().into()));
    args
}

/// `ORDER BY` of an order: the direction, and the row-value comparison that resumes after a
/// cursor in it.
fn direction(order: Order) -> (&'static str, &'static str) {
    match order {
        Order::Asc | Order::Seq => ("ASC", ">"),
        Order::Desc => ("DESC", "<"),
    }
}

/// A connection to `bench.sqlite` in the engine's directory, and the ids it mints for rows (a
/// UUIDv7 per row, as actlog's store mints them).
pub struct SqliteEngine {
    conn: Connection,
    /// Used by ingests only (a reader appends nothing).
    ids: Rng,
}

impl SqliteEngine {
    /// The `(created_at, id)` of a page filter's match after `skip` others, newest first
    /// (found by `OFFSET`; never timed).
    fn position(&self, filter: &str, skip: usize) -> io::Result<Option<(i64, Vec<u8>)>> {
        let (clause, values) = filter_sql(filter);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT created_at, id FROM activity WHERE tenant = ?1 AND {clause} \
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?{o}",
                o = values.len() + 2
            ))
            .map_err(io_err)?;
        let mut args = filter_args(&values);
        args.push(i64::try_from(skip).unwrap_or(0).into());
        st.query_row(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(io_err)
    }
}

/// A page of 50 at a depth: the statement, and its parameters with the row-value cursor of
/// the match just before the page.
pub struct SqlitePage<'a> {
    stmt: CachedStatement<'a>,
    args: Vec<rusqlite::types::Value>,
}

/// Single-row appends: one connection (and its id source) that every thread takes in turn.
pub struct SqliteAppender {
    writer: Mutex<SqliteEngine>,
}

impl SingleAppender for SqliteAppender {
    /// One transaction per activity (its row and its context rows), committed before the
    /// connection is handed on.
    fn append_one(&self, tenant: &str, activity: NewActivity) -> io::Result<()> {
        let mut w = self.writer.lock();
        let SqliteEngine { conn, ids } = &mut *w;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io_err)?;
        Inserts::new(&tx)?.insert(tenant_no(tenant), &activity, ids)?;
        tx.commit().map_err(io_err)
    }
}

impl Engine for SqliteEngine {
    const NAME: &'static str = "sqlite";
    /// `synchronous`: `NORMAL` or `FULL`.
    type Durability = &'static str;
    type Page<'a> = SqlitePage<'a>;
    type Appender = SqliteAppender;

    fn create(plan: &Plan, path: &Path, synchronous: &'static str) -> io::Result<Self> {
        Ok(SqliteEngine {
            conn: create(path, synchronous)?,
            ids: Rng::new(plan.seed ^ 0x5eed),
        })
    }

    /// `synchronous=FULL`: in WAL mode every commit syncs the WAL before it returns, so an
    /// acknowledged row survives a power loss, as an append acknowledged by actlog's `sync`
    /// is meant to (`NORMAL` syncs only at checkpoints: a commit can be lost, so it would
    /// compare a weaker promise). Both end a commit in an fsync: SQLite its WAL's, actlog an
    /// `fdatasync` of sled's file after sled's own flush (`Store::wait_flushed`).
    ///
    /// One connection behind a mutex, shared by every thread: SQLite admits
    /// one writer at a time whatever the connections, and a pool of connections contending
    /// for the write lock waits in the busy handler's sleeps (1 ms, 2 ms, 5 ms, …) instead of
    /// queueing, so the usual advice for a write-heavy service is one writer connection. (Tried
    /// here: 16 connections with a 5 s busy timeout gave 2,350 and then 262 inserts/s at 16
    /// threads, p99 up to 2.1 s, against ~3,300/s and p99 ~16 ms behind the mutex.)
    fn create_appender(plan: &Plan, path: &Path) -> io::Result<SqliteAppender> {
        Ok(SqliteAppender {
            writer: Mutex::new(SqliteEngine {
                conn: create(path, "FULL")?,
                ids: Rng::new(plan.seed ^ 0x0001_5eed),
            }),
        })
    }

    /// One transaction of prepared inserts.
    fn append(&mut self, batch: Batch) -> io::Result<()> {
        let tenant = tenant_no(batch.tenant);
        let tx = self.conn.transaction().map_err(io_err)?;
        {
            let mut ins = Inserts::new(&tx)?;
            for a in &batch.events {
                ins.insert(tenant, a, &mut self.ids)?;
            }
        }
        tx.commit().map_err(io_err)
    }

    fn finish_ingest(self, _tag: &str, _events: u64, _fig: &mut Figures) -> io::Result<()> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(io_err)
    }

    fn open(path: &Path) -> io::Result<Self> {
        let conn = open(&path.join("bench.sqlite"), "NORMAL")?;
        // SQLite opens lazily: read the schema so the open is really done.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(io_err)?;
        Ok(SqliteEngine {
            conn,
            ids: Rng::new(0),
        })
    }

    /// The whole log in order, each row read in place, or (`owned`) decoded into an `Activity`.
    fn scan(&self, tenant: &str, order: Order, owned: bool) -> io::Result<u64> {
        let (dir, _) = direction(order);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 ORDER BY created_at {dir}, id {dir}"
            ))
            .map_err(io_err)?;
        let mut rows = st.query(params![tenant_no(tenant)]).map_err(io_err)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(io_err)? {
            if owned {
                std::hint::black_box(decode(row).map_err(io_err)?);
            } else {
                std::hint::black_box(read_in_place(row).map_err(io_err)?);
            }
            n += 1;
        }
        Ok(n)
    }

    /// The whole log in pages of 1,000 with row-value cursors, as `Store::query` pages it.
    fn scan_paged(&self, tenant: &str, order: Order) -> io::Result<u64> {
        let (dir, cmp) = direction(order);
        let tenant = tenant_no(tenant);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 AND (created_at, id) {cmp} (?2, ?3) \
                 ORDER BY created_at {dir}, id {dir} LIMIT 1000"
            ))
            .map_err(io_err)?;
        let mut cursor: (i64, Vec<u8>) = match order {
            Order::Asc | Order::Seq => (i64::MIN, Vec::new()),
            Order::Desc => (i64::MAX, vec![0xFF; 17]),
        };
        let mut n = 0u64;
        loop {
            let mut len = 0usize;
            let mut last = None;
            let mut rows = st
                .query(params![tenant, cursor.0, cursor.1])
                .map_err(io_err)?;
            while let Some(row) = rows.next().map_err(io_err)? {
                std::hint::black_box(read_in_place(row).map_err(io_err)?);
                len += 1;
                last = Some((row.get(0).map_err(io_err)?, row.get(1).map_err(io_err)?));
            }
            n += u64::try_from(len).unwrap_or(0);
            match last {
                Some(c) if len == 1000 => cursor = c,
                _ => return Ok(n),
            }
        }
    }

    fn count(&self, tenant: &str) -> io::Result<u64> {
        let n = self
            .conn
            .prepare_cached("SELECT count(*) FROM activity WHERE tenant = ?1 AND action = ?2")
            .and_then(|mut st| {
                st.query_row(params![tenant_no(tenant), ACTIONS[0].0], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map_err(io_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn facet(&self, tenant: &str) -> io::Result<()> {
        let r = (|| -> rusqlite::Result<Vec<(String, i64)>> {
            let mut st = self.conn.prepare_cached(
                "SELECT action, count(*) AS n FROM activity WHERE tenant = ?1 \
                 GROUP BY action ORDER BY n DESC, action LIMIT 100",
            )?;
            let rows = st.query_map(params![tenant_no(tenant)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })();
        std::hint::black_box(r.map_err(io_err)?);
        Ok(())
    }

    fn export(&self) -> io::Result<u64> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 ORDER BY created_at, id"
            ))
            .map_err(io_err)?;
        let mut n = 0u64;
        let mut line = Vec::with_capacity(1024);
        let mut sink = io::sink();
        for t in TENANTS {
            let mut rows = st.query(params![tenant_no(t)]).map_err(io_err)?;
            while let Some(row) = rows.next().map_err(io_err)? {
                line.clear();
                write_line(row, &mut line).map_err(io_err)?;
                io::Write::write_all(&mut sink, &line)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Pages of 50 by `LIMIT … OFFSET`, SQLite's other way to reach a depth.
    fn read_extras(&self, plan: &Plan, fig: &mut Figures) -> io::Result<()> {
        for name in PAGE_FILTERS {
            let (clause, values) = filter_sql(name);
            let k = values.len();
            let mut offset = self
                .conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 AND {clause} \
                     ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET ?{o}",
                    o = k + 2
                ))
                .map_err(io_err)?;
            let args = filter_args(&values);
            for depth in DEPTHS {
                if depth > 0 && self.position(name, depth - 1)?.is_none() {
                    continue;
                }
                let mut a = args.clone();
                a.push(i64::try_from(depth).unwrap_or(0).into());
                let (p50, p99, _) = latency(5, plan.page_reps, plan.page_budget, || {
                    let mut rows = offset
                        .query(rusqlite::params_from_iter(a.iter()))
                        .map_err(io_err)?;
                    while let Some(row) = rows.next().map_err(io_err)? {
                        std::hint::black_box(read_in_place(row).map_err(io_err)?);
                    }
                    Ok::<(), io::Error>(())
                })?;
                fig.insert(format!("page.{name}.d{depth}.offset_p50_us"), p50);
                fig.insert(format!("page.{name}.d{depth}.offset_p99_us"), p99);
            }
        }
        Ok(())
    }

    /// The row-value cursor of the match just before the page.
    fn page_at(&self, filter: &str, depth: usize) -> io::Result<Option<SqlitePage<'_>>> {
        let (clause, values) = filter_sql(filter);
        let k = values.len();
        let mut args = filter_args(&values);
        let cursor: (i64, Vec<u8>) = if depth == 0 {
            (i64::MAX, vec![0xFF; 17])
        } else {
            match self.position(filter, depth - 1)? {
                Some(c) => c,
                None => return Ok(None),
            }
        };
        let stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 AND {clause} \
                 AND (created_at, id) < (?{a}, ?{b}) ORDER BY created_at DESC, id DESC LIMIT 50",
                a = k + 2,
                b = k + 3
            ))
            .map_err(io_err)?;
        args.push(cursor.0.into());
        args.push(cursor.1.into());
        Ok(Some(SqlitePage { stmt, args }))
    }

    fn read_page(&self, page: &mut SqlitePage<'_>) -> io::Result<()> {
        let mut rows = page
            .stmt
            .query(rusqlite::params_from_iter(page.args.iter()))
            .map_err(io_err)?;
        while let Some(row) = rows.next().map_err(io_err)? {
            std::hint::black_box(read_in_place(row).map_err(io_err)?);
        }
        Ok(())
    }
}
