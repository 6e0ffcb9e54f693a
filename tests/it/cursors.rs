//! Cursor tampering through `Store::query`: random bit flips of valid cursors taken from real
//! pages are all rejected with `InvalidCursor`, and so is a valid cursor used with a changed
//! filter, another order, another tenant or another database. `ACTLOG_CURSOR_FLIPS` sets the
//! number of flips (default 10,000).

use std::collections::BTreeMap;

use actlog::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::env_usize;

fn store_with_data(dir: &std::path::Path) -> Store {
    let store = Store::open(
        dir,
        Options::new()
            .durability(Durability::Relaxed)
            .cache_capacity(8 << 20),
    )
    .unwrap();
    for tenant in ["alpha", "beta"] {
        store
            .create_tenant(tenant, TenantSettings::default())
            .unwrap();
        let batch = (0..300)
            .map(|i| {
                NewActivity::new(
                    ["invoice.sent", "invoice.paid", "user.login"][i % 3],
                    ObjectRef {
                        kind: "Invoice".into(),
                        id: Some(format!("inv_{}", i % 11)),
                    },
                )
                .context("origin", ["API", "UI"][i % 2])
            })
            .collect();
        store.append_batch(tenant, batch).unwrap();
    }
    store
}

fn queries() -> Vec<Query> {
    let mut out = vec![];
    for order in [Order::Desc, Order::Asc] {
        let mut q = Query::new().order(order).limit(7);
        out.push(q.clone());
        q.filter.actions = vec!["invoice.*".into()];
        out.push(q.clone());
        q.filter.actions = vec![];
        q.filter.context = vec![("origin".into(), "UI".into())];
        out.push(q.clone());
        q.filter.context = vec![];
        q.filter.resource_types = vec!["Invoice".into()];
        q.filter.resource_ids = vec!["inv_3".into(), "inv_4".into()];
        q.limit = 3;
        out.push(q);
    }
    out
}

/// Every `next_cursor` and `prev_cursor` of a walk over each query, forward then back, with the
/// tenant and query it belongs to.
fn harvest(store: &Store, tenant: &str) -> Vec<(Query, String)> {
    let mut out = vec![];
    for base in queries() {
        let mut q = base.clone();
        let mut last_prev = None;
        for _ in 0..40 {
            let page = store.query(tenant, &q).unwrap();
            if let Some(p) = &page.prev_cursor {
                out.push((base.clone(), p.clone()));
                last_prev = Some(p.clone());
            }
            match page.next_cursor {
                Some(c) => {
                    out.push((base.clone(), c.clone()));
                    q.cursor = Some(c);
                }
                None => break,
            }
        }
        // One step back, so cursors minted by a backward page are in the harvest too.
        if let Some(p) = last_prev {
            q.cursor = Some(p);
            let page = store.query(tenant, &q).unwrap();
            out.extend(page.next_cursor.map(|c| (base.clone(), c)));
            out.extend(page.prev_cursor.map(|c| (base.clone(), c)));
        }
    }
    out
}

fn rejected(store: &Store, tenant: &str, q: &Query, cursor: String) -> bool {
    let q = q.clone().cursor(Some(cursor));
    matches!(store.query(tenant, &q), Err(Error::InvalidCursor))
}

#[test]
fn every_tampered_cursor_is_rejected() {
    let flips = env_usize("ACTLOG_CURSOR_FLIPS", 10_000);
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let cursors = harvest(&store, "alpha");
    assert!(cursors.len() > 100, "too few cursors: {}", cursors.len());

    // Every harvested cursor is valid as it is, and with another page size.
    for (q, c) in &cursors {
        let q2 = q.clone().cursor(Some(c.clone())).limit(50);
        store.query("alpha", &q2).unwrap();
    }

    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut count = |kind: &'static str, ok: bool| {
        let e = tally.entry(kind).or_default();
        e.0 += 1;
        e.1 += usize::from(ok);
    };
    for i in 0..flips {
        let (q, c) = &cursors[rng.gen_range(0..cursors.len())];
        let mut raw = URL_SAFE_NO_PAD.decode(c).unwrap();
        // Mostly single bits; every fourth trial flips 2–8 bits anywhere.
        let bits = if i % 4 == 3 { rng.gen_range(2..=8) } else { 1 };
        let mut flipped = std::collections::HashSet::new();
        while flipped.len() < bits {
            flipped.insert(rng.gen_range(0..raw.len() * 8));
        }
        for b in flipped {
            raw[b / 8] ^= 1 << (b % 8);
        }
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        count(
            "bit flips of the raw cursor",
            rejected(&store, "alpha", q, forged),
        );
    }
    // The text itself: one bit of one character (staying ASCII), which also reaches the
    // base64 padding bits of the last character; and truncations and extensions.
    for _ in 0..flips / 10 {
        let (q, c) = &cursors[rng.gen_range(0..cursors.len())];
        let mut text = c.clone().into_bytes();
        let at = rng.gen_range(0..text.len());
        text[at] ^= 1 << rng.gen_range(0..7);
        let forged = String::from_utf8(text).unwrap();
        count(
            "bit flips of the cursor text",
            rejected(&store, "alpha", q, forged),
        );
        let cut = rng.gen_range(0..c.len());
        count(
            "truncated",
            rejected(&store, "alpha", q, c[..cut].to_owned()),
        );
        count("extended", rejected(&store, "alpha", q, format!("{c}A")));
    }

    // Valid cursors used anywhere else.
    let other_dir = tempfile::tempdir().unwrap();
    let other_db = store_with_data(other_dir.path());
    for (q, c) in &cursors {
        let mut changed = q.clone();
        changed.filter.actions.push("user.login".into());
        count(
            "another filter",
            rejected(&store, "alpha", &changed, c.clone()),
        );
        let mut since = q.clone();
        since.filter.since = Some(TimeBound::At(model::micros_to_time(0)));
        count(
            "an added since",
            rejected(&store, "alpha", &since, c.clone()),
        );
        let mut reversed = q.clone();
        reversed.order = match q.order {
            Order::Asc => Order::Desc,
            Order::Desc | Order::Seq => Order::Asc,
        };
        count(
            "another order",
            rejected(&store, "alpha", &reversed, c.clone()),
        );
        count("another tenant", rejected(&store, "beta", q, c.clone()));
        count(
            "another database",
            rejected(&other_db, "alpha", q, c.clone()),
        );
    }

    eprintln!(
        "cursor tampering: seed {seed}, {} harvested cursors; rejected/tried: {:?}",
        cursors.len(),
        tally
            .iter()
            .map(|(k, (n, ok))| format!("{k} {ok}/{n}"))
            .collect::<Vec<_>>()
    );
    for (kind, (n, ok)) in &tally {
        assert_eq!(n, ok, "seed {seed}: {kind}: {} accepted", n - ok);
    }
}
