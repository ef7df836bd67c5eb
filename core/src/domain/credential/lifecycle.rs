//! A credential's lifecycle: the transitions a user's request may make (suspend and
//! unsuspend, lock out and clear, revoke, delete, consume a use, count wrong PINs), the
//! errors of transitions its state forbids, and the state as the store saves and restores
//! it. `revoked` and `deleted` are final; `suspended` and `lockout` can be lifted.

use super::Credential;

/// Why a credential was revoked. All are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// Reported lost: the card value can never be issued again in the tenant.
    Lost,
    /// Reported stolen: the card value can never be issued again in the tenant.
    Stolen,
    /// Damaged (the value may be reissued on a new card).
    Damaged,
    /// The person's relationship ended.
    Terminated,
    /// A mobile-key copy whose phone was deactivated.
    PhoneDeactivated,
    /// A mobile-key copy whose parent was revoked or deleted.
    ParentRevoked,
}

impl RevokeReason {
    /// Whether the value is burnt for good (lost or stolen cards).
    pub fn burns_value(self) -> bool {
        matches!(self, RevokeReason::Lost | RevokeReason::Stolen)
    }
}

/// A lifecycle change that is not allowed from the credential's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialTransitionError {
    /// The credential is deleted; nothing can change it any more.
    #[error("credential is deleted")]
    Deleted,
    /// The credential is revoked; only deletion is still possible.
    #[error("credential is revoked")]
    Revoked,
    /// Suspending an already suspended credential.
    #[error("credential is already suspended")]
    AlreadySuspended,
    /// Unsuspending a credential that is not suspended.
    #[error("credential is not suspended")]
    NotSuspended,
    /// Consuming a credential with no uses left.
    #[error("credential has no uses left")]
    NoUsesLeft,
}

/// The lifecycle state a credential keeps in private fields (changed only through its
/// transitions), as the store saves it with [`Credential::lifecycle`] and brings it back
/// with [`Credential::restore_lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CredentialLifecycle {
    /// How many grants it has been used for.
    pub use_count: u32,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Whether it is locked out.
    pub locked_out: bool,
    /// Wrong PINs given with it since the last success or lockout clearance.
    pub failed_attempts: u32,
    /// Why it was revoked, if it was.
    pub revoked: Option<RevokeReason>,
    /// Whether it is deleted.
    pub deleted: bool,
}

impl Credential {
    /// Its lifecycle state, for the store.
    pub fn lifecycle(&self) -> CredentialLifecycle {
        CredentialLifecycle {
            use_count: self.use_count,
            suspended: self.suspended,
            locked_out: self.locked_out,
            failed_attempts: self.failed_attempts,
            revoked: self.revoked,
            deleted: self.deleted,
        }
    }

    /// The same credential with `lifecycle` put back exactly as saved.
    ///
    /// For the store only, when reading a credential back: it bypasses the transition
    /// rules (it can un-revoke or un-delete), so anything acting on a user's request must
    /// use [`Credential::suspend`], [`Credential::revoke`], [`Credential::delete`] … instead.
    pub fn restore_lifecycle(mut self, lifecycle: CredentialLifecycle) -> Credential {
        let CredentialLifecycle {
            use_count,
            suspended,
            locked_out,
            failed_attempts,
            revoked,
            deleted,
        } = lifecycle;
        self.use_count = use_count;
        self.suspended = suspended;
        self.locked_out = locked_out;
        self.failed_attempts = failed_attempts;
        self.revoked = revoked;
        self.deleted = deleted;
        self
    }

    fn check_mutable(&self) -> Result<(), CredentialTransitionError> {
        if self.deleted {
            Err(CredentialTransitionError::Deleted)
        } else if self.revoked.is_some() {
            Err(CredentialTransitionError::Revoked)
        } else {
            Ok(())
        }
    }

    /// Suspends it (reversible).
    pub fn suspend(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if self.suspended {
            return Err(CredentialTransitionError::AlreadySuspended);
        }
        self.suspended = true;
        Ok(())
    }

    /// Lifts a suspension.
    pub fn unsuspend(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if !self.suspended {
            return Err(CredentialTransitionError::NotSuspended);
        }
        self.suspended = false;
        Ok(())
    }

    /// Locks it out (e.g. after too many failed attempts).
    pub fn lock_out(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.locked_out = true;
        Ok(())
    }

    /// Clears a lockout (and the count of wrong PINs).
    pub fn clear_lockout(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.locked_out = false;
        self.failed_attempts = 0;
        Ok(())
    }

    /// Counts a wrong PIN given with this credential; the `limit`-th wrong PIN in a row
    /// locks it out. Returns whether it is locked out now.
    pub fn record_wrong_pin(&mut self, limit: u32) -> Result<bool, CredentialTransitionError> {
        self.check_mutable()?;
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        if self.failed_attempts >= limit.max(1) {
            self.locked_out = true;
        }
        Ok(self.locked_out)
    }

    /// Forgets earlier wrong PINs after a right one.
    pub fn record_right_pin(&mut self) {
        self.failed_attempts = 0;
    }

    /// Wrong PINs given since the last right one or lockout clearance.
    pub fn failed_attempts(&self) -> u32 {
        self.failed_attempts
    }

    /// Revokes it for good. A suspended credential can be revoked; a revoked one cannot be
    /// revoked again or brought back.
    pub fn revoke(&mut self, reason: RevokeReason) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.revoked = Some(reason);
        Ok(())
    }

    /// Deletes it for good (allowed from any state but deleted).
    pub fn delete(&mut self) -> Result<(), CredentialTransitionError> {
        if self.deleted {
            return Err(CredentialTransitionError::Deleted);
        }
        self.deleted = true;
        Ok(())
    }

    /// Records one grant; fails if no uses are left.
    pub fn consume(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if self.max_uses.is_some_and(|max| self.use_count >= max) {
            return Err(CredentialTransitionError::NoUsesLeft);
        }
        self.use_count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::DisableReason;
    use super::super::test_support::{card, ts};
    use super::*;

    #[test]
    fn suspension_is_reversible_revocation_is_not() {
        let mut c = card(1, 1, 7);
        c.suspend().unwrap();
        assert_eq!(
            c.suspend(),
            Err(CredentialTransitionError::AlreadySuspended)
        );
        assert_eq!(c.disable_reasons(ts(0)), [DisableReason::Suspended].into());
        c.unsuspend().unwrap();
        assert!(c.disable_reasons(ts(0)).is_empty());
        c.suspend().unwrap();
        c.revoke(RevokeReason::Lost).unwrap();
        assert_eq!(c.unsuspend(), Err(CredentialTransitionError::Revoked));
        assert_eq!(
            c.revoke(RevokeReason::Damaged),
            Err(CredentialTransitionError::Revoked)
        );
        assert!(c.disable_reasons(ts(0)).contains(&DisableReason::Revoked));
        c.delete().unwrap();
        assert_eq!(c.delete(), Err(CredentialTransitionError::Deleted));
        assert_eq!(c.suspend(), Err(CredentialTransitionError::Deleted));
    }

    #[test]
    fn lockout_is_a_disable_reason() {
        let mut c = card(1, 1, 7);
        c.lock_out().unwrap();
        assert_eq!(c.disable_reasons(ts(0)), [DisableReason::Lockout].into());
        c.clear_lockout().unwrap();
        assert!(c.disable_reasons(ts(0)).is_empty());
    }
}
