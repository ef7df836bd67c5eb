//! Committed access events on their way to the live event stream, handed over in the
//! order of their commits (so in the order of their ids): a write's events wait until its
//! change is applied to the snapshot (a subscriber told of an event reads a snapshot that
//! has it), and events committed after them – decisions appended beside the write – wait
//! behind them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use super::{Inner, StreamedEvent};

/// The queue of committed events not handed to the stream yet.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    next: u64,
    batches: VecDeque<Batch>,
}

/// One commit's events.
#[derive(Debug)]
struct Batch {
    seq: u64,
    ready: bool,
    events: Vec<StreamedEvent>,
}

impl Queue {
    fn flush(&mut self, stream: &broadcast::Sender<StreamedEvent>) {
        while self.batches.front().is_some_and(|b| b.ready) {
            if let Some(batch) = self.batches.pop_front() {
                for event in batch.events {
                    // Nobody listening is fine.
                    let _ = stream.send(event);
                }
            }
        }
    }
}

impl Outgoing {
    /// Runs `commit` in its turn (one commit at a time) and queues the events it
    /// committed: handed to `stream` at once behind the earlier ones, or, when `held`,
    /// kept (with everything committed after them) until the returned [`Held`] is dropped.
    pub(super) fn commit<E>(
        &self,
        inner: &Arc<Inner>,
        held: bool,
        commit: impl FnOnce() -> Result<Vec<StreamedEvent>, E>,
    ) -> Result<Option<Held>, E> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let events = commit()?;
        if events.is_empty() {
            return Ok(None);
        }
        let seq = queue.next;
        queue.next += 1;
        queue.batches.push_back(Batch {
            seq,
            ready: !held,
            events,
        });
        queue.flush(&inner.events);
        Ok(held.then(|| Held {
            inner: Arc::clone(inner),
            seq,
        }))
    }
}

/// A write's committed events, held back from the stream until this is dropped (once the
/// change is applied, or however the write ends).
#[derive(Debug)]
pub(super) struct Held {
    inner: Arc<Inner>,
    seq: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut queue = self
            .inner
            .outgoing
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(batch) = queue.batches.iter_mut().find(|b| b.seq == self.seq) {
            batch.ready = true;
        }
        queue.flush(&self.inner.events);
    }
}
