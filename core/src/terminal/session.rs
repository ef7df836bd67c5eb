//! The session of one terminal client (docs/device-api.md §1): logged in on first use,
//! shared by every clone and every concurrent call, replaced when the device refuses it.
//!
//! Concurrent callers never log in twice for the same need: they queue on one async
//! mutex, and whoever finds that a login finished while it waited takes that outcome –
//! the new token, or the same error (so twenty calls with a wrong password make one
//! refused login, not twenty; the device's small web server drops bursts, §10.2).
//!
//! The token is opaque and secret: it is never logged or put in an error.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use super::error::DriverError;

#[derive(Default)]
struct State {
    token: Option<String>,
    /// The outcome of the last login attempt when it failed.
    last_failure: Option<DriverError>,
}

/// The cached session token and the login guard.
#[derive(Default)]
pub(super) struct SessionCache {
    state: Mutex<State>,
    /// Login attempts finished so far (read before queueing on the mutex).
    attempts: AtomicU64,
}

impl SessionCache {
    /// A token to use: the current one unless it is `stale` (the device just refused
    /// it), else the outcome of a login that finished while this caller waited, else the
    /// outcome of a new `login()`.
    pub(super) async fn token<F, Fut>(
        &self,
        stale: Option<&str>,
        login: F,
    ) -> Result<String, DriverError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, DriverError>>,
    {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(token) = &state.token
            && Some(token.as_str()) != stale
        {
            return Ok(token.clone());
        }
        if self.attempts.load(Ordering::Acquire) != attempts_seen
            && let Some(failure) = &state.last_failure
        {
            return Err(failure.clone());
        }
        let outcome = login().await;
        self.attempts.fetch_add(1, Ordering::Release);
        match &outcome {
            Ok(token) => {
                state.token = Some(token.clone());
                state.last_failure = None;
            }
            Err(e) => {
                state.token = None;
                state.last_failure = Some(e.clone());
            }
        }
        outcome
    }

    /// Forgets the token, returning it (for `logout.fcgi`).
    pub(super) async fn take(&self) -> Option<String> {
        self.state.lock().await.token.take()
    }
}
