//! The harness: a chromedriver process and its browser session, the server, and bounded waits.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::http::{call, env, Env};

pub type Result<T = ()> = anyhow::Result<T>;

/// How long a single wait for the page may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// One browser at a time: Chromium is heavy and the machine small, and the other integration
/// tests run beside these.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where screenshots go: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")))
        .join("console-screenshots")
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The browser and its driver, or why they cannot be used.
fn tools() -> std::result::Result<(PathBuf, PathBuf), String> {
    let chromium = on_path(&["chromium", "chromium-browser"])
        .ok_or("chromium is not installed (apt-get install -y chromium chromium-driver)")?;
    let driver = on_path(&["chromedriver"])
        .ok_or("chromedriver is not installed (apt-get install -y chromium chromium-driver)")?;
    Ok((chromium, driver))
}

/// The actlog server under test: the real router, in this process, on a real socket.
pub struct Site {
    pub env: Env,
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Site {
    pub async fn start() -> Site {
        let env = env();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = env.app.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Site {
            env,
            base: format!("http://{addr}"),
            server,
        }
    }

    /// Appends through the API (tenant `tenant`'s write key) and checks it was written.
    pub async fn append(&self, tenant: &'static str, activities: Vec<Value>) {
        for chunk in activities.chunks(1000) {
            let r = call(Method::POST, "/v1/activities")
                .key(self.env.key(tenant, "write"))
                .json(&json!({ "activities": chunk }))
                .send(&self.env.app)
                .await;
            assert_eq!(r.status.as_u16(), 201, "{}", r.text());
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// chromedriver's (Selenium-era) log endpoint, which Chrome still serves: the browser console's
/// entries since the last call (`goog:loggingPrefs` turns it on).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// A headless Chromium session.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub downloads: tempfile::TempDir,
    driver: Child,
    _profile: tempfile::TempDir,
    name: &'static str,
    /// Every console entry read so far (the endpoint hands each out once).
    log: std::sync::Mutex<Vec<Value>>,
}

/// Runs `scenario` in a fresh browser against `site`, then shuts the browser down, whatever the
/// outcome. Skips (prints why) when the browser is missing and `CI` is not set; fails under CI.
pub async fn with_browser(
    name: &'static str,
    site: &Site,
    scenario: impl AsyncFnOnce(&Browser) -> Result,
) {
    let (chromium, driver) = match tools() {
        Ok(t) => t,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set, so the browser tests must run, but {why}"
            );
            eprintln!("skipping browser test {name}: {why}");
            return;
        }
    };
    let _one = ONE_BROWSER.lock().await;
    let run = async {
        let b = Browser::launch(name, &chromium, &driver, &site.base).await?;
        let outcome = scenario(&b).await;
        if outcome.is_err() {
            let _ = b.screenshot(&format!("failed-{name}")).await;
        }
        b.shutdown().await;
        outcome
    };
    match tokio::time::timeout(super::SCENARIO_LIMIT, run).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("browser test {name}: {e:#}"),
        Err(_) => panic!("browser test {name} took over {:?}", super::SCENARIO_LIMIT),
    }
}

