//! Profiles: the four seed systems' own activity-log wire formats, served over the same store and
//! keys as the native API (docs/profiles.md maps every field). Each module parses its seed's request
//! into a `Query` (or a `NewActivity`) and renders stored activities in the seed's JSON; only this
//! module and `http` know JSON shapes.

mod common;
mod sequence;
mod spaceinvoices;
mod subscriptions;
mod velt;
