//! The web console in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! with the `fantoccini` client) against the real router served on 127.0.0.1:0.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them these tests print why and pass, unless `CI` is set: then they fail, because CI
//! installs both (`.ci/run`). One browser runs at a time; every wait is bounded, and a whole
//! scenario has [`SCENARIO_LIMIT`]. Screenshots go to `target/console-screenshots/`.
//!
//! The headers and asset routes, which need no browser, are tested in `headers.rs`.

mod browser;
mod headers;
mod scenarios;

use std::time::Duration;

/// The longest one browser scenario may take, start and shutdown of the browser included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);
