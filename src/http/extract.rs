//! Extractors whose rejections are `ApiError`s: a JSON body (any JSON content type, or none),
//! and the query string as ordered `(name, value)` pairs.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Deserializes a JSON value, naming the path of the first bad field in the error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

/// Deserializes JSON text, naming the path of the first bad field in the error. An object that
/// names a key twice is refused (see [`reject_duplicate_keys`]).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    reject_duplicate_keys(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(v)
}

/// Fails on the first JSON object, at any depth, that names a key twice. serde_json keeps the
/// last value without a word, so `{"action":"a","action":"b"}` would be stored as whatever this
/// parser picks while a proxy or a log line may have read the other: an audit record must not
/// depend on who parsed it. Malformed JSON passes here and is reported by the real parse.
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, UniqueKeys>(&mut de) {
        Err(e) if e.inner().to_string().starts_with(DUPLICATE) => {
            // The message is `duplicate key "k" at line L column C`; the field is the key's path.
            let message = e.inner().to_string();
            let key = message
                .strip_prefix(DUPLICATE)
                .and_then(|r| r.trim_start().rsplit_once(" at line "))
                .map(|(k, _)| k.trim_matches('"').to_owned())
                .unwrap_or_default();
            let path = e.path().to_string();
            let field = if path == "." {
                key
            } else {
                format!("{path}.{key}")
            };
            Err(ApiError::invalid(
                field,
                format!("{message}: a JSON object must name each key once"),
            ))
        }
        _ => Ok(()),
    }
}

const DUPLICATE: &str = "duplicate key";

/// Any JSON value whose objects name each key once.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE} {key:?}")));
            }
            map.next_value::<UniqueKeys>()?;
            seen.insert(key);
        }
        Ok(UniqueKeys)
    }
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    // serde_path_to_error reports `.` for the root; a missing field is named in the message.
    let field = if path == "." {
        missing_field(&message).unwrap_or_default()
    } else if let Some(m) = missing_field(&message) {
        format!("{path}.{m}")
    } else {
        path
    };
    if field.is_empty() {
        ApiError::bad_request(format!("invalid JSON: {message}"))
    } else {
        ApiError::invalid(field, message)
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// A JSON request body. The content type must be JSON (`application/json` or `…+json`) or
/// absent; anything else is a 400 naming `content-type`. A body over the limit is a 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let mime = ct.split(';').next().unwrap_or("").trim();
            let json = mime == "application/json" || mime.ends_with("+json");
            if !json {
                return Err(ApiError::invalid(
                    "content-type",
                    "expected Content-Type: application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "request body is empty; expected JSON",
            ));
        }
        Ok(ApiJson(from_slice(&bytes)?))
    }
}

/// The query string as `(name, value)` pairs, in order. Names and values are percent-decoded
/// (`+` is a space, as in HTML forms) and must then be UTF-8: anything else is a 400 naming the
/// parameter, never a value with U+FFFD in it that quietly matches nothing.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query_string(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// Splits and decodes a query string (see [`Params`]).
pub fn parse_query_string(qs: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for pair in qs.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = String::from_utf8(percent_decode(name)).map_err(|e| {
            ApiError::invalid(
                String::from_utf8_lossy(e.as_bytes()),
                "a parameter name is not UTF-8 after percent-decoding",
            )
        })?;
        let value = String::from_utf8(percent_decode(value))
            .map_err(|_| ApiError::invalid(&name, "not UTF-8 after percent-decoding"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space, `%XX` a
/// byte; a `%` not followed by two hex digits stands for itself (as browsers and `url` read it).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    // Two hex digits make at most 0xFF.
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Path parameters; a bad one (not UTF-8 after percent-decoding) is a 400 in the error shape.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_like_forms_and_refuse_non_utf8() {
        let pairs = parse_query_string("a=1&b=x+y%2Bz&&c&d=%C3%BC&e=100%&f=%zz&%61=%3D").unwrap();
        let want: Vec<(String, String)> = [
            ("a", "1"),
            ("b", "x y+z"),
            ("c", ""),
            ("d", "ü"),
            ("e", "100%"),
            ("f", "%zz"),
            ("a", "="),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(pairs, want);
        assert!(parse_query_string("").unwrap().is_empty());
        for (qs, field) in [
            ("action=%FF", "action"),
            ("ok=1&actor_name=%C0%AF", "actor_name"),
            ("q=%ED%A0%80", "q"),
            ("x=%80", "x"),
        ] {
            let e = parse_query_string(qs).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{qs}");
        }
        let e = parse_query_string("%FF=1").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
