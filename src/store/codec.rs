//! The on-disk encoding of a record: one version byte, then (V2, format 4) the record's `seq` and
//! `recorded_at` as 8 big-endian bytes each, then bincode 2 of a private struct that mirrors
//! `Activity` minus the time and id (the key holds those). JSON objects are kept as JSON text,
//! since bincode cannot carry self-describing values. V1 (formats 1–3) is the same without the
//! 16-byte header; it reads as `seq` 0 and `recorded_at` = `created_at` (only the upgrade reads
//! it: format 4 rewrites every record as V2).
//!
//! Reads go through [`view`]: the layout is strings with their lengths in front, so a record is
//! read in place as an [`ActivityRef`] borrowing the stored bytes, and JSON fields are handed on
//! as the compact text `encode` wrote. An owned [`Activity`] is made only when asked for.
//!
//! **Invariant:** a layout change adds a new version byte and keeps decoding the old ones.
//! **Invariant:** reading bytes (`view`, `decode`) never panics, and refuses more than 1 MiB;
//! `view` allocates nothing unless it fails, `decode` in proportion to the bytes.
//! **Invariant:** stored JSON text is what `serde_json` printed for a parsed `Value`, so it
//! is valid, compact, and prints back byte for byte once parsed (serde_json's `float_roundtrip`
//! makes its float parsing exact; without it a float could read back one ULP off).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{Activity, Actor, DisplayText, ObjectRef};
use crate::store::keys::Pos;

const V1: u8 = 1;
const V2: u8 = 2;
/// Bytes of V2's header after the version byte: `seq`, `recorded_at`.
const V2_HEADER: usize = 16;
/// Decoding never allocates more than this, whatever the stored bytes claim.
const DECODE_LIMIT: usize = 1 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct RecordV1 {
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    actor: Option<ActorV1>,
    target: Option<(String, Option<String>)>,
    context: Vec<(String, String)>,
    summary: Option<String>,
    reason: Option<String>,
    changes: Option<String>,
    metadata: Option<String>,
    display: Option<(String, String)>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct ActorV1 {
    kind: String,
    id: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

fn json_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

#[cfg(test)]
fn json_value(s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("stored JSON: {e}"))))
        .transpose()
}

/// Encodes the stored part of an activity (V2: with its `seq` and `recorded_at`).
pub(crate) fn encode(a: &Activity) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    out.push(V2);
    out.extend_from_slice(&a.seq.to_be_bytes());
    out.extend_from_slice(&a.recorded_at.timestamp_micros().to_be_bytes());
    encode_body(a, &mut out)?;
    Ok(out)
}

