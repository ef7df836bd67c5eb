//! The state file (`acs-sim serve --state FILE`): what a terminal keeps across a power
//! cycle – tables, photos, configuration, credentials, identity and the clock offset – as
//! one JSON document. Sessions are never saved (a real terminal loses them on reboot), and
//! the web password is kept as a salted digest, never in clear. On Unix the file is
//! readable by its owner only (mode 0600): it holds PINs and photos.
//!
//! Writes are atomic: the snapshot goes to a temporary file in the same directory, is
//! flushed to disk, and replaces the old file with a rename, so a crash leaves either the
//! old or the new state, never a torn file. A background task writes after every change.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

use crate::device::images::Photo;
use crate::device::schema::ColumnType;
use crate::device::table::{Column, Value};
use crate::device::{Credentials, Device, Identity};
use crate::wire::json_integer;

const FORMAT: &str = "acs-sim-state";
/// Version 2 keeps the web password as a salted digest; version 1 (password in clear) is
/// still read.
const VERSION: i64 = 2;

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

fn column_type_name(ty: ColumnType) -> &'static str {
    ty.wire_name()
}

fn column_type(name: &str) -> Option<ColumnType> {
    match name {
        "int" => Some(ColumnType::Int),
        "int64" => Some(ColumnType::Int64),
        "string" => Some(ColumnType::Str),
        _ => None,
    }
}

/// The device's persistent state as a JSON document.
pub fn snapshot(device: &Device) -> Json {
    let s = device.lock();
    let tables: serde_json::Map<String, Json> =
        s.db.tables()
            .map(|t| {
                let columns: Vec<Json> = t
                    .columns()
                    .iter()
                    .map(|c| json!([c.name, column_type_name(c.ty)]))
                    .collect();
                let rows: Vec<Json> = t
                    .rows()
                    .map(|(rowid, row)| {
                        json!([rowid, row.iter().map(Value::to_json).collect::<Vec<_>>()])
                    })
                    .collect();
                (
                    t.name().to_owned(),
                    json!({"columns": columns, "rows": rows}),
                )
            })
            .collect();
    let photos: Vec<Json> = s
        .photos
        .iter()
        .map(|(user_id, p)| {
            json!({
                "user_id": user_id,
                "timestamp": p.timestamp,
                "digest": BASE64.encode(p.digest),
                "jpeg": p.jpeg.as_ref().map(|j| BASE64.encode(j)),
            })
        })
        .collect();
    json!({
        "format": FORMAT,
        "version": VERSION,
        "model": s.model.cli_name(),
        "identity": {"device_id": s.identity.device_id, "serial": s.identity.serial, "mac": s.identity.mac},
        "login": s.credentials.login,
        "password_sha256": s.credentials.digest,
        "password_salt": s.credentials.salt,
        "first_web_login": s.first_web_login,
        "clock_offset": s.clock.offset(),
        "config": s.config.sections(),
        "tables": tables,
        "photos": photos,
    })
}

