//! The state file (`acs-sim serve --state FILE`): what a terminal keeps across a power
//! cycle – tables, photos, configuration, credentials, identity and the clock offset.
//! Sessions are never saved (a real terminal loses them on reboot), and the web password is
//! kept as a salted digest, never in clear. On Unix the files are readable by their owner
//! only (mode 0600): they hold PINs and photos.
//!
//! A terminal persists what it acknowledges, so a change is on disk before the request that
//! made it is answered, even if the process is killed right after. Two files do it:
//!
//! - `FILE`, a snapshot: one JSON document of the whole state, written atomically (temporary
//!   file, fsync, rename, fsync of the directory), so it is always the old or the new one;
//! - `FILE.wal`, a change log: one JSON line per committed change, with the rows, photos
//!   and settings as they are after it and a sequence number. Changes are appended under
//!   the device's lock, so in the order they happened; one writer task appends what has
//!   accumulated and syncs it to disk (group commit: every request that arrived during a
//!   sync shares the next one), and the HTTP layer answers a request that changed
//!   something only once its change is durable ([`crate::device::Device::wait_durable`]).
//!
//! Loading reads the snapshot, then replays the log's records newer than it; a record cut
//! short by a crash was never acknowledged and is dropped. The writer folds the log into a
//! new snapshot when it starts, when it grows past [`COMPACT_AFTER_BYTES`], after a factory
//! reset, and on shutdown.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::device::images::Photo;
use crate::device::schema::ColumnType;
use crate::device::table::{Column, TableChanges, Value};
use crate::device::{Credentials, Device, Identity, State};
use crate::wire::json_integer;

const FORMAT: &str = "acs-sim-state";
/// Version 2 keeps the web password as a salted digest and names the last change it
/// holds (`wal_seq`); version 1 (password in clear) is still read.
const VERSION: i64 = 2;

/// How large the change log may grow before the writer folds it into a new snapshot.
pub const COMPACT_AFTER_BYTES: u64 = 16 * 1024 * 1024;

/// The state file could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a state file this version understands.
    #[error("state file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The change log next to the state file `path`: `<path>.wal`.
pub fn log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

fn column_type(name: &str) -> Option<ColumnType> {
    match name {
        "int" => Some(ColumnType::Int),
        "int64" => Some(ColumnType::Int64),
        "string" => Some(ColumnType::Str),
        _ => None,
    }
}

fn columns_json(columns: &[Column]) -> Json {
    Json::Array(
        columns
            .iter()
            .map(|c| json!([c.name, c.ty.wire_name()]))
            .collect(),
    )
}

fn cells_json(cells: &[Value]) -> Json {
    Json::Array(cells.iter().map(Value::to_json).collect())
}

fn photo_json(p: &Photo) -> Json {
    json!({
        "timestamp": p.timestamp,
        "digest": BASE64.encode(p.digest),
        "jpeg": p.jpeg.as_ref().map(|j| BASE64.encode(j)),
    })
}

// ----- what is kept besides tables and photos ------------------------------------------------

/// Identity, credentials, first-login state, clock offset and configuration: what a change
/// record repeats whole when any of it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    identity: Identity,
    credentials: Credentials,
    first_web_login: bool,
    clock_offset: i64,
    config: BTreeMap<String, BTreeMap<String, String>>,
}

impl Meta {
    pub(crate) fn of(s: &State) -> Meta {
        Meta {
            identity: s.identity.clone(),
            credentials: s.credentials.clone(),
            first_web_login: s.first_web_login,
            clock_offset: s.clock.offset(),
            config: s.config.sections().clone(),
        }
    }

    /// Whether `s` still holds this (compared in place: no copy on the request path).
    fn matches(&self, s: &State) -> bool {
        self.first_web_login == s.first_web_login
            && self.clock_offset == s.clock.offset()
            && self.credentials == s.credentials
            && self.identity == s.identity
            && &self.config == s.config.sections()
    }

