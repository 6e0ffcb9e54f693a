//! Fair share between callers: a token bucket per API key, and one per client address for
//! requests without a valid key, so one client flooding the server cannot take every other
//! tenant's turn.
//!
//! Each authenticated key gets `rate` requests a second with bursts up to `burst`; past that the
//! request is a 429 `rate_limited` with `Retry-After` (whole seconds, at least 1) and never reaches
//! a handler. A key counts in every form the server accepts it: `Authorization: Bearer`, the
//! Sequence profile's `Authorization: Basic` (the key as password, or as user name with an empty
//! password) and Velt's `x-velt-auth-token`. The bucket belongs to the key id, not to the client's
//! address, so clients behind one proxy do not share a budget and one client cannot dodge it
//! with many connections.
//!
//! A request without a valid key (none, a forged or unknown one, a revoked one, a public route)
//! spends its client address's bucket instead (`peer_rate_limit`), never a key's: knowing a key
//! id (which is not secret) is not enough to starve that key. The address is the TCP peer, which
//! [`super::serve`] hands to the router; a router used without it (tests, embedders) has no
//! addresses and does not limit such requests. The key map holds at most one bucket per stored
//! key; the address map drops full (idle) buckets when it grows past [`MAX_BUCKETS`].
//!
//! The middleware also records who the request is ([`Caller`]) for the concurrency lanes, and the
//! verified key record, so the handler's extractor does not look the key up a second time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::{auth, ApiError, AppState};

/// Requests a second and burst of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second; 0 turns limiting off.
    pub per_second: u32,
    /// Requests a caller may make at once after being idle.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 200 requests a second per key, bursts of 400: far above what one well-behaved client
    /// sends (a batch append carries up to 1,000 activities), low enough that one flooding key
    /// leaves the server's time to the others.
    fn default() -> Self {
        RateLimit {
            per_second: 200,
            burst: 400,
        }
    }
}

/// Who a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The id of the valid API key it presented.
    Key(String),
    /// No valid key; the client's address.
    Peer(IpAddr),
    /// No valid key and no known address (the router used without [`super::serve`]).
    Unknown,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full ones are dropped.
pub const MAX_BUCKETS: usize = 10_000;

/// Every caller's bucket, keyed by `K` (a key id, or an address).
#[derive(Debug)]
pub struct RateLimiter<K = String> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> RateLimiter<K> {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket at time `now`, or says how long until one is there.
    pub fn take<Q>(&self, key: &Q, now: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let rate = f64::from(self.limit.per_second.max(1));
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // A bucket that has refilled is the same as no bucket.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        if !buckets.contains_key(key) {
            buckets.insert(
                key.to_owned(),
                Bucket {
                    tokens: burst,
                    at: now,
                },
            );
        }
        let Some(b) = buckets.get_mut(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

/// The 429 for a caller whose bucket is empty.
fn too_many(wait: Duration, message: String) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut resp =
        ApiError::rate_limited(format!("{message}; retry after {secs} s")).into_response();
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// The middleware: identifies the caller (verifying any key it presents, in any accepted form),
/// records it for the concurrency lanes, and answers 429 when its bucket is empty.
pub(crate) async fn limit(
    State(state): State<AppState>,
    mut req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let presented = auth::presented_key(req.headers());
    let record = match presented {
        Some(token) => auth::verify(&token, &state).await.ok().flatten(),
        None => None,
    };
    let caller = match &record {
        Some(r) => Caller::Key(r.key_id.clone()),
        None => match req.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => Caller::Peer(addr.ip()),
            None => Caller::Unknown,
        },
    };
    let refused = match &caller {
        Caller::Key(id) => state.rate_limiter.as_ref().and_then(|l| {
            l.take(id.as_str(), Instant::now()).err().map(|wait| {
                let msg = format!(
                    "this key is over its rate limit of {} requests a second",
                    l.limit.per_second
                );
                (wait, msg)
            })
        }),
        Caller::Peer(ip) => state.peer_limiter.as_ref().and_then(|l| {
            l.take(ip, Instant::now()).err().map(|wait| {
                let msg = format!(
                    "this address is over its rate limit of {} requests a second without a \
                     valid API key",
                    l.limit.per_second
                );
                (wait, msg)
            })
        }),
        Caller::Unknown => None,
    };
    if let Some((wait, msg)) = refused {
        return too_many(wait, msg);
    }
    if let Some(r) = record.filter(|_| auth::bearer(req.headers()).is_ok()) {
        req.extensions_mut().insert(auth::VerifiedBearer(r));
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_caps_at_its_burst() {
        let l: RateLimiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("k", t0).is_ok());
        }
        let wait = l.take("k", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // Another key has its own bucket.
        assert!(l.take("other", t0).is_ok());
        // 100 ms later one token is back; an hour later only `burst` are.
        assert!(l.take("k", t0 + Duration::from_millis(100)).is_ok());
        assert!(l.take("k", t0 + Duration::from_millis(100)).is_err());
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.take("k", later).is_ok());
        }
        assert!(l.take("k", later).is_err());
    }

    #[test]
    fn full_buckets_are_dropped_when_the_map_is_full() {
        let l: RateLimiter<u32> = RateLimiter::new(RateLimit {
            per_second: 1000,
            burst: 2,
        });
        let t0 = Instant::now();
        for k in 0..u32::try_from(MAX_BUCKETS).unwrap() {
            l.take(&k, t0).unwrap();
        }
        // A second later every bucket has refilled, so the next new key clears them all.
        l.take(&u32::MAX, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(l.buckets.lock().len(), 1);
    }
}