impl Browser {
    async fn launch(
        name: &'static str,
        chromium: &Path,
        driver: &Path,
        base: &str,
    ) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let downloads = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log"))?;
        // Its own process group, so the browser it starts can be ended with it (see Drop).
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting chromedriver")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("chromedriver exited at start: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("chromedriver did not listen on {addr} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // The flags that work on this kind of machine (no network but the registries):
                // without the background-networking ones Chromium keeps dialling out.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1600,1000",
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 10_000, "pageLoad": 20_000, "implicit": 0},
            // A dialog (an alert from injected markup) stays open for the test to find.
            "unhandledPromptBehavior": "ignore",
        });
        let serde_json::Value::Object(caps) = caps else {
            bail!("capabilities are an object");
        };
        let connect = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await;
        let client = match connect {
            Ok(c) => c,
            Err(e) => {
                kill_group(&mut child);
                let log = std::fs::read_to_string(profile.path().join("chromedriver.log"))
                    .unwrap_or_default();
                bail!("no browser session: {e}\nchromedriver log:\n{log}");
            }
        };
        Ok(Browser {
            client,
            base: base.to_owned(),
            downloads,
            driver: child,
            _profile: profile,
            name,
            log: std::sync::Mutex::new(Vec::new()),
        })
    }

    async fn shutdown(self) {
        // Ends the session, which closes the browser; Drop then ends chromedriver.
        let _ = tokio::time::timeout(Duration::from_secs(20), self.client.clone().close()).await;
    }

    pub async fn goto(&self, path: &str) -> Result {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .with_context(|| format!("opening {path}"))
    }

    /// Runs a script (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.client
            .execute(script, args)
            .await
            .with_context(|| format!("running {script}"))
    }

    /// Waits until `expr` (a JavaScript expression) is truthy, polling every 50 ms for at most
    /// [`WAIT`]; returns its value.
    pub async fn wait_for(&self, what: &str, expr: &str) -> Result<Value> {
        self.wait_for_within(what, expr, WAIT).await
    }

    pub async fn wait_for_within(&self, what: &str, expr: &str, limit: Duration) -> Result<Value> {
        let script = format!("return ({expr});");
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.js(&script, vec![]).await?;
            let truthy = match &last {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = self
            .js(
                "return document.getElementById('status')?.textContent",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        bail!("waited {limit:?} for {what} ({expr}); last value {last}; status line {status}")
    }

    /// Types into the element `css` after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> Result {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    pub async fn text(&self, css: &str) -> Result<String> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no element {css}"))
    }

    /// The console's own counters (`window.actlogConsole`).
    pub async fn rows(&self) -> Result<u64> {
        let v = self
            .js("return window.actlogConsole.rows()", vec![])
            .await?;
        v.as_u64().ok_or_else(|| anyhow!("rows() gave {v}"))
    }

    /// Waits for the list to settle: signed in, nothing loading.
    pub async fn settled(&self) -> Result {
        self.wait_for(
            "the list to load",
            "window.actlogConsole && !document.getElementById('app').hidden && !window.actlogConsole.loading()",
        )
        .await
        .map(|_| ())
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, key: &str) -> Result {
        self.wait_for(
            "the sign-in form",
            "!document.getElementById('signin').hidden",
        )
        .await?;
        self.type_into("#key", key).await?;
        self.click("#signin-submit").await?;
        self.settled().await
    }

    /// Saves a screenshot as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Every browser console entry so far.
    pub async fn console_log(&self) -> Result<Vec<Value>> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .context("reading the browser log")?;
        let mut log = self.log.lock().map_err(|_| anyhow!("log lock"))?;
        if let Value::Array(entries) = v {
            log.extend(entries);
        }
        Ok(log.clone())
    }

    /// Fails on any console entry at level SEVERE (errors, failed loads, CSP violations)
    /// except those `expected` accepts.
    pub async fn no_console_errors(&self, expected: impl Fn(&str) -> bool) -> Result {
        let log = self.console_log().await?;
        let errors: Vec<&Value> = log
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| !expected(e["message"].as_str().unwrap_or("")))
            .collect();
        if !errors.is_empty() {
            bail!("{}: console errors: {errors:#?}", self.name);
        }
        Ok(())
    }

    /// Waits for a finished download whose name ends in `suffix`; returns its text.
    pub async fn download(&self, suffix: &str) -> Result<(String, String)> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            for entry in std::fs::read_dir(self.downloads.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(suffix) {
                    return Ok((name, std::fs::read_to_string(entry.path())?));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("no download ending in {suffix} within {WAIT:?}")
    }
}

/// Ends chromedriver and the browser it started: they share the process group made at spawn.
fn kill_group(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .status();
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
