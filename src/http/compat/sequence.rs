//! Sequence: `GET /activity-logs` (seed 001). An activity log is a run of consecutive activities
//! (in time order) sharing `context.activity_log_id`; an activity without it is a log of its own
//! (docs/profiles.md says why). Pages count logs, so a page is cut from the store's cursor pages at
//! a log boundary, and its `before`/`after` tokens are store cursors taken at that boundary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::{Extension, Json};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::common::{self, cursor_error, SeedParams};
use crate::http::{Access, ApiError, AppState, Params};
use crate::model::Activity;
use crate::query::{Filter, Order, Query, MAX_LIMIT};
use crate::store::Store;

/// The context key that groups activities into one log.
pub(crate) const LOG_KEY: &str = "activity_log_id";
/// The one API version the seed documents for the `sequence-version` header.
pub(crate) const VERSION: &str = "2024-07-30";
const DEFAULT_LIMIT: i64 = 20;
const MAX_PAGE: i64 = 100;
/// Most activities one page holds (the store's own page bound); see [`page_logs`].
pub(crate) const MAX_PAGE_ROWS: usize = MAX_LIMIT;

/// XORed into an activity id's node bits (its last 48, which hold neither version nor variant)
/// to give each reference object its own stable UUID.
const ACTOR_MASK: u128 = 0xA1A1_A1A1_A1A1;
const OBJECT_MASK: u128 = 0x0B0B_0B0B_0B0B;
const TARGET_MASK: u128 = 0x7A7A_7A7A_7A7A;

/// The id of an activity's actor, object or target reference; its own inverse.
pub(crate) fn ref_id(id: Uuid, mask: u128) -> Uuid {
    Uuid::from_u128(id.as_u128() ^ mask)
}

/// The object reference id of an activity (what `activityLogObjectId` names).
pub(crate) fn object_ref_id(activity: Uuid) -> Uuid {
    ref_id(activity, OBJECT_MASK)
}

/// Which way a token pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    After,
    Before,
}

impl Dir {
    fn tag(self) -> char {
        match self {
            Dir::After => 'A',
            Dir::Before => 'B',
        }
    }
    fn param(self) -> &'static str {
        match self {
            Dir::After => "after",
            Dir::Before => "before",
        }
    }
}

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) filter: Filter,
    pub(crate) order: Order,
    pub(crate) limit: usize,
    /// The direction and the store cursor inside the token.
    pub(crate) cursor: Option<(Dir, String)>,
}

/// Parses the query string and the `sequence-version` header.
pub(crate) fn parse(
    pairs: &[(String, String)],
    version: Option<&str>,
) -> Result<Request, ApiError> {
    if let Some(v) = version {
        if v != VERSION {
            return Err(ApiError::invalid(
                "sequence-version",
                format!("unsupported API version {v:?}; available: {VERSION}"),
            ));
        }
    }
    let p = SeedParams(pairs);
    let limit = usize::try_from(p.int_in("limit", 1, MAX_PAGE, DEFAULT_LIMIT)?).unwrap_or(1);
    let order = match p.non_empty("sortOrder")? {
        None => Order::Desc,
        Some(v) if v.eq_ignore_ascii_case("DESC") => Order::Desc,
        Some(v) if v.eq_ignore_ascii_case("ASC") => Order::Asc,
        Some(_) => return Err(ApiError::invalid("sortOrder", "must be ASC or DESC")),
    };
    let token = |dir: Dir| -> Result<Option<(Dir, String)>, ApiError> {
        let Some(t) = p.non_empty(dir.param())? else {
            return Ok(None);
        };
        match t.strip_prefix(dir.tag()) {
            Some(c) if !c.is_empty() => Ok(Some((dir, c.to_owned()))),
            _ => Err(ApiError::invalid(
                dir.param(),
                format!("not a pagination.{} value of this API", dir.param()),
            )),
        }
    };
    let cursor = match (token(Dir::After)?, token(Dir::Before)?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "before",
                "give before or after, not both",
            ));
        }
        (c, None) | (None, c) => c,
    };
    let mut filter = Filter::default();
    if let Some(v) = p.non_empty("activityLogObjectId")? {
        let id = Uuid::parse_str(v)
            .map_err(|_| ApiError::invalid("activityLogObjectId", "must be a UUID"))?;
        filter.ids = vec![object_ref_id(id)];
    }
    if let Some(v) = p.non_empty("activityLogObjectEntityId")? {
        filter.resource_ids = vec![v.to_owned()];
    }
    Ok(Request {
        filter,
        order,
        limit,
        cursor,
    })
}

