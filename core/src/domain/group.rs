//! Groups: named sets of people that accesses can name as subjects.

use super::id::{GroupId, PersonId, TenantId};
use super::validation::{InvalidField, required_text};
use std::collections::BTreeSet;

/// A named set of people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// The members.
    pub members: BTreeSet<PersonId>,
}

impl Group {
    /// An empty group; the name is trimmed and must be non-empty.
    pub fn new(id: GroupId, tenant_id: TenantId, name: &str) -> Result<Group, InvalidField> {
        Ok(Group {
            id,
            tenant_id,
            name: required_text("name", name, 200)?,
            members: BTreeSet::new(),
        })
    }
}
