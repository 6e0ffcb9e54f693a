//! actlog's side of the comparison: everything through the public `Store` API, plus the raw sled
//! iteration of the same key range as the ceiling a decoded scan can reach.

use std::io;
use std::path::Path;

use crate::bench::data::{self, Batch, HOT_ACTOR, HOT_RESOURCE_TYPE, IN_ACTIONS, TENANTS};
use crate::bench::engine::{Engine, SingleAppender};
use crate::bench::options::Plan;
use crate::bench::util::{float, float_usize, io_err, timed, Figures};
use crate::{
    Durability, FacetField, FacetRequest, Filter, NewActivity, Options, Order, Query, Store,
};

/// sled's page cache: the same budget as SQLite's `cache_size` (256 MB).
const CACHE_BYTES: u64 = 256 << 20;

/// A store opened with the bench's cache.
pub struct ActlogEngine {
    store: Store,
}

fn open(path: &Path, durability: Durability) -> io::Result<ActlogEngine> {
    let store = Store::open(
        path,
        Options {
            durability,
            cache_capacity: CACHE_BYTES,
            ..Options::default()
        },
    )
    .map_err(io_err)?;
    Ok(ActlogEngine { store })
}

/// The report's page filter of that name (one of `PAGE_FILTERS`).
fn page_filter(name: &str) -> Filter {
    match name {
        "action" => Filter {
            actions: vec![data::ACTIONS[0].0.into()],
            ..Filter::default()
        },
        "resource" => Filter {
            resource_types: vec![HOT_RESOURCE_TYPE.into()],
            ..Filter::default()
        },
        "actor" => Filter {
            actor_types: vec![HOT_ACTOR.0.into()],
            actor_ids: vec![HOT_ACTOR.1.into()],
            ..Filter::default()
        },
        _ => Filter {
            actions: IN_ACTIONS.iter().map(|a| (*a).into()).collect(),
            ..Filter::default()
        },
    }
}

/// `Store::append` from every thread on the one `Store` (it is `Sync`): in `sync` durability
/// concurrent appends share flushes (group commit).
impl SingleAppender for ActlogEngine {
    fn append_one(&self, tenant: &str, activity: NewActivity) -> io::Result<()> {
        self.store.append(tenant, activity).map_err(io_err)?;
        Ok(())
    }
}

impl Engine for ActlogEngine {
    const NAME: &'static str = "actlog";
    type Durability = Durability;
    type Page<'a> = Query;
    type Appender = ActlogEngine;

    fn create(_plan: &Plan, path: &Path, durability: Durability) -> io::Result<Self> {
        let engine = open(path, durability)?;
        for t in TENANTS {
            engine
                .store
                .create_tenant(t, crate::TenantSettings::default())
                .map_err(io_err)?;
        }
        Ok(engine)
    }

    /// `sync`, the durability of `actlog serve`: each append returns after a flush covers it.
    fn create_appender(plan: &Plan, path: &Path) -> io::Result<Self> {
        Self::create(plan, path, Durability::Sync)
    }

    fn append(&mut self, batch: Batch) -> io::Result<()> {
        self.store
            .append_batch(batch.tenant, batch.events)
            .map_err(io_err)?;
        Ok(())
    }

    fn finish_ingest(self, tag: &str, events: u64, fig: &mut Figures) -> io::Result<()> {
        // Keys when the last append is acknowledged (records, seq entries, id entries, heads,
        // and what the background indexer had folded by then), then the rest folded, so the
        // read phases find every activity indexed.
        fig.insert(
            format!("ingest.{tag}.keys_per_event_before_final_fold"),
            float(u64::try_from(self.store.key_count()).unwrap_or(0)) / float(events),
        );
        let (folded, fold_time) = timed(|| self.store.fold_pending(usize::MAX));
        fig.insert(
            format!("ingest.{tag}.left_to_fold"),
            float(folded.map_err(io_err)?),
        );
        fig.insert(
            format!("ingest.{tag}.final_fold_s"),
            fold_time.as_secs_f64(),
        );
        self.store.flush().map_err(io_err)?;
        // Counted after the timed part: sled keys written per event (record, index lists, id
        // entries).
        fig.insert(
            format!("ingest.{tag}.keys_per_event"),
            float(u64::try_from(self.store.key_count()).unwrap_or(0)) / float(events),
        );
        Ok(())
    }

