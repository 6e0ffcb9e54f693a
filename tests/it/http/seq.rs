//! The log's own order over HTTP: `seq` and `recorded_at` on every activity and acknowledgement,
//! replays answering with the original ones, `order=seq` with `after_seq` and cursors, and bad
//! values rejected with the field named.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::http::{activity, call, env};

fn seqs(page: &Value) -> Vec<u64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn seq_and_recorded_at_are_assigned_served_and_kept_by_replays() {
    let env = env();
    let key = env.key("a", "read_write").to_owned();
    let first = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&activity("doc.created", "1"))
        .send(&env.app)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.json["seq"], 1, "{}", first.text());
    let recorded = first.json["recorded_at"].as_str().unwrap().to_owned();
    let id = first.json["id"].as_str().unwrap().to_owned();

    // A batch: two new activities and a replay of the first.
    let mut replay = activity("doc.created", "1");
    replay["id"] = json!(id);
    let batch = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&json!({"activities": [activity("doc.updated", "2"), replay, activity("doc.deleted", "3")]}))
        .send(&env.app)
        .await;
    assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.text());
    let acks = batch.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", batch.text()));
    let got: Vec<(u64, bool)> = acks
        .iter()
        .map(|a| (a["seq"].as_u64().unwrap(), a["created"].as_bool().unwrap()))
        .collect();
    assert_eq!(got, [(2, true), (1, false), (3, true)]);
    assert_eq!(
        acks[1]["recorded_at"],
        recorded.as_str(),
        "a replay keeps its recorded_at"
    );
    assert!(acks[0]["recorded_at"].as_str().unwrap() >= recorded.as_str());

    // Served on reads, newest first by default.
    let list = call(Method::GET, "/v1/activities")
        .key(&key)
        .send(&env.app)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let mut s = seqs(&list.json);
    s.sort();
    assert_eq!(s, [1, 2, 3]);
    let one = call(Method::GET, &format!("/v1/activities/{id}"))
        .key(&key)
        .send(&env.app)
        .await;
    assert_eq!(
        (one.json["seq"].as_u64(), one.json["recorded_at"].as_str()),
        (Some(1), Some(recorded.as_str()))
    );

    // A served activity posted back as it is: accepted, `seq` and `recorded_at` ignored, so it
    // is a replay of the original.
    let back = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&one.json)
        .send(&env.app)
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert_eq!(back.json["seq"], 1);
    let mut forged = one.json.clone();
    forged["seq"] = json!(999);
    forged["recorded_at"] = json!("2001-01-01T00:00:00Z");
    let back = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&forged)
        .send(&env.app)
        .await;
    assert_eq!(
        (back.status, back.json["seq"].as_u64()),
        (StatusCode::OK, Some(1))
    );

    // Each tenant has its own log.
    let other = call(Method::POST, "/v1/activities")
        .key(env.key("b", "write"))
        .json(&activity("doc.created", "b"))
        .send(&env.app)
        .await;
    assert_eq!(other.json["seq"], 1);
}

#[tokio::test]
async fn order_seq_reads_the_log_in_append_order_from_any_offset() {
    let env = env();
    let key = env.key("a", "read_write").to_owned();
    // created_at out of append order: the log's order is the append order regardless.
    let times = [
        "2030-01-01T00:00:00Z",
        "2001-01-01T00:00:00Z",
        "2020-06-01T00:00:00Z",
    ];
    for i in 0..12 {
        let mut a = activity(
            if i % 2 == 0 {
                "doc.created"
            } else {
                "doc.updated"
            },
            &i.to_string(),
        );
        a["created_at"] = json!(times[i % 3]);
        let r = call(Method::POST, "/v1/activities")
            .key(&key)
            .json(&a)
            .send(&env.app)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // Pages of 5 forward, then back with prev_cursor.
    let mut all = vec![];
    let mut pages = vec![];
    let mut uri = "/v1/activities?order=seq&limit=5".to_owned();
    loop {
        let page = call(Method::GET, &uri).key(&key).send(&env.app).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        all.extend(seqs(&page.json));
        pages.push(page.json.clone());
        match page.json["pagination"]["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/activities?order=seq&limit=5&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(all, (1..=12).collect::<Vec<u64>>());
    let last = pages.last().unwrap();
    let c = last["pagination"]["prev_cursor"].as_str().unwrap();
    let back = call(
        Method::GET,
        &format!("/v1/activities?order=seq&limit=5&cursor={c}"),
    )
    .key(&key)
    .send(&env.app)
    .await;
    assert_eq!(seqs(&back.json), [6, 7, 8, 9, 10]);

    // after_seq: what came after an offset, with filters.
    let after = call(
        Method::GET,
        "/v1/activities?order=seq&after_seq=7&action=doc.created",
    )
    .key(&key)
    .send(&env.app)
    .await;
    assert_eq!(seqs(&after.json), [9, 11]);
    let body = call(Method::POST, "/v1/activities/query")
        .key(&key)
        .json(&json!({"order": "seq", "after_seq": 10, "include_total": true}))
        .send(&env.app)
        .await;
    assert_eq!(body.status, StatusCode::OK, "{}", body.text());
    assert_eq!(seqs(&body.json), [11, 12]);
    assert_eq!(body.json["pagination"]["total"], 2);
    // Export takes the same filters and order: the log after an offset, as NDJSON.
    let export = call(Method::GET, "/v1/activities/export?order=seq&after_seq=10")
        .key(&key)
        .send(&env.app)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text());
    let exported: Vec<u64> = export
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(exported, [11, 12]);
    // after_seq in a time order, and seq / recorded_at in q.
    let desc = call(Method::GET, "/v1/activities?after_seq=9")
        .key(&key)
        .send(&env.app)
        .await;
    let mut s = seqs(&desc.json);
    s.sort();
    assert_eq!(s, [10, 11, 12]);
    let q = call(
        Method::GET,
        "/v1/activities?order=seq&q=%7B%22seq%22%3A%7B%22between%22%3A%5B3%2C5%5D%7D%7D",
    )
    .key(&key)
    .send(&env.app)
    .await;
    assert_eq!(seqs(&q.json), [3, 4, 5], "{}", q.text());
    let q = call(
        Method::GET,
        "/v1/activities?order=seq&q=%7B%22recorded_at%22%3A%7B%22lt%22%3A%222000-01-01T00%3A00%3A00Z%22%7D%7D",
    )
    .key(&key)
    .send(&env.app)
    .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text());
    assert_eq!(seqs(&q.json), Vec::<u64>::new());
}

#[tokio::test]
async fn bad_seq_parameters_are_400s_that_name_the_field() {
    let env = env();
    let key = env.key("a", "read").to_owned();
    for (uri, field) in [
        ("/v1/activities?after_seq=-1", "after_seq"),
        ("/v1/activities?after_seq=x", "after_seq"),
        ("/v1/activities?after_seq=18446744073709551616", "after_seq"),
        ("/v1/activities?order=sequence", "order"),
        (
            "/v1/activities?q=%7B%22seq%22%3A%7B%22gt%22%3A%22x%22%7D%7D",
            "q.seq",
        ),
        (
            "/v1/activities?q=%7B%22seq%22%3A%7B%22contains%22%3A%221%22%7D%7D",
            "q.seq",
        ),
    ] {
        let r = call(Method::GET, uri).key(&key).send(&env.app).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        assert_eq!(r.field(), Some(field), "{uri}: {}", r.text());
    }
}
