//! Sequence (`/compat/sequence/activity-logs`): response fields, limit/sort/version, object
//! filters, `before`/`after` walks, Basic credentials.

use std::collections::HashSet;

use actlog::{Activity, Actor, NewActivity, ObjectRef, Scope};
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{json, Value};

use super::{assert_invalid, enc, minutes, Env};

pub(super) const SEQ: &str = "/compat/sequence/activity-logs";

/// Seven logs in `acct`, sizes 1, 3, 1, 2, 1, 4, 1, oldest first, each written as one batch.
fn seq_env() -> (Env, Vec<Vec<Activity>>) {
    let env = Env::new(&[("acct", "UTC")]);
    let sizes = [1usize, 3, 1, 2, 1, 4, 1];
    let mut logs = Vec::new();
    for (log, size) in sizes.iter().enumerate() {
        let when = minutes(i64::try_from(log).unwrap());
        let batch: Vec<NewActivity> = (0..*size)
            .map(|item| {
                let mut context = vec![
                    ("origin".to_owned(), "API".to_owned()),
                    ("trace_id".to_owned(), format!("trace{log}")),
                    ("activity_type".to_owned(), "NOTIFICATION".to_owned()),
                    ("name".to_owned(), "Invoice Created".to_owned()),
                ];
                if *size > 1 {
                    context.push(("activity_log_id".into(), format!("log-{log}")));
                }
                {
                    let mut v = NewActivity::new(
                        "CREATED",
                        ObjectRef {
                            kind: "INVOICE".into(),
                            id: Some(format!("inv-{log}")),
                        },
                    )
                    .created_at(when + chrono::Duration::seconds(i64::try_from(item).unwrap()))
                    .actor(Actor {
                        kind: "USER".into(),
                        id: Some("user-1".into()),
                        name: Some("John".into()),
                        email: Some("john.doe@sequencehq.com".into()),
                    })
                    .target(ObjectRef {
                        kind: "SEQUENCE_USER".into(),
                        id: Some("su-1".into()),
                    })
                    .summary("A new invoice was created for customer")
                    .reason("New billing cycle started")
                    .metadata(json!({"b": 2, "a": "x"}));
                    v.context = context;
                    v
                }
            })
            .collect();
        let acks = env.store.append_batch("acct", batch).unwrap();
        logs.push(
            acks.iter()
                .map(|a| env.store.get("acct", a.id).unwrap().unwrap())
                .collect(),
        );
    }
    (env, logs)
}

fn log_sizes(v: &Value) -> Vec<usize> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["activityLogItems"].as_array().unwrap().len())
        .collect()
}

