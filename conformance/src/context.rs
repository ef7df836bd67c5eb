//! What a case gets to work with: the core's driver for the terminal, a raw HTTP client
//! for checks of the wire itself (status codes, error envelopes), the operator for
//! physical steps, the terminal's capabilities, and the evidence it collects.
//!
//! Every case works only with objects in the reserved id range ([`RESERVED_FROM`]) so a
//! run on a real device touches nothing else; the runner removes that range afterwards.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use acs_core::terminal::{ClientOptions, TerminalClient};
use serde_json::{Value as Json, json};

use crate::core_rig::{CallbackConfig, CoreRig};
use crate::operator::Operator;
use crate::outcome::{Capability, Exchange, Reason};
use crate::redact::redact;

/// First id of the range conformance cases create objects in (users, cards' users,
/// rules…); nothing below it is ever created, changed or deleted by a case.
pub const RESERVED_FROM: i64 = 990_000_000;

/// End (exclusive) of the reserved range.
pub const RESERVED_TO: i64 = 1_010_000_000;

/// How a case ended, when it did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The terminal behaved differently: what was expected, what happened.
    Fail {
        /// Expected.
        expected: String,
        /// Actual.
        actual: String,
    },
    /// The harness could not run the case.
    Error(String),
    /// The case could not be carried out for `Reason` (a physical step nobody performed,
    /// no callback address…).
    NotRun(Reason),
}

/// A case's result: `Ok(())` is a pass.
pub type CaseOutcome = Result<(), Problem>;

/// Fails unless `actual == expected`.
pub fn check<T: PartialEq + std::fmt::Debug>(what: &str, actual: T, expected: T) -> CaseOutcome {
    if actual == expected {
        Ok(())
    } else {
        Err(Problem::Fail {
            expected: format!("{what}: {expected:?}"),
            actual: format!("{what}: {actual:?}"),
        })
    }
}

/// Fails unless `ok`.
pub fn ensure(ok: bool, expected: &str, actual: impl FnOnce() -> String) -> CaseOutcome {
    if ok {
        Ok(())
    } else {
        Err(Problem::Fail {
            expected: expected.to_owned(),
            actual: actual(),
        })
    }
}

/// A reply as the raw client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// HTTP status.
    pub status: u16,
    /// Body as JSON (`null` when empty or not JSON).
    pub json: Json,
    /// Raw bytes.
    pub bytes: Vec<u8>,
    /// Content type.
    pub content_type: String,
}

/// The per-case environment.
#[derive(Debug, Clone)]
pub struct Ctx {
    base: String,
    device_base: String,
    login: String,
    password: String,
    http: reqwest::Client,
    driver: TerminalClient,
    operator: Arc<dyn Operator>,
    capabilities: BTreeSet<Capability>,
    model: String,
    evidence: Arc<Mutex<Vec<Exchange>>>,
    session: Arc<Mutex<Option<String>>>,
    callback: Option<CallbackConfig>,
    rig: Arc<tokio::sync::OnceCell<Result<Arc<CoreRig>, String>>>,
    evidence_wait: std::time::Duration,
}

/// How long a case waits for the terminal to show the evidence of a physical step the
/// operator confirmed, by default.
pub const EVIDENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

impl Ctx {
    /// The environment for a terminal at `base` (`http://…`).
    pub fn new(
        base: &str,
        login: &str,
        password: &str,
        operator: Arc<dyn Operator>,
        capabilities: BTreeSet<Capability>,
        model: &str,
    ) -> Result<Ctx, String> {
        let driver = TerminalClient::new(base, login, password, ClientOptions::default())
            .map_err(|e| e.to_string())?;
        Ok(Ctx {
            base: driver.base_url().to_owned(),
            device_base: driver.base_url().to_owned(),
            login: login.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::new(),
            driver,
            operator,
            capabilities,
            model: model.to_owned(),
            evidence: Arc::default(),
            session: Arc::default(),
            callback: None,
            rig: Arc::default(),
            evidence_wait: EVIDENCE_WAIT,
        })
    }

    /// Sends all traffic of the run – the cases' and the workflow core's – through
    /// `gateway` (the guarded proxy in front of the terminal).
    pub fn through(self, gateway: &str) -> Result<Ctx, String> {
        let evidence_wait = self.evidence_wait;
        let mut ctx = Ctx::new(
            gateway,
            &self.login,
            &self.password,
            self.operator,
            self.capabilities,
            &self.model,
        )?
        .with_callback(self.callback);
        ctx.evidence_wait = evidence_wait;
        Ok(ctx)
    }

