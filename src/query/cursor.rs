//! Cursors: `base64url(version ++ direction ++ time ++ id ++ query fingerprint ++ mac)`, the MAC an
//! HMAC-SHA256 (truncated to 16 bytes) keyed by the database's secret over the tenant id and the
//! payload. A cursor is therefore bound to its database, tenant and query; any other use, and any
//! changed byte, is `InvalidCursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::{Filter, Order};
use crate::error::{Error, Result};
use crate::store::keys::{Pos, POS_LEN};
use crate::store::{Signer, MAC_LEN};

const VERSION: u8 = 1;
const FP_LEN: usize = 8;
const PAYLOAD_LEN: usize = 2 + POS_LEN + FP_LEN;
/// Longest cursor text accepted before any decoding is tried.
const MAX_TEXT: usize = 128;

/// A decoded cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// True for a `next_cursor` (continue in the query's order), false for a `prev_cursor`.
    pub(crate) forward: bool,
    pub(crate) pos: Pos,
}

/// A stable digest of what a query asks for (its filters and order, not its page size).
pub(crate) fn fingerprint(f: &Filter, order: Order) -> [u8; FP_LEN] {
    let digest = Sha256::digest(format!("{f:?}|{order:?}").as_bytes());
    let mut out = [0u8; FP_LEN];
    out.copy_from_slice(&digest[..FP_LEN]);
    out
}

pub(crate) fn encode(
    key: &impl Signer,
    tenant: &str,
    fp: [u8; FP_LEN],
    forward: bool,
    pos: Pos,
) -> String {
    let mut buf = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
    buf.push(VERSION);
    buf.push(u8::from(forward));
    buf.extend_from_slice(&pos.encode());
    buf.extend_from_slice(&fp);
    let tag = key.sign(tenant, &buf);
    buf.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn decode(
    key: &impl Signer,
    tenant: &str,
    fp: [u8; FP_LEN],
    text: &str,
) -> Result<Cursor> {
    if text.len() > MAX_TEXT {
        return Err(Error::InvalidCursor);
    }
    let buf = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Error::InvalidCursor)?;
    if buf.len() != PAYLOAD_LEN + MAC_LEN {
        return Err(Error::InvalidCursor);
    }
    let (payload, tag) = buf.split_at(PAYLOAD_LEN);
    // `verify` compares in constant time.
    if !key.verify(tenant, payload, tag) {
        return Err(Error::InvalidCursor);
    }
    if payload[0] != VERSION || payload[1] > 1 || payload[2 + POS_LEN..] != fp {
        return Err(Error::InvalidCursor);
    }
    let pos = Pos::decode(&payload[2..2 + POS_LEN]).map_err(|_| Error::InvalidCursor)?;
    Ok(Cursor {
        forward: payload[1] == 1,
        pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    use crate::store::Secret;

    const SECRET: Secret = Secret::new([7; 32]);

    fn sample() -> (String, [u8; FP_LEN], Pos) {
        let fp = fingerprint(&Filter::default(), Order::Desc);
        let pos = Pos {
            time: 1_700_000_000_000_000,
            id: Uuid::from_u128(99),
        };
        (encode(&SECRET, "acme", fp, true, pos), fp, pos)
    }

    #[test]
    fn round_trip_and_bindings() {
        let (c, fp, pos) = sample();
        assert_eq!(
            decode(&SECRET, "acme", fp, &c).unwrap(),
            Cursor { forward: true, pos }
        );
        assert!(decode(&SECRET, "other", fp, &c).is_err(), "another tenant");
        assert!(
            decode(&Secret::new([8; 32]), "acme", fp, &c).is_err(),
            "another database"
        );
        let other_fp = fingerprint(
            &Filter {
                actions: vec!["x".into()],
                ..Default::default()
            },
            Order::Desc,
        );
        assert!(
            decode(&SECRET, "acme", other_fp, &c).is_err(),
            "another query"
        );
        assert!(decode(
            &SECRET,
            "acme",
            fingerprint(&Filter::default(), Order::Asc),
            &c
        )
        .is_err());
        assert!(decode(&SECRET, "acme", fp, "").is_err());
        assert!(decode(&SECRET, "acme", fp, &"A".repeat(10_000)).is_err());
        assert!(decode(&SECRET, "acme", fp, "!!!!").is_err());
    }

    #[test]
    fn mac_covers_the_tenant_boundary() {
        // "ab" + payload must not authenticate as "a" + "b"-prefixed payload: the length prefix sees to it.
        let (c, fp, _) = sample();
        assert!(decode(&SECRET, "acm", fp, &c).is_err());
    }

    proptest! {
        #[test]
        fn every_bit_flip_is_rejected(bit in 0usize..((PAYLOAD_LEN + MAC_LEN) * 8)) {
            let (c, fp, _) = sample();
            let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
            raw[bit / 8] ^= 1 << (bit % 8);
            let forged = URL_SAFE_NO_PAD.encode(raw);
            prop_assert!(decode(&SECRET, "acme", fp, &forged).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let fp = fingerprint(&Filter::default(), Order::Desc);
            prop_assert!(decode(&SECRET, "acme", fp, &s).is_err());
        }
    }
}