    fn write_into(&self, out: &mut Map<String, Json>) {
        let i = &self.identity;
        out.insert(
            "identity".into(),
            json!({"device_id": i.device_id, "serial": i.serial, "mac": i.mac}),
        );
        out.insert("login".into(), json!(self.credentials.login));
        out.insert("password_sha256".into(), json!(self.credentials.digest));
        out.insert("password_salt".into(), json!(self.credentials.salt));
        out.insert("first_web_login".into(), json!(self.first_web_login));
        out.insert("clock_offset".into(), json!(self.clock_offset));
        out.insert("config".into(), json!(self.config));
    }
}

// ----- snapshots -------------------------------------------------------------------------------

/// The device's persistent state as a JSON document, with the number of the last change
/// it holds.
fn snapshot_of(s: &State, wal_seq: u64) -> Json {
    let tables: Map<String, Json> =
        s.db.tables()
            .map(|t| {
                let rows: Vec<Json> = t
                    .rows()
                    .map(|(rowid, row)| json!([rowid, cells_json(&t.every_cell(row))]))
                    .collect();
                (
                    t.name().to_owned(),
                    json!({"columns": columns_json(t.columns()), "rows": rows}),
                )
            })
            .collect();
    let photos: Vec<Json> = s
        .photos
        .iter()
        .map(|(user_id, p)| {
            let mut j = photo_json(p);
            j["user_id"] = json!(user_id);
            j
        })
        .collect();
    let mut out = Map::new();
    out.insert("format".into(), json!(FORMAT));
    out.insert("version".into(), json!(VERSION));
    out.insert("model".into(), json!(s.model.cli_name()));
    Meta::of(s).write_into(&mut out);
    out.insert("wal_seq".into(), json!(wal_seq));
    out.insert("tables".into(), Json::Object(tables));
    out.insert("photos".into(), Json::Array(photos));
    Json::Object(out)
}

/// The device's persistent state as a JSON document (what the state file holds).
pub fn snapshot(device: &Device) -> Json {
    let s = device.lock();
    snapshot_of(&s, device.change_mark())
}

/// One table as saved: its columns and its rows by rowid.
type SavedTable = (Vec<Column>, BTreeMap<i64, Vec<Value>>);

/// A state file's content, parsed, on its way into a device.
#[derive(Debug)]
struct Saved {
    identity: Identity,
    login: String,
    /// The digest and salt, or (version 1) the password in clear.
    password: Result<(String, String), String>,
    first_web_login: bool,
    clock_offset: i64,
    config: BTreeMap<String, BTreeMap<String, String>>,
    tables: BTreeMap<String, SavedTable>,
    photos: BTreeMap<i64, Photo>,
    /// The last change the snapshot holds; the change log's later records are replayed.
    wal_seq: u64,
}

