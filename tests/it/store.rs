//! The store through its public API: appends, idempotency, atomicity, queries, retention, verify.

use std::sync::atomic::Ordering;

use actlog::*;
use chrono::{NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use crate::support::store::{t, Fixture};

fn act(action: &str, rtype: &str, rid: Option<&str>) -> NewActivity {
    NewActivity::new(
        action,
        ObjectRef {
            kind: rtype.into(),
            id: rid.map(Into::into),
        },
    )
}

#[test]
fn append_get_and_idempotency() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant("acme", TenantSettings::default()).unwrap();
    let mut a = act("invoice.sent", "Invoice", Some("inv_1"));
    a.actor = Some(Actor {
        kind: "user".into(),
        id: Some("u1".into()),
        name: Some("Ana".into()),
        email: None,
    });
    a.context = vec![("origin".into(), "API".into())];
    a.metadata = Some(serde_json::json!({"to": "x@example.com"}));
    let r = s.append("acme", a.clone()).unwrap();
    assert!(r.created);
    assert_eq!(r.id.get_version_num(), 7);
    let got = s.get("acme", r.id).unwrap().unwrap();
    assert_eq!(got.action, "invoice.sent");
    assert_eq!(got.created_at, t(1_700_000_000_000_000));
    assert_eq!(got.metadata, a.metadata);

    // The same id and content again: acknowledged, not written twice.
    let mut again = a.clone();
    again.id = Some(r.id);
    let r2 = s.append("acme", again.clone()).unwrap();
    assert!(!r2.created);
    assert_eq!(r2.created_at, r.created_at);
    assert_eq!(s.count("acme", &Filter::default()).unwrap(), 1);

    // The same id with other content: a conflict, nothing written.
    again.action = "invoice.paid".into();
    assert!(matches!(
        s.append("acme", again),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(s.count("acme", &Filter::default()).unwrap(), 1);

    // Unknown ids and tenants.
    assert_eq!(s.get("acme", Uuid::now_v7()).unwrap(), None);
    assert!(matches!(s.get("nope", r.id), Err(Error::TenantNotFound(_))));
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn client_ids_and_times_are_found_again() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant("acme", TenantSettings::default()).unwrap();
    // A v4 id, a foreign v7 id whose sub-millisecond bits say nothing, and a time before 1970.
    let ids = [Uuid::new_v4(), Uuid::now_v7(), Uuid::from_u128(1)];
    let times = [t(5), t(1_600_000_000_000_001), t(-86_400_000_000)];
    for (id, time) in ids.iter().zip(times) {
        let mut a = act("x", "T", None);
        a.id = Some(*id);
        a.created_at = Some(time);
        s.append("acme", a).unwrap();
        assert_eq!(s.get("acme", *id).unwrap().unwrap().created_at, time);
    }
    // A server-minted id for a client time also carries that time.
    let mut a = act("x", "T", None);
    a.created_at = Some(t(1_234_567));
    let r = s.append("acme", a).unwrap();
    assert_eq!(
        s.get("acme", r.id).unwrap().unwrap().created_at,
        t(1_234_567)
    );
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn batches_are_all_or_nothing() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant("acme", TenantSettings::default()).unwrap();
    let existing = s.append("acme", act("a", "T", None)).unwrap();

    // One invalid activity rejects the batch and names it.
    let mut batch = vec![act("a", "T", None), act("b", "T", None), act("", "T", None)];
    match s.append_batch("acme", batch.clone()) {
        Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "activities[2].action"),
        other => panic!("{other:?}"),
    }
    // One conflicting id rejects the batch.
    batch[2] = act("c", "T", None);
    batch[2].id = Some(existing.id);
    assert!(matches!(
        s.append_batch("acme", batch.clone()),
        Err(Error::Conflict { .. })
    ));
    // A duplicate id inside the batch with other content is a conflict too.
    let dup = Uuid::new_v4();
    batch[1].id = Some(dup);
    batch[2] = act("d", "T", None);
    batch[2].id = Some(dup);
    assert!(matches!(
        s.append_batch("acme", batch.clone()),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        s.count("acme", &Filter::default()).unwrap(),
        1,
        "nothing of the rejected batches"
    );

    // Same id, same content inside one batch: written once.
    batch[2] = batch[1].clone();
    let r = s.append_batch("acme", batch).unwrap();
    assert_eq!(r.iter().filter(|a| a.created).count(), 2);
    assert_eq!(s.count("acme", &Filter::default()).unwrap(), 3);

    // Size limits.
    assert!(s.append_batch("acme", vec![]).is_err());
    assert!(s
        .append_batch("acme", vec![act("a", "T", None); 1001])
        .is_err());
    assert_eq!(
        s.append_batch("acme", vec![act("a", "T", None); 1000])
            .unwrap()
            .len(),
        1000
    );
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn tenants_are_isolated_and_persist() {
    let mut f = Fixture::new();
    f.store()
        .create_tenant("a", TenantSettings::default())
        .unwrap();
    f.store()
        .create_tenant(
            "b",
            TenantSettings {
                timezone: "Europe/Ljubljana".into(),
                retention_days: Some(30),
            },
        )
        .unwrap();
    assert!(matches!(
        f.store().create_tenant("a", TenantSettings::default()),
        Err(Error::TenantExists(_))
    ));
    assert!(f
        .store()
        .create_tenant("bad/id", TenantSettings::default())
        .is_err());
    assert!(f
        .store()
        .create_tenant(
            "c",
            TenantSettings {
                timezone: "Nowhere/City".into(),
                retention_days: None
            }
        )
        .is_err());
    let ra = f
        .store()
        .append("a", act("secret", "T", Some("1")))
        .unwrap();
    f.store().append("b", act("other", "T", Some("1"))).unwrap();
    f.reopen();
    let s = f.store();
    assert_eq!(s.default_tenant().unwrap().id, "a");
    assert_eq!(
        s.tenants()
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(s.tenant("b").unwrap().settings.retention_days, Some(30));
    assert_eq!(
        s.get("b", ra.id).unwrap(),
        None,
        "tenant b cannot read a's id"
    );
    let page = s.query("b", &Query::default()).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].action, "other");
    let p = s.update_tenant(
        "b",
        TenantPatch {
            timezone: Some("UTC".into()),
            retention_days: Some(None),
        },
    );
    assert_eq!(p.unwrap().settings.retention_days, None);
}

#[test]
fn cursors_are_bound_to_tenant_and_query() {
    let f = Fixture::new();
    let s = f.store();
    for t in ["a", "b"] {
        s.create_tenant(t, TenantSettings::default()).unwrap();
        s.append_batch(t, vec![act("x", "T", None); 5]).unwrap();
    }
    let q = Query::new().limit(2);
    let page = s.query("a", &q).unwrap();
    let cursor = page.next_cursor.unwrap();
    let next = q.clone().cursor(Some(cursor.clone()));
    assert!(s.query("a", &next).is_ok());
    assert!(
        matches!(s.query("b", &next), Err(Error::InvalidCursor)),
        "another tenant"
    );
    let mut changed = next.clone();
    changed.filter.actions = vec!["x".into()];
    assert!(
        matches!(s.query("a", &changed), Err(Error::InvalidCursor)),
        "another filter"
    );
    let mut flipped = next.clone();
    flipped.order = Order::Asc;
    assert!(
        matches!(s.query("a", &flipped), Err(Error::InvalidCursor)),
        "another order"
    );
    let mut bigger = next;
    bigger.limit = 3;
    assert!(
        s.query("a", &bigger).is_ok(),
        "the page size may change between pages"
    );
    for bad in [
        "",
        "x",
        "%%%",
        &"A".repeat(5000),
        &cursor[..cursor.len() - 1],
    ] {
        let q = q.clone().cursor(Some(bad.to_owned()));
        assert!(
            matches!(s.query("a", &q), Err(Error::InvalidCursor)),
            "{bad:?}"
        );
    }
}

#[test]
fn filters_dates_and_operators() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant(
        "a",
        TenantSettings {
            timezone: "America/New_York".into(),
            retention_days: None,
        },
    )
    .unwrap();
    let day = |d: u32, h: u32| Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap();
    for (i, (time, action)) in [
        (day(1, 3), "created"),
        (day(1, 12), "integration_a"),
        (day(2, 4), "integration_b"),
        (day(3, 12), "x"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut a = act(action, "Invoice", Some(&format!("inv{i}")));
        a.created_at = Some(time);
        a.summary = Some(format!("Summary {i} of ACME"));
        s.append("a", a).unwrap();
    }
    let query = |filter: Filter| {
        s.query("a", &Query::new().filter(filter).order(Order::Asc))
            .unwrap()
            .items
            .into_iter()
            .map(|a| a.action)
            .collect::<Vec<_>>()
    };
    // 2024-03-01 in New York is 05:00Z to 05:00Z next day: 03:00Z on the 1st is still Feb 29 there.
    let d1 = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    let by_date = {
        let mut v = Filter::new();
        v.since = Some(TimeBound::Date(d1));
        v.until = Some(TimeBound::Date(d1));
        v
    };
    assert_eq!(query(by_date), ["integration_a", "integration_b"]);
    let prefix = Filter::new().actions(["integration_*"]);
    assert_eq!(query(prefix), ["integration_a", "integration_b"]);
    let cond = |field: &str, op: Op| {
        let mut v = Filter::new();
        v.conditions = vec![Condition::new(Field::parse(field).unwrap(), op, field).unwrap()];
        v
    };
    assert_eq!(query(cond("summary", Op::Contains("acme".into()))).len(), 4);
    assert_eq!(
        query(cond(
            "resource_id",
            Op::In(vec![
                Operand::Str("inv0".into()),
                Operand::Str("inv3".into())
            ])
        )),
        ["created", "x"]
    );
    assert_eq!(
        query(cond(
            "resource_id",
            Op::NotIn(vec![Operand::Str("inv0".into())])
        ))
        .len(),
        3
    );
    assert_eq!(
        query(cond("action", Op::StartsWith("integ".into()))).len(),
        2
    );
    assert_eq!(
        query(cond("action", Op::EndsWith("_b".into()))),
        ["integration_b"]
    );
    assert_eq!(
        query(cond("created_at", Op::Gt(Operand::Time(day(1, 12))))),
        ["integration_b", "x"]
    );
    assert_eq!(
        query(cond("created_at", Op::Lte(Operand::Time(day(1, 12))))),
        ["created", "integration_a"]
    );
    assert_eq!(
        query(cond(
            "created_at",
            Op::Between(Operand::Time(day(1, 12)), Operand::Time(day(2, 4)))
        )),
        ["integration_a", "integration_b"]
    );
    assert_eq!(
        query(cond("actor_id", Op::Equals(Operand::Str("u".into())))).len(),
        0
    );
    assert!(Condition::new(Field::CreatedAt, Op::Contains("x".into()), "created_at").is_err());
    assert!(Condition::new(Field::Action, Op::Gt(Operand::Time(day(1, 1))), "action").is_err());
    assert_eq!(Field::parse("metadata.x"), None);
    assert!(s.query("a", &Query::new().limit(0)).is_err());
    assert!(s.query("a", &Query::new().limit(1001)).is_err());
}

#[test]
fn facets_count_within_the_window() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant("a", TenantSettings::default()).unwrap();
    for (i, action) in ["b", "a", "b", "integration_x", "b"].iter().enumerate() {
        let mut x = act(action, "T", None);
        x.created_at = Some(t(i64::try_from(i).unwrap() * 1_000_000));
        x.context = vec![(
            "origin".into(),
            if i % 2 == 0 { "api" } else { "ui" }.into(),
        )];
        s.append("a", x).unwrap();
    }
    let req = |field, prefix: Option<&str>, since: Option<i64>| {
        let mut r = FacetRequest::new(field).limit(100);
        r.prefix = prefix.map(Into::into);
        r.since = since.map(|s| TimeBound::At(t(s)));
        r
    };
    let v = |r: Vec<FacetValue>| {
        r.into_iter()
            .map(|f| (f.value, f.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        v(s.facets("a", &req(FacetField::Action, None, None)).unwrap()),
        [
            ("b".into(), 3),
            ("a".into(), 1),
            ("integration_x".into(), 1)
        ]
    );
    assert_eq!(
        v(
            s.facets("a", &req(FacetField::Action, Some("integration_"), None))
                .unwrap()
        ),
        [("integration_x".into(), 1)]
    );
    assert_eq!(
        v(
            s.facets("a", &req(FacetField::Action, None, Some(2_000_000)))
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        v(
            s.facets("a", &req(FacetField::Context("origin".into()), None, None))
                .unwrap()
        ),
        [("api".into(), 3), ("ui".into(), 2)]
    );
    assert!(FacetField::parse("summary").is_err());
}

#[test]
fn retention_removes_records_with_their_index_entries() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant(
        "short",
        TenantSettings {
            timezone: "UTC".into(),
            retention_days: Some(1),
        },
    )
    .unwrap();
    s.create_tenant("long", TenantSettings::default()).unwrap();
    let day = 86_400_000_000i64;
    for tenant in ["short", "long"] {
        for i in 0..700 {
            let mut a = act("x", "T", Some("r"));
            a.created_at = Some(t(i * day / 100));
            a.actor = Some(Actor {
                kind: "user".into(),
                id: Some("u".into()),
                ..Default::default()
            });
            s.append(tenant, a).unwrap();
        }
    }
    let removed = s.purge_expired(t(7 * day)).unwrap();
    assert_eq!(removed, 600, "older than one day before day 7");
    assert_eq!(s.count("short", &Filter::default()).unwrap(), 100);
    assert_eq!(s.count("long", &Filter::default()).unwrap(), 700);
    let by_actor = Filter::new().actor_types(["user"]).actor_ids(["u"]);
    assert_eq!(s.count("short", &by_actor).unwrap(), 100);
    let report = s.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 800);
}

#[test]
fn verify_reports_a_stray_index_entry() {
    let mut f = Fixture::new();
    f.store()
        .create_tenant("a", TenantSettings::default())
        .unwrap();
    f.store().append("a", act("x", "T", Some("1"))).unwrap();
    f.store().flush().unwrap();
    f.store = None;
    {
        // Remove the record behind the store's back, leaving its index entries.
        let db = crate::support::raw_sled(f.dir.path());
        let log = db.open_tree("log4").unwrap();
        let mut record = None;
        for kv in log.iter() {
            let (k, _) = kv.unwrap();
            // tenant(4) ++ 01 ++ grouped time ++ id (31): the one record there is.
            if k.len() == 36 && k[4] == 1 {
                assert!(record.is_none());
                record = Some(k);
            }
        }
        log.remove(record.expect("the record key")).unwrap();
        db.flush().unwrap();
    }
    f.reopen();
    let report = f.store().verify().unwrap();
    assert!(report.problem.unwrap().contains("missing record"));
}

#[test]
fn a_store_in_use_is_reported_and_a_dropped_one_reopens() {
    // Regression: reopening right after a drop failed with sled's "could not acquire lock" while
    // its background writers still held the file; open now waits a bounded time for it.
    let f = Fixture::new();
    let second = Store::open(f.dir.path(), f.options());
    match second {
        Err(Error::Io(e)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("a second live handle must be refused: {other:?}"),
    }
    let mut f = f;
    for _ in 0..5 {
        f.reopen();
    }
}

/// Retention takes positions out of shared posting lists: batches put many events of one value
/// in one list, the cutoff falls inside lists, and supplied ids leave id entries to remove too.
#[test]
fn retention_rewrites_shared_index_lists() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant(
        "a",
        TenantSettings {
            timezone: "UTC".into(),
            retention_days: Some(1),
        },
    )
    .unwrap();
    let day = 86_400_000_000i64;
    // 2,000 events 1 ms apart around the one-day cutoff, in batches of 250, half of them with
    // supplied (v4) ids.
    let base = 10 * day;
    let cutoff = base + 1_000_000 + 123; // inside a list's bucket
    for b in 0..8 {
        let batch = (0..250)
            .map(|i| {
                let n = b * 250 + i;
                let mut a = act(if n % 3 == 0 { "x" } else { "y" }, "T", Some("r"));
                a.created_at = Some(t(base + n * 1000));
                if n % 2 == 0 {
                    a.id = Some(Uuid::new_v4());
                }
                a.context = vec![("k".into(), format!("v{}", n % 5))];
                a
            })
            .collect();
        s.append_batch("a", batch).unwrap();
    }
    let before = s.count("a", &Filter::default()).unwrap();
    assert_eq!(before, 2000);
    let removed = s.purge_expired(t(cutoff + day)).unwrap();
    let kept = (0..2000).filter(|n| base + n * 1000 >= cutoff).count() as u64;
    assert_eq!(removed, 2000 - kept);
    assert_eq!(s.count("a", &Filter::default()).unwrap(), kept);
    let by_action = |x: &str| Filter::new().actions([x]);
    let want_x = (0..2000)
        .filter(|n| n % 3 == 0 && base + n * 1000 >= cutoff)
        .count() as u64;
    assert_eq!(s.count("a", &by_action("x")).unwrap(), want_x);
    let page = s
        .query(
            "a",
            &Query::new()
                .filter(by_action("x"))
                .limit(1000)
                .order(Order::Asc),
        )
        .unwrap();
    assert_eq!(page.items.len() as u64, want_x);
    assert!(page
        .items
        .iter()
        .all(|a| a.created_at.timestamp_micros() >= cutoff));
    let report = s.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, kept);
    assert_eq!(report.id_entries, kept / 2);
}

/// Regression: `retention_days` had no upper bound. `PATCH {"retention_days": 999999999}` was
/// accepted, `days × 86,400,000,000 µs` overflowed i64 in `purge_expired` (a panic in debug
/// builds; in release a wrap to a cutoff in the future), and the next purge removed the
/// tenant's whole log. The setting is now 1–36,500 days, on create and on update, and a
/// refused update leaves the tenant as it was.
#[test]
fn retention_days_out_of_range_is_refused_and_nothing_is_purged() {
    let f = Fixture::new();
    let s = f.store();
    let bad = [0u32, 36_501, 106_751_992, 999_999_999, u32::MAX];
    for days in bad {
        let err = s
            .create_tenant(
                "x",
                TenantSettings {
                    timezone: "UTC".into(),
                    retention_days: Some(days),
                },
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "retention_days"),
            "{days}: {err}"
        );
    }
    assert!(s.tenant("x").is_none());
    s.create_tenant("a", TenantSettings::default()).unwrap();
    for i in 0..3 {
        s.append("a", act("x", "T", Some(&i.to_string()))).unwrap();
    }
    for days in bad {
        let err = s
            .update_tenant(
                "a",
                TenantPatch {
                    retention_days: Some(Some(days)),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "retention_days"),
            "{days}: {err}"
        );
    }
    assert_eq!(s.tenant("a").unwrap().settings.retention_days, None);
    let now = t(f.clock.load(Ordering::SeqCst));
    assert_eq!(s.purge_expired(now).unwrap(), 0);
    for days in [1, 36_500] {
        s.update_tenant(
            "a",
            TenantPatch {
                retention_days: Some(Some(days)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.purge_expired(now).unwrap(), 0, "{days}");
    }
    assert_eq!(s.count("a", &Filter::default()).unwrap(), 3);
}

/// Regression: a query racing a retention purge failed with `Corrupt("index entry without
/// record")` (a 500 over HTTP). The planner reads a bucket of positions from an index and then
/// each record; a purge in between had removed some of those records. The purge runs here from
/// inside the scan's callback, after the first record, which is exactly that interleaving: the
/// vanished positions are skipped, the survivors still come. (`verify` still reports a real
/// orphan: `verify_reports_a_stray_index_entry`.)
#[test]
fn a_purge_between_index_and_record_reads_is_skipped() {
    let f = Fixture::new();
    let s = f.store();
    s.create_tenant(
        "a",
        TenantSettings {
            timezone: "UTC".into(),
            retention_days: Some(1),
        },
    )
    .unwrap();
    let day = 86_400_000_000i64;
    // 20 activities 10 ms apart, all in one posting-list bucket (2^20 µs), so the planner holds
    // every position before it reads the first record.
    let base = 824_000i64 << 20;
    let batch = (0..20)
        .map(|i| {
            let mut a = act("x", "T", Some(&i.to_string()));
            a.created_at = Some(t(base + i * 10_000));
            a
        })
        .collect();
    s.append_batch("a", batch).unwrap();
    // Indexed, so the scan reads positions from the index (pending records are read whole
    // before the scan starts).
    s.fold_pending(usize::MAX).unwrap();
    let cutoff = base + 45_000; // items 0..=4 are older
    let by_action = Filter::new().actions(["x"]);
    let mut seen = Vec::new();
    let mut purged = 0;
    s.scan("a", &by_action, Order::Asc, |a| {
        if seen.is_empty() {
            purged = s.purge_expired(t(cutoff + day))?;
        }
        seen.push(a.time);
        Ok(true)
    })
    .unwrap();
    assert_eq!(purged, 5);
    let mut want = vec![base];
    want.extend((5..20).map(|i| base + i * 10_000));
    assert_eq!(seen, want);
    // A page query over the same index after the purge, and the store's own check.
    let page = s.query("a", &Query::new().filter(by_action)).unwrap();
    assert_eq!(page.items.len(), 15);
    let report = s.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}

mod purge_property {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000_000;
    /// 0001-01-01T00:00:00Z and 9999-12-31T00:00:00Z in microseconds: the years a supplied
    /// `created_at` may have.
    const FIRST: i64 = -62_135_596_800_000_000;
    const LAST: i64 = 253_402_214_400_000_000;

    fn days() -> impl Strategy<Value = u32> {
        prop_oneof![
            1u32..=3,
            4u32..=400,
            36_000u32..=36_500,
            // Refused settings: nothing may change, whatever the purge does afterwards.
            36_501u32..=u32::MAX,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        /// For any retention the store accepts and any clock, a purge removes exactly the records
        /// older than `now - retention_days` and keeps every other one, index entries included.
        #[test]
        fn a_purge_removes_exactly_what_is_older_than_the_cutoff(
            days in days(),
            // Far enough from the ends that every record time below stays within years 1-9999.
            now in (FIRST + 36_600 * DAY)..(LAST - 4 * DAY),
            offsets in prop::collection::vec(
                prop_oneof![-2i64..=2, -3 * DAY..3 * DAY],
                1..40,
            ),
            clock_timed in 0usize..3,
        ) {
            let f = Fixture::new();
            f.clock.store(now, Ordering::SeqCst);
            let s = f.store();
            s.create_tenant("keep", TenantSettings::default()).unwrap();
            let accepted = s.create_tenant(
                "a",
                TenantSettings { timezone: "UTC".into(), retention_days: Some(days) },
            );
            if days > 36_500 {
                prop_assert!(accepted.is_err(), "{days} days accepted");
                s.create_tenant("a", TenantSettings::default()).unwrap();
                let patched = s.update_tenant(
                    "a",
                    TenantPatch { retention_days: Some(Some(days)), ..Default::default() },
                );
                prop_assert!(patched.is_err(), "{days} days accepted by update");
            } else {
                accepted.unwrap();
            }
            let retention = s.tenant("a").unwrap().settings.retention_days;
            let cutoff = retention.map(|d| now - i64::from(d) * DAY);
            let mut times = Vec::new();
            for (i, off) in offsets.iter().enumerate() {
                let time = cutoff.unwrap_or(now) + off;
                let mut a = act("x", "T", Some(&i.to_string()));
                a.created_at = Some(t(time));
                s.append("a", a.clone()).unwrap();
                s.append("keep", a).unwrap();
                times.push(time);
            }
            // Activities without a time take the injected clock's.
            for i in 0..clock_timed {
                let a = act("y", "T", Some(&format!("c{i}")));
                s.append("a", a).unwrap();
                times.push(now);
            }
            let removed = s.purge_expired(t(now)).unwrap();
            let mut want: Vec<i64> = times
                .iter()
                .copied()
                .filter(|&x| cutoff.is_none_or(|c| x >= c))
                .collect();
            want.sort_unstable();
            prop_assert_eq!(removed, u64::try_from(times.len() - want.len()).unwrap());
            let mut got = Vec::new();
            s.scan("a", &Filter::default(), Order::Asc, |a| {
                got.push(a.time);
                Ok(true)
            })
            .unwrap();
            prop_assert_eq!(got, want.clone());
            let by_action = Filter::new().actions(["x"]);
            let x_kept = want.len() - clock_timed;
            prop_assert_eq!(s.count("a", &by_action).unwrap(), u64::try_from(x_kept).unwrap());
            prop_assert_eq!(
                s.count("keep", &Filter::default()).unwrap(),
                u64::try_from(offsets.len()).unwrap()
            );
            let report = s.verify().unwrap();
            prop_assert!(report.is_ok(), "{:?}", report);
        }
    }
}
