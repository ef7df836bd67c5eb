//! The terminal driver: a typed client of the Control iD terminal HTTP API
//! (docs/device-api.md), used by the sync engine, enrollment and the conformance suite.
//! Its JSON lives in the private `wire` module; no type is shared with the simulator.
//!
//! - **Sessions** (§1): login on first use, the token percent-encoded in `?session=` on
//!   every call; on a 401 one re-login and one retry. Concurrent calls share one login.
//! - **Time and load**: every request has a timeout (a longer one for a synchronous remote
//!   enrollment, which waits for the person), and a per-terminal semaphore bounds the
//!   requests in flight, login included (the device's web server is small, §10.2).
//! - **Errors** say what the caller should do: [`DriverError::Unreachable`] (offline or
//!   failing: retry later), [`DriverError::Rejected`] (the device refused this request),
//!   [`DriverError::Unauthorized`] (fix the credentials), [`DriverError::Protocol`] (a
//!   reply we cannot read: report). A refused face photo is an [`ImageOutcome`], not an
//!   error.
//! - **Integers stay exact**: 64-bit card values and device ids above 2^53 never pass
//!   through floating point.
//!
//! This module must not log passwords, session tokens or image bytes: tracing gets the
//! command name and the HTTP status, at debug level.

mod error;
mod session;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::sync::Semaphore;

pub use error::DriverError;
use session::SessionCache;

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of each request (default 10 s).
    pub timeout: Duration,
    /// Timeout of a synchronous remote enrollment, which lasts until the person presents
    /// the credential (default 60 s).
    pub enroll_timeout: Duration,
    /// Requests in flight to one terminal at most (default 2; at least 1).
    pub max_concurrency: usize,
    /// A client to share across terminals (one connection pool). Without one, each
    /// [`TerminalClient`] builds its own, which ignores proxy settings: terminals sit on
    /// the local network.
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

/// `system_information.fcgi`, the parts the core uses (docs/device-api.md §9.1).
#[derive(Debug, Clone, PartialEq)]
pub struct SystemInformation {
    /// `device_id` (a JSON number, or a decimal string on iDFace 6.x).
    pub device_id: i64,
    /// Serial number, e.g. `0M0200/0278A2` (empty when absent).
    pub serial: String,
    /// Firmware version, e.g. `6.23.0` (empty when absent).
    pub version: String,
    /// `time`: the device's local wall clock, seconds since 1970 read as UTC (§3.9);
    /// `None` when absent or not an integer.
    pub time: Option<i64>,
    /// The whole reply.
    pub raw: Json,
}

/// What `user_set_image` said: a refused face is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutcome {
    /// Whether the photo was accepted.
    pub success: bool,
    /// The device's error texts (`Face not detected`, `Face exists`, …).
    pub errors: Vec<String>,
    /// The user whose face this already is (`Face exists`, with `match`).
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

/// A `remote_enroll.fcgi` request (docs/device-api.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteEnroll {
    /// What to capture.
    pub kind: EnrollKind,
    /// The user (must exist on the terminal when `save`).
    pub user_id: i64,
    /// Store the credential on the terminal too.
    pub save: bool,
    /// Hold the request open and answer with the result (else the result comes later by
    /// callback).
    pub sync: bool,
    /// Face: capture automatically when a good face is seen.
    pub auto: bool,
    /// Face: countdown seconds on screen.
    pub countdown: Option<u32>,
    /// Biometry: enrol as the duress finger (sent only for biometry).
    pub panic_finger: bool,
    /// Text on screen (sent as `message`).
    pub message: Option<String>,
}

struct Inner {
    base: String,
    login: String,
    password: String,
    options: ClientOptions,
    http: reqwest::Client,
    session: SessionCache,
    slots: Semaphore,
}

/// A client of one terminal. Clones are cheap and share the session, the concurrency
/// bound and the connection pool.
#[derive(Clone)]
pub struct TerminalClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TerminalClient {
    // By hand: the password and the session token must never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalClient")
            .field("base_url", &self.inner.base)
            .field("login", &self.inner.login)
            .field("max_concurrency", &self.inner.options.max_concurrency)
            .finish_non_exhaustive()
    }
}

/// A request body.
enum Body<'a> {
    Empty,
    Json(&'a Json),
    Bytes(&'a [u8]),
}

/// How to send one command.
struct Call<'a> {
    command: &'a str,
    get: bool,
    query: &'a [(&'static str, String)],
    body: Body<'a>,
    timeout: Duration,
}

