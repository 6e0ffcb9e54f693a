//! Velt (`/compat/velt/v2/activities/get`): response fields, filters, page tokens, validation
//! and errors, headers and organizations.

use actlog::{Activity, Actor, DisplayText, NewActivity, ObjectRef, Scope};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::Env;

const VELT: &str = "/compat/velt/v2/activities/get";

fn velt_env() -> (Env, Vec<Activity>) {
    let env = Env::new(&[("org-123", "UTC"), ("org-456", "UTC")]);
    let mut out = Vec::new();
    for i in 0..7i64 {
        let comment = i % 2 == 0;
        out.push(env.append("org-123", {
            let mut v = NewActivity::new(
                if comment {
                    "comment.add"
                } else {
                    "reaction.add"
                },
                ObjectRef {
                    kind: if comment { "comment" } else { "reaction" }.into(),
                    id: Some(format!("annotation-{}", i % 3)),
                },
            )
            .created_at(
                chrono::DateTime::from_timestamp_millis(1_722_409_519_944 + i * 1000).unwrap(),
            )
            .actor(Actor {
                kind: "user".into(),
                id: Some(format!("user-{}", i % 2)),
                name: Some("User Name".into()),
                email: Some("user@example.com".into()),
            })
            .metadata(json!({"custom": i}));
            v.context = vec![(
                "document_id".into(),
                if i < 5 { "doc-456" } else { "doc-789" }.into(),
            )];
            v.display = (i == 0).then(|| DisplayText {
                template: "{{user}} added a comment".into(),
                data: json!({"user": {"userId": "user-0", "name": "User Name"}}),
            });
            v
        }));
    }
    (env, out)
}

pub(super) async fn velt(env: &Env, data: Value) -> (StatusCode, Value) {
    env.post(VELT, &json!({ "data": data })).await
}

fn velt_ids(v: &Value) -> Vec<String> {
    v["result"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_velt_error(s: StatusCode, v: &Value, status: StatusCode, name: &str) {
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["status"], name, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
}

#[tokio::test]
async fn velt_response_fields() {
    let (env, acts) = velt_env();
    let (s, v) = velt(
        &env,
        json!({"organizationId": "org-123", "documentId": "doc-456", "order": "asc", "pageSize": 50}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["status"], "success");
    assert_eq!(
        v["result"]["message"],
        "Activity(s) retrieved successfully."
    );
    assert_eq!(v["result"]["pageToken"], Value::Null);
    let data = v["result"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let first = &data[0];
    assert_eq!(first["id"], acts[0].id.to_string());
    assert_eq!(first["featureType"], "comment");
    assert_eq!(first["actionType"], "comment.add");
    assert_eq!(
        first["actionUser"],
        json!({"userId": "user-0", "email": "user@example.com", "name": "User Name"})
    );
    assert_eq!(first["targetEntityId"], "annotation-0");
    assert_eq!(first["displayMessageTemplate"], "{{user}} added a comment");
    assert_eq!(
        first["displayMessageTemplateData"],
        json!({"user": {"userId": "user-0", "name": "User Name"}})
    );
    assert_eq!(first["metadata"]["documentId"], "doc-456");
    assert_eq!(first["metadata"]["organizationId"], "org-123");
    assert_eq!(first["metadata"]["custom"], 0);
    assert_eq!(first["timestamp"], 1_722_409_519_944_i64);
    assert!(first["timestamp"].is_i64());
    // Without a stored display, a template is made from the action, with its data.
    let second = &data[1];
    assert_eq!(second["displayMessageTemplate"], "{{user}} reaction.add");
    assert_eq!(
        second["displayMessageTemplateData"]["user"]["userId"],
        "user-1"
    );
    // The default order is newest first.
    let (_, v) = velt(&env, json!({"organizationId": "org-123"})).await;
    assert_eq!(velt_ids(&v)[0], acts[6].id.to_string());
}

#[tokio::test]
async fn velt_filters() {
    let (env, acts) = velt_env();
    let count = |data: Value| {
        let env = &env;
        async move {
            let (s, v) = velt(env, data).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["result"]["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(count(json!({"organizationId": "org-123"})).await, 7);
    assert_eq!(count(json!({"organizationId": "org-456"})).await, 0);
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-789"})).await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": ["comment"]})).await,
        4
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": ["comment", "reaction"]})).await,
        7
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "featureTypes": []})).await,
        7
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "actionTypes": ["reaction.add"]})).await,
        3
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "userId": "user-1"})).await,
        3
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "actionTypes": ["comment.*"]})).await,
        0
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-456", "targetEntityId": "annotation-0"})).await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123",
            "activityIds": [acts[1].id.to_string(), acts[2].id.to_string()]}))
        .await,
        2
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "activityIds": ["activity-001"]})).await,
        0
    );
    assert_eq!(
        count(json!({"organizationId": "org-123", "documentId": "doc-456",
            "featureTypes": ["comment"], "actionTypes": ["comment.add"], "userId": "user-0"}))
        .await,
        3
    );
}

