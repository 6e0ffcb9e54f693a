//! # actlog
//!
//! An append-only activity-log store ("who did what to which resource, when") on the sled
//! engine, with secondary indexes for resource, action, actor, target and context, cursor-paged
//! queries that cost the same at any depth, exact totals and facets.
//!
//! It is a library you embed, and (through the `actlog` binary) a small HTTP server. It is not
//! a general document database: activities are immutable, removed only by retention, and only
//! the fields listed in `docs/key-format.md` are indexed.
//!
//! ```
//! use actlog::{Filter, NewActivity, ObjectRef, Options, Query, Store, TenantSettings};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), Options::default()).unwrap();
//! store.create_tenant("acme", TenantSettings::default()).unwrap();
//! store
//!     .append("acme", NewActivity::new("invoice.sent", ObjectRef::new("Invoice", "inv_1")))
//!     .unwrap();
//! let q = Query::new().filter(Filter::new().actions(["invoice.*"]));
//! let page = store.query("acme", &q).unwrap();
//! assert_eq!(page.items.len(), 1);
//! ```
//!
//! `examples/embed.rs` goes further: filters, totals, and paging with cursors both ways.
//!
//! [`http`] is the HTTP API v1 over a store (an axum `Router` from [`http::app`]), which the
//! `actlog` binary serves.
//!
//! Limits: 1,000 activities a batch, 1,000 a page, the field sizes in [`model`]'s constants,
//! the filter bounds [`MAX_LIST`], [`MAX_CONDITIONS`], [`MAX_CONDITION_VALUES`] and
//! [`MAX_OPERAND_BYTES`]. Reads are unbounded in time and work unless run inside
//! [`Budget::run`] (the HTTP layer runs every request's reads in one).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;
mod calendar;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod model;
mod query;
mod store;

pub use error::{Error, Result};
pub use model::{
    Activity, Actor, Appended, DisplayText, NewActivity, ObjectRef, Tenant, TenantPatch,
    TenantSettings,
};
pub use query::{
    Budget, Condition, FacetField, FacetRequest, FacetValue, Field, Filter, Op, Operand, Order,
    Page, Query, TimeBound, MAX_CONDITIONS, MAX_CONDITION_VALUES, MAX_LIMIT, MAX_LIST,
    MAX_OPERAND_BYTES,
};
pub use store::{
    ActivityRef, ActorRef, ApiKeyRecord, Clock, ContextIter, ContextRef, DisplayRef, Durability,
    ObjRef, Options, Record, Scope, StorageError, Store, VerifyReport,
};
/// Storage fault injection, for the crate's own tests: not part of the API.
#[doc(hidden)]
pub use store::{FaultHook, FaultPoint};