/// A stored record's bytes with its `seq` and `recorded_at` set, as V2: how the upgrade to
/// format 4 numbers the records it finds (V1, or V2 from an interrupted run).
pub(crate) fn with_seq(bytes: &[u8], seq: u64, recorded_at: i64) -> Result<Vec<u8>> {
    let body = match bytes.split_first() {
        Some((&V1, body)) => body,
        Some((&V2, rest)) if rest.len() >= V2_HEADER => &rest[V2_HEADER..],
        _ => return Err(Error::Corrupt("record of unknown version".into())),
    };
    let mut out = Vec::with_capacity(1 + V2_HEADER + body.len());
    out.push(V2);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&recorded_at.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

fn encode_body(a: &Activity, out: &mut Vec<u8>) -> Result<()> {
    let r = RecordV1 {
        action: a.action.clone(),
        resource_type: a.resource.kind.clone(),
        resource_id: a.resource.id.clone(),
        actor: a.actor.as_ref().map(|x| ActorV1 {
            kind: x.kind.clone(),
            id: x.id.clone(),
            name: x.name.clone(),
            email: x.email.clone(),
        }),
        target: a.target.as_ref().map(|t| (t.kind.clone(), t.id.clone())),
        context: a.context.clone(),
        summary: a.summary.clone(),
        reason: a.reason.clone(),
        changes: json_text(&a.changes),
        metadata: json_text(&a.metadata),
        display: a
            .display
            .as_ref()
            .map(|d| (d.template.clone(), d.data.to_string())),
    };
    bincode::serde::encode_into_std_write(&r, out, config())
        .map_err(|e| Error::Corrupt(format!("encoding record: {e}")))?;
    Ok(())
}

/// Decodes a stored record into an owned activity; `pos` comes from its key. Damaged bytes are
/// an error, never a panic. This is [`view`] followed by [`ActivityRef::to_activity`].
pub(crate) fn decode(pos: Pos, bytes: &[u8]) -> Result<Activity> {
    view(pos, bytes)?.to_activity()
}

/// Reads a stored record in place: every string of the view borrows `bytes`, nothing is
/// allocated (but an error's message), and every string has been checked to be UTF-8. The JSON
/// fields are the compact text `encode` wrote, not parsed here (see [`ActivityRef`]).
///
/// The V1 layout is bincode 2's standard configuration of `RecordV1`: varint lengths, `0`/`1`
/// option tags, strings as length-prefixed UTF-8. It is read directly rather than through serde;
/// `decode_serde` in the tests is the reference it is checked against.
pub(crate) fn view(pos: Pos, bytes: &[u8]) -> Result<ActivityRef<'_>> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::Corrupt("empty record".into()))?;
    let (seq, recorded_at, body) = match version {
        V2 => {
            let (head, body) = body
                .split_at_checked(V2_HEADER)
                .ok_or_else(|| Error::Corrupt(format!("record at {}: header", pos.id)))?;
            let (mut s, mut r) = ([0u8; 8], [0u8; 8]);
            s.copy_from_slice(&head[..8]);
            r.copy_from_slice(&head[8..]);
            (u64::from_be_bytes(s), i64::from_be_bytes(r), body)
        }
        V1 => (0, pos.time, body),
        _ => return Err(Error::Corrupt(format!("unknown record version {version}"))),
    };
    if body.len() > DECODE_LIMIT {
        return Err(Error::Corrupt(format!("record at {}: too large", pos.id)));
    }
    let bad = |what: &str| Error::Corrupt(format!("record at {}: {what}", pos.id));
    let mut r = Reader::new(body);
    let action = r.str().ok_or_else(|| bad("action"))?;
    let resource_type = r.str().ok_or_else(|| bad("resource type"))?;
    let resource_id = r.opt_str().ok_or_else(|| bad("resource id"))?;
    let actor = match r.tag().ok_or_else(|| bad("actor"))? {
        false => None,
        true => Some(ActorRef {
            kind: r.str().ok_or_else(|| bad("actor type"))?,
            id: r.opt_str().ok_or_else(|| bad("actor id"))?,
            name: r.opt_str().ok_or_else(|| bad("actor name"))?,
            email: r.opt_str().ok_or_else(|| bad("actor email"))?,
        }),
    };
    let target = match r.tag().ok_or_else(|| bad("target"))? {
        false => None,
        true => Some(ObjRef {
            kind: r.str().ok_or_else(|| bad("target type"))?,
            id: r.opt_str().ok_or_else(|| bad("target id"))?,
        }),
    };
    let n = r.len().ok_or_else(|| bad("context"))?;
    // Each entry takes at least two bytes, so a length past that is damage.
    if n > r.buf.len() / 2 {
        return Err(bad("context length"));
    }
    let context = r;
    for _ in 0..n {
        r.str().ok_or_else(|| bad("context key"))?;
        r.str().ok_or_else(|| bad("context value"))?;
    }
    let summary = r.opt_str().ok_or_else(|| bad("summary"))?;
    let reason = r.opt_str().ok_or_else(|| bad("reason"))?;
    let changes = r.opt_str().ok_or_else(|| bad("changes"))?;
    let metadata = r.opt_str().ok_or_else(|| bad("metadata"))?;
    let display = match r.tag().ok_or_else(|| bad("display"))? {
        false => None,
        true => Some(DisplayRef {
            template: r.str().ok_or_else(|| bad("display template"))?,
            data: r.str().ok_or_else(|| bad("display data"))?,
        }),
    };
    if !r.buf.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(ActivityRef {
        id: pos.id,
        time: pos.time,
        seq,
        recorded_at,
        action,
        resource: ObjRef {
            kind: resource_type,
            id: resource_id,
        },
        actor,
        target,
        context: ContextRef(Pairs::Stored {
            at: context,
            len: n,
        }),
        summary,
        reason,
        changes,
        metadata,
        display,
    })
}

