//! The terminal driver: a typed client of the Control iD terminal API (terminal-api.md),
//! with its own private wire module – no type is shared with the simulator.
//!
//! - Sessions: login on first use, `?session=` on every call, and on a 401 one re-login
//!   and one retry; concurrent calls share a single login.
//! - Every call has a timeout (a longer one for synchronous remote enrollment) and the
//!   calls in flight to one device are bounded (a semaphore per terminal).
//! - Errors say what the caller should do: [`DriverError::Unreachable`] (retry later),
//!   [`DriverError::Rejected`] (the device refused this request), [`DriverError::Unauthorized`]
//!   (fix the credentials), [`DriverError::Protocol`] (a reply we cannot read).
//! - Integers stay exact (64-bit card values, device ids above 2^53).
//!
//! Passwords, session tokens and image bytes are never logged.

mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use tokio::sync::{Mutex, Semaphore};

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of each call (default 10 s).
    pub timeout: Duration,
    /// Timeout of a synchronous remote enrollment (default 60 s).
    pub enroll_timeout: Duration,
    /// Calls in flight to one terminal at most (default 2).
    pub max_concurrency: usize,
    /// A client to share across terminals (one connection pool).
    pub http: Option<reqwest::Client>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            enroll_timeout: Duration::from_secs(60),
            max_concurrency: 2,
            http: None,
        }
    }
}

/// A call failed; the variant says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The terminal could not be reached or failed on its side (connection refused,
    /// timeout, 5xx): try again later.
    #[error("{command}: terminal unreachable ({detail})")]
    Unreachable {
        /// The command.
        command: String,
        /// What happened.
        detail: String,
    },
    /// The device refused this request (its `{"error": …}` envelope): do not retry it as is.
    #[error("{command}: refused by the terminal ({status}): {message}")]
    Rejected {
        /// The command.
        command: String,
        /// HTTP status.
        status: u16,
        /// The device's error text.
        message: String,
    },
    /// The login itself was refused: the configured credentials are wrong.
    #[error("login refused by the terminal: {message}")]
    Unauthorized {
        /// The device's error text.
        message: String,
    },
    /// The reply could not be understood (not JSON, wrong shape).
    #[error("{command}: unexpected reply ({detail})")]
    Protocol {
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The base URL is not usable.
    #[error("invalid terminal address '{0}'")]
    Address(String),
}

impl DriverError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DriverError::Unreachable { .. })
    }
}

/// `system_information.fcgi`, the parts the core uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemInformation {
    /// `device_id` (a number, or a string on iDFace 6.x).
    pub device_id: i64,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub version: String,
    /// The whole reply.
    pub raw: Json,
}

/// What `user_set_image` said: a refused face is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutcome {
    /// Whether the photo was accepted.
    pub success: bool,
    /// The device's error texts.
    pub errors: Vec<String>,
    /// The user whose face this already is (duplicate detection).
    pub duplicate_of: Option<i64>,
}

/// What remote enrollment captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnrollKind {
    /// A face.
    #[default]
    Face,
    /// A card.
    Card,
    /// A fingerprint (`biometry`).
    Biometry,
}

/// A `remote_enroll.fcgi` request (terminal-api.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteEnroll {
    /// What to capture.
    pub kind: EnrollKind,
    /// The user.
    pub user_id: i64,
    /// Store on the terminal too.
    pub save: bool,
    /// Hold the request open for the result.
    pub sync: bool,
    /// Face: capture automatically.
    pub auto: bool,
    /// Face: countdown seconds.
    pub countdown: Option<u32>,
    /// Biometry: enrol as the duress finger.
    pub panic_finger: bool,
    /// Text on screen.
    pub message: Option<String>,
}

#[derive(Debug)]
struct Inner {
    base: String,
    login: String,
    password: String,
    options: ClientOptions,
    http: reqwest::Client,
    session: Mutex<Option<String>>,
    slots: Semaphore,
}

/// A client of one terminal; clones share the session and the concurrency bound.
#[derive(Clone)]
pub struct TerminalClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TerminalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalClient")
            .field("base", &self.inner.base)
            .field("login", &self.inner.login)
            .finish_non_exhaustive()
    }
}

