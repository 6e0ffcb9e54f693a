//! The engines under test, each behind [`super::engine::Engine`].

mod actlog;
mod sqlite;

pub use actlog::ActlogEngine;
pub use sqlite::SqliteEngine;