fn parse_columns(j: &Json, table: &str) -> Result<Vec<Column>, String> {
    j.as_array()
        .ok_or("columns")?
        .iter()
        .map(|c| {
            Some(Column {
                name: c[0].as_str()?.to_owned(),
                ty: column_type(c[1].as_str()?)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("columns of {table}"))
}

fn parse_cells(j: &Json, table: &str) -> Result<Vec<Value>, String> {
    j.as_array()
        .ok_or_else(|| format!("row in {table}"))?
        .iter()
        .map(|v| match v {
            Json::Null => Some(Value::Null),
            Json::String(s) => Some(Value::Text(s.as_str().into())),
            other => json_integer(other).map(Value::int),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("cell in {table}"))
}

/// What is wrong with a state document (its snapshot or a change-log record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedState(String);

impl From<&str> for MalformedState {
    fn from(what: &str) -> Self {
        MalformedState(format!("{what} is missing or malformed"))
    }
}

impl From<String> for MalformedState {
    fn from(why: String) -> Self {
        MalformedState(why)
    }
}

fn parse_photo(p: &Json) -> Result<Photo, MalformedState> {
    let digest: [u8; 32] = BASE64
        .decode(p["digest"].as_str().unwrap_or_default())
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or("photo digest")?;
    let jpeg = match &p["jpeg"] {
        Json::Null => None,
        Json::String(s) => Some(BASE64.decode(s).map_err(|_| "photo jpeg")?),
        _ => return Err(MalformedState::from("photo jpeg")),
    };
    Ok(Photo {
        jpeg,
        timestamp: p["timestamp"].as_i64().ok_or("photo timestamp")?,
        digest,
    })
}

impl Saved {
    /// Reads a snapshot written for `model`.
    fn parse(saved: &Json, model: crate::model::Model) -> Result<Saved, MalformedState> {
        let version = saved["version"].as_i64().unwrap_or(0);
        if saved["format"] != FORMAT || !(1..=VERSION).contains(&version) {
            return Err(format!("expected format {FORMAT} version 1 to {VERSION}").into());
        }
        if saved["model"] != model.cli_name() {
            return Err(format!(
                "saved for model {}, but the simulator runs {}",
                saved["model"],
                model.cli_name()
            )
            .into());
        }
        let mut out = Saved {
            identity: Identity {
                device_id: 0,
                serial: String::new(),
                mac: String::new(),
            },
            login: String::new(),
            password: Err(String::new()),
            first_web_login: false,
            clock_offset: 0,
            config: BTreeMap::new(),
            tables: BTreeMap::new(),
            photos: BTreeMap::new(),
            wal_seq: saved["wal_seq"].as_u64().unwrap_or(0),
        };
        out.apply_meta(saved)?;
        for (name, t) in saved["tables"].as_object().ok_or("tables")? {
            let columns = parse_columns(&t["columns"], name)?;
            let mut rows = BTreeMap::new();
            for r in t["rows"].as_array().ok_or("rows")? {
                let rowid = r[0].as_i64().ok_or_else(|| format!("rowid in {name}"))?;
                let cells = parse_cells(&r[1], name)?;
                if cells.len() != columns.len() {
                    return Err(format!("row width in {name}").into());
                }
                rows.insert(rowid, cells);
            }
            out.tables.insert(name.clone(), (columns, rows));
        }
        for p in saved["photos"].as_array().ok_or("photos")? {
            let user = p["user_id"].as_i64().ok_or("photo user_id")?;
            out.photos.insert(user, parse_photo(p)?);
        }
        Ok(out)
    }

    /// Reads the identity, credentials, flags and configuration of a snapshot or record.
    fn apply_meta(&mut self, j: &Json) -> Result<(), MalformedState> {
        let id = &j["identity"];
        self.identity = Identity {
            device_id: id["device_id"].as_i64().ok_or("identity.device_id")?,
            serial: id["serial"].as_str().ok_or("identity.serial")?.to_owned(),
            mac: id["mac"].as_str().ok_or("identity.mac")?.to_owned(),
        };
        self.login = j["login"].as_str().ok_or("login")?.to_owned();
        self.password = match j["password"].as_str() {
            // Version 1 kept the password in clear: it is hashed when installed, and the
            // next snapshot no longer holds it.
            Some(clear) => Err(clear.to_owned()),
            None => Ok((
                j["password_sha256"]
                    .as_str()
                    .ok_or("password_sha256")?
                    .to_owned(),
                j["password_salt"]
                    .as_str()
                    .ok_or("password_salt")?
                    .to_owned(),
            )),
        };
        self.first_web_login = j["first_web_login"].as_bool().unwrap_or(false);
        self.clock_offset = j["clock_offset"].as_i64().unwrap_or(0);
        self.config =
            serde_json::from_value(j["config"].clone()).map_err(|e| format!("config: {e}"))?;
        Ok(())
    }

    /// Applies one change record of the log.
    fn apply_record(&mut self, record: &Json) -> Result<(), MalformedState> {
        if let Some(tables) = record.get("tables") {
            for (name, change) in tables.as_object().ok_or("record tables")? {
                let entry = self
                    .tables
                    .get_mut(name)
                    .ok_or_else(|| format!("record names unknown table {name}"))?;
                if let Some(columns) = change.get("columns") {
                    let columns = parse_columns(columns, name)?;
                    for row in entry.1.values_mut() {
                        row.resize(columns.len(), Value::Null);
                    }
                    entry.0 = columns;
                }
                for r in change["rows"].as_array().ok_or("record rows")? {
                    let rowid = r[0].as_i64().ok_or_else(|| format!("rowid in {name}"))?;
                    if r[1].is_null() {
                        entry.1.remove(&rowid);
                    } else {
                        let cells = parse_cells(&r[1], name)?;
                        if cells.len() != entry.0.len() {
                            return Err(format!("row width in {name}").into());
                        }
                        entry.1.insert(rowid, cells);
                    }
                }
            }
        }
        if let Some(photos) = record.get("photos") {
            for p in photos.as_array().ok_or("record photos")? {
                let user = p[0].as_i64().ok_or("photo user_id")?;
                if p[1].is_null() {
                    self.photos.remove(&user);
                } else {
                    self.photos.insert(user, parse_photo(&p[1])?);
                }
            }
        }
        if let Some(meta) = record.get("meta") {
            self.apply_meta(meta)?;
        }
        Ok(())
    }

    /// Puts the state into `device`; nothing changes on error.
    fn install(self, device: &Device) -> Result<(), MalformedState> {
        let mut s = device.lock();
        let mut db = s.db.clone();
        for (name, (columns, rows)) in self.tables {
            db.restore_table(&name, columns, rows)
                .map_err(|e| e.to_string())?;
        }
        s.db = db;
        s.identity = self.identity;
        s.credentials = match self.password {
            Ok((digest, salt)) => Credentials {
                login: self.login,
                digest,
                salt,
            },
            Err(clear) => {
                let s = &mut *s;
                Credentials::new(&self.login, &clear, &mut s.credential_rng)
            }
        };
        s.first_web_login = self.first_web_login;
        s.clock.set_offset(self.clock_offset);
        s.config.restore(&self.config);
        s.photos = Default::default();
        for (user, photo) in self.photos {
            s.photos.put(user, photo);
        }
        drop(s);
        device.touch();
        Ok(())
    }
}

/// Loads a snapshot into `device` (which must be the same model). Nothing changes on error.
/// On a device that keeps a state file, the whole new state is persisted.
pub fn restore(device: &Device, saved: &Json) -> Result<(), MalformedState> {
    Saved::parse(saved, device.model())?.install(device)?;
    device.persist_everything();
    Ok(())
}

/// The complete lines of a change log, and the length of the part that holds them (a
/// record cut short by a crash – never acknowledged – is left out).
fn complete_lines(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    (lines, end)
}

/// Reads the state file `path` and its change log into `device`. Returns the number of the
/// last change they hold (`None`: neither exists, the device keeps its factory state). A
/// record cut short at the end of the log is dropped and the log truncated before it.
pub fn load(device: &Device, path: &Path) -> Result<Option<u64>, StateError> {
    let invalid = |at: &Path, reason: String| StateError::Invalid {
        path: at.to_owned(),
        reason,
    };
    let read = |at: &Path| match std::fs::read(at) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io {
            path: at.to_owned(),
            source,
        }),
    };
    let wal = log_path(path);
    let (snapshot_bytes, log_bytes) = (read(path)?, read(&wal)?);
    if snapshot_bytes.is_none() && log_bytes.is_none() {
        return Ok(None);
    }
    // Without a snapshot (killed before the first one was written) the log applies to the
    // factory state.
    let base = match snapshot_bytes {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| invalid(path, e.to_string()))?,
        None => snapshot(device),
    };
    let mut saved =
        Saved::parse(&base, device.model()).map_err(|e| invalid(path, e.to_string()))?;
    let mut last = saved.wal_seq;
    if let Some(bytes) = log_bytes {
        let (lines, good) = complete_lines(&bytes);
        for line in lines {
            let record: Json =
                serde_json::from_slice(line).map_err(|e| invalid(&wal, e.to_string()))?;
            let seq = record["seq"]
                .as_u64()
                .ok_or_else(|| invalid(&wal, "record without seq".into()))?;
            if seq <= saved.wal_seq {
                continue; // already in the snapshot
            }
            saved
                .apply_record(&record)
                .map_err(|e| invalid(&wal, format!("record {seq}: {e}")))?;
            last = last.max(seq);
        }
        if good < bytes.len() {
            tracing::warn!(
                dropped = bytes.len() - good,
                "state file change log ends in an incomplete record (never acknowledged): dropped"
            );
            let io = |source| StateError::Io {
                path: wal.clone(),
                source,
            };
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&wal)
                .map_err(io)?;
            f.set_len(u64::try_from(good).unwrap_or(u64::MAX))
                .map_err(io)?;
            f.sync_all().map_err(io)?;
        }
    }
    saved
        .install(device)
        .map_err(|e| invalid(path, e.to_string()))?;
    Ok(Some(last))
}

