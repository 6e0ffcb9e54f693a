//! One table-driven check per route and per error.

use std::time::Duration;

use actlog::http::{routes, Access, Config};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::http::{activity, call, env, env_with, Call, Env, Resp};

/// Appends `n` activities to tenant `a` with distinct, increasing times; returns their ids in
/// time order.
async fn seed(e: &Env, n: usize) -> Vec<String> {
    let acts: Vec<Value> = (0..n)
        .map(|i| {
            let mut a = activity(
                if i % 2 == 0 {
                    "invoice.sent"
                } else {
                    "invoice.paid"
                },
                &format!("m{i}"),
            );
            a["created_at"] = json!(1_700_000_000_000i64 + i64::try_from(i).unwrap() * 1000);
            a["context"]["parity"] = json!(if i % 2 == 0 { "even" } else { "odd" });
            a
        })
        .collect();
    let r = call(Method::POST, "/v1/activities")
        .key(e.key("a", "write"))
        .json(&json!({ "activities": acts }))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(r: &Resp) -> Vec<String> {
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {}", r.text()))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn append_single_batch_idempotent_and_conflict() {
    let e = env();
    let key = e.key("a", "read_write").to_owned();
    let id = "0190f6f5-0000-7000-8000-000000000001";
    let mut one = activity("invoice.sent", "x");
    one["id"] = json!(id);
    one["created_at"] = json!("2024-05-01T10:00:00.123456Z");
    let mut other = one.clone();
    other["summary"] = json!("different");
    let batch = json!({"activities": [activity("a", "1"), activity("b", "2")]});
    let too_big = json!({"activities": vec![activity("a", "1"); 1001]});
    let half_bad =
        json!({"activities": [activity("a", "ok"), {"action": "b", "resource": {"type": ""}}]});
    // (body, status, error field)
    let table: Vec<(Value, StatusCode, Option<&str>)> = vec![
        (one.clone(), StatusCode::CREATED, None),
        (one.clone(), StatusCode::OK, None),
        (other, StatusCode::CONFLICT, Some("id")),
        (batch, StatusCode::CREATED, None),
        (too_big, StatusCode::BAD_REQUEST, Some("activities")),
        (
            half_bad,
            StatusCode::BAD_REQUEST,
            Some("activities[1].resource.type"),
        ),
        (
            json!({"action": "x"}),
            StatusCode::BAD_REQUEST,
            Some("resource"),
        ),
        (
            json!({"action": "x", "resource": {"type": "T"}, "extra": 1}),
            StatusCode::BAD_REQUEST,
            Some("extra"),
        ),
        (
            json!({"action": "x", "resource": {"type": "T"}, "created_at": "yesterday"}),
            StatusCode::BAD_REQUEST,
            Some("created_at"),
        ),
        (
            json!({"action": "x", "resource": {"type": "T"}, "metadata": [1]}),
            StatusCode::BAD_REQUEST,
            Some("metadata"),
        ),
        (
            json!({"activities": []}),
            StatusCode::BAD_REQUEST,
            Some("activities"),
        ),
        (json!([1, 2]), StatusCode::BAD_REQUEST, None),
    ];
    for (body, status, field) in table {
        let r = call(Method::POST, "/v1/activities")
            .key(&key)
            .json(&body)
            .send(&e.app)
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        if let Some(f) = field {
            assert_eq!(r.field(), Some(f), "{}", r.text());
        }
    }
    // The single append answered with its id and time; nothing of the refused batches landed.
    let r = call(Method::GET, &format!("/v1/activities/{id}"))
        .key(&key)
        .send(&e.app)
        .await;
    assert_eq!(r.json["created_at"], "2024-05-01T10:00:00.123456Z");
    let r = call(Method::GET, "/v1/activities?include_total=true")
        .key(&key)
        .send(&e.app)
        .await;
    assert_eq!(r.json["pagination"]["total"], 3, "{}", r.text());
    // Epoch milliseconds are accepted on input.
    let mut ms = activity("t", "ms");
    ms["created_at"] = json!(1_700_000_000_000i64);
    let r = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&ms)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["created_at"], "2023-11-14T22:13:20.000000Z");
    // A batch whose every activity is there already is a 200.
    let mut again = one.clone();
    again["summary"] = json!("summary x");
    let r = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&json!({"activities": [one]}))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["data"][0]["created"], false);
}

