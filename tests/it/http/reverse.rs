//! Regression: keys that sled 0.34.7 cannot walk backwards.
//!
//! sled's reverse iteration guesses the key before a node boundary by padding with four 0xFF
//! bytes; when a stored key holds such a run (format 2 wrote one for every time whose big-endian
//! encoding did: the last µs of each 2^32 µs window, the ~17 s before 1970, and caller ids like
//! `…-ffffffffffff`), a node boundary can fall between the guess and the real key and every
//! newest-first list of the tenant answered 500 ("fucked up tree traversal") from then on. A write
//! key could do that on purpose. Format 3 keys never hold four 0xFF bytes in a row.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};

use actlog::http::Config;

use crate::support::http::{call, env_with, Env};

/// One appended activity, as far as the filters below need it.
struct Row {
    id: String,
    time: i64,
    action: String,
    resource_id: String,
    actor: usize,
    target: usize,
    env: usize,
}

fn rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The batch for window `w`: activities at the last µs of a 2^32 µs window and the first µs of
/// the next, some with caller ids full of 0xFF, and a few just before 1970.
fn batch(w: i64, rows: &mut Vec<Row>) -> Value {
    const WINDOW: i64 = 1 << 32;
    let edge = (395_812 + w) * WINDOW; // 2023-11-14 onward
    let mut acts = Vec::new();
    for j in 0..40i64 {
        let n = w * 40 + j;
        let time = match j % 10 {
            9 => -(n + 1), // µs before the epoch: 0x7FFFFFFFFFFFxxxx once sign-flipped
            _ => edge - 1 + (j % 2),
        };
        let ju = usize::try_from(j).unwrap();
        let row = Row {
            id: String::new(),
            time,
            action: ["doc.created", "doc.updated", "doc.deleted"][ju % 3].to_owned(),
            resource_id: format!("d{}", j % 7),
            actor: ju % 3,
            target: ju % 2,
            env: ju % 2,
        };
        let mut a = json!({
            "created_at": rfc3339(time),
            "action": row.action,
            "resource": {"type": "Doc", "id": row.resource_id},
            "actor": {"type": "user", "id": format!("u{}", row.actor), "name": format!("Name {}", row.actor)},
            "target": {"type": "Folder", "id": format!("f{}", row.target)},
            "context": {"env": format!("e{}", row.env)},
        });
        if j % 5 == 0 {
            a["id"] = json!(format!("{n:08x}-ffff-4fff-bfff-ffffffffffff"));
        }
        acts.push(a);
        rows.push(row);
    }
    json!({ "activities": acts })
}

/// Walks a list newest first with `next_cursor`, then back to the start with `prev_cursor`;
/// checks every page is 200, the walk is complete and in order, and the way back mirrors it.
async fn walk(e: &Env, key: &str, filter: &str, expected: &[&Row]) {
    let mut want: Vec<(i64, String)> = expected.iter().map(|r| (r.time, r.id.clone())).collect();
    want.sort();
    want.reverse();
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut prev;
    let base = if filter.is_empty() {
        "/v1/activities?limit=37".to_owned()
    } else {
        format!("/v1/activities?limit=37&{filter}")
    };
    let mut uri = base.clone();
    loop {
        let r = call(Method::GET, &uri).key(key).send(&e.app).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
        let page: Vec<String> = r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        prev = r.json["pagination"]["prev_cursor"]
            .as_str()
            .map(str::to_owned);
        pages.push(page);
        match r.json["pagination"]["next_cursor"].as_str() {
            Some(c) => uri = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages.concat(), want, "{filter}: the newest-first walk");
    // Back from the last page: each prev_cursor gives the page before, in the same order.
    let mut back = pages.len() - 1;
    while let Some(c) = prev.take() {
        let r = call(Method::GET, &format!("{base}&cursor={c}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{filter} (back): {}", r.text());
        let page: Vec<String> = r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        if page.is_empty() {
            break;
        }
        back -= 1;
        assert_eq!(page, pages[back], "{filter}: page {back} walked back");
        prev = r.json["pagination"]["prev_cursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(
        back, 0,
        "{filter}: prev_cursor walks back to the first page"
    );
}

#[tokio::test]
async fn newest_first_survives_keys_full_of_0xff() {
    // Hundreds of pages in a second: past the default per-key rate.
    let mut config = Config::default();
    config.rate_limit.per_second = 0;
    let e = env_with(config);
    let writer = e.key("a", "write").to_owned();
    let reader = e.key("a", "read").to_owned();
    let mut rows = Vec::new();
    for w in 0..40 {
        let first = rows.len();
        let r = call(Method::POST, "/v1/activities")
            .key(&writer)
            .json(&batch(w, &mut rows))
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "window {w}: {}", r.text());
        for (row, out) in rows[first..]
            .iter_mut()
            .zip(r.json["data"].as_array().unwrap())
        {
            row.id = out["id"].as_str().unwrap().to_owned();
        }
        // The attack's probe: the default list, newest first, after every batch.
        let r = call(Method::GET, "/v1/activities?limit=1000")
            .key(&reader)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "window {w}: {}", r.text());
        assert_eq!(
            r.json["data"].as_array().unwrap().len(),
            rows.len().min(1000)
        );
    }
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "every activity got its own id");

    type Pick = fn(&Row) -> bool;
    let filters: [(&str, Pick); 11] = [
        ("", |_| true),
        ("action=doc.updated", |r| r.action == "doc.updated"),
        ("action=doc.*", |_| true),
        ("action=doc.created,doc.deleted", |r| {
            r.action != "doc.updated"
        }),
        ("resource_type=Doc", |_| true),
        ("resource_type=Doc&resource_id=d3", |r| {
            r.resource_id == "d3"
        }),
        ("actor_type=user", |_| true),
        ("actor_type=user&actor_id=u1", |r| r.actor == 1),
        ("actor_name=Name%202", |r| r.actor == 2),
        ("target_type=Folder&target_id=f1", |r| r.target == 1),
        ("context.env=e0", |r| r.env == 0),
    ];
    for (filter, pick) in filters {
        let expected: Vec<&Row> = rows.iter().filter(|r| pick(r)).collect();
        walk(&e, &reader, filter, &expected).await;
    }
    let report = e.store.verify().unwrap();
    assert_eq!(report.problem, None);
}
