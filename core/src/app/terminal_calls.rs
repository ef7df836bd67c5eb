//! Calls to terminals that the integrator API asks for (opening a door with a cloud key,
//! starting and cancelling an enrollment, probing a terminal being registered or
//! changed), made off the request path by owned background tasks.
//!
//! One driver task per terminal address serves a queue of commands: it keeps the
//! terminal's client (one session shared by the commands) and runs each command as a task
//! of its own, so that a long synchronous enrollment does not hold a door opening back.
//! Every command has a deadline: the driver task stops the command when it passes and
//! answers "unavailable", and the submitter waits for the answer a little longer than the
//! deadline, so a handler always gets an answer in bounded time. A command whose
//! submitter is gone before it starts (the HTTP client went away) is not run: no door
//! opens for nobody. A driver task with nothing to do for [`IDLE`] ends; shutdown closes
//! the queues and awaits every task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::devices::{PROBE_TIMEOUT, Probe};
use super::enrollments::Capture;
use crate::domain::Terminal;
use crate::terminal::{ClientOptions, DriverError, EnrollKind, RemoteEnroll, TerminalClient};

/// How long a driver task waits for a command before it ends.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long opening a door may take (log in, `execute_actions`).
pub const OPEN_DOOR_DEADLINE: Duration = Duration::from_secs(15);
/// How long starting an asynchronous enrollment or cancelling one may take.
pub const ENROLL_DEADLINE: Duration = Duration::from_secs(15);
/// How long a synchronous enrollment may take: the terminal holds the request until the
/// person presents (at most the driver's 60 s enrollment timeout), plus logging in.
pub const SYNC_ENROLL_DEADLINE: Duration = Duration::from_secs(75);
/// How long probing a terminal may take: log in, `system_information`, log out, each
/// reply at most [`PROBE_TIMEOUT`].
pub const PROBE_DEADLINE: Duration = Duration::from_secs(3 * PROBE_TIMEOUT.as_secs());
/// How much longer than a command's deadline its submitter waits for the answer.
const GRACE: Duration = Duration::from_secs(2);
/// Commands waiting for one driver task at most.
const QUEUE: usize = 64;

/// Why a terminal call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The terminal answered and refused the command: the request's fault, retrying it
    /// will not help.
    #[error("{0}")]
    Refused(String),
    /// The terminal could not be reached, did not answer in time, or answered something
    /// this driver does not understand: an outage.
    #[error("{0}")]
    Unavailable(String),
}

impl From<DriverError> for CallError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Rejected { .. } => CallError::Refused(e.to_string()),
            other => CallError::Unavailable(other.to_string()),
        }
    }
}

/// A remote enrollment to start on a terminal (docs/device-api.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollOrder {
    /// What to capture.
    pub capture: Capture,
    /// The person's user id on the terminal.
    pub user_id: i64,
    /// Whether the terminal keeps what it captured at once.
    pub save: bool,
    /// Whether the terminal answers with the result (else it delivers it later).
    pub sync: bool,
}

/// Who to call and how to log in.
#[derive(Clone)]
struct Target {
    address: String,
    login: String,
    password: String,
}

enum Command {
    Actions(Json),
    Enroll(EnrollOrder),
    CancelEnroll,
    Probe,
}

enum Answer {
    Done,
    Reply(Json),
    Probe(Probe),
}

struct Job {
    target: Target,
    command: Command,
    deadline: Duration,
    reply: oneshot::Sender<Result<Answer, CallError>>,
}

/// The driver tasks; one per [`super::Core`].
#[derive(Debug, Default)]
pub struct TerminalCalls {
    queues: Arc<Mutex<Queues>>,
    tasks: TaskTracker,
}

#[derive(Debug, Default)]
struct Queues {
    closed: bool,
    next: u64,
    by_address: HashMap<String, (u64, mpsc::Sender<Job>)>,
}