/// Loads a snapshot into `device` (which must be the same model). Nothing changes on error.
pub fn restore(device: &Device, saved: &Json) -> Result<(), String> {
    let version = saved["version"].as_i64().unwrap_or(0);
    if saved["format"] != FORMAT || !(1..=VERSION).contains(&version) {
        return Err(format!("expected format {FORMAT} version 1 to {VERSION}"));
    }
    let model = device.model();
    if saved["model"] != model.cli_name() {
        return Err(format!(
            "saved for model {}, but the simulator runs {}",
            saved["model"],
            model.cli_name()
        ));
    }
    let identity = Identity {
        device_id: saved["identity"]["device_id"]
            .as_i64()
            .ok_or("identity.device_id")?,
        serial: saved["identity"]["serial"]
            .as_str()
            .ok_or("identity.serial")?
            .to_owned(),
        mac: saved["identity"]["mac"]
            .as_str()
            .ok_or("identity.mac")?
            .to_owned(),
    };
    let config: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_value(saved["config"].clone()).map_err(|e| format!("config: {e}"))?;
    let mut tables = Vec::new();
    for (name, t) in saved["tables"].as_object().ok_or("tables")? {
        let columns = t["columns"]
            .as_array()
            .ok_or("columns")?
            .iter()
            .map(|c| {
                Some(Column {
                    name: c[0].as_str()?.to_owned(),
                    ty: column_type(c[1].as_str()?)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("columns of {name}"))?;
        let mut rows = BTreeMap::new();
        for r in t["rows"].as_array().ok_or("rows")? {
            let rowid = r[0].as_i64().ok_or_else(|| format!("rowid in {name}"))?;
            let cells = r[1]
                .as_array()
                .ok_or_else(|| format!("row in {name}"))?
                .iter()
                .map(|v| match v {
                    Json::Null => Some(Value::Null),
                    Json::String(s) => Some(Value::Text(s.clone())),
                    other => json_integer(other).map(Value::Int),
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("cell in {name}"))?;
            if cells.len() != columns.len() {
                return Err(format!("row width in {name}"));
            }
            rows.insert(rowid, cells);
        }
        tables.push((name.clone(), columns, rows));
    }
    let mut photos = Vec::new();
    for p in saved["photos"].as_array().ok_or("photos")? {
        let digest: [u8; 32] = BASE64
            .decode(p["digest"].as_str().unwrap_or_default())
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or("photo digest")?;
        let jpeg = match &p["jpeg"] {
            Json::Null => None,
            Json::String(s) => Some(BASE64.decode(s).map_err(|_| "photo jpeg")?),
            _ => return Err("photo jpeg".into()),
        };
        photos.push((
            p["user_id"].as_i64().ok_or("photo user_id")?,
            Photo {
                jpeg,
                timestamp: p["timestamp"].as_i64().ok_or("photo timestamp")?,
                digest,
            },
        ));
    }

    let login = saved["login"].as_str().ok_or("login")?;
    let kept = match saved["password"].as_str() {
        // Version 1 kept the password in clear: it is hashed below, and the next write of
        // the state file no longer holds it.
        Some(clear) => Err(clear),
        None => Ok(Credentials {
            login: login.to_owned(),
            digest: saved["password_sha256"]
                .as_str()
                .ok_or("password_sha256")?
                .to_owned(),
            salt: saved["password_salt"]
                .as_str()
                .ok_or("password_salt")?
                .to_owned(),
        }),
    };

    let mut s = device.lock();
    let mut db = s.db.clone();
    for (name, columns, rows) in tables {
        db.restore_table(&name, columns, rows)
            .map_err(|e| e.to_string())?;
    }
    s.db = db;
    s.identity = identity;
    s.credentials = match kept {
        Ok(credentials) => credentials,
        Err(clear) => {
            let s = &mut *s;
            Credentials::new(login, clear, &mut s.credential_rng)
        }
    };
    s.first_web_login = saved["first_web_login"].as_bool().unwrap_or(false);
    s.clock
        .set_offset(saved["clock_offset"].as_i64().unwrap_or(0));
    s.config.restore(&config);
    s.photos = Default::default();
    for (user, photo) in photos {
        s.photos.put(user, photo);
    }
    drop(s);
    device.touch();
    Ok(())
}

/// Reads `path` into `device`; a missing file leaves the factory state.
pub fn load(device: &Device, path: &Path) -> Result<bool, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |reason: String| StateError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let json: Json = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    restore(device, &json).map_err(invalid)?;
    Ok(true)
}

/// Creates (or truncates) `path` for writing, readable and writable by its owner only on
/// Unix (0600) – also when a file of that name was left with a wider mode.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let f = options.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync directory); the
/// new file is private to its owner (see [`create_private`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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
    if let Ok(d) = std::fs::File::open(dir) {
        // Persisting the rename itself; not every platform supports syncing a directory.
        let _ = d.sync_all();
    }
    Ok(())
}

async fn write_snapshot(device: &Device, path: &Path) {
    let bytes = snapshot(device).to_string().into_bytes();
    let path = path.to_owned();
    let result = tokio::task::spawn_blocking(move || write_atomic(&path, &bytes)).await;
    match result {
        Ok(Ok(())) => tracing::debug!("state file written"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not write the state file"),
        Err(e) => tracing::error!(error = %e, "state writer task failed"),
    }
}

/// Writes the state file after every change until `cancel`, then once more.
pub async fn run(device: Device, path: PathBuf, cancel: CancellationToken) {
    let mut changes = device.subscribe_changes();
    changes.mark_unchanged();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                changes.mark_unchanged();
                write_snapshot(&device, &path).await;
            }
            () = cancel.cancelled() => break,
        }
    }
    write_snapshot(&device, &path).await;
}
