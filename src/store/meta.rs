//! The `meta` tree: format version, cursor secret, tenants and API keys, each value a version byte
//! and bincode.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Tenant, TenantSettings};
use crate::store::TenantInfo;

/// The on-disk format this build writes and reads. 4: the `log4` tree, whose records carry their
/// tenant's `seq` and `recorded_at`, with a seq entry per record and a head per tenant. 3 (the
/// `log3` tree, keys that never hold four 0xFF bytes in a row), 2 (index entries as posting
/// lists) and 1 (one key per index entry, which reads as lists of one) are upgraded on open
/// (`store::migrate`).
pub(crate) const FORMAT_VERSION: u32 = 4;

/// Older formats this build opens, upgrading them.
const UPGRADABLE: [u32; 3] = [1, 2, 3];

/// What the format marker says about a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// No marker and no earlier data: a new store.
    New,
    /// [`FORMAT_VERSION`].
    Current,
    /// An older format this build upgrades.
    Old(u32),
}

const K_FORMAT: &[u8] = b"format";
const K_SECRET: &[u8] = b"secret";
const P_TENANT: &[u8] = b"t/";
const P_KEY: &[u8] = b"k/";
const V1: u8 = 1;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 64 * 1024 }>()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = vec![V1];
    bincode::serde::encode_into_std_write(v, &mut out, config())
        .map_err(|e| Error::Corrupt(format!("encoding metadata: {e}")))?;
    Ok(out)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&V1, body)) => bincode::serde::decode_from_slice(body, config())
            .map(|(v, _)| v)
            .map_err(|e| Error::Corrupt(format!("{what}: {e}"))),
        _ => Err(Error::Corrupt(format!("{what}: unknown version"))),
    }
}

/// Reads the format marker. `had_data`: the directory held a database file before this open, so
/// it is not a new store.
pub(crate) fn format(meta: &sled::Tree, had_data: bool) -> Result<Format> {
    match meta.get(K_FORMAT)? {
        None if had_data => Err(Error::Corrupt(
            "the data directory holds a database file without actlog's metadata: the file is \
             damaged (truncated?) or is not an actlog store; if a first start was interrupted, \
             remove the directory"
                .into(),
        )),
        None => Ok(Format::New),
        Some(v) => {
            let b: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| Error::Corrupt("format version".into()))?;
            match u32::from_be_bytes(b) {
                FORMAT_VERSION => Ok(Format::Current),
                found if UPGRADABLE.contains(&found) => Ok(Format::Old(found)),
                found => Err(Error::UnsupportedFormat {
                    found,
                    supported: FORMAT_VERSION,
                }),
            }
        }
    }
}

/// Writes the marker of [`FORMAT_VERSION`] and flushes it: the commit point of an upgrade.
pub(crate) fn set_format(meta: &sled::Tree) -> Result<()> {
    meta.insert(K_FORMAT, &FORMAT_VERSION.to_be_bytes()[..])?;
    meta.flush()?;
    Ok(())
}

/// The cursor secret, created on first open.
pub(crate) fn secret(meta: &sled::Tree) -> Result<[u8; 32]> {
    if let Some(v) = meta.get(K_SECRET)? {
        return v
            .as_ref()
            .try_into()
            .map_err(|_| Error::Corrupt("cursor secret".into()));
    }
    let secret: [u8; 32] = rand::random();
    meta.insert(K_SECRET, &secret[..])?;
    meta.flush()?;
    Ok(secret)
}

#[derive(Serialize, Deserialize)]
struct TenantV1 {
    no: u32,
    id: String,
    timezone: String,
    retention_days: Option<u32>,
    created_us: i64,
}

pub(crate) fn tenant_info(no: u32, tenant: Tenant) -> Result<TenantInfo> {
    let tz = crate::model::parse_timezone(&tenant.settings.timezone)?;
    Ok(TenantInfo { no, tz, tenant })
}

pub(crate) fn put_tenant(meta: &sled::Tree, t: &TenantInfo) -> Result<()> {
    let v = TenantV1 {
        no: t.no,
        id: t.tenant.id.clone(),
        timezone: t.tenant.settings.timezone.clone(),
        retention_days: t.tenant.settings.retention_days,
        created_us: t.tenant.created_at.timestamp_micros(),
    };
    meta.insert([P_TENANT, t.tenant.id.as_bytes()].concat(), encode(&v)?)?;
    Ok(())
}

pub(crate) fn load_tenants(meta: &sled::Tree) -> Result<HashMap<String, TenantInfo>> {
    let mut out = HashMap::new();
    for kv in meta.scan_prefix(P_TENANT) {
        let (_, v) = kv?;
        let t: TenantV1 = decode("tenant", &v)?;
        if t.no > crate::store::keys::MAX_TENANT_NO {
            return Err(Error::Corrupt(format!(
                "tenant number {} out of range",
                t.no
            )));
        }
        let tenant = Tenant {
            id: t.id.clone(),
            settings: TenantSettings {
                timezone: t.timezone,
                retention_days: t.retention_days,
            },
            created_at: crate::model::micros_to_time(t.created_us),
        };
        out.insert(t.id, tenant_info(t.no, tenant)?);
    }
    Ok(out)
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Tenants, keys, and every tenant's data.
    Admin,
    /// May read the tenant's activities.
    Read,
    /// May append to the tenant's log.
    Write,
    /// May read and append.
    ReadWrite,
}

impl Scope {
    /// Whether the scope allows reads.
    pub fn can_read(self) -> bool {
        matches!(self, Scope::Admin | Scope::Read | Scope::ReadWrite)
    }
    /// Whether the scope allows appends.
    pub fn can_write(self) -> bool {
        matches!(self, Scope::Admin | Scope::Write | Scope::ReadWrite)
    }
}

/// A stored API key: never the secret itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public part of the key, used to find its record.
    pub key_id: String,
    /// `None` for an admin key.
    pub tenant: Option<String>,
    /// What the key may do.
    pub scope: Scope,
    /// A hash of the secret part (the caller chooses the hash).
    pub hash: [u8; 32],
    /// When the key was issued.
    pub created_at: DateTime<Utc>,
    /// Whether the key was revoked (it then authenticates nothing).
    pub revoked: bool,
}

pub(crate) fn put_api_key(meta: &sled::Tree, k: &ApiKeyRecord) -> Result<()> {
    meta.insert([P_KEY, k.key_id.as_bytes()].concat(), encode(k)?)?;
    Ok(())
}

pub(crate) fn get_api_key(meta: &sled::Tree, key_id: &str) -> Result<Option<ApiKeyRecord>> {
    meta.get([P_KEY, key_id.as_bytes()].concat())?
        .map(|v| decode("api key", &v))
        .transpose()
}

pub(crate) fn list_api_keys(meta: &sled::Tree) -> Result<Vec<ApiKeyRecord>> {
    meta.scan_prefix(P_KEY)
        .map(|kv| decode("api key", &kv?.1))
        .collect()
}