#[tokio::test]
async fn list_filters() {
    let e = env();
    let all = seed(&e, 10).await;
    let key = e.key("a", "read");
    let newest_first: Vec<String> = all.iter().rev().cloned().collect();
    let even: Vec<String> = newest_first
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, x)| x.clone())
        .collect();
    // (query string, expected ids, newest first)
    let table: Vec<(String, Vec<String>)> = vec![
        ("".into(), newest_first.clone()),
        ("action=invoice.sent".into(), even.clone()),
        ("action=invoice.*".into(), newest_first.clone()),
        (
            "action=invoice.sent,invoice.paid".into(),
            newest_first.clone(),
        ),
        ("context.parity=even".into(), even.clone()),
        (
            "resource_type=Invoice&resource_id=inv-m3".into(),
            vec![all[3].clone()],
        ),
        ("actor_type=user&actor_id=u-m4".into(), vec![all[4].clone()]),
        ("actor_name=Name%20m5".into(), vec![all[5].clone()]),
        (
            format!("id={},{}", all[1], all[2]),
            vec![all[2].clone(), all[1].clone()],
        ),
        (
            "since=2023-11-14T22:13:28Z".into(),
            vec![all[9].clone(), all[8].clone()],
        ),
        ("until=2023-11-14T22:13:21Z".into(), vec![all[0].clone()]),
        (
            "since=2023-11-14&until=2023-11-14".into(),
            newest_first.clone(),
        ),
        ("since=2023-11-15".into(), vec![]),
        ("order=asc&limit=3".into(), all[..3].to_vec()),
        (
            "q=%7B%22summary%22%3A%7B%22contains%22%3A%22M7%22%7D%7D".into(),
            vec![all[7].clone()],
        ),
        (
            r#"q={"created_at":{"between":[1700000001000,1700000002000]}}"#
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22"),
            vec![all[2].clone(), all[1].clone()],
        ),
        (
            r#"q={"actor_id":{"notIn":["u-m0","u-m1"]},"context.parity":"odd"}"#
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22"),
            vec![
                all[9].clone(),
                all[7].clone(),
                all[5].clone(),
                all[3].clone(),
            ],
        ),
        ("target_type=Nope".into(), vec![]),
    ];
    for (qs, want) in table {
        let r = call(Method::GET, &format!("/v1/activities?{qs}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{qs}: {}", r.text());
        assert_eq!(ids(&r), want, "{qs}");
        // The same filters as a JSON body give the same answer.
        let mut body = serde_json::Map::new();
        for (k, v) in url_pairs(&qs) {
            body.insert(k, Value::String(v));
        }
        let r = call(Method::POST, "/v1/activities/query")
            .key(key)
            .json(&Value::Object(body))
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{qs}: {}", r.text());
        assert_eq!(ids(&r), want, "POST {qs}");
    }
    // JSON bodies also take arrays, objects for q and context, and numbers.
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .json(&json!({"action": ["invoice.paid"], "context": {"parity": "odd"}, "q": {"resource_id": {"in": ["inv-m1", "inv-m2"]}}, "limit": 5}))
        .send(&e.app)
        .await;
    assert_eq!(ids(&r), vec![all[1].clone()], "{}", r.text());
}

