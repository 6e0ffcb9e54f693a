//! `GET /v1/activities/stream` through the router: appends arrive once and in `seq` order,
//! every event id resumes the stream (header or query), filters apply, tenants stay apart,
//! limits answer 429/503, bad positions are 400s, and 100 streams keep up with appends at full
//! speed. Reads wait at most a few seconds for an event (a hang guard, not a timing assertion).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use actlog::http::Config;

use crate::support::http::{activity, call, env, env_with, Env};

/// Longest wait for the next event before a test fails (the stream polls the store every
/// second even without a wake-up, so this is generous).
const WAIT: Duration = Duration::from_secs(20);

/// An open stream: the response body and what has been read of it.
struct Sse {
    body: Body,
    buf: String,
}

/// One event: its id and its data as JSON.
#[derive(Debug)]
struct Ev {
    id: Option<String>,
    event: String,
    data: Value,
}

async fn open(
    env: &Env,
    key: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> Result<Sse, (StatusCode, String)> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(format!("/v1/activities/stream{query}"))
        .header("authorization", format!("Bearer {key}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = env
        .app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    if status != StatusCode::OK {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        return Err((status, String::from_utf8_lossy(&bytes).into_owned()));
    }
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Ok(Sse {
        body: resp.into_body(),
        buf: String::new(),
    })
}

impl Sse {
    /// The next event (keep-alive comments skipped), or `None` when the stream ended.
    async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(Ev {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("no event within the wait");
            match frame {
                None => return None,
                Some(f) => {
                    if let Ok(bytes) = f.unwrap().into_data() {
                        self.buf.push_str(std::str::from_utf8(&bytes).unwrap());
                    }
                }
            }
        }
    }

    /// The next `n` activities' `seq`s, checking each event's id is its `seq`.
    async fn seqs(&mut self, n: usize) -> Vec<u64> {
        let mut out = vec![];
        while out.len() < n {
            let e = self.next().await.expect("the stream ended early");
            assert_eq!(e.event, "activity", "{e:?}");
            let seq = e.data["seq"].as_u64().unwrap();
            assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()));
            out.push(seq);
        }
        out
    }
}

