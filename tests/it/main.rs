//! Integration tests, linked into one binary.

mod crash;
mod cursors;
mod damaged;
mod exactly_once;
mod faults;
mod model;
mod paging;
mod store;