fn log_key(a: &Activity) -> String {
    a.context_value(LOG_KEY)
        .map_or_else(|| a.id.to_string(), str::to_owned)
}

/// A page of whole logs: their activities in query order and the store cursors at its edges.
#[derive(Debug)]
pub(crate) struct LogPage {
    pub(crate) items: Vec<Activity>,
    pub(crate) after: Option<String>,
    pub(crate) before: Option<String>,
    /// Activities read from the store to make this page (at most `MAX_PAGE_ROWS + 1`).
    pub(crate) rows_read: usize,
}

/// Where a page is cut, tracked one activity at a time in reading order.
#[derive(Debug, Default)]
struct Runs {
    /// Logs (runs of one log key) seen so far.
    count: usize,
    /// Index of the first activity of the current log.
    last_start: usize,
    last_key: Option<String>,
}

/// Reads `n` whole logs from `cursor` on, in the direction of the cursor (forward without one),
/// and at most [`MAX_PAGE_ROWS`] activities: a page ends before a log that would take it past
/// that, and a single log longer than that is served in parts, one page each, every part under
/// the log's id. So a page reads at most `MAX_PAGE_ROWS + 1` activities however long its logs.
pub(crate) fn page_logs(
    store: &Store,
    tenant: &str,
    filter: &Filter,
    order: Order,
    cursor: Option<(Dir, String)>,
    n: usize,
) -> crate::Result<LogPage> {
    let forward = !matches!(cursor, Some((Dir::Before, _)));
    let chunk = n.saturating_add(1).saturating_mul(4).min(MAX_LIMIT);
    // In reading order: query order forward, reverse query order backward.
    let mut items: Vec<Activity> = Vec::new();
    let mut runs = Runs::default();
    let mut cur = cursor.map(|(_, c)| c);
    // The first store page's cursor back toward where this page started.
    let mut edge = None;
    let mut first = true;
    let mut rows_read = 0usize;
    let mut cut = None;
    'read: loop {
        let limit = (MAX_PAGE_ROWS + 1 - items.len()).min(chunk);
        let p = store.query(
            tenant,
            &Query {
                filter: filter.clone(),
                order,
                limit,
                cursor: cur,
                include_total: false,
            },
        )?;
        rows_read += p.items.len();
        let (toward_start, onward) = if forward {
            (p.prev_cursor, p.next_cursor)
        } else {
            (p.next_cursor, p.prev_cursor)
        };
        if first {
            edge = toward_start;
            first = false;
        }
        let mut batch = p.items;
        if !forward {
            batch.reverse();
        }
        for a in batch {
            let key = log_key(&a);
            if runs.last_key.as_ref() != Some(&key) {
                runs.count += 1;
                runs.last_start = items.len();
                runs.last_key = Some(key);
            }
            if runs.count > n {
                cut = Some(items.len());
                break 'read;
            }
            if items.len() == MAX_PAGE_ROWS {
                // Full: end before the log in progress, unless it is the only one (a log
                // longer than a page, served in parts).
                cut = Some(if runs.count > 1 {
                    runs.last_start
                } else {
                    items.len()
                });
                break 'read;
            }
            items.push(a);
        }
        match onward {
            Some(c) => cur = Some(c),
            None => break,
        }
    }
    // A cut means more activities lie beyond it: the cursor continues after the last one kept.
    let beyond = match cut {
        Some(k) => {
            items.truncate(k);
            items
                .last()
                .map(|a| store.cursor_at(tenant, filter, order, forward, a))
        }
        None => None,
    };
    if !forward {
        items.reverse();
    }
    let (after, before) = if forward {
        (beyond, edge)
    } else {
        (edge, beyond)
    };
    Ok(LogPage {
        items,
        after,
        before,
        rows_read,
    })
}

/// Most cached totals; the cache starts over when full.
const MAX_CACHED_COUNTS: usize = 1024;

/// Totals of earlier requests by tenant and filter, each valid while its tenant's
/// `Store::generation` is unchanged: paging through a log costs one count, not one per page.
#[derive(Debug, Default)]
pub(crate) struct CountCache {
    counts: Mutex<HashMap<(String, Filter), (u64, u64)>>,
    /// Counts computed (not answered from the cache); for tests.
    computed: AtomicU64,
}

