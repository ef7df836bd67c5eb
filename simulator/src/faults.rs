//! The fault plan of one terminal: what goes wrong on purpose. Request-level faults
//! (added latency, a status/body override for the next N calls of a command) are applied by
//! the HTTP layer; callback faults live in the outbox; one-shot faults (expire sessions,
//! reboot, power off/on, clock skew) are operations on the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value as Json;

/// Replace the answer of the next `remaining` calls of `command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Command name without `.fcgi` (e.g. `load_objects`).
    pub command: String,
    /// How many more calls are overridden.
    pub remaining: u32,
    /// HTTP status to answer.
    pub status: u16,
    /// Body to answer (JSON).
    pub body: Json,
}

#[derive(Debug, Default)]
struct Plan {
    latency: Duration,
    overrides: Vec<Override>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.latency.is_zero() && self.overrides.is_empty()
    }
}

/// Request-level faults; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
    /// Whether the plan holds any fault: every request asks, and without one it need not
    /// queue for the plan's lock.
    armed: Arc<AtomicBool>,
}

impl Faults {
    /// Runs `f` on the plan under its lock, keeping `armed` true to what it holds.
    fn change<R>(&self, f: impl FnOnce(&mut Plan) -> R) -> R {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut plan);
        self.armed.store(!plan.is_empty(), Ordering::Release);
        result
    }

    /// Adds `latency` (scheduler time) before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.change(|plan| plan.latency = latency);
    }

    /// The added latency.
    pub fn latency(&self) -> Duration {
        if !self.armed.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        self.change(|plan| plan.latency)
    }

    /// Overrides the answer of the next calls of a command.
    pub fn add_override(&self, o: Override) {
        self.change(|plan| plan.overrides.push(o));
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.change(|plan| *plan = Plan::default());
    }

    /// Consumes one override for `command`, if any is pending.
    pub fn take_override(&self, command: &str) -> Option<(u16, Json)> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        self.change(|plan| {
            let o = plan
                .overrides
                .iter_mut()
                .find(|o| o.command == command && o.remaining > 0)?;
            o.remaining -= 1;
            let answer = (o.status, o.body.clone());
            plan.overrides.retain(|o| o.remaining > 0);
            Some(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_count_down() {
        let f = Faults::default();
        f.add_override(Override {
            command: "load_objects".into(),
            remaining: 2,
            status: 503,
            body: json!({}),
        });
        assert_eq!(f.take_override("login"), None);
        assert_eq!(f.take_override("load_objects").map(|o| o.0), Some(503));
        assert!(f.take_override("load_objects").is_some());
        assert_eq!(f.take_override("load_objects"), None);
    }
}
