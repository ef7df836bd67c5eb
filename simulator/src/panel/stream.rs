//! The panel's live stream, `GET /_sim/ui/events`: server-sent events, each a `state`
//! event carrying the terminal's picture (the same JSON as `/_sim/ui/state`).
//!
//! One is sent at once, then again whenever something visible moves: the display (screen,
//! LED, power), the device's persistent state (tables, configuration), a callback attempt,
//! the manual scheduler clock (a countdown moving), or – in scaled time – each time a
//! nominal second of a countdown passes and when a message times out or a relay closes. Bursts are coalesced so a bulk load of the
//! device's tables does not flood the browser. The stream ends when the terminal powers off
//! or shuts down, so it never keeps a listener from closing.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use crate::scheduler::TimeMode;
use crate::terminal::Terminal;

/// Shortest real time between two events of one stream.
const MIN_GAP: Duration = Duration::from_millis(50);

/// Longest real wait between countdown refreshes in scaled time.
const MAX_TICK: Duration = Duration::from_secs(1);

struct Watch {
    terminal: Terminal,
    display: watch::Receiver<u64>,
    device: watch::Receiver<u64>,
    callbacks: watch::Receiver<u64>,
    clock: watch::Receiver<Duration>,
    first: bool,
}

impl Watch {
    fn new(terminal: Terminal) -> Self {
        Watch {
            display: terminal.display.subscribe(),
            device: terminal.device.subscribe_changes(),
            callbacks: terminal.journal.subscribe_callbacks(),
            clock: terminal.scheduler.subscribe_time(),
            terminal,
            first: true,
        }
    }

    /// Real time until what is shown next changes by itself, in scaled time: the countdown
    /// moving a second, a message timing out, a relay closing.
    fn countdown_tick(&self) -> Option<Duration> {
        let TimeMode::Scaled(scale) = self.terminal.scheduler.mode() else {
            return None;
        };
        let now = self.terminal.scheduler.now();
        let countdown = self.terminal.display.countdown_until().and_then(|until| {
            let left = until.checked_sub(now)?;
            let to_next_second = Duration::from_nanos(u64::from(left.subsec_nanos()));
            Some(if to_next_second.is_zero() {
                Duration::from_secs(1)
            } else {
                to_next_second
            })
        });
        let ends = self
            .terminal
            .display
            .next_change(now)
            .and_then(|at| at.checked_sub(now));
        let nominal = countdown.into_iter().chain(ends).min()?;
        let real = Duration::try_from_secs_f64(nominal.as_secs_f64() * scale).ok()?;
        Some(real.clamp(MIN_GAP, MAX_TICK))
    }

    /// Waits for the next visible change; `false` when the stream should end.
    async fn changed(&mut self) -> bool {
        let tick = self.countdown_tick();
        let timer = async {
            match tick {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let shutdown = self.terminal.shutdown.clone();
        let moved = tokio::select! {
            () = shutdown.cancelled() => false,
            r = self.display.changed() => r.is_ok(),
            r = self.device.changed() => r.is_ok(),
            r = self.callbacks.changed() => r.is_ok(),
            r = self.clock.changed() => r.is_ok(),
            () = timer => true,
        };
        moved && self.terminal.display.powered()
    }

    async fn next(&mut self) -> Option<String> {
        if self.first {
            self.first = false;
        } else {
            if !self.changed().await {
                return None;
            }
            // Coalesce a burst of changes into one event.
            tokio::time::sleep(MIN_GAP).await;
            for rx in [&mut self.display, &mut self.device, &mut self.callbacks] {
                rx.mark_unchanged();
            }
            self.clock.mark_unchanged();
            if self.terminal.shutdown.is_cancelled() || !self.terminal.display.powered() {
                return None;
            }
        }
        Some(super::view::terminal_json(&self.terminal).to_string())
    }
}

/// The stream of `state` events for one terminal.
pub(crate) fn state_events(terminal: Terminal) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Watch::new(terminal), |mut watch| async move {
        let data = watch.next().await?;
        Some((Ok(Event::default().event("state").data(data)), watch))
    })
}

/// `GET /_sim/ui/events`.
pub(super) async fn events(
    State(terminal): State<std::sync::Arc<Terminal>>,
) -> impl axum::response::IntoResponse {
    Sse::new(state_events(Terminal::clone(&terminal))).keep_alive(KeepAlive::default())
}
