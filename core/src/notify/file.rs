//! The embedded default sender: each message becomes one file, `message-<id>.txt`, in a
//! directory – headers (`Message-Id`, `Channel`, `To`, `Subject`, `Cause`), a blank line,
//! the body. Written to a temporary name and renamed, so a reader never sees half a
//! message and a repeated delivery replaces the file rather than adding a second one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{SendError, Sender};
use crate::store::MessageRow;

/// Writes messages as files into a directory (created on first use).
#[derive(Debug, Clone)]
pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    /// A sender writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> FileSender {
        FileSender { dir: dir.into() }
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

/// The file's text.
pub fn render(message: &MessageRow) -> String {
    let m = &message.message;
    format!(
        "Message-Id: {}\nChannel: {}\nTo: {}\nSubject: {}\nCause: {}\n\n{}\n",
        message.id,
        m.channel.as_str(),
        m.recipient,
        m.subject,
        m.cause,
        m.body
    )
}

impl Sender for FileSender {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        let temporary = |e: std::io::Error| SendError::Temporary(e.to_string());
        std::fs::create_dir_all(&self.dir).map_err(temporary)?;
        let target = self.path_of(message.id);
        let partial = self.dir.join(format!(".message-{}.partial", message.id));
        let mut file = std::fs::File::create(&partial).map_err(temporary)?;
        file.write_all(render(message).as_bytes())
            .map_err(temporary)?;
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
