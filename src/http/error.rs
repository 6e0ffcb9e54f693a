//! The one error type of the HTTP layer: every rejection, extractor rejections included, is an
//! `ApiError` and leaves as `{"error": {"code", "message", "field"}}`.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response. 4xx carry a precise message and, where one part of the request is at
/// fault, its name in `field`; 5xx say nothing internal (the cause is logged where it happens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 `invalid_argument`, naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
        }
    }

    /// 400 `invalid_argument` about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `permission_denied`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_denied", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not accept this method",
        )
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 429 `rate_limited`.
    pub fn rate_limited(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500 `internal`. The message is fixed: the caller logs the cause.
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// Sets the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{} {}: {field}: {}",
                self.status, self.code, self.message
            ),
            None => write!(f, "{} {}: {}", self.status, self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    fn body(&self) -> Body<'_> {
        Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        }
    }

    /// The error body as JSON text (for an error that ends a stream already answered).
    pub(crate) fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        use crate::Error as E;
        match e {
            E::InvalidArgument { field, message } => ApiError::invalid(field, message),
            E::InvalidCursor => ApiError::invalid(
                "cursor",
                "cursor is invalid, expired, or belongs to another query or tenant",
            ),
            E::Conflict { id } => ApiError::conflict(format!(
                "activity {id} already exists with different content"
            ))
            .with_field("id"),
            E::TenantNotFound(t) => ApiError::not_found(format!("tenant {t:?} does not exist")),
            E::TenantExists(t) => {
                ApiError::conflict(format!("tenant {t:?} already exists")).with_field("id")
            }
            E::WorkLimit { max, what } => {
                use crate::query::work;
                let (field, hint) = match what {
                    work::TOTAL => (
                        Some("include_total"),
                        "drop include_total, or narrow the query with since/until or an indexed \
                         filter",
                    ),
                    work::FACETS => (Some("field"), "narrow it with prefix, since or until"),
                    _ => (
                        None,
                        "narrow the query with since/until or an indexed filter (q's string \
                         operators and a second filtered field are checked record by record)",
                    ),
                };
                let e = ApiError::invalid(
                    "",
                    format!(
                        "{what} needs more than {max} stored entries examined, the per-request \
                         work limit (--max-examined); {hint}"
                    ),
                );
                ApiError {
                    field: field.map(str::to_owned),
                    ..e
                }
            }
            E::DeadlineExceeded | E::Cancelled => {
                ApiError::unavailable("the request ran past its time limit; try again")
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

/// Body rejections: a body over the limit is 413, anything else a 400.
impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than the server's limit",
            )
        } else {
            ApiError::bad_request(format!(
                "could not read the request body: {}",
                r.body_text()
            ))
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::BytesRejection(b) => b.into(),
            JsonRejection::MissingJsonContentType(_) => ApiError::invalid(
                "content-type",
                "expected a request with Content-Type: application/json",
            ),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("bad query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::internal()
    }
}
