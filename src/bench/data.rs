//! The benchmark's dataset: a seeded, reproducible stream of activities with the skew of a real
//! activity log. It is generated batch by batch, never held whole, so it costs no memory of its own
//! and both engines are fed exactly the same events in the same order.
//!
//! Shape: 10 tenants (one hot: 40% of events), ~30 actions (the hottest 25%), 8 resource types,
//! ~50k resource ids and ~2k actors drawn with a power-law skew (one service actor does 30% of
//! everything), 0–3 context entries, a summary and a small metadata object (~250 bytes a
//! record once encoded), and times that advance by whole milliseconds, so many events share one.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::model::{Actor, NewActivity, ObjectRef};

/// Activities per append, for both engines.
pub const BATCH: usize = 1000;
const BATCH_U64: u64 = 1000;
/// Tenants in the dataset; `TENANTS[0]` is the hot one the read figures use.
pub const TENANTS: [&str; 10] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
/// Share of batches per tenant, in percent (sums to 100).
const TENANT_WEIGHTS: [u32; 10] = [40, 15, 10, 5, 5, 5, 5, 5, 5, 5];

/// Actions with their weights; the first is the hot one the "by action" figures filter on.
pub const ACTIONS: [(&str, u32); 30] = [
    ("invoice.updated", 250),
    ("invoice.created", 120),
    ("document.viewed", 100),
    ("customer.updated", 80),
    ("payment.received", 60),
    ("invoice.sent", 50),
    ("integration_sync.started", 40),
    ("integration_sync.finished", 40),
    ("customer.created", 30),
    ("document.created", 30),
    ("payment.refunded", 20),
    ("invoice.deleted", 15),
    ("user.login", 15),
    ("user.logout", 10),
    ("integration_webhook.failed", 10),
    ("report.exported", 10),
    ("subscription.renewed", 10),
    ("subscription.cancelled", 8),
    ("estimate.created", 8),
    ("estimate.accepted", 6),
    ("credit_note.created", 6),
    ("tax.updated", 5),
    ("item.created", 5),
    ("item.updated", 5),
    ("api_key.created", 3),
    ("api_key.revoked", 2),
    ("organization.updated", 2),
    ("member.invited", 2),
    ("member.removed", 1),
    ("export.failed", 1),
];

const RESOURCE_TYPES: [(&str, u32); 8] = [
    ("invoice", 40),
    ("customer", 20),
    ("document", 15),
    ("payment", 10),
    ("subscription", 5),
    ("estimate", 4),
    ("item", 3),
    ("organization", 3),
];

/// The resource type the "by resource" figures filter on.
pub const HOT_RESOURCE_TYPE: &str = "invoice";
/// The service actor doing 30% of everything; the "by actor" figures filter on it.
pub const HOT_ACTOR: (&str, &str) = ("service", "svc_sync");
/// The actions of the "IN list" figures. The four page filters each match over 100k events of the
/// hot tenant at 1M events (26%, 40%, 30% and 30% of its ~400k), so depth 100k is reachable.
pub const IN_ACTIONS: [&str; 3] = ["invoice.created", "document.viewed", "payment.received"];

const RESOURCE_IDS: u32 = 50_000;
const USER_ACTORS: u32 = 2_000;
const ORIGINS: [&str; 4] = ["API", "UI", "IMPORT", "MOBILE"];
const WORDS: [&str; 16] = [
    "changed",
    "status",
    "from",
    "draft",
    "to",
    "sent",
    "amount",
    "due",
    "date",
    "customer",
    "updated",
    "the",
    "reference",
    "note",
    "added",
    "total",
];

/// SplitMix64: tiny, fast and stable across crate versions, so a seed always means one dataset.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u32) -> u32 {
        let wide = u64::from(n) * (self.next_u64() >> 32);
        u32::try_from(wide >> 32).unwrap_or(0)
    }

    /// An index into `items` drawn by weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }

    /// A power-law draw in 0..n: `n * u^power` for a uniform `u` in [0, 1), in integers.
    pub fn skewed(&mut self, n: u32, power: u32) -> u32 {
        let u = u128::from(self.below(1 << 20));
        let x = (u.pow(power) * u128::from(n)) >> (20 * power);
        u32::try_from(x).unwrap_or(0)
    }

    /// One of `items`, uniformly.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        items[usize::try_from(self.below(n)).unwrap_or(0)]
    }
}

/// One generated batch: its tenant and its activities (times and, for SQLite, ids given).
#[derive(Debug, Clone)]
pub struct Batch {
    pub tenant: &'static str,
    pub events: Vec<NewActivity>,
}

/// The dataset as an iterator of batches of [`BATCH`] events (the last may be shorter).
#[derive(Debug, Clone)]
pub struct Dataset {
    rng: Rng,
    left: u64,
    time_ms: i64,
}

