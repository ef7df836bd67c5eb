//! Where "now" comes from: the host clock, or a manual clock tests move.

use std::sync::Arc;

use jiff::Timestamp;

/// Where "now" comes from: the host clock, or a clock tests set (and whose moves wake
/// everything waiting for an instant, such as the sync engine).
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// `Timestamp::now()`.
    #[default]
    System,
    /// A fixed instant that tests move.
    Manual(Arc<tokio::sync::watch::Sender<Timestamp>>),
}

impl Clock {
    /// A manual clock starting at `at`.
    pub fn manual(at: Timestamp) -> Clock {
        Clock::Manual(Arc::new(tokio::sync::watch::channel(at).0))
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(t) => *t.borrow(),
        }
    }

    /// Sets a manual clock (does nothing to the system clock).
    pub fn set(&self, at: Timestamp) {
        if let Clock::Manual(t) = self {
            t.send_replace(at);
        }
    }

    /// Waits until `at` (or until a manual clock is moved, whichever comes first: the
    /// caller re-reads the time and decides).
    pub async fn sleep_until(&self, at: Timestamp) {
        match self {
            Clock::System => {
                let wait = Timestamp::now().duration_until(at);
                let wait = std::time::Duration::try_from(wait).unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Clock::Manual(t) => {
                let mut rx = t.subscribe();
                if *rx.borrow_and_update() >= at {
                    return;
                }
                let _ = rx.changed().await;
            }
        }
    }
}
