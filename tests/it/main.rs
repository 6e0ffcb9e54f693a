//! Integration tests, linked into one binary.

mod crash;
mod faults;
mod model;
mod store;