#[tokio::test]
async fn sequence_response_fields() {
    let (env, logs) = seq_env();
    let v = env.get_ok(SEQ).await;
    assert_eq!(log_sizes(&v), vec![1, 4, 1, 2, 1, 3, 1], "newest log first");
    assert_eq!(v["pagination"]["totalResultSize"], 7);
    assert_eq!(v["pagination"]["after"], Value::Null);
    assert_eq!(v["pagination"]["before"], Value::Null);
    let log = &v["items"][1];
    assert_eq!(log["id"], "log-5");
    assert_eq!(log["sequenceAccountId"], "acct");
    assert_eq!(log["activityType"], "NOTIFICATION");
    assert_eq!(log["apiVersion"], "V1");
    assert_eq!(log["origin"], "API");
    assert_eq!(log["traceId"], "trace5");
    assert_eq!(log["createdAt"], "2024-01-15T10:05:00Z");
    let items = log["activityLogItems"].as_array().unwrap();
    let mut want: Vec<&Activity> = logs[5].iter().collect();
    want.sort_by_key(|a| a.created_at);
    for (item, a) in items.iter().zip(want) {
        assert_eq!(item["id"], a.id.to_string());
        assert_eq!(item["activityLogId"], "log-5");
        assert_eq!(item["verb"], "CREATED");
        assert_eq!(item["name"], "Invoice Created");
        assert_eq!(item["summary"], "A new invoice was created for customer");
        assert_eq!(item["reason"], "New billing cycle started");
        assert_eq!(
            item["metadata"],
            json!([{"key": "a", "value": "x"}, {"key": "b", "value": 2}])
        );
        let actor = &item["activityLogActor"];
        assert!(uuid::Uuid::parse_str(actor["id"].as_str().unwrap()).is_ok());
        assert_eq!(actor["entityType"], "USER");
        assert_eq!(actor["entityId"], "user-1");
        assert_eq!(actor["email"], "john.doe@sequencehq.com");
        let object = &item["activityLogObject"];
        assert_eq!(object["entityType"], "INVOICE");
        assert_eq!(object["entityId"], "inv-5");
        let target = &item["activityLogTarget"];
        assert_eq!(target["entityType"], "SEQUENCE_USER");
        assert_eq!(target["entityId"], "su-1");
        let refs: HashSet<&str> = [&actor["id"], &object["id"], &target["id"], &item["id"]]
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), 4, "reference ids are distinct");
    }
    // A single-activity log is identified by its activity.
    assert_eq!(v["items"][0]["id"], logs[6][0].id.to_string());
    // No actor, no target: nulls.
    let a = env.append(
        "acct",
        NewActivity::new(
            "DELETED",
            ObjectRef {
                kind: "CUSTOMER".into(),
                id: None,
            },
        )
        .created_at(minutes(60)),
    );
    let v = env.get_ok(&format!("{SEQ}?limit=1")).await;
    let log = &v["items"][0];
    assert_eq!(log["id"], a.id.to_string());
    assert_eq!(log["activityType"], Value::Null);
    let item = &log["activityLogItems"][0];
    assert_eq!(item["name"], "DELETED");
    assert_eq!(item["summary"], Value::Null);
    assert_eq!(item["reason"], Value::Null);
    assert_eq!(item["metadata"], json!([]));
    assert_eq!(item["activityLogActor"], Value::Null);
    assert_eq!(item["activityLogTarget"], Value::Null);
    assert_eq!(item["activityLogObject"]["entityId"], Value::Null);
}

