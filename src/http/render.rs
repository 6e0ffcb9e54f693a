//! API v1's activity JSON written straight from stored records into one pre-sized buffer: the
//! bytes `serde_json` writes for [`ActivityOut`](super::wire::ActivityOut) and
//! [`PageOut`](super::wire::PageOut), without building either. A record is read in place
//! ([`ActivityRef`]); its strings are escaped as they are copied, its JSON fields (compact text,
//! see `store::codec`) are copied as they are.
//!
//! **Invariant:** [`activity`] writes exactly the bytes of
//! `serde_json::to_vec(&ActivityOut::from(activity))`, and [`page`] those of `PageOut`; the
//! proptests below render random activities (unicode, escapes, control characters, absent and
//! empty fields, nested JSON with floats) both ways and compare bytes. `wire.rs` stays the
//! definition of the shape.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::{ActivityRef, ContextRef, Page, Record};

/// Bytes of JSON per activity beyond its stored bytes (field names, nulls, id and time), so
/// that one allocation usually holds a whole page.
const PER_ITEM: usize = 320;

/// A page as `{"data": [...], "pagination": {...}}`. Fails only on a damaged record.
pub fn page(p: &Page<Record>) -> crate::Result<Vec<u8>> {
    let items: usize = p
        .items
        .iter()
        .map(|r| r.stored_len().saturating_add(PER_ITEM))
        .fold(0, usize::saturating_add);
    let mut out = Vec::with_capacity(items.saturating_add(256));
    out.extend_from_slice(b"{\"data\":[");
    for (i, r) in p.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        activity(&mut out, &r.view()?);
    }
    out.extend_from_slice(b"],\"pagination\":{\"next_cursor\":");
    opt_str(&mut out, p.next_cursor.as_deref());
    out.extend_from_slice(b",\"prev_cursor\":");
    opt_str(&mut out, p.prev_cursor.as_deref());
    out.extend_from_slice(if p.has_more {
        b",\"has_more\":true,\"total\":"
    } else {
        b",\"has_more\":false,\"total\":"
    });
    match p.total {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// Capacity for one NDJSON line of a record.
pub fn line_capacity(r: &Record) -> usize {
    r.stored_len().saturating_add(PER_ITEM)
}

/// One activity as API v1 serves it, followed by a newline (an export line).
pub fn ndjson_line(out: &mut Vec<u8>, a: &ActivityRef<'_>) {
    activity(out, a);
    out.push(b'\n');
}

/// One activity as API v1 serves it.
pub fn activity(out: &mut Vec<u8>, a: &ActivityRef<'_>) {
    out.extend_from_slice(b"{\"id\":\"");
    let mut buf = uuid::Uuid::encode_buffer();
    out.extend_from_slice(a.id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.extend_from_slice(b"\",\"seq\":");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", a.seq);
    out.extend_from_slice(b",\"created_at\":\"");
    time(out, &a.created_at());
    out.extend_from_slice(b"\",\"recorded_at\":\"");
    time(out, &a.recorded_at());
    out.extend_from_slice(b"\",\"action\":");
    json_str(out, a.action);
    out.extend_from_slice(b",\"resource\":");
    object_ref(out, a.resource.kind, a.resource.id);
    out.extend_from_slice(b",\"actor\":");
    match &a.actor {
        None => out.extend_from_slice(b"null"),
        Some(x) => {
            out.extend_from_slice(b"{\"type\":");
            json_str(out, x.kind);
            out.extend_from_slice(b",\"id\":");
            opt_str(out, x.id);
            out.extend_from_slice(b",\"name\":");
            opt_str(out, x.name);
            out.extend_from_slice(b",\"email\":");
            opt_str(out, x.email);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"target\":");
    match &a.target {
        None => out.extend_from_slice(b"null"),
        Some(t) => object_ref(out, t.kind, t.id),
    }
    out.extend_from_slice(b",\"context\":");
    context(out, a.context);
    out.extend_from_slice(b",\"summary\":");
    opt_str(out, a.summary);
    out.extend_from_slice(b",\"reason\":");
    opt_str(out, a.reason);
    out.extend_from_slice(b",\"changes\":");
    opt_json(out, a.changes);
    out.extend_from_slice(b",\"metadata\":");
    opt_json(out, a.metadata);
    out.extend_from_slice(b",\"display\":");
    match &a.display {
        None => out.extend_from_slice(b"null"),
        Some(d) => {
            out.extend_from_slice(b"{\"template\":");
            json_str(out, d.template);
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(d.data.as_bytes());
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// The context as `ActivityOut` has it: a `BTreeMap`, so keys sorted and, were one repeated,
/// the last value kept. Stored context is sorted with unique keys (appends validate it), which
/// is written as it comes; anything else takes the map's way.
fn context(out: &mut Vec<u8>, c: ContextRef<'_>) {
    let start = out.len();
    out.push(b'{');
    let mut last: Option<&str> = None;
    for (i, (k, v)) in c.iter().enumerate() {
        if last.is_some_and(|l| l >= k) {
            out.truncate(start);
            let map: BTreeMap<&str, &str> = c.iter().collect();
            out.push(b'{');
            for (i, (k, v)) in map.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, k);
                out.push(b':');
                json_str(out, v);
            }
            out.push(b'}');
            return;
        }
        last = Some(k);
        if i > 0 {
            out.push(b',');
        }
        json_str(out, k);
        out.push(b':');
        json_str(out, v);
    }
    out.push(b'}');
}

/// `{"type": kind, "id": id}`: the shape of `resource` and `target`.
fn object_ref(out: &mut Vec<u8>, kind: &str, id: Option<&str>) {
    out.extend_from_slice(b"{\"type\":");
    json_str(out, kind);
    out.extend_from_slice(b",\"id\":");
    opt_str(out, id);
    out.push(b'}');
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_json(out: &mut Vec<u8>, s: Option<&str>) {
    out.extend_from_slice(s.unwrap_or("null").as_bytes());
}

/// What `serde_json` writes for a byte of a string: 0 for the byte itself, else the letter
/// after the backslash (`u` for `\u00XX`). The same table as serde_json's.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Does any byte need escaping? Eight bytes at a time: a byte below 0x20, a `"` or a `\\`
/// (the word tricks are exact about whether such a byte exists).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
        if control
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| ESCAPE[usize::from(b)] != 0)
}

/// A JSON string, escaped as `serde_json` escapes it.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A time as `wire::format_time` writes it (RFC 3339, UTC, microseconds, `Z`), without the
/// intermediate `String`. Years outside 0–9999 (which chrono writes with a sign) take chrono's
/// own path.
fn time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    // The naive UTC value: `DateTime<Utc>`'s own accessors add the (zero) offset each time.
    let t = t.naive_utc();
    let year = t.year();
    let nanos = t.nanosecond();
    let (Ok(year), true) = (u32::try_from(year), nanos < 1_000_000_000) else {
        out.extend_from_slice(super::wire::format_time(&t.and_utc()).as_bytes());
        return;
    };
    if year > 9999 {
        out.extend_from_slice(super::wire::format_time(&t.and_utc()).as_bytes());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut b[0..4], year);
    put_digits(&mut b[5..7], t.month());
    put_digits(&mut b[8..10], t.day());
    put_digits(&mut b[11..13], t.hour());
    put_digits(&mut b[14..16], t.minute());
    put_digits(&mut b[17..19], t.second());
    put_digits(&mut b[20..26], nanos / 1000);
    out.extend_from_slice(&b);
}

/// Writes `v` as decimal digits right-aligned into `dst` (zero-padded; higher digits dropped).
fn put_digits(dst: &mut [u8], mut v: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::wire::{ActivityOut, PageOut};
    use crate::model::{Activity, Actor, DisplayText, ObjectRef};
    use crate::store::codec;
    use crate::store::keys::Pos;
    use proptest::prelude::*;
    use serde_json::Value;
    use uuid::Uuid;

    /// Today's path: stored bytes decoded into an owned activity, then serialized by serde.
    fn via_serde(a: &Activity) -> Vec<u8> {
        serde_json::to_vec(&ActivityOut::from(a.clone())).unwrap()
    }

    fn stored(a: &Activity) -> (Pos, Vec<u8>) {
        let pos = Pos {
            time: a.created_at.timestamp_micros(),
            id: a.id,
        };
        (pos, codec::encode(a).unwrap())
    }

    fn via_view(pos: Pos, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        activity(&mut out, &codec::view(pos, bytes).unwrap());
        out
    }

    /// Strings with everything JSON escapes or passes through: quotes, backslashes, every
    /// control character, DEL, multi-byte UTF-8 and astral characters, and empty strings.
    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z_.]{1,12}",
            "[\\x00-\\x1f\"\\\\/\\x7f]{0,6}",
            "\\PC{0,10}",
            any::<String>(),
            prop::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\\'),
                    Just('\u{0}'),
                    Just('\u{1f}'),
                    Just('\u{7f}'),
                    Just('\u{2028}'),
                    Just('é'),
                    Just('😀'),
                    Just('\n'),
                    any::<char>()
                ],
                0..8
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            arb_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((arb_text(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        prop::collection::vec((arb_text(), arb_json()), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    fn arb_activity() -> impl Strategy<Value = Activity> {
        let opt = || proptest::option::of(arb_text());
        (
            (any::<u128>(), any::<i64>(), arb_text(), arb_text(), opt()),
            proptest::option::of((arb_text(), opt(), opt(), opt())),
            proptest::option::of((arb_text(), opt())),
            prop::collection::btree_map(arb_text(), arb_text(), 0..5),
            (opt(), opt()),
            (
                proptest::option::of(arb_object()),
                proptest::option::of(arb_object()),
                proptest::option::of((arb_text(), arb_object())),
            ),
        )
            .prop_map(
                |(
                    (id, time, action, rt, rid),
                    actor,
                    target,
                    context,
                    (summary, reason),
                    (changes, metadata, display),
                )| {
                    // Times across chrono's whole range and past it (which saturates).
                    let created_at = crate::model::micros_to_time(time);
                    Activity {
                        id: Uuid::from_u128(id),
                        seq: id as u64,
                        created_at,
                        recorded_at: crate::model::micros_to_time(time.wrapping_mul(3)),
                        action,
                        resource: ObjectRef { kind: rt, id: rid },
                        actor: actor.map(|(kind, id, name, email)| Actor {
                            kind,
                            id,
                            name,
                            email,
                        }),
                        target: target.map(|(kind, id)| ObjectRef { kind, id }),
                        context: context.into_iter().collect(),
                        summary,
                        reason,
                        changes,
                        metadata,
                        display: display.map(|(template, data)| DisplayText { template, data }),
                    }
                },
            )
    }

    #[test]
    fn a_full_activity_renders_as_serde_does() {
        let a = Activity {
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            seq: u64::MAX,
            created_at: crate::model::micros_to_time(1_700_000_000_123_456),
            recorded_at: crate::model::micros_to_time(1_700_000_000_123_457),
            action: "invoice.sent".into(),
            resource: ObjectRef {
                kind: "Invoice".into(),
                id: Some("inv\"1\\\n\u{1}".into()),
            },
            actor: Some(Actor {
                kind: "user".into(),
                id: None,
                name: Some("Ana Žižek 😀".into()),
                email: Some(String::new()),
            }),
            target: None,
            context: vec![("a".into(), String::new()), ("b\t".into(), "\u{7f}".into())],
            summary: Some(String::new()),
            reason: None,
            changes: Some(serde_json::json!({"status": ["draft", "sent"], "n": 0.1})),
            metadata: Some(serde_json::json!({})),
            display: Some(DisplayText {
                template: "{{user}}".into(),
                data: serde_json::json!({"x": [null, true, -0.0, 1e300]}),
            }),
        };
        let (pos, bytes) = stored(&a);
        let ours = via_view(pos, &bytes);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(via_serde(&a)).unwrap()
        );
    }

    #[test]
    fn times_render_as_chrono_does() {
        for us in [
            i64::MIN,
            -62_135_596_800_000_000 - 1, // the microsecond before year 1
            -62_135_596_800_000_000,
            -1,
            0,
            1,
            1_700_000_000_123_456,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000,
            i64::MAX,
        ] {
            let t = crate::model::micros_to_time(us);
            let mut out = Vec::new();
            time(&mut out, &t);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                super::super::wire::format_time(&t)
            );
        }
    }

    #[test]
    fn unsorted_or_repeated_context_keys_render_as_the_map_does() {
        let pairs = vec![
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ];
        let mut out = Vec::new();
        context(&mut out, ContextRef::from_pairs(&pairs));
        let map: BTreeMap<String, String> = pairs.into_iter().collect();
        assert_eq!(out, serde_json::to_vec(&map).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The writer and today's serde path agree byte for byte on every activity.
        #[test]
        fn activities_render_as_serde_does(a in arb_activity()) {
            let (pos, bytes) = stored(&a);
            // Today's served bytes are those of the record as decoded from storage.
            let decoded = codec::decode(pos, &bytes).unwrap();
            let want = via_serde(&decoded);
            let got = via_view(pos, &bytes);
            prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        }

        /// The word-at-a-time check finds exactly the strings with a byte to escape.
        #[test]
        fn needs_escape_is_exact(bytes in prop::collection::vec(
            prop_oneof![Just(0u8), Just(0x1f), Just(0x20), Just(b'"'), Just(b'\\'), Just(0x7f), Just(0x80), Just(0xff), any::<u8>(), 0x21u8..0x7e],
            0..40,
        )) {
            let want = bytes.iter().any(|&b| ESCAPE[usize::from(b)] != 0);
            prop_assert_eq!(needs_escape(&bytes), want);
        }

        #[test]
        fn strings_escape_as_serde_does(s in arb_text()) {
            let mut out = Vec::new();
            json_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn times_render_as_chrono_does_anywhere(us in any::<i64>()) {
            let t = crate::model::micros_to_time(us);
            let mut out = Vec::new();
            time(&mut out, &t);
            prop_assert_eq!(String::from_utf8(out).unwrap(), super::super::wire::format_time(&t));
        }

        /// Whole pages, cursors and totals included, agree with `PageOut`.
        #[test]
        fn pages_render_as_serde_does(
            items in prop::collection::vec(arb_activity(), 0..4),
            next in proptest::option::of("[A-Za-z0-9_-]{0,40}"),
            prev in proptest::option::of("[A-Za-z0-9_-]{0,40}"),
            has_more in any::<bool>(),
            total in proptest::option::of(any::<u64>()),
        ) {
            let records: Vec<Record> = items
                .iter()
                .map(|a| {
                    let (pos, bytes) = stored(a);
                    Record::from_bytes(pos, &bytes)
                })
                .collect();
            let owned = Page {
                items: records.iter().map(|r| r.to_activity().unwrap()).collect(),
                next_cursor: next.clone(),
                prev_cursor: prev.clone(),
                has_more,
                total,
            };
            let want = serde_json::to_vec(&PageOut::from(owned)).unwrap();
            let got = page(&Page { items: records, next_cursor: next, prev_cursor: prev, has_more, total }).unwrap();
            prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        }
    }
}
