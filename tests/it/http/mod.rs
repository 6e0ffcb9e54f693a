//! The HTTP API through the router (`app(state)` + `tower::ServiceExt::oneshot`); the harness is
//! `crate::support::http`.

mod isolation;
mod panics;
mod reverse;
mod routes;
mod seq;
mod stream;