// ----- writing ---------------------------------------------------------------------------------

/// Creates (or truncates) `path` for writing, readable and writable by its owner only on
/// Unix (0600) – also when a file of that name was left with a wider mode.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    private(&mut options);
    let f = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Files created through `options` are private to their owner (0600 on Unix).
fn private(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes a rename or a new file in `dir` durable; not every platform can sync a directory.
fn sync_directory(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync directory); the
/// new file is private to its owner (see [`create_private`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = directory_of(path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = create_private(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_directory(dir);
    Ok(())
}

// ----- the change log --------------------------------------------------------------------------

/// A record of what a committed change left behind, taken under the device's lock: the
/// rows, photos and (when they changed) settings as they are now, or a request for a whole
/// new snapshot. `None` when nothing persistent changed.
pub(crate) fn take_record(s: &mut State) -> Option<(Map<String, Json>, bool)> {
    let tables = s.db.take_changes();
    let photos = s.photos.take_changes();
    if std::mem::take(&mut s.full_snapshot) {
        s.logged_meta = Some(Meta::of(s));
        return Some((Map::new(), true));
    }
    let mut record = Map::new();
    if !tables.is_empty() {
        let tables: Map<String, Json> = tables
            .into_iter()
            .map(
                |TableChanges {
                     table,
                     columns,
                     rows,
                 }| {
                    let mut change = Map::new();
                    if let Some(columns) = columns {
                        change.insert("columns".into(), columns_json(&columns));
                    }
                    let rows: Vec<Json> = rows
                        .iter()
                        .map(|(id, row)| json!([id, row.as_deref().map_or(Json::Null, cells_json)]))
                        .collect();
                    change.insert("rows".into(), Json::Array(rows));
                    (table.to_owned(), Json::Object(change))
                },
            )
            .collect();
        record.insert("tables".into(), Json::Object(tables));
    }
    if !photos.is_empty() {
        let photos: Vec<Json> = photos
            .iter()
            .map(|(user, p)| json!([user, p.as_ref().map_or(Json::Null, photo_json)]))
            .collect();
        record.insert("photos".into(), Json::Array(photos));
    }
    if !s.logged_meta.as_ref().is_some_and(|m| m.matches(s)) {
        let meta = Meta::of(s);
        let mut j = Map::new();
        meta.write_into(&mut j);
        record.insert("meta".into(), Json::Object(j));
        s.logged_meta = Some(meta);
    }
    (!record.is_empty()).then_some((record, false))
}

