//! Space Invoices (`/compat/spaceinvoices/activities`): response fields and defaults, the entity
//! header, limit/total/order, filters, `query` operators (and against a model), cursors both ways.

use actlog::{Activity, Actor, NewActivity, ObjectRef, Scope};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{assert_invalid, enc, ids, minutes, Env};

pub(super) const SI: &str = "/compat/spaceinvoices/activities";

/// 12 activities in `ent_1`, a minute apart: Invoice inv_0..inv_5 created then sent, one Payment
/// by the system with no actor; and one in `ent_2`.
fn si_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("ent_1", "UTC"), ("ent_2", "UTC")]);
    let mut out = Vec::new();
    for i in 0..12i64 {
        let no_actor = i == 11;
        out.push(env.append("ent_1", {
            let mut v = NewActivity::new(
                if i % 2 == 0 { "created" } else { "sent" },
                ObjectRef {
                    kind: if no_actor { "Payment" } else { "Invoice" }.into(),
                    id: Some(format!("inv_{}", i / 2)),
                },
            )
            .created_at(minutes(i));
            v.actor = (!no_actor).then(|| Actor {
                kind: "user".into(),
                id: Some("usr_abc123".into()),
                name: None,
                email: Some("user@example.com".into()),
            });
            v.metadata = (i == 1)
                .then(|| json!({"to": "customer@example.com", "subject": "Invoice #INV-2024-001"}));
            v
        }));
    }
    env.append(
        "ent_2",
        NewActivity::new(
            "created",
            ObjectRef {
                kind: "Customer".into(),
                id: Some("cus_1".into()),
            },
        ),
    );
    (env, out)
}

#[tokio::test]
async fn spaceinvoices_response_fields_and_defaults() {
    let (env, acts) = si_env();
    let v = env.get_ok(SI).await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 10, "limit defaults to 10");
    // Newest first by default.
    assert_eq!(data[0]["id"], acts[11].id.to_string());
    let sent = data.iter().find(|d| d["id"] == acts[1].id.to_string());
    assert!(sent.is_none(), "acts[1] is on the second page");
    let first = &data[9];
    assert_eq!(first["id"], acts[2].id.to_string());
    assert_eq!(first["entity_id"], "ent_1");
    assert_eq!(first["resource_type"], "Invoice");
    assert_eq!(first["resource_id"], "inv_1");
    assert_eq!(first["action"], "created");
    assert_eq!(first["actor_type"], "user");
    assert_eq!(first["actor_id"], "usr_abc123");
    assert_eq!(first["actor_label"], "user@example.com");
    assert_eq!(first["details"], json!({}));
    assert_eq!(first["created_at"], "2024-01-15T10:02:00.000Z");
    let system = &data[0];
    assert_eq!(system["actor_type"], Value::Null);
    assert_eq!(system["actor_id"], Value::Null);
    assert_eq!(system["actor_label"], Value::Null);
    // include_total_count defaults to true.
    assert_eq!(v["pagination"]["total"], 12);
    assert_eq!(v["pagination"]["has_more"], true);
    assert!(v["pagination"]["next_cursor"].is_string());
    assert_eq!(v["pagination"]["prev_cursor"], Value::Null);
    // The seed's example puts has_more and next_cursor at the top level too.
    assert_eq!(v["has_more"], true);
    assert_eq!(v["next_cursor"], v["pagination"]["next_cursor"]);

    let v = env
        .get_ok(&format!("{SI}?resource_id=inv_0&action=sent"))
        .await;
    assert_eq!(v["data"][0]["details"]["to"], "customer@example.com");
    assert_eq!(v["data"][0]["details"]["subject"], "Invoice #INV-2024-001");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["next_cursor"], Value::Null);
}

