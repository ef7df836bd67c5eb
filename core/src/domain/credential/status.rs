//! A credential's effective status (docs/domain.md §7.5): *active* iff it has no disable
//! reason. [`Credential::disable_reasons`] computes the reasons a credential carries on its
//! own; `needs_provisioning` depends on the entitlements of the whole tenant and is added
//! by [`Snapshot::credential_status`](crate::domain::snapshot::Snapshot::credential_status).

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::Credential;

/// Why a credential is not active (docs/domain.md §7.5). Declared in the order decisions
/// report them: the first reason present is the one a denial names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisableReason {
    /// Revoked (final).
    Revoked,
    /// Suspended (reversible).
    Suspended,
    /// Locked out after too many attempts (reversible).
    Lockout,
    /// At or after `ends_at`.
    Expired,
    /// All allowed uses consumed (one-time credentials).
    MaxUses,
    /// Before `starts_at`.
    NotYetActive,
    /// Issued but on no terminal: no entitlement covers any terminal (enrollment ≠
    /// distribution). Only terminal-held kinds and mobile-key parents can carry it.
    NeedsProvisioning,
}

/// A credential's effective status at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialStatus {
    /// No disable reason.
    Active,
    /// One or more disable reasons.
    Disabled(BTreeSet<DisableReason>),
    /// Deleted (final; nothing else applies).
    Deleted,
}

impl CredentialStatus {
    /// Whether the status is `Active`.
    pub fn is_active(&self) -> bool {
        matches!(self, CredentialStatus::Active)
    }
}

impl Credential {
    /// The disable reasons the credential carries on its own at `at` (everything but
    /// `needs_provisioning`, which depends on the tenant's entitlements).
    pub fn disable_reasons(&self, at: Timestamp) -> BTreeSet<DisableReason> {
        let mut reasons = BTreeSet::new();
        if self.revoked.is_some() {
            reasons.insert(DisableReason::Revoked);
        }
        if self.suspended {
            reasons.insert(DisableReason::Suspended);
        }
        if self.locked_out {
            reasons.insert(DisableReason::Lockout);
        }
        if self.window.is_after(at) {
            reasons.insert(DisableReason::Expired);
        }
        if self.max_uses.is_some_and(|max| self.use_count >= max) {
            reasons.insert(DisableReason::MaxUses);
        }
        if self.window.is_before(at) {
            reasons.insert(DisableReason::NotYetActive);
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::super::CredentialTransitionError;
    use super::super::test_support::{card, ts};
    use super::*;

    #[test]
    fn status_follows_window_and_uses() {
        let mut c = card(1, 1, 7)
            .with_window(Some(ts(10)), Some(ts(20)))
            .unwrap()
            .with_max_uses(1)
            .unwrap();
        assert_eq!(
            c.disable_reasons(ts(5)),
            [DisableReason::NotYetActive].into()
        );
        assert!(c.disable_reasons(ts(10)).is_empty());
        assert_eq!(c.disable_reasons(ts(20)), [DisableReason::Expired].into());
        c.consume().unwrap();
        assert_eq!(c.consume(), Err(CredentialTransitionError::NoUsesLeft));
        assert_eq!(c.disable_reasons(ts(15)), [DisableReason::MaxUses].into());
    }
}
