//! Every key of the `log` tree, as `encode`/`decode` pairs. The byte layout is drawn in
//! `docs/key-format.md`; this module is the only place that knows it.
//!
//! **Invariant:** every key starts with the 4-byte tenant number, so a range inside one tenant's
//! prefix can never yield another tenant's key, and every record and index key ends with the same
//! 24-byte `time ++ id` suffix, so a cursor position resumes any scan with one seek.

use std::ops::Bound;

use uuid::Uuid;

use crate::error::{Error, Result};

/// Bytes of the `time ++ id` suffix.
pub(crate) const SUFFIX_LEN: usize = 8 + 16;
/// Bytes of the tenant number prefix.
pub(crate) const TENANT_LEN: usize = 4;

const TAG_RECORD: u8 = 0x01;
const TAG_ID: u8 = 0x02;
const TAG_INDEX: u8 = 0x03;

const ESC: u8 = 0x00;
const ESC_ZERO: u8 = 0xFF;
const ESC_END: u8 = 0x01;

/// A position in time order: microseconds since the epoch, then the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub(crate) time: i64,
    pub(crate) id: Uuid,
}

impl Pos {
    pub(crate) fn encode(&self) -> [u8; SUFFIX_LEN] {
        let mut out = [0u8; SUFFIX_LEN];
        out[..8].copy_from_slice(&encode_time(self.time));
        out[8..].copy_from_slice(self.id.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Pos> {
        if bytes.len() != SUFFIX_LEN {
            return Err(Error::Corrupt(format!("position of {} bytes", bytes.len())));
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&bytes[..8]);
        let id = Uuid::from_slice(&bytes[8..]).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Pos {
            time: decode_time(t),
            id,
        })
    }
}

/// Time as 8 big-endian bytes with the sign bit flipped, so byte order equals time order.
pub(crate) fn encode_time(us: i64) -> [u8; 8] {
    (u64::from_ne_bytes(us.to_ne_bytes()) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn decode_time(b: [u8; 8]) -> i64 {
    i64::from_ne_bytes((u64::from_be_bytes(b) ^ (1 << 63)).to_ne_bytes())
}

/// log2 of a posting list's time bucket in microseconds: 2^20 µs, about 1.05 s. Every position of
/// a list lies in its first position's bucket (see `store::postings`). Stored data depends on it:
/// never change it.
pub(crate) const BUCKET_BITS: u32 = 20;

/// The first microsecond of the bucket holding `time`.
pub(crate) fn bucket_start(time: i64) -> i64 {
    (time >> BUCKET_BITS) << BUCKET_BITS
}

/// Whether two times share a bucket.
pub(crate) fn same_bucket(a: i64, b: i64) -> bool {
    a >> BUCKET_BITS == b >> BUCKET_BITS
}

/// Appends `s` escaped (`00` → `00 FF`) and terminated (`00 01`): order-preserving and prefix-free,
/// so composite values compare field by field and any byte, NUL included, is allowed.
pub(crate) fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    push_escaped_open(out, s);
    out.extend_from_slice(&[ESC, ESC_END]);
}

/// Appends `s` escaped but not terminated: the key prefix shared by every value starting with `s`.
pub(crate) fn push_escaped_open(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b == ESC {
            out.extend_from_slice(&[ESC, ESC_ZERO]);
        } else {
            out.push(b);
        }
    }
}

/// Reads one escaped, terminated string from the front of `input`; returns it and the rest.
pub(crate) fn take_escaped(input: &[u8]) -> Result<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != ESC {
            out.push(b);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            Some(&ESC_ZERO) => out.push(0),
            Some(&ESC_END) => return Ok((out, &input[i + 2..])),
            _ => return Err(Error::Corrupt("bad escape in key".into())),
        }
        i += 2;
    }
    Err(Error::Corrupt("unterminated string in key".into()))
}

