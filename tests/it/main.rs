//! Integration tests, linked into one binary. One module per area.

mod cli;
mod connections;
mod console;
mod crash;
mod cursors;
mod damaged;
mod deferred;
mod exactly_once;
mod fairshare;
mod faults;
mod follow;
mod hostile;
mod http;
mod kill9;
mod limits;
mod model;
mod paging;
mod profiles;
mod server;
mod store;
mod support;
mod upgrade;
