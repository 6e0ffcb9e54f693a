//! Model-based test: random appends, queries, page walks and reopens against a plain in-memory
//! reference. It should act like a sorted list per tenant, whatever the plan, page size or order.

use std::collections::HashMap;
use std::sync::atomic::Ordering as AtomicOrdering;

use actlog::*;
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::store::{t, Fixture};

const TENANTS: [&str; 2] = ["t0", "t1"];
const ACTIONS: [&str; 6] = [
    "a",
    "ab",
    "b",
    "integration_x",
    "integration_y",
    "n\u{ff}ul",
];
const TYPES: [&str; 2] = ["Invoice", "Cust ömer"];
const IDS: [&str; 3] = ["1", "2", "\u{ff}"];
const NAMES: [&str; 2] = ["Ana", "Bo"];
const CTX: [&str; 2] = ["k1", "k2"];
/// Names refuse control characters (issue 11); context values may hold them, and a NUL there
/// keeps the key escaping (`00` → `00 FF`) under test.
const VALS: [&str; 2] = ["v1", "v\0 2"];
/// Times drawn from a handful of values so that equal timestamps are common.
const TIMES: [i64; 6] = [-1_000_001, 0, 1, 999, 1_000, 1_700_000_000_000_000];

#[derive(Debug, Clone)]
struct GenActivity {
    id: Option<u8>,
    time: Option<usize>,
    action: usize,
    rtype: usize,
    rid: Option<usize>,
    actor: Option<(usize, Option<usize>, Option<usize>)>,
    target: Option<(usize, Option<usize>)>,
    context: Vec<(usize, usize)>,
    summary: bool,
}

fn gen_activity() -> impl Strategy<Value = GenActivity> {
    (
        prop::option::weighted(0.3, 0u8..6),
        prop::option::weighted(0.7, 0..TIMES.len()),
        0..ACTIONS.len(),
        0..TYPES.len(),
        prop::option::of(0..IDS.len()),
        prop::option::of((
            0..TYPES.len(),
            prop::option::of(0..IDS.len()),
            prop::option::of(0..NAMES.len()),
        )),
        prop::option::of((0..TYPES.len(), prop::option::of(0..IDS.len()))),
        prop::collection::vec((0..CTX.len(), 0..VALS.len()), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(id, time, action, rtype, rid, actor, target, context, summary)| GenActivity {
                id,
                time,
                action,
                rtype,
                rid,
                actor,
                target,
                context,
                summary,
            },
        )
}

/// Ids come from a small pool so repeats (idempotent or conflicting) are common.
fn pool_id(n: u8) -> Uuid {
    Uuid::from_u128(0xA000 + u128::from(n))
}

impl GenActivity {
    fn build(&self) -> NewActivity {
        let mut context: Vec<(String, String)> = self
            .context
            .iter()
            .map(|&(k, v)| (CTX[k].to_owned(), VALS[v].to_owned()))
            .collect();
        context.sort();
        context.dedup_by(|a, b| a.0 == b.0);
        {
            let mut a = NewActivity::new(
                ACTIONS[self.action],
                ObjectRef {
                    kind: TYPES[self.rtype].into(),
                    id: self.rid.map(|i| IDS[i].into()),
                },
            );
            a.id = self.id.map(pool_id);
            a.created_at = self.time.map(|i| t(TIMES[i]));
            a.actor = self.actor.map(|(k, id, name)| Actor {
                kind: TYPES[k].into(),
                id: id.map(|i| IDS[i].into()),
                name: name.map(|i| NAMES[i].into()),
                email: None,
            });
            a.target = self.target.map(|(k, id)| ObjectRef {
                kind: TYPES[k].into(),
                id: id.map(|i| IDS[i].into()),
            });
            a.context = context;
            a.summary = self.summary.then(|| "Some Summary".into());
            a
        }
    }
}

#[derive(Debug, Clone)]
struct GenFilter {
    actions: Vec<usize>,
    action_prefix: Option<usize>,
    rtypes: Vec<usize>,
    rids: Vec<usize>,
    atypes: Vec<usize>,
    aids: Vec<usize>,
    anames: Vec<usize>,
    ttypes: Vec<usize>,
    tids: Vec<usize>,
    context: Option<(usize, usize)>,
    since: Option<usize>,
    until: Option<usize>,
    ids: Vec<u8>,
    summary_contains: bool,
    not_in_rid: Option<usize>,
}

fn small_list(n: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..n, 0..3)
}