/// The secondary indexes. The discriminant is the byte stored in the key: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum IndexKind {
    /// `action`
    Action = 1,
    /// `resource.type`
    ResourceType = 2,
    /// `resource.type ++ resource.id`
    Resource = 3,
    /// `actor.type`
    ActorType = 4,
    /// `actor.type ++ actor.id`
    Actor = 5,
    /// `actor.name`
    ActorName = 6,
    /// `target.type ++ target.id`
    Target = 7,
    /// `context key ++ value`
    Context = 8,
}

impl IndexKind {
    pub(crate) const ALL: [IndexKind; 8] = [
        IndexKind::Action,
        IndexKind::ResourceType,
        IndexKind::Resource,
        IndexKind::ActorType,
        IndexKind::Actor,
        IndexKind::ActorName,
        IndexKind::Target,
        IndexKind::Context,
    ];

    /// How many strings make up this index's value.
    pub(crate) fn arity(self) -> usize {
        match self {
            IndexKind::Resource | IndexKind::Actor | IndexKind::Target | IndexKind::Context => 2,
            _ => 1,
        }
    }

    fn from_byte(b: u8) -> Result<IndexKind> {
        IndexKind::ALL
            .into_iter()
            .find(|k| *k as u8 == b)
            .ok_or_else(|| Error::Corrupt(format!("unknown index kind {b}")))
    }
}

/// The 4-byte prefix of everything a tenant owns.
pub(crate) fn tenant_prefix(tenant: u32) -> [u8; TENANT_LEN] {
    tenant.to_be_bytes()
}

/// `tenant ++ 01`: the prefix of a tenant's records.
pub(crate) fn record_prefix(tenant: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(TENANT_LEN + 1 + SUFFIX_LEN);
    k.extend_from_slice(&tenant_prefix(tenant));
    k.push(TAG_RECORD);
    k
}

/// `tenant ++ 01 ++ time ++ id` → the encoded record.
pub(crate) fn record_key(tenant: u32, pos: Pos) -> Vec<u8> {
    let mut k = record_prefix(tenant);
    k.extend_from_slice(&pos.encode());
    k
}

/// Decodes a record key into its tenant and position.
pub(crate) fn decode_record_key(key: &[u8]) -> Result<(u32, Pos)> {
    if key.len() != TENANT_LEN + 1 + SUFFIX_LEN || key[TENANT_LEN] != TAG_RECORD {
        return Err(Error::Corrupt("not a record key".into()));
    }
    Ok((decode_tenant(key)?, Pos::decode(&key[TENANT_LEN + 1..])?))
}

/// `tenant ++ 02 ++ id` → the 8-byte time of that record. Written only for ids whose time cannot
/// be read from the id itself (see `store::id_time_hint`).
pub(crate) fn id_key(tenant: u32, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(TENANT_LEN + 1 + 16);
    k.extend_from_slice(&tenant_prefix(tenant));
    k.push(TAG_ID);
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn decode_id_key(key: &[u8]) -> Result<(u32, Uuid)> {
    if key.len() != TENANT_LEN + 1 + 16 || key[TENANT_LEN] != TAG_ID {
        return Err(Error::Corrupt("not an id key".into()));
    }
    let id = Uuid::from_slice(&key[TENANT_LEN + 1..]).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok((decode_tenant(key)?, id))
}

/// `tenant ++ 03`: the prefix of all of a tenant's index entries.
pub(crate) fn index_prefix(tenant: u32) -> Vec<u8> {
    let mut k = tenant_prefix(tenant).to_vec();
    k.push(TAG_INDEX);
    k
}

/// `tenant ++ 03 ++ kind`: the prefix of one index.
pub(crate) fn index_kind_prefix(tenant: u32, kind: IndexKind) -> Vec<u8> {
    let mut k = index_prefix(tenant);
    k.push(kind as u8);
    k
}

/// `tenant ++ 03 ++ kind ++ esc(v1) [++ esc(v2)]`: the prefix of one value's entries, in time order.
pub(crate) fn index_value_prefix(tenant: u32, kind: IndexKind, values: &[&[u8]]) -> Vec<u8> {
    debug_assert_eq!(values.len(), kind.arity());
    let mut k = index_kind_prefix(tenant, kind);
    for v in values {
        push_escaped(&mut k, v);
    }
    k
}

#[cfg(any(test, feature = "bench", feature = "fuzzing"))]
/// A list of one index entry: the value prefix followed by the `time ++ id` suffix, with an empty
/// value. Longer lists share the key shape (see `store::postings`).
pub(crate) fn index_key(tenant: u32, kind: IndexKind, values: &[&[u8]], pos: Pos) -> Vec<u8> {
    let mut k = index_value_prefix(tenant, kind, values);
    k.extend_from_slice(&pos.encode());
    k
}

/// A decoded index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) tenant: u32,
    pub(crate) kind: IndexKind,
    pub(crate) values: Vec<Vec<u8>>,
    pub(crate) pos: Pos,
}

