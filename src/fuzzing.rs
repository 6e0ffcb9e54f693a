//! Entry points for `fuzz/` (feature `fuzzing` only; not part of the API). Each function feeds
//! untrusted bytes to one crate-private decoder and panics when an invariant breaks, so a fuzzer
//! finds both crashes and wrong answers:
//!
//! - a decoder never panics;
//! - whatever a decoder accepts re-encodes to the very same bytes (keys, cursors), so no two
//!   encodings mean one thing;
//! - a decoded record encodes again and decodes to the same activity;
//! - a record read in place agrees with the decoded one, down to the bytes of its API v1 JSON.

use uuid::Uuid;

use crate::query::{cursor, Filter, Order};
use crate::store::codec;
use crate::store::keys::{self, Pos};
use crate::store::{Secret, Signer};

const SECRET: Secret = Secret::new([0x5a; 32]);
const TENANT: &str = "fuzz";

fn fp() -> [u8; 8] {
    cursor::fingerprint(&Filter::default(), Order::Desc)
}

/// Decodes `data` as cursor text. A forged cursor must be rejected; the only text ever accepted is
/// the canonical encoding of what it decodes to.
pub fn cursor_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = cursor::decode(&SECRET, TENANT, fp(), text) {
        let again = cursor::encode(&SECRET, TENANT, fp(), c.forward, c.pos);
        assert_eq!(again, text, "a second encoding of one cursor was accepted");
    }
}

/// Signs `payload` with the right key, so the bytes after the MAC check are what is fuzzed: the
/// version, direction and position fields must be checked, never trusted into a panic.
pub fn cursor_signed_payload(payload: &[u8]) {
    use base64::Engine;
    let payload = &payload[..payload.len().min(64)];
    let mut buf = payload.to_vec();
    buf.extend_from_slice(&SECRET.sign(TENANT, payload));
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf);
    if let Ok(c) = cursor::decode(&SECRET, TENANT, fp(), &text) {
        let again = cursor::encode(&SECRET, TENANT, fp(), c.forward, c.pos);
        assert_eq!(again, text, "a signed payload decoded to another cursor");
    }
}

/// Decodes `data` as a stored record value, both in place (`view`) and owned (`decode`). They
/// must agree, and API v1's JSON written from the view must be the bytes serde writes for the
/// owned activity whenever the stored JSON text is what `encode` writes (compact, as printed).
#[expect(
    clippy::expect_used,
    reason = "a fuzz oracle: a failed expectation is the finding"
)]
pub fn record(data: &[u8]) {
    let pos = Pos {
        time: 1_700_000_000_000_000,
        id: Uuid::from_u128(1),
    };
    let view = codec::view(pos, data);
    let decoded = codec::decode(pos, data);
    let Ok(a) = decoded else {
        return;
    };
    let view = view.expect("decode accepted what view refused");
    let canonical = |t: Option<&str>| {
        t.is_none_or(|t| {
            serde_json::from_str::<serde_json::Value>(t)
                .and_then(|v| serde_json::to_string(&v))
                .is_ok_and(|printed| printed == t)
        })
    };
    if canonical(view.changes)
        && canonical(view.metadata)
        && canonical(view.display.map(|d| d.data))
    {
        let mut ours = Vec::new();
        crate::http::render::activity(&mut ours, &view);
        let serde = serde_json::to_vec(&crate::http::wire::ActivityOut::from(a.clone()))
            .expect("serializes");
        assert_eq!(ours, serde, "view rendered other bytes than serde");
    }
    let bytes = codec::encode(&a).expect("a decoded record encodes");
    let b = codec::decode(pos, &bytes).expect("a re-encoded record decodes");
    // JSON numbers read back exactly too: serde_json's `float_roundtrip` is on.
    assert_eq!(a, b, "record changed through encode/decode");
}

/// Decodes `data` as every kind of `log` key; whatever decodes must re-encode byte for byte.
pub fn keys(data: &[u8]) {
    if let Ok((t, pos)) = keys::decode_record_key(data) {
        assert_eq!(keys::record_key(t, pos), data, "record key");
    }
    if let Ok((t, id)) = keys::decode_id_key(data) {
        assert_eq!(keys::id_key(t, id), data, "id key");
    }
    if let Ok(e) = keys::decode_index_key(data) {
        let vals: Vec<&str> = e.values.iter().map(String::as_str).collect();
        assert_eq!(vals.len(), e.kind.arity());
        assert_eq!(
            keys::index_key(e.tenant, e.kind, &vals, e.pos),
            data,
            "index key"
        );
    }
    if let Ok(pos) = keys::suffix_pos(data) {
        let mut suffix = Vec::new();
        pos.push_suffix(&mut suffix);
        assert_eq!(suffix, data[data.len() - keys::SUFFIX_LEN..]);
        // The same bytes as a posting list value after that first position: whatever decodes
        // must be strictly ascending in one bucket and re-encode byte for byte.
        let rest = &data[..data.len() - keys::SUFFIX_LEN];
        if let Ok(list) = crate::store::postings::decode(pos, rest) {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "posting order");
            assert!(list.iter().all(|p| keys::same_bucket(p.time, pos.time)));
            assert_eq!(
                crate::store::postings::encode_rest(&list[1..]),
                rest,
                "postings"
            );
        }
    }
    if let Ok((v, rest)) = keys::take_escaped(data) {
        // Stored values are strings; other bytes may decode but are never written.
        let Ok(v) = String::from_utf8(v) else {
            return;
        };
        let mut again = Vec::new();
        keys::push_escaped(&mut again, &v);
        again.extend_from_slice(rest);
        assert_eq!(again, data, "escaped string");
    }
}

/// Splits `a=b&c=d` into pairs, as the profiles receive their query strings (already decoded).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Each profile's request parsing (the first byte picks the parser): never a panic, whatever
/// the query string or body.
pub fn profiles(data: &[u8]) {
    use crate::http::compat::{sequence, spaceinvoices, subscriptions, velt};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let tz = chrono_tz::America::New_York;
    match which % 6 {
        0 => drop(spaceinvoices::parse(&pairs(&text), tz)),
        1 => drop(spaceinvoices::parse_json_query(&text, tz)),
        2 => {
            let (version, query) = text.split_once('\n').unwrap_or(("", &text));
            drop(sequence::parse(
                &pairs(query),
                (!version.is_empty()).then_some(version),
            ))
        }
        3 => drop(subscriptions::parse(&pairs(&text))),
        4 => drop(subscriptions::new_activity(rest, "0123456789abcdef")),
        _ => drop(velt::parse(rest)),
    }
}