impl TerminalCalls {
    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `command` to the driver task of the target's address (started if there is
    /// none) and waits for its answer, at most the deadline and a grace.
    async fn submit(
        &self,
        target: Target,
        command: Command,
        deadline: Duration,
    ) -> Result<Answer, CallError> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            target,
            command,
            deadline,
            reply,
        };
        // A driver task that just ended for idleness closed its queue: start another.
        for _ in 0..2 {
            let queue = self.queue_of(&job.target.address)?;
            match queue.send(job).await {
                Ok(()) => {
                    return match tokio::time::timeout(deadline + GRACE, answer).await {
                        Ok(Ok(result)) => result,
                        Ok(Err(_)) => Err(CallError::Unavailable(
                            "the terminal call ended without an answer".to_owned(),
                        )),
                        Err(_) => Err(CallError::Unavailable(format!(
                            "the terminal did not answer within {} s",
                            deadline.as_secs()
                        ))),
                    };
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(CallError::Unavailable(
            "the terminal's driver task is not taking commands".to_owned(),
        ))
    }

    fn queue_of(&self, address: &str) -> Result<mpsc::Sender<Job>, CallError> {
        let mut queues = self.queues();
        if queues.closed {
            return Err(CallError::Unavailable(
                "the core is shutting down".to_owned(),
            ));
        }
        if let Some((_, queue)) = queues.by_address.get(address)
            && !queue.is_closed()
        {
            return Ok(queue.clone());
        }
        queues.next += 1;
        let token = queues.next;
        let (queue, jobs) = mpsc::channel(QUEUE);
        queues
            .by_address
            .insert(address.to_owned(), (token, queue.clone()));
        let registry = Arc::clone(&self.queues);
        self.tasks
            .spawn(drive(address.to_owned(), token, jobs, registry));
        Ok(queue)
    }

    /// Closes every queue and waits until the driver tasks have answered what they hold
    /// and ended; later calls answer "unavailable".
    pub async fn shutdown(&self) {
        {
            let mut queues = self.queues();
            queues.closed = true;
            queues.by_address.clear();
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Runs `execute_actions` with `actions` on the terminal (a door opening).
    pub async fn execute_actions(
        &self,
        terminal: &Terminal,
        actions: Json,
    ) -> Result<(), CallError> {
        self.submit(
            target(terminal),
            Command::Actions(actions),
            OPEN_DOOR_DEADLINE,
        )
        .await
        .map(|_| ())
    }

    /// Starts a remote enrollment on the terminal: the device's reply (the result for a
    /// synchronous one).
    pub async fn enroll(&self, terminal: &Terminal, order: EnrollOrder) -> Result<Json, CallError> {
        let deadline = if order.sync {
            SYNC_ENROLL_DEADLINE
        } else {
            ENROLL_DEADLINE
        };
        match self
            .submit(target(terminal), Command::Enroll(order), deadline)
            .await?
        {
            Answer::Reply(reply) => Ok(reply),
            _ => Ok(Json::Object(serde_json::Map::new())),
        }
    }

    /// Cancels the enrollment running on the terminal.
    pub async fn cancel_enroll(&self, terminal: &Terminal) -> Result<(), CallError> {
        self.submit(target(terminal), Command::CancelEnroll, ENROLL_DEADLINE)
            .await
            .map(|_| ())
    }

    /// Probes the terminal at `address` with `login` and `password`: logs in, reads
    /// `system_information` and logs out, each reply awaited at most [`PROBE_TIMEOUT`].
    pub async fn probe(&self, address: &str, login: &str, password: &str) -> Probe {
        let target = Target {
            address: address.to_owned(),
            login: login.to_owned(),
            password: password.to_owned(),
        };
        match self.submit(target, Command::Probe, PROBE_DEADLINE).await {
            Ok(Answer::Probe(probe)) => probe,
            Ok(_) => Probe::Failed("the probe gave no answer".to_owned()),
            Err(e) => Probe::Failed(e.to_string()),
        }
    }
}

fn target(t: &Terminal) -> Target {
    Target {
        address: t.address.clone(),
        login: t.login.clone(),
        password: t.password.expose().to_owned(),
    }
}

/// The driver task of one address: runs each job as a task of its own with the address's
/// client, until its queue closes or it has been idle for [`IDLE`].
async fn drive(
    address: String,
    token: u64,
    mut jobs: mpsc::Receiver<Job>,
    registry: Arc<Mutex<Queues>>,
) {
    let mut client: Option<(String, String, TerminalClient)> = None;
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => start(&mut running, &mut client, job),
                None => break,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = tokio::time::sleep(IDLE), if running.is_empty() => {
                // Leave the registry first, then close: a submitter holding the queue
                // sees it closed and starts another driver task; what is queued is run.
                {
                    let mut queues = registry.lock().unwrap_or_else(PoisonError::into_inner);
                    if queues.by_address.get(&address).is_some_and(|(t, _)| *t == token) {
                        queues.by_address.remove(&address);
                    }
                }
                jobs.close();
                while let Some(job) = jobs.recv().await {
                    start(&mut running, &mut client, job);
                }
                break;
            }
        }
    }
    while running.join_next().await.is_some() {}
}

fn start(
    running: &mut tokio::task::JoinSet<()>,
    client: &mut Option<(String, String, TerminalClient)>,
    job: Job,
) {
    if job.reply.is_closed() {
        tracing::debug!(address = %job.target.address, "terminal call dropped: nobody waits for it");
        return;
    }
    let client = match job.command {
        Command::Probe => None,
        _ => match client_for(client, &job.target) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = job.reply.send(Err(e.into()));
                return;
            }
        },
    };
    running.spawn(async move {
        let Job {
            target,
            command,
            deadline,
            reply,
        } = job;
        let answer = match tokio::time::timeout(deadline, run(client, &target, command)).await {
            Ok(answer) => answer,
            Err(_) => Err(CallError::Unavailable(format!(
                "the terminal did not answer within {} s",
                deadline.as_secs()
            ))),
        };
        if let Err(e) = &answer {
            tracing::warn!(address = %target.address, error = %e, "terminal call failed");
        }
        let _ = reply.send(answer);
    });
}

