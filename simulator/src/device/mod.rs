//! One emulated terminal: its tables, photos, configuration, sessions, clock and actuators,
//! and the rules of every command, testable without HTTP.
//!
//! [`Device`] is a cheap handle to state behind a private `Arc<RwLock<…>>`. Every operation
//! takes the lock (shared when it only reads), does its work synchronously and releases
//! it; the lock is never held across an `.await`. Each successful change bumps a revision counter that views watch
//! and, on a device that keeps a state file, appends what it changed to the state file's
//! change log under the same lock (`persist`), so changes are logged in the order they
//! happened.

pub mod actions;
pub mod built_rows;
pub mod clock;
pub mod config;
pub mod decide;
mod handle;
pub mod images;
mod index;
pub mod query;
mod row_map;
pub mod schema;
pub mod sessions;
pub mod stored_row;
pub mod table;
mod table_set;
pub mod written;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::Engine as _;
use compact_str::CompactString;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value as Json, json};
use tokio::sync::watch;

use crate::model::Model;
use crate::wire::{MemberError, Members};
use actions::{ActionError, Actuation};
use clock::{DeviceClock, TimeSource};
use config::{Config, ConfigError};
use images::{FaceProblem, ImageError, Photos};
use schema::{FactoryValue, TABLES, model_has_table};
use sessions::Sessions;
use table::{Database, Integer, TableError, Value};

/// Why a command failed; `Display` is the text of the device's `{"error": …}` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A request member had the wrong type or was missing.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// The objects API refused the request.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The configuration request was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The image bytes were refused.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An action could not be performed.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// `login.fcgi` with wrong credentials (HTTP 401).
    #[error("Invalid login or password")]
    BadCredentials,
    /// A command named a user that does not exist.
    #[error("User does not exist")]
    NoSuchUser,
    /// The user has no stored photo.
    #[error("User has no image")]
    NoImage,
    /// Any other invalid request, with the device's text.
    #[error("{0}")]
    Invalid(String),
}

/// What identifies this terminal on the network and in its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `device_id` (a 53+-bit integer, distinct from the serial).
    pub device_id: i64,
    /// Serial number, e.g. `0M0200/0278A2`.
    pub serial: String,
    /// MAC address.
    pub mac: String,
}

impl Identity {
    /// A deterministic identity for `model` from `seed`.
    pub fn generate(model: Model, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1de7_1175);
        let device_id = rng.random_range(1_000_000_000_000_000_i64..9_999_999_999_999_999);
        let serial_no: u32 = rng.random_range(0..0x00FF_FFFF);
        let mac: [u8; 3] = rng.random();
        Identity {
            device_id,
            serial: format!("{}/{:06X}", model.serial_prefix(), serial_no),
            mac: format!("FC:52:CE:{:02X}:{:02X}:{:02X}", mac[0], mac[1], mac[2]),
        }
    }
}

/// How a device is set up when it is created.
#[derive(Debug, Clone)]
pub struct DeviceSettings {
    /// Model to emulate.
    pub model: Model,
    /// Web/API login (factory `admin`).
    pub login: String,
    /// Web/API password (factory `admin`).
    pub password: String,
    /// Seed for the identity, session tokens and salts.
    pub seed: u64,
    /// Where the clock reads "now".
    pub time: TimeSource,
    /// Initial offset of device-local time from UTC, seconds.
    pub utc_offset: i64,
    /// Error text for commands without a valid session; `{command}` is replaced.
    pub session_error: String,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            model: Model::IdFace,
            login: "admin".into(),
            password: "admin".into(),
            seed: 0,
            time: TimeSource::System,
            utc_offset: 0,
            session_error: "Invalid access level for command {command}".into(),
        }
    }
}

/// The result of a successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The session token.
    pub token: String,
    /// Whether factory credentials are still in place on a model that says so.
    pub first_web_login: bool,
}

/// What `user_set_image` concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetImageOutcome {
    /// Scores of the photo.
    pub scores: images::FaceScores,
    /// Problems; empty means stored.
    pub problems: Vec<FaceProblem>,
}

/// Which photos `user_destroy_image` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSelection {
    /// These users' photos.
    Users(Vec<i64>),
    /// Every photo.
    All,
    /// Photos whose user no longer exists.
    Dangling,
}

