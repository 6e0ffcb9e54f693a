//! The library's one error type.

use std::fmt;

use crate::store::StorageError;

/// Everything that can go wrong in the library. Expected outcomes (an id that is not there, an
/// empty page) are values, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input is not acceptable; `field` names the part at fault.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The part at fault (`limit`, `activities[3].action`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An activity with this id exists with other content.
    #[error("activity {id} already exists with different content")]
    Conflict {
        /// The activity's id.
        id: uuid::Uuid,
    },
    /// The named tenant does not exist.
    #[error("tenant {0:?} does not exist")]
    TenantNotFound(String),
    /// A tenant with this id exists already.
    #[error("tenant {0:?} already exists")]
    TenantExists(String),
    /// A cursor that this database did not issue for this tenant and query.
    #[error("cursor is invalid, expired, or belongs to another query")]
    InvalidCursor,
    /// Stored bytes that do not decode: a damaged file or a bug.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The data directory was written by a format this version cannot read.
    #[error("unsupported on-disk format version {found} (this build reads {supported})")]
    UnsupportedFormat {
        /// The directory's format version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The storage engine failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// The storage engine panicked (the engine may panic on some damaged files).
    #[error("storage engine panicked: {0}")]
    EnginePanic(String),
    /// An I/O error outside the storage engine.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A read examined more stored entries than its [`Budget`](crate::Budget) allows; `what`
    /// says what it was computing (the page, the total, the facet values, the query plan).
    #[error("{what} needs more than {max} stored entries examined (the budget's limit)")]
    WorkLimit {
        /// The budget's cap on entries examined.
        max: u64,
        /// What the read was computing.
        what: &'static str,
    },
    /// A read ran past its [`Budget`](crate::Budget)'s deadline and stopped part way.
    #[error("the read ran past its deadline")]
    DeadlineExceeded,
    /// A read's [`Budget`](crate::Budget) cancel flag was raised and it stopped part way.
    #[error("the read was cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