#[tokio::test]
async fn velt_page_tokens() {
    let (env, acts) = velt_env();
    for (order, want) in [
        (
            "desc",
            acts.iter()
                .rev()
                .map(|a| a.id.to_string())
                .collect::<Vec<_>>(),
        ),
        ("asc", acts.iter().map(|a| a.id.to_string()).collect()),
    ] {
        for size in [1, 2, 3] {
            let mut seen = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut data =
                    json!({"organizationId": "org-123", "order": order, "pageSize": size});
                if let Some(t) = &token {
                    data["pageToken"] = json!(t);
                }
                let (s, v) = velt(&env, data).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                let page = velt_ids(&v);
                assert!(page.len() <= size);
                seen.extend(page);
                match v["result"]["pageToken"].as_str() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen, want, "{order} {size}");
        }
    }
    let (s, v) = velt(
        &env,
        json!({"organizationId": "org-123", "pageToken": "forged"}),
    )
    .await;
    assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn velt_validation_and_errors() {
    let (env, _) = velt_env();
    for (size, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let (s, v) = velt(&env, json!({"organizationId": "org-123", "pageSize": size})).await;
        if ok {
            assert_eq!(s, StatusCode::OK);
        } else {
            assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
        }
    }
    for data in [
        json!({}),
        json!({"organizationId": ""}),
        json!({"organizationId": "org-123", "order": "sideways"}),
        json!({"organizationId": "org-123", "pageSize": "ten"}),
        json!({"organizationId": "org-123", "featureTypes": "comment"}),
        json!({"organizationId": 7}),
    ] {
        let (s, v) = velt(&env, data.clone()).await;
        assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    for body in [json!({}), json!({"data": []}), json!("x")] {
        let (s, v) = env.post(VELT, &body).await;
        assert_velt_error(s, &v, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    let resp = env
        .app
        .clone()
        .oneshot(
            Request::post(VELT)
                .header("authorization", format!("Bearer {}", env.admin))
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A body over the server's limit.
    let big = json!({"data": {"organizationId": "org-123", "documentId": "x".repeat(5 << 20)}});
    let (s, v) = env.post(VELT, &big).await;
    assert_velt_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "RESOURCE_EXHAUSTED");
    let (s, v) = velt(&env, json!({"organizationId": "org-999"})).await;
    assert_velt_error(s, &v, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (s, v) = env
        .call(
            "POST",
            VELT,
            &[("authorization", "Bearer actlog_0000000000000000_nope")],
            Some(&json!({"data": {"organizationId": "org-123"}})),
        )
        .await;
    assert_velt_error(s, &v, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn velt_headers_and_organizations() {
    let (env, _) = velt_env();
    let key = env.key("org-123", Scope::Read);
    let body = json!({"data": {"organizationId": "org-123"}});
    let velt_headers = [
        ("authorization", "none"),
        ("x-velt-api-key", "yourApiKey"),
        ("x-velt-auth-token", key.as_str()),
    ];
    let (s, v) = env.call("POST", VELT, &velt_headers, Some(&body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["data"][0]["metadata"]["apiKey"], "yourApiKey");
    for missing in ["x-velt-api-key", "x-velt-auth-token"] {
        let h: Vec<(&str, &str)> = velt_headers
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let (s, v) = env.call("POST", VELT, &h, Some(&body)).await;
        assert_velt_error(s, &v, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    // A tenant key reads its own organization only.
    let other = json!({"data": {"organizationId": "org-456"}});
    let (s, v) = env.call("POST", VELT, &velt_headers, Some(&other)).await;
    assert_velt_error(s, &v, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    // The admin key picks the organization from the body.
    let (s, v) = env.post(VELT, &other).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["data"], json!([]));
}
