//! Integration tests, linked into one binary.

mod crash;
mod model;
mod store;
