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
pub(crate) fn decode(pos: Pos, bytes: &[u8]) -> Result<Activity> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::Corrupt("empty record".into()))?;
    if version != V1 {
        return Err(Error::Corrupt(format!("unknown record version {version}")));
    }
    let (r, used): (RecordV1, usize) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| Error::Corrupt(format!("record at {}: {e}", pos.id)))?;
    if used != body.len() {
        return Err(Error::Corrupt(format!(
            "record at {}: trailing bytes",
            pos.id
        )));
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
                let data = serde_json::from_str(&data)
                    .map_err(|e| Error::Corrupt(format!("stored display data: {e}")))?;
                Ok(Display { template, data })
            })
            .transpose()?,
    })
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

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(Pos { time: i64::MIN, id: Uuid::nil() }, &bytes);
        }
    }
}