/// 2025-01-01T00:00:00Z in milliseconds.
const START_MS: i64 = 1_735_689_600_000;

impl Dataset {
    pub fn new(seed: u64, events: u64) -> Dataset {
        Dataset {
            rng: Rng::new(seed),
            left: events,
            time_ms: START_MS,
        }
    }

    fn event(&mut self) -> NewActivity {
        let r = &mut self.rng;
        // Many equal timestamps: 60% of events share the previous event's millisecond.
        if r.below(10) >= 6 {
            self.time_ms += i64::from(r.below(40)) + 1;
        }
        let r = &mut self.rng;
        let created_at: DateTime<Utc> = Utc
            .timestamp_millis_opt(self.time_ms)
            .single()
            .unwrap_or_default();
        let action = r.weighted(&ACTIONS);
        let rtype = r.weighted(&RESOURCE_TYPES);
        let rid = r.skewed(RESOURCE_IDS, 3);
        let actor = match r.below(100) {
            0..=4 => None,
            5..=34 => Some(Actor {
                kind: HOT_ACTOR.0.into(),
                id: Some(HOT_ACTOR.1.into()),
                name: Some("Sync bot".into()),
                email: None,
            }),
            _ => {
                let n = r.skewed(USER_ACTORS, 2);
                Some(Actor {
                    kind: "user".into(),
                    id: Some(format!("usr_{n:05}")),
                    name: Some(format!("User {n}")),
                    email: Some(format!("user{n}@example.com")),
                })
            }
        };
        let target = (r.below(10) < 4).then(|| ObjectRef {
            kind: "customer".into(),
            id: Some(format!("cus_{:05}", r.skewed(20_000, 2))),
        });
        let mut context = Vec::new();
        let n_ctx = r.below(4);
        if n_ctx >= 1 {
            context.push(("origin".to_owned(), r.pick(&ORIGINS).to_owned()));
        }
        if n_ctx >= 2 {
            context.push(("trace_id".to_owned(), format!("{:016x}", r.next_u64())));
        }
        if n_ctx >= 3 {
            context.push(("feature".to_owned(), format!("f{}", r.below(20))));
        }
        context.sort();
        let n_words = 6 + r.below(8);
        let summary: Vec<&str> = (0..n_words).map(|_| r.pick(&WORDS)).collect();
        let metadata = serde_json::json!({
            "amount": f64::from(r.below(1_000_000)) / 100.0,
            "currency": if r.below(2) == 0 { "EUR" } else { "USD" },
        });
        let changes = (r.below(3) == 0).then(|| serde_json::json!({"status": ["draft", "sent"]}));
        NewActivity {
            id: None,
            created_at: Some(created_at),
            action: action.to_owned(),
            resource: ObjectRef {
                kind: rtype.to_owned(),
                id: Some(format!("{}_{rid:05}", &rtype[..3])),
            },
            actor,
            target,
            context,
            summary: Some(summary.join(" ")),
            reason: None,
            changes,
            metadata: Some(metadata),
            display: None,
        }
    }
}

impl Iterator for Dataset {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(BATCH_U64);
        self.left -= n;
        let tenant = TENANTS[self.rng.weighted(&[
            (0usize, TENANT_WEIGHTS[0]),
            (1, TENANT_WEIGHTS[1]),
            (2, TENANT_WEIGHTS[2]),
            (3, TENANT_WEIGHTS[3]),
            (4, TENANT_WEIGHTS[4]),
            (5, TENANT_WEIGHTS[5]),
            (6, TENANT_WEIGHTS[6]),
            (7, TENANT_WEIGHTS[7]),
            (8, TENANT_WEIGHTS[8]),
            (9, TENANT_WEIGHTS[9]),
        ])];
        let events = (0..n).map(|_| self.event()).collect();
        Some(Batch { tenant, events })
    }
}

/// A UUIDv7 for the SQLite peer, minted the way the store mints its own: time plus random bits.
pub fn peer_id(rng: &mut Rng, time_us: i64) -> Uuid {
    let ms = u64::try_from(time_us.div_euclid(1000)).unwrap_or(0);
    let hi = (ms << 16) | (0x7000 | (rng.next_u64() & 0x0FFF));
    let lo = (rng.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    Uuid::from_u64_pair(hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_sized() {
        let a: Vec<Batch> = Dataset::new(7, 2_500).collect();
        let b: Vec<Batch> = Dataset::new(7, 2_500).collect();
        assert_eq!(a.len(), 3);
        assert_eq!(a[2].events.len(), 500);
        assert_eq!(a[1].events, b[1].events);
        let mut prev = None;
        for e in a.iter().flat_map(|b| &b.events) {
            let mut e = e.clone();
            e.validate("").unwrap();
            assert!(prev <= e.created_at, "times never go back");
            prev = e.created_at;
        }
    }
}