/// Changes appended and not yet taken by the writer.
#[derive(Debug, Default)]
struct Pending {
    /// Serialised records, one per line.
    bytes: Vec<u8>,
    /// Number of the last change appended.
    appended: u64,
    /// A change asks for a whole snapshot (a factory reset, a restore).
    full: bool,
}

/// What is on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Durable {
    /// Every change up to this number is on disk.
    upto: u64,
    /// Changes up to `failed_upto` could not be written, for this reason.
    failure: Option<String>,
    failed_upto: u64,
    /// The writer has stopped (shutdown): nothing more will be written.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    durable: watch::Sender<Durable>,
}

/// Committed changes on their way to the state file; clones share it. The device appends
/// (under its lock), the writer task takes and syncs, requests wait for their change.
#[derive(Debug, Clone)]
pub(crate) struct ChangeLog {
    shared: Arc<Shared>,
}

impl ChangeLog {
    /// A log whose next change is number `last + 1` (`last` already on disk).
    pub(crate) fn new(last: u64) -> Self {
        ChangeLog {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending {
                    appended: last,
                    ..Pending::default()
                }),
                wake: Notify::new(),
                durable: watch::channel(Durable {
                    upto: last,
                    ..Durable::default()
                })
                .0,
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one change (called under the device's lock, so changes keep their order)
    /// and wakes the writer.
    pub(crate) fn append(&self, record: Map<String, Json>, full: bool) {
        let mut p = self.pending();
        p.appended += 1;
        if full {
            p.full = true;
        } else {
            let mut line = Map::with_capacity(record.len() + 1);
            line.insert("seq".into(), json!(p.appended));
            line.extend(record);
            // Serialising a map of JSON values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut p.bytes, &Json::Object(line));
            p.bytes.push(b'\n');
        }
        drop(p);
        self.shared.wake.notify_one();
    }

    /// Number of the last change appended.
    pub(crate) fn appended(&self) -> u64 {
        self.pending().appended
    }

    fn take(&self) -> Pending {
        let mut p = self.pending();
        Pending {
            bytes: std::mem::take(&mut p.bytes),
            appended: p.appended,
            full: std::mem::take(&mut p.full),
        }
    }

    fn written(&self, upto: u64) {
        self.shared.durable.send_modify(|d| {
            d.upto = d.upto.max(upto);
            if d.failed_upto <= d.upto {
                d.failure = None;
            }
        });
    }

    fn failed(&self, upto: u64, why: String) {
        self.shared.durable.send_modify(|d| {
            d.failure = Some(why);
            d.failed_upto = d.failed_upto.max(upto);
        });
    }

    fn close(&self) {
        self.shared.durable.send_modify(|d| d.closed = true);
    }

    /// Waits until change `seq` is on disk; the error says why it is not.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<(), String> {
        let mut rx = self.shared.durable.subscribe();
        loop {
            {
                let d = rx.borrow_and_update();
                if d.upto >= seq {
                    return Ok(());
                }
                if let Some(why) = &d.failure
                    && seq <= d.failed_upto
                {
                    return Err(why.clone());
                }
                if d.closed {
                    return Err("the state file is no longer written (shutting down)".into());
                }
            }
            if rx.changed().await.is_err() {
                return Err("the state file writer is gone".into());
            }
        }
    }
}

/// The writer task's own state.
struct Writer {
    device: Device,
    log: ChangeLog,
    path: PathBuf,
    wal_path: PathBuf,
    /// The change log, open for appending (after the first snapshot).
    wal: Option<Arc<std::fs::File>>,
    wal_len: u64,
    /// Records taken but not written (a failed write), written first next time.
    retry: Vec<u8>,
    /// A whole snapshot is owed (a failed one, or one asked for).
    snapshot_owed: bool,
}

impl Writer {
    /// Appends what has accumulated and syncs it (or writes a snapshot when one is owed or
    /// the log has grown too long).
    async fn flush(&mut self) {
        let batch = self.log.take();
        let size = self.wal_len + (self.retry.len() + batch.bytes.len()) as u64;
        if batch.full || self.snapshot_owed || size > COMPACT_AFTER_BYTES || self.wal.is_none() {
            return self.compact(batch.bytes).await;
        }
        if batch.bytes.is_empty() && self.retry.is_empty() {
            return;
        }
        let mut bytes = std::mem::take(&mut self.retry);
        bytes.extend_from_slice(&batch.bytes);
        let Some(wal) = self.wal.clone() else {
            return;
        };
        let before = self.wal_len;
        let written = tokio::task::spawn_blocking(move || {
            let result = (&*wal).write_all(&bytes).and_then(|()| wal.sync_data());
            if result.is_err() {
                // No torn record may stay in the middle of the log.
                let _ = wal.set_len(before);
            }
            (bytes, result)
        })
        .await;
        match written {
            Ok((bytes, Ok(()))) => {
                self.wal_len += bytes.len() as u64;
                self.log.written(batch.appended);
            }
            Ok((bytes, Err(e))) => {
                tracing::error!(error = %e, "could not write the state file's change log");
                self.retry = bytes;
                self.log
                    .failed(batch.appended, format!("Could not store the change: {e}"));
            }
            Err(e) => {
                tracing::error!(error = %e, "state file writer failed");
                self.log
                    .failed(batch.appended, "Could not store the change".into());
            }
        }
    }