    fn open(path: &Path) -> io::Result<Self> {
        open(path, Durability::Sync)
    }

    /// Through `Store::scan`, each record read in place, or (`owned`) also copied into an owned
    /// `Activity`.
    fn scan(&self, tenant: &str, order: Order, owned: bool) -> io::Result<u64> {
        let mut n = 0u64;
        self.store
            .scan(tenant, &Filter::default(), order, |a| {
                n += 1;
                if owned {
                    std::hint::black_box(a.to_activity()?);
                } else {
                    std::hint::black_box(a);
                }
                Ok(true)
            })
            .map_err(io_err)?;
        Ok(n)
    }

    fn scan_paged(&self, tenant: &str, order: Order) -> io::Result<u64> {
        let mut q = Query {
            order,
            limit: 1000,
            ..Query::default()
        };
        let mut n = 0u64;
        loop {
            let page = self.store.query_records(tenant, &q).map_err(io_err)?;
            n += u64::try_from(page.items.len()).unwrap_or(0);
            for r in &page.items {
                std::hint::black_box(r.view().map_err(io_err)?);
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(n),
            }
        }
    }

    /// Raw sled iteration of a tenant's record range: keys and values, nothing decoded.
    fn scan_raw(&self, tenant: &str, order: Order) -> io::Result<Option<(u64, u64)>> {
        let no = self.store.tenant_info(tenant).map_err(io_err)?.no;
        self.store
            .raw_record_scan(no, order != Order::Desc)
            .map(Some)
            .map_err(io_err)
    }

    fn count(&self, tenant: &str) -> io::Result<u64> {
        self.store
            .count(tenant, &page_filter("action"))
            .map_err(io_err)
    }

    fn facet(&self, tenant: &str) -> io::Result<()> {
        let req = FacetRequest {
            field: FacetField::Action,
            prefix: None,
            since: None,
            until: None,
            limit: 100,
        };
        std::hint::black_box(self.store.facets(tenant, &req).map_err(io_err)?);
        Ok(())
    }

    fn export(&self) -> io::Result<u64> {
        let mut n = 0u64;
        let mut line = Vec::with_capacity(1024);
        let mut sink = io::sink();
        for t in TENANTS {
            self.store
                .scan(t, &Filter::default(), Order::Asc, |a| {
                    line.clear();
                    crate::http::render::ndjson_line(&mut line, a);
                    io::Write::write_all(&mut sink, &line)?;
                    n += 1;
                    Ok(true)
                })
                .map_err(io_err)?;
        }
        Ok(n)
    }

    fn note_export(&self, records: u64, fig: &mut Figures) {
        fig.insert(
            "export.records".into(),
            float_usize(usize::try_from(records).unwrap_or(0)),
        );
    }

    /// The query of the page, its cursor reached by walking pages of 1,000.
    fn page_at(&self, filter: &str, depth: usize) -> io::Result<Option<Query>> {
        let tenant = TENANTS[0];
        let mut q = Query {
            filter: page_filter(filter),
            limit: 1000,
            ..Query::default()
        };
        let mut reached = 0;
        while reached < depth {
            let page = self.store.query_records(tenant, &q).map_err(io_err)?;
            reached += page.items.len();
            q.cursor = page.next_cursor;
            if q.cursor.is_none() {
                return Ok(None);
            }
        }
        q.limit = 50;
        Ok(Some(q))
    }

    fn read_page(&self, q: &mut Query) -> io::Result<()> {
        let p = self.store.query_records(TENANTS[0], q).map_err(io_err)?;
        for r in &p.items {
            std::hint::black_box(r.view().map_err(io_err)?);
        }
        Ok(())
    }
}