impl TerminalClient {
    /// A client of the terminal at `base_url` (`http://10.0.0.5`, `10.0.0.5:8080`: the
    /// scheme defaults to `http`). Nothing is sent until the first call.
    pub fn new(
        base_url: &str,
        login: &str,
        password: &str,
        options: ClientOptions,
    ) -> Result<TerminalClient, DriverError> {
        let trimmed = base_url.trim();
        let with_scheme = if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let base = with_scheme.trim_end_matches('/').to_owned();
        let usable = reqwest::Url::parse(&base).is_ok_and(|url| {
            url.host().is_some() && url.query().is_none() && url.fragment().is_none()
        });
        if !usable {
            return Err(DriverError::Address(base_url.to_owned()));
        }
        let http = match &options.http {
            Some(http) => http.clone(),
            None => reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|_| DriverError::Address(base_url.to_owned()))?,
        };
        Ok(TerminalClient {
            inner: Arc::new(Inner {
                base,
                login: login.to_owned(),
                password: password.to_owned(),
                slots: Semaphore::new(options.max_concurrency.max(1)),
                options,
                http,
                session: SessionCache::default(),
            }),
        })
    }

    /// The terminal's base URL (with its scheme).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// `system_information.fcgi` (docs/device-api.md §9.1).
    pub async fn system_information(&self) -> Result<SystemInformation, DriverError> {
        const COMMAND: &str = "system_information";
        let reply = self.call_json(COMMAND, &Json::Object(Map::new())).await?;
        let identity = wire::identity(&reply).map_err(|d| DriverError::protocol(COMMAND, d))?;
        Ok(SystemInformation {
            device_id: identity.device_id,
            serial: identity.serial,
            version: identity.version,
            time: identity.time,
            raw: Json::Object(reply),
        })
    }

    /// `load_objects.fcgi`: the rows of `object`. `request` holds the other members
    /// (`where`, `fields`, `order`, `limit`, `offset`, `join`…); its `object` is ignored.
    pub async fn load_objects(
        &self,
        object: &str,
        request: Map<String, Json>,
    ) -> Result<Vec<Map<String, Json>>, DriverError> {
        const COMMAND: &str = "load_objects";
        let reply = self
            .call_json(COMMAND, &wire::load_request(object, request))
            .await?;
        wire::rows(reply, object).map_err(|d| DriverError::protocol(COMMAND, d))
    }

    /// `create_objects.fcgi`: the new rows' ids, in the order of `values`.
    pub async fn create_objects(
        &self,
        object: &str,
        values: Vec<Map<String, Json>>,
    ) -> Result<Vec<i64>, DriverError> {
        const COMMAND: &str = "create_objects";
        let expected = values.len();
        let reply = self
            .call_json(COMMAND, &wire::values_request(object, values))
            .await?;
        wire::ids(reply, expected).map_err(|d| DriverError::protocol(COMMAND, d))
    }

    /// `create_or_modify_objects.fcgi`: inserts each row or updates the one with its key.
    /// The reply is not read (its shape differs between sources, docs/device-api.md §3.6).
    pub async fn create_or_modify_objects(
        &self,
        object: &str,
        values: Vec<Map<String, Json>>,
    ) -> Result<(), DriverError> {
        self.call_json(
            "create_or_modify_objects",
            &wire::values_request(object, values),
        )
        .await?;
        Ok(())
    }

    /// `modify_objects.fcgi`: sets `values` on every row matching `where_`; the number of
    /// rows changed. A `null` `where_` is left out, which matches every row.
    pub async fn modify_objects(
        &self,
        object: &str,
        values: Map<String, Json>,
        where_: Json,
    ) -> Result<u64, DriverError> {
        const COMMAND: &str = "modify_objects";
        let reply = self
            .call_json(COMMAND, &wire::modify_request(object, values, where_))
            .await?;
        wire::changes(reply).map_err(|d| DriverError::protocol(COMMAND, d))
    }

    /// `destroy_objects.fcgi`: the number of rows deleted. A `null` `where_` is left out,
    /// and the device then deletes **every row** of the table (docs/device-api.md §3.5).
    pub async fn destroy_objects(&self, object: &str, where_: Json) -> Result<u64, DriverError> {
        const COMMAND: &str = "destroy_objects";
        let reply = self
            .call_json(COMMAND, &wire::destroy_request(object, where_))
            .await?;
        wire::changes(reply).map_err(|d| DriverError::protocol(COMMAND, d))
    }

    /// `user_set_image.fcgi` with the JPEG as the body (docs/device-api.md §4.1). A photo
    /// the device refuses as a face (no face, quality, `Face exists` with
    /// `match_duplicates`) is `Ok` with `success: false`; a body that is not an image or
    /// an unknown user is [`DriverError::Rejected`].
    pub async fn set_user_image(
        &self,
        user_id: i64,
        jpeg: &[u8],
        timestamp: i64,
        match_duplicates: bool,
    ) -> Result<ImageOutcome, DriverError> {
        const COMMAND: &str = "user_set_image";
        let query = wire::set_image_query(user_id, timestamp, match_duplicates);
        let body = self
            .call(Call {
                command: COMMAND,
                get: false,
                query: &query,
                body: Body::Bytes(jpeg),
                timeout: self.inner.options.timeout,
            })
            .await?;
        let reply = wire::reply_object(&body)
            .and_then(wire::set_image_reply)
            .map_err(|d| DriverError::protocol(COMMAND, d))?;
        Ok(ImageOutcome {
            success: reply.success,
            errors: reply.errors,
            duplicate_of: reply.duplicate_of,
        })
    }

    /// `user_destroy_image.fcgi` for one user.
    pub async fn destroy_user_image(&self, user_id: i64) -> Result<(), DriverError> {
        self.call_json("user_destroy_image", &wire::destroy_image_request(user_id))
            .await?;
        Ok(())
    }

    /// `user_list_images.fcgi?get_timestamp=1` (GET): `(user_id, timestamp)` of every
    /// stored photo. A firmware that ignores `get_timestamp` yields timestamp 0.
    pub async fn list_user_images(&self) -> Result<Vec<(i64, i64)>, DriverError> {
        const COMMAND: &str = "user_list_images";
        let body = self
            .call(Call {
                command: COMMAND,
                get: true,
                query: &[("get_timestamp", "1".to_owned())],
                body: Body::Empty,
                timeout: self.inner.options.timeout,
            })
            .await?;
        wire::reply_object(&body)
            .and_then(wire::image_list)
            .map_err(|d| DriverError::protocol(COMMAND, d))
    }

    /// `get_configuration.fcgi`: `{"<section>": ["key", …]}` → `{"<section>": {"key":
    /// "value"}}` (values are strings, docs/device-api.md §9.2).
    pub async fn get_configuration(&self, request: Json) -> Result<Json, DriverError> {
        Ok(Json::Object(
            self.call_json("get_configuration", &request).await?,
        ))
    }

    /// `set_configuration.fcgi` with `{"<section>": {"key": "value"}}`; the device wants
    /// every value as a string and refuses anything else.
    pub async fn set_configuration(&self, values: Json) -> Result<(), DriverError> {
        self.call_json("set_configuration", &values).await?;
        Ok(())
    }

    /// `remote_enroll.fcgi` (docs/device-api.md §5.1): the device's reply – the result for a
    /// synchronous enrollment (which may report `"success": false`), `{}` otherwise. A
    /// synchronous call uses [`ClientOptions::enroll_timeout`].
    pub async fn remote_enroll(&self, request: RemoteEnroll) -> Result<Json, DriverError> {
        let timeout = if request.sync {
            self.inner.options.enroll_timeout
        } else {
            self.inner.options.timeout
        };
        let body = wire::remote_enroll_request(&request);
        let reply = self
            .call_reply(Call {
                command: "remote_enroll",
                get: false,
                query: &[],
                body: Body::Json(&body),
                timeout,
            })
            .await?;
        Ok(Json::Object(reply))
    }

    /// `cancel_remote_enroll.fcgi`: aborts the running enrollment.
    pub async fn cancel_remote_enroll(&self) -> Result<(), DriverError> {
        self.call_reply(Call {
            command: "cancel_remote_enroll",
            get: false,
            query: &[],
            body: Body::Empty,
            timeout: self.inner.options.timeout,
        })
        .await?;
        Ok(())
    }

    /// `execute_actions.fcgi` with `{"actions": actions}` (docs/device-api.md §9.3), e.g.
    /// `[{"action": "sec_box", "parameters": "id=65793, reason=3"}]`.
    pub async fn execute_actions(&self, actions: Json) -> Result<(), DriverError> {
        self.call_json("execute_actions", &wire::actions_request(actions))
            .await?;
        Ok(())
    }

    /// `set_system_time.fcgi`: sets the device's local wall clock to `local` (§9.4).
    pub async fn set_system_time(&self, local: jiff::civil::DateTime) -> Result<(), DriverError> {
        self.call_json("set_system_time", &wire::system_time_request(local))
            .await?;
        Ok(())
    }

    /// `logout.fcgi`: ends the session on the device (if there is one). The session is
    /// forgotten either way; the next call logs in again.
    pub async fn logout(&self) -> Result<(), DriverError> {
        const COMMAND: &str = "logout";
        let Some(token) = self.inner.session.take().await else {
            return Ok(());
        };
        let _slot = self.slot().await;
        let (status, body) = self
            .send(
                &Call {
                    command: COMMAND,
                    get: false,
                    query: &[],
                    body: Body::Empty,
                    timeout: self.inner.options.timeout,
                },
                Some(&token),
            )
            .await?;
        // A 401 means the device had already dropped the session: logged out all the same.
        if status == 401 {
            return Ok(());
        }
        error::classify(COMMAND, status, body)?;
        Ok(())
    }

    // ----- plumbing ---------------------------------------------------------------------

    async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// A POST with a JSON body and the default timeout; the reply as a JSON object.
    async fn call_json(
        &self,
        command: &str,
        body: &Json,
    ) -> Result<Map<String, Json>, DriverError> {
        self.call_reply(Call {
            command,
            get: false,
            query: &[],
            body: Body::Json(body),
            timeout: self.inner.options.timeout,
        })
        .await
    }

    /// [`Self::call`], the reply read as a JSON object (an empty body is `{}`).
    async fn call_reply(&self, call: Call<'_>) -> Result<Map<String, Json>, DriverError> {
        let command = call.command;
        let body = self.call(call).await?;
        wire::reply_object(&body).map_err(|d| DriverError::protocol(command, d))
    }

    /// One command with the session, in a concurrency slot: logs in if needed and, when
    /// the device refuses the session (401), logs in again once and retries once.
    ///
    /// The session is obtained before taking a slot (and the login takes its own slot), so
    /// that every caller queued behind a login shares its outcome and no one holds a slot
    /// while waiting for the session.
    async fn call(&self, call: Call<'_>) -> Result<Vec<u8>, DriverError> {
        let token = self.session(None).await?;
        let (mut status, mut body) = {
            let _slot = self.slot().await;
            self.send(&call, Some(&token)).await?
        };
        if status == 401 {
            tracing::debug!(command = call.command, "session refused; logging in again");
            let fresh = self.session(Some(&token)).await?;
            let _slot = self.slot().await;
            (status, body) = self.send(&call, Some(&fresh)).await?;
        }
        error::classify(call.command, status, body)
    }

    /// The session token, logging in when there is none or `stale` was refused.
    async fn session(&self, stale: Option<&str>) -> Result<String, DriverError> {
        self.inner
            .session
            .token(stale, || async {
                let body = wire::login_request(&self.inner.login, &self.inner.password);
                let login = Call {
                    command: "login",
                    get: false,
                    query: &[],
                    body: Body::Json(&body),
                    timeout: self.inner.options.timeout,
                };
                let (status, reply) = {
                    let _slot = self.slot().await;
                    self.send(&login, None).await?
                };
                error::classify_login(status, &reply)
            })
            .await
    }

    /// Sends one HTTP request: the status and body, or why there is no reply.
    async fn send(
        &self,
        call: &Call<'_>,
        session: Option<&str>,
    ) -> Result<(u16, Vec<u8>), DriverError> {
        let url = format!("{}/{}.fcgi", self.inner.base, call.command);
        let mut request = if call.get {
            self.inner.http.get(url)
        } else {
            self.inner.http.post(url)
        };
        request = request.timeout(call.timeout);
        // The session goes first and, like every value, percent-encoded (tokens contain
        // `/`, docs/device-api.md §1.2).
        let mut query: Vec<(&str, &str)> = Vec::with_capacity(call.query.len() + 1);
        if let Some(token) = session {
            query.push(("session", token));
        }
        query.extend(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        if !query.is_empty() {
            request = request.query(&query);
        }
        request = match call.body {
            Body::Empty => request,
            Body::Json(json) => request.json(json),
            Body::Bytes(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec()),
        };
        let command = call.command;
        let response = request.send().await.map_err(|e| {
            let error = DriverError::transport(command, e);
            tracing::debug!(command, %error, "terminal unreachable");
            error
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| DriverError::transport(command, e))?;
        tracing::debug!(command, status, "terminal call");
        Ok((status, body.to_vec()))
    }
}
