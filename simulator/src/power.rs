//! Power: the terminal's HTTP listener across power cycles. Powering off stops accepting
//! connections (clients see "connection refused"), loses volatile state like a reboot, and
//! powering on serves again on the same address. The serve loop owns the listener; the
//! library handle and the `/_sim/` API ask it to switch through a [`PowerSwitch`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::terminal::Terminal;

/// A request to the serve loop.
#[derive(Debug)]
enum Command {
    Off {
        back_after: Option<Duration>,
        done: Option<oneshot::Sender<()>>,
    },
    On {
        done: oneshot::Sender<()>,
    },
}

/// Asks the serve loop to power the terminal off or on; clones share it.
#[derive(Debug, Clone, Default)]
pub struct PowerSwitch {
    tx: Arc<Mutex<Option<mpsc::UnboundedSender<Command>>>>,
}

impl PowerSwitch {
    fn sender(&self) -> Option<mpsc::UnboundedSender<Command>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn connect(&self) -> mpsc::UnboundedReceiver<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.tx.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    /// Powers off and waits until the listener is closed; with `back_after`, power returns
    /// by itself after that much scheduler time. Returns false when not serving.
    pub async fn off(&self, back_after: Option<Duration>) -> bool {
        let (done, wait) = oneshot::channel();
        let Some(tx) = self.sender() else {
            return false;
        };
        if tx
            .send(Command::Off {
                back_after,
                done: Some(done),
            })
            .is_err()
        {
            return false;
        }
        wait.await.is_ok()
    }

    /// Asks for a power-off without waiting (used from a request on the same listener).
    pub fn off_later(&self, back_after: Option<Duration>) -> bool {
        self.sender().is_some_and(|tx| {
            tx.send(Command::Off {
                back_after,
                done: None,
            })
            .is_ok()
        })
    }

    /// Powers on and waits until the listener accepts again.
    pub async fn on(&self) -> bool {
        let (done, wait) = oneshot::channel();
        let Some(tx) = self.sender() else {
            return false;
        };
        if tx.send(Command::On { done }).is_err() {
            return false;
        }
        wait.await.is_ok()
    }
}

/// Serves `terminal` on `listener` until `cancel`, obeying power commands.
pub(crate) async fn serve(
    terminal: Terminal,
    listener: TcpListener,
    addr: SocketAddr,
    cancel: CancellationToken,
) {
    let mut commands = terminal.power.connect();
    let mut listener = Some(listener);
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen again after power-on");
                    return;
                }
            },
        };
        let server_stop = cancel.child_token();
        let app = crate::api::router(terminal.clone());
        let stop = server_stop.clone();
        // Push mode polls only while the terminal is powered.
        tokio::spawn(crate::push::run_loop(terminal.clone(), server_stop.clone()));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "terminal listener failed");
            }
        });
        // Serving: wait for shutdown or a power-off.
        let off = loop {
            tokio::select! {
                () = cancel.cancelled() => break None,
                cmd = commands.recv() => match cmd {
                    Some(Command::Off { back_after, done }) => break Some((back_after, done)),
                    Some(Command::On { done }) => { let _ = done.send(()); }
                    None => break None,
                },
            }
        };
        terminal.reboot();
        // Also ends the panel's live streams, which would otherwise hold the listener open.
        terminal.display.set_powered(false);
        server_stop.cancel();
        let _ = server.await;
        let Some((back_after, done)) = off else {
            return;
        };
        tracing::info!("terminal powered off");
        if let Some(done) = done {
            let _ = done.send(());
        }
        // Off: wait for power-on (a command or the timer) or shutdown.
        let timer = async {
            match back_after {
                Some(d) => terminal.scheduler.sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = &mut timer => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::On { done }) => {
                        // Bind before acknowledging so the caller can connect at once.
                        match TcpListener::bind(addr).await {
                            Ok(l) => listener = Some(l),
                            Err(e) => tracing::error!(%addr, error = %e, "cannot listen again after power-on"),
                        }
                        let _ = done.send(());
                        break;
                    }
                    Some(Command::Off { done, .. }) => {
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                    None => return,
                },
            }
        }
        terminal.display.set_powered(true);
        tracing::info!("terminal powered on");
    }
}
