//! The embedded default sender: each message becomes one file, `message-<id>.txt`, in a
//! directory – headers (`Message-Id`, `Channel`, `To`, `Subject`, `Cause`), a blank line,
//! the body. Written to a temporary name and renamed, so a reader never sees half a
//! message and a repeated delivery replaces the file rather than adding a second one.
//!
//! Bodies carry links and PINs: with a key ([`FileSender::sealed`]) the body is written
//! sealed (`sealed:v1:…`, [`open_body`] or `acs-core outbox open` reads it). The directory
//! is created 0700 and the files 0600 on Unix, whatever the umask.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{SendError, Sender};
use crate::store::MessageRow;
use crate::store::seal::{SealError, SecretKey};

/// Writes messages as files into a directory (created on first use).
#[derive(Debug, Clone)]
pub struct FileSender {
    dir: PathBuf,
    key: Option<SecretKey>,
}

impl FileSender {
    /// A sender writing into `dir`, bodies in clear (tests, development).
    pub fn new(dir: impl Into<PathBuf>) -> FileSender {
        FileSender {
            dir: dir.into(),
            key: None,
        }
    }

    /// A sender writing into `dir`, bodies sealed with `key`.
    pub fn sealed(dir: impl Into<PathBuf>, key: SecretKey) -> FileSender {
        FileSender {
            dir: dir.into(),
            key: Some(key),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a message is delivered to.
    pub fn path_of(&self, message_id: u64) -> PathBuf {
        self.dir.join(format!("message-{message_id}.txt"))
    }
}

/// The file's text with `body` as the body.
fn render_with(message: &MessageRow, body: &str) -> String {
    let m = &message.message;
    format!(
        "Message-Id: {}\nChannel: {}\nTo: {}\nSubject: {}\nCause: {}\n\n{}\n",
        message.id,
        m.channel.as_str(),
        m.recipient,
        m.subject,
        m.cause,
        body
    )
}

/// The file's text (body in clear).
pub fn render(message: &MessageRow) -> String {
    render_with(message, &message.message.body)
}

/// A message file's text with its sealed body opened (a clear file as it is).
pub fn open_body(text: &str, key: &SecretKey) -> Result<String, SealError> {
    let Some((headers, body)) = text.split_once("\n\n") else {
        return Ok(text.to_owned());
    };
    let body = body.strip_suffix('\n').unwrap_or(body);
    if !crate::store::seal::is_sealed_text(body) {
        return Ok(text.to_owned());
    }
    Ok(format!("{headers}\n\n{}\n", key.open_text(body)?))
}

/// Creates `dir` (and its parents) if missing; on Unix, `dir` itself is made 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Creates (or truncates) `path` for writing, 0600 on Unix.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

impl Sender for FileSender {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        let temporary = |e: std::io::Error| SendError::Temporary(e.to_string());
        private_dir(&self.dir).map_err(temporary)?;
        let target = self.path_of(message.id);
        let partial = self.dir.join(format!(".message-{}.partial", message.id));
        let mut file = private_file(&partial).map_err(temporary)?;
        let text = match &self.key {
            Some(key) => render_with(message, &key.seal_text(&message.message.body)),
            None => render(message),
        };
        file.write_all(text.as_bytes()).map_err(temporary)?;
        file.sync_all().map_err(temporary)?;
        std::fs::rename(&partial, &target).map_err(temporary)?;
        tracing::info!(
            message_id = message.id,
            channel = message.message.channel.as_str(),
            file = %target.display(),
            "message delivered to file"
        );
        Ok(())
    }
}
