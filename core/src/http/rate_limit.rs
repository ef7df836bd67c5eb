//! Rate limits of the public endpoints (self-enrollment links and cloud keys): a fixed
//! window per client address and per link token, on the core's clock (so tests move it
//! instead of waiting). Over the limit the caller gets 429 problem+json saying when to
//! try again; nothing is read or written.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use jiff::{SignedDuration, Timestamp};

use super::problem::ApiProblem;
use crate::app::Core;

/// Requests one client address may make per window.
pub const PER_ADDRESS: u32 = 60;
/// Requests one link token may receive per window.
pub const PER_TOKEN: u32 = 10;
/// The window.
pub const WINDOW: SignedDuration = SignedDuration::from_secs(60);

/// Keys tracked before old windows are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Token(String),
}

/// Counters of the current window per key.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<Key, (Timestamp, u32)>>,
}

impl RateLimiter {
    /// Counts one request for every key; `Err(retry_after_seconds)` when any is over its
    /// limit (the request is then not counted).
    fn hit(&self, now: Timestamp, keys: &[(Key, u32)]) -> Result<(), i64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        for (key, limit) in keys {
            if let Some((start, count)) = windows.get(key)
                && now.duration_since(*start) < WINDOW
                && count >= limit
            {
                let left = WINDOW - now.duration_since(*start);
                return Err(left.as_secs().max(1));
            }
        }
        for (key, _) in keys {
            let entry = windows.entry(key.clone()).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
        Ok(())
    }
}

/// The client's address, when the server was started with connect info (otherwise every
/// client shares one address's limit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// Counts a public request from `peer` for `token`; 429 when over a limit.
pub(crate) fn check(core: &Core, peer: ClientAddr, token: &str) -> Result<(), ApiProblem> {
    let address = peer
        .0
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let token: String = token.chars().take(128).collect();
    core.public_limits()
        .hit(
            core.now(),
            &[
                (Key::Address(address), PER_ADDRESS),
                (Key::Token(token), PER_TOKEN),
            ],
        )
        .map_err(|retry_after| {
            ApiProblem::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many requests; try again in {retry_after} s"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_limit_then_refuses_until_it_ends() {
        let limiter = RateLimiter::default();
        let t0 = Timestamp::UNIX_EPOCH;
        let keys = [(Key::Token("t".into()), 3)];
        for _ in 0..3 {
            assert_eq!(limiter.hit(t0, &keys), Ok(()));
        }
        assert_eq!(
            limiter.hit(t0 + SignedDuration::from_secs(20), &keys),
            Err(40)
        );
        assert_eq!(limiter.hit(t0 + WINDOW, &keys), Ok(()));
    }
}
