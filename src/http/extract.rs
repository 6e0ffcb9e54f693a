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

/// Deserializes JSON text, naming the path of the first bad field in the error.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(v)
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

/// The query string as `(name, value)` pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        Ok(Params(pairs))
    }
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
