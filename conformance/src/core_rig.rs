//! The core the workflow cases drive: an in-process `acs-core` (in-memory store, ids in
//! the reserved range, a manual clock the cases move), its integrator API on a loopback
//! port, its receiver on the callback address the terminal can reach, and the sync engine
//! with the terminal under test registered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use acs_core::store::{SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions, SyncStatus};
use acs_core::{Clock, Core};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::context::RESERVED_FROM;

/// Where the workflow cases' core listens for the terminal.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Address the receiver binds.
    pub bind: SocketAddr,
    /// HOST:PORT the terminal uses to reach it (defaults to the bound address).
    pub advertise: Option<(String, u16)>,
}

/// The running core.
#[derive(Debug)]
pub struct CoreRig {
    core: Core,
    api: String,
    key: String,
    http: reqwest::Client,
    engine: SyncEngine,
    /// The terminal under test, as the core knows it.
    pub terminal: u64,
    /// Its facility.
    pub facility: u64,
    /// Its door.
    pub door: u64,
}

/// The instant the manual clock starts at (a Monday morning).
pub const START: &str = "2026-05-04T08:00:00Z";

impl CoreRig {
    /// Starts the core and registers the terminal at `base`.
    pub async fn start(
        base: &str,
        login: &str,
        password: &str,
        callback: &CallbackConfig,
    ) -> Result<CoreRig, String> {
        let store = SqliteStore::in_memory().map_err(|e| e.to_string())?;
        store
            .reserve_ids_from(u64::try_from(RESERVED_FROM).unwrap_or(0) + 1_000)
            .map_err(|e| e.to_string())?;
        let store: Arc<dyn Store> = Arc::new(store);
        let start: Timestamp = START.parse().map_err(|e| format!("{e}"))?;
        let core = Core::with_clock(store, Clock::manual(start));
        let (_, key) = core
            .create_tenant("conformance", "Conformance")
            .await
            .map_err(|e| e.detail)?;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let api = format!(
            "http://{}",
            api_listener.local_addr().map_err(|e| e.to_string())?
        );
        tokio::spawn(acs_core::serve(
            api_listener,
            core.clone(),
            std::future::pending(),
        ));
        let receiver = tokio::net::TcpListener::bind(callback.bind)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on the callback address {}: {e}",
                    callback.bind
                )
            })?;
        let bound = receiver.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(acs_core::receiver::serve(
            receiver,
            core.clone(),
            std::future::pending(),
        ));
        let advertise = callback
            .advertise
            .clone()
            .unwrap_or_else(|| (bound.ip().to_string(), bound.port()));
        let engine = SyncEngine::spawn(
            core.clone(),
            SyncOptions {
                retry_initial: Duration::from_millis(50),
                retry_max: Duration::from_millis(500),
                receiver: Some(advertise),
                ..SyncOptions::default()
            },
        );
        let mut rig = CoreRig {
            core,
            api,
            key: key.secret,
            http: reqwest::Client::new(),
            engine,
            terminal: 0,
            facility: 0,
            door: 0,
        };
        let site = rig.id(rig
            .post("/v1/sites", json!({"name": "Site", "timezone": "UTC"}))
            .await?)?;
        rig.facility = rig.id(rig
            .post("/v1/facilities", json!({"site_id": site, "name": "Hall"}))
            .await?)?;
        rig.door = rig.id(rig
            .post(
                "/v1/doors",
                json!({"facility_id": rig.facility, "name": "Door",
                "supported_auth_types": {"in": ["face", "card", "pin", "qr"], "out": ["card"]}}),
            )
            .await?)?;
        rig.terminal = rig.id(rig
            .post(
                "/v1/terminals",
                json!({"facility_id": rig.facility, "model": "terminal",
                "address": base, "login": login, "password": password, "door_ids": [rig.door]}),
            )
            .await?)?;
        rig.converged().await?;
        Ok(rig)
    }

    fn id(&self, reply: (u16, Json)) -> Result<u64, String> {
        reply
            .1
            .get("id")
            .and_then(Json::as_u64)
            .ok_or_else(|| format!("the core refused: {} {}", reply.0, reply.1))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
    ) -> Result<(u16, Json), String> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let json = r.json().await.unwrap_or(Json::Null);
        Ok((status, json))
    }

    /// POST to the integrator API.
    pub async fn post(&self, path: &str, body: Json) -> Result<(u16, Json), String> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// DELETE on the integrator API.
    pub async fn delete(&self, path: &str) -> Result<(u16, Json), String> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// A created object's id, or why the core refused.
    pub async fn create(&self, path: &str, body: Json) -> Result<u64, String> {
        let reply = self.post(path, body).await?;
        self.id(reply)
    }

    /// Moves the core's clock (and makes the engine look again).
    pub fn set_now(&self, at: &str) -> Result<(), String> {
        self.core
            .clock()
            .set(at.parse().map_err(|e| format!("{e}"))?);
        if let Some(tenant) = self.core_tenant() {
            self.core.touch(tenant);
        }
        Ok(())
    }

    /// The core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Waits (at most 30 s) until a sync pass that saw every change so far has completed,
    /// and answers its status, or its error. A failed pass is retried by the engine, so a
    /// transient failure (a slow reply under load) is waited through; three failed passes
    /// in a row after the change end the wait with the last error.
    pub async fn converged(&self) -> Result<SyncStatus, String> {
        const FAILED_PASSES: u64 = 3;
        let wanted = self.core.revision();
        let board = self.engine.board().clone();
        let terminal = self.terminal;
        let mut first_failure: Option<u64> = None;
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            board.wait_until(|b| {
                let Some(s) = b
                    .iter()
                    .find(|((_, t), _)| t.get() == terminal)
                    .map(|(_, s)| s)
                    .filter(|s| s.revision >= wanted)
                else {
                    return false;
                };
                if s.in_sync {
                    return true;
                }
                match (&s.last_error, first_failure) {
                    (None, _) => {
                        first_failure = None;
                        false
                    }
                    (Some(_), None) => {
                        first_failure = Some(s.passes);
                        false
                    }
                    (Some(_), Some(first)) => s.passes >= first + FAILED_PASSES - 1,
                }
            }),
        )
        .await;
        let status = self.status().unwrap_or_default();
        match (waited, &status.last_error) {
            (Err(_), Some(e)) => Err(format!(
                "the terminal did not converge within 30 s; last failure: {e}"
            )),
            (Err(_), None) => Err("the terminal did not converge within 30 s".into()),
            (Ok(()), Some(e)) if !status.in_sync => Err(format!("sync failed: {e}")),
            _ => Ok(status),
        }
    }

    fn status(&self) -> Option<SyncStatus> {
        let terminal = self.terminal;
        self.engine.board().get(
            self.core_tenant()?,
            acs_core::domain::TerminalId::new(terminal),
        )
    }

    fn core_tenant(&self) -> Option<acs_core::domain::TenantId> {
        Some(acs_core::domain::TenantId::new(1))
    }

    /// Stops the engine.
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }
}