fn gen_filter() -> impl Strategy<Value = GenFilter> {
    (
        (
            small_list(ACTIONS.len()),
            prop::option::weighted(0.2, 0..3usize),
            small_list(TYPES.len()),
            small_list(IDS.len()),
        ),
        (
            small_list(TYPES.len()),
            small_list(IDS.len()),
            small_list(NAMES.len()),
            small_list(TYPES.len()),
            small_list(IDS.len()),
        ),
        (
            prop::option::weighted(0.2, (0..CTX.len(), 0..VALS.len())),
            prop::option::weighted(0.3, 0..TIMES.len()),
            prop::option::weighted(0.3, 0..TIMES.len()),
            prop::collection::vec(0u8..6, 0..2),
            prop::bool::weighted(0.1),
            prop::option::weighted(0.1, 0..IDS.len()),
        ),
    )
        .prop_map(
            |(
                (actions, action_prefix, rtypes, rids),
                (atypes, aids, anames, ttypes, tids),
                (context, since, until, ids, summary_contains, not_in_rid),
            )| GenFilter {
                actions,
                action_prefix,
                rtypes,
                rids,
                atypes,
                aids,
                anames,
                ttypes,
                tids,
                context,
                since,
                until,
                ids,
                summary_contains,
                not_in_rid,
            },
        )
}

fn strs(list: &[usize], pool: &[&str]) -> Vec<String> {
    list.iter().map(|&i| pool[i].to_owned()).collect()
}

impl GenFilter {
    fn build(&self) -> Filter {
        let mut actions = strs(&self.actions, &ACTIONS);
        if let Some(p) = self.action_prefix {
            actions.push(["integration_*", "a*", "*"][p].to_owned());
        }
        let mut conditions = vec![];
        if self.summary_contains {
            conditions.push(
                Condition::new(Field::Summary, Op::Contains("summ".into()), "summary").unwrap(),
            );
        }
        if let Some(i) = self.not_in_rid {
            conditions.push(
                Condition::new(
                    Field::ResourceId,
                    Op::NotIn(vec![Operand::Str(IDS[i].into())]),
                    "resource_id",
                )
                .unwrap(),
            );
        }
        {
            let mut f = Filter::new()
                .ids(self.ids.iter().map(|&n| pool_id(n)))
                .actions(actions)
                .resource_types(strs(&self.rtypes, &TYPES))
                .resource_ids(strs(&self.rids, &IDS))
                .actor_types(strs(&self.atypes, &TYPES))
                .actor_ids(strs(&self.aids, &IDS))
                .actor_names(strs(&self.anames, &NAMES))
                .target_types(strs(&self.ttypes, &TYPES))
                .target_ids(strs(&self.tids, &IDS));
            f.context = self
                .context
                .map(|(k, v)| vec![(CTX[k].to_owned(), VALS[v].to_owned())])
                .unwrap_or_default();
            f.since = self.since.map(|i| TimeBound::At(t(TIMES[i])));
            f.until = self.until.map(|i| TimeBound::At(t(TIMES[i])));
            f.conditions = conditions;
            f
        }
    }

    /// The reference semantics, written independently of the store's.
    fn matches(&self, a: &Activity) -> bool {
        fn one_of(list: &[usize], pool: &[&str], v: Option<&str>) -> bool {
            list.is_empty() || list.iter().any(|&i| Some(pool[i]) == v)
        }
        let actor = a.actor.as_ref();
        let target = a.target.as_ref();
        let action_ok = (self.actions.is_empty() && self.action_prefix.is_none())
            || self.actions.iter().any(|&i| ACTIONS[i] == a.action)
            || self
                .action_prefix
                .is_some_and(|p| a.action.starts_with(["integration_", "a", ""][p]));
        let us = a.created_at.timestamp_micros();
        action_ok
            && (self.ids.is_empty() || self.ids.iter().any(|&n| pool_id(n) == a.id))
            && one_of(&self.rtypes, &TYPES, Some(&a.resource.kind))
            && one_of(&self.rids, &IDS, a.resource.id.as_deref())
            && one_of(&self.atypes, &TYPES, actor.map(|x| x.kind.as_str()))
            && one_of(&self.aids, &IDS, actor.and_then(|x| x.id.as_deref()))
            && one_of(&self.anames, &NAMES, actor.and_then(|x| x.name.as_deref()))
            && one_of(&self.ttypes, &TYPES, target.map(|x| x.kind.as_str()))
            && one_of(&self.tids, &IDS, target.and_then(|x| x.id.as_deref()))
            && self.context.is_none_or(|(k, v)| {
                a.context
                    .iter()
                    .any(|(kk, vv)| kk == CTX[k] && vv == VALS[v])
            })
            && self.since.is_none_or(|i| us >= TIMES[i])
            && self.until.is_none_or(|i| us < TIMES[i])
            && (!self.summary_contains
                || a.summary
                    .as_deref()
                    .is_some_and(|s| s.to_lowercase().contains("summ")))
            && self
                .not_in_rid
                .is_none_or(|i| a.resource.id.as_deref() != Some(IDS[i]))
    }
}

