//! The SQLite peer, tuned fairly: WAL, `synchronous=NORMAL` (and `FULL`, the durability of
//! actlog's `sync`, for contrast), records clustered by `(tenant, created_at, id)` in a
//! `WITHOUT ROWID` table, one secondary index per actlog index, context entries in a clustered
//! side table, a 256 MB page cache, prepared statements, 1,000 rows a transaction, and row-value
//! cursors. Rows are read as actlog reads a record: in place (every text column borrowed and
//! checked UTF-8, JSON columns as text) for scans, pages and export, and decoded into the same
//! owned `Activity` the store returns for the "owned" scan figures.

use std::io;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::actlog::page_filters;
use super::data::{
    peer_id, Dataset, Rng, ACTIONS, HOT_ACTOR, HOT_RESOURCE_TYPE, IN_ACTIONS, TENANTS,
};
use super::util::{disk_usage, float, io_err, latency, median, peak_rss_mib, timed, Figures};
use super::{Plan, DEPTHS};
use crate::model::{Activity, Actor, ObjectRef};

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
pub const COLUMNS: &str = "created_at, id, action, resource_type, resource_id, actor_type, actor_id, actor_name, actor_email, target_type, target_id, context, summary, reason, changes, metadata";

/// Opens the database written by the `NORMAL` ingest, for reading.
pub fn open_read(dir: &Path) -> io::Result<Connection> {
    open(&dir.join("bench.sqlite"), "NORMAL")
}

fn open(path: &Path, synchronous: &str) -> io::Result<Connection> {
    let conn = Connection::open(path).map_err(io_err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(io_err)?;
    Ok(conn)
}

pub fn tenant_no(t: &str) -> i64 {
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

/// Creates the database, ingests the dataset in transactions of 1,000 and measures as the store's
/// `ingest` does.
pub fn ingest(plan: &Plan, path: &Path, synchronous: &str, tag: &str) -> io::Result<Figures> {
    let mut fig = Figures::new();
    std::fs::create_dir_all(path)?;
    let db = path.join("bench.sqlite");
    let mut conn = open(&db, synchronous)?;
    conn.execute_batch(SCHEMA).map_err(io_err)?;
    let mut ids = Rng::new(plan.seed ^ 0x5eed);
    let mut busy = Duration::ZERO;
    let mut batch_us = Vec::new();
    let mut n = 0u64;
    for batch in Dataset::new(plan.seed, plan.events) {
        let tenant = tenant_no(batch.tenant);
        let (r, d) = timed(|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut ins = tx.prepare_cached(INSERT)?;
                let mut ctx = tx.prepare_cached(INSERT_CONTEXT)?;
                for a in &batch.events {
                    let t = a.created_at.map_or(0, |t| t.timestamp_micros());
                    let id = peer_id(&mut ids, t);
                    let actor = a.actor.as_ref();
                    let target = a.target.as_ref();
                    let context = (!a.context.is_empty())
                        .then(|| serde_json::to_string(&a.context).unwrap_or_default());
                    ins.execute(params![
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
                    ])?;
                    for (k, v) in &a.context {
                        ctx.execute(params![tenant, k, v, t, &id.as_bytes()[..]])?;
                    }
                }
            }
            tx.commit()
        });
        r.map_err(io_err)?;
        busy += d;
        batch_us.push(d.as_secs_f64() * 1e6);
        n += u64::try_from(batch.events.len()).unwrap_or(0);
    }
    fig.insert(
        format!("ingest.{tag}.events_per_s"),
        float(n) / busy.as_secs_f64(),
    );
    fig.insert(
        format!("ingest.{tag}.batch_p50_ms"),
        median(&mut batch_us) / 1e3,
    );
    fig.insert(
        format!("ingest.{tag}.batch_p99_ms"),
        super::util::percentile(&mut batch_us, 99.0) / 1e3,
    );
    fig.insert(format!("ingest.{tag}.peak_rss_mib"), peak_rss_mib());
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(io_err)?;
    drop(conn);
    let bytes = disk_usage(path)?;
    fig.insert(
        format!("disk.{tag}.bytes_per_event"),
        float(bytes) / float(n),
    );
    Ok(fig)
}

