//! Every key of the `log4` tree, as `encode`/`decode` pairs. The byte layout is drawn in
//! `docs/key-format.md`; this module is the only place that knows it.
//!
//! **Invariant:** every key starts with the 4-byte tenant number, so a range inside one tenant's
//! prefix can never yield another tenant's key, and every record and index key ends with the same
//! `time ++ id` suffix, so a cursor position resumes any scan with one seek.
//!
//! **Invariant:** no key holds four 0xFF bytes in a row. sled 0.34.7 walks backwards by seeking
//! `possible_predecessor(node boundary)`, the boundary with its last byte decremented and four
//! 0xFF appended; a stored key between that guess and the boundary would have to hold such a run,
//! and without one its reverse iteration loops and panics (format 2's fault: big-endian times and
//! caller ids hold such runs). So: the fixed-width suffix (and the id of an id entry) is written
//! in groups of three bytes separated by a 0x00 ([`push_grouped`]); escaped strings are UTF-8,
//! which never holds 0xFF, and escape NUL as `00 FF` (one 0xFF, after a 0x00); tenant numbers stay
//! below 2^31 ([`MAX_TENANT_NO`]) so the tenant's first byte is never 0xFF; tags and kinds are
//! small. The longest run is three. Property-tested below for every key kind.

use std::ops::Bound;

use uuid::Uuid;

use crate::error::{Error, Result};

/// Bytes of a position, `time(8) ++ id(16)`, as cursors and posting-list values carry it.
pub(crate) const POS_LEN: usize = 8 + 16;
/// Bytes of the position as it ends a record or index key: [`POS_LEN`] bytes in groups of three
/// with a 0x00 between groups.
pub(crate) const SUFFIX_LEN: usize = grouped_len(POS_LEN);
/// Bytes of the tenant number prefix.
pub(crate) const TENANT_LEN: usize = 4;
/// The largest tenant number: its big-endian first byte stays below 0x80, so a tenant prefix
/// never starts a run of 0xFF bytes.
pub(crate) const MAX_TENANT_NO: u32 = 0x7FFF_FFFF;

/// The byte after the tenant number: what kind of key it is (the same in every format).
pub(crate) const TAG_RECORD: u8 = 0x01;
pub(crate) const TAG_ID: u8 = 0x02;
pub(crate) const TAG_INDEX: u8 = 0x03;
/// Format 4: the log's own order, `seq` → position (see [`seq_key`]).
pub(crate) const TAG_SEQ: u8 = 0x04;
/// Format 4: the tenant's last assigned `seq` and `recorded_at` (see [`head_key`]).
pub(crate) const TAG_HEAD: u8 = 0x05;
/// The tenant's index watermark: the `seq` through which records have their index entries (see
/// [`watermark_key`]). Added within format 4: a tenant without one is indexed through its head.
pub(crate) const TAG_WATERMARK: u8 = 0x06;

const ESC: u8 = 0x00;
const ESC_ZERO: u8 = 0xFF;
const ESC_END: u8 = 0x01;

/// The byte written between groups of three in [`push_grouped`].
const GROUP_SEP: u8 = 0x00;

/// The length of `n` bytes written by [`push_grouped`].
const fn grouped_len(n: usize) -> usize {
    n + n.saturating_sub(1) / 3
}

/// Appends `raw` with a 0x00 after every third byte (none after the last): at most three 0xFF in
/// a row whatever `raw` holds. The separators sit at fixed offsets, so for inputs of one length
/// the byte order of the output is the byte order of the input.
pub(crate) fn push_grouped(out: &mut Vec<u8>, raw: &[u8]) {
    for (i, group) in raw.chunks(3).enumerate() {
        if i > 0 {
            out.push(GROUP_SEP);
        }
        out.extend_from_slice(group);
    }
}

/// Reads `N` bytes written by [`push_grouped`]; `bytes` must be exactly that long.
fn read_grouped<const N: usize>(bytes: &[u8]) -> Result<[u8; N]> {
    if bytes.len() != grouped_len(N) {
        return Err(Error::Corrupt(format!(
            "grouped field of {} bytes",
            bytes.len()
        )));
    }
    let mut out = [0u8; N];
    for (i, (dst, src)) in out.chunks_mut(3).zip(bytes.chunks(4)).enumerate() {
        dst.copy_from_slice(&src[..dst.len()]);
        if i + 1 < N.div_ceil(3) && src.get(3) != Some(&GROUP_SEP) {
            return Err(Error::Corrupt("bad group separator in key".into()));
        }
    }
    Ok(out)
}

