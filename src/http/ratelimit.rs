//! Fair share between API keys: a token bucket per key, so one client flooding the server cannot
//! take every other tenant's turn.
//!
//! Each authenticated key gets `rate` requests a second with bursts up to `burst`; past that the
//! request is a 429 `rate_limited` with `Retry-After` (whole seconds, at least 1) and never reaches
//! a handler. The bucket belongs to the key id, not to the client's address, so clients behind one
//! proxy do not share a budget and one client cannot dodge it with many connections.
//!
//! Only requests that authenticate are counted: a request with a forged or unknown key passes
//! through to its handler (which answers 401) without spending anyone's tokens, so knowing a
//! key id (which is not secret) is not enough to starve that key. The map therefore holds at most
//! one bucket per stored key. Public routes (`/healthz`, `/metrics`, `/openapi.json`) carry no
//! key and are not limited.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::{auth, ApiError, AppState};

/// Requests a second and burst of one key's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second; 0 turns limiting off.
    pub per_second: u32,
    /// Requests a key may make at once after being idle.
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

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every key's bucket.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket at time `now`, or says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.limit.per_second.max(1));
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock();
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
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

/// The middleware: a 429 for an authenticated key whose bucket is empty.
pub(crate) async fn limit(
    State(state): State<AppState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let Some(limiter) = state.rate_limiter.clone() else {
        return next.run(req).await;
    };
    if !req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return next.run(req).await;
    }
    let Ok(record) = auth::authenticate(req.headers(), &state).await else {
        return next.run(req).await;
    };
    match limiter.take(&record.key_id, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            let mut resp = ApiError::rate_limited(format!(
                "this key is over its rate limit of {} requests a second; retry after {secs} s",
                limiter.limit.per_second
            ))
            .into_response();
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_caps_at_its_burst() {
        let l = RateLimiter::new(RateLimit {
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
}