#[tokio::test]
async fn sequence_limit_sort_and_version() {
    let (env, _) = seq_env();
    for (limit, ok) in [
        ("0", false),
        ("1", true),
        ("100", true),
        ("101", false),
        ("-3", false),
    ] {
        let (s, v) = env.get(&format!("{SEQ}?limit={limit}")).await;
        if ok {
            assert_eq!(s, StatusCode::OK);
        } else {
            assert_invalid(s, &v, "limit");
        }
    }
    let v = env.get_ok(&format!("{SEQ}?limit=1")).await;
    assert_eq!(log_sizes(&v), vec![1]);
    let v = env.get_ok(&format!("{SEQ}?sortOrder=ASC")).await;
    assert_eq!(log_sizes(&v), vec![1, 3, 1, 2, 1, 4, 1]);
    assert_eq!(v["items"][1]["id"], "log-1");
    let v = env.get_ok(&format!("{SEQ}?sortOrder=DESC")).await;
    assert_eq!(v["items"][1]["id"], "log-5");
    let (s, v) = env.get(&format!("{SEQ}?sortOrder=NEWEST")).await;
    assert_invalid(s, &v, "sortOrder");
    let (s, _) = env
        .call("GET", SEQ, &[("sequence-version", "2024-07-30")], None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = env
        .call("GET", SEQ, &[("sequence-version", "2023-01-01")], None)
        .await;
    assert_invalid(s, &v, "sequence-version");
}

#[tokio::test]
async fn sequence_object_filters() {
    let (env, logs) = seq_env();
    let v = env
        .get_ok(&format!("{SEQ}?activityLogObjectEntityId=inv-5"))
        .await;
    assert_eq!(log_sizes(&v), vec![4]);
    assert_eq!(v["pagination"]["totalResultSize"], 1);
    // The object reference id of one item selects that item.
    let all = env.get_ok(SEQ).await;
    let item = &all["items"][1]["activityLogItems"][2];
    let object_id = item["activityLogObject"]["id"].as_str().unwrap();
    let v = env
        .get_ok(&format!("{SEQ}?activityLogObjectId={object_id}"))
        .await;
    assert_eq!(v["items"][0]["activityLogItems"][0]["id"], item["id"]);
    assert_eq!(v["pagination"]["totalResultSize"], 1);
    assert!(logs[5].iter().any(|a| a.id.to_string() == item["id"]));
    let v = env
        .get_ok(&format!(
            "{SEQ}?activityLogObjectId={object_id}&activityLogObjectEntityId=inv-0"
        ))
        .await;
    assert_eq!(v["items"], json!([]));
    let (s, v) = env.get(&format!("{SEQ}?activityLogObjectId=xyz")).await;
    assert_invalid(s, &v, "activityLogObjectId");
}

#[tokio::test]
async fn sequence_before_after_walk() {
    let (env, _) = seq_env();
    for (sort, want) in [
        ("DESC", vec![1usize, 4, 1, 2, 1, 3, 1]),
        ("ASC", vec![1, 3, 1, 2, 1, 4, 1]),
    ] {
        for limit in [1usize, 2, 3] {
            let mut seen = Vec::new();
            let mut uri = format!("{SEQ}?limit={limit}&sortOrder={sort}");
            let mut pages = 0;
            let last = loop {
                let v = env.get_ok(&uri).await;
                pages += 1;
                assert!(log_sizes(&v).len() <= limit);
                assert_eq!(v["pagination"]["totalResultSize"], 7);
                seen.extend(log_sizes(&v));
                if pages == 1 {
                    assert_eq!(v["pagination"]["before"], Value::Null);
                }
                match v["pagination"]["after"].as_str() {
                    Some(c) => {
                        uri = format!("{SEQ}?limit={limit}&sortOrder={sort}&after={}", enc(c))
                    }
                    None => break v,
                }
            };
            assert_eq!(seen, want, "{sort} limit {limit}");
            let mut back = log_sizes(&last);
            let mut before = last["pagination"]["before"].as_str().map(str::to_owned);
            while let Some(c) = before {
                let v = env
                    .get_ok(&format!(
                        "{SEQ}?limit={limit}&sortOrder={sort}&before={}",
                        enc(&c)
                    ))
                    .await;
                assert!(v["pagination"]["after"].is_string());
                let mut page = log_sizes(&v);
                page.extend(back);
                back = page;
                before = v["pagination"]["before"].as_str().map(str::to_owned);
            }
            assert_eq!(back, want, "{sort} limit {limit} backwards");
        }
    }
    let v = env.get_ok(&format!("{SEQ}?limit=2")).await;
    let after = v["pagination"]["after"].as_str().unwrap();
    // Used the wrong way round, or with another query, a token is refused.
    let (s, v2) = env.get(&format!("{SEQ}?before={}", enc(after))).await;
    assert_invalid(s, &v2, "before");
    let (s, v2) = env
        .get(&format!("{SEQ}?after={}&sortOrder=ASC", enc(after)))
        .await;
    assert_invalid(s, &v2, "after");
    let (s, v2) = env
        .get(&format!("{SEQ}?after={}&before=Bx", enc(after)))
        .await;
    assert_invalid(s, &v2, "before");
}

#[tokio::test]
async fn sequence_basic_auth() {
    let (env, _) = seq_env();
    let key = env.key("acct", Scope::Read);
    for creds in [format!("client:{key}"), format!("{key}:")] {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        );
        let (s, v) = env
            .call("GET", SEQ, &[("authorization", &basic)], None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["pagination"]["totalResultSize"], 7);
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("client:wrong")
    );
    let (s, _) = env
        .call("GET", SEQ, &[("authorization", &basic)], None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let write_only = env.key("acct", Scope::Write);
    let (s, _) = env
        .call(
            "GET",
            SEQ,
            &[("authorization", &format!("Bearer {write_only}"))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