#[derive(Debug, Clone)]
enum Step {
    Append {
        tenant: usize,
        batch: Vec<GenActivity>,
        tick: u8,
    },
    Walk {
        tenant: usize,
        filter: Box<GenFilter>,
        asc: bool,
        sizes: Vec<usize>,
        appends_between: Vec<GenActivity>,
    },
    /// Follows the log: pages in `seq` order after a starting offset, as a consumer would.
    Follow {
        tenant: usize,
        filter: Box<GenFilter>,
        after: u8,
        sizes: Vec<usize>,
    },
    Reopen,
    /// Folds up to this many pending activities of each tenant into the indexes (0: all).
    Fold(u8),
}

fn gen_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..TENANTS.len(), prop::collection::vec(gen_activity(), 1..12), 0u8..3)
            .prop_map(|(tenant, batch, tick)| Step::Append { tenant, batch, tick }),
        4 => (0..TENANTS.len(), gen_filter().prop_map(Box::new), any::<bool>(), prop::collection::vec(1usize..6, 1..8),
              prop::collection::vec(gen_activity(), 0..3))
            .prop_map(|(tenant, filter, asc, sizes, appends_between)| Step::Walk { tenant, filter, asc, sizes, appends_between }),
        2 => (0..TENANTS.len(), gen_filter().prop_map(Box::new), 0u8..20, prop::collection::vec(1usize..6, 1..8))
            .prop_map(|(tenant, filter, after, sizes)| Step::Follow { tenant, filter, after, sizes }),
        1 => Just(Step::Reopen),
        2 => (0u8..8).prop_map(Step::Fold),
    ]
}

#[derive(Default)]
struct Model {
    /// Per tenant, by id.
    tenants: Vec<HashMap<Uuid, Activity>>,
}

/// The last `seq` of a tenant in the model.
fn last_seq(log: &HashMap<Uuid, Activity>) -> u64 {
    log.values().map(|a| a.seq).max().unwrap_or(0)
}

fn key(a: &Activity) -> (i64, Uuid) {
    (a.created_at.timestamp_micros(), a.id)
}

impl Model {
    /// Applies a batch the way API.md says: all or nothing, idempotent by id, conflicts reject;
    /// each new activity takes the next `seq`, a replay answers with the original one. `now` is
    /// the store's clock. Returns false if the batch must be rejected, or (when `real_acks`)
    /// if the store numbered it otherwise.
    fn append(
        &mut self,
        tenant: usize,
        batch: &[NewActivity],
        now: i64,
        acks: &[Appended],
        real_acks: bool,
    ) -> bool {
        let log = &mut self.tenants[tenant];
        let mut staged: HashMap<Uuid, Activity> = HashMap::new();
        let mut next_seq = last_seq(log) + 1;
        for (n, ack) in batch.iter().zip(acks) {
            let id = n.id.unwrap_or(ack.id);
            let time = n.created_at.unwrap_or(t(now));
            let mut context = n.context.clone();
            context.sort();
            let candidate = Activity {
                id,
                seq: ack.seq,
                created_at: time,
                recorded_at: ack.recorded_at,
                action: n.action.clone(),
                resource: n.resource.clone(),
                actor: n.actor.clone(),
                target: n.target.clone(),
                context,
                summary: n.summary.clone(),
                reason: None,
                changes: None,
                metadata: None,
                display: None,
            };
            if let Some(prev) = staged.get(&id).or_else(|| log.get(&id)) {
                let mut cmp = candidate.clone();
                if n.created_at.is_none() {
                    cmp.created_at = prev.created_at;
                }
                if real_acks && (ack.seq, ack.recorded_at) != (prev.seq, prev.recorded_at) {
                    return false;
                }
                cmp.seq = prev.seq;
                cmp.recorded_at = prev.recorded_at;
                if *prev != cmp {
                    return false;
                }
                continue;
            }
            if real_acks && ack.seq != next_seq {
                return false;
            }
            next_seq += 1;
            staged.insert(id, candidate);
        }
        log.extend(staged);
        true
    }