#[tokio::test]
async fn spaceinvoices_entity_header() {
    let (env, _) = si_env();
    // Regression: with the admin key and no tenant header this read the first entity created.
    // The seed spells the header `entity_id`, which nginx and other proxies drop by default
    // (underscores in header names), so a client of entity 2 behind such a proxy silently read
    // entity 1's activities. The admin key must now name its entity: a 400 otherwise.
    let (s, v) = env
        .call(
            "GET",
            &format!("{SI}?limit=1"),
            &[("x-entity-id", "none")],
            None,
        )
        .await;
    assert_invalid(s, &v, "x-entity-id");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("entity_id"),
        "{v}"
    );
    let (s, v) = env
        .call(
            "GET",
            SI,
            &[("x-entity-id", "none"), ("x-tenant-id", "")],
            None,
        )
        .await;
    assert_invalid(s, &v, "x-entity-id");
    let v = env.get_ok(&format!("{SI}?limit=1")).await;
    assert_eq!(v["data"][0]["entity_id"], "ent_1");
    let (s, v) = env.call("GET", SI, &[("x-tenant-id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    let (s, v) = env.call("GET", SI, &[("x-entity-id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    assert_eq!(v["data"][0]["resource_type"], "Customer");
    assert_eq!(v["pagination"]["total"], 1);
    let (s, _) = env.call("GET", SI, &[("x-entity-id", "ent_9")], None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The parameter list's own spelling of the header.
    let (s, v) = env.call("GET", SI, &[("entity_id", "ent_2")], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    // A tenant key reads its own entity only.
    let key = env.key("ent_2", Scope::Read);
    let auth = format!("Bearer {key}");
    let (s, v) = env.call("GET", SI, &[("authorization", &auth)], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["entity_id"], "ent_2");
    let (s, _) = env
        .call(
            "GET",
            SI,
            &[("authorization", &auth), ("x-entity-id", "ent_1")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = env
        .call("GET", SI, &[("authorization", "none")], None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn spaceinvoices_limit_total_and_order() {
    let (env, acts) = si_env();
    for (limit, ok) in [
        ("0", false),
        ("1", true),
        ("1000", true),
        ("1001", false),
        ("x", false),
    ] {
        let (s, v) = env.get(&format!("{SI}?limit={limit}")).await;
        if ok {
            assert_eq!(s, StatusCode::OK, "{limit}");
        } else {
            assert_invalid(s, &v, "limit");
        }
    }
    let v = env.get_ok(&format!("{SI}?limit=3")).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    let v = env.get_ok(&format!("{SI}?include_total_count=false")).await;
    assert_eq!(v["pagination"]["total"], -1);
    let v = env.get_ok(&format!("{SI}?include_total_count=true")).await;
    assert_eq!(v["pagination"]["total"], 12);
    let (s, v) = env.get(&format!("{SI}?include_total_count=maybe")).await;
    assert_invalid(s, &v, "include_total_count");

    let v = env
        .get_ok(&format!("{SI}?order_by=created_at&limit=1"))
        .await;
    assert_eq!(v["data"][0]["id"], acts[0].id.to_string());
    let v = env
        .get_ok(&format!("{SI}?order_by=-created_at&limit=1"))
        .await;
    assert_eq!(v["data"][0]["id"], acts[11].id.to_string());
    let (s, v) = env.get(&format!("{SI}?order_by=total")).await;
    assert_invalid(s, &v, "order_by");
}

#[tokio::test]
async fn spaceinvoices_filters() {
    let (env, _) = si_env();
    let v = env.get_ok(&format!("{SI}?resource_type=Payment")).await;
    assert_eq!(v["pagination"]["total"], 1);
    let v = env.get_ok(&format!("{SI}?resource_type=Invoice")).await;
    assert_eq!(v["pagination"]["total"], 11);
    let v = env.get_ok(&format!("{SI}?resource_id=inv_2")).await;
    assert_eq!(v["pagination"]["total"], 2);
    let v = env.get_ok(&format!("{SI}?action=sent")).await;
    assert_eq!(v["pagination"]["total"], 6);
    let v = env
        .get_ok(&format!(
            "{SI}?resource_type=Invoice&resource_id=inv_2&action=sent"
        ))
        .await;
    assert_eq!(v["pagination"]["total"], 1);
    // An exact match: a trailing `*` is not a prefix here.
    let v = env.get_ok(&format!("{SI}?action=sen*")).await;
    assert_eq!(v["pagination"]["total"], 0);
}

#[tokio::test]
async fn spaceinvoices_query_operators() {
    let (env, acts) = si_env();
    let total = |q: Value| {
        let uri = format!("{SI}?limit=100&query={}", enc(&q.to_string()));
        let env = &env;
        async move {
            let v = env.get_ok(&uri).await;
            v["pagination"]["total"].as_i64().unwrap()
        }
    };
    // Direct value and equals.
    assert_eq!(total(json!({"action": "sent"})).await, 6);
    assert_eq!(total(json!({"action": {"equals": "sent"}})).await, 6);
    assert_eq!(total(json!({"id": acts[3].id.to_string()})).await, 1);
    assert_eq!(total(json!({"actor_type": "user"})).await, 11);
    // Comparisons on strings and times.
    assert_eq!(total(json!({"resource_id": {"gte": "inv_4"}})).await, 4);
    assert_eq!(total(json!({"resource_id": {"gt": "inv_4"}})).await, 2);
    assert_eq!(total(json!({"resource_id": {"lte": "inv_1"}})).await, 4);
    assert_eq!(total(json!({"resource_id": {"lt": "inv_1"}})).await, 2);
    assert_eq!(
        total(json!({"created_at": {"gte": "2024-01-15T10:10:00Z"}})).await,
        2
    );
    assert_eq!(
        total(json!({"created_at": {"gt": "2024-01-15T10:10:00.000Z"}})).await,
        1
    );
    assert_eq!(
        total(json!({"created_at": {"lt": minutes(2).timestamp_millis()}})).await,
        2
    );
    assert_eq!(
        total(json!({"created_at": {"lte": "2024-01-15T10:02:00Z"}})).await,
        3
    );
    // Lists.
    assert_eq!(
        total(json!({"resource_type": {"in": ["Payment", "Customer"]}})).await,
        1
    );
    assert_eq!(
        total(json!({"resource_id": {"notIn": ["inv_0", "inv_1"]}})).await,
        8
    );
    // Regression: a repeated value in an `in` list was counted twice in `total` (the store summed
    // one index range per listed value, repeats included).
    assert_eq!(
        total(json!({"resource_type": {"in": ["Invoice", "Invoice"]}})).await,
        11
    );
    // Strings.
    assert_eq!(
        total(json!({"resource_type": {"contains": "VOI"}})).await,
        11
    );
    assert_eq!(
        total(json!({"resource_id": {"startsWith": "inv_"}})).await,
        12
    );
    assert_eq!(total(json!({"resource_id": {"endsWith": "_5"}})).await, 2);
    // Between: strings, and dates that include the whole last day.
    assert_eq!(
        total(json!({"resource_id": {"between": ["inv_1", "inv_2"]}})).await,
        4
    );
    assert_eq!(
        total(json!({"created_at": {"between": ["2024-01-01", "2024-01-15"]}})).await,
        12
    );
    assert_eq!(
        total(json!({"created_at": {"between": ["2024-01-16", "2024-12-31"]}})).await,
        0
    );
    // A date operand stands for its whole day.
    assert_eq!(total(json!({"created_at": "2024-01-15"})).await, 12);
    assert_eq!(
        total(json!({"created_at": {"equals": "2024-01-16"}})).await,
        0
    );
    assert_eq!(total(json!({"created_at": {"gt": "2024-01-14"}})).await, 12);
    assert_eq!(total(json!({"created_at": {"gt": "2024-01-15"}})).await, 0);
    assert_eq!(
        total(json!({"created_at": {"lte": "2024-01-15"}})).await,
        12
    );
    assert_eq!(total(json!({"created_at": {"lt": "2024-01-15"}})).await, 0);
    assert_eq!(
        total(json!({"created_at": {"gte": "2024-01-15"}})).await,
        12
    );
    // Several operators on one field, and several fields, are ANDed.
    assert_eq!(
        total(json!({"resource_id": {"gte": "inv_1", "lt": "inv_3"}, "action": "created"})).await,
        2
    );
    // Only the seed's allowed fields.
    for field in ["total", "customer.name", "date", "summary", "actor_name"] {
        let q = json!({ field: {"gte": 1000} }).to_string();
        let (s, v) = env.get(&format!("{SI}?query={}", enc(&q))).await;
        assert_invalid(s, &v, &format!("query.{field}"));
    }
    for (q, field) in [
        (r#"{"action":{"like":"x"}}"#, "query.action.like"),
        (r#"{"action":{"in":"sent"}}"#, "query.action.in"),
        (
            r#"{"created_at":{"between":["2024-01-01"]}}"#,
            "query.created_at.between",
        ),
        ("not json", "query"),
    ] {
        let (s, v) = env.get(&format!("{SI}?query={}", enc(q))).await;
        assert_invalid(s, &v, field);
    }
}

#[tokio::test]
async fn spaceinvoices_cursor_walk_both_ways() {
    let (env, acts) = si_env();
    let mut want: Vec<String> = acts.iter().rev().map(|a| a.id.to_string()).collect();
    for order in ["-created_at", "created_at"] {
        if order == "created_at" {
            want.reverse();
        }
        let mut seen = Vec::new();
        let mut uri = format!("{SI}?limit=5&order_by={order}");
        let mut last;
        loop {
            let v = env.get_ok(&uri).await;
            seen.extend(ids(&v, "data"));
            last = v.clone();
            match v["pagination"]["next_cursor"].as_str() {
                Some(c) => uri = format!("{SI}?limit=5&order_by={order}&next_cursor={}", enc(c)),
                None => break,
            }
        }
        assert_eq!(seen, want, "{order}");
        assert_eq!(last["data"].as_array().unwrap().len(), 2);
        // Back from the last page with prev_cursor.
        let mut back: Vec<String> = ids(&last, "data");
        let mut prev = last["pagination"]["prev_cursor"]
            .as_str()
            .map(str::to_owned);
        while let Some(c) = prev {
            let v = env
                .get_ok(&format!(
                    "{SI}?limit=5&order_by={order}&prev_cursor={}",
                    enc(&c)
                ))
                .await;
            let mut page = ids(&v, "data");
            page.extend(back);
            back = page;
            prev = v["pagination"]["prev_cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(back, want, "{order} backwards");
    }
    let (s, v) = env.get(&format!("{SI}?next_cursor=forged")).await;
    assert_invalid(s, &v, "next_cursor");
    let (s, v) = env.get(&format!("{SI}?prev_cursor=forged")).await;
    assert_invalid(s, &v, "prev_cursor");
    let (s, v) = env.get(&format!("{SI}?next_cursor=a&prev_cursor=b")).await;
    assert_invalid(s, &v, "prev_cursor");
}

type Pred = Box<dyn Fn(&Activity) -> bool>;

/// Space Invoices' `query` against a plain model: random activities, random conditions over the
/// six allowed fields, every page walked; the pages together must be exactly the model's answer,
/// in order, and `pagination.total` its size.
#[tokio::test]
async fn spaceinvoices_query_matches_a_model() {
    let env = Env::new(&[("ent", "UTC")]);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % u64::try_from(n).unwrap()).unwrap()
    };
    let types = ["Invoice", "Payment", "Customer"];
    let actions = ["created", "updated", "sent", "deleted"];
    let actors = [None, Some("user"), Some("system"), Some("api")];
    let mut acts = Vec::new();
    for i in 0..60i64 {
        let actor = actors[rnd(actors.len())];
        acts.push(env.append("ent", {
            let mut v = NewActivity::new(
                actions[rnd(actions.len())],
                ObjectRef {
                    kind: types[rnd(types.len())].into(),
                    id: (rnd(5) > 0).then(|| format!("r_{}", rnd(8))),
                },
            )
            .created_at(minutes(i * 7 % 60));
            v.actor = actor.map(|k| Actor {
                kind: k.into(),
                ..Default::default()
            });
            v
        }));
    }
    // Newest first, ties by id descending: the store's order.
    acts.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
    let value = |a: &Activity, f: &str| -> Option<String> {
        match f {
            "id" => Some(a.id.to_string()),
            "resource_type" => Some(a.resource.kind.clone()),
            "resource_id" => a.resource.id.clone(),
            "action" => Some(a.action.clone()),
            "actor_type" => a.actor.as_ref().map(|x| x.kind.clone()),
            _ => unreachable!(),
        }
    };
    let samples = |f: &str| -> Vec<String> {
        match f {
            "resource_type" => types.iter().map(|s| (*s).to_owned()).collect(),
            "action" => actions.iter().map(|s| (*s).to_owned()).collect(),
            "actor_type" => vec!["user".into(), "system".into(), "api".into()],
            "resource_id" => (0..8).map(|i| format!("r_{i}")).collect(),
            _ => acts.iter().take(5).map(|a| a.id.to_string()).collect(),
        }
    };
    let fields = [
        "id",
        "resource_type",
        "resource_id",
        "action",
        "actor_type",
        "created_at",
    ];
    let ops = [
        "equals",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "notIn",
        "contains",
        "startsWith",
        "endsWith",
        "between",
    ];
    for round in 0..120 {
        let mut q = serde_json::Map::new();
        let mut preds: Vec<Pred> = Vec::new();
        for _ in 0..1 + rnd(2) {
            let field = fields[rnd(fields.len())];
            let mut op = ops[rnd(ops.len())];
            if q.contains_key(field) {
                continue;
            }
            if field == "created_at" {
                let t = |m: usize| minutes(i64::try_from(m).unwrap());
                let (x, y) = (t(rnd(60)), t(rnd(60)));
                // `between` takes [min, max]: a reversed range is an empty window, a 400.
                let (a, b) = (x.min(y), x.max(y));
                if matches!(op, "contains" | "startsWith" | "endsWith" | "in" | "notIn") {
                    op = "between";
                }
                let s = |t: DateTime<Utc>| t.to_rfc3339();
                let operand = if op == "between" {
                    json!([s(a), s(b)])
                } else {
                    json!(s(a))
                };
                q.insert(field.into(), json!({ op: operand }));
                preds.push(Box::new(move |x: &Activity| {
                    let c = x.created_at;
                    match op {
                        "equals" => c == a,
                        "gt" => c > a,
                        "gte" => c >= a,
                        "lt" => c < a,
                        "lte" => c <= a,
                        _ => c >= a && c <= b,
                    }
                }));
                continue;
            }
            let pool = samples(field);
            let pick = |r: usize| pool[r % pool.len()].clone();
            let (a, b) = (pick(rnd(100)), pick(rnd(100)));
            let list: Vec<String> = (0..rnd(3) + 1).map(|_| pick(rnd(100))).collect();
            let mut part = |s: &str| -> String {
                let n = s.len().min(1 + rnd(3));
                match op {
                    "endsWith" => s[s.len() - n..].to_owned(),
                    "contains" => s[1..].to_uppercase(),
                    _ => s[..n].to_owned(),
                }
            };
            let operand = match op {
                "in" | "notIn" => json!(list),
                "between" => json!([a, b]),
                "contains" | "startsWith" | "endsWith" => json!(part(&a)),
                _ => json!(a),
            };
            let direct = op == "equals" && rnd(2) == 0;
            q.insert(
                field.into(),
                if direct {
                    operand.clone()
                } else {
                    json!({ op: operand })
                },
            );
            let operand_s = operand.as_str().map(str::to_owned);
            preds.push(Box::new(move |x: &Activity| {
                let v = value(x, field);
                let Some(v) = v else {
                    return op == "notIn";
                };
                let o = operand_s.clone().unwrap_or_default();
                match op {
                    "equals" => v == o,
                    "gt" => v > o,
                    "gte" => v >= o,
                    "lt" => v < o,
                    "lte" => v <= o,
                    "in" => list.contains(&v),
                    "notIn" => !list.contains(&v),
                    "contains" => v.to_lowercase().contains(&o.to_lowercase()),
                    "startsWith" => v.starts_with(&o),
                    "endsWith" => v.ends_with(&o),
                    _ => v >= a && v <= b,
                }
            }));
        }
        let want: Vec<String> = acts
            .iter()
            .filter(|x| preds.iter().all(|p| p(x)))
            .map(|x| x.id.to_string())
            .collect();
        let query = enc(&Value::Object(q.clone()).to_string());
        let mut seen = Vec::new();
        let mut uri = format!("{SI}?limit=7&query={query}");
        loop {
            let v = env.get_ok(&uri).await;
            assert_eq!(v["pagination"]["total"], want.len(), "round {round}: {q:?}");
            seen.extend(ids(&v, "data"));
            match v["pagination"]["next_cursor"].as_str() {
                Some(c) => uri = format!("{SI}?limit=7&query={query}&next_cursor={}", enc(c)),
                None => break,
            }
        }
        assert_eq!(seen, want, "round {round}: {q:?}");
    }
}