/// Reads every column of a row in place, as `Record::view` reads a record: text borrowed and
/// checked UTF-8, JSON as text, nothing allocated. Returns the bytes seen, so none of it is
/// optimized away.
pub fn read_in_place(row: &Row<'_>) -> rusqlite::Result<usize> {
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
pub fn write_line(row: &Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
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

pub fn decode(row: &Row<'_>) -> rusqlite::Result<Activity> {
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

/// The whole log in order, each row read in place, or (`owned`) decoded into an `Activity`.
fn scan_all(conn: &Connection, tenant: i64, asc: bool, owned: bool) -> io::Result<u64> {
    let dir = if asc { "ASC" } else { "DESC" };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 ORDER BY created_at {dir}, id {dir}"
        ))
        .map_err(io_err)?;
    let mut rows = st.query(params![tenant]).map_err(io_err)?;
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
fn query_all(conn: &Connection, tenant: i64, asc: bool) -> io::Result<u64> {
    let (dir, cmp) = if asc { ("ASC", ">") } else { ("DESC", "<") };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 AND (created_at, id) {cmp} (?2, ?3) \
             ORDER BY created_at {dir}, id {dir} LIMIT 1000"
        ))
        .map_err(io_err)?;
    let mut cursor: (i64, Vec<u8>) = if asc {
        (i64::MIN, Vec::new())
    } else {
        (i64::MAX, vec![0xFF; 17])
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

fn rate(runs: usize, mut f: impl FnMut() -> io::Result<u64>) -> io::Result<f64> {
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (n, d) = timed(&mut f);
        rates.push(float(n?) / d.as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// The WHERE clause and its values for one of the report's page filters.
pub fn filter_sql(name: &str) -> (&'static str, Vec<String>) {
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

/// Every read figure, on the database written by the `NORMAL` ingest.
pub fn read(plan: &Plan, path: &Path) -> io::Result<Figures> {
    let mut fig = Figures::new();
    let db = path.join("bench.sqlite");
    let hot = tenant_no(TENANTS[0]);
    let mut opens = Vec::new();
    let open_timed = |opens: &mut Vec<f64>| -> io::Result<Connection> {
        let (c, d) = timed(|| -> io::Result<Connection> {
            let c = open(&db, "NORMAL")?;
            // SQLite opens lazily: read the schema so the open is really done.
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(io_err)?;
            Ok(c)
        });
        opens.push(d.as_secs_f64() * 1e3);
        c
    };
    for (asc, name) in [(true, "fwd"), (false, "rev")] {
        let conn = open_timed(&mut opens)?;
        let r = rate(1, || scan_all(&conn, hot, asc, false))?;
        fig.insert(format!("scan.cold_{name}.records_per_s"), r);
    }
    let conn = open_timed(&mut opens)?;
    fig.insert("open.ms".into(), median(&mut opens));
    for (asc, name) in [(true, "fwd"), (false, "rev")] {
        scan_all(&conn, hot, asc, false)?;
        let r = rate(plan.runs, || scan_all(&conn, hot, asc, false))?;
        fig.insert(format!("scan.warm_{name}.records_per_s"), r);
        let r = rate(plan.runs, || scan_all(&conn, hot, asc, true))?;
        fig.insert(format!("scan.owned_{name}.records_per_s"), r);
        let r = rate(plan.runs, || query_all(&conn, hot, asc))?;
        fig.insert(format!("scan.paged_{name}.records_per_s"), r);
    }

    for (name, _) in page_filters() {
        let (clause, values) = filter_sql(name);
        let k = values.len();
        let mut at = conn
            .prepare(&format!(
                "SELECT created_at, id FROM activity WHERE tenant = ?1 AND {clause} \
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?{o}",
                o = k + 2
            ))
            .map_err(io_err)?;
        let mut offset = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM activity WHERE tenant = ?1 AND {clause} \
                 ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET ?{o}",
                o = k + 2
            ))
            .map_err(io_err)?;
        let mut args: Vec<rusqlite::types::Value> = vec![hot.into()];
        args.extend(values.iter().map(|v| v.clone().into()));
        for depth in DEPTHS {
            if depth > 0 {
                let mut a = args.clone();
                a.push(i64::try_from(depth - 1).unwrap_or(0).into());
                let exists = at
                    .query_row(rusqlite::params_from_iter(a), |_| Ok(()))
                    .optional()
                    .map_err(io_err)?;
                if exists.is_none() {
                    continue;
                }
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

    let mut ms = Vec::new();
    let mut total = 0i64;
    for _ in 0..plan.runs.max(3) {
        let (c, d) = timed(|| {
            conn.prepare_cached("SELECT count(*) FROM activity WHERE tenant = ?1 AND action = ?2")?
                .query_row(params![hot, ACTIONS[0].0], |r| r.get::<_, i64>(0))
        });
        total = c.map_err(io_err)?;
        ms.push(d.as_secs_f64() * 1e3);
    }
    fig.insert("count.action.ms".into(), median(&mut ms));
    fig.insert(
        "count.action.matches".into(),
        float(u64::try_from(total).unwrap_or(0)),
    );
    let mut ms = Vec::new();
    for _ in 0..plan.runs.max(3) {
        let (r, d) = timed(|| -> rusqlite::Result<Vec<(String, i64)>> {
            let mut st = conn.prepare_cached(
                "SELECT action, count(*) AS n FROM activity WHERE tenant = ?1 \
                 GROUP BY action ORDER BY n DESC, action LIMIT 100",
            )?;
            let rows = st.query_map(params![hot], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        });
        std::hint::black_box(r.map_err(io_err)?);
        ms.push(d.as_secs_f64() * 1e3);
    }
    fig.insert("facet.action.ms".into(), median(&mut ms));

    let (n, d) = timed(|| -> io::Result<u64> {
        let mut st = conn
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
    });
    fig.insert("export.records_per_s".into(), float(n?) / d.as_secs_f64());
    fig.insert("read.peak_rss_mib".into(), peak_rss_mib());
    Ok(fig)
}