    /// Writes a whole snapshot and empties the change log. `taken`: records already taken
    /// from the log, which the snapshot covers (written to the log later if it fails).
    async fn compact(&mut self, taken: Vec<u8>) {
        let (bytes, seq) = {
            let s = self.device.lock();
            let seq = self.log.appended();
            (snapshot_of(&s, seq).to_string().into_bytes(), seq)
        };
        let (path, wal_path) = (self.path.clone(), self.wal_path.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<std::fs::File, StateError> {
            write_atomic(&path, &bytes)?;
            let io = |source| StateError::Io {
                path: wal_path.clone(),
                source,
            };
            create_private(&wal_path)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            sync_directory(directory_of(&wal_path));
            let mut options = std::fs::OpenOptions::new();
            options.append(true);
            private(&mut options);
            options.open(&wal_path).map_err(io)
        })
        .await;
        match done {
            Ok(Ok(wal)) => {
                self.wal = Some(Arc::new(wal));
                self.wal_len = 0;
                self.retry.clear();
                self.snapshot_owed = false;
                self.log.written(seq);
                tracing::debug!(seq, "state file written");
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not write the state file");
                self.retry.extend(taken);
                self.snapshot_owed = true;
                self.log
                    .failed(seq, format!("Could not store the change: {e}"));
            }
            Err(e) => {
                tracing::error!(error = %e, "state file writer failed");
                self.retry.extend(taken);
                self.snapshot_owed = true;
                self.log.failed(seq, "Could not store the change".into());
            }
        }
    }
}

/// Writes the state file of `device` (which must keep a change log) until `cancel`: a
/// snapshot first, then every change as it is committed, and a last snapshot at the end.
pub async fn run(device: Device, path: PathBuf, cancel: CancellationToken) {
    let Some(log) = device.change_log() else {
        return;
    };
    let mut writer = Writer {
        device,
        log,
        wal_path: log_path(&path),
        path,
        wal: None,
        wal_len: 0,
        retry: Vec::new(),
        snapshot_owed: true,
    };
    writer.compact(Vec::new()).await;
    loop {
        let shared = Arc::clone(&writer.log.shared);
        tokio::select! {
            () = shared.wake.notified() => writer.flush().await,
            () = cancel.cancelled() => break,
        }
    }
    let last = writer.log.take();
    writer.compact(last.bytes).await;
    writer.log.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_are_records() {
        let (lines, good) = complete_lines(b"{\"seq\":1}\n{\"seq\":2}\n{\"se");
        assert_eq!(lines, vec![&b"{\"seq\":1}"[..], &b"{\"seq\":2}"[..]]);
        assert_eq!(good, 20);
        assert_eq!(complete_lines(b"").1, 0);
        assert_eq!(complete_lines(b"{\"seq\"").1, 0);
    }

    #[test]
    fn the_log_path_sits_next_to_the_state_file() {
        assert_eq!(
            log_path(Path::new("/tmp/x/device.json")),
            PathBuf::from("/tmp/x/device.json.wal")
        );
    }
}