fn url_pairs(qs: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        s.replace("%7B", "{")
            .replace("%7D", "}")
            .replace("%22", "\"")
            .replace("%3A", ":")
            .replace("%20", " ")
    };
    qs.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn list_errors_name_the_field() {
    let e = env();
    let key = e.key("a", "read");
    let table: &[(&str, &str)] = &[
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("order=up", "order"),
        ("since=nope", "since"),
        ("until=2024-13-01", "until"),
        ("id=not-a-uuid", "id"),
        ("colour=red", "colour"),
        ("cursor=garbage", "cursor"),
        ("include_total=maybe", "include_total"),
        ("q=%7B%22colour%22%3A1%7D", "q.colour"),
        (
            "q=%7B%22action%22%3A%7B%22like%22%3A%22x%22%7D%7D",
            "q.action",
        ),
        (
            "q=%7B%22created_at%22%3A%7B%22gt%22%3A%22soon%22%7D%7D",
            "q.created_at",
        ),
        (
            "q=%7B%22action%22%3A%7B%22between%22%3A%5B1%5D%7D%7D",
            "q.action",
        ),
        ("q=notjson", "q"),
        ("action=", "action"),
    ];
    for (qs, field) in table {
        let r = call(Method::GET, &format!("/v1/activities?{qs}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{qs}: {}", r.text());
        assert_eq!(r.code(), Some("invalid_argument"));
        assert_eq!(r.field(), Some(*field), "{qs}: {}", r.text());
    }
    let r = call(Method::POST, "/v1/activities/query")
        .key(key)
        .json(&json!({"colour": "red"}))
        .send(&e.app)
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, Some("colour"))
    );
}