/// What `system_information` reports, gathered under one lock.
#[derive(Debug, Clone)]
pub struct SystemSnapshot {
    /// Model.
    pub model: Model,
    /// Identity.
    pub identity: Identity,
    /// Seconds since the last boot.
    pub uptime: i64,
    /// Device-local time.
    pub local_time: i64,
    /// Listening address, when serving.
    pub listen: Option<SocketAddr>,
    /// Whether online mode is configured on.
    pub online: bool,
    /// Number of stored fingerprint templates.
    pub templates: usize,
}

/// An actuation with the device-local time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActuationRecord {
    /// Device-local epoch second.
    pub time: i64,
    /// What happened.
    pub actuation: Actuation,
}

/// The web/API credentials. The password is kept only as the hex SHA-256 of the password
/// followed by a salt (the formula of `users.password`, §9.5), so neither memory dumps nor
/// the state file hold it in clear.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) login: String,
    pub(crate) digest: String,
    pub(crate) salt: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `login` / `password` with a fresh salt from `rng`.
    pub(crate) fn new(login: &str, password: &str, rng: &mut ChaCha8Rng) -> Self {
        let salt: String = (0..32)
            .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
            .collect();
        Credentials {
            login: login.to_owned(),
            digest: decide::password_digest(password, &salt),
            salt,
        }
    }

    /// Whether `login` / `password` are these credentials (login names are case-sensitive).
    pub(crate) fn accept(&self, login: &str, password: &str) -> bool {
        login == self.login && decide::password_digest(password, &self.salt) == self.digest
    }
}

/// Everything one terminal holds. Crate-visible for the state-file writer.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) model: Model,
    pub(crate) identity: Identity,
    pub(crate) credentials: Credentials,
    /// The credentials the device was created with (`reset_to_factory_default`).
    pub(crate) factory_credentials: Credentials,
    /// Draws the salts of [`Credentials`] (apart from `rng`, so that those draws do not
    /// move the salts `user_hash_password` answers).
    pub(crate) credential_rng: ChaCha8Rng,
    pub(crate) first_web_login: bool,
    pub(crate) sessions: Sessions,
    pub(crate) config: Config,
    pub(crate) db: Database,
    pub(crate) photos: Photos,
    pub(crate) clock: DeviceClock,
    pub(crate) booted_at: i64,
    pub(crate) actuations: Vec<ActuationRecord>,
    pub(crate) listen: Option<SocketAddr>,
    /// The next change record must be a whole snapshot (the state was replaced).
    pub(crate) full_snapshot: bool,
    /// The settings as the change log last recorded them.
    pub(crate) logged_meta: Option<crate::persist::Meta>,
    rng: ChaCha8Rng,
    session_error: String,
}

/// A handle to one emulated terminal. Clones share the same device.
#[derive(Debug, Clone)]
pub struct Device {
    state: Arc<RwLock<State>>,
    revision: Arc<watch::Sender<u64>>,
    /// Bumped when the configuration may have changed (a subset of `revision`'s moves).
    config_revision: Arc<watch::Sender<u64>>,
    /// Where committed changes go when the device keeps a state file.
    log: Arc<OnceLock<crate::persist::ChangeLog>>,
    /// The emulated model, fixed for the device's life (read on every request, so kept
    /// outside the lock).
    model: Model,
    /// Where the API's writes wait their turn ([`Device::writers_turn`]).
    writers: Arc<tokio::sync::Mutex<()>>,
}

/// Tables whose changes the iDFace records in `change_logs`.
const CHANGE_LOGGED: [&str; 4] = ["users", "templates", "face_templates", "cards"];