/// A request body.
enum Body<'a> {
    None,
    Json(&'a Json),
    Bytes(&'a [u8]),
}

/// A successful reply's body.
struct Reply {
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self, command: &str) -> Result<Json, DriverError> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.bytes).map_err(|e| DriverError::Protocol {
            command: command.to_owned(),
            detail: format!("not JSON: {e}"),
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, command: &str) -> Result<T, DriverError> {
        serde_json::from_value(self.json(command)?).map_err(|e| DriverError::Protocol {
            command: command.to_owned(),
            detail: e.to_string(),
        })
    }
}

fn transport(command: &str, e: &reqwest::Error) -> DriverError {
    let detail = if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection refused".to_owned()
    } else {
        "connection failed".to_owned()
    };
    DriverError::Unreachable {
        command: command.to_owned(),
        detail,
    }
}

impl TerminalClient {
    /// A client of the terminal at `base_url` (`http://10.0.0.5`, or without a scheme).
    pub fn new(
        base_url: &str,
        login: &str,
        password: &str,
        options: ClientOptions,
    ) -> Result<TerminalClient, DriverError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let base = if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        if reqwest::Url::parse(&base).map_or(true, |u| u.host().is_none()) {
            return Err(DriverError::Address(base_url.to_owned()));
        }
        let http = options.http.clone().unwrap_or_default();
        Ok(TerminalClient {
            inner: Arc::new(Inner {
                base,
                login: login.to_owned(),
                password: password.to_owned(),
                slots: Semaphore::new(options.max_concurrency.max(1)),
                options,
                http,
                session: Mutex::new(None),
            }),
        })
    }

    /// The terminal's base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    async fn send_once(
        &self,
        command: &str,
        query: &[(&str, String)],
        body: &Body<'_>,
        session: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), DriverError> {
        let mut req = self
            .inner
            .http
            .post(format!("{}/{command}.fcgi", self.inner.base))
            .timeout(timeout);
        let mut pairs: Vec<(&str, String)> = query.to_vec();
        if let Some(s) = session {
            pairs.push(("session", s.to_owned()));
        }
        if !pairs.is_empty() {
            req = req.query(&pairs);
        }
        req = match body {
            Body::None => req,
            Body::Json(j) => req.json(j),
            Body::Bytes(b) => req
                .header("Content-Type", "application/octet-stream")
                .body(b.to_vec()),
        };
        let response = req.send().await.map_err(|e| transport(command, &e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| transport(command, &e))?;
        tracing::debug!(command, status, "terminal call");
        Ok((status, bytes.to_vec()))
    }

    /// The current session, logging in when there is none (one login for all callers).
    async fn session(&self, stale: Option<&str>) -> Result<String, DriverError> {
        let mut guard = self.inner.session.lock().await;
        if let Some(current) = guard.as_deref()
            && Some(current) != stale
        {
            return Ok(current.to_owned());
        }
        let body = json!({"login": self.inner.login, "password": self.inner.password});
        let (status, bytes) = self
            .send_once(
                "login",
                &[],
                &Body::Json(&body),
                None,
                self.inner.options.timeout,
            )
            .await?;
        match status {
            200 => {
                let reply: wire::LoginReply = Reply { bytes }.parse("login")?;
                *guard = Some(reply.session.clone());
                Ok(reply.session)
            }
            400 | 401 | 403 => Err(DriverError::Unauthorized {
                message: error_message(&bytes),
            }),
            s if s >= 500 => Err(DriverError::Unreachable {
                command: "login".into(),
                detail: format!("status {s}"),
            }),
            s => Err(DriverError::Protocol {
                command: "login".into(),
                detail: format!("status {s}"),
            }),
        }
    }

    /// One call with the session: re-logs in once on 401.
    async fn call(
        &self,
        command: &str,
        query: &[(&str, String)],
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<Reply, DriverError> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| DriverError::Unreachable {
                command: command.to_owned(),
                detail: "client closed".into(),
            })?;
        let mut session = self.session(None).await?;
        for attempt in 0..2 {
            let (status, bytes) = self
                .send_once(command, query, &body, Some(&session), timeout)
                .await?;
            match status {
                200 => return Ok(Reply { bytes }),
                401 if attempt == 0 => {
                    session = self.session(Some(&session)).await?;
                }
                s if s >= 500 => {
                    return Err(DriverError::Unreachable {
                        command: command.to_owned(),
                        detail: format!("status {s}"),
                    });
                }
                s => {
                    return Err(DriverError::Rejected {
                        command: command.to_owned(),
                        status: s,
                        message: error_message(&bytes),
                    });
                }
            }
        }
        Err(DriverError::Rejected {
            command: command.to_owned(),
            status: 401,
            message: "session refused after a fresh login".into(),
        })
    }

    async fn call_json(&self, command: &str, body: &Json) -> Result<Reply, DriverError> {
        self.call(command, &[], Body::Json(body), self.inner.options.timeout)
            .await
    }

    /// `system_information.fcgi`.
    pub async fn system_information(&self) -> Result<SystemInformation, DriverError> {
        let raw = self
            .call_json("system_information", &json!({}))
            .await?
            .json("system_information")?;
        let device_id =
            wire::lenient_i64(raw.get("device_id")).ok_or_else(|| DriverError::Protocol {
                command: "system_information".into(),
                detail: "no device_id".into(),
            })?;
        let text = |k: &str| {
            raw.get(k)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default()
        };
        Ok(SystemInformation {
            device_id,
            serial: text("serial"),
            version: text("version"),
            raw,
        })
    }

    /// `load_objects.fcgi`: the rows of `object`; `request` holds `where`, `fields`,
    /// `limit`, `offset`, `order`….
    pub async fn load_objects(
        &self,
        object: &str,
        request: Map<String, Json>,
    ) -> Result<Vec<Map<String, Json>>, DriverError> {
        let mut body = request;
        body.insert("object".into(), json!(object));
        let reply = self
            .call_json("load_objects", &Json::Object(body))
            .await?
            .json("load_objects")?;
        match reply.get(object) {
            Some(Json::Array(rows)) => {
                Ok(rows.iter().filter_map(|r| r.as_object().cloned()).collect())
            }
            _ => Err(DriverError::Protocol {
                command: "load_objects".into(),
                detail: format!("no '{object}' list in the reply"),
            }),
        }
    }

    /// `create_objects.fcgi`: the new rows' ids.
    pub async fn create_objects(
        &self,
        object: &str,
        values: Vec<Map<String, Json>>,
    ) -> Result<Vec<i64>, DriverError> {
        let body = json!({"object": object, "values": values});
        let reply: wire::IdsReply = self
            .call_json("create_objects", &body)
            .await?
            .parse("create_objects")?;
        Ok(reply.ids)
    }

    /// `create_or_modify_objects.fcgi`.
    pub async fn create_or_modify_objects(
        &self,
        object: &str,
        values: Vec<Map<String, Json>>,
    ) -> Result<(), DriverError> {
        let body = json!({"object": object, "values": values});
        self.call_json("create_or_modify_objects", &body).await?;
        Ok(())
    }

    /// `modify_objects.fcgi`: rows changed.
    pub async fn modify_objects(
        &self,
        object: &str,
        values: Map<String, Json>,
        where_: Json,
    ) -> Result<u64, DriverError> {
        let body = json!({"object": object, "values": values, "where": where_});
        let reply: wire::ChangesReply = self
            .call_json("modify_objects", &body)
            .await?
            .parse("modify_objects")?;
        Ok(reply.changes)
    }

    /// `destroy_objects.fcgi`: rows deleted. Always pass a `where` (without one the device
    /// deletes the whole table).
    pub async fn destroy_objects(&self, object: &str, where_: Json) -> Result<u64, DriverError> {
        let body = json!({"object": object, "where": where_});
        let reply: wire::ChangesReply = self
            .call_json("destroy_objects", &body)
            .await?
            .parse("destroy_objects")?;
        Ok(reply.changes)
    }

    /// `user_set_image.fcgi` with the JPEG as the body.
    pub async fn set_user_image(
        &self,
        user_id: i64,
        jpeg: &[u8],
        timestamp: i64,
        match_duplicates: bool,
    ) -> Result<ImageOutcome, DriverError> {
        let query = [
            ("user_id", user_id.to_string()),
            ("timestamp", timestamp.to_string()),
            ("match", if match_duplicates { "1" } else { "0" }.to_owned()),
        ];
        let reply: wire::SetImageReply = self
            .call(
                "user_set_image",
                &query,
                Body::Bytes(jpeg),
                self.inner.options.timeout,
            )
            .await?
            .parse("user_set_image")?;
        Ok(ImageOutcome {
            success: reply.success,
            errors: reply.errors.iter().map(wire::error_text).collect(),
            duplicate_of: reply
                .info
                .as_ref()
                .and_then(|i| wire::lenient_i64(i.get("match_user_id"))),
        })
    }

    /// `user_destroy_image.fcgi` for one user.
    pub async fn destroy_user_image(&self, user_id: i64) -> Result<(), DriverError> {
        self.call_json("user_destroy_image", &json!({"user_id": user_id}))
            .await?;
        Ok(())
    }

    /// `user_list_images.fcgi?get_timestamp=1`: `(user_id, timestamp)` pairs.
    pub async fn list_user_images(&self) -> Result<Vec<(i64, i64)>, DriverError> {
        let reply: wire::ListImagesReply = self
            .call(
                "user_list_images",
                &[("get_timestamp", "1".to_owned())],
                Body::None,
                self.inner.options.timeout,
            )
            .await?
            .parse("user_list_images")?;
        if reply.image_info.is_empty() {
            return Ok(reply.user_ids.into_iter().map(|u| (u, 0)).collect());
        }
        Ok(reply
            .image_info
            .into_iter()
            .map(|i| (i.user_id, i.timestamp))
            .collect())
    }

    /// `get_configuration.fcgi`.
    pub async fn get_configuration(&self, request: Json) -> Result<Json, DriverError> {
        self.call_json("get_configuration", &request)
            .await?
            .json("get_configuration")
    }

    /// `set_configuration.fcgi` (values are sent as the device expects them: strings).
    pub async fn set_configuration(&self, values: Json) -> Result<(), DriverError> {
        self.call_json("set_configuration", &values).await?;
        Ok(())
    }

    /// `remote_enroll.fcgi`: the device's reply (the result when `sync`, `{}` otherwise).
    pub async fn remote_enroll(&self, request: RemoteEnroll) -> Result<Json, DriverError> {
        let kind = match request.kind {
            EnrollKind::Face => "face",
            EnrollKind::Card => "card",
            EnrollKind::Biometry => "biometry",
        };
        let mut body = json!({"type": kind, "user_id": request.user_id, "save": request.save,
            "sync": request.sync, "auto": request.auto,
            "panic_finger": i64::from(request.panic_finger)});
        if let Some(c) = request.countdown {
            body["countdown"] = json!(c);
        }
        if let Some(m) = &request.message {
            body["message"] = json!(m);
        }
        let timeout = if request.sync {
            self.inner.options.enroll_timeout
        } else {
            self.inner.options.timeout
        };
        self.call("remote_enroll", &[], Body::Json(&body), timeout)
            .await?
            .json("remote_enroll")
    }

    /// `cancel_remote_enroll.fcgi`.
    pub async fn cancel_remote_enroll(&self) -> Result<(), DriverError> {
        self.call(
            "cancel_remote_enroll",
            &[],
            Body::None,
            self.inner.options.timeout,
        )
        .await?;
        Ok(())
    }

    /// `execute_actions.fcgi` with `{"actions": […]}`.
    pub async fn execute_actions(&self, actions: Json) -> Result<(), DriverError> {
        self.call_json("execute_actions", &json!({"actions": actions}))
            .await?;
        Ok(())
    }

    /// `logout.fcgi` (the session is forgotten either way).
    pub async fn logout(&self) -> Result<(), DriverError> {
        let session = self.inner.session.lock().await.take();
        if let Some(session) = session {
            self.send_once(
                "logout",
                &[],
                &Body::None,
                Some(&session),
                self.inner.options.timeout,
            )
            .await?;
        }
        Ok(())
    }
}

fn error_message(bytes: &[u8]) -> String {
    serde_json::from_slice::<wire::ErrorReply>(bytes)
        .map(|e| e.error)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(bytes);
            text.chars().take(200).collect()
        })
}
