//! `verify`: every indexed record (its `seq` at or below its tenant's index watermark) has exactly
//! the index entries it implies, every pending one (above it) has none, and every index and id
//! entry points at a record that implies it; the watermark is at or below the head; every record has the seq entry of its `seq`, every seq
//! entry points at the record of that `seq`, `recorded_at` never goes back in `seq` order, and
//! each tenant's head is at or past its last `seq`.
//!
//! One pass checks that each record's implied entries are in some posting list of their value and
//! counts them, and checks every list's shape and counts its positions. Implied entries are
//! distinct (each names its record's unique `time ++ id`), so if the lists hold as many positions
//! as records imply, they hold exactly those; only when the counts differ does a second pass look
//! up each position's record to name the stray one.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::store::keys::{self, Pos};
use crate::store::{codec, derived_prefixes, id_time_hint, postings, Store};

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Index positions checked.
    pub index_entries: u64,
    /// Id entries checked.
    pub id_entries: u64,
    /// Entries of the log's order, one per record.
    pub seq_entries: u64,
    /// The first disagreement, if any; `None` means the store is consistent.
    pub problem: Option<String>,
}

impl VerifyReport {
    /// Whether nothing disagreed.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

pub(crate) fn run(store: &Store) -> Result<VerifyReport> {
    store.read_guard("verify", || run_inner(store))
}

fn run_inner(store: &Store) -> Result<VerifyReport> {
    // No fold while the indexes are checked against the watermark.
    let _still = store.index_still();
    let mut report = VerifyReport::default();
    let tenants: HashSet<u32> = store
        .tenants()
        .iter()
        .filter_map(|t| store.tenant_info(&t.id).ok())
        .map(|t| t.no)
        .collect();
    // Each tenant's index watermark, read up front: records come before it in key order.
    let mut watermarks: HashMap<u32, u64> = HashMap::new();
    for &t in &tenants {
        match store.indexed_through(t) {
            Ok(w) => {
                watermarks.insert(t, w);
            }
            Err(Error::Corrupt(m)) => {
                report.problem = Some(format!("index watermark of tenant number {t}: {m}"));
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
    }
    let fail = |mut r: VerifyReport, msg: String| {
        r.problem = Some(msg);
        Ok(r)
    };
    let mut implied = 0u64;
    // The last seq entry seen, per tenant: (seq, recorded_at). Seq entries come in `seq` order
    // within their tenant, after its records and before its head.
    let mut last: HashMap<u32, (u64, i64)> = HashMap::new();
    for kv in store.log.iter() {
        let (k, v) = kv?;
        let tenant = match k.get(..keys::TENANT_LEN) {
            Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            None => return fail(report, format!("key too short: {k:?}")),
        };
        if !tenants.contains(&tenant) {
            return fail(report, format!("key of unknown tenant number {tenant}"));
        }
        if k.windows(4).any(|w| w == [0xFF; 4]) {
            // sled 0.34.7 cannot walk backwards across such a key (see `keys`).
            return fail(report, format!("key holds four 0xFF bytes in a row: {k:?}"));
        }
        if let Ok((_, pos)) = keys::decode_record_key(&k) {
            report.records += 1;
            let a = match codec::decode(pos, &v) {
                Ok(a) => a,
                Err(e) => return fail(report, format!("record {} does not decode: {e}", pos.id)),
            };
            let indexed = a.seq <= watermarks.get(&tenant).copied().unwrap_or(0);
            for prefix in derived_prefixes(tenant, &a) {
                if indexed {
                    implied += 1;
                }
                match postings::contains(&store.log, &prefix, pos) {
                    Ok(true) if indexed => {}
                    Ok(false) if !indexed => {}
                    Ok(false) => {
                        return fail(report, format!("record {} lacks an index entry", a.id))
                    }
                    Ok(true) => {
                        return fail(
                            report,
                            format!(
                                "record {} (seq {}, past the index watermark) has an index entry",
                                a.id, a.seq
                            ),
                        )
                    }
                    Err(Error::Corrupt(m)) => {
                        return fail(report, format!("record {}'s index entry: {m}", a.id))
                    }
                    Err(e) => return Err(e),
                }
            }
            match store.log.get(keys::seq_key(tenant, a.seq))? {
                Some(p) if a.seq > 0 && p.as_ref() == pos.encode() => {}
                _ => {
                    return fail(
                        report,
                        format!("record {} lacks its seq entry {}", a.id, a.seq),
                    )
                }
            }
            if id_time_hint(a.id) != Some(pos.time) {
                match store.log.get(keys::id_key(tenant, a.id))? {
                    Some(t) if t.as_ref() == keys::encode_time(pos.time) => {}
                    _ => return fail(report, format!("record {} lacks its id entry", a.id)),
                }
            }
        } else if let Ok(e) = keys::decode_index_key(&k) {
            match postings::decode(e.pos, &v) {
                Ok(list) => report.index_entries += list.len() as u64,
                Err(err) => {
                    return fail(report, format!("index entry for {}: {err}", e.pos.id));
                }
            }
        } else if let Ok((_, id)) = keys::decode_id_key(&k) {
            report.id_entries += 1;
            let b: Result<[u8; 8], _> = v.as_ref().try_into();
            let Ok(b) = b else {
                return fail(report, format!("id entry {id} of bad length"));
            };
            let pos = Pos {
                time: keys::decode_time(b),
                id,
            };
            if !store.log.contains_key(keys::record_key(tenant, pos))? {
                return fail(report, format!("id entry for missing record {id}"));
            }
        } else if let Ok((_, seq)) = keys::decode_seq_key(&k) {
            report.seq_entries += 1;
            let Ok(pos) = Pos::decode(&v) else {
                return fail(report, format!("seq entry {seq} of bad length"));
            };
            let Some(r) = store.stored_at(tenant, pos)? else {
                return fail(
                    report,
                    format!("seq entry {seq} for missing record {}", pos.id),
                );
            };
            let a = match r.view() {
                Ok(a) => a,
                Err(e) => return fail(report, format!("record {} does not decode: {e}", pos.id)),
            };
            if a.seq != seq {
                return fail(report, format!("seq entry {seq} points at seq {}", a.seq));
            }
            if let Some(&(_, at)) = last.get(&tenant) {
                if a.recorded_at < at {
                    return fail(report, format!("recorded_at goes back at seq {seq}"));
                }
            }
            last.insert(tenant, (seq, a.recorded_at));
        } else if k.as_ref() == keys::head_key(tenant) {
            let Ok(head) = keys::Head::decode(&v) else {
                return fail(
                    report,
                    format!("log head of tenant number {tenant} of bad length"),
                );
            };
            if let Some(&(seq, at)) = last.get(&tenant) {
                if head.seq < seq || head.recorded_at < at {
                    return fail(report, format!("log head behind seq {seq}"));
                }
            }
        } else if k.as_ref() == keys::watermark_key(tenant) {
            let Ok(w) = keys::decode_watermark(&v) else {
                return fail(
                    report,
                    format!("index watermark of tenant number {tenant} of bad length"),
                );
            };
            let head = super::indexer::read_head(&store.log, tenant)?;
            if w > head.seq {
                return fail(
                    report,
                    format!("index watermark {w} past the log head {}", head.seq),
                );
            }
        } else {
            return fail(report, format!("key of unknown kind: {k:?}"));
        }
    }
    if report.seq_entries != report.records {
        let msg = format!(
            "{} seq entries for {} records",
            report.seq_entries, report.records
        );
        return fail(report, msg);
    }
    if report.index_entries != implied {
        if let Some(problem) = find_stray_entry(store)? {
            return fail(report, problem);
        }
        let msg = format!(
            "{} index entries, records imply {implied}",
            report.index_entries
        );
        return fail(report, msg);
    }
    Ok(report)
}

/// The first index entry whose record is missing or does not imply it.
fn find_stray_entry(store: &Store) -> Result<Option<String>> {
    for kv in store.log.iter() {
        let (k, v) = kv?;
        let Ok(e) = keys::decode_index_key(&k) else {
            continue;
        };
        let prefix = &k[..k.len() - keys::SUFFIX_LEN];
        for pos in postings::decode(e.pos, &v)? {
            let Some(a) = store.record_at(e.tenant, pos)? else {
                return Ok(Some(format!("index entry for missing record {}", pos.id)));
            };
            if !derived_prefixes(e.tenant, &a)
                .iter()
                .any(|d| d.as_slice() == prefix)
            {
                return Ok(Some(format!(
                    "index entry that record {} does not imply",
                    a.id
                )));
            }
        }
    }
    Ok(None)
}