/// A position in time order: microseconds since the epoch, then the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub(crate) time: i64,
    pub(crate) id: Uuid,
}

impl Pos {
    /// The plain 24 bytes `time ++ id`: what cursors and posting-list values hold (never a key).
    pub(crate) fn encode(&self) -> [u8; POS_LEN] {
        let mut out = [0u8; POS_LEN];
        out[..8].copy_from_slice(&encode_time(self.time));
        out[8..].copy_from_slice(self.id.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Pos> {
        if bytes.len() != POS_LEN {
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

    /// Appends the key suffix: [`Pos::encode`] grouped ([`SUFFIX_LEN`] bytes).
    pub(crate) fn push_suffix(&self, out: &mut Vec<u8>) {
        push_grouped(out, &self.encode());
    }

    /// Reads a key suffix written by [`Pos::push_suffix`].
    pub(crate) fn from_suffix(bytes: &[u8]) -> Result<Pos> {
        Pos::decode(&read_grouped::<POS_LEN>(bytes)?)
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
/// so composite values compare field by field and any character, NUL included, is allowed. A
/// `str`, not bytes: UTF-8 never holds 0xFF, so the only 0xFF written is the one after an escaped
/// NUL (see the module's run invariant).
pub(crate) fn push_escaped(out: &mut Vec<u8>, s: &str) {
    push_escaped_open(out, s);
    out.extend_from_slice(&[ESC, ESC_END]);
}

/// Appends `s` escaped but not terminated: the key prefix shared by every value starting with `s`.
pub(crate) fn push_escaped_open(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
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

/// `tenant ++ 01 ++ suffix(time ++ id)` → the encoded record.
pub(crate) fn record_key(tenant: u32, pos: Pos) -> Vec<u8> {
    let mut k = record_prefix(tenant);
    pos.push_suffix(&mut k);
    k
}

/// Decodes a record key into its tenant and position.
pub(crate) fn decode_record_key(key: &[u8]) -> Result<(u32, Pos)> {
    if key.len() != TENANT_LEN + 1 + SUFFIX_LEN || key[TENANT_LEN] != TAG_RECORD {
        return Err(Error::Corrupt("not a record key".into()));
    }
    Ok((
        decode_tenant(key)?,
        Pos::from_suffix(&key[TENANT_LEN + 1..])?,
    ))
}

/// Bytes of an id entry's key.
const ID_KEY_LEN: usize = TENANT_LEN + 1 + grouped_len(16);

/// `tenant ++ 02 ++ grouped(id)` → the 8-byte time of that record. Written only for ids whose
/// time cannot be read from the id itself (see `store::id_time_hint`).
pub(crate) fn id_key(tenant: u32, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(ID_KEY_LEN);
    k.extend_from_slice(&tenant_prefix(tenant));
    k.push(TAG_ID);
    push_grouped(&mut k, id.as_bytes());
    k
}

pub(crate) fn decode_id_key(key: &[u8]) -> Result<(u32, Uuid)> {
    if key.len() != ID_KEY_LEN || key[TENANT_LEN] != TAG_ID {
        return Err(Error::Corrupt("not an id key".into()));
    }
    let id = Uuid::from_bytes(read_grouped::<16>(&key[TENANT_LEN + 1..])?);
    Ok((decode_tenant(key)?, id))
}

/// Bytes of a seq entry's key.
const SEQ_KEY_LEN: usize = TENANT_LEN + 1 + grouped_len(8);

/// `tenant ++ 04`: the prefix of a tenant's seq entries, in `seq` order.
pub(crate) fn seq_prefix(tenant: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(SEQ_KEY_LEN);
    k.extend_from_slice(&tenant_prefix(tenant));
    k.push(TAG_SEQ);
    k
}

/// `tenant ++ 04 ++ grouped(seq, 8 bytes big-endian)` → the plain position ([`Pos::encode`]) of
/// the record appended as `seq`. Grouped like the suffix: a big-endian `seq` holds 0xFF runs.
pub(crate) fn seq_key(tenant: u32, seq: u64) -> Vec<u8> {
    let mut k = seq_prefix(tenant);
    push_grouped(&mut k, &seq.to_be_bytes());
    k
}

pub(crate) fn decode_seq_key(key: &[u8]) -> Result<(u32, u64)> {
    if key.len() != SEQ_KEY_LEN || key[TENANT_LEN] != TAG_SEQ {
        return Err(Error::Corrupt("not a seq key".into()));
    }
    let seq = u64::from_be_bytes(read_grouped::<8>(&key[TENANT_LEN + 1..])?);
    Ok((decode_tenant(key)?, seq))
}

/// `tenant ++ 05` → [`Head::encode`]: the tenant's last `seq` and `recorded_at`, written with
/// every append so neither goes back when the records holding them are purged.
pub(crate) fn head_key(tenant: u32) -> Vec<u8> {
    let mut k = tenant_prefix(tenant).to_vec();
    k.push(TAG_HEAD);
    k
}

/// `tenant ++ 06` → the `seq` (8 bytes big-endian, [`encode_watermark`]) through which the
/// tenant's records have their index entries. Records with a larger `seq` are **pending**: they
/// have none yet, and the indexer (`store::indexer`) folds them in, moving the watermark in the
/// same batch. A tenant without this key has every record indexed (what appends wrote before
/// indexing was deferred); the first deferred append writes it.
pub(crate) fn watermark_key(tenant: u32) -> Vec<u8> {
    let mut k = tenant_prefix(tenant).to_vec();
    k.push(TAG_WATERMARK);
    k
}

/// The value of a [`watermark_key`].
pub(crate) fn encode_watermark(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub(crate) fn decode_watermark(bytes: &[u8]) -> Result<u64> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("index watermark of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(b))
}

/// The value of a [`head_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    /// The last `seq` assigned (0: none yet).
    pub(crate) seq: u64,
    /// The last `recorded_at`, in microseconds.
    pub(crate) recorded_at: i64,
}

impl Head {
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(&self.recorded_at.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Head> {
        let b: [u8; 16] = bytes
            .try_into()
            .map_err(|_| Error::Corrupt(format!("head of {} bytes", bytes.len())))?;
        let (mut seq, mut at) = ([0u8; 8], [0u8; 8]);
        seq.copy_from_slice(&b[..8]);
        at.copy_from_slice(&b[8..]);
        Ok(Head {
            seq: u64::from_be_bytes(seq),
            recorded_at: i64::from_be_bytes(at),
        })
    }
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
pub(crate) fn index_value_prefix(tenant: u32, kind: IndexKind, values: &[&str]) -> Vec<u8> {
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
pub(crate) fn index_key(tenant: u32, kind: IndexKind, values: &[&str], pos: Pos) -> Vec<u8> {
    list_key(&index_value_prefix(tenant, kind, values), pos)
}

/// The key of a posting list of `prefix` (an [`index_value_prefix`]) whose first position is
/// `first`.
pub(crate) fn list_key(prefix: &[u8], first: Pos) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + SUFFIX_LEN);
    k.extend_from_slice(prefix);
    first.push_suffix(&mut k);
    k
}

/// A decoded index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) tenant: u32,
    pub(crate) kind: IndexKind,
    pub(crate) values: Vec<String>,
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
        let v = String::from_utf8(v).map_err(|_| Error::Corrupt("index value not UTF-8".into()))?;
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
        pos: Pos::from_suffix(&key[split..])?,
    })
}

/// The `time ++ id` suffix of any record or index key.
pub(crate) fn suffix_pos(key: &[u8]) -> Result<Pos> {
    if key.len() < SUFFIX_LEN {
        return Err(Error::Corrupt("key shorter than its suffix".into()));
    }
    Pos::from_suffix(&key[key.len() - SUFFIX_LEN..])
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
    let with = |p: Pos| list_key(prefix, p);
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

    /// Times with long 0xFF runs once encoded: the ends of 2^32, 2^40 and 2^48 µs windows, the
    /// µs just before 1970, the extremes.
    fn time_strategy() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(-1i64),
            Just(0i64),
            Just(i64::MAX),
            (-20_000_000i64..0),
            (1i64..1 << 20, prop::sample::select(vec![32u32, 40, 48]))
                .prop_map(|(k, bits)| (k << bits) - 1),
            any::<i64>()
        ]
    }

    fn pos_strategy() -> impl Strategy<Value = Pos> {
        (
            time_strategy(),
            prop_oneof![
                Just(Uuid::nil()),
                Just(Uuid::max()),
                any::<u32>().prop_map(|n| Uuid::from_u128(u128::MAX >> 32 | u128::from(n) << 96)),
                any::<u128>().prop_map(Uuid::from_u128)
            ],
        )
            .prop_map(|(time, id)| Pos { time, id })
    }

    /// Short strings rich in NUL, 0x01, and characters whose UTF-8 holds 0xBF/0xFE-adjacent bytes.
    fn str_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('\0'),
                Just('\u{1}'),
                Just('\u{7f}'),
                Just('\u{ff}'),
                Just('\u{ffff}'),
                Just('\u{10ffff}'),
                any::<char>()
            ],
            0..8,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn kind_strategy() -> impl Strategy<Value = IndexKind> {
        prop::sample::select(IndexKind::ALL.to_vec())
    }

    fn tenant_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(MAX_TENANT_NO),
            Just(0x00FF_FFFF),
            0..=MAX_TENANT_NO
        ]
    }

