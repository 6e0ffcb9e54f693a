//! What a user does with the console, in a real browser.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::Locator;
use serde_json::{json, Value};

use super::browser::{with_browser, Browser, Result, Site};

const ACTIONS: [&str; 5] = [
    "invoice.sent",
    "invoice.paid",
    "invoice.voided",
    "user.login",
    "subscription.paused",
];
const NAMES: [&str; 3] = ["Ana", "Bo", "Cy"];

/// The id of seeded activity `i`.
fn id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// `n` activities, one every 10 minutes from 2024-03-01 09:00 UTC (so they span days), with
/// every field the console shows; every 10th has `changes` in two of the shapes writers use.
fn seeded(n: usize) -> Vec<Value> {
    let base = chrono::DateTime::parse_from_rfc3339("2024-03-01T09:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let action = ACTIONS[i % ACTIONS.len()];
            let name = NAMES[i % NAMES.len()];
            let kind = action.split('.').next().unwrap_or("x");
            let at = base + chrono::Duration::minutes(10 * i64::try_from(i).unwrap());
            let mut a = json!({
                "id": id(i),
                "created_at": at.to_rfc3339(),
                "action": action,
                "resource": {"type": kind, "id": format!("{kind}-{i}")},
                "actor": {"type": if i % 7 == 0 { "api" } else { "user" }, "id": format!("u-{}", i % 3),
                          "name": name, "email": format!("{}@example.com", name.to_lowercase())},
                "context": {"origin": if i % 2 == 0 { "api" } else { "ui" }, "request": format!("req-{i}")},
                "summary": format!("{name} {} {kind}-{i}", action.split('.').nth(1).unwrap_or("")),
            });
            if i % 4 == 0 {
                a["target"] = json!({"type": "customer", "id": format!("c-{}", i % 5)});
            }
            if i % 10 == 0 {
                a["changes"] = json!({
                    "status": ["draft", "sent"],
                    "total": {"from": 100, "to": 120},
                    "address": {"before": {"city": "Ljubljana", "zip": "1000"},
                                "after": {"city": "Maribor", "zip": "1000"}},
                });
                a["metadata"] = json!({"ip": "10.0.0.1"});
            }
            a
        })
        .collect()
}

fn count(acts: &[Value], pred: impl Fn(&Value) -> bool) -> u64 {
    u64::try_from(acts.iter().filter(|a| pred(a)).count()).unwrap()
}

/// Waits until the list is settled at `rows` rows and `extra` (JavaScript) holds.
async fn rows_become(b: &Browser, rows: u64, extra: &str) -> Result {
    b.wait_for(
        &format!("{rows} rows and {extra}"),
        &format!(
            "window.actlogConsole && !window.actlogConsole.loading() && window.actlogConsole.rows() === {rows} && ({extra})"
        ),
    )
    .await
    .map(|_| ())
}