/// A stored activity read in place ([`Record::view`], [`crate::Store::scan`]): the same fields as
/// [`Activity`], every string borrowed from the stored bytes. `changes`, `metadata` and
/// `display.data` are the compact JSON text of an object, as written from a parsed
/// `serde_json::Value` when the activity was appended; they are copied as they are, not parsed
/// (`to_activity` parses them; `Store::verify` does so for every record).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRef<'a> {
    /// The id.
    pub id: Uuid,
    /// `created_at` in microseconds since the Unix epoch (as the key holds it; see
    /// [`ActivityRef::created_at`]).
    pub time: i64,
    /// The record's place in its tenant's log: dense from 1 in commit order.
    pub seq: u64,
    /// When the store committed it, in microseconds since the Unix epoch (see
    /// [`ActivityRef::recorded_at`]).
    pub recorded_at: i64,
    /// What was done.
    pub action: &'a str,
    /// What it was done to.
    pub resource: ObjRef<'a>,
    /// Who did it, if recorded.
    pub actor: Option<ActorRef<'a>>,
    /// What the action was aimed at, besides the resource.
    pub target: Option<ObjRef<'a>>,
    /// Sorted by key, keys unique (as appends validate them).
    pub context: ContextRef<'a>,
    /// A line of text about it.
    pub summary: Option<&'a str>,
    /// Why it was done.
    pub reason: Option<&'a str>,
    /// JSON text of an object.
    pub changes: Option<&'a str>,
    /// JSON text of an object.
    pub metadata: Option<&'a str>,
    /// How to present it.
    pub display: Option<DisplayRef<'a>>,
}

/// A borrowed [`ObjectRef`]: the resource or the target of an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjRef<'a> {
    /// The type.
    pub kind: &'a str,
    /// The id, if any.
    pub id: Option<&'a str>,
}

/// A borrowed [`Actor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorRef<'a> {
    /// The actor's type.
    pub kind: &'a str,
    /// The actor's id.
    pub id: Option<&'a str>,
    /// The actor's display name.
    pub name: Option<&'a str>,
    /// The actor's email address.
    pub email: Option<&'a str>,
}

/// A borrowed [`DisplayText`]; `data` is the JSON text of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayRef<'a> {
    /// The message template.
    pub template: &'a str,
    /// The JSON text of the template's data (an object).
    pub data: &'a str,
}

/// The context entries of an [`ActivityRef`], read in place, in stored order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextRef<'a>(Pairs<'a>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pairs<'a> {
    /// `len` key/value string pairs in V1's encoding at the reader's position, checked by
    /// `view`.
    Stored {
        at: Reader<'a>,
        len: usize,
    },
    Owned(&'a [(String, String)]),
}

impl<'a> ContextRef<'a> {
    /// A view of owned entries (for writers that hold an [`Activity`] or build one).
    pub fn from_pairs(pairs: &'a [(String, String)]) -> ContextRef<'a> {
        ContextRef(Pairs::Owned(pairs))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        match self.0 {
            Pairs::Stored { len, .. } => len,
            Pairs::Owned(p) => p.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in stored order (sorted by key).
    pub fn iter(&self) -> ContextIter<'a> {
        ContextIter(match self.0 {
            Pairs::Stored { at, len } => PairsIter::Stored { r: at, left: len },
            Pairs::Owned(p) => PairsIter::Owned(p.iter()),
        })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for ContextRef<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = ContextIter<'a>;
    fn into_iter(self) -> ContextIter<'a> {
        self.iter()
    }
}

/// The entries of a [`ContextRef`].
#[derive(Debug, Clone)]
pub struct ContextIter<'a>(PairsIter<'a>);

#[derive(Debug, Clone)]
enum PairsIter<'a> {
    Stored { r: Reader<'a>, left: usize },
    Owned(std::slice::Iter<'a, (String, String)>),
}

impl<'a> Iterator for ContextIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match &mut self.0 {
            // `view` read these very bytes with this reader and found `left` good pairs, so this
            // cannot stop early; if it ever did, the iteration would end, not panic.
            PairsIter::Stored { r, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let pair = r.str().zip(r.str());
                if pair.is_none() {
                    *left = 0;
                }
                pair
            }
            PairsIter::Owned(it) => it.next().map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            PairsIter::Stored { left, .. } => (0, Some(*left)),
            PairsIter::Owned(it) => it.size_hint(),
        }
    }
}

