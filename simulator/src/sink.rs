//! `CallbackSink`: a ready loopback receiver for the callbacks a terminal sends, for tests
//! of any crate. It records every request and answers with scripted statuses (200 once the
//! script is used up), so retry behaviour can be exercised; tests wait for deliveries with
//! [`CallbackSink::wait_for`] instead of sleeping.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::any;
use serde_json::Value as Json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One request the sink received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Path, e.g. `/api/notifications/card`.
    pub path: String,
    /// Query string (without `?`), if any.
    pub query: Option<String>,
    /// The body as JSON, when it is JSON.
    pub json: Option<Json>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The status the sink answered with.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<(u16, Vec<u8>)>,
}

#[derive(Debug, Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    count: Arc<watch::Sender<usize>>,
}

/// A running receiver on `127.0.0.1:<free port>`; stops when dropped.
#[derive(Debug)]
pub struct CallbackSink {
    addr: SocketAddr,
    shared: Shared,
    cancel: CancellationToken,
}

impl CallbackSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            inner: Arc::default(),
            count: Arc::new(watch::channel(0).0),
        };
        let app = axum::Router::new()
            .fallback(any(receive))
            .with_state(shared.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(CallbackSink {
            addr,
            shared,
            cancel,
        })
    }

    /// The sink's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1`, for a terminal's `monitor.hostname`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port, for a terminal's `monitor.port`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers the next requests with these statuses, in order (then 200 again).
    pub fn respond_with(&self, statuses: impl IntoIterator<Item = u16>) {
        let mut inner = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner
            .script
            .extend(statuses.into_iter().map(|s| (s, Vec::new())));
    }

    /// Answers the next request with this status and JSON body (an online server's reply).
    pub fn respond_with_json(&self, status: u16, body: &Json) {
        let mut inner = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner
            .script
            .push_back((status, body.to_string().into_bytes()));
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .received
            .clone()
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.shared.count.subscribe();
        while *rx.borrow_and_update() < n {
            if rx.changed().await.is_err() {
                break;
            }
        }
        self.received()
    }
}

impl Drop for CallbackSink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn receive(State(shared): State<Shared>, uri: Uri, body: Bytes) -> (StatusCode, Vec<u8>) {
    let (status, reply) = {
        let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, reply) = inner.script.pop_front().unwrap_or((200, Vec::new()));
        inner.received.push(Received {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            json: serde_json::from_slice(&body).ok(),
            body: body.to_vec(),
            status,
        });
        shared.count.send_replace(inner.received.len());
        (status, reply)
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        reply,
    )
}
