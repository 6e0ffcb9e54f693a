//! Integration tests, linked into one binary (STYLE.md).

mod profiles;
