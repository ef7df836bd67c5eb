//! A served integrator API on 127.0.0.1:0 over an in-memory (or file) store, on a manual
//! clock, with a tenant and its key; helpers that send JSON and read problem documents.

use std::sync::Arc;

use acs_core::store::{SqliteStore, Store};
use acs_core::{Clock, Core};
use base64::Engine as _;
use serde_json::{Value as Json, json};

/// 2026-05-04 08:00:00 UTC (a Monday), the manual clock's start.
pub(crate) const START: &str = "2026-05-04T08:00:00Z";

/// A face photo fixture (320×320 JPEG).
pub(crate) const FACE: &[u8] = include_bytes!("../../../fixtures/images/face-a.jpg");

pub(crate) fn face_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(FACE)
}

/// Stops the server task when dropped.
#[derive(Debug)]
struct Shutdown(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// One reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) json: Json,
}

impl Reply {
    /// Asserts a problem document with `status` naming `field` (if given).
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.json
        );
        assert!(
            self.json["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:acs:problem:")),
            "{}",
            self.json
        );
        assert_eq!(self.json["status"], status);
        assert!(self.json["detail"].is_string());
        if let Some(field) = field {
            assert_eq!(self.json["field"], field, "{}", self.json);
        }
    }

    #[track_caller]
    pub(crate) fn id(&self) -> u64 {
        assert!(
            (200..300).contains(&self.status),
            "{} {}",
            self.status,
            self.json
        );
        self.json["id"].as_u64().expect("an id")
    }
}

/// The API served for tests.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) core: Core,
    pub(crate) key: String,
    client: reqwest::Client,
    _shutdown: Shutdown,
}

impl Api {
    pub(crate) async fn start() -> Api {
        Api::over(Arc::new(SqliteStore::in_memory().expect("store"))).await
    }

    pub(crate) async fn over(store: Arc<dyn Store>) -> Api {
        let core = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
        let (_, key) = core.create_tenant("acme", "Acme").await.expect("tenant");
        Api::serve(core, key.secret).await
    }

    pub(crate) async fn serve(core: Core, key: String) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(acs_core::serve(listener, core.clone(), async {
            let _ = rx.await;
        }));
        Api {
            base,
            core,
            key,
            client: crate::bounded::http_client(),
            _shutdown: Shutdown(Some(tx)),
        }
    }

    /// The same server with another tenant's key.
    pub(crate) async fn other_tenant(&self, slug: &str) -> String {
        let (_, key) = self.core.create_tenant(slug, slug).await.expect("tenant");
        key.secret
    }

    pub(crate) fn set_now(&self, at: &str) {
        self.core.clock().set(at.parse().expect("instant"));
    }

    pub(crate) async fn send_as(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Json>,
        idempotency: Option<&str>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(k) = idempotency {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = r.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}))
        };
        Reply {
            status,
            content_type,
            json,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send_as(Some(&self.key), "GET", path, None, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Json) -> Reply {
        self.send_as(Some(&self.key), "POST", path, Some(&body), None)
            .await
    }

    pub(crate) async fn put(&self, path: &str, body: Json) -> Reply {
        self.send_as(Some(&self.key), "PUT", path, Some(&body), None)
            .await
    }

    pub(crate) async fn patch(&self, path: &str, body: Json) -> Reply {
        self.send_as(Some(&self.key), "PATCH", path, Some(&body), None)
            .await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.send_as(Some(&self.key), "DELETE", path, None, None)
            .await
    }

    /// Raw bytes with a content type (for malformed bodies).
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static [u8],
    ) -> Reply {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let json = r.json().await.unwrap_or(Json::Null);
        Reply {
            status,
            content_type,
            json,
        }
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// A terminal address on loopback where nothing answers (the discard port, closed on test
/// machines): the probe of a terminal registered there finds no device, and no test
/// leaves loopback.
pub(crate) const OFFLINE: &str = "http://127.0.0.1:9";

/// A site in Madrid, a hall facility, a door that takes face / card / PIN and card + PIN,
/// and a terminal serving it (offline): `(site, facility, door, terminal)`.
pub(crate) async fn venue(api: &Api) -> (u64, u64, u64, u64) {
    venue_at(api, OFFLINE, "s3cret-device").await
}

/// [`venue`] with its terminal at `address` with `password` (a simulator's, when something
/// talks to it).
pub(crate) async fn venue_at(api: &Api, address: &str, password: &str) -> (u64, u64, u64, u64) {
    let site = api
        .post(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
        )
        .await
        .id();
    let facility = api
        .post("/v1/facilities", json!({"site_id": site, "name": "Hall"}))
        .await
        .id();
    let door = api
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "Main",
                   "supported_auth_types": {"in": ["face", "card", "pin", "card_plus_pin", "qr", "cloud_key", "mobile_key"], "out": ["card"]}}),
        )
        .await
        .id();
    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": address,
                   "login": "admin", "password": password, "door_ids": [door]}),
        )
        .await
        .id();
    (site, facility, door, terminal)
}