async fn append(env: &Env, key: &str, acts: Vec<Value>) {
    let r = call(Method::POST, "/v1/activities")
        .key(key)
        .json(&json!({ "activities": acts }))
        .send(&env.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn appends_arrive_once_in_order_and_every_id_resumes() {
    let env = env();
    let w = env.key("a", "write").to_owned();
    let r = env.key("a", "read").to_owned();
    append(&env, &w, vec![activity("doc.created", "old")]).await;
    // From "now": what was there before is not sent.
    let mut s = open(&env, &r, "", None).await.unwrap();
    append(
        &env,
        &w,
        (0..3)
            .map(|i| activity("doc.created", &i.to_string()))
            .collect(),
    )
    .await;
    append(&env, &w, vec![activity("doc.updated", "x")]).await;
    assert_eq!(s.seqs(4).await, [2, 3, 4, 5]);

    // Every id resumes after itself: the header EventSource sends, or the query forms.
    for from in 1..=5u64 {
        let want: Vec<u64> = (from + 1..=5).collect();
        let id = from.to_string();
        let mut h = open(&env, &r, "", Some(&id)).await.unwrap();
        assert_eq!(h.seqs(want.len()).await, want);
        let mut q = open(&env, &r, &format!("?cursor={from}"), None)
            .await
            .unwrap();
        assert_eq!(q.seqs(want.len()).await, want);
    }
    // And goes on with what comes next.
    let mut from0 = open(&env, &r, "?after_seq=0", None).await.unwrap();
    assert_eq!(from0.seqs(5).await, [1, 2, 3, 4, 5]);
    append(&env, &w, vec![activity("doc.created", "later")]).await;
    assert_eq!(from0.seqs(1).await, [6]);
    assert_eq!(s.seqs(1).await, [6]);
}

#[tokio::test]
async fn filters_apply_and_tenants_stay_apart() {
    let env = env();
    let wa = env.key("a", "write").to_owned();
    let wb = env.key("b", "write").to_owned();
    let mut created = open(
        &env,
        env.key("a", "read"),
        "?action=doc.created&after_seq=0",
        None,
    )
    .await
    .unwrap();
    let mut b = open(&env, env.key("b", "read"), "?after_seq=0", None)
        .await
        .unwrap();
    append(
        &env,
        &wa,
        vec![activity("doc.updated", "a1"), activity("doc.created", "a2")],
    )
    .await;
    append(&env, &wb, vec![activity("doc.created", "b1")]).await;
    append(&env, &wa, vec![activity("doc.created", "a3")]).await;
    assert_eq!(created.seqs(2).await, [2, 3]);
    let e = b.next().await.unwrap();
    assert_eq!(
        (e.data["seq"].as_u64(), e.data["summary"].as_str()),
        (Some(1), Some("summary b1"))
    );
    // An admin key picks its tenant by header, like every read.
    let mut admin = {
        let req = Request::builder()
            .uri("/v1/activities/stream?cursor=0")
            .header("authorization", format!("Bearer {}", env.admin))
            .header("x-tenant-id", "b")
            .body(Body::empty())
            .unwrap();
        let resp = env.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        Sse {
            body: resp.into_body(),
            buf: String::new(),
        }
    };
    let e = admin.next().await.unwrap();
    assert_eq!(e.data["summary"], "summary b1");
}

#[tokio::test]
async fn bad_positions_and_parameters_are_400s() {
    let env = env();
    let r = env.key("a", "read").to_owned();
    for (q, h, field) in [
        ("?cursor=abc", None, "cursor"),
        ("?cursor=-1", None, "cursor"),
        ("?after_seq=1&cursor=2", None, "cursor"),
        ("?order=asc", None, "order"),
        ("?limit=5", None, "limit"),
        ("?nope=1", None, "nope"),
        ("?since=2024-01-02&until=2024-01-01", None, "since"),
        ("", Some("not-a-seq"), "Last-Event-ID"),
    ] {
        let (status, body) = open(&env, &r, q, h).await.err().expect("a 400");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q} {h:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["field"], field, "{q} {h:?}: {body}");
    }
    let (status, _) = open(&env, env.key("a", "write"), "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn streams_are_bounded_per_key_and_per_server() {
    let env = env_with(Config {
        max_streams_per_key: 2,
        max_streams: 3,
        ..Config::default()
    });
    let a = env.key("a", "read").to_owned();
    let b = env.key("b", "read").to_owned();
    let s1 = open(&env, &a, "", None).await.unwrap();
    let _s2 = open(&env, &a, "", None).await.unwrap();
    let (status, body) = open(&env, &a, "", None).await.err().unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let _s3 = open(&env, &b, "", None).await.unwrap();
    let (status, body) = open(&env, env.key("b", "read_write"), "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // A stream that ends gives its place back.
    drop(s1);
    let _again = open(&env, &a, "", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_streams_keep_up_with_appends_at_full_speed() {
    let env = env_with(Config {
        max_streams_per_key: 200,
        per_key_concurrency: 0,
        rate_limit: actlog::http::ratelimit::RateLimit {
            per_second: 0,
            burst: 0,
        },
        ..Config::default()
    });
    let r = env.key("a", "read").to_owned();
    let w = env.key("a", "write").to_owned();
    let mut streams = vec![];
    for _ in 0..100 {
        streams.push(open(&env, &r, "?after_seq=0", None).await.unwrap());
    }
    const BATCHES: usize = 20;
    const PER: usize = 10;
    let writer = {
        let app = env.app.clone();
        let w = w.clone();
        tokio::spawn(async move {
            for b in 0..BATCHES {
                let acts: Vec<Value> = (0..PER)
                    .map(|i| activity("doc.created", &format!("{b}-{i}")))
                    .collect();
                let r = call(Method::POST, "/v1/activities")
                    .key(&w)
                    .json(&json!({ "activities": acts }))
                    .send(&app)
                    .await;
                assert_eq!(r.status, StatusCode::CREATED);
            }
        })
    };
    let total = BATCHES * PER;
    let want: Vec<u64> = (1..=total as u64).collect();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let want = want.clone();
            tokio::spawn(async move {
                assert_eq!(s.seqs(want.len()).await, want);
            })
        })
        .collect();
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}