/// The address's client, built again when the login or password changed.
fn client_for(
    cached: &mut Option<(String, String, TerminalClient)>,
    target: &Target,
) -> Result<TerminalClient, DriverError> {
    if let Some((login, password, client)) = cached.as_ref()
        && *login == target.login
        && *password == target.password
    {
        return Ok(client.clone());
    }
    let client = TerminalClient::new(
        &target.address,
        &target.login,
        &target.password,
        ClientOptions::default(),
    )?;
    *cached = Some((
        target.login.clone(),
        target.password.clone(),
        client.clone(),
    ));
    Ok(client)
}

async fn run(
    client: Option<TerminalClient>,
    target: &Target,
    command: Command,
) -> Result<Answer, CallError> {
    let client = || {
        client
            .clone()
            .ok_or_else(|| CallError::Unavailable("no client for the terminal".to_owned()))
    };
    match command {
        Command::Probe => Ok(Answer::Probe(probe(target).await)),
        Command::Actions(actions) => {
            client()?.execute_actions(actions).await?;
            Ok(Answer::Done)
        }
        Command::Enroll(order) => {
            let request = RemoteEnroll {
                kind: match order.capture {
                    Capture::Face => EnrollKind::Face,
                    Capture::Card => EnrollKind::Card,
                    Capture::Fingerprint => EnrollKind::Biometry,
                },
                user_id: order.user_id,
                save: order.save,
                sync: order.sync,
                auto: true,
                countdown: Some(5),
                ..RemoteEnroll::default()
            };
            Ok(Answer::Reply(client()?.remote_enroll(request).await?))
        }
        Command::CancelEnroll => {
            client()?.cancel_remote_enroll().await?;
            Ok(Answer::Done)
        }
    }
}

/// Logs in with a client of its own, reads `system_information` and logs out.
async fn probe(target: &Target) -> Probe {
    let options = ClientOptions {
        timeout: PROBE_TIMEOUT,
        max_concurrency: 1,
        ..ClientOptions::default()
    };
    let client =
        match TerminalClient::new(&target.address, &target.login, &target.password, options) {
            Ok(client) => client,
            Err(e) => return Probe::Foreign(e.to_string()),
        };
    let probe = match client.system_information().await {
        Ok(info) => Probe::Device {
            device_id: info.device_id,
            serial: info.serial,
            version: info.version,
        },
        Err(DriverError::Unauthorized { message }) => Probe::Refused(message),
        Err(e @ (DriverError::Protocol { .. } | DriverError::Address(_))) => {
            Probe::Foreign(e.to_string())
        }
        Err(e @ (DriverError::Unreachable { .. } | DriverError::Rejected { .. })) => {
            Probe::Failed(e.to_string())
        }
    };
    if matches!(probe, Probe::Device { .. })
        && let Err(e) = client.logout().await
    {
        tracing::debug!(error = %e, "logging out after a probe failed");
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_terminal_answers_failed_and_shutdown_refuses_later_calls() {
        let calls = TerminalCalls::default();
        let probe = calls.probe("http://127.0.0.1:9", "admin", "admin").await;
        assert!(matches!(probe, Probe::Failed(_)), "{probe:?}");
        assert_eq!(calls.queues().by_address.len(), 1, "one driver task");
        calls.shutdown().await;
        assert!(calls.tasks.is_empty(), "every driver task ended");
        let probe = calls.probe("http://127.0.0.1:9", "admin", "admin").await;
        assert_eq!(probe, Probe::Failed("the core is shutting down".to_owned()));
    }
}
