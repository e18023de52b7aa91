//! When a failed request is repeated, and how long to wait first.
//!
//! The rule is "repeat only what cannot do harm":
//!
//! | failure                                              | GET / HEAD | PATCH / PUT / DELETE / POST |
//! |------------------------------------------------------|------------|-----------------------------|
//! | connection failed before the request was sent        | retry      | retry                       |
//! | connection broke after sending / request timeout     | retry      | **no** (it may have run)    |
//! | HTTP 429 or 503 (ONTAP refused before acting)        | retry      | retry                       |
//! | HTTP 502 or 504 (a gateway; ONTAP may have acted)    | retry      | no                          |
//! | any other status                                     | no         | no                          |
//!
//! PATCH and DELETE are idempotent in HTTP terms, but on ONTAP they often start a job, and
//! repeating one whose first copy did run would start a second job or fail confusingly,
//! so they are treated like POST. A POST is never repeated blindly.
//!
//! Waits grow exponentially from [`RetryPolicy::base`] up to [`RetryPolicy::max_backoff`],
//! with "equal jitter" (a random point in the upper half of the interval), and honour a
//! `Retry-After: <seconds>` header (still capped at `max_backoff`).

use std::time::Duration;

use http::Method;

/// How failed requests are repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts in total, waits starting at 250 ms, at most 4 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// A policy with the given total number of attempts (at least 1), first wait and cap.
    pub fn new(max_attempts: u32, base: Duration, max_backoff: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base,
            max_backoff: max_backoff.max(base),
        }
    }

    /// Never repeat a request.
    pub fn never() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// Total attempts, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The first wait.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The un-jittered wait before attempt `retry + 1` (`retry` counts from 1):
    /// `min(max_backoff, base * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The jittered wait before retry number `retry` (from 1): in `[ceiling/2, ceiling]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        jitter_upper_half(self.ceiling(retry))
    }

    /// The wait before retry number `retry`, honouring a server `Retry-After` (seconds),
    /// capped at `max_backoff`.
    pub(crate) fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_backoff),
            None => self.backoff(retry),
        }
    }
}

/// A random duration in `[d/2, d]`.
pub(crate) fn jitter_upper_half(d: Duration) -> Duration {
    let half = d / 2;
    let span = (d - half).as_nanos() as u64;
    half + Duration::from_nanos(if span == 0 {
        0
    } else {
        fastrand::u64(0..=span)
    })
}

/// How one attempt failed, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The connection could not be set up (including a connect timeout): nothing was sent.
    NotSent,
    /// The connection broke after (part of) the request was written, or the request timed
    /// out: the server may have acted on it.
    MaybeSent,
    /// The server answered with this error status.
    Status(u16),
}

/// Whether a request with `method` that failed as `failure` may be repeated.
pub fn is_retry_safe(method: &Method, failure: Failure) -> bool {
    let read = *method == Method::GET || *method == Method::HEAD;
    match failure {
        Failure::NotSent => true,
        Failure::MaybeSent => read,
        Failure::Status(429 | 503) => true,
        Failure::Status(502 | 504) => read,
        Failure::Status(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_per_method() {
        let all = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ];
        for m in &all {
            let read = *m == Method::GET || *m == Method::HEAD;
            assert!(is_retry_safe(m, Failure::NotSent), "{m} not sent");
            assert_eq!(is_retry_safe(m, Failure::MaybeSent), read, "{m} maybe sent");
            assert!(is_retry_safe(m, Failure::Status(429)), "{m} 429");
            assert!(is_retry_safe(m, Failure::Status(503)), "{m} 503");
            assert_eq!(is_retry_safe(m, Failure::Status(502)), read, "{m} 502");
            assert_eq!(is_retry_safe(m, Failure::Status(504)), read, "{m} 504");
            for s in [400, 401, 403, 404, 409, 500] {
                assert!(!is_retry_safe(m, Failure::Status(s)), "{m} {s}");
            }
        }
    }

    #[test]
    fn ceilings_double_and_cap() {
        let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_millis(1000));
        let got: Vec<u128> = (1..=6).map(|r| p.ceiling(r).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(200), Duration::from_millis(1000));
    }

    #[test]
    fn backoff_bounds() {
        let p = RetryPolicy::default();
        for retry in 1..=8 {
            let c = p.ceiling(retry);
            for _ in 0..200 {
                let b = p.backoff(retry);
                assert!(
                    b >= c / 2 && b <= c,
                    "retry {retry}: {b:?} not in [{:?}, {c:?}]",
                    c / 2
                );
                assert!(b <= p.max_backoff());
            }
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let p = RetryPolicy::new(3, Duration::from_millis(10), Duration::from_secs(2));
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn constructor_clamps() {
        let p = RetryPolicy::new(0, Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(p.max_attempts(), 1);
        assert_eq!(p.max_backoff(), Duration::from_secs(2));
        assert_eq!(RetryPolicy::never().max_attempts(), 1);
        assert_eq!(RetryPolicy::default().max_attempts(), 4);
    }
}
