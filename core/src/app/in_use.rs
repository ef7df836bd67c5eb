//! Credentials in use: a cloud key opening a door is marked until its guard drops, so
//! that a second use of the same key waits its turn.

use std::sync::PoisonError;

use super::Core;

/// A credential in use, released when dropped ([`Core::key_in_use`]).
#[derive(Debug)]
pub struct KeyInUse {
    core: Core,
    id: u64,
}

impl Drop for KeyInUse {
    fn drop(&mut self) {
        self.core
            .inner
            .keys_in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Core {
    /// Marks the credential `id` as being used (a cloud key opening a door) until the
    /// guard is dropped; `None` while another use is in flight.
    pub fn key_in_use(&self, id: u64) -> Option<KeyInUse> {
        self.inner
            .keys_in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
            .then(|| KeyInUse {
                core: self.clone(),
                id,
            })
    }
}
