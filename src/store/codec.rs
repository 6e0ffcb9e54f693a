//! The on-disk encoding of a record: one version byte, then bincode 2 of a private struct that
//! mirrors `Activity` minus the time and id (the key holds those). JSON objects are kept as JSON
//! text, since bincode cannot carry self-describing values.
//!
//! **Invariant:** a layout change adds a new version byte and keeps decoding the old ones.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Activity, Actor, Display, ObjectRef};
use crate::store::keys::Pos;

const V1: u8 = 1;
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

/// Encodes the stored part of an activity.
pub(crate) fn encode(a: &Activity) -> Result<Vec<u8>> {
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
    let mut out = vec![V1];
    bincode::serde::encode_into_std_write(&r, &mut out, config())
        .map_err(|e| Error::Corrupt(format!("encoding record: {e}")))?;
    Ok(out)
}

/// Decodes a stored record; `pos` comes from its key. Damaged bytes are an error, never a panic.
///
/// This reads the V1 layout directly (bincode 2's standard configuration: varint lengths, `0`/`1`
/// option tags, strings as length-prefixed UTF-8) instead of going through serde: a whole-log scan
/// spends most of its time here, and the direct reader moves each string out of the stored bytes
/// with one allocation and no visitor calls. `decode_serde` in the tests is the reference it is
/// checked against.
pub(crate) fn decode(pos: Pos, bytes: &[u8]) -> Result<Activity> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::Corrupt("empty record".into()))?;
    if version != V1 {
        return Err(Error::Corrupt(format!("unknown record version {version}")));
    }
    if body.len() > DECODE_LIMIT {
        return Err(Error::Corrupt(format!("record at {}: too large", pos.id)));
    }
    let bad = |what: &str| Error::Corrupt(format!("record at {}: {what}", pos.id));
    let mut r = Reader { buf: body };
    let action = r.string().ok_or_else(|| bad("action"))?;
    let resource_type = r.string().ok_or_else(|| bad("resource type"))?;
    let resource_id = r.opt_string().ok_or_else(|| bad("resource id"))?;
    let actor = match r.tag().ok_or_else(|| bad("actor"))? {
        false => None,
        true => Some(Actor {
            kind: r.string().ok_or_else(|| bad("actor type"))?,
            id: r.opt_string().ok_or_else(|| bad("actor id"))?,
            name: r.opt_string().ok_or_else(|| bad("actor name"))?,
            email: r.opt_string().ok_or_else(|| bad("actor email"))?,
        }),
    };
    let target = match r.tag().ok_or_else(|| bad("target"))? {
        false => None,
        true => Some(ObjectRef {
            kind: r.string().ok_or_else(|| bad("target type"))?,
            id: r.opt_string().ok_or_else(|| bad("target id"))?,
        }),
    };
    let n = r.len().ok_or_else(|| bad("context"))?;
    // Each entry takes at least two bytes, so a length past that is damage, not a big allocation.
    if n > r.buf.len() / 2 {
        return Err(bad("context length"));
    }
    let mut context = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.string().ok_or_else(|| bad("context key"))?;
        let v = r.string().ok_or_else(|| bad("context value"))?;
        context.push((k, v));
    }
    let summary = r.opt_string().ok_or_else(|| bad("summary"))?;
    let reason = r.opt_string().ok_or_else(|| bad("reason"))?;
    let changes = r.opt_str().ok_or_else(|| bad("changes"))?;
    let metadata = r.opt_str().ok_or_else(|| bad("metadata"))?;
    let display = match r.tag().ok_or_else(|| bad("display"))? {
        false => None,
        true => {
            let template = r.string().ok_or_else(|| bad("display template"))?;
            let data = r.str().ok_or_else(|| bad("display data"))?;
            Some((template, data))
        }
    };
    if !r.buf.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let json = |s: Option<&str>| -> Result<Option<serde_json::Value>> {
        s.map(|s| serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored JSON: {e}"))))
            .transpose()
    };
    Ok(Activity {
        id: pos.id,
        created_at: crate::model::micros_to_time(pos.time),
        action,
        resource: ObjectRef {
            kind: resource_type,
            id: resource_id,
        },
        actor,
        target,
        context,
        summary,
        reason,
        changes: json(changes)?,
        metadata: json(metadata)?,
        display: display
            .map(|(template, data)| -> Result<Display> {
                let data = serde_json::from_str(data)
                    .map_err(|e| Error::Corrupt(format!("stored display data: {e}")))?;
                Ok(Display { template, data })
            })
            .transpose()?,
    })
}

/// A cursor over V1 record bytes. Every method returns `None` on damaged or short input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// bincode's varint: below 251 one byte; 251, 252, 253 announce a u16, u32, u64 (LE).
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
    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// `Some(None)` for an absent value, `None` for damage.
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.tag()? {
            false => Some(None),
            true => self.str().map(Some),
        }
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        self.opt_str().map(|o| o.map(str::to_owned))
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
            created_at: crate::model::micros_to_time(1_700_000_000_123_456),
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
            display: Some(Display {
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
        if version != V1 {
            return Err(Error::Corrupt("version".into()));
        }
        let (r, used): (RecordV1, usize) = bincode::serde::decode_from_slice(body, config())
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        if used != body.len() {
            return Err(Error::Corrupt("trailing bytes".into()));
        }
        Ok(Activity {
            id: pos.id,
            created_at: crate::model::micros_to_time(pos.time),
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
                .map(|(template, data)| -> Result<Display> {
                    Ok(Display {
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
                        created_at: crate::model::micros_to_time(1_700_000_000_000_001),
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
                        display: d.then(|| Display {
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
            let _ = decode(Pos { time: i64::MIN, id: Uuid::nil() }, &bytes);
        }
    }
}
