//! API keys and the extractors that authenticate a request.
//!
//! A key is `actlog_<key_id>_<secret>`: `key_id` is 16 hex digits (public, names the stored
//! record), `secret` is 256 random bits in base64url. Only SHA-256 of the secret is stored; a
//! plain hash suffices because the secret is uniformly random (nothing to brute-force), and the
//! comparison runs in constant time.
//!
//! Authentication is separate from data work: key lookups go through
//! `AppState::auth_lookup`, outside the request slots and work budgets, and the rate-limit
//! middleware verifies a request's key once, before the request queues for anything; the
//! extractors reuse that result (`VerifiedBearer`).
//!
//! Rules (`docs/api.md`, with the choices written down in `docs/http.md`):
//! - no or malformed `Authorization: Bearer` header, unknown or revoked key: 401;
//! - a tenant key always acts on its own tenant; naming another tenant in `X-Tenant-Id` (or its
//!   alias `x-entity-id`) is a 403, naming its own is allowed;
//! - an admin key acts on the tenant its header names (404 if there is none such), else on the
//!   first tenant created;
//! - scopes: `read` may only read, `write` may only append, `read_write` both; admin routes
//!   (tenants, keys) need the admin key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::{ApiKeyRecord, Scope};

const KEY_PREFIX: &str = "actlog_";
/// The tenant header and its alias.
pub const TENANT_HEADER: &str = "x-tenant-id";
pub const TENANT_HEADER_ALIAS: &str = "x-entity-id";

/// An authenticated caller acting on one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The tenant this request acts on (it exists).
    pub tenant: String,
    pub scope: Scope,
    pub key_id: String,
}

impl Auth {
    /// 403 unless the key may read.
    pub fn require_read(&self) -> Result<(), ApiError> {
        if self.scope.can_read() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this key may not read"))
        }
    }

    /// 403 unless the key may append.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.scope.can_write() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this key may not write"))
        }
    }
}

/// An authenticated admin caller (no tenant is resolved: admin routes name their tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuth {
    pub key_id: String,
}

/// A freshly issued key: the text to hand out once, and the record to store.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub token: String,
    pub record: ApiKeyRecord,
}

/// Makes a new key for `tenant` (`None`: admin). The caller stores `record` and shows `token`
/// exactly once.
pub fn issue_key(
    tenant: Option<String>,
    scope: Scope,
    now: chrono::DateTime<chrono::Utc>,
) -> IssuedKey {
    let id_bytes: [u8; 8] = rand::random();
    let key_id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret_bytes: [u8; 32] = rand::random();
    let secret = URL_SAFE_NO_PAD.encode(secret_bytes);
    IssuedKey {
        token: format!("{KEY_PREFIX}{key_id}_{secret}"),
        record: ApiKeyRecord {
            key_id,
            tenant,
            scope,
            hash: hash_secret(&secret),
            created_at: now,
            revoked: false,
        },
    }
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a key into `(key_id, secret)`, if it has the shape of one.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty() && secret.len() <= 64).then_some((id, secret))
}

/// Does `secret` match the record? Constant time in the secret.
pub fn key_matches(record: &ApiKeyRecord, secret: &str) -> bool {
    bool::from(hash_secret(secret).ct_eq(&record.hash))
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <key> header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("Authorization header is not ASCII"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <key>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthenticated(
            "expected Authorization: Bearer <key>",
        ));
    }
    Ok(token.trim())
}

/// The key a request presents, in any form some route accepts: `Authorization: Bearer`,
/// `Authorization: Basic` (the Sequence profile: the key is the password, or the user name when
/// the password is empty), or, without an `Authorization` header, Velt's `x-velt-auth-token`.
/// `Err` for Basic credentials that do not decode; `Ok(None)` when nothing usable is there.
pub(crate) fn credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(headers
            .get("x-velt-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.trim().to_owned()));
    };
    let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.trim().split_once(' ')) else {
        return Ok(None);
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.trim().to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthenticated("malformed Basic credentials"))?;
    let (user, pass) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    Ok(Some(if pass.is_empty() { user } else { pass }.to_owned()))
}

/// [`credential`], with malformed credentials counted as none.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<String> {
    credential(headers).ok().flatten()
}

/// The live record of `token`'s key, if the token is a valid, unrevoked key.
pub(crate) async fn verify(
    token: &str,
    state: &AppState,
) -> Result<Option<ApiKeyRecord>, ApiError> {
    let Some((key_id, secret)) = parse_token(token) else {
        return Ok(None);
    };
    let record = state.auth_lookup(key_id.to_owned()).await?;
    Ok(record.filter(|r| key_matches(r, secret) && !r.revoked))
}

/// A request's `Authorization: Bearer` key, verified by the rate-limit middleware (a request
/// extension), so the extractors need not look it up again.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedBearer(pub(crate) ApiKeyRecord);

/// Finds the live key record the request's bearer token names.
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<ApiKeyRecord, ApiError> {
    let token = bearer(headers)?;
    verify(token, state)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid or revoked API key"))
}

/// The request's verified bearer key: the middleware's, or looked up now.
async fn authenticate_parts(parts: &Parts, state: &AppState) -> Result<ApiKeyRecord, ApiError> {
    match parts.extensions.get::<VerifiedBearer>() {
        Some(v) => Ok(v.0.clone()),
        None => authenticate(&parts.headers, state).await,
    }
}