pub(crate) fn decode_index_key(key: &[u8]) -> Result<IndexEntry> {
    if key.len() < TENANT_LEN + 2 + SUFFIX_LEN || key[TENANT_LEN] != TAG_INDEX {
        return Err(Error::Corrupt("not an index key".into()));
    }
    let tenant = decode_tenant(key)?;
    let kind = IndexKind::from_byte(key[TENANT_LEN + 1])?;
    let split = key.len() - SUFFIX_LEN;
    let mut rest = &key[TENANT_LEN + 2..split];
    let mut values = Vec::with_capacity(kind.arity());
    for _ in 0..kind.arity() {
        let (v, r) = take_escaped(rest)?;
        values.push(v);
        rest = r;
    }
    if !rest.is_empty() {
        return Err(Error::Corrupt("trailing bytes in index key".into()));
    }
    Ok(IndexEntry {
        tenant,
        kind,
        values,
        pos: Pos::decode(&key[split..])?,
    })
}

/// The `time ++ id` suffix of any record or index key.
pub(crate) fn suffix_pos(key: &[u8]) -> Result<Pos> {
    if key.len() < SUFFIX_LEN {
        return Err(Error::Corrupt("key shorter than its suffix".into()));
    }
    Pos::decode(&key[key.len() - SUFFIX_LEN..])
}

