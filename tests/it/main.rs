//! Integration tests, linked into one binary. One module per area.

mod cli;
mod crash;
mod faults;
mod http;
mod model;
mod profiles;
mod server;
mod store;
