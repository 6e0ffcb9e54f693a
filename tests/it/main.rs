//! Integration tests, linked into one binary. One module per area.

mod cli;
mod http;
mod profiles;
mod server;
