//! The subscription platform (`/compat/subscriptions/api/activity-logs`): row fields, loggable,
//! actor and action filters, dates in the account's time zone, page and limit, POST and the
//! dropdowns.

use actlog::{Activity, Actor, NewActivity, ObjectRef, Scope};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{json, Value};

use super::{assert_invalid, at, Env};

pub(super) const SUB: &str = "/compat/subscriptions/api/activity-logs";
const JAN: &str = "start_date=2024-01-01&end_date=2024-01-31";

/// An account in Europe/Ljubljana (UTC+1 in winter) with rows on subscriptions and orders.
fn sub_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("shop", "Europe/Ljubljana")]);
    let actor = |kind: &str, name: Option<&str>| {
        Some(Actor {
            kind: kind.into(),
            id: Some(format!("{kind}-1")),
            name: name.map(str::to_owned),
            email: None,
        })
    };
    let rows = [
        (
            "subscription_created",
            "subscription",
            "sub-1",
            actor("customer", Some("Cleo")),
        ),
        (
            "subscription_paused",
            "subscription",
            "sub-1",
            actor("admin", Some("Ann")),
        ),
        (
            "order_placed",
            "order",
            "ord-1",
            actor("customer", Some("Cleo")),
        ),
        ("billing_failed", "order", "ord-1", None),
        (
            "subscription_resumed",
            "subscription",
            "sub-2",
            actor("webhook", None),
        ),
        (
            "integration_label_printed",
            "order",
            "ord-2",
            actor("api", None),
        ),
        (
            "order_refunded",
            "order",
            "ord-2",
            actor("admin", Some("Bob")),
        ),
        (
            "subscription_renewed",
            "subscription",
            "sub-2",
            actor("system", None),
        ),
    ];
    let mut out = Vec::new();
    for (i, (action, kind, id, actor)) in rows.into_iter().enumerate() {
        let mut context = vec![("customer_email".to_owned(), "c@example.com".to_owned())];
        if kind == "order" {
            context.push(("order_number".into(), format!("#{id}")));
            context.push(("subscription_id".into(), "sub-1".into()));
        } else {
            context.push(("subscription_number".into(), format!("S-{id}")));
        }
        context.push(("customer_name".into(), "Cleo".into()));
        context.push(("profile_id".into(), "prof-1".into()));
        out.push(env.append("shop", {
            let mut v = NewActivity::new(
                action,
                ObjectRef {
                    kind: kind.into(),
                    id: Some(id.into()),
                },
            )
            .created_at(
                at("2024-01-10T12:00:00Z") + chrono::Duration::hours(i64::try_from(i).unwrap()),
            );
            v.actor = actor;
            v.context = context;
            v.summary = (i == 0).then(|| "Subscription created".to_owned());
            v.changes = (i == 1).then(|| json!({"status": ["active", "paused"]}));
            v.metadata = (i == 1).then(|| json!({"reason": "vacation"}));
            v
        }));
    }
    // Not a loggable: never a row of this API.
    env.append(
        "shop",
        NewActivity::new(
            "invoice_sent",
            ObjectRef {
                kind: "invoice".into(),
                id: Some("inv-1".into()),
            },
        )
        .created_at(at("2024-01-10T12:00:00Z")),
    );
    (env, out)
}