/// The tenant named by `X-Tenant-Id` / `x-entity-id`, if any.
pub fn tenant_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let get = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| ApiError::invalid(name, "header is not ASCII"))
            })
            .transpose()
            // An empty header names no tenant (some clients send every header they know).
            .map(|v| v.filter(|s| !s.is_empty()))
    };
    match (get(TENANT_HEADER)?, get(TENANT_HEADER_ALIAS)?) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid(
            TENANT_HEADER,
            "X-Tenant-Id and x-entity-id name different tenants",
        )),
        (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
        (None, None) => Ok(None),
    }
}

/// Resolves the tenant a key acts on, given the tenant header. Admin rights (any tenant by
/// header, else the default one) come from the admin scope; a record whose scope and tenant
/// disagree (an admin scope bound to a tenant, a tenant scope bound to none; `Store::put_api_key`
/// refuses both) acts on nothing.
pub fn resolve_tenant(
    state: &AppState,
    record: &ApiKeyRecord,
    header: Option<String>,
) -> Result<String, ApiError> {
    match (record.scope, &record.tenant, header) {
        (Scope::Admin, None, Some(h)) => match state.store.tenant(&h) {
            Some(t) => Ok(t.id),
            None => Err(ApiError::not_found(format!("tenant {h:?} does not exist"))
                .with_field(TENANT_HEADER)),
        },
        (Scope::Admin, None, None) => state
            .store
            .default_tenant()
            .map(|t| t.id)
            .ok_or_else(|| ApiError::not_found("no tenant exists yet; create one first")),
        (Scope::Admin, Some(_), _) | (_, None, _) => Err(ApiError::forbidden(
            "this key's scope and tenant disagree; issue a new key",
        )),
        (_, Some(own), None) => Ok(own.clone()),
        (_, Some(own), Some(h)) if *own == h => Ok(own.clone()),
        (_, Some(_), Some(_)) => Err(ApiError::forbidden(
            "a tenant key may only act on its own tenant",
        )
        .with_field(TENANT_HEADER)),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let record = authenticate_parts(parts, state).await?;
        let tenant = resolve_tenant(state, &record, tenant_header(&parts.headers)?)?;
        Ok(Auth {
            tenant,
            scope: record.scope,
            key_id: record.key_id,
        })
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let record = authenticate_parts(parts, state).await?;
        if record.scope != Scope::Admin || record.tenant.is_some() {
            return Err(ApiError::forbidden("this route needs the admin key"));
        }
        Ok(AdminAuth {
            key_id: record.key_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_parse_and_match() {
        let k = issue_key(Some("t".into()), Scope::Read, chrono::Utc::now());
        let (id, secret) = parse_token(&k.token).unwrap();
        assert_eq!(id, k.record.key_id);
        assert!(key_matches(&k.record, secret));
        assert!(!key_matches(&k.record, "x"));
        assert!(parse_token("actlog_zz_abc").is_none());
        assert!(parse_token("Bearer").is_none());
    }

    /// Regression: the absence of a tenant on a key record was what made it an admin: a `read`
    /// key stored without a tenant could read every tenant by naming it in `X-Tenant-Id`.
    /// Admin rights now follow the scope, and a record whose scope and tenant disagree acts on
    /// nothing.
    #[test]
    fn admin_rights_follow_the_scope() {
        use crate::http::{AppState, Config};
        use crate::{Options, Store, TenantSettings};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for t in ["a", "b"] {
            store.create_tenant(t, TenantSettings::default()).unwrap();
        }
        let state = AppState::new(std::sync::Arc::new(store), Config::default());
        let now = chrono::Utc::now();
        let record =
            |tenant: Option<&str>, scope| issue_key(tenant.map(Into::into), scope, now).record;
        for scope in [Scope::Read, Scope::Write, Scope::ReadWrite] {
            for header in [None, Some("b".to_owned()), Some("a".to_owned())] {
                let err = resolve_tenant(&state, &record(None, scope), header.clone()).unwrap_err();
                assert_eq!(
                    err.status,
                    axum::http::StatusCode::FORBIDDEN,
                    "{scope:?} {header:?}"
                );
            }
        }
        for header in [None, Some("a".to_owned()), Some("b".to_owned())] {
            let err = resolve_tenant(&state, &record(Some("a"), Scope::Admin), header.clone())
                .unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::FORBIDDEN, "{header:?}");
        }
        let admin = record(None, Scope::Admin);
        assert_eq!(resolve_tenant(&state, &admin, None).unwrap(), "a");
        assert_eq!(
            resolve_tenant(&state, &admin, Some("b".into())).unwrap(),
            "b"
        );
        let own = record(Some("b"), Scope::Read);
        assert_eq!(resolve_tenant(&state, &own, None).unwrap(), "b");
        assert_eq!(resolve_tenant(&state, &own, Some("b".into())).unwrap(), "b");
        assert!(resolve_tenant(&state, &own, Some("a".into())).is_err());
    }

    #[test]
    fn every_credential_form_names_the_key() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        };
        let basic = |s: &str| format!("Basic {}", STANDARD.encode(s));
        let got = |pairs: &[(&str, &str)]| credential(&headers(pairs)).unwrap();
        assert_eq!(got(&[("authorization", "Bearer k1")]), Some("k1".into()));
        assert_eq!(got(&[("authorization", &basic("u:k2"))]), Some("k2".into()));
        assert_eq!(got(&[("authorization", &basic("k3:"))]), Some("k3".into()));
        assert_eq!(got(&[("x-velt-auth-token", " k4 ")]), Some("k4".into()));
        // An Authorization header wins over Velt's, whatever its scheme.
        assert_eq!(
            got(&[("authorization", "Digest x"), ("x-velt-auth-token", "k4")]),
            None
        );
        assert!(credential(&headers(&[("authorization", "Basic !!!")])).is_err());
    }
}