impl CountCache {
    #[cfg(test)]
    fn computed(&self) -> u64 {
        self.computed.load(AtomicOrdering::Relaxed)
    }
}

/// How many logs match: answered from `cache` while the tenant is unchanged. When no activity of
/// the tenant carries a log id (one seek to tell), every activity is a log and the store's count
/// is the answer; else one scan over the matches counts log boundaries.
pub(crate) fn count_logs(
    store: &Store,
    tenant: &str,
    filter: &Filter,
    cache: &CountCache,
) -> crate::Result<u64> {
    let generation = store.generation(tenant)?;
    let key = (tenant.to_owned(), filter.clone());
    if let Some(&(g, n)) = cache.counts.lock().get(&key) {
        if g == generation {
            return Ok(n);
        }
    }
    cache.computed.fetch_add(1, AtomicOrdering::Relaxed);
    let n = if store.has_context_key(tenant, LOG_KEY)? {
        let mut n = 0u64;
        let mut last: Option<String> = None;
        store.scan(tenant, filter, Order::Asc, |a| {
            let k = a
                .context_value(LOG_KEY)
                .map_or_else(|| a.id.to_string(), str::to_owned);
            if last.as_ref() != Some(&k) {
                n += 1;
                last = Some(k);
            }
            Ok(true)
        })?;
        n
    } else {
        store.count(tenant, filter)?
    };
    let mut counts = cache.counts.lock();
    if counts.len() >= MAX_CACHED_COUNTS {
        counts.clear();
    }
    counts.insert(key, (generation, n));
    Ok(n)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorRef {
    id: String,
    entity_type: String,
    entity_id: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntityRef {
    id: String,
    entity_type: String,
    entity_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    id: String,
    activity_log_id: String,
    verb: String,
    name: String,
    summary: Option<String>,
    reason: Option<String>,
    metadata: Vec<Value>,
    activity_log_actor: Option<ActorRef>,
    activity_log_object: EntityRef,
    activity_log_target: Option<EntityRef>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Log {
    id: String,
    sequence_account_id: String,
    activity_type: Option<String>,
    api_version: &'static str,
    origin: Option<String>,
    trace_id: Option<String>,
    created_at: String,
    activity_log_items: Vec<Item>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pagination {
    after: Option<String>,
    before: Option<String>,
    total_result_size: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Response {
    items: Vec<Log>,
    pagination: Pagination,
}

fn item(log_id: &str, a: Activity) -> Item {
    let name = a
        .context_value("name")
        .map_or_else(|| a.action.clone(), str::to_owned);
    let metadata = match a.metadata {
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect(),
        _ => Vec::new(),
    };
    Item {
        id: a.id.to_string(),
        activity_log_id: log_id.to_owned(),
        name,
        verb: a.action,
        summary: a.summary,
        reason: a.reason,
        metadata,
        activity_log_actor: a.actor.map(|x| ActorRef {
            id: ref_id(a.id, ACTOR_MASK).to_string(),
            entity_type: x.kind,
            entity_id: x.id,
            email: x.email,
        }),
        activity_log_object: EntityRef {
            id: ref_id(a.id, OBJECT_MASK).to_string(),
            entity_type: a.resource.kind,
            entity_id: a.resource.id,
        },
        activity_log_target: a.target.map(|t| EntityRef {
            id: ref_id(a.id, TARGET_MASK).to_string(),
            entity_type: t.kind,
            entity_id: t.id,
        }),
    }
}

/// Groups a page's activities (in query order) into logs, each log's items oldest first.
pub(crate) fn logs(tenant: &str, items: Vec<Activity>) -> Vec<Log> {
    let mut out: Vec<Log> = Vec::new();
    let mut group: Vec<Activity> = Vec::new();
    let flush = |group: &mut Vec<Activity>, out: &mut Vec<Log>| {
        if group.is_empty() {
            return;
        }
        group.sort_by_key(|a| (a.created_at, a.id));
        let id = log_key(&group[0]);
        let ctx = |key: &str| {
            group
                .iter()
                .find_map(|a| a.context_value(key))
                .map(str::to_owned)
        };
        let (activity_type, origin, trace_id) =
            (ctx("activity_type"), ctx("origin"), ctx("trace_id"));
        let created_at = common::seconds_z(group[0].created_at);
        let items = group.drain(..).map(|a| item(&id, a)).collect();
        out.push(Log {
            id,
            sequence_account_id: tenant.to_owned(),
            activity_type,
            api_version: "V1",
            origin,
            trace_id,
            created_at,
            activity_log_items: items,
        });
    };
    for a in items {
        if group.first().is_some_and(|g| log_key(g) != log_key(&a)) {
            flush(&mut group, &mut out);
        }
        group.push(a);
    }
    flush(&mut group, &mut out);
    out
}

/// Serves one request (blocking: it reads the store).
pub(crate) fn list(
    store: &Store,
    tenant: &str,
    pairs: &[(String, String)],
    version: Option<&str>,
    counts: &CountCache,
) -> Result<Response, ApiError> {
    let req = parse(pairs, version)?;
    let param = req.cursor.as_ref().map_or("after", |(d, _)| d.param());
    let page = page_logs(store, tenant, &req.filter, req.order, req.cursor, req.limit)
        .map_err(|e| cursor_error(e, param))?;
    tracing::debug!(rows_read = page.rows_read, "sequence page");
    let total = count_logs(store, tenant, &req.filter, counts)?;
    Ok(Response {
        items: logs(tenant, page.items),
        pagination: Pagination {
            after: page.after.map(|c| format!("{}{c}", Dir::After.tag())),
            before: page.before.map(|c| format!("{}{c}", Dir::Before.tag())),
            total_result_size: total,
        },
    })
}

/// `GET /compat/sequence/activity-logs`, with the seed's optional `sequence-version` header.
pub(super) async fn list_route(
    State(state): State<AppState>,
    Extension(counts): Extension<Arc<CountCache>>,
    headers: HeaderMap,
    Params(pairs): Params,
) -> Result<Json<Response>, ApiError> {
    let auth = super::authorize(&state, &headers, None).await?;
    // Read now, refused (after the key's scope is checked) inside the call.
    let version = match headers.get("sequence-version").map(HeaderValue::to_str) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v.to_owned())),
        Some(Err(_)) => Err(ApiError::invalid("sequence-version", "header is not ASCII")),
    };
    let page = super::run(&state, auth, Access::Read, move |s, auth| {
        list(s, &auth.tenant, &pairs, version?.as_deref(), &counts)
    })
    .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewActivity, ObjectRef, TenantSettings};
    use crate::store::Options;
    use chrono::{TimeZone, Utc};

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn parses_and_validates() {
        let r = parse(&[], None).unwrap();
        assert_eq!((r.limit, r.order), (20, Order::Desc));
        for ok in ["1", "100"] {
            assert!(parse(&pairs(&[("limit", ok)]), None).is_ok());
        }
        for bad in ["0", "101", "-1", "ten"] {
            assert!(parse(&pairs(&[("limit", bad)]), None).is_err(), "{bad}");
        }
        assert_eq!(
            parse(&pairs(&[("sortOrder", "ASC")]), None).unwrap().order,
            Order::Asc
        );
        assert!(parse(&pairs(&[("sortOrder", "UP")]), None).is_err());
        assert!(parse(&[], Some(VERSION)).is_ok());
        assert!(parse(&[], Some("2023-01-01")).is_err());
        assert!(parse(&pairs(&[("after", "Bxyz")]), None).is_err());
        assert!(parse(&pairs(&[("before", "Axyz")]), None).is_err());
        assert!(parse(&pairs(&[("after", "Ax"), ("before", "Bx")]), None).is_err());
        assert!(parse(&pairs(&[("activityLogObjectId", "nope")]), None).is_err());
        let id = Uuid::now_v7();
        let r = parse(
            &pairs(&[
                ("activityLogObjectId", &object_ref_id(id).to_string()),
                ("activityLogObjectEntityId", "inv_1"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(r.filter.ids, vec![id]);
        assert_eq!(r.filter.resource_ids, vec!["inv_1"]);
    }

    #[test]
    fn without_log_ids_every_activity_is_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store.create_tenant("t", TenantSettings::default()).unwrap();
        let f = Filter::default();
        assert_eq!(
            count_logs(&store, "t", &f, &CountCache::default()).unwrap(),
            0
        );
        for _ in 0..3 {
            store
                .append(
                    "t",
                    NewActivity {
                        action: "CREATED".into(),
                        resource: ObjectRef {
                            kind: "INVOICE".into(),
                            id: None,
                        },
                        ..Default::default()
                    },
                )
                .unwrap();
        }
        assert_eq!(
            count_logs(&store, "t", &f, &CountCache::default()).unwrap(),
            3
        );
    }

    #[test]
    fn reference_ids_keep_version_and_invert() {
        let id = Uuid::now_v7();
        for m in [ACTOR_MASK, OBJECT_MASK, TARGET_MASK] {
            let r = ref_id(id, m);
            assert_ne!(r, id);
            assert_eq!(r.get_version_num(), 7);
            assert_eq!(ref_id(r, m), id);
        }
    }

    /// Regression: one log spanning N activities cost O(N²) per page and held all N in memory
    /// (the page kept every activity read and recomputed every run start after each store
    /// page), and every request recounted every log (a facets enumeration of all log ids plus
    /// a scan of every match). Now a page reads at most `MAX_PAGE_ROWS + 1` activities, a log
    /// longer than that is served in parts, and the total is computed once per change of the
    /// tenant. Asserts the work (activities read, counts computed), never the time.
    #[test]
    fn a_log_of_100k_activities_pages_in_bounded_work() {
        const BATCHES: i64 = 100;
        const ROWS: usize = 100_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            Options {
                durability: crate::store::Durability::Relaxed,
                ..Options::default()
            },
        )
        .unwrap();
        store.create_tenant("t", TenantSettings::default()).unwrap();
        let t0 = 1_700_000_000_000_000i64;
        let one = |us: i64, log: Option<&str>| NewActivity {
            created_at: Some(crate::model::micros_to_time(us)),
            action: "CREATED".into(),
            resource: ObjectRef {
                kind: "INVOICE".into(),
                id: None,
            },
            context: log
                .map(|l| vec![(LOG_KEY.to_owned(), l.to_owned())])
                .unwrap_or_default(),
            ..Default::default()
        };
        // A log of one, the long log (bulk-appended 1,000 at a time), another log of one.
        store.append("t", one(t0, None)).unwrap();
        for b in 0..BATCHES {
            let batch = (0..1000)
                .map(|i| one(t0 + 1_000_000 + b * 1000 + i, Some("big")))
                .collect();
            store.append_batch("t", batch).unwrap();
        }
        store.append("t", one(t0 + 10_000_000, None)).unwrap();
        let f = Filter::default();

        // Forward, oldest first, 20 logs a page: the log of one alone (the long log does not
        // fit beside it), then the long log in parts of MAX_PAGE_ROWS, then the last log.
        let mut cursor = None;
        let mut pages: Vec<LogPage> = Vec::new();
        loop {
            let p = page_logs(&store, "t", &f, Order::Asc, cursor, 20).unwrap();
            assert!(
                p.rows_read <= MAX_PAGE_ROWS + 1,
                "{} rows read",
                p.rows_read
            );
            assert!(p.items.len() <= MAX_PAGE_ROWS);
            cursor = p.after.clone().map(|c| (Dir::After, c));
            pages.push(p);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages.len(), 2 + ROWS / MAX_PAGE_ROWS);
        let times: Vec<i64> = pages
            .iter()
            .flat_map(|p| p.items.iter().map(|a| a.created_at.timestamp_micros()))
            .collect();
        let mut want = vec![t0];
        want.extend((0..BATCHES * 1000).map(|i| t0 + 1_000_000 + i));
        want.push(t0 + 10_000_000);
        assert_eq!(times, want);
        for p in &pages[1..pages.len() - 1] {
            let ls = logs("t", p.items.clone());
            assert_eq!(ls.len(), 1);
            assert_eq!(ls[0].id, "big");
            assert_eq!(ls[0].activity_log_items.len(), MAX_PAGE_ROWS);
        }

        // Backward from the last page: the same parts, newest first.
        let mut cursor = pages.last().unwrap().before.clone();
        let mut back = 0;
        while let Some(c) = cursor {
            let p = page_logs(&store, "t", &f, Order::Asc, Some((Dir::Before, c)), 20).unwrap();
            assert!(
                p.rows_read <= MAX_PAGE_ROWS + 1,
                "{} rows read",
                p.rows_read
            );
            back += 1;
            let i = pages.len() - 1 - back;
            let ids = |p: &LogPage| p.items.iter().map(|a| a.id).collect::<Vec<_>>();
            assert_eq!(ids(&p), ids(&pages[i]), "page {i} read backward");
            cursor = p.before;
        }
        assert_eq!(back, pages.len() - 1);

        // Newest first, a page of one log: the last log alone, then the long log's newest part.
        let p = page_logs(&store, "t", &f, Order::Desc, None, 1).unwrap();
        assert_eq!(p.items.len(), 1);
        let p = page_logs(
            &store,
            "t",
            &f,
            Order::Desc,
            p.after.map(|c| (Dir::After, c)),
            1,
        )
        .unwrap();
        assert_eq!(p.items.len(), MAX_PAGE_ROWS);
        assert!(p.rows_read <= MAX_PAGE_ROWS + 1);

        // The total: three logs, computed once while nothing changes, again after an append.
        let cache = CountCache::default();
        for _ in 0..5 {
            assert_eq!(count_logs(&store, "t", &f, &cache).unwrap(), 3);
        }
        assert_eq!(cache.computed(), 1);
        store.append("t", one(t0 + 20_000_000, None)).unwrap();
        assert_eq!(count_logs(&store, "t", &f, &cache).unwrap(), 4);
        assert_eq!(count_logs(&store, "t", &f, &cache).unwrap(), 4);
        assert_eq!(cache.computed(), 2);
        // Another tenant's writes leave this tenant's total cached.
        store.create_tenant("u", TenantSettings::default()).unwrap();
        store.append("u", one(t0, None)).unwrap();
        assert_eq!(count_logs(&store, "t", &f, &cache).unwrap(), 4);
        assert_eq!(cache.computed(), 2);
    }

    /// Logs of sizes 1, 3, 1, 2, 1 … written oldest first; walks every page both ways.
    #[test]
    fn pages_cut_at_log_boundaries_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store.create_tenant("t", TenantSettings::default()).unwrap();
        let sizes = [1usize, 3, 1, 2, 1, 4, 1];
        let mut sec = 0;
        for (log, size) in sizes.iter().enumerate() {
            let batch = (0..*size)
                .map(|_| {
                    sec += 1;
                    NewActivity {
                        created_at: Some(Utc.timestamp_opt(1_700_000_000 + sec, 0).unwrap()),
                        action: "CREATED".into(),
                        resource: ObjectRef {
                            kind: "INVOICE".into(),
                            id: None,
                        },
                        context: if *size > 1 {
                            vec![(LOG_KEY.into(), format!("log-{log}"))]
                        } else {
                            vec![]
                        },
                        ..Default::default()
                    }
                })
                .collect();
            store.append_batch("t", batch).unwrap();
        }
        let f = Filter::default();
        assert_eq!(
            count_logs(&store, "t", &f, &CountCache::default()).unwrap(),
            7
        );
        let other = Filter {
            actions: vec!["NONE".into()],
            ..Filter::default()
        };
        assert_eq!(
            count_logs(&store, "t", &other, &CountCache::default()).unwrap(),
            0
        );
        for order in [Order::Desc, Order::Asc] {
            for n in 1..=4 {
                let mut seen = Vec::new();
                let mut cursor = None;
                let mut pages = Vec::new();
                loop {
                    let p = page_logs(&store, "t", &f, order, cursor.clone(), n).unwrap();
                    let ls = logs("t", p.items);
                    assert!(ls.len() <= n);
                    seen.extend(ls.iter().map(|l| l.activity_log_items.len()));
                    pages.push((p.before.clone(), ls.len()));
                    match p.after {
                        Some(c) => cursor = Some((Dir::After, c)),
                        None => break,
                    }
                }
                let mut want: Vec<usize> = sizes.to_vec();
                if order == Order::Desc {
                    want.reverse();
                }
                assert_eq!(seen, want, "{order:?} n={n}");
                // And back from the last page to the first.
                let mut back = Vec::new();
                let mut cursor = pages.last().unwrap().0.clone();
                while let Some(c) = cursor {
                    let p = page_logs(&store, "t", &f, order, Some((Dir::Before, c)), n).unwrap();
                    let ls = logs("t", p.items);
                    let mut sizes: Vec<usize> =
                        ls.iter().map(|l| l.activity_log_items.len()).collect();
                    sizes.extend(back);
                    back = sizes;
                    cursor = p.before;
                }
                let last = pages.last().unwrap().1;
                assert_eq!(back.len() + last, want.len(), "{order:?} n={n}");
                assert_eq!(back, want[..want.len() - last], "{order:?} n={n}");
            }
        }
    }
}