impl Device {
    /// A factory-default device.
    pub fn new(settings: DeviceSettings) -> Self {
        let model = settings.model;
        let identity = Identity::generate(model, settings.seed);
        let db = factory_database(model, identity.device_id);
        let clock = DeviceClock::new(settings.time, settings.utc_offset);
        let booted_at = clock.now_utc();
        let first_web_login = model.has_first_web_login();
        let mut credential_rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0xc4ed_5a17);
        let credentials =
            Credentials::new(&settings.login, &settings.password, &mut credential_rng);
        let state = State {
            model,
            identity,
            factory_credentials: credentials.clone(),
            credentials,
            credential_rng,
            first_web_login,
            sessions: Sessions::new(settings.seed),
            config: Config::factory(model),
            db,
            photos: Photos::default(),
            clock,
            booted_at,
            actuations: Vec::new(),
            listen: None,
            full_snapshot: false,
            logged_meta: None,
            rng: ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5a17),
            session_error: settings.session_error,
        };
        Device {
            state: Arc::new(RwLock::new(state)),
            revision: Arc::new(watch::channel(0).0),
            config_revision: Arc::new(watch::channel(0).0),
            log: Arc::new(OnceLock::new()),
            model,
            writers: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Waits for a write's turn (the API's `create_objects`, `create_or_modify_objects`,
    /// `modify_objects` and `destroy_objects`) before anything of the request takes the
    /// state's lock, parking only the request. A write of many rows holds that lock for
    /// tens of microseconds; a worker thread blocked on it would sleep in the kernel and
    /// be woken again for every such write, where one parked here lets its thread go on
    /// serving other connections, and the write is woken on the thread that finished the
    /// one before. Readers do not wait here.
    pub(crate) async fn writers_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writers.lock().await
    }

    pub(crate) fn lock(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state for reading only: requests that only read (a session check, a
    /// `load_objects`, the clock) share it instead of queueing for it one by one.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state and, when it succeeds, logs what it changed for the state
    /// file (still under the lock) and bumps the revision (and the configuration's, when
    /// `f` changed it).
    fn mutate<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E> {
        let mut s = self.lock();
        let edition = s.config.edition();
        let result = f(&mut s);
        let configured = s.config.edition() != edition;
        if result.is_ok()
            && let Some(log) = self.log.get()
            && let Some((record, full)) = crate::persist::take_record(&mut s)
        {
            log.append(record, full);
        }
        drop(s);
        if result.is_ok() {
            crate::counter::bump(&self.revision);
        }
        if configured {
            crate::counter::bump(&self.config_revision);
        }
        result
    }

    /// Marks the persistent state changed (after a restore or an out-of-band edit), the
    /// configuration included.
    pub(crate) fn touch(&self) {
        self.revision.send_modify(|r| *r += 1);
        self.config_revision.send_modify(|r| *r += 1);
    }

    /// Starts logging every committed change for the state file; `last` is the number of
    /// the last change already on disk. The state as it is now is the baseline (the
    /// writer's first snapshot holds it).
    pub(crate) fn keep_change_log(&self, last: u64) -> crate::persist::ChangeLog {
        let mut s = self.lock();
        let log = self
            .log
            .get_or_init(|| crate::persist::ChangeLog::new(last))
            .clone();
        s.db.set_tracking(true);
        s.photos.set_tracking(true);
        s.logged_meta = Some(crate::persist::Meta::of(&s));
        log
    }

    /// The change log, when the device keeps a state file.
    pub(crate) fn change_log(&self) -> Option<crate::persist::ChangeLog> {
        self.log.get().cloned()
    }

    /// Number of the last change logged for the state file (0 without one). A request
    /// that moved it has changed something, and is answered once
    /// [`Device::wait_durable`] says that change is on disk.
    pub fn change_mark(&self) -> u64 {
        self.log
            .get()
            .map_or(0, crate::persist::ChangeLog::appended)
    }

    /// Waits until change `mark` (from [`Device::change_mark`]) is on disk; at once without
    /// a state file. The error says why it could not be written.
    pub async fn wait_durable(&self, mark: u64) -> Result<(), String> {
        match self.log.get() {
            Some(log) => log.wait_durable(mark).await,
            None => Ok(()),
        }
    }

    /// After the whole state was replaced: the state file gets a whole new snapshot.
    pub(crate) fn persist_everything(&self) {
        let Some(log) = self.log.get() else {
            return;
        };
        let mut s = self.lock();
        s.db.set_tracking(true);
        s.photos.set_tracking(true);
        s.full_snapshot = true;
        if let Some((record, full)) = crate::persist::take_record(&mut s) {
            log.append(record, full);
        }
    }

    /// A receiver that sees the revision move whenever persistent state changes.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// A receiver that sees the revision move whenever the configuration may have changed
    /// (not on every change of the tables: a task that only reads settings sleeps on).
    pub fn subscribe_configuration(&self) -> watch::Receiver<u64> {
        self.config_revision.subscribe()
    }

    /// The emulated model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The device's identity.
    pub fn identity(&self) -> Identity {
        self.lock().identity.clone()
    }

    /// Device-local time now.
    pub fn local_now(&self) -> i64 {
        self.read().clock.local_now()
    }

    /// Records the address the device is reachable on (reported by `system_information`).
    pub fn set_listen_addr(&self, addr: SocketAddr) {
        self.lock().listen = Some(addr);
    }

    // ----- sessions -------------------------------------------------------------------

    // ----- objects ----------------------------------------------------------------------

    // ----- face images ------------------------------------------------------------------

    // ----- configuration, time, actions, system ------------------------------------------
}

/// What [`Device::decide_and_log`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The decision.
    pub decision: decide::Decision,
    /// Id of the new `access_logs` row.
    pub log_id: i64,
    /// The new row, every column.
    pub log: Map<String, Json>,
    /// Doors or Security Boxes opened on a grant.
    pub actuations: Vec<ActuationRecord>,
}

