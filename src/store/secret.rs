//! The database's secret and the MAC made with it: an HMAC-SHA256, truncated to
//! [`MAC_LEN`] bytes, over a tenant id (length first) and a payload. Cursors carry one
//! (`query/cursor.rs`), so a cursor is bound to its database and tenant. The secret's bytes never
//! leave this module.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a MAC.
pub(crate) const MAC_LEN: usize = 16;

/// Signs and checks payloads for a tenant: the [`Store`](super::Store) with its database's
/// secret, or a bare [`Secret`] (the fuzz targets').
pub(crate) trait Signer {
    /// The MAC of `payload` for `tenant`.
    fn sign(&self, tenant: &str, payload: &[u8]) -> [u8; MAC_LEN];
    /// Whether `tag` is the MAC of `payload` for `tenant`, compared in constant time.
    fn verify(&self, tenant: &str, payload: &[u8], tag: &[u8]) -> bool;
}

/// A 256-bit key, created on a database's first open and kept in its `meta` tree.
#[derive(Clone)]
pub(crate) struct Secret([u8; 32]);

impl Secret {
    pub(crate) const fn new(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    fn mac(&self, tenant: &str, payload: &[u8]) -> Hmac<Sha256> {
        #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        m.update(
            &u64::try_from(tenant.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        m.update(tenant.as_bytes());
        m.update(payload);
        m
    }
}

impl Signer for Secret {
    fn sign(&self, tenant: &str, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&self.mac(tenant, payload).finalize().into_bytes()[..MAC_LEN]);
        out
    }

    fn verify(&self, tenant: &str, payload: &[u8], tag: &[u8]) -> bool {
        tag.len() == MAC_LEN && self.mac(tenant, payload).verify_truncated_left(tag).is_ok()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}
