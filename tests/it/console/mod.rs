//! The web console's routes: what `GET /` and its assets answer, and their security headers.

mod headers;