/// The visible cells of a column (`time`, `action`, `actor`, `resource`, `target`, `summary`),
/// top to bottom.
async fn column(b: &Browser, name: &str) -> Result<Vec<String>> {
    let v = b
        .js(
            "return [...document.querySelectorAll('#list .row:not([hidden])')]
                .sort((x, y) => Number(x.dataset.index) - Number(y.dataset.index))
                .map((r) => r.querySelector('.c-' + arguments[0]).textContent)",
            vec![json!(name)],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

async fn apply(b: &Browser) -> Result {
    b.click("#apply").await
}

/// Sets a filter input by script (date inputs take typed text by locale) and applies.
async fn set_field(b: &Browser, css: &str, value: &str) -> Result {
    b.js(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![json!(css), json!(value)],
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_filter_scroll_open_export_and_share() {
    let site = Site::start().await;
    let acts = seeded(250);
    site.append("a", acts.clone()).await;
    site.append(
        "b",
        vec![json!({"action": "b.only", "resource": {"type": "Thing"}, "summary": "only in tenant b"})],
    )
    .await;
    let admin = site.env.admin.clone();
    with_browser("main", &site, async |b: &Browser| {
        b.goto("/").await?;
        b.wait_for("the sign-in form", "!document.getElementById('signin').hidden").await?;
        let paint = b
            .js("const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;", vec![])
            .await?;
        b.client.refresh().await?;
        b.wait_for("the sign-in form", "!document.getElementById('signin').hidden").await?;
        let warm = b
            .js("const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;", vec![])
            .await?;
        // Measured, not asserted (the machine is shared): a new browser's first page, then a reload.
        eprintln!("console first contentful paint: {paint} ms cold, {warm} ms on reload");
        b.screenshot("signin").await?;

        // A wrong key is refused and not kept.
        b.type_into("#key", "actlog_0123456789abcdef_wrong").await?;
        b.click("#signin-submit").await?;
        b.wait_for("the refusal", "document.getElementById('signin-error').textContent").await?;
        ensure!(b.js("return sessionStorage.length", vec![]).await? == json!(0));

        // Sign in: newest first, one page of 100.
        b.sign_in(&admin).await?;
        rows_become(b, 100, "true").await?;
        let actions = column(b, "action").await?;
        ensure!(actions.first().map(String::as_str) == Some(ACTIONS[249 % 5]), "{actions:?}");
        ensure!(b.text("#who").await?.starts_with("admin key"));
        // The key is in sessionStorage only: not in the URL, not in localStorage.
        let url = b.client.current_url().await?.to_string();
        ensure!(!url.contains(&admin), "the key is in the URL");
        ensure!(b.js("return localStorage.length", vec![]).await? == json!(0));
        ensure!(b.js("return sessionStorage.getItem('actlog.key')", vec![]).await? == json!(admin));

        // Infinite scroll: reaching the end fetches the next cursor's page.
        b.js("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;", vec![]).await?;
        rows_become(b, 200, "true").await?;
        let dom = b.js("return window.actlogConsole.domRows()", vec![]).await?;
        ensure!(dom.as_u64().is_some_and(|n| n < 80), "{dom} rows in the DOM");
        b.js("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;", vec![]).await?;
        rows_become(b, 250, "!window.actlogConsole.hasMore()").await?;
        ensure!(b.text("#status").await?.contains("end of results"));

        // Filter: an action prefix, typed.
        b.type_into("#f-action", "invoice.*").await?;
        apply(b).await?;
        let invoices = count(&acts, |a| a["action"].as_str().unwrap().starts_with("invoice."));
        rows_become(b, 100, "location.hash.includes('action=invoice.*')").await?;
        b.js("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;", vec![]).await?;
        rows_become(b, invoices, "!window.actlogConsole.hasMore()").await?;
        b.js("document.getElementById('list').scrollTop = 0;", vec![]).await?;
        let actions = column(b, "action").await?;
        ensure!(actions.iter().all(|a| a.starts_with("invoice.")), "{actions:?}");

        // Facets: the action dropdown lists values with their counts; picking one filters.
        let logins = count(&acts, |a| a["action"] == "user.login");
        let option = b
            .wait_for(
                "the action facet",
                "[...document.querySelectorAll('select[data-facet=action] option')].map((o) => o.textContent).find((t) => t.startsWith('user.login'))",
            )
            .await?;
        ensure!(option == json!(format!("user.login ({logins})")), "{option}");
        b.client
            .find(Locator::Css("select[data-facet=action]"))
            .await?
            .select_by_value("user.login")
            .await?;
        rows_become(b, logins, "location.hash.includes('action=user.login')").await?;
        ensure!(b.js("return document.getElementById('f-action').value", vec![]).await? == json!("user.login"));

        // Context, actor and dates (days in the tenant's zone, until inclusive) together.
        b.click("#clear").await?;
        rows_become(b, 100, "!location.hash.includes('action=')").await?;
        set_field(b, "#f-context", "origin=ui").await?;
        b.type_into("#f-actor_name", "Ana").await?;
        set_field(b, "#f-since", "2024-03-02").await?;
        set_field(b, "#f-until", "2024-03-02").await?;
        apply(b).await?;
        let expect = count(&acts, |a| {
            a["context"]["origin"] == "ui"
                && a["actor"]["name"] == "Ana"
                && a["created_at"].as_str().unwrap().starts_with("2024-03-02")
        });
        ensure!(expect > 0);
        rows_become(b, expect, "location.hash.includes('context.origin=ui')").await?;
        let names = column(b, "actor").await?;
        ensure!(names.iter().all(|n| n == "Ana"), "{names:?}");

        // Free text: summary contains, any case.
        b.click("#clear").await?;
        rows_become(b, 100, "!location.hash.includes('context.')").await?;
        b.type_into("#f-text", "SENT INVOICE-1").await?;
        apply(b).await?;
        let expect = count(&acts, |a| {
            a["summary"].as_str().unwrap().to_lowercase().contains("sent invoice-1")
        });
        rows_become(b, expect, "location.hash.includes('text=')").await?;

        // The view is a link: the filter is in the URL (not the key) and comes back from it.
        b.click("#clear").await?;
        rows_become(b, 100, "!location.hash.includes('text=')").await?;
        b.type_into("#f-resource_type", "invoice").await?;
        b.type_into("#f-target_id", "c-0").await?;
        apply(b).await?;
        let expect = count(&acts, |a| a["resource"]["type"] == "invoice" && a["target"]["id"] == "c-0");
        rows_become(b, expect, "location.hash.includes('target_id=c-0')").await?;
        let link = b.client.current_url().await?.to_string();
        ensure!(!link.contains(&admin));
        b.goto("/").await?;
        b.settled().await?;
        b.client.goto(&link).await?;
        b.client.refresh().await?;
        rows_become(b, expect, "document.getElementById('f-target_id').value === 'c-0'").await?;

        // Export the current filter: fetched with the key, saved through a Blob URL.
        b.click("#export-csv").await?;
        let (name, csv) = b.download(".csv").await?;
        ensure!(name.starts_with("actlog-a-"), "{name}");
        let lines: Vec<&str> = csv.lines().collect();
        ensure!(lines.first().is_some_and(|h| h.starts_with("id,created_at,action")), "{csv}");
        ensure!(u64::try_from(lines.len())? == expect + 1, "{} lines for {expect}", lines.len());
        b.click("#export-ndjson").await?;
        let (_, nd) = b.download(".ndjson").await?;
        let exported: Vec<Value> = nd.lines().map(serde_json::from_str).collect::<std::result::Result<_, _>>()?;
        ensure!(u64::try_from(exported.len())? == expect);
        ensure!(exported.iter().all(|a| a["target"]["id"] == "c-0"));

        // A detail: click a row; the drawer shows the whole activity and `changes` as a diff.
        b.click("#clear").await?;
        rows_become(b, 100, "!location.hash.includes('target_id')").await?;
        b.type_into("#f-id", &id(240)).await?;
        apply(b).await?;
        rows_become(b, 1, "location.hash.includes('id=')").await?;
        b.click("#list .row[data-index='0']").await?;
        b.wait_for("the drawer", "!document.getElementById('drawer').hidden && document.querySelector('#drawer-body .diff')").await?;
        let drawer = b.text("#drawer-body").await?;
        ensure!(drawer.contains(&id(240)), "{drawer}");
        let diff = b
            .js(
                "return [...document.querySelectorAll('#drawer-body .diff tr')].slice(1).map((r) => [...r.children].map((c) => c.textContent))",
                vec![],
            )
            .await?;
        ensure!(
            diff == json!([
                ["address.city", "Ljubljana", "Maribor"],
                ["status", "draft", "sent"],
                ["total", "100", "120"],
            ]),
            "{diff}"
        );
        ensure!(b.js("return location.hash", vec![]).await?.as_str().unwrap_or("").contains(&format!("open={}", id(240))));
        // A wider view for the screenshot, then close with Escape.
        b.click("#clear").await?;
        rows_become(b, 100, "!location.hash.includes('id=')").await?;
        // Row 9 is activity 240, which has changes.
        b.click("#list .row[data-index='9']").await?;
        b.wait_for("the drawer", "document.getElementById('drawer-title').textContent === 'invoice.sent' && document.querySelector('#drawer-body .diff')").await?;
        b.js("document.getElementById('filters').scrollTop = 0;", vec![]).await?;
        b.screenshot("detail").await?;
        b.client.find(Locator::Css("#list")).await?.send_keys("\u{e00c}").await?;
        b.wait_for("the drawer to close", "document.getElementById('drawer').hidden").await?;
        b.screenshot("list").await?;

        // The tenant picker (admin keys): tenant b's log, and only b's.
        b.client.find(Locator::Css("#tenant")).await?.select_by_value("b").await?;
        rows_become(b, 1, "location.hash.includes('tenant=b')").await?;
        ensure!(column(b, "summary").await? == ["only in tenant b"]);

        // The one expected error: the wrong key's 401 at the start.
        b.no_console_errors(|m| m.contains("/v1/tenants") && m.contains("status of 401"))
            .await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_shows_new_activities_of_the_filter_at_the_top() {
    let site = Site::start().await;
    site.append("a", seeded(20)).await;
    let admin = site.env.admin.clone();
    let site = &site;
    with_browser("tail", site, async |b: &Browser| {
        b.goto("/#action=invoice.*").await?;
        b.sign_in(&admin).await?;
        let before = count(&seeded(20), |a| a["action"].as_str().unwrap().starts_with("invoice."));
        rows_become(b, before, "true").await?;
        b.click("#live").await?;
        b.wait_for("the tail to start", "window.actlogConsole.live()").await?;
        // One that does not match the filter and one that does, written now.
        let posted = Instant::now();
        site.append(
            "a",
            vec![
                json!({"action": "user.login", "resource": {"type": "user"}, "summary": "not for this filter"}),
                json!({"action": "invoice.sent", "resource": {"type": "invoice", "id": "inv-live"},
                       "summary": "arrived through the tail"}),
            ],
        )
        .await;
        b.wait_for_within(
            "the new activity at the top",
            &format!("window.actlogConsole.rows() === {} && document.querySelector(\"#list .row[data-index='0'] .c-summary\").textContent === 'arrived through the tail'", before + 1),
            Duration::from_secs(10),
        )
        .await?;
        eprintln!("tail: the new activity showed after {:?} (through the stream)", posted.elapsed());
        b.screenshot("live").await?;
        // Nothing else arrives, nothing twice.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ensure!(b.rows().await? == before + 1);
        let summaries = column(b, "summary").await?;
        ensure!(!summaries.iter().any(|s| s == "not for this filter"), "{summaries:?}");
        // Off means off.
        b.click("#live").await?;
        b.wait_for("the tail to stop", "!window.actlogConsole.live()").await?;
        site.append("a", vec![json!({"action": "invoice.paid", "resource": {"type": "invoice"}})]).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ensure!(b.rows().await? == before + 1);
        b.no_console_errors(|_| false).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_activities_is_shown_as_text() {
    const XSS: &str = "<img src=x onerror=alert(1)>";
    let site = Site::start().await;
    site.append(
        "a",
        vec![json!({
            "action": "<b>bold</b>",
            "resource": {"type": "<i>T</i>", "id": "<svg onload=alert(2)>"},
            "actor": {"type": "user", "name": "<script>alert(3)</script>"},
            "context": {"<u>k</u>": "<img src=y onerror=alert(4)>"},
            "summary": XSS,
            "changes": {"note": ["<b>a</b>", "<img src=z onerror=alert(5)>"]},
        })],
    )
    .await;
    // A tenant key this time: no tenant picker, and its tenant is its own.
    let key = site.env.key("a", "read").to_owned();
    with_browser("xss", &site, async |b: &Browser| {
        b.goto("/").await?;
        b.sign_in(&key).await?;
        rows_become(b, 1, "true").await?;
        ensure!(b.text("#who").await?.starts_with("tenant key"));
        ensure!(b.js("return document.getElementById('tenant-label').hidden", vec![]).await? == json!(true));
        ensure!(column(b, "summary").await? == [XSS]);
        ensure!(column(b, "action").await? == ["<b>bold</b>"]);
        ensure!(column(b, "actor").await? == ["<script>alert(3)</script>"]);
        b.click("#list .row[data-index='0']").await?;
        b.wait_for("the drawer", "document.querySelector('#drawer-body .diff')").await?;
        let drawer = b.text("#drawer-body").await?;
        for s in [XSS, "<svg onload=alert(2)>", "<img src=y onerror=alert(4)>", "<img src=z onerror=alert(5)>"] {
            ensure!(drawer.contains(s), "{s} not shown in {drawer}");
        }
        b.screenshot("xss").await?;
        // No element came out of the data, no dialog opened.
        let made = b
            .js("return document.querySelectorAll('#app img, #app svg, #app script, #app b, #app i, #app u').length", vec![])
            .await?;
        ensure!(made == json!(0), "{made} elements made from activity strings");
        ensure!(b.client.get_alert_text().await.is_err(), "an alert opened");
        // The one expected console error: a tenant key is refused the tenant list (403), which
        // is how the console tells it from the admin key.
        b.no_console_errors(|m| m.contains("/v1/tenants") && m.contains("403")).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_scroll_with_recycled_rows() {
    const N: usize = 10_000;
    let site = Site::start().await;
    let acts = seeded(N);
    site.append("a", acts.clone()).await;
    let admin = site.env.admin.clone();
    with_browser("scroll", &site, async |b: &Browser| {
        b.goto("/").await?;
        b.sign_in(&admin).await?;
        rows_become(b, 100, "true").await?;
        let started = Instant::now();
        let mut most_in_dom = 0;
        // Scroll to the end until every page is in; bounded by the page count with room.
        for _ in 0..(N / 100 + 20) {
            let (rows, more) = (b.rows().await?, b.js("return window.actlogConsole.hasMore()", vec![]).await?);
            if rows == u64::try_from(N)? && more == json!(false) {
                break;
            }
            b.js("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;", vec![]).await?;
            b.wait_for(
                "the next page",
                &format!("!window.actlogConsole.loading() && (window.actlogConsole.rows() > {rows} || !window.actlogConsole.hasMore())"),
            )
            .await?;
            let dom = b.js("return window.actlogConsole.domRows()", vec![]).await?;
            most_in_dom = most_in_dom.max(dom.as_u64().context("domRows")?);
        }
        ensure!(b.rows().await? == u64::try_from(N)?);
        ensure!(most_in_dom < 80, "{most_in_dom} row elements in the DOM");
        let elements = b.js("return document.querySelectorAll('#list .row').length", vec![]).await?;
        ensure!(elements.as_u64().is_some_and(|n| n < 80), "{elements} row elements");
        eprintln!("scroll: {N} rows loaded by infinite scroll in {:?}", started.elapsed());
        // The last row is the oldest; the middle of the list shows what belongs there.
        b.js("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;", vec![]).await?;
        b.wait_for(
            "the last row in view",
            &format!("document.querySelector(\"#list .row[data-index='{}']:not([hidden])\")", N - 1),
        )
        .await?;
        let last = column(b, "summary").await?;
        ensure!(last.last() == acts[0]["summary"].as_str().map(str::to_owned).as_ref(), "{last:?}");
        b.js("const l = document.getElementById('list'); l.scrollTop = 5000 * 30;", vec![]).await?;
        b.wait_for("row 5000 in view", "document.querySelector(\"#list .row[data-index='5000']:not([hidden])\")").await?;
        let text = b.text("#list .row[data-index='5000'] .c-summary").await?;
        ensure!(Some(text.as_str()) == acts[N - 1 - 5000]["summary"].as_str(), "{text}");
        // Smoothness, measured not asserted: 100 frames scrolling 600 px (20 rows) each, their
        // rate and the tasks over 50 ms (what a user feels as jank) among them.
        let m = b
            .client
            .execute_async(
                "const done = arguments[0]; const l = document.getElementById('list');
                 l.scrollTop = 0;
                 let long = 0;
                 const obs = new PerformanceObserver((list) => { long += list.getEntries().length; });
                 obs.observe({ type: 'longtask' });
                 let frames = 0; const t0 = performance.now();
                 function step() { frames++; l.scrollTop += 600;
                   if (frames < 100) requestAnimationFrame(step);
                   else { obs.disconnect(); done([frames / ((performance.now() - t0) / 1000), long]); } }
                 requestAnimationFrame(step);",
                vec![],
            )
            .await?;
        eprintln!(
            "scroll: {:.0} frames a second scrolling 600 px a frame, {} tasks over 50 ms; {} row elements",
            m[0].as_f64().unwrap_or(0.0),
            m[1],
            b.js("return document.querySelectorAll('#list .row').length", vec![]).await?,
        );
        b.screenshot("scrolled").await?;
        b.no_console_errors(|_| false).await
    })
    .await;
}