#[tokio::test]
async fn pages_walk_both_ways_and_a_changed_query_rejects_the_cursor() {
    let e = env();
    let all = seed(&e, 7).await;
    let key = e.key("a", "read");
    let mut got = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let qs = match &cursor {
            Some(c) => format!("order=asc&limit=2&cursor={c}"),
            None => "order=asc&limit=2".into(),
        };
        let r = call(Method::GET, &format!("/v1/activities?{qs}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        got.extend(ids(&r));
        pages.push(r.json.clone());
        match r.json["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "runaway paging");
    }
    assert_eq!(got, all);
    assert_eq!(pages.len(), 4);
    // Walk back from the last page with prev_cursor.
    let mut back = ids_of(&pages[3]);
    let mut prev = pages[3]["pagination"]["prev_cursor"]
        .as_str()
        .map(str::to_owned);
    while let Some(c) = prev {
        let r = call(
            Method::GET,
            &format!("/v1/activities?order=asc&limit=2&cursor={c}"),
        )
        .key(key)
        .send(&e.app)
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let mut page = ids(&r);
        page.extend(back);
        back = page;
        prev = r.json["pagination"]["prev_cursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(back, all);
    // The cursor of one query on another query is a 400.
    let c = pages[0]["pagination"]["next_cursor"].as_str().unwrap();
    let r = call(
        Method::GET,
        &format!("/v1/activities?order=desc&limit=2&cursor={c}"),
    )
    .key(key)
    .send(&e.app)
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, Some("cursor"))
    );
}

fn ids_of(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn get_one() {
    let e = env();
    let all = seed(&e, 2).await;
    let key = e.key("a", "read");
    let table: Vec<(String, StatusCode)> = vec![
        (all[0].clone(), StatusCode::OK),
        (
            "0190f6f5-0000-7000-8000-00000000ffff".into(),
            StatusCode::NOT_FOUND,
        ),
        ("not-a-uuid".into(), StatusCode::BAD_REQUEST),
    ];
    for (id, status) in table {
        let r = call(Method::GET, &format!("/v1/activities/{id}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, status, "{id}: {}", r.text());
    }
    let r = call(Method::GET, &format!("/v1/activities/{}", all[1]))
        .key(key)
        .send(&e.app)
        .await;
    assert_eq!(r.json["summary"], "summary m1");
    assert_eq!(r.json["context"]["parity"], "odd");
    assert_eq!(r.json["created_at"], "2023-11-14T22:13:21.000000Z");
}

#[tokio::test]
async fn facets() {
    let e = env();
    seed(&e, 5).await;
    let key = e.key("a", "read");
    let table: &[(&str, StatusCode, Value)] = &[
        (
            "field=action",
            StatusCode::OK,
            json!([{"value": "invoice.sent", "count": 3}, {"value": "invoice.paid", "count": 2}]),
        ),
        (
            "field=context.parity&prefix=o",
            StatusCode::OK,
            json!([{"value": "odd", "count": 2}]),
        ),
        (
            "field=resource.type&since=2023-11-14T22:13:23Z",
            StatusCode::OK,
            json!([{"value": "Invoice", "count": 2}]),
        ),
        (
            "field=action&limit=1",
            StatusCode::OK,
            json!([{"value": "invoice.sent", "count": 3}]),
        ),
        ("field=action&until=2020-01-01", StatusCode::OK, json!([])),
        ("", StatusCode::BAD_REQUEST, json!("field")),
        ("field=summary", StatusCode::BAD_REQUEST, json!("field")),
        (
            "field=action&since=x",
            StatusCode::BAD_REQUEST,
            json!("since"),
        ),
        (
            "field=action&bogus=1",
            StatusCode::BAD_REQUEST,
            json!("bogus"),
        ),
    ];
    for (qs, status, want) in table {
        let r = call(Method::GET, &format!("/v1/activities/facets?{qs}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(r.status, *status, "{qs}: {}", r.text());
        if r.status == StatusCode::OK {
            assert_eq!(&r.json["data"], want, "{qs}");
        } else {
            assert_eq!(r.field(), want.as_str(), "{qs}");
        }
    }
}

#[tokio::test]
async fn export_streams_every_match_across_pages() {
    let e = env_with(Config {
        export_page_size: 2,
        ..Config::default()
    });
    let all = seed(&e, 7).await;
    let key = e.key("a", "read");
    let r = call(Method::GET, "/v1/activities/export?order=asc")
        .key(key)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<&str> = lines.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(got, all);
    let r = call(
        Method::GET,
        "/v1/activities/export?format=csv&action=invoice.paid",
    )
    .key(key)
    .send(&e.app)
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[0].starts_with("id,created_at,action,"));
    assert!(rows[1].starts_with(&all[5]), "{text}");
    assert!(
        rows[1].contains(r#""{""marker"":""m5"",""parity"":""odd""}""#),
        "{text}"
    );
    for (qs, field) in [
        ("format=xml", "format"),
        ("since=x", "since"),
        ("limit=5", "limit"),
    ] {
        let r = call(Method::GET, &format!("/v1/activities/export?{qs}"))
            .key(key)
            .send(&e.app)
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{qs}"
        );
    }
}

#[tokio::test]
async fn tenants_and_keys() {
    let e = env();
    let admin = e.admin.clone();
    // (method, uri, body, status, error field)
    type Row<'a> = (Method, &'a str, Option<Value>, StatusCode, Option<&'a str>);
    let table: Vec<Row> = vec![
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "c", "timezone": "Europe/Ljubljana"})),
            StatusCode::CREATED,
            None,
        ),
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "c"})),
            StatusCode::CONFLICT,
            Some("id"),
        ),
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "bad/id"})),
            StatusCode::BAD_REQUEST,
            Some("id"),
        ),
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "d", "timezone": "Mars/Base"})),
            StatusCode::BAD_REQUEST,
            Some("timezone"),
        ),
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "d", "retention_days": 0})),
            StatusCode::BAD_REQUEST,
            Some("retention_days"),
        ),
        (
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "d"})),
            StatusCode::BAD_REQUEST,
            Some("name"),
        ),
        (
            Method::PATCH,
            "/v1/tenants/c",
            Some(json!({"retention_days": 30})),
            StatusCode::OK,
            None,
        ),
        (
            Method::PATCH,
            "/v1/tenants/c",
            Some(json!({"retention_days": null})),
            StatusCode::OK,
            None,
        ),
        (
            Method::PATCH,
            "/v1/tenants/c",
            Some(json!({"timezone": "Nope"})),
            StatusCode::BAD_REQUEST,
            Some("timezone"),
        ),
        (
            Method::PATCH,
            "/v1/tenants/zz",
            Some(json!({"timezone": "UTC"})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::POST,
            "/v1/tenants/c/keys",
            Some(json!({"scope": "admin"})),
            StatusCode::BAD_REQUEST,
            Some("scope"),
        ),
        (
            Method::POST,
            "/v1/tenants/zz/keys",
            Some(json!({"scope": "read"})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/v1/tenants/c/keys/0000000000000000",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (method, uri, body, status, field) in table {
        let mut c = call(method.clone(), uri).key(&admin);
        if let Some(b) = &body {
            c = c.json(b);
        }
        let r = c.send(&e.app).await;
        assert_eq!(r.status, status, "{method} {uri} {body:?}: {}", r.text());
        assert_eq!(r.field(), field, "{method} {uri}: {}", r.text());
    }
    let r = call(Method::GET, "/v1/tenants")
        .key(&admin)
        .send(&e.app)
        .await;
    let names: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(r.json["data"][2]["timezone"], "Europe/Ljubljana");
    assert_eq!(r.json["data"][2]["retention_days"], Value::Null);

    // Issue a key, use it, revoke it, and it stops working at once.
    let r = call(Method::POST, "/v1/tenants/c/keys")
        .key(&admin)
        .json(&json!({"scope": "read_write"}))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = r.json["key"].as_str().unwrap().to_owned();
    let key_id = r.json["key_id"].as_str().unwrap().to_owned();
    let r = call(Method::POST, "/v1/activities")
        .key(&key)
        .json(&activity("x", "c"))
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(e.store.count("c", &actlog::Filter::default()).unwrap(), 1);
    // Under another tenant the key is not found.
    let r = call(Method::DELETE, &format!("/v1/tenants/a/keys/{key_id}"))
        .key(&admin)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(Method::DELETE, &format!("/v1/tenants/c/keys/{key_id}"))
        .key(&admin)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(Method::GET, "/v1/activities")
        .key(&key)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The stored record holds a hash, never the key.
    let rec = e.store.api_key(&key_id).unwrap().unwrap();
    assert!(rec.revoked);
    assert!(!format!("{rec:?}").contains(key.rsplit('_').next().unwrap()));
}

#[tokio::test]
async fn admin_picks_a_tenant_by_header() {
    let e = env();
    let admin = e.admin.clone();
    call(Method::POST, "/v1/activities")
        .key(&admin)
        .header("x-tenant-id", "b")
        .json(&activity("x", "b"))
        .send(&e.app)
        .await;
    call(Method::POST, "/v1/activities")
        .key(&admin)
        .json(&activity("x", "default"))
        .send(&e.app)
        .await;
    let count = |t: &str| e.store.count(t, &actlog::Filter::default()).unwrap();
    assert_eq!((count("a"), count("b")), (1, 1));
    type Row<'a> = (&'a [(&'a str, &'a str)], StatusCode, u64);
    let table: &[Row] = &[
        (&[], StatusCode::OK, 1),
        (&[("x-tenant-id", "b")], StatusCode::OK, 1),
        (&[("x-entity-id", "b")], StatusCode::OK, 1),
        (&[("x-tenant-id", "zz")], StatusCode::NOT_FOUND, 0),
        (&[("x-tenant-id", "")], StatusCode::OK, 1),
        (
            &[("x-tenant-id", "a"), ("x-entity-id", "b")],
            StatusCode::BAD_REQUEST,
            0,
        ),
    ];
    for (headers, status, total) in table {
        let mut c = call(Method::GET, "/v1/activities?include_total=true").key(&admin);
        for (k, v) in *headers {
            c = c.header(k, v);
        }
        let r = c.send(&e.app).await;
        assert_eq!(r.status, *status, "{headers:?}: {}", r.text());
        if r.status == StatusCode::OK {
            assert_eq!(r.json["pagination"]["total"], *total);
        }
    }
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let e = env();
    seed(&e, 3).await;
    let r = call(Method::GET, "/healthz").send(&e.app).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    call(Method::GET, "/v1/activities").send(&e.app).await;
    let r = call(Method::GET, "/metrics").send(&e.app).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    for needle in [
        r#"actlog_http_requests_total{method="POST",route="/v1/activities",status="201"} 1"#,
        r#"actlog_http_requests_total{method="GET",route="/v1/activities",status="401"} 1"#,
        r#"actlog_http_request_duration_seconds_bucket{method="POST",route="/v1/activities",le="+Inf"} 1"#,
        "actlog_activities_appended_total 3",
        "actlog_store_size_bytes ",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let r = call(Method::GET, "/openapi.json").send(&e.app).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["openapi"], "3.1.0");
    // Every served route is documented, with its auth.
    for spec in routes() {
        let op = &r.json["paths"][spec.path][spec.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{spec:?} missing from openapi.json");
        assert_eq!(
            op["security"] == json!([]),
            spec.access == Access::Public,
            "{spec:?}"
        );
    }
}

#[tokio::test]
async fn rejections_use_the_error_shape() {
    let e = env_with(Config {
        max_body_bytes: 1024,
        ..Config::default()
    });
    let key = e.key("a", "read_write").to_owned();
    let big = json!({"action": "x", "resource": {"type": "T"}, "summary": "y".repeat(2000)});
    // (request, status, code, field)
    let table: Vec<(Call, StatusCode, &str, Option<&str>)> = vec![
        (
            call(Method::POST, "/v1/activities")
                .key(&key)
                .raw("application/json", b"{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
        (
            call(Method::POST, "/v1/activities")
                .key(&key)
                .raw("text/plain", b"{}"),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("content-type"),
        ),
        (
            call(Method::POST, "/v1/activities")
                .key(&key)
                .raw("application/json", b""),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
        (
            call(Method::POST, "/v1/activities").key(&key).json(&big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
        (
            call(Method::GET, "/v1/activities?limit=%ZZ").key(&key),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
        (
            call(Method::GET, "/v1/nothing").key(&key),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            call(Method::GET, "/v1/activities/%FF%FE").key(&key),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
        (
            call(Method::PATCH, "/v1/tenants/%FF")
                .key(&e.admin)
                .json(&json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
        (
            call(Method::PUT, "/v1/activities").key(&key),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        ),
        (
            call(Method::GET, "/v1/activities").header("authorization", "Basic abc"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        (
            call(Method::GET, "/v1/activities")
                .key(&e.admin)
                .header("x-tenant-id", "zz"),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("x-tenant-id"),
        ),
        (
            call(Method::PATCH, "/v1/tenants/a")
                .key(&e.admin)
                .json(&json!({"retention_days": "x"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("retention_days"),
        ),
    ];
    for (c, status, code, field) in table {
        let what = format!("{} {}", c.method, c.uri);
        let r = c.send(&e.app).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.code(), Some(code), "{what}: {}", r.text());
        assert!(r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if field.is_some() {
            assert_eq!(r.field(), field, "{what}");
        }
        assert!(r.headers.contains_key("x-request-id"), "{what}");
    }
}

/// A request whose body never finishes arriving.
fn stalled_append(key: &str) -> axum::http::Request<axum::body::Body> {
    let first =
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{"))]);
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    axum::http::Request::post("/v1/activities")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503() {
    use tower::ServiceExt;
    let e = env_with(Config {
        request_timeout: Duration::from_millis(200),
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let resp = e
        .app
        .clone()
        .oneshot(stalled_append(e.key("a", "write")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(e.store.count("a", &actlog::Filter::default()).unwrap(), 0);
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_wait_for_a_slot() {
    use tower::ServiceExt;
    let e = env_with(Config {
        request_timeout: Duration::from_millis(400),
        concurrency_limit: 1,
        ..Config::default()
    });
    let key = e.key("a", "read_write").to_owned();
    // A stalled body holds the only slot until its timeout (400 ms)...
    let stalled = tokio::spawn(e.app.clone().oneshot(stalled_append(&key)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...so a request behind it waits: it is served when the slot frees, or times out itself
    // (the two deadlines are 50 ms apart); either way not before the slot was free.
    let started = std::time::Instant::now();
    let r = call(Method::GET, "/v1/activities")
        .key(&key)
        .send(&e.app)
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.status == StatusCode::OK || r.code() == Some("unavailable"),
        "{}",
        r.text()
    );
    let resp = stalled.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    // With the slot free, requests go straight through.
    let started = std::time::Instant::now();
    let r = call(Method::GET, "/v1/activities")
        .key(&key)
        .send(&e.app)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(400));
}

/// No input makes the server answer 5xx (or panic): hostile values in every position.
#[tokio::test]
async fn hostile_input_is_a_4xx() {
    let e = env();
    seed(&e, 5).await;
    let key = e.key("a", "read_write").to_owned();
    let long = "x".repeat(5000);
    let bodies = [
        json!({"action": "x", "resource": {"type": "T"}, "created_at": -62_135_596_800_001i64}),
        json!({"action": "x", "resource": {"type": "T"}, "created_at": i64::MAX}),
        json!({"action": "x", "resource": {"type": "T"}, "created_at": "0000-01-01T00:00:00Z"}),
        json!({"action": "x", "resource": {"type": "T"}, "created_at": 1.5}),
        json!({"action": "x", "resource": {"type": "T"}, "id": "nope"}),
        json!({"action": long, "resource": {"type": "T"}}),
        json!({"action": "x", "resource": {"type": "T"}, "context": {"a": 1}}),
        json!({"action": "x", "resource": {"type": "T"}, "context": (0..17).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
        json!({"action": "x", "resource": {"type": "T"}, "display": {"template": "t", "data": 3}}),
        json!({"action": "\u{0}", "resource": {"type": "\u{ffff}"}}),
        json!({"activities": "no"}),
        json!({"activities": [1]}),
        json!(null),
        json!("str"),
    ];
    for b in &bodies {
        let r = call(Method::POST, "/v1/activities")
            .key(&key)
            .json(b)
            .send(&e.app)
            .await;
        assert!(
            r.status.is_client_error() || r.status.is_success(),
            "{b}: {}",
            r.text()
        );
        if !r.status.is_success() {
            assert!(r.code().is_some(), "{b}: {}", r.text());
        }
    }
    let queries = [
        "since=9999-12-31&until=0001-01-01",
        "until=9999-12-31",
        "since=0001-01-01T00:00:00Z",
        "q=%7B%22created_at%22%3A%7B%22gt%22%3A99999999999999999999%7D%7D",
        "q=%7B%22created_at%22%3A%7B%22equals%22%3A%229999-12-31%22%7D%7D",
        "q=%7B%22context.%22%3A%22x%22%7D",
        "q=%5B%5D",
        "q=%7B%22action%22%3A%7B%7D%7D",
        "q=%7B%22action%22%3A%7B%22in%22%3A%22x%22%7D%7D",
        "context.=x",
        "id=,",
        "limit=99999999999999999999999",
        "cursor=%00%01",
        "action=%FF%FE",
        "action=*",
        "action=%00*",
        "action=%FF*",
        "resource_id=%00%01&resource_type=%00",
        "actor_name=%00&context.%00=%00",
        "id=00000000-0000-0000-0000-000000000000",
    ];
    for qs in queries {
        for path in ["/v1/activities", "/v1/activities/export"] {
            let r = call(Method::GET, &format!("{path}?{qs}"))
                .key(&key)
                .send(&e.app)
                .await;
            assert!(
                r.status.is_client_error() || r.status.is_success(),
                "{path}?{qs}: {}",
                r.text()
            );
        }
    }
    for qs in [
        "field=action&prefix=%00",
        "field=action&prefix=%FF",
        "field=context.%00&prefix=%01",
        "field=context.a%00b",
        "field=actor.name&since=9999-12-31",
    ] {
        let r = call(Method::GET, &format!("/v1/activities/facets?{qs}"))
            .key(&key)
            .send(&e.app)
            .await;
        assert!(
            r.status.is_client_error() || r.status.is_success(),
            "{qs}: {}",
            r.text()
        );
    }
    for b in [
        json!([]),
        json!({"q": 5}),
        json!({"limit": -1}),
        json!({"action": {"a": 1}}),
        json!({"context": "x"}),
    ] {
        let r = call(Method::POST, "/v1/activities/query")
            .key(&key)
            .json(&b)
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b}: {}", r.text());
    }
}

/// The served activity has exactly the properties the OpenAPI document's schema lists.
#[tokio::test]
async fn openapi_activity_schema_matches_the_wire() {
    let e = env();
    let ids = seed(&e, 1).await;
    let key = e.key("a", "read");
    let a = call(Method::GET, &format!("/v1/activities/{}", ids[0]))
        .key(key)
        .send(&e.app)
        .await;
    let doc = call(Method::GET, "/openapi.json").send(&e.app).await;
    let mut served: Vec<&String> = a.json.as_object().unwrap().keys().collect();
    let mut documented: Vec<&String> = doc.json["components"]["schemas"]["Activity"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    served.sort();
    documented.sort();
    assert_eq!(served, documented);
}

/// Facet counts agree with query totals, value by value, inside and outside a time window.
#[tokio::test]
async fn facet_counts_agree_with_query_totals() {
    let e = env();
    seed(&e, 12).await;
    let key = e.key("a", "read");
    for (facet, param) in [
        ("action", "action"),
        ("resource.type", "resource_type"),
        ("actor.type", "actor_type"),
        ("actor.name", "actor_name"),
        ("context.parity", "context.parity"),
    ] {
        for window in ["", "&since=2023-11-14T22:13:23Z&until=2023-11-14T22:13:29Z"] {
            let r = call(
                Method::GET,
                &format!("/v1/activities/facets?field={facet}{window}"),
            )
            .key(key)
            .send(&e.app)
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            for v in r.json["data"].as_array().unwrap() {
                let value = v["value"].as_str().unwrap().replace(' ', "%20");
                let q = call(
                    Method::GET,
                    &format!("/v1/activities?{param}={value}{window}&include_total=true&limit=1"),
                )
                .key(key)
                .send(&e.app)
                .await;
                assert_eq!(
                    q.json["pagination"]["total"], v["count"],
                    "{facet}={value}{window}"
                );
            }
        }
    }
}

/// Regression: the metrics' `method` label was the request's method verbatim, so a client
/// sending made-up methods (`FOO`, `BREW`, … any token is a valid HTTP method) created a new
/// time series per name, without bound. Methods outside the standard nine are now `other`.
#[tokio::test]
async fn unknown_methods_are_one_metrics_label() {
    let e = env();
    for (i, path) in ["/v1/activities", "/healthz", "/no/such/route"]
        .iter()
        .enumerate()
    {
        for m in ["FOO", "BREW", "X-PURGE-EVERYTHING"] {
            let method = Method::from_bytes(format!("{m}{i}").as_bytes()).unwrap();
            let r = call(method, path).send(&e.app).await;
            assert!(r.status.is_client_error(), "{m} {path}: {}", r.text());
        }
    }
    let text = call(Method::GET, "/metrics").send(&e.app).await.text();
    for m in ["FOO", "BREW", "X-PURGE"] {
        assert!(!text.contains(m), "{m} became a label:\n{text}");
    }
    assert!(
        text.contains(r#"actlog_http_requests_total{method="other",route="unmatched",status="#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="other",route="/healthz""#),
        "{text}"
    );
}

/// Regression: a key record's *tenant* decided admin rights: any key without a tenant could
/// pick every tenant by header, whatever its scope. Rights now follow the scope: the store
/// refuses key records whose scope and tenant disagree (the HTTP layer refuses such a record
/// too, should one exist: `http::auth` unit tests).
#[tokio::test]
async fn a_key_record_must_match_its_scope() {
    let e = env();
    let now = chrono::Utc::now();
    for (tenant, scope) in [
        (None, actlog::Scope::Read),
        (None, actlog::Scope::Write),
        (None, actlog::Scope::ReadWrite),
        (Some("a".to_owned()), actlog::Scope::Admin),
    ] {
        let k = actlog::http::auth::issue_key(tenant.clone(), scope, now);
        let err = e.store.put_api_key(&k.record).unwrap_err();
        assert!(
            matches!(&err, actlog::Error::InvalidArgument { .. }),
            "{tenant:?} {scope:?}: {err}"
        );
        assert!(e.store.api_key(&k.record.key_id).unwrap().is_none());
        let r = call(Method::GET, "/v1/activities")
            .key(&k.token)
            .header("x-tenant-id", "b")
            .send(&e.app)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
}
