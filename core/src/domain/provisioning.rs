//! The provisioning status lifecycle of server-owned objects (accesses, and later people,
//! credentials, schedules and groups): `initial → creating → ready ⇄ updating → deleting →
//! deleted` (docs/domain.md §7.5, Entryfy).
//!
//! Only the server changes it. Deletion may start from any state before `deleting`,
//! because a delete request can arrive while a create or update is still being applied.

/// Where an object is in being applied to the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProvisioningStatus {
    /// Recorded, nothing done yet.
    Initial,
    /// Being created on the hardware.
    Creating,
    /// Applied.
    Ready,
    /// A change is being applied.
    Updating,
    /// Being removed from the hardware.
    Deleting,
    /// Removed (final).
    Deleted,
}

/// A provisioning status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot go from {from:?} to {to:?}")]
pub struct ProvisioningTransitionError {
    /// The current status.
    pub from: ProvisioningStatus,
    /// The requested status.
    pub to: ProvisioningStatus,
}

impl ProvisioningStatus {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: ProvisioningStatus) -> bool {
        use ProvisioningStatus::*;
        matches!(
            (self, to),
            (Initial, Creating)
                | (Creating, Ready)
                | (Ready, Updating)
                | (Updating, Ready)
                | (Initial | Creating | Ready | Updating, Deleting)
                | (Deleting, Deleted)
        )
    }

    /// `to`, if the lifecycle allows it.
    pub fn transition(
        self,
        to: ProvisioningStatus,
    ) -> Result<ProvisioningStatus, ProvisioningTransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(ProvisioningTransitionError { from: self, to })
        }
    }

    /// Whether the object is being or has been deleted: it no longer entitles anyone.
    pub fn is_deleted(self) -> bool {
        matches!(
            self,
            ProvisioningStatus::Deleting | ProvisioningStatus::Deleted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::ProvisioningStatus::*;

    #[test]
    fn the_documented_path_is_allowed() {
        let mut s = Initial;
        for next in [Creating, Ready, Updating, Ready, Deleting, Deleted] {
            s = s.transition(next).unwrap();
        }
        assert_eq!(s, Deleted);
    }

    #[test]
    fn everything_else_is_refused() {
        let all = [Initial, Creating, Ready, Updating, Deleting, Deleted];
        let allowed = [
            (Initial, Creating),
            (Creating, Ready),
            (Ready, Updating),
            (Updating, Ready),
            (Initial, Deleting),
            (Creating, Deleting),
            (Ready, Deleting),
            (Updating, Deleting),
            (Deleting, Deleted),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.transition(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }
}