    /// What following the log after `after` gives: matches in `seq` order.
    fn follow(&self, tenant: usize, f: &GenFilter, after: u64) -> Vec<u64> {
        let mut v: Vec<u64> = self.tenants[tenant]
            .values()
            .filter(|a| a.seq > after && f.matches(a))
            .map(|a| a.seq)
            .collect();
        v.sort();
        v
    }

    fn answer(&self, tenant: usize, f: &GenFilter, asc: bool) -> Vec<(i64, Uuid)> {
        let mut v: Vec<(i64, Uuid)> = self.tenants[tenant]
            .values()
            .filter(|a| f.matches(a))
            .map(key)
            .collect();
        v.sort();
        if !asc {
            v.reverse();
        }
        v
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    run_with(steps, Fixture::new())
}

fn run_with(steps: Vec<Step>, mut fx: Fixture) -> Result<(), TestCaseError> {
    for t in TENANTS {
        fx.store()
            .create_tenant(t, TenantSettings::default())
            .unwrap();
    }
    let mut model = Model {
        tenants: vec![HashMap::new(); TENANTS.len()],
    };
    let append = |fx: &Fixture,
                  model: &mut Model,
                  tenant: usize,
                  batch: &[GenActivity]|
     -> Result<(), TestCaseError> {
        let news: Vec<NewActivity> = batch.iter().map(GenActivity::build).collect();
        let now = fx.clock.load(AtomicOrdering::SeqCst);
        match fx.store().append_batch(TENANTS[tenant], news.clone()) {
            Ok(acks) => {
                prop_assert_eq!(acks.len(), news.len());
                prop_assert!(
                    model.append(tenant, &news, now, &acks, true),
                    "store accepted a batch the model rejects, or numbered it otherwise: {:?}",
                    acks
                );
            }
            Err(Error::Conflict { .. }) => {
                // The model must reject it too; the placeholder acks are never read then.
                let fake: Vec<Appended> = news
                    .iter()
                    .map(|_| Appended {
                        id: Uuid::new_v4(),
                        created_at: t(0),
                        seq: 0,
                        recorded_at: t(0),
                        created: true,
                    })
                    .collect();
                let mut probe = Model {
                    tenants: model.tenants.clone(),
                };
                prop_assert!(
                    !probe.append(tenant, &news, now, &fake, false),
                    "store rejected a batch the model accepts"
                );
            }
            Err(e) => return Err(TestCaseError::fail(format!("append failed: {e}"))),
        }
        Ok(())
    };
    for step in steps {
        match step {
            Step::Append {
                tenant,
                batch,
                tick,
            } => {
                fx.clock.fetch_add(i64::from(tick), AtomicOrdering::SeqCst);
                append(&fx, &mut model, tenant, &batch)?;
            }
            Step::Reopen => fx.reopen(),
            Step::Fold(n) => {
                let max = if n == 0 { usize::MAX } else { usize::from(n) };
                fx.store().fold_pending(max).unwrap();
            }
            Step::Follow {
                tenant,
                filter,
                after,
                sizes,
            } => {
                let mut f = filter.build();
                f.conditions.push(Condition::after_seq(u64::from(after)));
                let want = model.follow(tenant, &filter, u64::from(after));
                let mut got: Vec<u64> = vec![];
                let mut recorded: Vec<i64> = vec![];
                let mut cursor = None;
                for i in 0.. {
                    let q = Query::new()
                        .filter(f.clone())
                        .order(Order::Seq)
                        .limit(sizes[i % sizes.len()])
                        .cursor(cursor.clone());
                    let page = fx.store().query(TENANTS[tenant], &q).unwrap();
                    got.extend(page.items.iter().map(|a| a.seq));
                    recorded.extend(page.items.iter().map(|a| a.recorded_at.timestamp_micros()));
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                    prop_assert!(i < 1000, "follow does not end");
                }
                prop_assert_eq!(&got, &want, "following the log");
                prop_assert!(
                    recorded.windows(2).all(|w| w[0] <= w[1]),
                    "recorded_at goes back"
                );
            }
            Step::Walk {
                tenant,
                filter,
                asc,
                sizes,
                appends_between,
            } => {
                let f = filter.build();
                let order = if asc { Order::Asc } else { Order::Desc };
                let before = model.answer(tenant, &filter, asc);
                let store = fx.store();
                let total = store.count(TENANTS[tenant], &f).unwrap();
                prop_assert_eq!(total, before.len() as u64, "count");

                // Forward walk, with appends between pages when asked.
                let mut pages: Vec<actlog::Page> = vec![];
                let mut cursor = None;
                let mut pending = appends_between.clone();
                for i in 0.. {
                    let limit = sizes[i % sizes.len()];
                    let q = Query::new()
                        .filter(f.clone())
                        .order(order)
                        .limit(limit)
                        .cursor(cursor.clone())
                        .include_total(i == 0);
                    let page = fx.store().query(TENANTS[tenant], &q).unwrap();
                    if i == 0 {
                        prop_assert_eq!(page.total, Some(before.len() as u64));
                        prop_assert!(page.prev_cursor.is_none());
                    }
                    prop_assert!(page.items.len() <= limit);
                    prop_assert_eq!(page.has_more, page.next_cursor.is_some());
                    cursor = page.next_cursor.clone();
                    pages.push(page);
                    if let Some(a) = pending.pop() {
                        append(&fx, &mut model, tenant, &[a])?;
                    }
                    if cursor.is_none() {
                        break;
                    }
                    prop_assert!(i < 1000, "walk does not end");
                }
                let walked: Vec<(i64, Uuid)> =
                    pages.iter().flat_map(|p| p.items.iter().map(key)).collect();
                let after = model.answer(tenant, &filter, asc);
                // In order, no duplicates; nothing committed before the walk is missing; nothing
                // outside the final answer appears.
                let mut sorted = walked.clone();
                sorted.sort();
                if !asc {
                    sorted.reverse();
                }
                prop_assert_eq!(&sorted, &walked, "pages out of order");
                sorted.dedup();
                prop_assert_eq!(sorted.len(), walked.len(), "duplicates across pages");
                for k in &before {
                    prop_assert!(walked.contains(k), "walk skipped {:?}", k);
                }
                for k in &walked {
                    prop_assert!(after.contains(k), "walk returned a non-match {:?}", k);
                }
                if appends_between.is_empty() {
                    prop_assert_eq!(&walked, &before);
                    // Backward from the last page, following prev cursors, gives the same answer.
                    let last = pages.last().unwrap();
                    let mut back: Vec<Vec<(i64, Uuid)>> =
                        vec![last.items.iter().map(key).collect()];
                    let mut prev = last.prev_cursor.clone();
                    let mut i = 0;
                    while let Some(c) = prev {
                        let limit = sizes[(i + 1) % sizes.len()];
                        let q = Query::new()
                            .filter(f.clone())
                            .order(order)
                            .limit(limit)
                            .cursor(Some(c))
                            .include_total(false);
                        let page = fx.store().query(TENANTS[tenant], &q).unwrap();
                        prop_assert!(page.next_cursor.is_some());
                        back.push(page.items.iter().map(key).collect());
                        prev = page.prev_cursor;
                        i += 1;
                        prop_assert!(i < 1000, "backward walk does not end");
                    }
                    back.reverse();
                    let back: Vec<(i64, Uuid)> = back.into_iter().flatten().collect();
                    prop_assert_eq!(&back, &before, "backward walk");
                }
            }
        }
    }
    let report = fx.store().verify().unwrap();
    prop_assert!(report.is_ok(), "{:?}", report);
    Ok(())
}

/// 48 cases by default; `PROPTEST_CASES=N` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn store_acts_like_the_model(steps in prop::collection::vec(gen_step(), 1..30)) {
        run(steps)?;
    }

    /// Deferred indexing under the model's control: no background indexer, so activities stay
    /// pending until a `Fold` step, a reopen keeps them pending, and a tiny `max_pending` makes
    /// appends fold (back-pressure). Every query must see every acknowledged activity at once.
    #[test]
    fn store_acts_like_the_model_with_folds_by_hand(steps in prop::collection::vec(gen_step(), 1..30)) {
        run_with(steps, Fixture::with(|o| o.background_indexing(false).max_pending(9)))?;
    }

    /// The same with the background indexer folding every millisecond, racing the steps.
    #[test]
    fn store_acts_like_the_model_with_a_busy_indexer(steps in prop::collection::vec(gen_step(), 1..30)) {
        run_with(steps, Fixture::with(|o| o.index_interval(std::time::Duration::from_millis(1))))?;
    }
}