impl State {
    fn qr_in_cards(&self) -> bool {
        self.config.value("face_id", "qrcode_legacy_mode_enabled") == Some("1")
            || self.config.value("barras", "qrcode_legacy_mode_enabled") == Some("1")
    }

    /// Writes the `access_logs` row (and its rule link); on a grant stamps `last_access` and
    /// performs `actions`, or the portal's own actions when `None`.
    fn log_decision(
        &mut self,
        credential: &decide::Credential,
        portal_id: i64,
        decision: decide::Decision,
        actions: Option<&[(String, String)]>,
    ) -> Result<Logged, DeviceError> {
        let now = self.clock.local_now();
        let (card_value, qrcode_value, pin_value) = match credential {
            decide::Credential::Card(v) => (*v, String::new(), String::new()),
            decide::Credential::Qr(q) => (0, q.clone(), String::new()),
            decide::Credential::Pin(p) => (0, String::new(), p.clone()),
            _ => (0, String::new(), String::new()),
        };
        let confidence = if matches!(credential, decide::Credential::Face(Some(_))) {
            1450
        } else {
            0
        };
        let row = json!({
            "time": now, "event": decision.event, "device_id": self.identity.device_id,
            "identifier_id": credential.identifier_id(), "user_id": decision.user_id.unwrap_or(0),
            "portal_id": portal_id, "identification_rule_id": 0, "card_value": card_value,
            "qrcode_value": qrcode_value, "uhf_tag": "", "pin_value": pin_value,
            "confidence": confidence, "mask": 0, "log_type_id": -1, "component_id": "",
        });
        let log_id = self.db.insert("access_logs", &[object(row)])?[0];
        if let Some(rule) = decision.rule_id {
            let link = json!({"access_log_id": log_id, "access_rule_id": rule});
            self.db.insert("access_log_access_rules", &[object(link)])?;
        }
        let mut moved = Vec::new();
        if decision.granted() {
            if let Some(user) = decision.user_id
                && self.user_exists(user)
            {
                self.db
                    .update("users", &object(json!({"last_access": now})), &[user])?;
            }
            let actions = match actions {
                Some(given) => given.to_vec(),
                None => self.portal_actions(portal_id),
            };
            for (action, parameters) in actions {
                if let Ok(actuation) = actions::actuation(self.model, &action, &parameters) {
                    let record = ActuationRecord {
                        time: now,
                        actuation,
                    };
                    self.actuations.push(record.clone());
                    moved.push(record);
                }
            }
        }
        let t = self.db.table("access_logs")?;
        let log = t.row(log_id).map(|r| t.row_json(r)).unwrap_or_default();
        Ok(Logged {
            decision,
            log_id,
            log,
            actuations: moved,
        })
    }

    /// `(action, parameters)` of every action linked to the portal.
    fn portal_actions(&self, portal_id: i64) -> Vec<(String, String)> {
        let (Ok(links), Ok(actions)) = (self.db.table("portal_actions"), self.db.table("actions"))
        else {
            return Vec::new();
        };
        links
            .rows()
            .filter(|(_, r)| links.cell(r, "portal_id") == &Value::int(i128::from(portal_id)))
            .filter_map(|(_, r)| links.cell(r, "action_id").as_int())
            .filter_map(|id| actions.row(i64::try_from(id).ok()?))
            .map(|row| {
                let text = |c: &str| {
                    actions
                        .cell(row, c)
                        .as_text()
                        .unwrap_or_default()
                        .to_owned()
                };
                (text("action"), text("parameters"))
            })
            .collect()
    }

    fn user_exists(&self, user_id: i64) -> bool {
        self.db
            .table("users")
            .is_ok_and(|t| t.row(user_id).is_some())
    }