fn decode_tenant(key: &[u8]) -> Result<u32> {
    let b: [u8; 4] = key
        .get(..TENANT_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::Corrupt("key without tenant".into()))?;
    Ok(u32::from_be_bytes(b))
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

/// The key range of one value prefix between two positions: `lo` and `hi` as sled bounds.
pub(crate) fn suffix_range(
    prefix: &[u8],
    lo: Bound<Pos>,
    hi: Bound<Pos>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let with = |p: Pos| {
        let mut k = Vec::with_capacity(prefix.len() + SUFFIX_LEN);
        k.extend_from_slice(prefix);
        k.extend_from_slice(&p.encode());
        k
    };
    let lo = match lo {
        Bound::Included(p) => Bound::Included(with(p)),
        Bound::Excluded(p) => Bound::Excluded(with(p)),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    };
    let hi = match hi {
        Bound::Included(p) => Bound::Included(with(p)),
        Bound::Excluded(p) => Bound::Excluded(with(p)),
        Bound::Unbounded => match prefix_successor(prefix) {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        },
    };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::ops::RangeBounds;

    fn pos_strategy() -> impl Strategy<Value = Pos> {
        (
            prop_oneof![
                Just(i64::MIN),
                Just(-1i64),
                Just(0i64),
                Just(i64::MAX),
                any::<i64>()
            ],
            prop_oneof![
                Just(Uuid::nil()),
                Just(Uuid::max()),
                any::<u128>().prop_map(Uuid::from_u128)
            ],
        )
            .prop_map(|(time, id)| Pos { time, id })
    }

    fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
            0..8,
        )
    }

    fn kind_strategy() -> impl Strategy<Value = IndexKind> {
        prop::sample::select(IndexKind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn time_order_is_byte_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), encode_time(a).cmp(&encode_time(b)));
            prop_assert_eq!(decode_time(encode_time(a)), a);
        }

        #[test]
        fn record_key_round_trip_and_order(t in any::<u32>(), a in pos_strategy(), b in pos_strategy()) {
            let ka = record_key(t, a);
            prop_assert_eq!(decode_record_key(&ka).unwrap(), (t, a));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&record_key(t, b)));
        }

        #[test]
        fn index_key_round_trip(t in any::<u32>(), kind in kind_strategy(),
                                v1 in bytes_strategy(), v2 in bytes_strategy(), p in pos_strategy()) {
            let vals: Vec<&[u8]> = if kind.arity() == 2 { vec![&v1, &v2] } else { vec![&v1] };
            let key = index_key(t, kind, &vals, p);
            let e = decode_index_key(&key).unwrap();
            prop_assert_eq!(e.tenant, t);
            prop_assert_eq!(e.kind, kind);
            prop_assert_eq!(e.values, vals.iter().map(|v| v.to_vec()).collect::<Vec<_>>());
            prop_assert_eq!(e.pos, p);
            prop_assert_eq!(suffix_pos(&key).unwrap(), p);
        }

        /// Keys order by (values…, time, id): the order every index scan relies on.
        #[test]
        fn index_key_order(a1 in bytes_strategy(), a2 in bytes_strategy(), pa in pos_strategy(),
                           b1 in bytes_strategy(), b2 in bytes_strategy(), pb in pos_strategy()) {
            let ka = index_key(7, IndexKind::Resource, &[&a1, &a2], pa);
            let kb = index_key(7, IndexKind::Resource, &[&b1, &b2], pb);
            prop_assert_eq!((&a1, &a2, pa).cmp(&(&b1, &b2, pb)), ka.cmp(&kb));
        }

        /// A value's prefix never covers another value's entries, even when one value is a byte
        /// prefix of the other; the open (unterminated) prefix covers exactly the values it starts.
        #[test]
        fn value_prefixes_are_exact(a in bytes_strategy(), b in bytes_strategy(), p in pos_strategy()) {
            let key_b = index_key(1, IndexKind::Action, &[&b], p);
            let pa = index_value_prefix(1, IndexKind::Action, &[&a]);
            prop_assert_eq!(key_b.starts_with(&pa), a == b);
            let mut open = index_kind_prefix(1, IndexKind::Action);
            push_escaped_open(&mut open, &a);
            prop_assert_eq!(key_b.starts_with(&open), b.starts_with(&a));
        }

        /// No range built from one tenant's prefix ever contains another tenant's key.
        #[test]
        fn tenants_never_overlap(t in any::<u32>(), u in any::<u32>(), kind in kind_strategy(),
                                 v in bytes_strategy(), p in pos_strategy(), q in pos_strategy()) {
            prop_assume!(t != u);
            let vals: Vec<&[u8]> = if kind.arity() == 2 { vec![&v, &v] } else { vec![&v] };
            let other = [record_key(u, p), index_key(u, kind, &vals, p), id_key(u, p.id)];
            for prefix in [tenant_prefix(t).to_vec(), record_prefix(t), index_prefix(t),
                           index_value_prefix(t, kind, &vals)] {
                let (lo, hi) = suffix_range(&prefix, Bound::Unbounded, Bound::Unbounded);
                for k in &other {
                    prop_assert!(!((lo.clone(), hi.clone()).contains(k)) || k.starts_with(&prefix));
                    prop_assert!(!k.starts_with(&prefix));
                }
                let (lo, hi) = suffix_range(&prefix, Bound::Included(q), Bound::Excluded(Pos { time: i64::MAX, id: Uuid::max() }));
                for k in &other {
                    prop_assert!(!(lo.clone(), hi.clone()).contains(k));
                }
            }
        }

        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_index_key(&bytes);
            let _ = decode_record_key(&bytes);
            let _ = decode_id_key(&bytes);
            let _ = suffix_pos(&bytes);
        }
    }

    #[test]
    fn prefix_successor_edges() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}