    /// The longest run of 0xFF bytes in `k`.
    fn longest_ff_run(k: &[u8]) -> usize {
        k.split(|&b| b != 0xFF).map(<[u8]>::len).max().unwrap_or(0)
    }

    proptest! {
        #[test]
        fn time_order_is_byte_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), encode_time(a).cmp(&encode_time(b)));
            prop_assert_eq!(decode_time(encode_time(a)), a);
        }

        /// Grouping keeps the order of equal-length inputs and round-trips.
        #[test]
        fn grouped_order_and_round_trip(a in pos_strategy(), b in pos_strategy()) {
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            a.push_suffix(&mut ka);
            b.push_suffix(&mut kb);
            prop_assert_eq!(ka.len(), SUFFIX_LEN);
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert_eq!(Pos::from_suffix(&ka).unwrap(), a);
            prop_assert!(longest_ff_run(&ka) <= 3);
        }

        #[test]
        fn record_key_round_trip_and_order(t in tenant_strategy(), a in pos_strategy(), b in pos_strategy()) {
            let ka = record_key(t, a);
            prop_assert_eq!(decode_record_key(&ka).unwrap(), (t, a));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&record_key(t, b)));
        }

        #[test]
        fn seq_key_round_trip_and_order(t in tenant_strategy(), a: u64, b: u64) {
            let ka = seq_key(t, a);
            prop_assert_eq!(decode_seq_key(&ka).unwrap(), (t, a));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&seq_key(t, b)));
            prop_assert!(ka.starts_with(&seq_prefix(t)));
            prop_assert!(!head_key(t).starts_with(&seq_prefix(t)));
            let h = Head { seq: a, recorded_at: i64::from_ne_bytes(b.to_ne_bytes()) };
            prop_assert_eq!(Head::decode(&h.encode()).unwrap(), h);
            prop_assert!(!watermark_key(t).starts_with(&seq_prefix(t)));
            prop_assert!(watermark_key(t) > head_key(t));
            prop_assert!(watermark_key(t) > ka);
        }

        #[test]
        fn watermark_round_trip(t in tenant_strategy(), w: u64) {
            prop_assert_eq!(decode_watermark(&encode_watermark(w)).unwrap(), w);
            let k = watermark_key(t);
            prop_assert_eq!(&k[..TENANT_LEN], &tenant_prefix(t)[..]);
            prop_assert_eq!(k[TENANT_LEN], TAG_WATERMARK);
            prop_assert_eq!(k.len(), TENANT_LEN + 1);
        }

        #[test]
        fn id_key_round_trip(t in tenant_strategy(), p in pos_strategy()) {
            prop_assert_eq!(decode_id_key(&id_key(t, p.id)).unwrap(), (t, p.id));
        }

        #[test]
        fn index_key_round_trip(t in tenant_strategy(), kind in kind_strategy(),
                                v1 in str_strategy(), v2 in str_strategy(), p in pos_strategy()) {
            let vals: Vec<&str> = if kind.arity() == 2 { vec![&v1, &v2] } else { vec![&v1] };
            let key = index_key(t, kind, &vals, p);
            let e = decode_index_key(&key).unwrap();
            prop_assert_eq!(e.tenant, t);
            prop_assert_eq!(e.kind, kind);
            prop_assert_eq!(e.values, vals.iter().map(|v| v.to_string()).collect::<Vec<_>>());
            prop_assert_eq!(e.pos, p);
            prop_assert_eq!(suffix_pos(&key).unwrap(), p);
        }

        /// The run invariant: no key of any kind holds four 0xFF bytes in a row, whatever its
        /// tenant, values, time and id (sled's reverse iteration depends on it).
        #[test]
        fn no_key_holds_four_ff(t in tenant_strategy(), kind in kind_strategy(),
                                v1 in str_strategy(), v2 in str_strategy(), p in pos_strategy()) {
            let vals: Vec<&str> = if kind.arity() == 2 { vec![&v1, &v2] } else { vec![&v1] };
            let seq = u64::from_ne_bytes(p.time.to_ne_bytes());
            for k in [record_key(t, p), id_key(t, p.id), index_key(t, kind, &vals, p),
                      seq_key(t, seq), head_key(t), watermark_key(t)] {
                prop_assert!(longest_ff_run(&k) <= 3, "{:02x?}", k);
            }
        }

        /// Keys order by (values…, time, id): the order every index scan relies on.
        #[test]
        fn index_key_order(a1 in str_strategy(), a2 in str_strategy(), pa in pos_strategy(),
                           b1 in str_strategy(), b2 in str_strategy(), pb in pos_strategy()) {
            let ka = index_key(7, IndexKind::Resource, &[&a1, &a2], pa);
            let kb = index_key(7, IndexKind::Resource, &[&b1, &b2], pb);
            prop_assert_eq!((a1.as_bytes(), a2.as_bytes(), pa).cmp(&(b1.as_bytes(), b2.as_bytes(), pb)), ka.cmp(&kb));
        }

        /// A value's prefix never covers another value's entries, even when one value is a byte
        /// prefix of the other; the open (unterminated) prefix covers exactly the values it starts.
        #[test]
        fn value_prefixes_are_exact(a in str_strategy(), b in str_strategy(), p in pos_strategy()) {
            let key_b = index_key(1, IndexKind::Action, &[&b], p);
            let pa = index_value_prefix(1, IndexKind::Action, &[&a]);
            prop_assert_eq!(key_b.starts_with(&pa), a == b);
            let mut open = index_kind_prefix(1, IndexKind::Action);
            push_escaped_open(&mut open, &a);
            prop_assert_eq!(key_b.starts_with(&open), b.starts_with(&a));
        }

        /// No range built from one tenant's prefix ever contains another tenant's key.
        #[test]
        fn tenants_never_overlap(t in tenant_strategy(), u in tenant_strategy(), kind in kind_strategy(),
                                 v in str_strategy(), p in pos_strategy(), q in pos_strategy()) {
            prop_assume!(t != u);
            let vals: Vec<&str> = if kind.arity() == 2 { vec![&v, &v] } else { vec![&v] };
            let other = [record_key(u, p), index_key(u, kind, &vals, p), id_key(u, p.id),
                         seq_key(u, 1), head_key(u), watermark_key(u)];
            for prefix in [tenant_prefix(t).to_vec(), record_prefix(t), index_prefix(t), seq_prefix(t),
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
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_index_key(&bytes);
            let _ = decode_record_key(&bytes);
            let _ = decode_id_key(&bytes);
            let _ = decode_seq_key(&bytes);
            let _ = Head::decode(&bytes);
            let _ = decode_watermark(&bytes);
            let _ = suffix_pos(&bytes);
        }
    }

    #[test]
    fn prefix_successor_edges() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn grouping_layout() {
        let mut k = Vec::new();
        push_grouped(&mut k, &[0xFF; 7]);
        assert_eq!(k, [0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0xFF, 0, 0xFF]);
        assert_eq!(SUFFIX_LEN, 31);
        assert!(read_grouped::<7>(&k).is_ok());
        k[3] = 1;
        assert!(
            read_grouped::<7>(&k).is_err(),
            "a separator that is not 0x00"
        );
    }
}