    fn log_changes(&mut self, operation: &str, table: &str, ids: &[i64]) {
        if !self.model.has_change_logs() || !CHANGE_LOGGED.contains(&table) {
            return;
        }
        let now = i128::from(self.clock.local_now());
        // change_logs is not an open table: its columns are always the definition's (id,
        // operation_type, table_name, table_id, timestamp), the id left to the table.
        // change_logs has no constraints that these rows could violate; its cells are
        // pushed here directly rather than built as JSON members parsed back.
        let (operation, table, now) = (
            CompactString::from(operation),
            CompactString::from(table),
            Integer::new(now),
        );
        let _ = self.db.append_log(
            "change_logs",
            ids.len(),
            // Called once a row: inlined into the loop, not a call each time.
            #[inline(always)]
            |i, [_, operation_type, table_name, table_id, timestamp]| {
                operation_type.set_text(&operation);
                table_name.set_text(&table);
                *table_id = Value::int(i128::from(ids[i]));
                *timestamp = Value::Int(now);
            },
        );
    }

    fn store_face_template(
        &mut self,
        user_id: i64,
        digest: &[u8; 32],
        timestamp: i64,
    ) -> Result<(), DeviceError> {
        let old = self
            .db
            .table("face_templates")?
            .rowids_where_eq("user_id", i128::from(user_id));
        self.db.delete("face_templates", &old)?;
        let template = base64::engine::general_purpose::STANDARD.encode(digest);
        let row = json!({"user_id": user_id, "template": template});
        if let Json::Object(row) = row {
            self.db.insert("face_templates", &[row])?;
        }
        if let Ok(users) = self.db.table("users")
            && users.column_index("image_timestamp").is_some()
        {
            let values = json!({"image_timestamp": timestamp});
            if let Json::Object(values) = values {
                self.db.update("users", &values, &[user_id])?;
            }
        }
        Ok(())
    }
}

fn object(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// Most rows one `create_objects` / `create_or_modify_objects` call may carry. Real
/// firmware documents no limit (its 2 MiB body limit bounds a batch); this generous cap
/// keeps one request from queueing hundreds of thousands of rows and change-log entries.
pub const MAX_ROWS_PER_REQUEST: usize = 10_000;

/// Refuses a write of more than [`MAX_ROWS_PER_REQUEST`] rows.
fn check_row_count(rows: usize) -> Result<(), DeviceError> {
    if rows > MAX_ROWS_PER_REQUEST {
        return Err(DeviceError::Invalid(format!(
            "Too many values (at most {MAX_ROWS_PER_REQUEST} per request)"
        )));
    }
    Ok(())
}

fn rows_member<'r>(request: &Members<'r>) -> Result<Vec<&'r Map<String, Json>>, DeviceError> {
    let values = request.array("values")?;
    check_row_count(values.len())?;
    values
        .iter()
        .map(|row| match row {
            Json::Object(map) => Ok(map),
            other => Err(MemberError::new("values", "object", Some(other)).into()),
        })
        .collect()
}