fn actions(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn subscriptions_row_fields() {
    let (env, rows) = sub_env();
    let v = env.get_ok(&format!("{SUB}?{JAN}")).await;
    assert_eq!(v["total"], 8);
    assert_eq!(v["per_page"], 25);
    assert_eq!(v["current_page"], 1);
    assert_eq!(v["last_page"], 1);
    assert_eq!(
        v["metadata"],
        json!({"total": 8, "per_page": 25, "current_page": 1, "last_page": 1})
    );
    let data = v["data"].as_array().unwrap();
    // Newest first.
    assert_eq!(data[0]["action"], "subscription_renewed");
    let paused = &data[6];
    assert_eq!(paused["id"], rows[1].id.to_string());
    assert_eq!(paused["action"], "subscription_paused");
    assert_eq!(paused["description"], Value::Null);
    assert_eq!(paused["changes"], json!({"status": ["active", "paused"]}));
    assert_eq!(paused["metadata"], json!({"reason": "vacation"}));
    assert_eq!(paused["actor_type"], "admin");
    assert_eq!(paused["actor_name"], "Ann");
    assert_eq!(paused["loggable_type"], "subscription");
    assert_eq!(paused["loggable_id"], "sub-1");
    assert_eq!(paused["subscription_id"], "sub-1");
    assert_eq!(paused["subscription_number"], "S-sub-1");
    assert_eq!(paused["order_id"], Value::Null);
    assert_eq!(paused["order_number"], Value::Null);
    assert_eq!(paused["customer_name"], "Cleo");
    assert_eq!(paused["customer_email"], "c@example.com");
    assert_eq!(paused["profile_id"], "prof-1");
    assert_eq!(paused["created_at"], "2024-01-10T13:00:00.000000Z");
    let created = &data[7];
    assert_eq!(created["description"], "Subscription created");
    assert!(created.get("changes").is_none(), "no diff recorded");
    assert_eq!(created["metadata"], json!({}));
    let failed = &data[4];
    assert_eq!(failed["action"], "billing_failed");
    assert_eq!(failed["actor_type"], Value::Null);
    assert_eq!(failed["actor_name"], Value::Null);
    assert_eq!(failed["loggable_type"], "order");
    assert_eq!(failed["order_id"], "ord-1");
    assert_eq!(failed["order_number"], "#ord-1");
    assert_eq!(failed["subscription_id"], "sub-1");
}

#[tokio::test]
async fn subscriptions_loggable_filters() {
    let (env, _) = sub_env();
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&subscription_id=sub-1"))
        .await;
    assert_eq!(
        actions(&v),
        vec!["subscription_paused", "subscription_created"]
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=ord-1")).await;
    assert_eq!(actions(&v), vec!["billing_failed", "order_placed"]);
    // order_id takes precedence.
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&subscription_id=sub-1&order_id=ord-2"))
        .await;
    assert_eq!(
        actions(&v),
        vec!["order_refunded", "integration_label_printed"]
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=sub-1")).await;
    assert_eq!(v["total"], 0);
}

#[tokio::test]
async fn subscriptions_actor_and_action_filters() {
    let (env, _) = sub_env();
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=customer"))
        .await;
    assert_eq!(actions(&v), vec!["order_placed", "subscription_created"]);
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=admin")).await;
    assert_eq!(actions(&v), vec!["order_refunded", "subscription_paused"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=admin&actor_name=Bob"))
        .await;
    assert_eq!(actions(&v), vec!["order_refunded"]);
    // actor_name is ignored for other actor types.
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&actor_type=customer&actor_name=Bob"))
        .await;
    assert_eq!(v["total"], 2);
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=api")).await;
    assert_eq!(actions(&v), vec!["integration_label_printed"]);
    // system: system actors, webhooks and rows with no actor.
    let v = env.get_ok(&format!("{SUB}?{JAN}&actor_type=system")).await;
    assert_eq!(
        actions(&v),
        vec![
            "subscription_renewed",
            "subscription_resumed",
            "billing_failed"
        ]
    );
    let (s, v) = env.get(&format!("{SUB}?{JAN}&actor_type=robot")).await;
    assert_invalid(s, &v, "actor_type");

    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=order_placed"))
        .await;
    assert_eq!(actions(&v), vec!["order_placed"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=order_placed,billing_failed"))
        .await;
    assert_eq!(actions(&v), vec!["billing_failed", "order_placed"]);
    let v = env
        .get_ok(&format!("{SUB}?{JAN}&action=integration_*"))
        .await;
    assert_eq!(actions(&v), vec!["integration_label_printed"]);
}

#[tokio::test]
async fn subscriptions_dates_in_the_account_timezone() {
    let (env, _) = sub_env();
    // 23:30 UTC on the 31st is 00:30 on 1 February in Ljubljana.
    env.append(
        "shop",
        NewActivity::new(
            "order_placed",
            ObjectRef {
                kind: "order".into(),
                id: Some("ord-9".into()),
            },
        )
        .created_at(at("2024-01-31T23:30:00Z")),
    );
    let v = env.get_ok(&format!("{SUB}?{JAN}&order_id=ord-9")).await;
    assert_eq!(v["total"], 0);
    let v = env
        .get_ok(&format!(
            "{SUB}?start_date=2024-02-01&end_date=2024-02-01&order_id=ord-9"
        ))
        .await;
    assert_eq!(v["total"], 1, "end_date is inclusive of its whole day");
    // The first row is 2024-01-10 13:00 local: start_date on that day includes it, the next
    // day's does not.
    let v = env
        .get_ok(&format!("{SUB}?start_date=2024-01-10&end_date=2024-01-10"))
        .await;
    assert_eq!(v["total"], 8);
    let v = env
        .get_ok(&format!("{SUB}?start_date=2024-01-11&end_date=2024-01-31"))
        .await;
    assert_eq!(v["total"], 0);
    for (q, field) in [
        ("end_date=2024-01-31", "start_date"),
        ("start_date=2024-01-01", "end_date"),
        ("start_date=2024-1-1&end_date=2024-01-31", "start_date"),
        ("start_date=2024-01-01&end_date=31.01.2024", "end_date"),
        ("start_date=2024-02-01&end_date=2024-01-31", "start_date"),
    ] {
        let (s, v) = env.get(&format!("{SUB}?{q}")).await;
        assert_invalid(s, &v, field);
    }
}

#[tokio::test]
async fn subscriptions_page_and_limit() {
    let (env, _) = sub_env();
    let all = actions(&env.get_ok(&format!("{SUB}?{JAN}")).await);
    for limit in [1usize, 3] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let v = env
                .get_ok(&format!("{SUB}?{JAN}&limit={limit}&page={page}"))
                .await;
            assert_eq!(v["per_page"], limit);
            assert_eq!(v["current_page"], page);
            assert_eq!(v["total"], 8);
            assert_eq!(v["last_page"], 8usize.div_ceil(limit));
            seen.extend(actions(&v));
            if page == v["last_page"].as_u64().unwrap() {
                break;
            }
            page += 1;
        }
        assert_eq!(seen, all, "limit {limit}");
        // Walked back from the last page to the first.
        let mut back = Vec::new();
        for p in (1..=page).rev() {
            let v = env
                .get_ok(&format!("{SUB}?{JAN}&limit={limit}&page={p}"))
                .await;
            let mut a = actions(&v);
            a.extend(back);
            back = a;
        }
        assert_eq!(back, all);
    }
    let v = env.get_ok(&format!("{SUB}?{JAN}&page=99")).await;
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["current_page"], 99);
    let v = env.get_ok(&format!("{SUB}?{JAN}&limit=100")).await;
    assert_eq!(v["per_page"], 100);
    // "limit capped at 100".
    let v = env.get_ok(&format!("{SUB}?{JAN}&limit=101")).await;
    assert_eq!(v["per_page"], 100);
    for bad in ["limit=0", "limit=x", "page=0", "page=-1"] {
        let (s, v) = env.get(&format!("{SUB}?{JAN}&{bad}")).await;
        assert_invalid(s, &v, bad.split('=').next().unwrap());
    }
    let v = env
        .get_ok(&format!("{SUB}?start_date=2025-01-01&end_date=2025-01-31"))
        .await;
    assert_eq!(
        (v["total"].as_u64(), v["last_page"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn subscriptions_post_and_dropdowns() {
    let (env, _) = sub_env();
    // Not on a subscription or an order: neither a row nor a dropdown value.
    env.append(
        "shop",
        NewActivity::new(
            "integration_crm_sync",
            ObjectRef {
                kind: "invoice".into(),
                id: Some("inv-1".into()),
            },
        )
        .actor(Actor {
            kind: "admin".into(),
            id: None,
            name: Some("Zed".into()),
            email: None,
        }),
    );
    let key = env.key("shop", Scope::ReadWrite);
    let auth = format!("Bearer {key}");
    let body = json!({
        "action": "integration_shipment_dispatched",
        "order_id": "ord-1",
        "description": "Shipped with UPS",
        "changes": {"fulfillment": [null, "shipped"]},
        "metadata": {"carrier": "UPS"},
        "order_number": "#1001",
        "customer_email": "c@example.com",
        "customer_name": "Cleo",
        "profile_id": "prof-1",
        "subscription_id": "sub-1",
        "actor_name": "ShipBot"
    });
    let (s, v) = env
        .call("POST", SUB, &[("authorization", &auth)], Some(&body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = &v["data"];
    assert_eq!(row["actor_type"], "api");
    assert_eq!(row["actor_name"], "ShipBot");
    assert_eq!(row["loggable_type"], "order");
    assert_eq!(row["loggable_id"], "ord-1");
    assert_eq!(row["order_number"], "#1001");
    assert_eq!(row["subscription_id"], "sub-1");
    assert_eq!(row["changes"], json!({"fulfillment": [null, "shipped"]}));
    let id = uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap();
    let stored = env.store.get("shop", id).unwrap().unwrap();
    assert_eq!(stored.actor.unwrap().kind, "api");

    // The tenant's today: its dates are in Europe/Ljubljana, which is a day ahead of UTC for an
    // hour or two every night (the test failed in CI between 23:00 and 24:00 UTC).
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Ljubljana)
        .date_naive();
    let range = format!("start_date={today}&end_date={today}");
    let v = env.get_ok(&format!("{SUB}?{range}&actor_type=api")).await;
    assert_eq!(actions(&v), vec!["integration_shipment_dispatched"]);
    let v = env
        .get_ok(&format!(
            "{SUB}?{range}&action=integration_shipment_dispatched,integration_label_printed"
        ))
        .await;
    assert_eq!(v["total"], 1);

    for bad in [
        json!({"action": "subscription_paused", "order_id": "ord-1"}),
        json!({"action": "integration_", "order_id": "ord-1"}),
        json!({"action": "integration_x"}),
        json!({"action": "integration_x", "loggable_type": "invoice", "loggable_id": "i"}),
    ] {
        let (s, v) = env
            .call("POST", SUB, &[("authorization", &auth)], Some(&bad))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_argument");
    }
    let read_only = format!("Bearer {}", env.key("shop", Scope::Read));
    let (s, _) = env
        .call("POST", SUB, &[("authorization", &read_only)], Some(&body))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = env.get_ok(&format!("{SUB}/integration-actions")).await;
    assert_eq!(
        v["data"],
        json!([
            "integration_label_printed",
            "integration_shipment_dispatched"
        ])
    );
    let v = env
        .get_ok(&format!(
            "{SUB}/integration-actions?start_date=2024-01-01&end_date=2024-01-31"
        ))
        .await;
    assert_eq!(v["data"], json!(["integration_label_printed"]));
    let v = env.get_ok(&format!("{SUB}/actors")).await;
    assert_eq!(
        v["data"],
        json!(["Ann", "Bob"]),
        "admins only, not Cleo or ShipBot"
    );
    let v = env
        .get_ok(&format!(
            "{SUB}/actors?start_date=2024-01-10&end_date=2024-01-10"
        ))
        .await;
    assert_eq!(v["data"], json!(["Ann", "Bob"]));
    let (s, v) = env.get(&format!("{SUB}/actors?start_date=x")).await;
    assert_invalid(s, &v, "start_date");
}