    /// The URL the run's traffic goes to (the terminal, or the gateway in front of it).
    pub fn device_url(&self) -> &str {
        &self.device_base
    }

    /// How long to wait for the evidence of a confirmed physical step.
    pub fn with_evidence_wait(mut self, wait: std::time::Duration) -> Ctx {
        self.evidence_wait = wait;
        self
    }

    /// How long a case waits for the evidence of a physical step the operator confirmed.
    pub fn evidence_wait(&self) -> std::time::Duration {
        self.evidence_wait
    }

    /// Where the workflow cases' core listens for the terminal (`None`: workflow cases are
    /// not run).
    pub fn with_callback(mut self, callback: Option<CallbackConfig>) -> Ctx {
        self.callback = callback;
        self
    }

    /// The core the workflow cases drive, started on first use and shared by the run.
    pub async fn core_rig(&self) -> Result<Arc<CoreRig>, Problem> {
        let Some(callback) = &self.callback else {
            return Err(Problem::NotRun(Reason::NoCallbackAddress));
        };
        self.rig
            .get_or_init(|| async {
                CoreRig::start(&self.device_base, &self.login, &self.password, callback)
                    .await
                    .map(Arc::new)
            })
            .await
            .clone()
            .map_err(Problem::Error)
    }

    /// A copy with fresh evidence and a fresh driver session, for the next case.
    pub fn for_case(&self) -> Result<Ctx, String> {
        let mut ctx = Ctx::new(
            &self.base,
            &self.login,
            &self.password,
            self.operator.clone(),
            self.capabilities.clone(),
            &self.model,
        )?;
        ctx.http = self.http.clone();
        ctx.device_base.clone_from(&self.device_base);
        ctx.callback = self.callback.clone();
        ctx.rig = self.rig.clone();
        ctx.evidence_wait = self.evidence_wait;
        Ok(ctx)
    }

    /// The core's driver for the terminal.
    pub fn driver(&self) -> &TerminalClient {
        &self.driver
    }

    /// Who performs physical steps.
    pub fn operator(&self) -> &Arc<dyn Operator> {
        &self.operator
    }

    /// Whether the terminal has `capability`.
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The terminal's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The login.
    pub fn login_name(&self) -> &str {
        &self.login
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The evidence collected so far.
    pub fn evidence(&self) -> Vec<Exchange> {
        self.evidence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records an exchange as evidence.
    pub fn note(&self, request: String, response: String) {
        self.evidence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Exchange {
                request: redact(&request),
                response: redact(&response),
            });
    }

    /// A raw POST of `command.fcgi` with a query string and an optional JSON body.
    pub async fn raw(
        &self,
        command: &str,
        query: &str,
        body: Option<&Json>,
    ) -> Result<Raw, Problem> {
        self.raw_bytes(
            command,
            query,
            body.map(|b| b.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    /// A raw POST with bytes and a content type.
    pub async fn raw_bytes(
        &self,
        command: &str,
        query: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<Raw, Problem> {
        let url = if query.is_empty() {
            format!("{}/{command}.fcgi", self.base)
        } else {
            format!("{}/{command}.fcgi?{query}", self.base)
        };
        let mut req = self.http.post(&url);
        let shown_body = body.as_deref().map(excerpt).unwrap_or_default();
        if let Some(b) = body {
            req = req.header("Content-Type", content_type).body(b);
        }
        let r = req
            .send()
            .await
            .map_err(|e| Problem::Error(redact(&format!("{command}: {e}"))))?;
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = r
            .bytes()
            .await
            .map_err(|e| Problem::Error(redact(&format!("{command}: {e}"))))?
            .to_vec();
        self.note(
            format!("POST /{command}.fcgi?{query} {shown_body}"),
            format!("{status} {}", excerpt(&bytes)),
        );
        let json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        Ok(Raw {
            status,
            json,
            bytes,
            content_type,
        })
    }

    /// A session token of this case's own (raw login).
    pub async fn session(&self) -> Result<String, Problem> {
        if let Some(s) = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(s);
        }
        let r = self
            .raw(
                "login",
                "",
                Some(&json!({"login": self.login, "password": self.password})),
            )
            .await?;
        let token = r.json["session"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                Problem::Error(redact(&format!("login failed: {} {}", r.status, r.json)))
            })?;
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    /// A raw call with this case's session.
    pub async fn call(&self, command: &str, body: &Json) -> Result<Raw, Problem> {
        let session = self.session().await?;
        let query = format!("session={}", pct(&session));
        self.raw(command, &query, Some(body)).await
    }
}

/// Percent-encodes a session token for a query string.
pub fn pct(token: &str) -> String {
    token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