impl ActivityRef<'_> {
    /// When it happened (microsecond precision; times outside chrono's range saturate).
    pub fn created_at(&self) -> DateTime<Utc> {
        crate::model::micros_to_time(self.time)
    }

    /// When the store committed it (microsecond precision).
    pub fn recorded_at(&self) -> DateTime<Utc> {
        crate::model::micros_to_time(self.recorded_at)
    }

    /// The value of `context[key]`, if present.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context.get(key)
    }

    /// The owned activity, its JSON fields parsed. Fails only on damaged JSON text.
    pub fn to_activity(&self) -> Result<Activity> {
        let json = |s: Option<&str>| -> Result<Option<serde_json::Value>> {
            s.map(|s| {
                serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored JSON: {e}")))
            })
            .transpose()
        };
        let string = |s: Option<&str>| s.map(str::to_owned);
        Ok(Activity {
            id: self.id,
            seq: self.seq,
            created_at: self.created_at(),
            recorded_at: self.recorded_at(),
            action: self.action.to_owned(),
            resource: ObjectRef {
                kind: self.resource.kind.to_owned(),
                id: string(self.resource.id),
            },
            actor: self.actor.map(|x| Actor {
                kind: x.kind.to_owned(),
                id: string(x.id),
                name: string(x.name),
                email: string(x.email),
            }),
            target: self.target.map(|t| ObjectRef {
                kind: t.kind.to_owned(),
                id: string(t.id),
            }),
            context: self
                .context
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            summary: string(self.summary),
            reason: string(self.reason),
            changes: json(self.changes)?,
            metadata: json(self.metadata)?,
            display: self
                .display
                .map(|d| -> Result<DisplayText> {
                    let data = serde_json::from_str(d.data)
                        .map_err(|e| Error::Corrupt(format!("stored display data: {e}")))?;
                    Ok(DisplayText {
                        template: d.template.to_owned(),
                        data,
                    })
                })
                .transpose()?,
        })
    }
}

/// One stored activity as the store read it: its position and its stored bytes (shared with
/// the engine's buffer, not copied). [`Store::query_records`](crate::Store::query_records)
/// returns pages of these, so a caller can write them out from the stored bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pos: Pos,
    bytes: sled::IVec,
}

impl Record {
    pub(crate) fn new(pos: Pos, bytes: sled::IVec) -> Record {
        Record { pos, bytes }
    }

    /// A record of bytes that were never stored (for tests of writers).
    #[cfg(test)]
    pub(crate) fn from_bytes(pos: Pos, bytes: &[u8]) -> Record {
        Record::new(pos, sled::IVec::from(bytes))
    }

    pub(crate) fn pos(&self) -> Pos {
        self.pos
    }

    /// The activity's id.
    pub fn id(&self) -> Uuid {
        self.pos.id
    }

    /// The activity's time.
    pub fn created_at(&self) -> DateTime<Utc> {
        crate::model::micros_to_time(self.pos.time)
    }

    /// The record's `seq` (read from its header; 0 if the bytes are damaged, which `view`
    /// reports).
    pub fn seq(&self) -> u64 {
        match self.bytes.split_first() {
            Some((&V2, rest)) if rest.len() >= 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[..8]);
                u64::from_be_bytes(b)
            }
            _ => 0,
        }
    }

    /// Bytes of the stored value (a size hint for writers).
    pub fn stored_len(&self) -> usize {
        self.bytes.len()
    }

    /// The record read in place. Fails only on damaged bytes.
    pub fn view(&self) -> Result<ActivityRef<'_>> {
        view(self.pos, &self.bytes)
    }

    /// The owned activity.
    pub fn to_activity(&self) -> Result<Activity> {
        decode(self.pos, &self.bytes)
    }
}