fn factory_database(model: Model, device_id: i64) -> Database {
    let mut db = Database::with_tables(
        TABLES
            .iter()
            .map(|t| t.name)
            .filter(|name| model_has_table(model, name)),
    );
    for (table, cells) in schema::factory_rows(model, device_id) {
        let row: Map<String, Json> = cells
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    FactoryValue::Int(n) => Value::int(n).to_json(),
                    FactoryValue::Text(t) => Json::String(t.to_owned()),
                };
                (k.to_owned(), v)
            })
            .collect();
        // Factory rows satisfy the schema by construction; a failure is a programming error
        // caught by the unit tests below, never by a user.
        let _ = db.insert(table, &[row]);
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(model: Model) -> Device {
        Device::new(DeviceSettings {
            model,
            ..DeviceSettings::default()
        })
    }

    #[test]
    fn factory_rows_are_present() {
        for model in Model::ALL {
            let d = device(model);
            assert_eq!(d.rows("groups").unwrap().len(), 1, "{model}");
            assert_eq!(d.rows("time_spans").unwrap()[0]["end"], 86399);
            assert_eq!(d.rows("portals").unwrap().len(), 1);
            assert_eq!(d.rows("actions").unwrap().len(), 1);
            assert_eq!(d.rows("portal_actions").unwrap().len(), 1);
            assert_eq!(d.rows("devices").unwrap()[0]["id"], d.identity().device_id);
        }
        assert_eq!(
            device(Model::IdFace).rows("sec_boxs").unwrap()[0]["id"],
            65793
        );
        assert!(device(Model::IdAccess).rows("sec_boxs").is_err());
    }

    #[test]
    fn the_configuration_revision_moves_with_the_configuration_only() {
        let d = device(Model::IdFace);
        let (changes, configuration) = (d.subscribe_changes(), d.subscribe_configuration());
        let moved = |rx: &watch::Receiver<u64>| rx.has_changed().unwrap();
        let req = json!({"object": "users", "values": [{"name": "A"}]});
        d.create_objects(Members::of(&req, "b").unwrap()).unwrap();
        assert!(moved(&changes) && !moved(&configuration));
        let refused = json!({"general": {"no_such_key": "1"}});
        assert!(
            d.set_configuration(Members::of(&refused, "b").unwrap())
                .is_err()
        );
        assert!(!moved(&configuration));
        let set = json!({"general": {"beep_enabled": "0"}});
        d.set_configuration(Members::of(&set, "b").unwrap())
            .unwrap();
        assert!(moved(&configuration));
        let mut configuration = d.subscribe_configuration();
        configuration.mark_unchanged();
        d.reset_to_factory();
        assert!(moved(&configuration));
    }

    #[test]
    fn change_login_ends_sessions() {
        let d = device(Model::IdFaceMax);
        let login = d.login("admin", "admin").unwrap();
        assert!(login.first_web_login);
        d.change_login("root", "secret").unwrap();
        assert!(!d.session_is_valid(&login.token));
        assert_eq!(d.login("admin", "admin"), Err(DeviceError::BadCredentials));
        assert!(!d.login("root", "secret").unwrap().first_web_login);
    }

    #[test]
    fn writes_to_logged_tables_leave_change_log_rows() {
        let d = Device::new(DeviceSettings {
            time: TimeSource::Manual(clock::ManualTime::starting_at(1_762_773_300)),
            ..DeviceSettings::default()
        });
        let now = d.local_now();
        let req = json!({"object": "users", "values": [{"name": "A"}, {"id": 7, "name": "B"}]});
        d.create_objects(Members::of(&req, "b").unwrap()).unwrap();
        let req =
            json!({"object": "users", "values": {"name": "C"}, "where": {"users": {"id": 7}}});
        d.modify_objects(Members::of(&req, "b").unwrap()).unwrap();
        let req = json!({"object": "users", "where": {"users": {"id": 1}}});
        d.destroy_objects(Members::of(&req, "b").unwrap()).unwrap();
        // A refused write logs nothing.
        let req = json!({"object": "users", "values": [{"id": 7, "name": "again"}]});
        assert!(d.create_objects(Members::of(&req, "b").unwrap()).is_err());
        let log = d.rows("change_logs").unwrap();
        let entry = |id: i64, op: &str, table_id: i64| {
            json!({"id": id, "operation_type": op, "table_name": "users",
                "table_id": table_id, "timestamp": now})
        };
        assert_eq!(
            log.into_iter().map(Json::Object).collect::<Vec<_>>(),
            vec![
                entry(1, "insert", 1),
                entry(2, "insert", 7),
                entry(3, "update", 7),
                entry(4, "delete", 1),
            ]
        );
        // Models without the table log nothing and do not fail.
        let d = device(Model::IdAccess);
        let req = json!({"object": "users", "values": [{"name": "A"}]});
        d.create_objects(Members::of(&req, "b").unwrap()).unwrap();
        assert!(d.rows("change_logs").is_err());
    }

    #[test]
    fn reboot_keeps_tables() {
        let d = device(Model::IdFace);
        let token = d.login("admin", "admin").unwrap().token;
        let req = json!({"object": "users", "values": [{"name": "A"}]});
        d.create_objects(Members::of(&req, "b").unwrap()).unwrap();
        d.reboot();
        assert!(!d.session_is_valid(&token));
        assert_eq!(d.rows("users").unwrap().len(), 1);
    }

    #[test]
    fn destroying_a_user_removes_the_photo() {
        let d = device(Model::IdFace);
        let req = json!({"object": "users", "values": [{"id": 5, "name": "A"}]});
        d.create_objects(Members::of(&req, "b").unwrap()).unwrap();
        let img = image::GrayImage::from_fn(200, 200, |x, y| image::Luma([((x ^ y) % 256) as u8]));
        let mut jpeg = std::io::Cursor::new(Vec::new());
        img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        let out = d.set_user_image(5, true, 100, jpeg.get_ref()).unwrap();
        assert!(out.problems.is_empty());
        assert_eq!(d.list_images(), vec![(5, 100)]);
        assert_eq!(d.rows("face_templates").unwrap().len(), 1);
        let req = json!({"object": "users", "where": {"users": {"id": 5}}});
        assert_eq!(
            d.destroy_objects(Members::of(&req, "b").unwrap()).unwrap(),
            1
        );
        assert!(d.list_images().is_empty());
        assert!(d.rows("face_templates").unwrap().is_empty());
    }
}
