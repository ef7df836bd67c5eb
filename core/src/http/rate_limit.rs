//! Rate limits of the public endpoints (self-enrollment links and cloud keys): fixed
//! windows aligned on the core's clock (so tests move it instead of waiting), counted per
//! client address and per link token. Only the current window's counters are kept: when a
//! new window starts, the old counters are dropped at once, so no request ever sweeps the
//! table. Over the limit the caller gets 429 problem+json saying when to try again;
//! nothing is read or written. The limiter belongs to the HTTP layer's state, not to the
//! application.
//!
//! When the core shares its database with other instances ([`Core::is_shared`]) the
//! counters live in the store instead (`Store::count_hit`: one upsert-increment per key
//! returning the window's count; old windows pruned when a new one starts), so that a
//! client spreading its requests over the instances meets the same limits; a link token
//! is counted under its keyed digest there, never in clear. A request refused there has
//! been counted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use jiff::{SignedDuration, Timestamp};

use crate::app::Core;
use crate::error::{AppError, RefusalClass};

/// Requests one client address may make per window.
pub const PER_ADDRESS: u32 = 60;
/// Requests one link token may receive per window.
pub const PER_TOKEN: u32 = 10;
/// The window.
pub const WINDOW: SignedDuration = SignedDuration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Token(String),
}

/// The current window's counters per key.
#[derive(Debug, Default)]
pub struct RateLimiter {
    window: Mutex<(i64, HashMap<Key, u32>)>,
}

impl RateLimiter {
    /// Counts one request for every key; `Err(retry_after_seconds)` when any is over its
    /// limit (the request is then not counted).
    fn hit(&self, now: Timestamp, keys: &[(Key, u32)]) -> Result<(), i64> {
        let length = WINDOW.as_secs().max(1);
        let index = now.as_second().div_euclid(length);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.0 != index {
            *window = (index, HashMap::new());
        }
        for (key, limit) in keys {
            if window.1.get(key).is_some_and(|count| count >= limit) {
                return Err(((index + 1) * length - now.as_second()).max(1));
            }
        }
        for (key, _) in keys {
            *window.1.entry(key.clone()).or_insert(0) += 1;
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

/// Counts a public request from `peer` for `token` at the core's now; 429 when over a
/// limit.
pub(crate) async fn check(
    limits: &RateLimiter,
    core: &Core,
    peer: ClientAddr,
    token: &str,
) -> Result<(), AppError> {
    let now = core.now();
    let address = peer
        .0
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let token: String = token.chars().take(128).collect();
    let counted = if core.is_shared() {
        shared_hit(core, now, address, &token).await?
    } else {
        limits.hit(
            now,
            &[
                (Key::Address(address), PER_ADDRESS),
                (Key::Token(token), PER_TOKEN),
            ],
        )
    };
    counted.map_err(|retry_after| {
        AppError::refused(
            RefusalClass::TooManyRequests,
            "rate-limited",
            "Too many requests",
            format!("too many requests; try again in {retry_after} s"),
        )
    })
}

/// Counts the request in the store's counters; `Err(retry_after_seconds)` when a count
/// passed its limit.
async fn shared_hit(
    core: &Core,
    now: Timestamp,
    address: IpAddr,
    token: &str,
) -> Result<Result<(), i64>, AppError> {
    let length = WINDOW.as_secs().max(1);
    let index = now.as_second().div_euclid(length);
    let window_ms = index.saturating_mul(length).saturating_mul(1000);
    let keys = [
        (format!("address:{address}"), PER_ADDRESS),
        (format!("token:{}", core.digest(token)), PER_TOKEN),
    ];
    let store = core.store().clone();
    let over = tokio::task::spawn_blocking(move || {
        let mut over = false;
        for (key, limit) in &keys {
            over |= store.count_hit(key, window_ms, window_ms)? > u64::from(*limit);
        }
        Ok::<_, crate::store::StoreError>(over)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "rate-limit task failed");
        AppError::internal()
    })??;
    Ok(if over {
        Err(((index + 1) * length - now.as_second()).max(1))
    } else {
        Ok(())
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

    #[test]
    fn a_new_window_drops_the_old_counters_at_once() {
        let limiter = RateLimiter::default();
        let t0 = Timestamp::UNIX_EPOCH;
        for i in 0..1_000 {
            assert_eq!(limiter.hit(t0, &[(Key::Token(format!("t{i}")), 1)]), Ok(()));
        }
        assert_eq!(
            limiter.hit(t0 + WINDOW, &[(Key::Token("x".into()), 1)]),
            Ok(())
        );
        let window = limiter
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(window.1.len(), 1, "only the new window's key is kept");
    }
}