/// A cursor over V1 record bytes. Every method returns `None` on damaged or short input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reader<'a> {
    buf: &'a [u8],
    /// `buf` as text, while it is all UTF-8 from here on (as a record is when every string is
    /// shorter than 128 bytes, so that every length is one ASCII byte). Checking the bytes once
    /// is far cheaper than checking a dozen short strings one by one: a string is then split off
    /// this text, and checked on its own only where that fails (a length byte that is not ASCII
    /// ends the text, a string that does not end on a character boundary cannot be split off).
    text: Option<&'a str>,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            text: std::str::from_utf8(buf).ok(),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        self.text = self.text.and_then(|t| t.get(n..));
        Some(head)
    }

    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// bincode's varint: below 251 one byte; 251, 252, 253 announce a u16, u32, u64 (LE).
    #[inline(always)]
    fn len(&mut self) -> Option<usize> {
        let v = match self.byte()? {
            b @ 0..=250 => u64::from(b),
            251 => u64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?)),
            252 => u64::from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            253 => u64::from_le_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        usize::try_from(v).ok()
    }

    /// An option tag: 0 for `None`, 1 for `Some`.
    #[inline(always)]
    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    #[inline(always)]
    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        if let Some((s, rest)) = self.text.and_then(|t| t.split_at_checked(n)) {
            self.text = Some(rest);
            self.buf = rest.as_bytes();
            return Some(s);
        }
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// `Some(None)` for an absent value, `None` for damage.
    #[inline(always)]
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.tag()? {
            false => Some(None),
            true => self.str().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn sample() -> Activity {
        Activity {
            id: Uuid::from_u128(42),
            seq: 9,
            created_at: crate::model::micros_to_time(1_700_000_000_123_456),
            recorded_at: crate::model::micros_to_time(1_700_000_000_223_456),
            action: "invoice.sent".into(),
            resource: ObjectRef {
                kind: "Invoice".into(),
                id: Some("inv\0_1".into()),
            },
            actor: Some(Actor {
                kind: "user".into(),
                id: Some("u1".into()),
                name: Some("Ana".into()),
                email: None,
            }),
            target: Some(ObjectRef {
                kind: "Customer".into(),
                id: None,
            }),
            context: vec![("origin".into(), "API".into())],
            summary: Some("sent".into()),
            reason: None,
            changes: Some(serde_json::json!({"status": ["draft", "sent"]})),
            metadata: Some(serde_json::json!({"n": 1.5, "deep": {"x": [null, true]}})),
            display: Some(DisplayText {
                template: "{{user}} sent".into(),
                data: serde_json::json!({}),
            }),
        }
    }

    /// The serde path the direct reader replaced: the reference it must agree with.
    fn decode_serde(pos: Pos, bytes: &[u8]) -> Result<Activity> {
        let (&version, body) = bytes
            .split_first()
            .ok_or_else(|| Error::Corrupt("empty record".into()))?;
        let (seq, recorded_at, body) = match version {
            V1 => (0, pos.time, body),
            V2 if body.len() >= V2_HEADER => (
                u64::from_be_bytes(body[..8].try_into().unwrap()),
                i64::from_be_bytes(body[8..16].try_into().unwrap()),
                &body[V2_HEADER..],
            ),
            _ => return Err(Error::Corrupt("version".into())),
        };
        let (r, used): (RecordV1, usize) = bincode::serde::decode_from_slice(body, config())
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        if used != body.len() {
            return Err(Error::Corrupt("trailing bytes".into()));
        }
        Ok(Activity {
            id: pos.id,
            seq,
            created_at: crate::model::micros_to_time(pos.time),
            recorded_at: crate::model::micros_to_time(recorded_at),
            action: r.action,
            resource: ObjectRef {
                kind: r.resource_type,
                id: r.resource_id,
            },
            actor: r.actor.map(|x| Actor {
                kind: x.kind,
                id: x.id,
                name: x.name,
                email: x.email,
            }),
            target: r.target.map(|(kind, id)| ObjectRef { kind, id }),
            context: r.context,
            summary: r.summary,
            reason: r.reason,
            changes: json_value(r.changes)?,
            metadata: json_value(r.metadata)?,
            display: r
                .display
                .map(|(template, data)| -> Result<DisplayText> {
                    Ok(DisplayText {
                        template,
                        data: serde_json::from_str(&data)
                            .map_err(|e| Error::Corrupt(e.to_string()))?,
                    })
                })
                .transpose()?,
        })
    }

    fn arb_string() -> impl Strategy<Value = String> {
        // Lengths across bincode's varint boundaries (250/251, 65535/65536).
        prop_oneof![
            ".{0,8}",
            (240usize..300).prop_map(|n| "é".repeat(n / 2) + &"x".repeat(n % 2)),
            (65_530usize..65_540).prop_map(|n| "y".repeat(n)),
        ]
    }

    fn arb_activity() -> impl Strategy<Value = Activity> {
        let opt = || proptest::option::of(arb_string());
        (
            (arb_string(), arb_string(), opt()),
            proptest::option::of((arb_string(), opt(), opt(), opt())),
            proptest::option::of((arb_string(), opt())),
            prop::collection::vec((arb_string(), arb_string()), 0..4),
            (opt(), opt(), any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |((action, rt, rid), actor, target, context, (summary, reason, c, m, d))| {
                    Activity {
                        id: Uuid::from_u128(5),
                        seq: 5,
                        created_at: crate::model::micros_to_time(1_700_000_000_000_001),
                        recorded_at: crate::model::micros_to_time(1_700_000_000_000_002),
                        action,
                        resource: ObjectRef { kind: rt, id: rid },
                        actor: actor.map(|(kind, id, name, email)| Actor {
                            kind,
                            id,
                            name,
                            email,
                        }),
                        target: target.map(|(kind, id)| ObjectRef { kind, id }),
                        context,
                        summary,
                        reason,
                        changes: c.then(|| serde_json::json!({"a": [1, "b"]})),
                        metadata: m.then(|| serde_json::json!({"n": 2.5})),
                        display: d.then(|| DisplayText {
                            template: "t".into(),
                            data: serde_json::json!({"x": null}),
                        }),
                    }
                },
            )
    }

    #[test]
    fn round_trip() {
        let a = sample();
        let pos = Pos {
            time: a.created_at.timestamp_micros(),
            id: a.id,
        };
        assert_eq!(decode(pos, &encode(&a).unwrap()).unwrap(), a);
    }

    #[test]
    fn rejects_unknown_version_and_trailing_bytes() {
        let a = sample();
        let pos = Pos { time: 0, id: a.id };
        let mut bytes = encode(&a).unwrap();
        bytes.push(0);
        assert!(decode(pos, &bytes).is_err());
        bytes[0] = 9;
        assert!(decode(pos, &bytes).is_err());
        assert!(decode(pos, &[]).is_err());
    }

    proptest! {
        /// Damaged stored bytes decode to an error, never a panic or a huge allocation.
        #[test]
        fn damaged_bytes_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                                     cut in any::<prop::sample::Index>()) {
            let a = sample();
            let pos = Pos { time: 0, id: a.id };
            let mut bytes = encode(&a).unwrap();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            let _ = decode(pos, &bytes);
            let n = cut.index(bytes.len());
            let _ = decode(pos, &bytes[..n]);
        }

        /// The direct reader decodes exactly what the serde reference decodes.
        #[test]
        fn direct_reader_matches_serde(a in arb_activity()) {
            let pos = Pos { time: a.created_at.timestamp_micros(), id: a.id };
            let bytes = encode(&a).unwrap();
            prop_assert_eq!(decode(pos, &bytes).unwrap(), a.clone());
            prop_assert_eq!(decode_serde(pos, &bytes).unwrap(), a);
        }

        /// On damaged bytes both readers agree on whether they decode, and on what.
        #[test]
        fn direct_reader_agrees_on_damage(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let a = sample();
            let pos = Pos { time: 0, id: a.id };
            let mut bytes = encode(&a).unwrap();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            match (decode(pos, &bytes), decode_serde(pos, &bytes)) {
                (Ok(x), Ok(y)) => prop_assert_eq!(x, y),
                (Err(_), Err(_)) => {}
                (x, y) => prop_assert!(false, "direct {:?} vs serde {:?}", x.is_ok(), y.is_ok()),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = view(Pos { time: i64::MIN, id: Uuid::nil() }, &bytes);
            let _ = decode(Pos { time: i64::MIN, id: Uuid::nil() }, &bytes);
        }

        /// The view holds every field as stored: the same strings, the JSON as `encode`'s text.
        #[test]
        fn view_reads_every_field_in_place(a in arb_activity()) {
            let pos = Pos { time: a.created_at.timestamp_micros(), id: a.id };
            let bytes = encode(&a).unwrap();
            let v = view(pos, &bytes).unwrap();
            prop_assert_eq!(v.id, a.id);
            prop_assert_eq!(v.created_at(), a.created_at);
            prop_assert_eq!(v.action, a.action.as_str());
            prop_assert_eq!(v.resource.kind, a.resource.kind.as_str());
            prop_assert_eq!(v.resource.id, a.resource.id.as_deref());
            prop_assert_eq!(v.actor.map(|x| (x.kind, x.id, x.name, x.email)), a.actor.as_ref().map(|x| {
                (x.kind.as_str(), x.id.as_deref(), x.name.as_deref(), x.email.as_deref())
            }));
            prop_assert_eq!(v.target.map(|t| (t.kind, t.id)), a.target.as_ref().map(|t| (t.kind.as_str(), t.id.as_deref())));
            let ctx: Vec<(&str, &str)> = v.context.iter().collect();
            let want: Vec<(&str, &str)> = a.context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(ctx, want);
            prop_assert_eq!(v.context.len(), a.context.len());
            for (k, _) in &a.context {
                // Keys may repeat in these random activities; the first one is found.
                prop_assert_eq!(v.context_value(k), a.context.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str()));
            }
            prop_assert_eq!(v.summary, a.summary.as_deref());
            prop_assert_eq!(v.reason, a.reason.as_deref());
            prop_assert_eq!(v.changes.map(str::to_owned), json_text(&a.changes));
            prop_assert_eq!(v.metadata.map(str::to_owned), json_text(&a.metadata));
            prop_assert_eq!(v.display.map(|d| (d.template.to_owned(), d.data.to_owned())),
                a.display.as_ref().map(|d| (d.template.clone(), d.data.to_string())));
            prop_assert_eq!(v.to_activity().unwrap(), a);
        }

        /// On damaged bytes the view refuses exactly what decoding refuses, but for JSON text
        /// that is not JSON (which only decoding parses).
        #[test]
        fn view_and_decode_agree_on_damage(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let a = sample();
            let pos = Pos { time: 0, id: a.id };
            let mut bytes = encode(&a).unwrap();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            match (view(pos, &bytes), decode(pos, &bytes)) {
                (Ok(v), Ok(d)) => prop_assert_eq!(v.to_activity().unwrap(), d),
                (Ok(v), Err(Error::Corrupt(m))) => {
                    prop_assert!(m.contains("JSON") || m.contains("display data"), "{}", m);
                    prop_assert!(v.to_activity().is_err());
                }
                (Err(_), Err(_)) => {}
                (v, d) => prop_assert!(false, "view {:?} vs decode {:?}", v.is_ok(), d.is_ok()),
            }
        }
    }

    #[test]
    fn context_of_owned_pairs() {
        let pairs = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        let c = ContextRef::from_pairs(&pairs);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("c"), None);
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "2")]
        );
        assert!(ContextRef::from_pairs(&[]).is_empty());
    }
}
